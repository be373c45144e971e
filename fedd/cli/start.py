"""`fedd start hub` and `fedd start peer`: the long-running daemons.

Their options answer to two environment variables each (see
`fedd.cli.options.short_envvars`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from fedd.cli.options import (
    DIR,
    PATH,
    FiniteFloat,
    curve_client,
    reading_options,
    secagg_threshold_options,
    short_envvars,
    warn_old_threshold,
)
from fedd.cli.options import secagg_threshold as secagg_threshold_of
from fedd.cli.strategy import strategy_of, strategy_options
from fedd.crypto.secagg.shape import DEFAULT_CORRUPT, DEFAULT_DROPOUT
from fedd.daemon.errors import ConfigError
from fedd.learner.model import CLASS_WEIGHTS
from fedd.peer.config import REQUIREMENTS

__all__ = ["start"]


def _daemon_logging(ctx: click.Context) -> None:
    """Daemons log what they do (INFO) unless -v asked for more."""
    verbose = ctx.find_root().obj or 0
    logging.getLogger("fedd").setLevel(logging.DEBUG if verbose else logging.INFO)


@click.group()
def start() -> None:
    """Start a long-running daemon: the hub, or a peer."""


@short_envvars("start", "hub")
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
@secagg_threshold_options(
    1,
    "Secure rounds: Shamir threshold t (default: chosen per round). "
    "Plain rounds: minimum contributions.",
)
@click.option(
    "--decision-threshold",
    type=FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    default=0.5,
    help="The probability at which precision, recall and F1 are counted.",
)
@click.option(
    "--dropout-budget",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=DEFAULT_DROPOUT,
    help="Secure rounds: the dropout fraction (k, t) must tolerate.",
)
@click.option(
    "--corrupt",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=DEFAULT_CORRUPT,
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
@reading_options("--eval-test")
@click.option("--local-epochs", type=click.IntRange(1, 1000), default=1, help="Epochs per round.")
@click.option("--lr", type=FiniteFloat(0.0, min_open=True), default=0.1, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(1), default=512, help="Minibatch rows.")
@click.option("--l2", type=FiniteFloat(0.0), default=0.0, help="L2 penalty.")
@click.option("--class-weight", type=click.Choice(CLASS_WEIGHTS), default="none")
@click.option("--seed", type=click.IntRange(0), default=42, help="Training seed (plus round).")
@strategy_options
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
    secagg_threshold: int | None,
    threshold: int | None,
    decision_threshold: float,
    dropout_budget: float,
    corrupt: float,
    clip: float,
    max_weight: int,
    mod_bits: str,
    eval_test: Path | None,
    label: str,
    ignore_columns: tuple[str, ...],
    encoding: str,
    fill_missing: float | None,
    local_epochs: int,
    lr: float,
    batch_size: int,
    l2: float,
    class_weight: str,
    seed: int,
    strategy: str,
    server_lr: float | None,
    server_momentum: float | None,
    beta1: float | None,
    beta2: float | None,
    tau: float | None,
    proximal_mu: float,
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
        secagg_threshold=secagg_threshold_of(secagg_threshold, threshold),
        decision_threshold=decision_threshold,
        dropout_budget=dropout_budget,
        corrupt=corrupt,
        clip=clip,
        max_weight=max_weight,
        mod_bits=0 if mod_bits == "auto" else int(mod_bits),
        eval_test=eval_test,
        label=label,
        ignore_columns=ignore_columns,
        encoding=encoding,
        fill_missing=fill_missing,
        local_epochs=local_epochs,
        lr=lr,
        batch_size=batch_size,
        l2=l2,
        class_weight=class_weight,
        seed=seed,
        strategy=strategy_of(strategy, server_lr, server_momentum, beta1, beta2, tau),
        proximal_mu=proximal_mu,
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
    warn_old_threshold(threshold)
    sys.exit(Hub(config).run())


def _fault(value: str | None) -> str | None:
    if value is None:
        return None
    kind, _, stage = value.partition(":")
    if kind != "exit-at" or not stage:
        raise click.BadParameter("use exit-at:STAGE", param_hint="--fault")
    return stage


@short_envvars("start", "peer")
@start.command("peer")
@click.option("--connect", default="tcp://127.0.0.1:5555", help="The hub's address.")
@click.option(
    "--data",
    "data_path",
    type=PATH,
    default=None,
    help="This institution's own raw CSV (the peer holds rows out of it itself).",
)
@click.option(
    "--shard",
    type=click.Choice(["auto"]),
    default=None,
    help="Instead of --data: ask the hub for a shard k and load DATA_DIR/peer_<k>.csv "
    "(or make synthetic shard k with --synth-rows).",
)
@click.option(
    "--data-dir",
    type=DIR,
    default=Path("data/clients"),
    help="--shard auto: where the peer_<k>.csv shards are.",
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
@reading_options("--data")
@click.option(
    "--holdout",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=0.2,
    help="Share of each class held out to score models on (0: none); never sent.",
)
@click.option(
    "--holdout-seed",
    type=click.IntRange(0),
    default=42,
    help="Seed of the held-out rows' choice.",
)
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
    "--corrupt",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=DEFAULT_CORRUPT,
    help="Secure rounds: the fraction of peers this peer assumes collude with the hub; "
    "it declines rounds whose parameters are too weak for it.",
)
@click.option(
    "--dropout-budget",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=DEFAULT_DROPOUT,
    help="Secure rounds: the dropout fraction this peer assumes when it checks a round's "
    "graph degree.",
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
    ignore_columns: tuple[str, ...],
    encoding: str,
    fill_missing: float | None,
    holdout: float,
    holdout_seed: int,
    peer_id: str | None,
    curve_secret: Path | None,
    hub_public: Path | None,
    signing_key: Path | None,
    trusted_dir: Path | None,
    require: str,
    corrupt: float,
    dropout_budget: float,
    fault: str | None,
) -> None:
    """Run a peer: train locally each round and upload (masked) updates."""
    from fedd.crypto.errors import ParameterError
    from fedd.crypto.secagg.shape import Floor
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
    try:
        floor = Floor(corrupt=corrupt, dropout=dropout_budget)
    except ParameterError as exc:
        raise ConfigError(
            f"--corrupt {corrupt:g} and --dropout-budget {dropout_budget:g}: {exc}"
        ) from None
    curve, claim = curve_client(curve_secret, hub_public, claim_from_dir=True)
    config = PeerConfig(
        connect=connect,
        data=data_path,
        state_dir=state_dir,
        label=label,
        ignore_columns=ignore_columns,
        encoding=encoding,
        fill_missing=fill_missing,
        peer_id=peer_id,
        fault_stage=_fault(fault),
        shard=source,
        curve=curve,
        signing=signing,
        require=require,
        floor=floor,
        holdout=holdout,
        holdout_seed=holdout_seed,
    )
    try:
        code = PeerAgent(config).run()
    finally:
        if claim is not None:
            claim.close()
    sys.exit(code)
