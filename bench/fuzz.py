"""A time-bounded fuzzing campaign against the wire and both daemons' message handling.

    python -m bench.fuzz [--seconds 120] [--seed 1] [--targets wire,hub,participant,peer]
                         [--csv PATH]

The budget is shared equally by the targets; each runs the seeded mutation
fuzzer of tests/daemon/hostile.py over frames recorded from an honest
federation (every message type, both directions), so a run is reproducible
from its seed up to timing:

- wire: mutated frames into `wire.decode`. Only MalformedMessage may escape,
  and what decodes must re-encode to itself.
- hub: an in-process federation (real hub, real peers; plain, SecAgg or
  SecAgg+, 3 to 5 peers) runs one training round, with its statistics round
  before and its evaluation rounds after, while outsiders (a stranger and a
  registered non-participant) send mutated frames, recorded frames and
  Hello/Bye cycles at random moments. Nothing may escape the hub's handler
  and every round must end ok with every honest peer.
- participant: one participant's frames are mutated on their way to the hub.
  Nothing may escape; every round of a run with two training rounds must
  end (ok, or aborted with a reason).
- peer: the hub's frames to one peer are mutated, replaced or joined by
  mutants. Nothing may escape the peer's handler; the rounds must end.

Prints one row per target: cases (frames for wire, federations otherwise),
frames fuzzed, distinct refusal reasons seen (a rough measure of how much of
the validation was reached), and failures. A failure prints the seed and the
exception; the exit status is 1 if there was any.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import random
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path

from fedd.crypto.secagg.fields import PeerId
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.membership import Bye, Hello
from tests.daemon.hostile import InProcessFederation, Mutator, Recorded, record

__all__ = ["main"]

TARGETS = ("wire", "hub", "participant", "peer")
RUN = "run-fuzz"
FEATURES = ("V1", "V2", "V3")


@dataclass
class Row:
    target: str
    seconds: float
    cases: int = 0
    frames: int = 0
    reasons: int = 0
    failures: int = 0


@dataclass
class _Tally:
    reasons: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)

    def reason(self, exc: Exception) -> None:
        # Numbers and quoted values vary; the shape of the reason is what counts.
        self.reasons.add(re.sub(r"'[^']*'|\d+", "_", str(exc))[:80])


class _Reasons(logging.Handler):
    """Collects the daemons' 'dropped ...: reason' log lines as refusal reasons."""

    def __init__(self, tally: _Tally) -> None:
        super().__init__(logging.INFO)
        self.tally = tally

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "dropped" in message or "rejected" in message or "left the protocol" in message:
            self.tally.reasons.add(re.sub(r"'[^']*'|\d+", "_", message.split(": ", 1)[-1])[:80])


def _fuzz_wire(corpus: list[bytes], seed: int, deadline: float, row: Row, tally: _Tally) -> None:
    mutator = Mutator(corpus, seed=seed)
    while time.monotonic() < deadline:
        for frame in mutator.frames(500):
            row.frames += 1
            try:
                msg = wire.decode(frame)
            except wire.MalformedMessage as exc:
                tally.reason(exc)
                continue
            except Exception:
                tally.failures.append(f"wire seed {seed}: {frame.hex()}\n{traceback.format_exc()}")
                continue
            if wire.decode(wire.encode(msg)) != msg:
                tally.failures.append(f"wire seed {seed}: does not re-encode: {frame.hex()}")
    row.cases = row.frames


def _hub_case(root: Path, corpus: list[bytes], seed: int, row: Row) -> None:
    rng = random.Random(seed)
    mutator = Mutator(corpus, seed=seed)
    mode = rng.choice(["off", "full", "plus"])
    peers = rng.choice([3, 4, 5])
    with InProcessFederation(root, peers=peers, rounds=1, secagg=mode, run_id=RUN) as fed:
        fed.run_until(lambda: fed.hub.rounds.current is not None)
        while not fed.hub.rounds.done:
            # Rounds start only in the hub's tick (in `step`): mallory registers
            # afresh while a round runs and leaves before the tick, so that no
            # round counts it in, whatever its frames did meanwhile.
            fed.to_hub(b"r-mallory", wire.encode(Hello("", 0, PeerId("mallory"), FEATURES)))
            for _ in range(rng.randrange(0, 40)):
                sender = rng.choice([b"stranger", b"r-mallory", b"cycler"])
                roll = rng.random()
                if roll < 0.05 and sender == b"cycler":
                    hello = Hello("", 0, PeerId(f"c{row.frames}"), FEATURES)
                    fed.to_hub(sender, wire.encode(hello))
                    frame = wire.encode(Bye("", 0))
                elif roll < 0.2:
                    frame = rng.choice(corpus)
                else:
                    frame = mutator.mutate(rng.choice(corpus))
                fed.to_hub(sender, frame)
                row.frames += 1
            fed.to_hub(b"r-mallory", wire.encode(Bye("", 0)))
            if not fed.step():
                time.sleep(0.001)
        rows = fed.round_log()
        outcome = [(r.kind, r.status, r.participants, r.survivors) for r in rows]
        kinds = ["statistics", "training", *["evaluation"] * (len(rows) - 2)]
        if len(rows) < 3 or outcome != [(kind, "ok", peers, peers) for kind in kinds]:
            raise AssertionError(f"{mode} rounds with {peers} peers ended {outcome}")


def _damaged_case(root: Path, corpus: list[bytes], seed: int, row: Row, direction: str) -> None:
    rng = random.Random(seed)
    mutator = Mutator(corpus, seed=seed)
    victim = InProcessFederation.routing("p1")

    def damage(way: str, routing: bytes, frame: bytes) -> list[bytes]:
        if way != direction or routing != victim or rng.random() < 0.5:
            return [frame]
        row.frames += 1
        bad = mutator.mutate(frame)
        return [bad] if rng.random() < 0.5 else [frame, bad]

    mode = rng.choice(["off", "full", "plus"])
    options = {"stage_timeout": 0.2, "train_timeout": 0.5}
    with InProcessFederation(
        root, peers=4, rounds=2, secagg=mode, run_id=RUN, hook=damage, hub_options=options
    ) as fed:
        rows = fed.run_rounds(timeout=30)
    numbers = [r.round for r in rows]
    trained = sum(r.kind == "training" for r in rows)
    if (
        numbers != list(range(1, len(rows) + 1))
        or trained != 2
        or any(r.status != "ok" and not r.reason for r in rows)
    ):
        ended = [(r.kind, r.status, r.reason) for r in rows]
        raise AssertionError(f"{mode} rounds ended {ended}")


def _fuzz_federations(
    case: Callable[[Path, int, Row], None], seed: int, deadline: float, row: Row, tally: _Tally
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        case_seed = rng.randrange(2**32)
        row.cases += 1
        with tempfile.TemporaryDirectory() as root:
            try:
                case(Path(root), case_seed, row)
            except Exception:
                tally.failures.append(
                    f"{row.target} case seed {case_seed}\n{traceback.format_exc()}"
                )


def run(targets: Sequence[str], seconds: float, seed: int) -> list[Row]:
    """Fuzz each target for its share of `seconds`; returns one row per target."""
    logging.disable(logging.NOTSET)
    with tempfile.TemporaryDirectory() as root:
        frames = record(Path(root), peers=3, rounds=2, run_id=RUN)
        plain = record(Path(root) / "plain", peers=3, rounds=1, secagg="off", run_id=RUN)
    recorded: list[Recorded] = frames + plain
    corpus = [r.frame for r in recorded]
    to_hub = [r.frame for r in recorded if r.direction == "to_hub"]
    to_peer = [r.frame for r in recorded if r.direction == "to_peer"]
    share = seconds / len(targets)
    rows = []
    for target in targets:
        row, tally = Row(target, share), _Tally()
        handler = _Reasons(tally)
        daemons = [logging.getLogger("fedd.hub"), logging.getLogger("fedd.peer")]
        for log in daemons:
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
        started = time.monotonic()
        deadline = started + share
        try:
            if target == "wire":
                _fuzz_wire(corpus, seed, deadline, row, tally)
            elif target == "hub":
                _fuzz_federations(
                    lambda r, s, w: _hub_case(r, corpus, s, w), seed, deadline, row, tally
                )
            elif target == "participant":
                _fuzz_federations(
                    lambda r, s, w: _damaged_case(r, to_hub, s, w, "to_hub"),
                    seed,
                    deadline,
                    row,
                    tally,
                )
            else:
                _fuzz_federations(
                    lambda r, s, w: _damaged_case(r, to_peer, s, w, "to_peer"),
                    seed,
                    deadline,
                    row,
                    tally,
                )
        finally:
            for log in daemons:
                log.removeHandler(handler)
        row.seconds = time.monotonic() - started
        row.reasons, row.failures = len(tally.reasons), len(tally.failures)
        for failure in tally.failures[:5]:
            print(failure)
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="Total time budget.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--targets", default=",".join(TARGETS), help="Comma-separated.")
    parser.add_argument("--csv", type=Path, default=None, help="Also write the table as CSV.")
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or args.seconds <= 0:
        parser.error(f"targets are {', '.join(TARGETS)}; seconds must be positive")
    rows = run(targets, args.seconds, args.seed)
    header = [f.name for f in fields(Row)]
    print(
        f"{'target':<12} {'seconds':>8} {'cases':>9} {'frames':>10} {'reasons':>8} {'failures':>9}"
    )
    for r in rows:
        print(
            f"{r.target:<12} {r.seconds:>8.1f} {r.cases:>9} {r.frames:>10} {r.reasons:>8} "
            f"{r.failures:>9}"
        )
    if args.csv is not None:
        with open(args.csv, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(header)
            out.writerows(astuple(r) for r in rows)
    return 1 if any(r.failures for r in rows) else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
