"""`fedd status`, `status peers`, `status rounds` and `status peer`: ask a running hub.

The commands parse their options; asking the hub and rendering its answer is
`fedd.cli.statusclient`, imported when a command runs (it needs zmq). Their
options answer to two environment variables each (see
`fedd.cli.options.short_envvars`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fedd.cli.options import DIR, PATH, FiniteFloat, curve_client, short_envvars
from fedd.daemon.errors import ConfigError

__all__ = ["status"]


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
    from fedd.cli.statusclient import query

    curve, claim = curve_client(curve_secret, hub_public, claim_from_dir=False)
    try:
        return query(hub, topic, last=last, timeout_s=timeout, curve=curve)
    finally:
        if claim is not None:
            claim.close()


def _show_status(reply: Any, as_json: bool) -> None:
    from fedd.cli.statusclient import render

    if as_json:
        click.echo(json.dumps(reply.data, sort_keys=True))
    else:
        for line in render(reply):
            click.echo(line)


@short_envvars("status")
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


@short_envvars("status", "peers")
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


@short_envvars("status", "rounds")
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


@short_envvars("status", "peer")
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
