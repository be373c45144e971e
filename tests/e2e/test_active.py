"""Active rounds with real daemons: signed keys, the graph seed the peers draw, the
consistency check, peers' policies, and attackers that no longer get anywhere."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import pytest
import zmq

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert
from fedd.crypto.secagg.params import Mode
from fedd.crypto.secagg.shape import choose_shape
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.membership import Heartbeat, Hello
from fedd.daemon.transport.messages.rounds import RoundStart
from fedd.daemon.transport.signkeys import generate_signing
from tests.daemon.hostile import squeeze_evaluations
from tests.e2e.conftest import Cluster, Shards, check_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def outcome(cluster: Cluster) -> list[tuple[str, str, str, str]]:
    """Each round's (kind, status, participants, survivors), evaluation passes squeezed."""
    return squeeze_evaluations(
        (r["kind"], r["status"], r["participants"], r["survivors"])
        for r in cluster.rows("round_log.csv")
    )


def signing_keys(root: Path, names: list[str]) -> Path:
    """Each peer's NAME.sigkey in root/keys; every NAME.sigpub in root/trusted."""
    keys, trusted = root / "keys", root / "trusted"
    trusted.mkdir(parents=True)
    for name in names:
        public, _ = generate_signing(keys, name)
        shutil.copy(public, trusted / public.name)
    return trusted


def signed_peer(cluster: Cluster, shards: Shards, k: int, trusted: Path, *extra: str):
    """Peer pk, on shard k (shard k - 5 for a sixth peer or later)."""
    name = f"p{k}"
    return cluster.peer(
        name, shards.peers[(k - 1) % len(shards.peers)], "--signing-key",
        str(cluster.root / "keys" / f"{name}.sigkey"), "--trusted-dir", str(trusted), *extra,
    )  # fmt: skip


def test_active_rounds_complete_with_signed_peers(cluster, shards):
    # Eight peers: the first number for which an active SecAgg+ graph is sparse
    # (k = 6), so the peers draw its seed.
    trusted = signing_keys(cluster.root, [f"p{k}" for k in range(1, 9)])
    hub = cluster.hub(
        "--min-peers", "8", "--rounds", "2", "--secagg", "plus", "--active", "--exit-when-done"
    )
    for k in range(1, 9):
        signed_peer(cluster, shards, k, trusted, "--require", "active")
    assert hub.wait(120) == 0, cluster.logs()
    log = cluster.rows("round_log.csv")
    check_run(log, training=2)
    assert all((r["status"], r["survivors"]) == ("ok", "8") for r in log), log


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


def test_a_peer_declines_parameters_weaker_than_its_floor(cluster, shards):
    # The hub sizes rounds for 5% corruption: with 4 peers, one corrupt, t = 3.
    # A peer that assumes half of them corrupt needs t above (4 + 2)/2 and says so.
    trusted = signing_keys(cluster.root, ["p1", "p2", "p3", "p4"])
    hub = cluster.hub(
        "--min-peers", "4", "--rounds", "1", "--secagg", "full", "--active", "--exit-when-done"
    )
    for k in (1, 2, 3):
        signed_peer(cluster, shards, k, trusted)
    wary = signed_peer(cluster, shards, 4, trusted, "--corrupt", "0.5")
    assert hub.wait(120) == 0, cluster.logs()
    rounds = outcome(cluster)
    assert {(status, n, survivors) for _, status, n, survivors in rounds} == {("ok", "4", "3")}
    weaker = "the round's parameters are weaker than this peer accepts (--corrupt 0.5"
    assert weaker in hub.output() and weaker in wary.output()


def test_an_active_plus_round_rebuilds_the_nonce_of_a_peer_that_never_reveals_it(cluster, shards):
    # exit-at:share-keys strikes when the roster arrives: after this peer committed
    # to its graph-seed nonce and dealt its shares, before it reveals the nonce.
    # Eight peers make the graph sparse; a ninth joins for the rounds after.
    trusted = signing_keys(cluster.root, [f"p{k}" for k in range(1, 10)])
    hub = cluster.hub(
        "--min-peers", "8", "--rounds", "1", "--secagg", "plus", "--active", "--exit-when-done"
    )
    for k in range(1, 8):
        signed_peer(cluster, shards, k, trusted)
    doomed = signed_peer(cluster, shards, 8, trusted, "--fault", "exit-at:share-keys")
    assert doomed.wait(60) == 3, cluster.logs()
    signed_peer(cluster, shards, 9, trusted)
    assert hub.wait(120) == 0, cluster.logs()
    assert choose_shape(8, Mode.PLUS, dropout=0.1, corrupt=0.05, active=True).k < 7
    first = outcome(cluster)[0]
    assert first == ("statistics", "ok", "8", "7"), cluster.logs()


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


# X25519 u-coordinate of a point of order 8 (RFC 7748, section 6.1).
LOW_ORDER = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")


def test_a_peer_advertising_a_low_order_key_is_excluded_and_not_its_neighbours(cluster, shards):
    hub = cluster.hub("--min-peers", "4", "--rounds", "1", "--secagg", "full", "--exit-when-done")
    with open(shards.peers[0], newline="") as f:
        features = tuple(c for c in next(csv.reader(f)) if c != "Class")
    ctx = zmq.Context()
    mallory = ctx.socket(zmq.DEALER)
    mallory.setsockopt(zmq.LINGER, 0)
    mallory.connect(cluster.address)
    adverts, run = 0, ""
    try:
        mallory.send(wire.encode(Hello("", 0, PeerId("mallory"), features)))
        peers = [cluster.peer(f"p{k}", shards.peers[k - 1]) for k in (1, 2, 3)]
        deadline = time.monotonic() + 120
        while hub.alive() and time.monotonic() < deadline:
            if not mallory.poll(100):
                if run:
                    mallory.send(wire.encode(Heartbeat(run, 0)))
                continue
            msg = wire.decode(mallory.recv())
            run = msg.run or run
            if type(msg) is RoundStart and msg.secagg is not None:
                # A valid advertisement in every respect but its s_pk.
                advert = KeyAdvert(msg.run, msg.round, bytes(range(1, 33)), LOW_ORDER)
                mallory.send(wire.encode(advert))
                adverts += 1
        assert hub.wait(60) == 0, cluster.logs()
    finally:
        mallory.close()
        ctx.term()
    assert adverts >= 2, cluster.logs()
    rounds = outcome(cluster)
    assert {(status, n, survivors) for _, status, n, survivors in rounds} == {("ok", "4", "3")}
    assert "advertised a low-order public key" in hub.output()
    honest = [f"p{k}" for k in (1, 2, 3)]
    assert not any(
        f"{p}: " in line and "timed out" in line
        for line in hub.output().splitlines()
        for p in honest
    )
    for p in peers:
        assert "left the protocol" not in p.output(), p.output()
