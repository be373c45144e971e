"""What a pause costs: the same step of a peer, back to back and after sleeping.

    python -m bench.wake [--peers 30] [--pauses 0,1,5,20] [--repeat 200] [--csv PATH]

A peer daemon sleeps between the hub's messages, while `fedd simulate` runs
every peer's steps back to back in one process. On a machine whose
processors go idle, or are shared with other work or other virtual
machines, a step run right after a sleep finds the caches cold and costs
more CPU time than the same step run back to back. This benchmark measures
that factor for one step of a SecAgg+ peer: a fresh round (the hub's default
shape for `--peers` peers, vectors of 2,208 64-bit lanes, a fresh graph seed)
whose session is built and started (two fresh X25519 key pairs), and whose
advertisement is encoded for the wire. It times the step's CPU time
(`time.thread_time`) `--repeat` times after each pause and prints the median,
the 10th and 90th percentiles, and the median as a multiple of the
back-to-back one: what part of `bench.rounds`' "x sim" the machine adds,
whatever the code does.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.peer import PeerSession
from fedd.crypto.secagg.shape import DEFAULT_CORRUPT, DEFAULT_DROPOUT, Floor, choose_shape
from fedd.daemon.transport import wire

__all__ = ["main"]

LANES = 2208  # a SecAgg+ training round's vector in bench.rounds (N = 30, d = 31)
MOD_BITS = 64


def _rounds(n: int, count: int) -> list[RoundParams]:
    """`count` rounds of `n` peers, each with its own graph seed, as a hub would start them."""
    shape = choose_shape(n, Mode.PLUS, dropout=DEFAULT_DROPOUT, corrupt=DEFAULT_CORRUPT)
    peers = tuple(sorted(PeerId(f"p{i}") for i in range(1, n + 1)))
    return [
        RoundParams(
            run="bench-wake",
            round=r,
            mode=Mode.PLUS,
            participants=peers,
            **shape._asdict(),
            graph_seed=os.urandom(32),
            dim=LANES,
            mod_bits=MOD_BITS,
        )
        for r in range(1, count + 1)
    ]


def _step(params: RoundParams, x: bytes, floor: Floor) -> None:
    session = PeerSession(params, params.participants[0], x, floor=floor)
    for message in session.start():
        wire.encode(message)


def measure(n: int, pauses_ms: Sequence[float], repeat: int) -> list[tuple[float, list[float]]]:
    """For each pause, the step's CPU seconds over `repeat` runs, each after that pause."""
    floor = Floor(DEFAULT_CORRUPT, DEFAULT_DROPOUT)
    x = bytes(LANES * MOD_BITS // 8)
    for params in _rounds(n, 20):  # warm-up: imports, caches of the round's shape
        _step(params, x, floor)
    results = []
    for pause in pauses_ms:
        seconds = []
        for params in _rounds(n, repeat):
            if pause:
                time.sleep(pause / 1000)
            started = time.thread_time()
            _step(params, x, floor)
            seconds.append(time.thread_time() - started)
        results.append((pause, seconds))
    return results


def _pauses(text: str) -> list[float]:
    try:
        pauses = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"pauses must be numbers of ms, got {text!r}") from None
    if not pauses or any(not 0 <= p <= 1000 for p in pauses):
        raise argparse.ArgumentTypeError("each pause must be between 0 and 1000 ms")
    return pauses


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--peers", type=int, default=30, help="peers in the round (3 to 1000)")
    parser.add_argument("--pauses", type=_pauses, default=[0.0, 1.0, 5.0, 20.0], help="ms")
    parser.add_argument("--repeat", type=int, default=200, help="steps per pause (10 to 10000)")
    parser.add_argument("--csv", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    if not 3 <= args.peers <= 1000 or not 10 <= args.repeat <= 10_000:
        parser.error("need 3 <= --peers <= 1000 and 10 <= --repeat <= 10000")
    results = measure(args.peers, args.pauses, args.repeat)
    base = statistics.median(results[0][1])
    print(
        f"wake benchmark: a SecAgg+ peer's session built and started, its advertisement "
        f"encoded (N = {args.peers}, {LANES} lanes), {args.repeat} times after each pause; "
        f"CPU time of the step"
    )
    print(f"{'pause ms':>9}{'median us':>11}{'p10 us':>9}{'p90 us':>9}{'x first':>9}")
    rows = []
    for pause, seconds in results:
        deciles = statistics.quantiles(seconds, n=10)
        median = statistics.median(seconds)
        rows.append((pause, median, deciles[0], deciles[-1], median / base))
        print(
            f"{pause:>9g}{median * 1e6:>11.1f}{deciles[0] * 1e6:>9.1f}{deciles[-1] * 1e6:>9.1f}"
            f"{median / base:>8.2f}x"
        )
    print(f"'x first': the median against the first pause's ({results[0][0]:g} ms)")
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["pause_ms", "median_us", "p10_us", "p90_us", "x_first", "peers"])
            for pause, median, p10, p90, ratio in rows:
                writer.writerow(
                    [pause, f"{median * 1e6:.1f}", f"{p10 * 1e6:.1f}", f"{p90 * 1e6:.1f}",
                     f"{ratio:.3f}", args.peers]
                )  # fmt: skip


if __name__ == "__main__":
    main()
