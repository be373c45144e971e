"""Real daemon processes on 127.0.0.1: a hub and peers, always cleaned up.

Every process a test starts belongs to the `cluster` fixture, which kills
whatever is still running when the test ends, pass or fail. Output goes to
log files under the test's tmp_path and is printed when a test fails.
"""

from __future__ import annotations

import csv
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedd.launch import FEDD, Child, Federation
from fedd.learner.shards import shard_path


class Cluster(Federation):
    """A federation plus what tests need to watch it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.hub_state = root / "hub"

    def fedd(self, name: str, *args: str) -> Child:
        return self.spawn(name, *args)

    def hub(self, *args: str, name: str = "hub") -> Child:  # type: ignore[override]
        return super().hub(
            self.hub_state,
            "--heartbeat",
            "0.2",
            "--liveness",
            "4",
            "--stage-timeout",
            "10",
            "--train-timeout",
            "20",
            "--join-window",
            "2",
            *args,
            name=name,
        )

    def peer(self, name: str, data: Path, *args: str) -> Child:  # type: ignore[override]
        return super().peer(name, data, self.root / name, *args)

    def status(self, *topic: str) -> dict[str, object]:
        out = subprocess.run(
            [*FEDD, "status", *topic, "--hub", self.address, "--json", "--timeout", "5"],
            capture_output=True,
            timeout=30,
            check=True,
        )
        data: dict[str, object] = json.loads(out.stdout)
        return data

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def rows(self, name: str) -> list[dict[str, str]]:
        path = self.hub_state / name
        if not path.exists():
            return []
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def logs(self) -> str:
        return "\n".join(
            f"--- {c.name} (exit {c.popen.poll()}) ---\n{c.output()[-4000:]}" for c in self.children
        )


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        report = getattr(request.node, "rep_call", None)
        c.stop(grace=0)
        if report is not None and report.failed:
            print(c.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def check_run(log: list[dict[str, str]], training: int) -> None:
    """round_log.csv of a finished run: rounds 1..N once each, in order, of the
    run's three kinds in turn: its statistics round, `training` training rounds,
    then evaluation rounds, at least one (the last model is scored after it is made)."""
    assert [r["round"] for r in log] == [str(r) for r in range(1, len(log) + 1)], log
    evaluations = len(log) - 1 - training
    kinds = ["statistics", *["training"] * training, *["evaluation"] * evaluations]
    assert evaluations >= 1 and [r["kind"] for r in log] == kinds, log


@dataclass(frozen=True)
class Shards:
    train: Path
    test: Path
    peers: list[Path]


@pytest.fixture(scope="session")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Shards:
    """6,000 synthetic transactions (raised fraud rate), split for 5 peers."""
    root = tmp_path_factory.mktemp("data")
    raw = root / "creditcard.csv"
    subprocess.run(
        [
            *FEDD,
            "data",
            "synth",
            "--rows",
            "6000",
            "--fraud-rate",
            "0.02",
            "--out",
            str(raw),
            "--seed",
            "3",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*FEDD, "data", "prepare", "--input", str(raw), "--peers", "5", "--out-root", str(root)],
        check=True,
        capture_output=True,
    )
    return Shards(
        root / "processed" / "train.csv",
        root / "processed" / "test.csv",
        [shard_path(root / "clients", k) for k in range(1, 6)],
    )
