"""A peer that is not registered with its hub says so every few seconds."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fedd.crypto.secagg.fields import PeerId
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.membership import Welcome
from fedd.peer.agent import PeerAgent
from fedd.peer.config import PeerConfig
from tests.daemon.hostile import FakeDealer, write_shard

HUB = "tcp://127.0.0.1:5599"


def notes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for")]


def test_a_peer_without_its_hub_says_so_every_five_seconds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fedd.peer")
    shard = write_shard(tmp_path / "p1.csv", rows=40, features=3, seed=1)
    agent = PeerAgent(PeerConfig(HUB, shard, tmp_path / "p1", peer_id="p1"))
    agent._sock = FakeDealer()  # type: ignore[assignment]
    try:
        t0 = 1000.0
        for tick in range(25):  # 12 seconds of a loop that wakes every half second
            agent._timers(t0 + tick / 2)
        assert notes(caplog) == [
            f"waiting for the hub at {HUB}: not registered after {s}s "
            "(no answer; is it running, at that address?)"
            for s in (5, 10)
        ]
        # The hub answers, but refuses for now; then it takes the peer.
        agent._on_frame(wire.encode(Error("", 0, "peer id 'p1' is already connected")), t0 + 13)
        agent._timers(t0 + 15)
        assert notes(caplog)[-1].endswith("not registered after 15s (it answered, see above)")
        welcome = Welcome("run-1", 1, PeerId("p1"), 1.0, 0)
        agent._on_frame(wire.encode(welcome), t0 + 16)
        for tick in range(20):
            agent._timers(t0 + 16 + tick / 2)
        assert len(notes(caplog)) == 3
    finally:
        agent.rounds.shutdown()
        agent.lock.release()
