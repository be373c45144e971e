"""What a peer logs about its rounds: one line for each thing that happened, and
nothing a person cannot read (no `nan`)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tests.daemon.hostile import InProcessFederation


def test_a_declined_round_is_said_once_and_no_line_holds_nan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """p3 declines every round (it insists on the active protocol); the hub drops it
    with a RoundAbort, and then ends the round with RoundEnd: the RoundAbort is no
    line of its own."""
    caplog.set_level(logging.INFO, logger="fedd.peer")
    options = {"min_peers": 2, "secagg_threshold": 2}
    with InProcessFederation(tmp_path, peers=2, rounds=1, hub_options=options) as fed:
        fed.add_peer("p3", seed=3, require="active")
        rows = fed.run_rounds()
    lines = [r.getMessage() for r in caplog.records if r.name == "fedd.peer"]
    assert not [line for line in lines if "RoundAbort" in line or "nan" in line]
    why = "this peer requires the active-adversary protocol (--require active)"
    for row in rows:
        said = [line for line in lines if line.startswith(f"round {row.round}")]
        declined = [line for line in said if why in line]
        # One line when it declines, one when the round ends (p3); one for each other peer.
        assert declined == [
            f"round {row.round}: declined: {why}",
            f"round {row.round} {row.kind} declined: {why}",
        ]
        assert len(said) == 4
    training = [line for line in lines if re.match(r"round \d+ training ok \(", line)]
    assert len(training) == 2
    assert all(re.search(r"local ROC-AUC before training 0\.\d{4}; ", t) for t in training)
