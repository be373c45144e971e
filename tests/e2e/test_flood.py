"""A real hub flooded from one connection while secure rounds run.

The flood mixes the mutation fuzzer's frames (from valid messages of the
current run: registrations, every protocol message, status requests),
random bytes up to 1 MB, and Hello/Bye cycles under new ids. The attacker
never reads, so the hub's replies pile up on its side too. Peers only ever
talk to their hub: their handling of hostile frames is fuzzed in process
(tests/peer/test_agent_hostile.py), with the real agent behind a socket the
test controls.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import pytest
import zmq

from fedd.crypto import shamir
from fedd.crypto.keys import AgreementKey
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.share_keys import SEALED_SIZE, EncryptedShares, SealedShare
from fedd.crypto.secagg.messages.unmask import RevealedShare, UnmaskShares
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.membership import Bye, Heartbeat, Hello
from fedd.daemon.transport.messages.status import StatusRequest
from fedd.daemon.transport.messages.uploads import PeerStats, PlainContribution
from fedd.learner.dataset import read_dataset
from tests.daemon.hostile import Mutator
from tests.e2e.conftest import Cluster, Shards

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

FLOOD_SECONDS = 5.0
# Generous: the hub holds a few rounds' state; a leak would grow with the frames sent.
RSS_BOUND_MB = 64


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def corpus(run: str, number: int, features: tuple[str, ...]) -> list[bytes]:
    """Valid frames of the current run for this round and the next: what the mutator starts from."""
    keys = [AgreementKey.generate().public for _ in range(2)]
    share = RevealedShare(PeerId("p1"), bytes(shamir.VALUE_SIZE))
    messages: list[wire.WireMessage] = [
        Hello("", 0, PeerId("intruder"), features),
        StatusRequest("", 0, "rounds", 10_000),
        Bye(run, 0),
    ]
    for r in (number, number + 1):
        messages += [
            Heartbeat(run, r),
            KeyAdvert(run, r, *keys),
            EncryptedShares(run, r, (SealedShare(PeerId("p1"), bytes(SEALED_SIZE)),)),
            MaskedInput(run, r, bytes(4 * (len(features) + 2))),
            UnmaskShares(run, r, (share,), ()),
            PeerStats(run, r, 10, 0.5, 0.5),
            PlainContribution(run, r, bytes(8 * (len(features) + 2))),
        ]
    return [wire.encode(m) for m in messages]


def test_a_flood_from_one_connection_leaves_the_hub_up_bounded_and_rounds_completing(
    cluster: Cluster, shards: Shards
) -> None:
    hub = cluster.hub("--min-peers", "3", "--rounds", "0", "--secagg", "full")
    for k in range(1, 4):
        cluster.peer(f"p{k}", shards.peers[k - 1])
    # The statistics round, then training rounds (--rounds 0: until stopped).
    cluster.wait_for(lambda: len(cluster.rows("round_log.csv")) >= 3, 90, "three rounds")
    before_mb = rss_mb(hub.popen.pid)
    summary = cluster.status()
    run, number = str(summary["run"]), int(str(summary["round"]))
    features = read_dataset(shards.peers[0]).features
    mutator = Mutator(corpus(run, number, features), seed=11)
    rng = random.Random(11)
    committed_before = len(cluster.rows("round_log.csv"))

    lines_before = len(hub.output().splitlines())
    flood_started = time.monotonic()
    ctx = zmq.Context()
    attacker = ctx.socket(zmq.DEALER)
    attacker.setsockopt(zmq.LINGER, 0)
    attacker.setsockopt(zmq.SNDHWM, 100_000)
    attacker.connect(cluster.address)
    sent = sent_bytes = 0
    try:
        deadline = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < deadline:
            roll = rng.random()
            if roll < 0.05:
                frames = [os.urandom(rng.choice([0, 1, 100, 65_536, 1 << 20]))]
            elif roll < 0.15:
                hello = Hello("", 0, PeerId(f"f{sent}"), features)
                frames = [wire.encode(hello), wire.encode(Bye("", 0))]
            else:
                frames = list(mutator.frames(1))
            for frame in frames:
                try:
                    attacker.send(frame, zmq.NOBLOCK)
                except zmq.Again:
                    time.sleep(0.001)
                    continue
                sent += 1
                sent_bytes += len(frame)
        cluster.wait_for(
            lambda: len(cluster.rows("round_log.csv")) >= committed_before + 3,
            60,
            "three more rounds after the flood began",
        )
        after_mb = rss_mb(hub.popen.pid)
        seconds = time.monotonic() - flood_started
    finally:
        attacker.close()
        ctx.term()
    print(
        f"flood: {sent} frames, {sent_bytes / 1e6:.1f} MB in {FLOOD_SECONDS:.0f}s; "
        f"hub RSS {before_mb:.1f} MB before, {after_mb:.1f} MB after; "
        f"{len(hub.output().splitlines()) - lines_before} hub log lines in {seconds:.1f}s, "
        "rounds included"
    )
    assert hub.alive(), cluster.logs()
    assert sent > 1000
    log = cluster.rows("round_log.csv")
    assert all(r["status"] == "ok" and r["survivors"] == "3" for r in log), log
    assert [r["round"] for r in log] == [str(i) for i in range(1, len(log) + 1)]
    assert [r["kind"] for r in log] == ["statistics", *["training"] * (len(log) - 1)], log
    assert {p["peer"] for p in cluster.status("peers")["peers"]} <= {
        "p1",
        "p2",
        "p3",
        "intruder",
    } | {f"f{i}" for i in range(sent + 1)}
    assert len(cluster.status("peers")["peers"]) <= 4  # one connection, at most one more id
    assert after_mb - before_mb < RSS_BOUND_MB
    output = hub.output()
    assert "dropped malformed message" in output
    # One line per dropped frame or Hello/Bye cycle would be `sent` lines; the
    # hub's log limits (10 a second for each of two kinds, plus a count of the
    # rest) keep it to a few dozen a second however fast the flood comes.
    flood_lines = [
        line
        for line in output.splitlines()[lines_before:]
        if re.search(r"dropped|refused|rejected| registered | left$|not logged one by one", line)
    ]
    bound = 2 * 11 * (seconds + 1)
    assert len(flood_lines) <= bound, f"{len(flood_lines)} lines in {seconds:.1f}s, {sent} frames"
    assert "not logged one by one" in output  # in a later line, or in a summary of its own
    hub.popen.send_signal(signal.SIGTERM)
    assert hub.wait(30) == 0, cluster.logs()
