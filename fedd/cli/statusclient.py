"""`fedd status`, the client side: ask a hub, and show what it answers.

`query` sends a StatusRequest with a bounded wait; `render` turns the reply's
JSON-like data into the human tables (`--json` prints the data as is). The
hub side, which builds that data, is `daemon.hub.status`.
"""

from __future__ import annotations

import time
from typing import Any

import zmq

from fedd.daemon.errors import ConfigError
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.status import StatusReply, StatusRequest
from fedd.daemon.transport.sockets import ClientCurve, client_socket

__all__ = ["query", "render"]


def query(
    address: str,
    topic: str,
    *,
    last: int = 10,
    timeout_s: float = 3.0,
    curve: ClientCurve | None = None,
) -> StatusReply:
    """Ask the hub at `address` (as a CURVE client with `curve`); raises
    ConfigError if it does not answer in time."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = client_socket(ctx, address, curve)
    try:
        sock.send(wire.encode(StatusRequest("", 0, topic, last)))
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000) + 1):
                break
            try:
                reply = wire.decode(sock.recv())
            except wire.MalformedMessage as exc:
                raise ConfigError(f"the hub at {address} sent an unreadable reply: {exc}") from None
            if type(reply) is StatusReply:
                return reply
            if type(reply) is Error:
                raise ConfigError(f"the hub at {address} refused: {reply.reason}")
        hint = (
            "is it running, is the address right, and is this key on its allow-list?"
            if curve is not None
            else "is it running, is the address right, and does it use CURVE?"
        )
        raise ConfigError(f"no answer from a hub at {address} within {timeout_s:g}s: {hint}")
    finally:
        sock.close(0)
        ctx.term()


def render(reply: StatusReply) -> list[str]:
    """Human-readable lines for a status reply.

    Raises ConfigError if the data is not in the shape this fedd shows (a hub
    of another version, or not a fedd hub at all); `--json` prints it as is.
    """
    try:
        return _render(reply)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"cannot show the hub's {reply.topic} reply ({type(exc).__name__}: {exc}); "
            "--json prints it as it came"
        ) from None


def _render(reply: StatusReply) -> list[str]:
    data = reply.data
    if reply.topic == "peers":
        return _table(
            ["peer", "status", "shard", "seen ago"],
            [
                [p["peer"], p["status"], p["shard"] or "-", f"{p['seen_ago_s']:.1f}s"]
                for p in _dicts(data.get("peers"))
            ],
        ) or ["no peers have registered yet"]
    if reply.topic == "rounds":
        return _table(
            ["round", "mode", "status", "peers", "seconds", "roc_auc", "pr_auc", "f1", "reason"],
            [
                [
                    r["round"],
                    r["mode"],
                    r["status"],
                    f"{r['survivors']}/{r['participants']}",
                    f"{r['duration_s']:.2f}",
                    _num(r.get("roc_auc")),
                    _num(r.get("pr_auc")),
                    _num(r.get("f1")),
                    r.get("reason") or "",
                ]
                for r in _dicts(data.get("rounds"))
            ],
        ) or ["no rounds committed yet"]
    lines = [
        f"run        {data.get('run')}",
        f"mode       {data.get('mode')}",
        f"stage      {data.get('stage')}",
        f"rounds     {data.get('rounds_committed')} of {data.get('rounds_total') or 'unlimited'}",
        f"peers      {data.get('peers_alive')} alive, {data.get('peers_known')} known "
        f"(min {data.get('min_peers')})",
    ]
    if data.get("transport") == "curve":
        lines.append(
            f"transport  CURVE, {data.get('keys_allowed')} peer key(s) allowed, "
            f"{data.get('auth_denied')} connection(s) denied"
        )
    elif data.get("transport") == "plain":
        lines.append("transport  plain: not authenticated, not encrypted")
    last = data.get("last_round")
    if isinstance(last, dict):
        lines.append(
            f"last round {last['round']} {last['status']}: {last['survivors']}/"
            f"{last['participants']} peers in {last['duration_s']:.2f}s"
            + (
                f", roc_auc {_num(last.get('roc_auc'))} f1 {_num(last.get('f1'))}"
                if "roc_auc" in last
                else ""
            )
            + (f" ({last['reason']})" if last.get("reason") else "")
        )
        stages = last.get("stages")
        if isinstance(stages, dict) and stages:
            lines.append("stages     " + ", ".join(f"{k} {v:.3f}s" for k, v in stages.items()))
    return lines


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _num(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    if not rows:
        return []
    table: list[list[object]] = [list(header), *rows]
    cells = [[str(c) for c in row] for row in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
