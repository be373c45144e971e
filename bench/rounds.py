"""Rounds with real processes: a hub and N peer daemons on 127.0.0.1.

    python -m bench.rounds [--peers 3,10,30,100] [--modes off,full,plus] [--rounds 6]
                           [--rows-per-peer 400] [--curve] [--active] [--sim-runs 3]
                           [--csv PATH]

For each N and mode, a fresh hub and N peers (each its own process, with a
shard of synthetic data: 30 features, so d = 31 parameters) run a federation:
its statistics round, `--rounds` training rounds, then the evaluation rounds
that score the last models. The figures are of the training rounds, the first
left out (process warm-up). Per training round, from the hub's own CSV
state: the median wall time, the part of it the peers spent training
(reported separately: the slowest peer's train_s from its own rounds.csv, as
the round waits for it and secure rounds report only coarse seconds to the
hub), bytes per peer up and down (a training round after the first also
carries the scores of the previous model), and for secure modes the
overhead over the plain round with the same N (same data, same training, so
the difference is the protocol). For secure modes, each peer's protocol CPU
time per round (its own rounds.csv's protocol_cpu_s: the process's CPU time
over the round but its local training and scoring; median over peers and
rounds) beside the same protocol's per-peer CPU time in `fedd simulate`
(one process, no network; the same N, and vectors of the plain round's
upload size in 64-bit lanes; the median over `--sim-runs` runs). Then the
CPU time of every process per round (the hub's perf_log.csv cpu_s plus each
peer's protocol_cpu_s and cpu_s), and `busy`: that time over the machine's
cores times the round's wall time, near 100% when the round is CPU-bound.

`floor s` is a lower bound on the round's wall time on this machine: the
peers' local jobs (the sum of their cpu_s: training and scoring) plus the
X25519 operations a secure round cannot do without (per peer, two fresh key
pairs and one agreement per neighbour for each of them, at the cost this
process measures back to back), spread perfectly over the cores, with
everything else (messages, masks, shares, the hub) free. `x floor` is the
round's wall time over it. Beside them: the statistics round's wall time,
and how many evaluation rounds followed and their total wall time.
Flower 1.42's SecAgg+ in its own simulation engine, measured on this
machine: about 0.69 s per round at N = 10 and 1.7 s at N = 30 (d = 31).

With `--curve` every connection is CurveZMQ (fresh keys, every peer on the
hub's allow-list), so that a run with and one without show what transport
security costs per round. With `--active` the secure modes run the variant
against a lying hub (`fedd start hub --active`: every peer with a signing key
and the others' public ones), so that the two show what that variant costs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from fedd.crypto.keys import AgreementKey
from fedd.crypto.secagg.params import Mode
from fedd.crypto.secagg.shape import DEFAULT_CORRUPT, DEFAULT_DROPOUT, choose_shape
from fedd.daemon.transport.curve import generate
from fedd.daemon.transport.signkeys import generate_signing
from fedd.launch import FEDD, Federation
from fedd.learner.shards import shard_path

__all__ = ["main"]

FLOWER_SECAGG_PLUS_S = {10: 0.69, 30: 1.7}


@dataclass(frozen=True)
class Row:
    peers: int
    mode: str
    rounds: int
    round_s: float
    train_s: float
    protocol_s: float
    overhead_vs_plain_s: float | None
    up_bytes_per_peer: int
    down_bytes_per_peer: int
    flower_s: float | None
    speedup_vs_flower: float | None
    peer_protocol_cpu_s: float
    simulate_peer_cpu_s: float | None
    cpu_s: float
    busy: float
    floor_s: float
    stats_s: float
    eval_rounds: int
    eval_s: float


def _prepare(root: Path, peers: int, rows_per_peer: int) -> list[Path]:
    raw = root / "raw.csv"
    subprocess.run(
        [
            *FEDD,
            "data",
            "synth",
            "--rows",
            str(int(rows_per_peer * peers / 0.8)),
            "--fraud-rate",
            "0.05",
            "--out",
            str(raw),
            "--quiet",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *FEDD,
            "data",
            "prepare",
            "--input",
            str(raw),
            "--peers",
            str(peers),
            "--out-root",
            str(root),
        ],
        check=True,
        capture_output=True,
    )
    return [shard_path(root / "clients", k) for k in range(1, peers + 1)]


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _keys(root: Path, n: int) -> tuple[list[str], list[list[str]]]:
    """CURVE options for the hub and for each peer (named p1..pN, as Federation names them)."""
    keys, allow = root / "keys", root / "allow"
    if not keys.exists():
        generate(keys, "hub")
        for k in range(1, n + 1):
            generate(allow, f"p{k}")
    hub = ["--curve-secret", str(keys / "hub.secret"), "--allow-dir", str(allow)]
    peers = [
        ["--curve-secret", str(allow / f"p{k}.secret"), "--hub-public", str(keys / "hub.pub")]
        for k in range(1, n + 1)
    ]
    return hub, peers


def _signing(root: Path, n: int) -> list[list[str]]:
    """Active-round options for each peer (p1..pN): its signing key, everyone's public one."""
    keys, trusted = root / "sigkeys", root / "trusted"
    if not trusted.exists():
        for k in range(1, n + 1):
            public, _ = generate_signing(keys, f"p{k}")
            trusted.mkdir(exist_ok=True)
            (trusted / public.name).write_bytes(public.read_bytes())
    return [
        ["--signing-key", str(keys / f"p{k}.sigkey"), "--trusted-dir", str(trusted)]
        for k in range(1, n + 1)
    ]


def _run(
    root: Path,
    shards: list[Path],
    mode: str,
    rounds: int,
    curve: bool = False,
    active: bool = False,
) -> dict[str, float]:
    n = len(shards)
    state = root / f"hub-{mode}"
    hub_curve, peer_curve = _keys(root, n) if curve else ([], [[] for _ in shards])
    active = active and mode != "off"
    peer_signing = _signing(root, n) if active else [[] for _ in shards]
    with Federation(root / f"run-{mode}") as fed:
        hub = fed.hub(
            state,
            "--min-peers",
            str(n),
            "--rounds",
            str(rounds),
            "--secagg",
            mode,
            "--exit-when-done",
            "--join-window",
            "1",
            "--stage-timeout",
            "20",
            *(["--active"] if active else []),
            *hub_curve,
        )
        for k, shard in enumerate(shards, 1):
            fed.peer(
                f"p{k}",
                shard,
                root / f"run-{mode}" / f"p{k}",
                *peer_curve[k - 1],
                *peer_signing[k - 1],
            )
        if hub.wait(600) != 0:
            raise SystemExit(f"hub failed ({mode}, N={n}):\n{hub.output()[-3000:]}")
    every = _read(state / "round_log.csv")
    if any(r["status"] != "ok" for r in every):
        raise SystemExit(f"a round did not complete ({mode}, N={n}): {every}")
    log = [r for r in every if r["kind"] == "training"][1:]
    measured = {r["round"] for r in log}
    perf = {r["round"]: r for r in _read(state / "perf_log.csv")}
    clients = _read(state / "client_perf.csv")
    peer_rows = [
        row for k in range(1, n + 1) for row in _read(root / f"run-{mode}" / f"p{k}" / "rounds.csv")
    ]
    # Each peer's own exact training time: secure rounds report only a coarse one to the hub.
    trained: dict[str, list[float]] = {}
    # Each peer's whole CPU time over the round: its protocol, and its job (training, scoring).
    spent: dict[str, float] = {}
    jobs: dict[str, float] = {}
    for row in peer_rows:
        trained.setdefault(row["round"], []).append(float(row["train_s"]))
        spent[row["round"]] = spent.get(row["round"], 0.0) + float(row["protocol_cpu_s"])
        jobs[row["round"]] = jobs.get(row["round"], 0.0) + float(row["cpu_s"])
    durations = [float(r["duration_s"]) for r in log]
    trains = [max(trained[r["round"]]) for r in log]
    ups = [int(c["upload_bytes"]) for c in clients if c["round"] in measured]
    downs = [int(perf[r["round"]]["bytes_out"]) / n for r in log]
    evals = [float(r["duration_s"]) for r in every if r["kind"] == "evaluation"]
    protocol_cpu = [float(row["protocol_cpu_s"]) for row in peer_rows if row["round"] in measured]
    everyone = [
        float(perf[r["round"]]["cpu_s"]) + spent[r["round"]] + jobs[r["round"]] for r in log
    ]
    cores = len(os.sched_getaffinity(0))
    return {
        "round_s": statistics.median(durations),
        "train_s": statistics.median(trains),
        "protocol_s": statistics.median(d - t for d, t in zip(durations, trains, strict=True)),
        "up": statistics.median(ups),
        "down": statistics.median(downs),
        "rounds": len(log),
        "stats_s": sum(float(r["duration_s"]) for r in every if r["kind"] == "statistics"),
        "eval_rounds": len(evals),
        "eval_s": sum(evals),
        "protocol_cpu": statistics.median(protocol_cpu),
        "jobs_cpu": statistics.median(jobs[r["round"]] for r in log),
        "cpu": statistics.median(everyone),
        "busy": statistics.median(
            c / (cores * d) for c, d in zip(everyone, durations, strict=True)
        ),
    }


def _simulated_peer_cpu(n: int, mode: str, lanes: int, active: bool, runs: int) -> float:
    """A peer's CPU seconds per round in `fedd simulate`, with the round shape the
    hub's defaults give: the median over `runs` runs' rounds (each run's first
    left out). One run's figure moves with the machine by a factor of up to two."""
    figures = []
    for _ in range(runs):
        out = subprocess.run(
            [*FEDD, "simulate", "--peers", str(n), "--secagg", mode, "--mod-bits", "64",
             "--dim", str(lanes), "--rounds", "4", "--json",
             "--dropout-budget", str(DEFAULT_DROPOUT), "--corrupt", str(DEFAULT_CORRUPT),
             *(["--active"] if active else [])],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        rounds = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        figures += [float(r["peer_cpu_seconds_median"]) for r in rounds[1:]]
    return statistics.median(figures)


def _agreement_costs(batch: int = 100) -> tuple[float, float]:
    """CPU seconds of one X25519 key generation and of one key agreement with a
    fresh public key, in this process back to back (caches warm, the best case):
    medians over five batches of `batch`."""
    generate, agree = [], []
    for _ in range(5):
        started = time.thread_time()
        keys = [AgreementKey.generate() for _ in range(batch)]
        generate.append((time.thread_time() - started) / batch)
        mine = AgreementKey.generate()
        started = time.thread_time()
        for key in keys:
            mine.exchange(key.public)
        agree.append((time.thread_time() - started) / batch)
    return statistics.median(generate), statistics.median(agree)


def _floor(n: int, mode: str, active: bool, jobs_cpu: float, costs: tuple[float, float]) -> float:
    """The round's wall time if the machine's cores did nothing but the peers' local
    jobs (their measured CPU) and the X25519 operations the protocol cannot skip:
    two fresh key pairs per peer, and one agreement per neighbour for each (its
    shares' key, its pair mask), spread perfectly over the cores."""
    agreements = 0.0
    if mode != "off":
        k = choose_shape(
            n, Mode(mode), dropout=DEFAULT_DROPOUT, corrupt=DEFAULT_CORRUPT, active=active
        ).k
        generate, agree = costs
        agreements = n * (2 * generate + 2 * k * agree)
    return (agreements + jobs_cpu) / len(os.sched_getaffinity(0))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rounds",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--peers", default="3,10,30,100")
    parser.add_argument("--modes", default="off,full,plus")
    parser.add_argument("--rounds", type=int, default=6, help="training rounds (at least 2)")
    parser.add_argument("--rows-per-peer", type=int, default=400)
    parser.add_argument("--curve", action="store_true", help="CurveZMQ on every connection")
    parser.add_argument(
        "--active", action="store_true", help="secure modes resist a lying hub (--active)"
    )
    parser.add_argument(
        "--sim-runs", type=int, default=3, help="runs of `fedd simulate` per secure row"
    )
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: the first training round is left out")
    if args.sim_runs < 1:
        parser.error("--sim-runs must be at least 1")
    modes = args.modes.split(",")
    costs = _agreement_costs()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fedd-bench-") as tmp:
        for n in (int(x) for x in args.peers.split(",")):
            root = Path(tmp) / f"n{n}"
            shards = _prepare(root, n, args.rows_per_peer)
            plain: float | None = None
            lanes = 0
            for mode in modes:
                started = time.monotonic()
                r = _run(root, shards, mode, args.rounds, args.curve, args.active)
                if mode == "off":
                    plain = r["round_s"]
                    lanes = int(r["up"]) // 8
                simulated = None
                if mode != "off" and lanes:
                    simulated = _simulated_peer_cpu(n, mode, lanes, args.active, args.sim_runs)
                flower = FLOWER_SECAGG_PLUS_S.get(n) if mode != "off" else None
                rows.append(
                    Row(
                        peers=n,
                        mode=mode,
                        rounds=int(r["rounds"]),
                        round_s=r["round_s"],
                        train_s=r["train_s"],
                        protocol_s=r["protocol_s"],
                        overhead_vs_plain_s=(r["round_s"] - plain)
                        if plain is not None and mode != "off"
                        else None,
                        up_bytes_per_peer=int(r["up"]),
                        down_bytes_per_peer=int(r["down"]),
                        flower_s=flower,
                        speedup_vs_flower=flower / r["round_s"] if flower else None,
                        peer_protocol_cpu_s=r["protocol_cpu"],
                        simulate_peer_cpu_s=simulated,
                        cpu_s=r["cpu"],
                        busy=r["busy"],
                        floor_s=_floor(n, mode, args.active, r["jobs_cpu"], costs),
                        stats_s=r["stats_s"],
                        eval_rounds=int(r["eval_rounds"]),
                        eval_s=r["eval_s"],
                    )
                )
                print(f"# N={n} {mode}: {time.monotonic() - started:.1f}s wall", file=sys.stderr)
    if args.curve:
        print("transport: CURVE (CurveZMQ, ZAP allow-list)")
    if args.active:
        print("secure modes: --active (signed keys, consistency check)")
    _print(rows)
    if args.csv is not None:
        with open(args.csv, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow([f.name for f in fields(Row)])
            out.writerows(["" if v is None else v for v in astuple(r)] for r in rows)
    return 0


def _print(rows: list[Row]) -> None:
    print(
        f"{'N':>4} {'mode':>5} {'rounds':>6} {'round s':>8} {'train s':>8} {'protocol s':>10} "
        f"{'vs plain s':>10} {'x plain':>7} {'peer cpu ms':>11} {'sim cpu ms':>10} "
        f"{'x sim':>6} {'cpu s':>7} {'busy':>5} {'floor s':>8} {'x floor':>7} "
        f"{'up B/peer':>10} {'down B/peer':>11} "
        f"{'flower s':>8} {'speed-up':>8} {'stats s':>8} {'evals':>5} {'eval s':>7}"
    )
    for r in rows:
        over = f"{r.overhead_vs_plain_s:+.4f}" if r.overhead_vs_plain_s is not None else ""
        times = (
            f"{r.round_s / (r.round_s - r.overhead_vs_plain_s):.2f}x"
            if r.overhead_vs_plain_s is not None
            else ""
        )
        sim = r.simulate_peer_cpu_s
        sim_ms = f"{sim * 1e3:.2f}" if sim is not None else ""
        vs_sim = f"{r.peer_protocol_cpu_s / sim:.2f}x" if sim else ""
        flower = f"{r.flower_s:.2f}" if r.flower_s is not None else ""
        speed = f"{r.speedup_vs_flower:.1f}x" if r.speedup_vs_flower is not None else ""
        print(
            f"{r.peers:>4} {r.mode:>5} {r.rounds:>6} {r.round_s:>8.4f} {r.train_s:>8.4f} "
            f"{r.protocol_s:>10.4f} {over:>10} {times:>7} {r.peer_protocol_cpu_s * 1e3:>11.2f} "
            f"{sim_ms:>10} {vs_sim:>6} {r.cpu_s:>7.4f} {r.busy:>5.0%} {r.floor_s:>8.4f} "
            f"{r.round_s / r.floor_s:>6.2f}x {r.up_bytes_per_peer:>10} "
            f"{r.down_bytes_per_peer:>11} {flower:>8} {speed:>8} {r.stats_s:>8.4f} "
            f"{r.eval_rounds:>5} {r.eval_s:>7.4f}"
        )


if __name__ == "__main__":
    sys.exit(main())
