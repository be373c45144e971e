"""Secure-aggregation benchmarks, in sections selectable with --only.

    python -m bench.secagg [--only mask[,SECTION...]] [--csv PATH]
                           [--values N] [--masks K] [--repeats R]

Section "rounds": whole simulated rounds (`fedd simulate`'s driver: every
peer's and the hub's work, one after another in this process, every message
through the wire encoding) at d = 31 for N = 10 (SecAgg and SecAgg+) and
N = 100 (SecAgg+ and SecAgg), next to Flower 1.42 measured on this machine
in one process without its Ray engine, and the speed-up.

Section "large": N = 1000 peers, SecAgg+, d = 100,000, 10% dropping out at
mixed stages (one round), and N = 100 at the same d: wall time and the upload
expansion (bytes a peer sends in the round / bytes of its plain 32-bit vector).

Section "mask": the cost of one mask on the protocol's hot path, i.e.
expanding a seed into N 32-bit values and adding it into a running
`crypto.lanes.VectorSum`, per mask (K masks per repeat; best and median over
R repeats), next to numpy doing the same job (`acc += np.frombuffer(ks,
'<u4')` on the same keystream) and the ratio between them. Also the
per-round primitives around it: VectorSum.to_bytes, Shamir split (t=17,
n=30) and combine (t=17), and one X25519 exchange.

numpy appears only here, as the yardstick; fedd itself never imports it.
Each section checks that the work it timed gives the same bytes as the
reference before it reports a number.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.tables import write_csv
from fedd.crypto import prg, shamir
from fedd.crypto.keys import AgreementKey
from fedd.crypto.lanes import VectorSum
from fedd.simulate import SimConfig, run_simulation

__all__ = ["SECTIONS", "RoundRow", "Row", "main"]


@dataclass(frozen=True, slots=True)
class Row:
    """One measured case: milliseconds per item, best and median over repeats."""

    section: str
    case: str
    best_ms: float
    median_ms: float
    vs_numpy: float | None = None  # fedd best / numpy best, for mask cases


@dataclass(frozen=True, slots=True)
class RoundRow:
    """Whole simulated rounds of one configuration (seconds: median over rounds)."""

    section: str
    case: str
    peers: int
    dim: int
    rounds: int
    round_s: float
    hub_s: float
    peer_s: float
    up_bytes: int
    upload_expansion: float
    flower_s: float | None = None

    @property
    def speedup(self) -> float | None:
        return None if self.flower_s is None else self.flower_s / self.round_s


Section = Callable[[argparse.Namespace], list[Any]]


def _time_per_item(
    run: Callable[[], object], items: int, repeats: int, setup: Callable[[], object] | None = None
) -> tuple[float, float]:
    """(best, median) milliseconds per item of `run`, which processes `items` items."""
    samples = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3 / items)
    return min(samples), statistics.median(samples)


def _time_interleaved(
    cases: dict[str, Callable[[], object]], items: int, repeats: int
) -> dict[str, tuple[float, float]]:
    """`_time_per_item` for several cases, taking turns within each repeat so
    that load from elsewhere on the machine hits all of them alike. Each turn
    runs its case once untimed first: the running sum it adds into is then
    warm, as in a round where masks follow one another."""
    samples: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(repeats):
        for label, run in cases.items():
            run()
            start = time.perf_counter()
            run()
            samples[label].append((time.perf_counter() - start) * 1e3 / items)
    return {label: (min(v), statistics.median(v)) for label, v in samples.items()}


def _seeds(k: int) -> list[bytes]:
    return [hashlib.sha256(b"bench-mask-%d" % i).digest() for i in range(k)]


def _numpy() -> Any:
    """numpy, or None when the [bench] extra is not installed."""
    try:
        return importlib.import_module("numpy")
    except ImportError:
        print("numpy is not installed: no numpy comparison", file=sys.stderr)
        return None


def _mask_section(args: argparse.Namespace) -> list[Row]:
    np = _numpy()
    n, k, repeats = args.values, args.masks, args.repeats
    seeds = _seeds(k)
    rows: list[Row] = []
    shape = f"{n:,} x u32"

    for kind in (prg.PrgKind.AES_CTR, prg.PrgKind.CHACHA20):
        name = kind.value
        total = VectorSum(n)

        def keystream(kind: prg.PrgKind = kind) -> None:
            for seed in seeds:
                prg.expand(seed, n, 4, kind)

        def add_expanded(kind: prg.PrgKind = kind, total: VectorSum = total) -> None:
            for seed in seeds:
                total.add(prg.expand(seed, n, 4, kind))

        def add_mask(kind: prg.PrgKind = kind, total: VectorSum = total) -> None:
            for seed in seeds:
                total.add_mask(seed, kind)

        def add_masks(kind: prg.PrgKind = kind, total: VectorSum = total) -> None:
            total.add_masks(seeds, kind)

        def subtract_masks(kind: prg.PrgKind = kind, total: VectorSum = total) -> None:
            total.subtract_masks(seeds, kind)

        cases: dict[str, Callable[[], object]] = {
            f"keystream only ({name}, {shape})": keystream,
            f"VectorSum.add(expand(seed)) ({name})": add_expanded,
            f"VectorSum.add_mask(seed) ({name})": add_mask,
            f"VectorSum.add_masks({k} seeds) ({name})": add_masks,
            f"VectorSum.subtract_masks({k} seeds) ({name})": subtract_masks,
        }
        numpy_case = f"numpy acc += frombuffer(expand(seed)) ({name})"
        if np is not None:
            acc = np.zeros(n, dtype="<u4")

            def numpy_add(kind: prg.PrgKind = kind, acc: Any = acc) -> None:
                for seed in seeds:
                    acc += np.frombuffer(prg.expand(seed, n, 4, kind), dtype="<u4")

            cases[numpy_case] = numpy_add
            _check_against_numpy(np, seeds, n, kind)
        timings = _time_interleaved(cases, k, repeats)
        numpy_best = timings[numpy_case][0] if numpy_case in timings else None
        for label, (best, median) in timings.items():
            is_sum = label.startswith("VectorSum") or label == numpy_case
            ratio = best / numpy_best if numpy_best and is_sum else None
            rows.append(Row("mask", label, best, median, ratio))

    summed = VectorSum(n)

    def fill() -> None:
        nonlocal summed
        summed = VectorSum(n)
        summed.add_masks(seeds[:2])
        summed.subtract_mask(seeds[-1])

    def reduce() -> None:
        summed.to_bytes()  # the sum `fill` built for this repeat

    rows.append(
        Row(
            "mask",
            f"VectorSum.to_bytes after adds and a subtract ({shape})",
            *_time_per_item(reduce, 1, repeats, setup=fill),
        )
    )
    rows.extend(_shamir_rows(repeats))
    rows.append(_x25519_row(repeats))
    return rows


def _check_against_numpy(np: Any, seeds: Sequence[bytes], n: int, kind: prg.PrgKind) -> None:
    """Refuse to report timings for work whose result differs from numpy's."""
    acc = np.zeros(n, dtype="<u4")
    for seed in seeds:
        acc += np.frombuffer(prg.expand(seed, n, 4, kind), dtype="<u4")
    one_by_one, batched = VectorSum(n), VectorSum(n)
    for seed in seeds:
        one_by_one.add_mask(seed, kind)
    batched.add_masks(seeds, kind)
    if not one_by_one.to_bytes() == batched.to_bytes() == acc.tobytes():
        raise SystemExit(f"VectorSum and numpy disagree on the {kind.value} mask sum")


def _shamir_rows(repeats: int) -> list[Row]:
    secret = hashlib.sha256(b"bench-secret").digest()
    t, xs, iterations = 17, list(range(1, 31)), 100
    shares = shamir.split(secret, t=t, xs=xs)
    if shamir.combine(shares[:t], t=t) != secret or shamir.combine(shares, t=t) != secret:
        raise SystemExit("Shamir round trip failed")

    def split() -> None:
        for _ in range(iterations):
            shamir.split(secret, t=t, xs=xs)

    def combine_t() -> None:
        for _ in range(iterations):
            shamir.combine(shares[:t], t=t)

    def combine_all() -> None:
        for _ in range(iterations):
            shamir.combine(shares, t=t)

    return [
        Row("mask", "Shamir split (t=17, n=30)", *_time_per_item(split, iterations, repeats)),
        Row(
            "mask", "Shamir combine (t=17 shares)", *_time_per_item(combine_t, iterations, repeats)
        ),
        Row(
            "mask",
            "Shamir combine (t=17, all 30 shares checked)",
            *_time_per_item(combine_all, iterations, repeats),
        ),
    ]


def _x25519_row(repeats: int) -> Row:
    mine, theirs = AgreementKey.generate(), AgreementKey.generate()
    if mine.exchange(theirs.public) != theirs.exchange(mine.public):
        raise SystemExit("X25519 exchange is not symmetric")
    iterations = 500

    def exchange() -> None:
        for _ in range(iterations):
            mine.exchange(theirs.public)

    return Row("mask", "X25519 exchange", *_time_per_item(exchange, iterations, repeats))


# Flower 1.42 on this machine, one process, no Ray, d = 31 (seconds per round).
FLOWER_S = {("full", 10): 0.60, ("plus", 10): 0.24, ("plus", 100): 5.1, ("full", 100): 282.0}


def _simulated(section: str, config: SimConfig, flower: float | None = None) -> RoundRow:
    reports = list(run_simulation(config))
    bad = [r for r in reports if not r.correct or r.status != "ok"]
    if bad:
        raise SystemExit(f"{config}: round {bad[0].round} {bad[0].status}: {bad[0].reason}")
    plain = 4 * config.dim
    return RoundRow(
        section=section,
        case=f"{config.mode} N={config.peers} d={config.dim}"
        + (f" dropout={config.dropout:g}" if config.dropout else ""),
        peers=config.peers,
        dim=config.dim,
        rounds=len(reports),
        round_s=statistics.median(r.round_seconds for r in reports),
        hub_s=statistics.median(r.hub_seconds for r in reports),
        peer_s=statistics.median(r.peer_seconds_median for r in reports),
        up_bytes=int(statistics.median(r.peer_bytes_up_median for r in reports)),
        upload_expansion=statistics.median(r.peer_bytes_up_median for r in reports) / plain,
        flower_s=flower,
    )


def _rounds_section(args: argparse.Namespace) -> list[RoundRow]:
    rows = []
    for (mode, n), flower in FLOWER_S.items():
        rounds = 3 if (mode, n) == ("full", 100) else args.repeats
        config = SimConfig(peers=n, mode=mode, dim=31, rounds=rounds, seed=1)
        rows.append(_simulated("rounds", config, flower))
    return rows


def _large_section(args: argparse.Namespace) -> list[RoundRow]:
    return [
        _simulated(
            "large", SimConfig(peers=n, mode="plus", dim=100_000, dropout=0.1, rounds=1, seed=1)
        )
        for n in (100, 1000)
    ]


SECTIONS: dict[str, Section] = {
    "mask": _mask_section,
    "rounds": _rounds_section,
    "large": _large_section,
}


def _print_table(rows: Sequence[Row]) -> None:
    width = max(len(r.case) for r in rows)
    print(f"{'section':<8} {'case':<{width}} {'best ms':>10} {'median ms':>10} {'vs numpy':>9}")
    for r in rows:
        ratio = f"{r.vs_numpy:.2f}x" if r.vs_numpy is not None else ""
        print(
            f"{r.section:<8} {r.case:<{width}} {r.best_ms:>10.4f} {r.median_ms:>10.4f} {ratio:>9}"
        )


def _print_rounds(rows: Sequence[RoundRow]) -> None:
    width = max(len(r.case) for r in rows)
    print(
        f"{'section':<8} {'case':<{width}} {'rounds':>6} {'round s':>9} {'hub s':>8} "
        f"{'peer s':>8} {'up bytes':>10} {'up/plain':>8} {'flower s':>9} {'speed-up':>8}"
    )
    for r in rows:
        flower = f"{r.flower_s:.2f}" if r.flower_s is not None else ""
        speedup = f"{r.speedup:.1f}x" if r.speedup is not None else ""
        print(
            f"{r.section:<8} {r.case:<{width}} {r.rounds:>6} {r.round_s:>9.4f} {r.hub_s:>8.4f} "
            f"{r.peer_s:>8.4f} {r.up_bytes:>10} {r.upload_expansion:>8.4f} {flower:>9} "
            f"{speedup:>8}"
        )


def _write_csv(rows: Sequence[Any], path: Path) -> None:
    """One CSV per kind of row: PATH for the mask rows, PATH-rounds.csv for round rows."""
    groups: dict[type, list[Any]] = {}
    for row in rows:
        groups.setdefault(type(row), []).append(row)
    for kind, group in groups.items():
        target = path if kind is Row else path.with_name(f"{path.stem}-rounds{path.suffix}")
        write_csv(group, target)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected sections, print one table, optionally write CSV."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.secagg",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--csv", type=Path, help="also write the rows to this CSV file")
    parser.add_argument(
        "--values", type=_positive, default=1_000_000, help="values per mask (default 1,000,000)"
    )
    parser.add_argument("--masks", type=_positive, default=8, help="masks per repeat")
    parser.add_argument("--repeats", type=_positive, default=7, help="repeats per case")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown or not chosen:
        parser.error(
            f"unknown section {', '.join(unknown) or '(none)'}; choose from {', '.join(SECTIONS)}"
        )
    rows = [row for name in chosen for row in SECTIONS[name](args)]
    mask_rows = [r for r in rows if isinstance(r, Row)]
    round_rows = [r for r in rows if isinstance(r, RoundRow)]
    if mask_rows:
        _print_table(mask_rows)
    if round_rows:
        _print_rounds(round_rows)
    if args.csv is not None:
        _write_csv(rows, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
