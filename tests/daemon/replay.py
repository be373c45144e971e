"""An independent replay of a hub's strategy from its state directory.

Reads updates.csv, round_log.csv, global_model.csv and optimizer.csv with
the csv module (not `daemon.state`), and replays each committed round's
recorded mean through `learner.strategy.server_step` from round 1, so that
what the hub wrote can be compared with it bit for bit.
"""

from __future__ import annotations

import csv
import struct
from collections.abc import Sequence
from pathlib import Path

from fedd.learner.strategy import ServerState, Strategy, server_step

__all__ = ["bits", "on_disk", "replay", "rows"]


def rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts by header; none if there is no file."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def bits(values: Sequence[float]) -> bytes:
    """The exact bits of `values`: equal bytes, equal floats (and 0.0 != -0.0)."""
    return struct.pack(f"<{len(values)}d", *values)


def replay(
    state_dir: Path, strategy: Strategy, *, through: int | None = None
) -> tuple[list[float], ServerState]:
    """The model and the strategy's state that updates.csv's means give, through
    `strategy` from round 1 up to round `through` (default: every row), each
    round's share of survivors from round_log.csv. Asserts that each recorded
    delta is the step the replay makes."""
    log = {int(r["round"]): r for r in rows(state_dir / "round_log.csv")}
    size = len(rows(state_dir / "global_model.csv"))
    updates = [
        r for r in rows(state_dir / "updates.csv") if through is None or int(r["round"]) <= through
    ]
    model, state = [0.0] * size, ServerState.initial(strategy, size)
    for start in range(0, len(updates), size):
        mine = updates[start : start + size]
        number = int(mine[0]["round"])
        assert {r["round"] for r in mine} == {str(number)}, f"round {number}: {size} rows"
        share = int(log[number]["survivors"]) / int(log[number]["participants"])
        control = [float(r["control"]) for r in mine] if strategy.controls else None
        step, state = server_step(strategy, state, [float(r["mean"]) for r in mine], control, share)
        assert bits(step) == bits([float(r["delta"]) for r in mine]), f"round {number}"
        model = [m + d for m, d in zip(model, step, strict=True)]
    return model, state


def on_disk(state_dir: Path) -> tuple[int, list[float], ServerState | None]:
    """global_model.csv's round and model, and optimizer.csv's state (None without it)."""
    model = rows(state_dir / "global_model.csv")
    kept = rows(state_dir / "optimizer.csv")
    state = None
    if kept:
        columns = ("momentum", "second_moment", "control")
        state = ServerState(*(tuple(float(r[c]) for r in kept) for c in columns))
    return int(model[0]["round"]), [float(r["value"]) for r in model], state
