"""The hub-store tests' run: its features, a started store, its commits and a crash."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedd.daemon.state.commits import Commit
from fedd.daemon.state.csvfile import append_rows
from fedd.daemon.state.hubfiles import (
    CLIENT_PERF,
    METRICS_LOG,
    PERF_LOG,
    ROUND_LOG,
    UPDATES,
    ClientPerfRow,
    MetricsRow,
    PerfRow,
    RoundRow,
)
from fedd.daemon.state.statistics import Statistics
from fedd.daemon.state.store import HubStore
from fedd.daemon.state.survivors import SurvivorRow
from fedd.learner.scaling import ColumnStats

FEATURES = ("Time", "V1", "Amount")
T0 = 1_700_000_000.25


DELTA = (0.5, -1.25, 2.0, 1 / 3)


def metrics_row(r: int, source: str = "test", committed_in: int | None = None) -> MetricsRow:
    """Scores of round `r`'s model from `source`, committed in `committed_in` (default `r`)."""
    peers, rows = (3, 600) if source == "federated" else (0, 200)
    bound = 0.015625 if source == "federated" else 0.0
    return MetricsRow(
        r,
        source,
        r if committed_in is None else committed_in,
        peers,
        rows,
        12,
        0.9,
        bound,
        0.4,
        bound,
        0.5,
        0.25,
        1 / 3,
        0.5,
        0.375,
        0.4,
        0.1,
    )


def statistics(r: int) -> Statistics:
    """The statistics a statistics round `r` computes of FEATURES."""
    columns = [ColumnStats("Time", 94813.5, 47488.25), ColumnStats("V1", 0.0, 1.0, "zero variance")]
    return Statistics((*columns, ColumnStats("Amount", 88.25, 250.5)), r, 3, 900, 15)


def make_commit(
    r: int,
    delta: Sequence[float] = DELTA,
    *,
    previous: Sequence[float] | None = None,
    metrics: bool = True,
    scores: Sequence[int] = (),
    peers: Sequence[str] = ("p1", "p2"),
    status: str = "ok",
    kind: str = "training",
) -> Commit:
    """Round `r` of `kind`, applying `delta` to `previous` (zeros if None) if it is an ok
    training round; a training round has test scores of its model if `metrics`, and any
    round federated scores of the models of the training rounds `scores`."""
    base = list(previous) if previous is not None else [0.0] * len(delta)
    ok = status == "ok"
    applied = tuple(delta) if ok and kind == "training" else None
    model = base if applied is None else [m + d for m, d in zip(base, applied, strict=True)]
    rows = [metrics_row(s, "federated", r) for s in scores]
    if metrics and kind == "training":
        rows.append(metrics_row(r))
    return Commit(
        round=RoundRow(
            r,
            kind,
            "plus",
            T0 + r,
            0.5,
            len(peers) + 1,
            len(peers),
            1,
            status,
            "" if ok else "too few",
        ),
        model=model,
        metrics=rows,
        perf=PerfRow(r, 1.5, 0.75, {"train_upload": 1.0, "unmask": 0.125}, 0.0625, 1000, 2000),
        clients=[ClientPerfRow(r, p, 100 + i, 0.5, 0.25, 4096) for i, p in enumerate(peers)],
        delta=applied,
        mean=applied,
        statistics=statistics(r) if ok and kind == "statistics" else None,
        survivors=[SurvivorRow(r, p) for p in peers] if ok else [],
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


def with_kinds(state_dir: Path) -> HubStore:
    """Round 1 computes the statistics, 2 and 3 train (3 aborts), 4 evaluates, 5 trains.

    metrics_log.csv: row 2 scores round 2's model on the test CSV (in round 2),
    row 3 by the peers (in round 4), row 4 round 5's on the test CSV (in 5).
    updates.csv: rows 2-5 are round 2's delta, rows 6-9 round 5's.
    run.csv: rows 8-11 are the provenance of stats.csv (rows 2-4, one per feature).
    """
    store = HubStore.open(state_dir)
    store.start("run-1", FEATURES, {"secagg": "plus"})
    commit_next(store, 1, kind="statistics")
    commit_next(store, 2)
    commit_next(store, 3, status="aborted", metrics=False)
    commit_next(store, 4, kind="evaluation", scores=[2])
    commit_next(store, 5, (0.25, 1e-300, -0.0, 7.0))
    return store


def crash_before_the_model(tmp_path: Path, store: HubStore, r: int, torn: str = "") -> None:
    """What a crash leaves between a training round's appends and its model write."""
    c = make_commit(r, previous=store.model)
    append_rows(tmp_path / "round_log.csv", ROUND_LOG, [c.round.values()])
    append_rows(tmp_path / "metrics_log.csv", METRICS_LOG, [m.values() for m in c.metrics])
    append_rows(tmp_path / "perf_log.csv", PERF_LOG, [c.perf.values()])
    append_rows(tmp_path / "client_perf.csv", CLIENT_PERF, [x.values() for x in c.clients])
    assert c.delta is not None
    updates = zip(("bias", *FEATURES), c.delta, strict=True)
    rows = [(r, n, d, d, math.nan) for n, d in updates]
    append_rows(tmp_path / "updates.csv", UPDATES, rows)
    if torn:
        with open(tmp_path / "client_perf.csv", "a") as f:
            f.write(torn)
