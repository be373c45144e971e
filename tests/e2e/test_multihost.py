"""Hub and peers on separate network hosts (Linux network namespaces), CURVE on.

Root only. The test builds its own little network and nothing else: one
namespace for the hub and one per peer, each peer joined to the hub by a
veth pair on a /24 of its own (10.231.k.0/24: hub .1, peer k .2), and sends
traffic only to those addresses. It runs secure rounds across the links,
then cuts one peer's link in the middle of a training round (`ip link set
... down`): the hub must count that peer as a dropout and complete the round
with the others. The link then comes back, the peer registers again, and the
run ends with all three. Processes and namespaces are removed afterwards, pass or fail, and
namespaces a crashed earlier run left behind (same prefix) are removed
before starting.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fedd.daemon.transport.curve import generate
from tests.e2e.conftest import Shards

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PREFIX = "fedd-mh-"
HUB_NS = f"{PREFIX}hub"
PEERS = 3
PORT = 5555
SUBNET = "10.231.{k}.{host}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def _our_namespaces() -> list[str]:
    listed = ip("netns", "list", check=False).stdout
    return [m.group(1) for m in re.finditer(rf"^({re.escape(PREFIX)}\S+)", listed, re.M)]


def _remove_namespaces() -> None:
    """Delete every namespace with our prefix, ending what still runs inside it first."""
    for ns in _our_namespaces():
        for pid in ip("netns", "pids", ns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        ip("netns", "delete", ns, check=False)


def _why_not_root_networking() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"{PREFIX}probe"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    ip("netns", "delete", probe, check=False)
    return None


@dataclass
class Net:
    """The namespaces, and the processes started inside them."""

    root: Path
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = field(default_factory=dict)

    def peer_ns(self, k: int) -> str:
        return f"{PREFIX}p{k}"

    def hub_address(self, k: int) -> str:
        """The hub's address on peer k's link."""
        return f"tcp://{SUBNET.format(k=k, host=1)}:{PORT}"

    def run(self, name: str, ns: str, *fedd_args: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "fedd", *fedd_args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.procs[name] = (proc, log)
        return proc

    def output(self, name: str) -> str:
        return self.procs[name][1].read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (exit {proc.poll()}) ---\n{log.read_text(errors='replace')[-3000:]}"
            for name, (proc, log) in self.procs.items()
        )

    def stop(self) -> None:
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc, _ in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)

    def wait_for_line(self, name: str, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.output(name)):
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {pattern!r} from {name}\n{self.logs()}")


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    reason = _why_not_root_networking()
    if reason is not None:
        pytest.skip(reason)
    _remove_namespaces()  # left over from a run that crashed
    net = Net(tmp_path)
    try:
        ip("netns", "add", HUB_NS)
        ip("-n", HUB_NS, "link", "set", "lo", "up")
        for k in range(1, PEERS + 1):
            ns = net.peer_ns(k)
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            # One veth pair per peer, created straight inside the two namespaces.
            ip("-n", HUB_NS, "link", "add", f"h{k}", "type", "veth", "peer", "name", "eth0",
               "netns", ns)  # fmt: skip
            ip("-n", HUB_NS, "addr", "add", f"{SUBNET.format(k=k, host=1)}/24", "dev", f"h{k}")
            ip("-n", ns, "addr", "add", f"{SUBNET.format(k=k, host=2)}/24", "dev", "eth0")
            ip("-n", HUB_NS, "link", "set", f"h{k}", "up")
            ip("-n", ns, "link", "set", "eth0", "up")
        yield net
    finally:
        net.stop()
        _remove_namespaces()


def test_secure_rounds_across_hosts_with_curve_and_a_link_cut_mid_round(net: Net, shards: Shards):
    keys = net.root / "keys"
    allow = net.root / "allow"
    generate(keys, "hub")
    for k in range(1, PEERS + 1):
        generate(allow, f"p{k}")
    state = net.root / "hub-state"
    net.run(
        "hub",
        HUB_NS,
        "start", "hub", "--bind", f"tcp://*:{PORT}", "--state-dir", str(state),
        "--curve-secret", str(keys / "hub.secret"), "--allow-dir", str(allow),
        "--min-peers", str(PEERS), "--secagg-threshold", "2", "--rounds", "2", "--secagg", "full",
        # Long enough local training that the cut lands inside round 2's training.
        "--local-epochs", "600",
        "--heartbeat", "0.3", "--liveness", "3", "--stage-timeout", "5",
        "--train-timeout", "30", "--join-window", "1", "--exit-when-done",
    )  # fmt: skip
    net.wait_for_line("hub", r"listening on", 30)
    for k in range(1, PEERS + 1):
        net.run(
            f"p{k}",
            net.peer_ns(k),
            "start", "peer", "--connect", net.hub_address(k),
            "--data", str(shards.peers[k - 1]), "--state-dir", str(net.root / f"p{k}"),
            "--curve-secret", str(allow / f"p{k}.secret"), "--hub-public", str(keys / "hub.pub"),
        )  # fmt: skip

    net.wait_for_line("hub", r"round 1 statistics ok: 3/3 peers", 60)
    net.wait_for_line("hub", r"round 2: training, full with 3 peers", 30)
    ip("-n", HUB_NS, "link", "set", "h3", "down")  # p3's cable, pulled mid-round
    net.wait_for_line("hub", r"round 2 training ok: 2/3 peers", 90)
    # The next rounds need all three: the cable goes back in, and p3 registers again.
    ip("-n", HUB_NS, "link", "set", "h3", "up")

    hub, _ = net.procs["hub"]
    assert hub.wait(90) == 0, net.logs()
    for k in range(1, PEERS + 1):
        assert net.procs[f"p{k}"][0].wait(30) == 0, net.logs()
    hub_log = net.output("hub")
    assert "peer p3 is gone" in hub_log, net.logs()
    assert "transport is not authenticated" not in hub_log
    rounds = [
        (r["round"], r["kind"], r["status"], r["participants"], r["survivors"], r["dropped"])
        for r in read_csv(state / "round_log.csv")
    ]
    assert rounds[:3] == [
        ("1", "statistics", "ok", "3", "3", "0"),
        ("2", "training", "ok", "3", "2", "1"),
        ("3", "training", "ok", "3", "3", "0"),
    ], net.logs()
    # Then evaluation rounds score the models, until every one is scored.
    assert len(rounds) > 3, net.logs()
    assert all(
        (r[0], r[1:]) == (str(k), ("evaluation", "ok", "3", "3", "0"))
        for k, r in enumerate(rounds[3:], start=4)
    ), net.logs()
    # Every peer is known by its key, which peers.csv records.
    keys_of = {r["peer"]: r["public_key"] for r in read_csv(state / "peers.csv")}
    for k in range(1, PEERS + 1):
        assert keys_of[f"p{k}"] == (allow / f"p{k}.pub").read_text().splitlines()[-1]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
