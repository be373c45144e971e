"""Long runs: SecAgg+ rounds while peers and the hub are killed and restarted.

    python -m bench.soak [--rounds 100] [--peers 10] [--min-peers 6] [--peer-kills 25]
                         [--hub-restarts 2] [--max-down 3] [--seed 7] [--rows-per-peer 400]
                         [--dir DIR] [--keep] [--timeout 1800] [--csv PATH]

A hub (`--secagg plus`, a test CSV, no `--exit-when-done`) and one peer
process per shard run on this machine (`fedd.launch.Federation`): the
statistics round, `--rounds` training rounds, then the evaluation rounds
that score the last models, until the hub says it is done. Round numbers
count rounds of every kind. A seeded schedule decides, before the run,
after which committed rounds to kill a peer and to kill the hub; when a
round commits, the kills planned after it fire at a random moment within
the next round's expected length (the median of the last few), so they land
at any stage of a round or between rounds. Everything is SIGKILL, never a
clean stop:

- a peer kill picks an alive peer at random (at most `--max-down` are down
  at once; a kill that would exceed it waits for the next round) and starts
  it again 1 to 3 rounds later with the same state dir and the same id;
- a hub kill starts a new hub on the same state dir 0.2 to 2 s later.

After the hub is done the peers that are down are started again (the hub
tells them training is done), the peers must exit 0, and the hub must exit 0
on SIGTERM. The hub's VmRSS is read from /proc after every committed round
and printed every 10 rounds (`--csv` writes every sample). Then
`bench.soak_checks` checks the state on disk (see there for what each check
establishes and how), and the run exits 1 if any check fails, keeping its
directory for the post-mortem.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import heapq
import itertools
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak_checks import (
    BATCH_SIZE,
    HOLDOUT,
    HOLDOUT_SEED,
    LOCAL_EPOCHS,
    LR,
    TRAIN_SEED,
    Check,
    Kill,
    RssSample,
    RunFacts,
    run_checks,
)
from fedd.launch import FEDD, Child, Federation
from fedd.learner.shards import shard_path

__all__ = ["SoakConfig", "SoakRun", "main", "run_soak"]

POLL_S = 0.005  # how often the driver looks at the hub's state
DONE_POLL_S = 0.1  # how often it reads the hub's log for "done", once that can be


@dataclass(frozen=True)
class SoakConfig:
    """What to run and what to break. Times are seconds; `rounds` are training rounds."""

    rounds: int = 100
    peers: int = 10
    min_peers: int = 6
    peer_kills: int = 25
    hub_restarts: int = 2
    max_down: int = 3
    seed: int = 7
    rows_per_peer: int = 400
    timeout_s: float = 1800.0
    heartbeat_s: float = 0.25
    liveness_s: float = 3.0
    stage_timeout_s: float = 10.0
    train_timeout_s: float = 30.0
    join_window_s: float = 0.5

    def __post_init__(self) -> None:
        if self.rounds < 10:
            raise ValueError("--rounds must be at least 10 (kills go between rounds 2 and R-2)")
        if not 2 <= self.min_peers <= self.peers - self.max_down:
            raise ValueError("need 2 <= --min-peers <= --peers - --max-down")
        if self.max_down < 1 or self.peer_kills < 0 or self.hub_restarts < 0:
            raise ValueError("--max-down must be >= 1; kills and restarts >= 0")
        if self.hub_restarts > (self.rounds * 4 // 5 - self.rounds // 5) // 3:
            raise ValueError("too many hub restarts for the rounds (3 rounds apart at least)")


@dataclass(frozen=True)
class Plan:
    """After which committed round each kill fires (a round may appear more than once).

    Round 1 is the statistics round, so kills planned after rounds 2 to R-3
    all land in training rounds."""

    peer_kills: tuple[int, ...]
    hub_kills: tuple[int, ...]


def make_plan(config: SoakConfig, rng: random.Random) -> Plan:
    """Peer kills anywhere in [2, R-3]; hub kills in the middle three fifths of the run,
    one in each of as many equal parts, at least 3 rounds apart."""
    rounds = config.rounds
    peer = sorted(rng.randint(2, rounds - 3) for _ in range(config.peer_kills))
    first, end = rounds // 5, rounds * 4 // 5
    hub = []
    for part in range(config.hub_restarts):
        lo = first + (end - first) * part // config.hub_restarts
        hi = first + (end - first) * (part + 1) // config.hub_restarts
        hub.append(rng.randint(lo, hi - 3))  # hi - 3: keeps 3 rounds to the next part's pick
    return Plan(tuple(peer), tuple(hub))


@dataclass
class SoakRun:
    """What the driver did and saw, for the checks and the report."""

    config: SoakConfig
    root: Path
    facts: RunFacts
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)


def prepare_data(root: Path, config: SoakConfig) -> tuple[Path, dict[str, Path]]:
    """Synthetic transactions split into one training shard per peer: (test CSV, shards)."""
    raw = root / "raw.csv"
    rows = int(config.rows_per_peer * config.peers / 0.8)
    synth = ["data", "synth", "--rows", str(rows), "--fraud-rate", "0.05", "--quiet"]
    subprocess.run(
        [*FEDD, *synth, "--out", str(raw), "--seed", str(config.seed)],
        check=True,
        capture_output=True,
    )
    prepare = ["data", "prepare", "--input", str(raw), "--peers", str(config.peers), "--quiet"]
    subprocess.run([*FEDD, *prepare, "--out-root", str(root)], check=True, capture_output=True)
    shards = {f"p{k}": shard_path(root / "clients", k) for k in range(1, config.peers + 1)}
    return root / "processed" / "test.csv", shards


def read_vmrss_kib(pid: int) -> int | None:
    """The resident set size of `pid` in KiB (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def committed_round(hub_state: Path) -> int:
    """The round global_model.csv holds (replaced atomically, so never half written); 0 if none."""
    try:
        with open(hub_state / "global_model.csv") as f:
            f.readline()
            first = f.readline()
    except FileNotFoundError:
        return 0
    return int(first.split(",", 1)[0]) if first else 0


class _Driver:
    """Runs one soak: starts, kills and restarts the processes by the plan."""

    def __init__(self, config: SoakConfig, root: Path, say: Callable[[str], None]) -> None:
        self.config = config
        self.root = root
        self.say = say
        self.rng = random.Random(config.seed)
        self.plan = make_plan(config, self.rng)
        self.hub_state = root / "hub"
        self.test, self.shards = prepare_data(root / "data", config)
        self.fed = Federation(root / "procs")
        self.hub: Child | None = None
        self.hub_number = 0
        self.peers: dict[str, Child] = {}
        self.down: dict[str, int] = {}  # peer -> the round after which it comes back
        self.deferred = 0
        self.kills: list[Kill] = []
        self.rss: list[RssSample] = []
        self.problems: list[str] = []
        self.started = time.monotonic()
        self._due: list[tuple[float, int, str, str]] = []
        self._seq = 0
        self._commit_times: list[float] = []
        self._next_done_poll = 0.0
        self._said_done = False
        self.last_round = 0  # the round committed when the hub said it was done

    # -- process control ----------------------------------------------------

    def start_hub(self) -> None:
        c = self.config
        self.hub_number += 1
        self.hub = self.fed.hub(
            self.hub_state,
            *("--min-peers", str(c.min_peers), "--rounds", str(c.rounds), "--secagg", "plus"),
            *("--eval-test", str(self.test), "--seed", str(TRAIN_SEED), "--lr", repr(LR)),
            *("--batch-size", str(BATCH_SIZE), "--local-epochs", str(LOCAL_EPOCHS)),
            *("--heartbeat", str(c.heartbeat_s), "--liveness", str(c.liveness_s)),
            *("--stage-timeout", str(c.stage_timeout_s), "--train-timeout", str(c.train_timeout_s)),
            *("--join-window", str(c.join_window_s)),
        )
        self.log(f"hub #{self.hub_number} started (pid {self.hub.popen.pid})")

    def start_peer(self, name: str) -> None:
        self.peers[name] = self.fed.peer(
            name,
            self.shards[name],
            self.root / "peers" / name,
            *("--holdout", repr(HOLDOUT), "--holdout-seed", str(HOLDOUT_SEED)),
        )

    def kill_hub(self, committed: int) -> None:
        assert self.hub is not None
        pid = self.hub.popen.pid
        self.hub.popen.send_signal(signal.SIGKILL)
        self.hub.wait(10)
        self.kills.append(Kill(time.time(), "hub", committed + 1))
        self.hub = None
        pause = self.rng.uniform(0.2, 2.0)
        self.log(f"SIGKILL hub #{self.hub_number} (pid {pid}); restart in {pause:.1f}s")
        self.at(pause, "start-hub", "")

    def kill_peer(self, committed: int) -> None:
        if len(self.down) >= self.config.max_down:
            self.deferred += 1
            self.log(f"peer kill deferred: {len(self.down)} peers already down")
            return
        name = self.rng.choice(sorted(set(self.peers) - set(self.down)))
        child = self.peers[name]
        if not child.alive():
            self.problems.append(f"peer {name} had exited with {child.popen.poll()} before a kill")
        child.popen.send_signal(signal.SIGKILL)
        child.wait(10)
        back = committed + self.rng.randint(1, 3)
        self.down[name] = back
        self.kills.append(Kill(time.time(), f"peer {name}", committed + 1))
        self.log(f"SIGKILL peer {name} (pid {child.popen.pid}); back after round {back}")

    # -- the loop ---------------------------------------------------------------

    def at(self, delay: float, kind: str, target: str) -> None:
        self._seq += 1
        heapq.heappush(self._due, (time.monotonic() + delay, self._seq, kind, target))

    def log(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.started:7.1f}s] {text}")

    def run(self) -> None:
        c = self.config
        self.log(
            f"plan (seed {c.seed}): peer kills after rounds {list(self.plan.peer_kills)}; "
            f"hub kills after rounds {list(self.plan.hub_kills)}"
        )
        self.start_hub()
        for name in self.shards:
            self.start_peer(name)
        seen = 0
        deadline = self.started + c.timeout_s
        while True:
            if time.monotonic() > deadline:
                self.problems.append(f"timed out after {c.timeout_s:.0f}s at round {seen}")
                return
            # Read before the commits: once the hub is done, no round commits after it.
            done = seen > c.rounds and self.hub_done()
            committed = committed_round(self.hub_state)
            for r in range(seen + 1, committed + 1):
                self.on_commit(r)
            seen = max(seen, committed)
            if done:
                break
            self.fire_due()
            if not self.watch():
                return
            time.sleep(POLL_S)
        self.last_round = seen
        self.finish()

    def hub_done(self, *, now: bool = False) -> bool:
        """Whether the hub has logged that it is done (every model trained and scored);
        the log is read at most every DONE_POLL_S unless `now`."""
        if self._said_done:
            return True
        at = time.monotonic()
        if self.hub is None or (not now and at < self._next_done_poll):
            return False
        self._next_done_poll = at + DONE_POLL_S
        self._said_done = "fedd.hub: done: " in self.hub.output()
        return self._said_done

    def round_length(self) -> float:
        """The median time between the last few commits: how long a round takes now."""
        times = self._commit_times[-6:]
        gaps = sorted(b - a for a, b in itertools.pairwise(times))
        return min(max(gaps[len(gaps) // 2], 0.02), 2.0) if gaps else 0.5

    def on_commit(self, r: int) -> None:
        """Round `r` just committed: sample the hub's memory, then arm what the plan says."""
        self._commit_times.append(time.monotonic())
        if self.hub is not None:
            kib = read_vmrss_kib(self.hub.popen.pid)
            if kib is not None:
                self.rss.append(RssSample(r, self.hub_number, self.hub.popen.pid, kib))
        if r % 10 == 0:
            sample = self.rss[-1] if self.rss and self.rss[-1].round == r else None
            rss = f"{sample.kib / 1024:.1f} MiB" if sample else "n/a (hub down)"
            self.log(f"round {r} committed; hub #{self.hub_number} VmRSS {rss}")
        if r >= self.config.rounds:
            return
        window = self.round_length()
        kills = self.plan.peer_kills.count(r) + self.deferred
        self.deferred = 0
        for _ in range(kills):
            self.at(self.rng.uniform(0, window), "kill-peer", "")
        if r in self.plan.hub_kills:
            self.at(self.rng.uniform(0, window), "kill-hub", "")
        for name, back in sorted(self.down.items()):
            if back == r:
                self.at(self.rng.uniform(0, window), "start-peer", name)

    def fire_due(self) -> None:
        while self._due and self._due[0][0] <= time.monotonic():
            _, _, kind, target = heapq.heappop(self._due)
            # The round in progress is read now: more may have committed since arming.
            committed = committed_round(self.hub_state)
            if kind == "kill-peer":
                self.kill_peer(committed)
            elif kind == "kill-hub" and self.hub is not None:
                self.kill_hub(committed)
            elif kind == "start-hub":
                self.start_hub()
            elif kind == "start-peer" and target in self.down:
                del self.down[target]
                self.start_peer(target)
                self.log(f"peer {target} started again")

    def watch(self) -> bool:
        """False (with a problem noted) if a process died that the driver did not kill."""
        if self.hub is not None and not self.hub.alive():
            self.problems.append(
                f"hub #{self.hub_number} exited by itself with {self.hub.popen.poll()}"
            )
            return False
        for name, child in self.peers.items():
            if name not in self.down and not child.alive():
                if child.popen.poll() == 0 and self.hub_done(now=True):
                    # The hub said done and this peer left first: the loop ends on
                    # its next turn, so this is no problem.
                    return True
                self.problems.append(f"peer {name} exited by itself with {child.popen.poll()}")
                return False
        return True

    def finish(self) -> None:
        """The hub is done: bring back the peers that are down, and let everyone stop."""
        self._due.clear()
        for name in sorted(self.down):
            self.start_peer(name)
            self.log(f"peer {name} started again after the last round")
        self.down.clear()
        for name, child in sorted(self.peers.items()):
            try:
                code = child.wait(60)
            except subprocess.TimeoutExpired:
                code = None
            if code != 0:
                self.problems.append(f"peer {name} did not exit 0 after training was done: {code}")
        if self.hub is None:
            self.problems.append("the hub was down at the end")
            return
        self.hub.popen.send_signal(signal.SIGTERM)
        try:
            code = self.hub.wait(30)
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            self.problems.append(f"the hub did not exit 0 on SIGTERM: {code}")
        self.log("all rounds done; peers exited, hub stopped")


def run_soak(config: SoakConfig, root: Path, say: Callable[[str], None] = print) -> SoakRun:
    """Run one soak in `root` (created); every process is gone when this returns."""
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    driver = _Driver(config, root, say)
    try:
        driver.run()
    finally:
        driver.fed.stop(grace=5)
    facts = RunFacts(
        rounds=config.rounds,
        last_round=driver.last_round,
        hub_state=driver.hub_state,
        peer_states={name: root / "peers" / name for name in driver.shards},
        shards=driver.shards,
        kills=driver.kills,
        rss=driver.rss,
        liveness_s=config.liveness_s,
        planned_peer_kills=config.peer_kills,
        planned_hub_kills=config.hub_restarts,
    )
    run = SoakRun(config, root, facts, time.monotonic() - started, driver.problems)
    return run


def print_report(run: SoakRun, checks: list[Check], say: Callable[[str], None] = print) -> None:
    """The RSS series, the checks and the wall time, as the soak's closing output."""
    f = run.facts
    c = run.config
    say("")
    say(
        f"soak: {c.rounds} training rounds ({f.last_round} rounds in all), {c.peers} peers, "
        "--secagg plus, "
        f"{sum(k.what != 'hub' for k in f.kills)} peer kills, "
        f"{sum(k.what == 'hub' for k in f.kills)} hub kills (seed {c.seed})"
    )
    say("hub VmRSS every 10 rounds:")
    say(f"  {'round':>5}  {'hub':>4}  {'pid':>7}  {'VmRSS MiB':>9}")
    by_round = {s.round: s for s in f.rss}
    for r in range(10, f.last_round + 1, 10):
        s = by_round.get(r)
        if s is None:
            say(f"  {r:>5}  {'-':>4}  {'-':>7}  {'n/a':>9}")
        else:
            say(f"  {r:>5}  {'#' + str(s.hub):>4}  {s.pid:>7}  {s.kib / 1024:>9.1f}")
    hub_log = run.root / "procs" / "hub.log"
    notes = [
        line.split("state: ", 1)[1]
        for line in (hub_log.read_text(errors="replace") if hub_log.exists() else "").splitlines()
        if "fedd.hub: state: " in line
    ]
    say(
        f"restarted hubs repaired {len(notes)} thing(s) a kill left half written"
        + "".join(f"\n  - {note}" for note in notes)
    )
    say("checks:")
    for check in checks:
        say(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    say(f"wall time: {run.wall_s:.1f}s")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run, check, report; exit 1 if anything failed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = SoakConfig()
    for name in (
        "rounds",
        "peers",
        "min_peers",
        "peer_kills",
        "hub_restarts",
        "max_down",
        "seed",
        "rows_per_peer",
    ):
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=int, default=getattr(defaults, name), dest=name)
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, dest="timeout_s")
    parser.add_argument("--dir", type=Path, default=None, help="where to run (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    parser.add_argument("--csv", type=Path, default=None, help="write every VmRSS sample here")
    args = vars(parser.parse_args(argv))
    where, keep, csv_path = args.pop("dir"), args.pop("keep"), args.pop("csv")
    try:
        config = SoakConfig(**args)
    except ValueError as exc:
        parser.error(str(exc))
    root = Path(tempfile.mkdtemp(prefix="fedd-soak-", dir=where))
    print(f"soak directory: {root}")
    run = run_soak(config, root)
    checks = run_checks(run.facts) if not run.problems else []
    checks.insert(
        0,
        Check(
            "processes",
            not run.problems,
            "; ".join(run.problems)
            or "no process died unplanned; peers exited 0, hub 0 on SIGTERM",
        ),
    )
    print_report(run, checks)
    if csv_path is not None:
        with open(csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["round", "hub", "pid", "vmrss_kib"])
            writer.writerows((s.round, s.hub, s.pid, s.kib) for s in run.facts.rss)
    failed = [check for check in checks if not check.ok]
    if failed:
        print(f"FAILED: {len(failed)} check(s); logs and state kept in {root}")
        for log in sorted((root / "procs").glob("*.log")):
            if log.name.startswith("hub"):
                print(f"--- {log.name} (last 3000 characters) ---")
                print(log.read_text(errors="replace")[-3000:])
        return 1
    if keep:
        print(f"kept {root}")
    else:
        with contextlib.suppress(OSError):
            shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
