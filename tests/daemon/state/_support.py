"""The hub-store tests' run: its features, a started store, its commits and a crash."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedd.daemon.state.csvfile import append_rows
from fedd.daemon.state.hubfiles import (
    CLIENT_PERF,
    METRICS_LOG,
    PERF_LOG,
    ROUND_LOG,
    UPDATES,
    ClientPerfRow,
    Commit,
    MetricsRow,
    PerfRow,
    RoundRow,
)
from fedd.daemon.state.store import HubStore

FEATURES = ("Time", "V1", "Amount")
T0 = 1_700_000_000.25


DELTA = (0.5, -1.25, 2.0, 1 / 3)


def make_commit(
    r: int,
    delta: Sequence[float] = DELTA,
    *,
    previous: Sequence[float] | None = None,
    metrics: bool = True,
    peers: Sequence[str] = ("p1", "p2"),
    status: str = "ok",
) -> Commit:
    """Round `r`, applying `delta` to `previous` (zeros if None); an aborted round applies none."""
    base = list(previous) if previous is not None else [0.0] * len(delta)
    applied = None if status == "aborted" else tuple(delta)
    model = base if applied is None else [m + d for m, d in zip(base, applied, strict=True)]
    return Commit(
        round=RoundRow(
            r,
            "plus",
            T0 + r,
            0.5,
            len(peers) + 1,
            len(peers),
            1,
            status,
            "" if status == "ok" else "too few",
        ),
        model=model,
        metrics=MetricsRow(r, 0.9, 0.4, 0.5, 0.25, 1 / 3, 0.1) if metrics else None,
        perf=PerfRow(r, 1.5, 0.75, {"train_upload": 1.0, "unmask": 0.125}, 0.0625, 1000, 2000),
        clients=[ClientPerfRow(r, p, 100 + i, 0.5, 0.25, 4096) for i, p in enumerate(peers)],
        delta=applied,
    )


def commit_next(store: HubStore, r: int, delta: Sequence[float] = DELTA, **kw: Any) -> None:
    """Commit round `r` on top of the store's model."""
    store.commit(make_commit(r, delta, previous=store.model, **kw))


def started(state_dir: Path, rounds: int = 0) -> HubStore:
    store = HubStore.open(state_dir)
    store.start("run-1", FEATURES, {"secagg": "plus", "eval_test": "data/test, v2.csv"})
    for r in range(rounds):
        commit_next(store, r, metrics=r != 1)
    return store


def crash_before_the_model(tmp_path: Path, store: HubStore, r: int, torn: str = "") -> None:
    """What a crash leaves between a round's appends and its model write."""
    c = make_commit(r, previous=store.model)
    append_rows(tmp_path / "round_log.csv", ROUND_LOG, [c.round.values()])
    assert c.metrics is not None
    append_rows(tmp_path / "metrics_log.csv", METRICS_LOG, [c.metrics.values()])
    append_rows(tmp_path / "perf_log.csv", PERF_LOG, [c.perf.values()])
    append_rows(tmp_path / "client_perf.csv", CLIENT_PERF, [x.values() for x in c.clients])
    assert c.delta is not None
    updates = zip(("bias", *FEATURES), c.delta, strict=True)
    append_rows(tmp_path / "updates.csv", UPDATES, [(r, n, d) for n, d in updates])
    if torn:
        with open(tmp_path / "client_perf.csv", "a") as f:
            f.write(torn)
