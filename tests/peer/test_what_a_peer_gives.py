"""What a peer agrees to contribute: its statistics once per run, and scores only of
models of training rounds it took part in, exactly as they were presented.

A real hub and real peers run in this process (tests/daemon/hostile.py); after
an honest run the tests send one peer the RoundStarts a lying hub would, and
decode what the peer sends back.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.rounds import Decline, EvalRequest, RoundStart
from fedd.daemon.transport.messages.uploads import PlainContribution
from fedd.learner.binned import ScoreCounts
from fedd.peer.state import PeerState
from tests.daemon.hostile import InProcessFederation

P1 = InProcessFederation.routing("p1")


def _answer(fed: InProcessFederation, start: RoundStart) -> list[object]:
    """Deliver `start` to p1, let its job finish, return what it sent."""
    agent = fed.agents[P1]
    fed.dealers[P1].take()
    assert fed.to_peer(P1, wire.encode(start)) is None
    deadline = time.monotonic() + 30
    while agent.rounds.job is not None:
        assert time.monotonic() < deadline
        if agent.rounds.job.future.done():
            agent.on_job_done()
        else:
            time.sleep(0.01)
    return [wire.decode(frame) for frame in fed.dealers[P1].take()]


def _scores(start: RoundStart, sent: list[object]) -> list[ScoreCounts | None]:
    [contribution] = [m for m in sent if type(m) is PlainContribution]
    return start.layout.decode(contribution.vector, 1).scores


def test_a_peer_gives_its_statistics_once_per_run(tmp_path: Path) -> None:
    with InProcessFederation(tmp_path, peers=2, rounds=1, secagg="off") as fed:
        fed.run_rounds()
        run, model = fed.hub.run_id, tuple(fed.hub.rounds.model or ())
        again = RoundStart(run, 40, "statistics", "off", model)
        sent = _answer(fed, again)
    assert [type(m) for m in sent] == [Decline]
    assert "once per run" in sent[0].reason  # type: ignore[attr-defined]
    state = PeerState.open(tmp_path / "p1")
    assert state.statistics_given(run) and not state.statistics_given("run-other")
    # A new run is another matter: the same peer gives that run its statistics.
    with InProcessFederation(tmp_path / "second", peers=2, rounds=1, secagg="off") as fed:
        rows = fed.run_rounds()
    assert rows[0].kind == "statistics" and rows[0].survivors == 2


def test_a_peer_scores_only_models_of_rounds_it_took_part_in(tmp_path: Path) -> None:
    with InProcessFederation(tmp_path, peers=2, rounds=2, secagg="off") as fed:
        rows = fed.run_rounds()
        training = [r.round for r in rows if r.kind == "training" and r.status == "ok"]
        run = fed.hub.run_id
        scaling = fed.hub.rounds.scaling
        model = tuple(fed.hub.rounds.model or ())
        holdout = fed.agents[P1].data.holdout  # type: ignore[union-attr]
        assert holdout is not None and scaling is not None
        edges = (-1.0, 0.0, 1.0)
        last = training[-1]
        honest = EvalRequest(last, model, edges, 0.5)
        forged = EvalRequest(last, tuple(v + 1.0 for v in model), edges, 0.5)
        start = RoundStart(run, 60, "evaluation", "off", model, None, scaling, (honest, forged))
        scored, refused = _scores(start, _answer(fed, start))
        never = EvalRequest(last + 100, model, edges, 0.5)
        start = RoundStart(run, 61, "evaluation", "off", model, None, scaling, (never,))
        (unknown,) = _scores(start, _answer(fed, start))
    # The model the first round after `last` presented: scored, on every held-out row.
    assert scored is not None and scored.peers == 1 and scored.rows == holdout.n_rows
    # Another model under that round's name, or a round p1 never trained in: zeros, no peer.
    nothing = ScoreCounts((0,) * 4, (0,) * 4, 0, 0, 0.0, 0)
    assert refused == nothing and unknown == nothing


def test_a_training_round_whose_end_never_came_counts_once_a_later_round_starts(
    tmp_path: Path,
) -> None:
    """A hub restarted between committing a training round and saying so: the
    peer's vector left, so the model the next RoundStart presents is scored."""
    starts: list[RoundStart] = []

    def keep(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        msg = wire.decode(frame)
        if routing == P1 and type(msg) is RoundStart and msg.kind == "training":
            starts.append(msg)
        return [frame]

    with InProcessFederation(tmp_path, peers=2, rounds=2, secagg="off", hook=keep) as fed:
        fed.run_rounds()
        run, scaling = fed.hub.run_id, fed.hub.rounds.scaling
        holdout = fed.agents[P1].data.holdout  # type: ignore[union-attr]
        assert holdout is not None and scaling is not None and starts
        training = dataclasses.replace(starts[-1], round=70, evals=())
        assert any(type(m) is PlainContribution for m in _answer(fed, training))
        # No RoundEnd for round 70: the next round presents its outcome.
        outcome = tuple(v + 0.25 for v in training.model)
        request = EvalRequest(70, outcome, (-1.0, 0.0, 1.0), 0.5)
        start = RoundStart(run, 71, "evaluation", "off", outcome, None, scaling, (request,))
        (scored,) = _scores(start, _answer(fed, start))
        # Only that first model: another under round 70's name later is not scored.
        other = EvalRequest(70, training.model, (-1.0, 0.0, 1.0), 0.5)
        start = RoundStart(run, 72, "evaluation", "off", outcome, None, scaling, (other,))
        (refused,) = _scores(start, _answer(fed, start))
    assert scored is not None and scored.peers == 1 and scored.rows == holdout.n_rows
    assert refused is not None and refused.peers == 0


def test_peers_that_gave_statistics_to_an_aborted_round_are_not_asked_again(
    tmp_path: Path,
) -> None:
    """The statistics of round 1 are lost on the way: the peers gave them, so they
    decline the retry, and the hub waits, saying why, instead of starting
    statistics rounds back to back."""

    def lose_statistics(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        message = wire.decode(frame)
        lost = direction == "to_hub" and type(message) is PlainContribution
        return [] if lost and message.round == 1 else [frame]

    options = {"train_timeout": 0.5}
    with InProcessFederation(
        tmp_path, peers=2, rounds=1, secagg="off", hook=lose_statistics, hub_options=options
    ) as fed:
        fed.run_until(lambda: "once per run" in fed.hub.rounds.waiting_note, timeout=30)
        deadline = time.monotonic() + 3  # long enough for a loop to start many rounds
        while time.monotonic() < deadline:
            fed.step()
        rows = fed.round_log()
        note = fed.hub.rounds.waiting_note
    assert [(r.kind, r.status) for r in rows] == [("statistics", "aborted")] * 2
    assert "p1, p2 declined" in note and "fresh state directory" in note
    for name in ("p1", "p2"):
        assert PeerState.open(tmp_path / name).statistics_given(fed.hub.run_id)
