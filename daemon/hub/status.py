"""What the hub reports about itself: the data of a StatusReply.

The hub answers a StatusRequest on its ROUTER port with JSON-like data built
here from a `HubView`, the facts the hub hands in (this module never imports
the hub). The client side, which asks and shows the answer, is `fedd.cli.statusclient`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fedd.daemon.hub.config import HubConfig
from fedd.daemon.hub.registry import Registry
from fedd.daemon.hub.rounds import RoundOutcome
from fedd.daemon.state.store import HubStore
from fedd.daemon.transport.zap import ZapHandler

__all__ = ["HubView", "build_status"]


@dataclass(frozen=True, slots=True)
class HubView:
    """The hub's facts that a status reply shows."""

    run_id: str
    config: HubConfig
    registry: Registry
    store: HubStore
    running: tuple[int, str] | None  # the running round's number and stage
    done: bool
    waiting_note: str
    next_round: int
    last_outcome: tuple[int, RoundOutcome, float] | None
    zap: ZapHandler | None


def build_status(hub: HubView, topic: str, last: int) -> dict[str, object]:
    """The data of one StatusReply (JSON-like: str keys, lists, scalars)."""
    if topic == "peers":
        now = time.time()
        return {
            "peers": [
                {
                    "peer": r.peer,
                    "status": r.status.value,
                    "shard": r.shard,
                    "first_seen": r.first_seen,
                    "last_seen": r.last_seen,
                    "seen_ago_s": round(max(0.0, now - r.last_seen), 3),
                }
                for r in hub.registry
            ]
        }
    if topic == "rounds":
        rows = []
        for round_row, metrics, perf in hub.store.recent_rounds(last):
            row: dict[str, object] = {
                "round": round_row.round,
                "mode": round_row.mode,
                "status": round_row.status,
                "reason": round_row.reason,
                "duration_s": round_row.duration_s,
                "participants": round_row.participants,
                "survivors": round_row.survivors,
                "dropped": round_row.dropped,
            }
            if metrics is not None:
                row.update(
                    roc_auc=metrics.roc_auc,
                    pr_auc=metrics.pr_auc,
                    f1=metrics.f1,
                    precision=metrics.precision,
                    recall=metrics.recall,
                    logloss=_finite(metrics.logloss),
                )
            if perf is not None:
                row.update(
                    bytes_in=perf.bytes_in,
                    bytes_out=perf.bytes_out,
                    cpu_s=perf.cpu_s,
                    stages={k: v for k, v in perf.stage_s.items() if v},
                )
            rows.append(row)
        return {"rounds": rows}
    last_round: dict[str, object] | None = None
    if hub.last_outcome is not None:
        number, outcome, duration = hub.last_outcome
        last_round = {
            "round": number,
            "status": outcome.status,
            "reason": outcome.reason,
            "duration_s": duration,
            "participants": len(outcome.participants),
            "survivors": len(outcome.survivors),
            "stages": dict(outcome.stage_seconds),
        }
        recent = hub.store.recent_rounds(1)
        if recent and recent[0][1] is not None and recent[0][0].round == number:
            m = recent[0][1]
            last_round.update(roc_auc=m.roc_auc, pr_auc=m.pr_auc, f1=m.f1)
    if hub.running is not None:
        stage = f"round {hub.running[0]}: {hub.running[1]}"
    elif hub.done:
        stage = "done"
    else:
        stage = hub.waiting_note or "starting"
    return {
        "run": hub.run_id,
        "mode": hub.config.secagg,
        "stage": stage,
        "round": hub.running[0] if hub.running is not None else hub.next_round,
        "rounds_total": hub.config.rounds,
        "rounds_committed": hub.store.committed_round if hub.store.committed_round > 0 else 0,
        "min_peers": hub.config.min_peers,
        "peers_alive": len(hub.registry.alive()),
        "peers_known": len(hub.registry),
        "last_round": last_round,
        "transport": "curve" if hub.zap is not None else "plain",
        "keys_allowed": len(hub.zap.allow) if hub.zap is not None else 0,
        "auth_denied": hub.zap.denied if hub.zap is not None else 0,
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
