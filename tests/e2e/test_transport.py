"""CURVE between real processes, and shards the hub hands to identical peers."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fedd.daemon.transport.curve import generate
from fedd.launch import FEDD, Child
from fedd.learner.dataset import read_dataset
from fedd.learner.holdout import split_holdout
from fedd.learner.shards import shard_path
from tests.e2e.conftest import Cluster, Shards, check_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """hub + p1..p3 key pairs under keys/; allow/ holds the .pub of p1 and p2 only."""
    root = tmp_path / "keys"
    allow = tmp_path / "allow"
    allow.mkdir()
    for name in ("hub", "p1", "p2", "p3"):
        public, _ = generate(root, name)
        if name in ("p1", "p2"):
            shutil.copy(public, allow / public.name)
    return root


def curve_hub(cluster: Cluster, keys: Path, *args: str) -> Child:
    return cluster.hub(
        "--curve-secret",
        str(keys / "hub.secret"),
        "--allow-dir",
        str(keys.parent / "allow"),
        *args,
    )


def curve_peer(cluster: Cluster, keys: Path, name: str, data: Path, *args: str) -> Child:
    return cluster.spawn(
        name,
        "start",
        "peer",
        "--connect",
        cluster.address,
        "--data",
        str(data),
        "--state-dir",
        str(cluster.root / name),
        "--curve-secret",
        str(keys / f"{name}.secret"),
        "--hub-public",
        str(keys / "hub.pub"),
        *args,
    )


def status(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FEDD, "status", *args, "--hub", cluster.address, "--json", "--timeout", "5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )


def test_allowed_peers_complete_rounds_and_an_unknown_key_never_takes_part(
    cluster: Cluster, shards: Shards, keys: Path
):
    hub = curve_hub(
        cluster, keys, "--min-peers", "2", "--rounds", "2", "--secagg", "full", "--exit-when-done"
    )
    intruder = curve_peer(cluster, keys, "p3", shards.peers[2])
    cluster.wait_for(
        lambda: "denied a CURVE connection" in hub.output(), 30, "the hub to deny p3's key"
    )
    assert "key not on the allow-list" in hub.output()
    # The hub answers status over CURVE to its own key, and counts the denial.
    summary = status(cluster, "--curve-secret", str(keys / "hub.secret"))
    assert '"transport": "curve"' in summary.stdout
    assert '"keys_allowed": 2' in summary.stdout
    assert '"auth_denied": 0' not in summary.stdout
    cluster.wait_for(
        lambda: "the hub refused this key" in intruder.output(), 30, "p3 to learn it was refused"
    )

    curve_peer(cluster, keys, "p1", shards.peers[0])
    curve_peer(cluster, keys, "p2", shards.peers[1])
    assert hub.wait(120) == 0, cluster.logs()
    assert intruder.alive(), cluster.logs()  # still knocking, never let in
    log = cluster.rows("round_log.csv")
    check_run(log, training=2)
    assert all((r["status"], r["participants"]) == ("ok", "2") for r in log), log
    peers = {r["peer"]: r for r in cluster.rows("peers.csv")}
    assert sorted(peers) == ["p1", "p2"]
    for name in ("p1", "p2"):
        assert peers[name]["public_key"] in (keys / f"{name}.pub").read_text()
    assert {r["peer"] for r in cluster.rows("client_perf.csv")} == {"p1", "p2"}
    assert "transport is not authenticated" not in hub.output()


def test_a_peer_claiming_another_peers_id_is_refused(cluster: Cluster, shards: Shards, keys: Path):
    hub = curve_hub(cluster, keys, "--min-peers", "2")
    impostor = curve_peer(cluster, keys, "p2", shards.peers[1], "--peer-id", "p1")
    assert impostor.wait(30) == 1, cluster.logs()
    assert "this CURVE key is allowed as 'p2', not as 'p1'" in impostor.output()
    assert "refused peer p1" in hub.output()
    # A peer key with the hub's public key works for status too; no peer registered.
    reply = status(
        cluster,
        "peers",
        "--curve-secret",
        str(keys / "p1.secret"),
        "--hub-public",
        str(keys / "hub.pub"),
    )
    assert '"peers": []' in reply.stdout


def test_status_without_curve_keys_gets_no_answer_from_a_curve_hub(cluster: Cluster, keys: Path):
    hub = curve_hub(cluster, keys)
    cluster.wait_for(lambda: "listening on" in hub.output(), 30, "the hub to start")
    reply = status(cluster, check=False)
    assert reply.returncode == 1
    assert "does it use CURVE?" in reply.stderr and reply.stderr.count("\n") == 1


def test_plain_daemons_warn_that_traffic_is_unauthenticated(cluster: Cluster, shards: Shards):
    hub = cluster.hub("--min-peers", "1", "--secagg", "off", "--rounds", "1", "--exit-when-done")
    peer = cluster.peer("p1", shards.peers[0])
    assert hub.wait(60) == 0, cluster.logs()
    assert peer.wait(30) == 0, cluster.logs()
    for child in (hub, peer):
        assert "transport is not authenticated or encrypted (no CURVE)" in child.output()


# -- --shard auto ---------------------------------------------------------------------


def training_sizes(shards: Shards) -> dict[int, int]:
    """Shard k's training rows: its rows less those a peer holds out by default."""
    with open(shards.train.parent / "partition.csv", newline="") as f:
        count = len(list(csv.DictReader(f)))
    directory = shards.peers[0].parent
    return {
        k: split_holdout(read_dataset(shard_path(directory, k)), 0.2, 42).train.n_rows
        for k in range(1, count + 1)
    }


def auto_peer(cluster: Cluster, name: str, *source: str) -> Child:
    """A peer started exactly like its siblings: only its state directory differs."""
    return cluster.spawn(
        name,
        "start",
        "peer",
        "--connect",
        cluster.address,
        "--shard",
        "auto",
        "--state-dir",
        str(cluster.root / name),
        *source,
    )


def test_identical_peers_get_distinct_shards_and_train_on_them(cluster: Cluster, shards: Shards):
    hub = cluster.hub("--min-peers", "3", "--rounds", "1", "--secagg", "off", "--exit-when-done")
    data_dir = str(shards.peers[0].parent)
    peers = [auto_peer(cluster, f"r{k}", "--data-dir", data_dir) for k in range(3)]
    assert hub.wait(90) == 0, cluster.logs()
    for p in peers:
        assert p.wait(30) == 0, cluster.logs()
    rows = cluster.rows("peers.csv")
    assert sorted(int(r["shard"]) for r in rows) == [1, 2, 3]
    sizes = training_sizes(shards)
    # Each peer trained on the shard it was given: its sample count is that shard's
    # training rows.
    by_peer = {r["peer"]: int(r["shard"]) for r in rows}
    clients = cluster.rows("client_perf.csv")
    assert len(clients) == 3
    for r in clients:
        assert int(r["n_samples"]) == sizes[by_peer[r["peer"]]]
    for p in peers:
        assert "loaded shard" in p.output()


def test_synthetic_shards_and_a_shard_limit_make_extra_peers_wait(cluster: Cluster):
    hub = cluster.hub(
        "--min-peers", "2", "--rounds", "2", "--secagg", "full", "--shards", "2", "--exit-when-done"
    )
    source = ("--synth-rows", "600", "--synth-seed", "5")
    first = [auto_peer(cluster, f"s{k}", *source) for k in range(2)]
    cluster.wait_for(
        lambda: sum("loaded shard" in p.output() for p in first) == 2, 60, "two shards loaded"
    )
    extra = auto_peer(cluster, "s2", *source)
    cluster.wait_for(
        lambda: "all 2 shards are held by alive peers" in extra.output(), 30, "the third to wait"
    )
    assert hub.wait(90) == 0, cluster.logs()
    log = cluster.rows("round_log.csv")
    assert all(r["status"] == "ok" and r["participants"] == "2" for r in log), log
    loaded = sorted(
        int(m.group(1)) for p in first for m in [re.search(r"loaded shard (\d+)", p.output())] if m
    )
    assert loaded == [1, 2], cluster.logs()
    assert "synthetic shard" in first[0].output()


def test_status_peer_is_the_peers_health_check(cluster: Cluster, shards: Shards):
    cluster.hub("--min-peers", "5", "--rounds", "1", "--secagg", "off")
    peer = cluster.peer("p1", shards.peers[0])
    cluster.wait_for(lambda: "registered with the hub" in peer.output(), 30, "p1 to register")

    def health() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FEDD, "status", "peer", "--hub", cluster.address],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "FEDD_STATE_DIR": str(cluster.root / "p1")},
            check=False,
        )

    alive = health()
    assert alive.returncode == 0 and "peer p1 is alive" in alive.stdout, alive.stderr
    peer.popen.terminate()
    assert peer.wait(30) == 0
    left = health()
    assert left.returncode == 1 and "counts peer 'p1' as left" in left.stderr


def test_the_allow_list_is_reloaded_admitting_and_revoking_keys(
    cluster: Cluster, shards: Shards, keys: Path
):
    allow = keys.parent / "allow"
    (allow / "p2.pub").unlink()
    hub = curve_hub(cluster, keys, "--min-peers", "3")  # no round starts: only p1 and p3
    p1 = curve_peer(cluster, keys, "p1", shards.peers[0])
    p3 = curve_peer(cluster, keys, "p3", shards.peers[2])
    cluster.wait_for(lambda: "peer p1 registered" in hub.output(), 30, "p1 to register")
    cluster.wait_for(lambda: "the hub refused this key" in p3.output(), 30, "p3 to be denied")

    shutil.copy(keys / "p3.pub", allow / "p3.pub")
    (allow / "p1.pub").unlink()
    cluster.wait_for(lambda: "peer p3 registered" in hub.output(), 30, "p3 to be admitted")
    assert p1.wait(30) == 1, cluster.logs()
    assert "this key is no longer allowed" in p1.output()
    assert "peer p1: its key left the allow-list; dropped" in hub.output()
    peers = {p["peer"]: p["status"] for p in cluster_peers(cluster, keys)}
    assert peers == {"p1": "left", "p3": "alive"}


def cluster_peers(cluster: Cluster, keys: Path) -> list[dict[str, object]]:
    import json

    reply = status(cluster, "peers", "--curve-secret", str(keys / "hub.secret"))
    peers: list[dict[str, object]] = json.loads(reply.stdout)["peers"]
    return peers
