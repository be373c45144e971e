"""Benchmark of the daemons' CSV state: the cost of a commit and of opening a long run.

Run with `python -m bench.store [--repeat R] [--dir DIR] [--csv PATH]`.

Rows:
- `commit`: `HubStore.commit` of one round with `peers` client rows (six
  logs' rows and the new model fsynced side by side, then the model's rename
  and the directory's fsync); median over `--repeat`*10 rounds. 30 features.
- `open`: `HubStore.open` of a state directory holding `rounds` committed
  rounds of `peers` client rows each, every file read and fully validated;
  best of `--repeat`.
- `peer_open`: `PeerState.open` of a peer with `rounds` logged rounds.

Timings depend on the file system under `--dir` (default: a temporary
directory there, made and removed by the run); fsync on tmpfs costs nothing,
so measure on the disk the daemons will use.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.tables import print_rows, write_csv
from fedd.daemon.state.commits import Commit
from fedd.daemon.state.csvfile import write_table
from fedd.daemon.state.hubfiles import (
    CLIENT_PERF,
    METRICS_LOG,
    MODEL,
    PERF_LOG,
    ROUND_LOG,
    UPDATES,
    ClientPerfRow,
    MetricsRow,
    PerfRow,
    RoundRow,
)
from fedd.daemon.state.store import HubStore
from fedd.daemon.state.survivors import SURVIVORS, SurvivorRow
from fedd.peer.state import ROUNDS, PeerRoundRow, PeerState

__all__ = ["main"]

FEATURES = tuple(["Time", *(f"V{i}" for i in range(1, 29)), "Amount"])
T0 = 1_700_000_000.123456


@dataclass
class Row:
    case: str
    rounds: int
    peers: int
    rows_read: str
    state_kib: str
    time_ms: str


def _commit(r: int, peers: int, previous: list[float]) -> Commit:
    ids = [f"peer-{i:05d}" for i in range(peers)]
    delta = [((r % 7) - 3 + i / 31) / 3e4 for i in range(len(FEATURES) + 1)]
    return Commit(
        RoundRow(r, "training", "plus", T0 + r, 2.5 + r / 7, peers, peers, 0, "ok", ""),
        [m + d for m, d in zip(previous, delta, strict=True)],
        [_scores(r, "test", r), *([_scores(r - 1, "federated", r)] if r else [])],
        PerfRow(r, 2.5, 1.25, {"train_upload": 1.0, "unmask": 0.5 + r / 1e5}, 0.125, 10**6, 10**6),
        [ClientPerfRow(r, p, 1000 + i, 0.5 + i / 1e3, 0.4, 4096) for i, p in enumerate(ids)],
        delta,
        mean=delta,
        survivors=[SurvivorRow(r, p) for p in ids],
    )


def _scores(r: int, source: str, committed_in: int) -> MetricsRow:
    """Round `r`'s model scored on the test CSV, or a round later by the peers."""
    return MetricsRow(
        r, source, committed_in, 10, 5000, 40, 0.93 + r / 1e6, 0.0, 0.71, 0.0, 0.8, 0.6,
        0.6857142857142857, 0.5, 0.4375, 0.7, 0.0042,
    )  # fmt: skip


def _commits(rounds: int, peers: int) -> list[Commit]:
    """`rounds` consecutive commits from the zero model."""
    model, commits = [0.0] * (len(FEATURES) + 1), []
    for r in range(rounds):
        commits.append(_commit(r, peers, model))
        model = list(commits[-1].model)
    return commits


def _kib(path: Path) -> str:
    return f"{sum(p.stat().st_size for p in path.iterdir()) / 1024:.0f}"


def bench_commit(base: Path, peers: int, repeat: int) -> Row:
    state_dir = base / f"commit-{peers}"
    store = HubStore.open(state_dir)
    store.start("bench", FEATURES, {"secagg": "plus"})
    times = []
    for commit in _commits(10 * repeat, peers):
        started = time.perf_counter()
        store.commit(commit)
        times.append(time.perf_counter() - started)
    return Row(
        "commit", 10 * repeat, peers, "-", _kib(state_dir), f"{statistics.median(times) * 1e3:.2f}"
    )


def _long_run(state_dir: Path, rounds: int, peers: int) -> int:
    """Write what `rounds` commits would leave, directly (commits would take minutes)."""
    store = HubStore.open(state_dir)
    store.start("bench", FEATURES, {"secagg": "plus"})
    commits = _commits(rounds, peers)
    write_table(state_dir / ROUND_LOG.name, ROUND_LOG, [c.round.values() for c in commits])
    write_table(
        state_dir / METRICS_LOG.name,
        METRICS_LOG,
        [row.values() for c in commits for row in c.metrics],
    )
    write_table(state_dir / PERF_LOG.name, PERF_LOG, [c.perf.values() for c in commits])
    write_table(
        state_dir / CLIENT_PERF.name, CLIENT_PERF, [x.values() for c in commits for x in c.clients]
    )
    write_table(
        state_dir / SURVIVORS.name, SURVIVORS, [x.values() for c in commits for x in c.survivors]
    )
    names = ("bias", *FEATURES)
    write_table(
        state_dir / UPDATES.name,
        UPDATES,
        [
            (c.round.round, n, d, d, math.nan)
            for c in commits
            for n, d in zip(names, c.delta or (), strict=True)
        ],
    )
    last = commits[-1]
    write_table(
        state_dir / MODEL.name,
        MODEL,
        [(last.round.round, n, v) for n, v in zip(names, last.model, strict=True)],
    )
    # A round has a round_log row, a perf row, two metrics rows (the first round one),
    # its client rows and its delta; then the model.
    return rounds * (4 + peers + len(names)) - 1 + len(names)


def bench_open(base: Path, rounds: int, peers: int, repeat: int) -> Row:
    state_dir = base / f"open-{rounds}-{peers}"
    rows = _long_run(state_dir, rounds, peers)
    best = min(_timed(lambda: HubStore.open(state_dir)) for _ in range(repeat))
    store = HubStore.open(state_dir)
    if store.committed_round != rounds - 1 or store.reconciled:
        raise RuntimeError("the benchmark's state directory did not open as written")
    return Row("open", rounds, peers, str(rows), _kib(state_dir), f"{best * 1e3:.1f}")


def bench_peer_open(base: Path, rounds: int, repeat: int) -> Row:
    state_dir = base / f"peer-{rounds}"
    PeerState.open(state_dir, peer_id="bench")
    log = [
        PeerRoundRow(
            r,
            "training",
            "plus",
            "ok",
            "",
            5000,
            1.5,
            1.25,
            0.05 + r / 1e6,
            0.9,
            10**5,
            10**5,
            T0 + r,
            0.01,
        )
        for r in range(rounds)
    ]
    write_table(state_dir / ROUNDS.name, ROUNDS, [row.values() for row in log])
    best = min(_timed(lambda: PeerState.open(state_dir)) for _ in range(repeat))
    if len(PeerState.open(state_dir).rounds()) != rounds:
        raise RuntimeError("the benchmark's peer directory did not open as written")
    return Row("peer_open", rounds, 1, str(rounds), _kib(state_dir), f"{best * 1e3:.1f}")


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(base: Path, repeat: int) -> list[Row]:
    rows = [bench_commit(base, peers, repeat) for peers in (10, 100, 1000)]
    rows += [
        bench_open(base, rounds, peers, repeat)
        for rounds, peers in ((100, 10), (1000, 10), (1000, 100))
    ]
    rows += [bench_peer_open(base, rounds, repeat) for rounds in (1000, 10000)]
    return rows


def _print_table(rows: list[Row]) -> None:
    print_rows(rows)
    print("commit: median ms per round; open, peer_open: best ms of --repeat; rows_read: CSV rows")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: print the table and optionally write it as CSV."""
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where to make the state")
    parser.add_argument("--csv", metavar="PATH", help="also write the rows to this CSV file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    base = Path(tempfile.mkdtemp(prefix=".bench-store-", dir=args.dir))
    try:
        rows = run(base, args.repeat)
    finally:
        shutil.rmtree(base)
    _print_table(rows)
    if args.csv:
        write_csv(rows, args.csv)


if __name__ == "__main__":
    main()
