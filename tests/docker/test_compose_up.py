"""`docker compose up --scale peer=N` for real: the image built, the federation run.

Root and a Docker engine (started here if none runs, and then stopped by its
pid); skipped with the reason otherwise. No registry is reachable, so the
image is built from the Dockerfile as committed on a stand-in base image
(`engine.stand_in_base`) given as FEDD_BASE_IMAGE; pip inside the build
reaches PyPI over the default bridge. Where this machine trusts local CA
certificates (/usr/local/share/ca-certificates, as on networks that re-sign
TLS), they are put in docker/certs/ for the build, as docs/deployment.md
tells a user to, and removed afterwards.

The data is made on the host with `fedd data synth` and `fedd data split`,
the documented path: one raw file per institution, which reaches the
containers through the read-only bind mount, one per replica through
`--shard auto`. The hub has no data. Each scenario starts the hub and 3
peers, scales to 5 while the hub still runs training rounds (local epochs
make the rounds slow enough), waits for the end of the run through `fedd
status` inside the hub container, then checks that every peer exited 0
without a restart, that the hub's state holds the statistics round, every
training round and every model's federated scores, and that the two late
replicas trained in committed rounds. The
compose project and the image are named `fedd-test-<pid>`, so that a
developer's own `fedd` project and image are never touched and two suites on
one engine (two checkouts) neither stop each other's containers nor run each
other's code; `down -v` removes what a scenario made, pass or fail, and the
image's tag goes with the module (its layers stay cached). Timings go to the summary at the end.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.docker.engine import (
    NOTES,
    TIMINGS,
    Engine,
    apt_mirror,
    cache_dir,
    recipe_key,
    run,
    stand_in_base,
    timed,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "docker-compose.yml"
CURVE = ROOT / "docker" / "curve.yml"
CERTS = ROOT / "docker" / "certs"
HOST_CAS = Path("/usr/local/share/ca-certificates")
PROJECT = f"fedd-test-{os.getpid()}"
IMAGE = f"{PROJECT}:latest"
ROWS = 20_000
SHARDS = 5
FIRST = 3
# Rounds slow enough (local epochs: about 0.4 s of training per peer and
# round here) and many enough that the two late replicas start, register and
# train while rounds remain; the summary says in which round they first did.
ROUNDS = 60
EPOCHS = 20
STATE = "/home/fedd/state/hub"

T = TypeVar("T")


def why_not_here() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the live Docker test runs on Linux only"
    if os.geteuid() != 0:
        return "starting a Docker engine and debootstrap need root"
    for tool, package in (("docker", "docker.io"), ("docker-compose", "docker-compose")):
        if shutil.which(tool) is None:
            return f"no {tool} here (Debian: apt-get install {package})"
    return None


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    reason = why_not_here()
    if reason is not None:
        pytest.skip(reason)
    engine = Engine(tmp_path_factory.mktemp("engine") / "dockerd.log")
    try:
        start = time.monotonic()
        reason = engine.ensure()
        how = "running" if engine.pid is None else f"started, pid {engine.pid}"
        TIMINGS.append((f"engine ({how})", time.monotonic() - start))
        if reason is not None:
            pytest.skip(reason)
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def base_image(engine: Engine) -> str:
    cached = (cache_dir() / f"base-{recipe_key()}.tar").exists()
    if not cached and shutil.which("debootstrap") is None:
        pytest.skip("no debootstrap for the stand-in base image (apt-get install debootstrap)")
    mirror = apt_mirror()
    if mirror is None:
        pytest.skip("apt here has no source for Debian bookworm to debootstrap from")
    start = time.monotonic()
    tag, how = stand_in_base(mirror)
    TIMINGS.append((f"stand-in base image ({how})", time.monotonic() - start))
    return tag


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("host") / "data"
    raw = data / "creditcard.csv"
    fedd = (sys.executable, "-m", "fedd", "data")
    with timed("fedd data synth + split on the host"):
        for args in (
            ("synth", "--rows", str(ROWS), "--out", str(raw)),
            ("split", "--input", str(raw), "--peers", str(SHARDS), "--out", str(data / "clients")),
        ):
            # The usual umask, as docs/deployment.md assumes: the files come out 0644.
            subprocess.run(
                [*fedd, *args], check=True, capture_output=True, timeout=120, umask=0o022
            )
    return data


@contextlib.contextmanager
def host_cas_in_certs() -> Iterator[list[Path]]:
    """This machine's local CAs in docker/certs/ for the build; removed afterwards."""
    added = []
    try:
        for ca in sorted(HOST_CAS.rglob("*.crt")) if HOST_CAS.is_dir() else []:
            target = CERTS / f"host-{ca.name}"
            if not target.exists():
                shutil.copyfile(ca, target)
                added.append(target)
        yield added
    finally:
        for target in added:
            target.unlink(missing_ok=True)


@dataclass(frozen=True)
class Compose:
    """`docker-compose -f ...` (compose v1, Debian's) with the test's settings only."""

    files: tuple[Path, ...]
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 300) -> str:
        flags = [arg for f in self.files for arg in ("-f", str(f))]
        return run("docker-compose", *flags, *args, env=self.env, cwd=ROOT, timeout=timeout).stdout

    def ids(self, service: str) -> list[str]:
        return self("ps", "-q", service).split()

    def logs(self) -> str:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            return self("logs", "--no-color", "--tail", "40", timeout=60)[-8000:]
        return "(no logs)"


@pytest.fixture(scope="module")
def compose_env(base_image: str, data_root: Path) -> Iterator[dict[str, str]]:
    passed = {
        k: v for k, v in os.environ.items() if k in ("PATH", "HOME") or k.startswith("DOCKER_")
    }
    env = {
        **passed,
        "COMPOSE_PROJECT_NAME": PROJECT,
        "FEDD_IMAGE": IMAGE,
        "FEDD_BASE_IMAGE": base_image,
        "FEDD_DATA_ROOT": str(data_root),
        "FEDD_ROUNDS": str(ROUNDS),
        "FEDD_LOCAL_EPOCHS": str(EPOCHS),
    }
    with host_cas_in_certs():
        with timed("image built (compose build)"):
            Compose((COMPOSE,), env)("build", timeout=900)
        try:
            check_the_image_holds_the_package(IMAGE)
            yield env
        finally:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run("docker", "image", "rm", IMAGE, timeout=60)


# Run inside the image: its fedd package's modules, symbolic links marked "@".
LIST_PACKAGE = """
import os, fedd
root = os.path.dirname(fedd.__file__)
for folder, _, files in os.walk(root):
    for name in files:
        path = os.path.join(folder, name)
        if name.endswith(".py"):
            print(os.path.relpath(path, root) + ("@" if os.path.islink(path) else ""))
"""


def check_the_image_holds_the_package(image: str) -> None:
    """The wheel is built through the fedd/<room> links: every module must be a real file."""
    args = ("--rm", "--network", "none", "--entrypoint", "python", image, "-c", LIST_PACKAGE)
    installed = sorted(run("docker", "run", *args).stdout.split())
    source = ROOT / "fedd"
    expected = sorted(
        os.path.relpath(os.path.join(folder, name), source)
        for folder, _, files in os.walk(source, followlinks=True)
        for name in files
        if name.endswith(".py")
    )
    assert installed == expected, f"the image's fedd package differs from fedd/: {installed}"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.25)
    raise AssertionError(f"no {what} within {timeout:g}s")


def hub_status(hub: str) -> dict[str, Any]:
    """`fedd status --json` in the hub container (its env carries any CURVE key)."""
    out = run("docker", "exec", hub, "fedd", "status", "--json", check=False, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def hub_csv(compose: Compose, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(compose("exec", "-T", "hub", "cat", f"{STATE}/{name}"))))


def scale_up_while_rounds_run(
    compose: Compose, label: str, before: Callable[[], None] = lambda: None
) -> list[dict[str, str]]:
    """The scenario, `before` it and up to `down -v`; returns the hub's client_perf.csv rows."""
    try:
        before()
        with timed(f"{label}: up -d --build --scale peer={FIRST}"):
            compose("up", "-d", "--build", "--scale", f"peer={FIRST}")
        [hub] = compose.ids("hub")
        with timed(f"{label}: statistics and the first training round committed"):
            wait_for(
                "committed round",
                lambda: hub_status(hub).get("rounds_committed", 0) >= 1 or None,
                120,
            )
        with timed(f"{label}: up -d --scale peer={SHARDS} while rounds run"):
            compose("up", "-d", "--scale", f"peer={SHARDS}")
        committed = hub_status(hub).get("rounds_committed", ROUNDS)
        assert committed < ROUNDS, "all rounds were done before the scale-up: raise EPOCHS"
        with timed(f"{label}: training rounds {committed}..{ROUNDS}, then the scoring"):
            wait_for(
                "last round",
                lambda: hub_status(hub).get("stage") == "done" or None,
                300,
            )
        # The documented command, as written (-T: no terminal here).
        summary = compose("exec", "-T", "hub", "fedd", "status")
        assert f"rounds     {ROUNDS} of {ROUNDS}" in summary, summary

        peers = compose.ids("peer")
        assert len(peers) == SHARDS, peers

        def states() -> list[str] | None:
            out = run("docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} "
                      "{{.RestartCount}}", *peers).stdout.splitlines()  # fmt: skip
            return out if all(line.startswith("exited") for line in out) else None

        assert wait_for("exit of every peer", states, 60) == ["exited 0 0"] * SHARDS

        rounds = hub_csv(compose, "round_log.csv")
        assert [int(r["round"]) for r in rounds] == list(range(1, len(rounds) + 1))
        kinds = [r["kind"] for r in rounds]
        assert kinds[: ROUNDS + 1] == ["statistics"] + ["training"] * ROUNDS, kinds
        assert set(kinds[ROUNDS + 1 :]) <= {"evaluation"}, kinds
        assert {r["status"] for r in rounds} == {"ok"}, rounds
        assert rounds[0]["survivors"] == str(FIRST)  # the first peers' statistics
        scores = hub_csv(compose, "metrics_log.csv")
        training = [r["round"] for r in rounds if r["kind"] == "training"]
        assert sorted((s["round"] for s in scores), key=int) == training
        assert {s["source"] for s in scores} == {"federated"}  # the hub holds no data
        shards = sorted(int(p["shard"]) for p in hub_csv(compose, "peers.csv"))
        assert shards == list(range(1, SHARDS + 1)), shards
        return hub_csv(compose, "client_perf.csv")
    except BaseException:
        print(compose.logs())  # shown with the failure
        raise
    finally:
        with timed(f"{label}: down -v"):
            compose("down", "-v", "--remove-orphans")


def check_late_peers_trained(perf: list[dict[str, str]], label: str) -> set[str]:
    by_round: dict[int, set[str]] = {}
    for row in perf:
        by_round.setdefault(int(row["round"]), set()).add(row["peer"])
    first, last = by_round[min(by_round)], by_round[max(by_round)]
    late = set().union(*by_round.values()) - first
    assert len(first) == FIRST and len(late) == SHARDS - FIRST, by_round
    assert late <= last and len(last) == SHARDS, by_round
    joined = min(r for r, peers in by_round.items() if late <= peers)
    NOTES.append(
        f"{label}: the late replicas first trained in round {joined} "
        f"(training rounds {min(by_round)}..{max(by_round)})"
    )
    return first | late


def test_peers_scale_up_while_the_hub_runs_rounds(compose_env: dict[str, str]) -> None:
    compose = Compose((COMPOSE,), compose_env)
    label = "plain, secagg full"
    check_late_peers_trained(scale_up_while_rounds_run(compose, label), label)


def test_the_curve_overlay_the_same_way(compose_env: dict[str, str]) -> None:
    compose = Compose((COMPOSE, CURVE), {**compose_env, "FEDD_SECAGG": "plus"})
    names = [f"peer-{k}" for k in range(1, SHARDS + 1)]

    def keys() -> None:  # the documented commands: in the keys volume, as the container's user
        generate = ("run", "--rm", "--no-deps", "hub", "keys", "generate", "--out")
        with timed("curve: keys generate (run --rm --no-deps hub)"):
            compose(*generate, "/home/fedd/keys", "--name", "hub")
            compose(*generate, "/home/fedd/keys/peers", *(a for n in names for a in ("--name", n)))

    label = "curve, secagg plus"
    peers = check_late_peers_trained(scale_up_while_rounds_run(compose, label, keys), label)
    assert peers == set(names)  # each replica registered under the key it claimed
