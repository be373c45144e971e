"""`fedd start hub|peer`, `fedd status …` and `fedd keys generate`: the daemons' commands.

Their options answer to two environment variables each (see `_short_envvars`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from fedd.cliopts import DIR, PATH, FiniteFloat
from fedd.daemon.errors import ConfigError
from fedd.learner.model import CLASS_WEIGHTS
from fedd.peer.config import REQUIREMENTS

__all__ = ["keys", "start", "status"]


_Command = TypeVar("_Command", bound=click.Command)


def _short_envvars(*path: str) -> Callable[[_Command], _Command]:
    """Give each option of the command at `path` two environment variables.

    FEDD_<FLAG> (short, for compose files: FEDD_SECAGG) first, then the
    FEDD_<PATH>_<FLAG> that every other fedd option has (FEDD_START_HUB_SECAGG).
    Both are click's own envvar lookup, listed in `--help`.
    """

    def apply(command: _Command) -> _Command:
        for param in command.params:
            if isinstance(param, click.Option):
                flag = max(param.opts, key=len).lstrip("-").replace("-", "_").upper()
                param.envvar = [f"FEDD_{flag}", "_".join(("FEDD", *path, flag)).upper()]
                param.show_envvar = True
        return command

    return apply


def _curve_client(
    secret: Path | None, hub_public: Path | None, *, claim_from_dir: bool
) -> tuple[Any, IO[bytes] | None]:
    """The CURVE client settings of --curve-secret/--hub-public (None without CURVE).

    A directory as --curve-secret: a peer claims one of its keys (see
    daemon.transport.curve.claim_secret; the returned file holds the claim open);
    `fedd status` just uses the first, since it only authenticates and never
    registers. Without --hub-public the hub's key is the one of
    --curve-secret itself: that is `fedd status` beside the hub, with its key.
    """
    from fedd.daemon.transport.curve import SECRET_SUFFIX, claim_secret, load_public, load_secret
    from fedd.daemon.transport.sockets import ClientCurve

    if secret is None:
        if hub_public is not None:
            raise ConfigError("--hub-public needs --curve-secret (this side's key)")
        return None, None
    claim = None
    if secret.is_dir() and claim_from_dir:
        keys, claim = claim_secret(secret)
    elif secret.is_dir():
        found = sorted(secret.glob(f"*{SECRET_SUFFIX}"))
        if not found:
            raise ConfigError(f"{secret}: no *{SECRET_SUFFIX} key files")
        keys = load_secret(found[0])
    else:
        keys = load_secret(secret)
    server = keys.public if hub_public is None else load_public(hub_public)
    return ClientCurve(keys, server), claim


def _daemon_logging(ctx: click.Context) -> None:
    """Daemons log what they do (INFO) unless -v asked for more."""
    verbose = ctx.find_root().obj or 0
    logging.getLogger("fedd").setLevel(logging.DEBUG if verbose else logging.INFO)


@click.group()
def start() -> None:
    """Start a long-running daemon: the hub, or a peer."""


@_short_envvars("start", "hub")
@start.command("hub")
@click.option("--bind", default="tcp://*:5555", help="ZeroMQ address to bind the ROUTER to.")
@click.option("--state-dir", type=DIR, default=Path("state/hub"), help="CSV state directory.")
@click.option("--min-peers", type=click.IntRange(1), default=3, help="Peers needed per round.")
@click.option(
    "--rounds", type=click.IntRange(0), default=10, help="Rounds to run (0: until stopped)."
)
@click.option(
    "--secagg",
    type=click.Choice(["off", "full", "plus"]),
    default="full",
    help="Plain FedAvg, SecAgg, or SecAgg+.",
)
@click.option(
    "--active",
    is_flag=True,
    help="Secure rounds resist a lying hub: peers sign their keys and the survivor set "
    "(peers need --signing-key and --trusted-dir).",
)
@click.option(
    "--threshold",
    type=click.IntRange(1),
    default=None,
    help="Secure rounds: Shamir threshold t (default: chosen per round). "
    "Plain rounds: minimum updates.",
)
@click.option(
    "--dropout-budget",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=0.1,
    help="Secure rounds: the dropout fraction (k, t) must tolerate.",
)
@click.option(
    "--corrupt",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=0.05,
    help="Secure rounds: the fraction of peers assumed to collude with the hub.",
)
@click.option(
    "--clip",
    type=FiniteFloat(0.0, min_open=True),
    default=16.0,
    help="Secure rounds: each update coordinate is clipped to [-clip, clip].",
)
@click.option(
    "--max-weight",
    type=click.IntRange(1, 2**40),
    default=1 << 20,
    help="Secure rounds: a peer's sample count counts at most this much.",
)
@click.option(
    "--mod-bits",
    type=click.Choice(["auto", "32", "64"]),
    default="auto",
    help="Secure rounds: vectors mod 2^32 or 2^64 (auto: 32 when it keeps a fine scale).",
)
@click.option("--eval-test", type=PATH, default=None, help="Test CSV to evaluate every round on.")
@click.option("--label", default="Class", help="Label column of --eval-test.")
@click.option("--local-epochs", type=click.IntRange(1, 1000), default=1, help="Epochs per round.")
@click.option("--lr", type=FiniteFloat(0.0, min_open=True), default=0.1, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(1), default=512, help="Minibatch rows.")
@click.option("--l2", type=FiniteFloat(0.0), default=0.0, help="L2 penalty.")
@click.option("--class-weight", type=click.Choice(CLASS_WEIGHTS), default="none")
@click.option("--seed", type=click.IntRange(0), default=42, help="Training seed (plus round).")
@click.option(
    "--stage-timeout",
    type=FiniteFloat(0.0, min_open=True),
    default=30.0,
    help="Seconds a protocol stage waits for silent peers.",
)
@click.option(
    "--train-timeout",
    type=FiniteFloat(0.0, min_open=True),
    default=300.0,
    help="Seconds peers get for local training plus their first upload.",
)
@click.option(
    "--heartbeat", type=FiniteFloat(0.01, 60.0), default=1.0, help="Seconds between heartbeats."
)
@click.option(
    "--liveness",
    type=FiniteFloat(0.05),
    default=10.0,
    help="Seconds of silence after which a peer counts as gone.",
)
@click.option(
    "--join-window",
    type=FiniteFloat(0.0),
    default=1.0,
    help="Seconds without new registrations before a round starts.",
)
@click.option("--exit-when-done", is_flag=True, help="Exit 0 after the last round.")
@click.option(
    "--shards",
    type=click.IntRange(0),
    default=0,
    help="Shards peers with --shard auto may get (0: no limit); more peers wait.",
)
@click.option(
    "--curve-secret",
    type=PATH,
    default=None,
    help="CURVE: the hub's secret key file (fedd keys generate). Needs --allow-dir.",
)
@click.option(
    "--allow-dir",
    type=DIR,
    default=None,
    help="CURVE: directory of the peers' NAME.pub keys; NAME is the peer's id. "
    "Reloaded when it changes.",
)
@click.pass_context
def start_hub(
    ctx: click.Context,
    *,
    bind: str,
    state_dir: Path,
    min_peers: int,
    rounds: int,
    secagg: str,
    active: bool,
    threshold: int | None,
    dropout_budget: float,
    corrupt: float,
    clip: float,
    max_weight: int,
    mod_bits: str,
    eval_test: Path | None,
    label: str,
    local_epochs: int,
    lr: float,
    batch_size: int,
    l2: float,
    class_weight: str,
    seed: int,
    stage_timeout: float,
    train_timeout: float,
    heartbeat: float,
    liveness: float,
    join_window: float,
    exit_when_done: bool,
    shards: int,
    curve_secret: Path | None,
    allow_dir: Path | None,
) -> None:
    """Run the hub: coordinate rounds, aggregate, keep the CSV state."""
    from fedd.daemon.hub.config import HubConfig
    from fedd.daemon.hub.loop import Hub

    _daemon_logging(ctx)
    config = HubConfig(
        bind=bind,
        state_dir=state_dir,
        min_peers=min_peers,
        rounds=rounds,
        secagg=secagg,
        active=active,
        threshold=threshold,
        dropout_budget=dropout_budget,
        corrupt=corrupt,
        clip=clip,
        max_weight=max_weight,
        mod_bits=0 if mod_bits == "auto" else int(mod_bits),
        eval_test=eval_test,
        label=label,
        local_epochs=local_epochs,
        lr=lr,
        batch_size=batch_size,
        l2=l2,
        class_weight=class_weight,
        seed=seed,
        stage_timeout=stage_timeout,
        train_timeout=train_timeout,
        heartbeat_s=heartbeat,
        liveness_s=liveness,
        join_window=join_window,
        exit_when_done=exit_when_done,
        shards=shards,
        curve_secret=curve_secret,
        allow_dir=allow_dir,
    )
    sys.exit(Hub(config).run())


def _fault(value: str | None) -> str | None:
    if value is None:
        return None
    kind, _, stage = value.partition(":")
    if kind != "exit-at" or not stage:
        raise click.BadParameter("use exit-at:STAGE", param_hint="--fault")
    return stage


@_short_envvars("start", "peer")
@start.command("peer")
@click.option("--connect", default="tcp://127.0.0.1:5555", help="The hub's address.")
@click.option("--data", "data_path", type=PATH, default=None, help="This peer's training CSV.")
@click.option(
    "--shard",
    type=click.Choice(["auto"]),
    default=None,
    help="Instead of --data: ask the hub for a shard k and load DATA_DIR/peer_<k>/train.csv "
    "(or make synthetic shard k with --synth-rows).",
)
@click.option(
    "--data-dir",
    type=DIR,
    default=Path("data/clients"),
    help="--shard auto: where the peer_<k>/train.csv shards are.",
)
@click.option(
    "--synth-rows",
    type=click.IntRange(1),
    default=None,
    help="--shard auto: generate shard k (this many rows) instead of reading --data-dir.",
)
@click.option(
    "--synth-seed", type=click.IntRange(0), default=42, help="--synth-rows: shard k uses seed+k."
)
@click.option("--state-dir", type=DIR, default=Path("state/peer"), help="CSV state directory.")
@click.option("--label", default="Class", help="Label column of the data.")
@click.option(
    "--peer-id",
    default=None,
    help="Id to register under (default: the CURVE key's name, else kept in state).",
)
@click.option(
    "--curve-secret",
    type=click.Path(path_type=Path),
    default=None,
    help="CURVE: this peer's secret key file, or a directory of them to claim a free one "
    "from. Needs --hub-public.",
)
@click.option("--hub-public", type=PATH, default=None, help="CURVE: the hub's public key file.")
@click.option(
    "--signing-key",
    type=PATH,
    default=None,
    help="Active rounds: this peer's NAME.sigkey (fedd keys generate). Needs --trusted-dir.",
)
@click.option(
    "--trusted-dir",
    type=DIR,
    default=None,
    help="Active rounds: directory of the other peers' NAME.sigpub keys; NAME is their id.",
)
@click.option(
    "--require",
    type=click.Choice(REQUIREMENTS),
    default="any",
    help="The weakest protocol this peer takes part in: any, secure (full or plus), "
    "or active (secure against a lying hub).",
)
@click.option(
    "--fault",
    default=None,
    metavar="exit-at:STAGE",
    help="TESTING ONLY: exit abruptly at STAGE of the first round (training, "
    "advertise-keys, share-keys, masked-input, unmask).",
)
@click.pass_context
def start_peer(
    ctx: click.Context,
    *,
    connect: str,
    data_path: Path | None,
    shard: str | None,
    data_dir: Path,
    synth_rows: int | None,
    synth_seed: int,
    state_dir: Path,
    label: str,
    peer_id: str | None,
    curve_secret: Path | None,
    hub_public: Path | None,
    signing_key: Path | None,
    trusted_dir: Path | None,
    require: str,
    fault: str | None,
) -> None:
    """Run a peer: train locally each round and upload (masked) updates."""
    from fedd.daemon.transport.signkeys import load_signing_key, load_trusted_dir
    from fedd.peer.agent import PeerAgent
    from fedd.peer.config import PeerConfig, Signing
    from fedd.peer.shard import SYNTH_LABEL, ShardSource

    _daemon_logging(ctx)
    if (data_path is None) == (shard is None):
        raise click.UsageError("give --data PATH or --shard auto (one of them)")
    if synth_rows is not None and shard is None:
        raise click.UsageError("--synth-rows works with --shard auto")
    if (curve_secret is None) != (hub_public is None):
        raise ConfigError("CURVE needs both --curve-secret and --hub-public")
    if (signing_key is None) != (trusted_dir is None):
        raise ConfigError("active rounds need both --signing-key and --trusted-dir")
    signing = None
    if signing_key is not None and trusted_dir is not None:
        signing = Signing(load_signing_key(signing_key), load_trusted_dir(trusted_dir))
    if require == "active" and signing is None:
        raise ConfigError("--require active needs --signing-key and --trusted-dir")
    source = None
    if shard is not None:
        source = (
            ShardSource(data_dir=data_dir, label=label)
            if synth_rows is None
            else ShardSource(label=SYNTH_LABEL, synth_rows=synth_rows, synth_seed=synth_seed)
        )
    curve, claim = _curve_client(curve_secret, hub_public, claim_from_dir=True)
    config = PeerConfig(
        connect=connect,
        data=data_path,
        state_dir=state_dir,
        label=label,
        peer_id=peer_id,
        fault_stage=_fault(fault),
        shard=source,
        curve=curve,
        signing=signing,
        require=require,
    )
    try:
        code = PeerAgent(config).run()
    finally:
        if claim is not None:
            claim.close()
    sys.exit(code)


_HUB = click.option("--hub", default="tcp://127.0.0.1:5555", help="The hub's address.")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the hub's JSON data.")
_WAIT = click.option(
    "--timeout", type=FiniteFloat(0.1, 600.0), default=3.0, help="Seconds to wait for the hub."
)
_SECRET = click.option(
    "--curve-secret",
    type=click.Path(path_type=Path),
    default=None,
    help="CURVE hub: a secret key on its allow-list (a peer's), or the hub's own key.",
)
_HUB_PUBLIC = click.option(
    "--hub-public",
    type=PATH,
    default=None,
    help="CURVE hub: its public key [default: that of --curve-secret, i.e. the hub's own].",
)


def _client_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in (_HUB_PUBLIC, _SECRET, _WAIT, _JSON, _HUB):
        command = option(command)
    return command


def _query(
    topic: str,
    hub: str,
    timeout: float,
    curve_secret: Path | None,
    hub_public: Path | None,
    last: int = 10,
) -> Any:
    from fedd.status import query

    curve, claim = _curve_client(curve_secret, hub_public, claim_from_dir=False)
    try:
        return query(hub, topic, last=last, timeout_s=timeout, curve=curve)
    finally:
        if claim is not None:
            claim.close()


def _show_status(reply: Any, as_json: bool) -> None:
    from fedd.status import render

    if as_json:
        click.echo(json.dumps(reply.data, sort_keys=True))
    else:
        for line in render(reply):
            click.echo(line)


@_short_envvars("status")
@click.group(invoke_without_command=True)
@_client_options
@click.pass_context
def status(
    ctx: click.Context,
    *,
    hub: str,
    as_json: bool,
    timeout: float,
    curve_secret: Path | None,
    hub_public: Path | None,
) -> None:
    """The hub's current round, stage, peers and last results.

    Exits 0 when the hub answers: the hub container's health check.
    """
    if ctx.invoked_subcommand is None:
        _show_status(_query("summary", hub, timeout, curve_secret, hub_public), as_json)


@_short_envvars("status", "peers")
@status.command("peers")
@_client_options
def status_peers(
    *,
    hub: str,
    as_json: bool,
    timeout: float,
    curve_secret: Path | None,
    hub_public: Path | None,
) -> None:
    """Registered peers, their status and when they were last heard."""
    _show_status(_query("peers", hub, timeout, curve_secret, hub_public), as_json)


@_short_envvars("status", "rounds")
@status.command("rounds")
@_client_options
@click.option("--last", type=click.IntRange(1, 10_000), default=10, help="How many rounds.")
def status_rounds(
    *,
    hub: str,
    as_json: bool,
    timeout: float,
    curve_secret: Path | None,
    hub_public: Path | None,
    last: int,
) -> None:
    """The last rounds: outcome, peers, timing and metrics."""
    _show_status(_query("rounds", hub, timeout, curve_secret, hub_public, last), as_json)


@_short_envvars("status", "peer")
@status.command("peer")
@_client_options
@click.option(
    "--state-dir",
    type=DIR,
    default=Path("state/peer"),
    help="The peer's state directory (its id is in identity.csv).",
)
@click.option("--peer-id", default=None, help="The peer's id [default: from --state-dir].")
def status_peer(
    *,
    hub: str,
    as_json: bool,
    timeout: float,
    curve_secret: Path | None,
    hub_public: Path | None,
    state_dir: Path,
    peer_id: str | None,
) -> None:
    """Whether the hub counts this peer alive: exit 0 if so, 1 if not.

    The peer container's health check: a peer is healthy when the hub hears
    it, which a process check alone cannot tell.
    """
    from fedd.crypto.errors import LocalProtocolError
    from fedd.crypto.secagg.fields import check_peer_id
    from fedd.peer.state import read_peer_id

    if peer_id is None:
        peer_id = read_peer_id(state_dir)
    else:
        try:  # before asking the hub, which could only say that it knows no such peer
            check_peer_id(peer_id)
        except LocalProtocolError as exc:
            raise ConfigError(f"{peer_id!r} is not a usable peer id: {exc.reason}") from None
    reply = _query("peers", hub, timeout, curve_secret, hub_public)
    peers = reply.data.get("peers")
    row = (
        next(
            (p for p in peers if isinstance(p, dict) and p.get("peer") == peer_id),
            None,
        )
        if isinstance(peers, list)
        else None
    )
    if as_json:
        click.echo(json.dumps(row, sort_keys=True))
    if row is None:
        raise ConfigError(f"the hub at {hub} does not know peer {peer_id!r}")
    if row.get("status") != "alive":
        raise ConfigError(
            f"the hub at {hub} counts peer {peer_id!r} as {row.get('status')} "
            f"(last heard {row.get('seen_ago_s')}s ago)"
        )
    if not as_json:
        shard = f", shard {row['shard']}" if row.get("shard") else ""
        click.echo(f"peer {peer_id} is alive on the hub at {hub}{shard}")


@click.group()
def keys() -> None:
    """Key files: CURVE (transport) and Ed25519 (signing) pairs for the hub and the peers."""


@keys.command("generate")
@click.option("--out", type=DIR, required=True, help="Directory for the NAME.* key files.")
@click.option(
    "--name",
    "names",
    multiple=True,
    default=("fedd",),
    help="Key name (a peer's id on the hub's allow-list); repeat for several peers.",
)
def keys_generate(*, out: Path, names: tuple[str, ...]) -> None:
    """Write each NAME's keys: CURVE (NAME.pub, NAME.secret) and signing (NAME.sigpub, NAME.sigkey).

    Public halves (.pub for the hub's --allow-dir, .sigpub for the peers'
    --trusted-dir) may be shared; secret halves are written with mode 0600.
    """
    from fedd.daemon.transport.curve import generate
    from fedd.daemon.transport.keyfiles import check_key_name
    from fedd.daemon.transport.signkeys import generate_signing

    checked = [check_key_name(name, "--name") for name in names]  # all, before writing any
    twice = next((name for i, name in enumerate(checked) if name in checked[:i]), None)
    if twice is not None:
        raise ConfigError(f"--name {twice!r} is given twice")
    for name in names:
        public, secret = generate(out, name)
        sign_public, sign_secret = generate_signing(out, name)
        click.echo(f"wrote {public}, {secret}, {sign_public} and {sign_secret}")
