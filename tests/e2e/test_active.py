"""Active rounds with real daemons: signed keys, the consistency check, and peers' policies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fedd.daemon.transport.signkeys import generate_signing
from tests.e2e.conftest import Cluster, Shards, check_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def signing_keys(root: Path, names: list[str]) -> Path:
    """Each peer's NAME.sigkey in root/keys; every NAME.sigpub in root/trusted."""
    keys, trusted = root / "keys", root / "trusted"
    trusted.mkdir(parents=True)
    for name in names:
        public, _ = generate_signing(keys, name)
        shutil.copy(public, trusted / public.name)
    return trusted


def signed_peer(cluster: Cluster, shards: Shards, k: int, trusted: Path, *extra: str):
    name = f"p{k}"
    return cluster.peer(
        name, shards.peers[k - 1], "--signing-key", str(cluster.root / "keys" / f"{name}.sigkey"),
        "--trusted-dir", str(trusted), *extra,
    )  # fmt: skip


def test_active_rounds_complete_with_signed_peers(cluster, shards):
    trusted = signing_keys(cluster.root, ["p1", "p2", "p3", "p4"])
    hub = cluster.hub(
        "--min-peers", "4", "--rounds", "2", "--secagg", "plus", "--active", "--exit-when-done"
    )
    for k in (1, 2, 3, 4):
        signed_peer(cluster, shards, k, trusted, "--require", "active")
    assert hub.wait(120) == 0, cluster.logs()
    log = cluster.rows("round_log.csv")
    check_run(log, training=2)
    assert all((r["status"], r["survivors"]) == ("ok", "4") for r in log), log


def test_a_peer_dying_after_masking_is_still_unmasked_in_an_active_round(cluster, shards):
    trusted = signing_keys(cluster.root, ["p1", "p2", "p3", "p4", "p5"])
    hub = cluster.hub(
        "--min-peers", "4", "--rounds", "1", "--secagg", "full", "--active", "--exit-when-done"
    )
    for k in (1, 2, 3):
        signed_peer(cluster, shards, k, trusted)
    doomed = signed_peer(cluster, shards, 4, trusted, "--fault", "exit-at:unmask")
    assert doomed.wait(60) == 3, cluster.logs()
    signed_peer(cluster, shards, 5, trusted)  # the rounds after the first need a fourth peer
    assert hub.wait(120) == 0, cluster.logs()
    log = cluster.rows("round_log.csv")
    check_run(log, training=1)
    # Its input is in the sum of round 1, the statistics round; the others'
    # signatures and shares unmask it.
    assert all((r["status"], r["survivors"]) == ("ok", "4") for r in log), log
    run = {r["key"]: r["value"] for r in cluster.rows("run.csv")}
    assert (run["statistics_round"], run["statistics_peers"]) == ("1", "4")


def test_a_peer_requiring_active_rounds_declines_a_passive_one(cluster, shards):
    trusted = signing_keys(cluster.root, ["p1", "p2", "p3"])
    hub = cluster.hub("--min-peers", "3", "--rounds", "1", "--secagg", "full", "--exit-when-done")
    cluster.peer("p1", shards.peers[0])
    cluster.peer("p2", shards.peers[1])
    strict = signed_peer(cluster, shards, 3, trusted, "--require", "active")
    assert hub.wait(120) == 0, cluster.logs()
    log = cluster.rows("round_log.csv")
    check_run(log, training=1)
    assert all((r["status"], r["participants"], r["survivors"]) == ("ok", "3", "2") for r in log)
    assert "declined: this peer requires the active-adversary protocol" in hub.output()
    assert "declined" in strict.output()


def test_a_peer_without_signing_keys_declines_an_active_round(cluster, shards):
    trusted = signing_keys(cluster.root, ["p1", "p2", "p3", "p4"])
    hub = cluster.hub(
        "--min-peers", "4", "--rounds", "1", "--secagg", "full", "--active", "--exit-when-done"
    )
    for k in (1, 2, 3):
        signed_peer(cluster, shards, k, trusted)
    cluster.peer("p4", shards.peers[3])
    assert hub.wait(120) == 0, cluster.logs()
    log = cluster.rows("round_log.csv")
    check_run(log, training=1)
    assert all((r["status"], r["participants"], r["survivors"]) == ("ok", "4", "3") for r in log)
    assert "needs this peer's --signing-key and --trusted-dir" in hub.output()


def test_peer_key_options_are_checked_at_start(cluster, shards):
    trusted = signing_keys(cluster.root, ["p1"])
    half = cluster.peer("half", shards.peers[0], "--trusted-dir", str(trusted))
    assert half.wait(30) == 1 and "both --signing-key and --trusted-dir" in half.output()
    strict = cluster.peer("strict", shards.peers[0], "--require", "active")
    assert strict.wait(30) == 1 and "--require active needs" in strict.output()
    key = cluster.root / "keys" / "p1.sigkey"
    key.chmod(0o644)
    loose = cluster.peer(
        "loose", shards.peers[0], "--signing-key", str(key), "--trusted-dir", str(trusted)
    )
    assert loose.wait(30) == 1 and "chmod 600" in loose.output()
