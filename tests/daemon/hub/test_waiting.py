"""A hub waiting for --min-peers says who is missing, in its status and, every
so often, in its log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fedd.crypto.secagg.fields import PeerId
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.membership import Bye
from fedd.daemon.transport.messages.status import StatusRequest
from tests.daemon.hostile import InProcessFederation


def notes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for")]


def test_the_waiting_hub_names_the_peers_that_left_or_went_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fedd.hub")
    with InProcessFederation(tmp_path, peers=3, hub_options={"min_peers": 3}) as fed:
        fed.run_until(lambda: fed.hub.rounds.current is not None)  # all three are in
        p3 = InProcessFederation.routing("p3")
        fed.exited[p3] = 0  # p3 is stopped: it says Bye, then nothing more
        fed.to_hub(p3, wire.encode(Bye(fed.hub.run_id, 0)))
        fed.run_until(lambda: "waiting for peers" in fed.hub.rounds.waiting_note)
        hub = fed.hub
        status = hub._status(StatusRequest("", 0, "summary"))
    note = "waiting for peers: 2/3 alive; gone silent or left: p3"
    assert hub.rounds.waiting_note == note
    assert status.data["stage"] == note
    assert notes(caplog) == [note]


def test_the_waiting_note_comes_again_every_half_minute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fedd.hub")
    with InProcessFederation(tmp_path, peers=2, hub_options={"min_peers": 3}) as fed:
        fed.run_until(lambda: "waiting for peers" in fed.hub.rounds.waiting_note)
        rounds = fed.hub.rounds
        alive = (PeerId("p1"), PeerId("p2"))
        never = -float("inf")
        start = fed.hub.clock()
        for later in (1.0, 29.0, 31.0, 45.0, 62.0):
            assert rounds.maybe_start(alive, alive, start + later, never, ()) == []
    assert (
        notes(caplog)
        == [
            "waiting for peers: 2/3 alive; none has gone silent or left: "
            "the others have not registered yet"
        ]
        * 3
    )
