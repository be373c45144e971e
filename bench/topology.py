"""Benchmark of `topology`: graph construction, look-ups and parameter choice.

Run with `python -m bench.topology [--repeat R] [--csv PATH]`. Each timing is
the best of R runs on freshly generated ids; memory is the tracemalloc peak of
one build (a separate run, since tracing slows Python down).

Rows:
- `harary`: `harary_graph` for n peers and degree k (k from `choose_parameters`
  at 5% corruption and 5% dropout, and the fixed k = 40 of the target case).
- `complete`: `complete_graph` (SecAgg), whose memory grows as n^2.
- `choose`: `choose_parameters` for the given fractions.
"""

from __future__ import annotations

import argparse
import hashlib
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bench.tables import print_rows, write_csv
from fedd.topology import PeerGraph, choose_parameters, complete_graph, harary_graph

__all__ = ["main"]

SEED = hashlib.sha256(b"bench.topology").digest()


@dataclass
class Row:
    kind: str
    n: int
    k: int
    t: str
    corrupt: str
    dropout: str
    time_ms: str
    peak_mib: str
    lookup_ns: str
    connected_ms: str


def _best(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _peak_mib(run: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        keep = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del keep
    return peak / 2**20


def _ids(n: int) -> list[str]:
    return [f"peer-{i:06d}" for i in range(n)]


def _graph_row(
    kind: str, n: int, k: int, t: str, *, build: Callable[[], PeerGraph[str]], repeat: int
) -> Row:
    build_s = _best(repeat, build)
    peak = _peak_mib(build)
    graph = build()
    probes = [graph.nodes[(i * 7919) % n] for i in range(10_000)]

    def lookups() -> None:
        for node in probes:
            graph.neighbours(node)

    lookup_s = _best(repeat, lookups) / len(probes)
    connected_s = _best(repeat, graph.is_connected)
    return Row(
        kind=kind,
        n=n,
        k=k,
        t=t,
        corrupt="0.05" if t else "",
        dropout="0.05" if t else "",
        time_ms=f"{build_s * 1e3:.1f}",
        peak_mib=f"{peak:.1f}",
        lookup_ns=f"{lookup_s * 1e9:.0f}",
        connected_ms=f"{connected_s * 1e3:.1f}",
    )


def run(repeat: int) -> list[Row]:
    """Measure every case and return the rows in table order."""
    rows: list[Row] = []
    for n in (100, 1000, 10_000):
        ids = _ids(n)
        params = choose_parameters(n, corrupt=0.05, dropout=0.05)
        cases = [(params.k, str(params.t))] + ([(40, "")] if params.k != 40 else [])
        for k, t in cases:
            rows.append(
                _graph_row(
                    "harary",
                    n,
                    k,
                    t,
                    build=partial(harary_graph, ids, k, SEED),
                    repeat=repeat,
                )
            )
    for n in (100, 1000, 3000):
        ids = _ids(n)
        rows.append(
            _graph_row("complete", n, n - 1, "", build=partial(complete_graph, ids), repeat=repeat)
        )
    for n, corrupt, dropout in (
        (100, 0.05, 0.05),
        (1000, 0.05, 0.05),
        (10_000, 0.05, 0.05),
        (100_000, 0.05, 0.05),
        (10_000, 0.33, 0.33),
        (10_000, 0.45, 0.45),
    ):
        chosen = choose_parameters(n, corrupt=corrupt, dropout=dropout)
        seconds = _best(repeat, partial(choose_parameters, n, corrupt=corrupt, dropout=dropout))
        rows.append(
            Row(
                kind="choose",
                n=n,
                k=chosen.k,
                t=str(chosen.t),
                corrupt=str(corrupt),
                dropout=str(dropout),
                time_ms=f"{seconds * 1e3:.1f}",
                peak_mib="",
                lookup_ns="",
                connected_ms="",
            )
        )
    return rows


def _print_table(rows: list[Row]) -> None:
    print_rows(rows)
    print("time_ms: one build (for `choose`: one choose_parameters call), best of --repeat;")
    print("lookup_ns is one neighbours() call; peak_mib is the tracemalloc peak of a build.")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: print the table and optionally write it as CSV."""
    parser = argparse.ArgumentParser(prog="python -m bench.topology", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best is kept)")
    parser.add_argument("--csv", metavar="PATH", help="also write the rows to this CSV file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    rows = run(args.repeat)
    _print_table(rows)
    if args.csv:
        write_csv(rows, args.csv)


if __name__ == "__main__":
    main()
