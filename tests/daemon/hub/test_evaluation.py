"""The queue of models waiting for their federated scores."""

from __future__ import annotations

import itertools
from pathlib import Path

from fedd.daemon.hub.commit import Committer
from fedd.daemon.hub.config import HubConfig
from fedd.daemon.hub.evaluation import MAX_PASSES, TARGET_BOUND, Evaluations
from fedd.daemon.state.replay import RECENT_MODELS
from fedd.daemon.state.store import HubStore
from fedd.learner.binned import ScoreCounts
from fedd.peer.rounds import MODELS_KEPT
from tests.daemon.state._support import commit_next, started

MODEL = (0.1, 0.5, -0.25)


def lumped(bins: int) -> ScoreCounts:
    """Every row in one bin: however fine the bins, these counts bound nothing."""
    pos, neg = [0] * bins, [0] * bins
    pos[bins // 2], neg[bins // 2] = 5, 50
    return ScoreCounts(tuple(pos), tuple(neg), 5, 0, 5.0, 2)


def apart(bins: int) -> ScoreCounts:
    """Negatives in the lower half, positives in the upper: nothing to bound."""
    half = bins // 2
    pos = (0,) * half + (3,) * (bins - half)
    neg = (9,) * half + (0,) * (bins - half)
    return ScoreCounts(pos, neg, 3, 0, 2.0, 3)


def test_the_newest_and_the_oldest_models_are_asked_for() -> None:
    queue = Evaluations(threshold=0.4)
    assert queue.requests() == ()
    for number in (2, 3, 4):
        queue.add(number, MODEL)
    asked = queue.requests()
    assert [r.model_round for r in asked] == [4, 2]
    assert {r.threshold for r in asked} == {0.4} and 0.0 in asked[0].edges


def test_a_pass_with_small_bounds_gives_the_row() -> None:
    queue = Evaluations()
    queue.add(2, MODEL)
    (request,) = queue.requests()
    result = queue.on_result(request, apart(request.bins), committed_in=3)
    assert result.row is not None and not queue.pending
    row = result.row
    assert (row.round, row.source, row.committed_in, row.peers) == (2, "federated", 3, 3)
    assert row.roc_auc == 1.0 and row.roc_auc_bound == 0.0 and row.pr_auc_bound == 0.0


def test_large_bounds_ask_again_with_finer_bins_then_give_up_with_what_they_reached() -> None:
    queue = Evaluations()
    queue.add(2, MODEL)
    edges = []
    for number in range(MAX_PASSES):
        (request,) = queue.requests()
        edges.append(request.edges)
        result = queue.on_result(request, lumped(request.bins), committed_in=3 + number)
        if number < MAX_PASSES - 1:
            assert result.row is None and queue.pending and "finer bins" in result.note
    assert result.row is not None and result.row.roc_auc_bound >= TARGET_BOUND
    assert "still above" in result.note and not queue.pending
    for before, after in itertools.pairwise(edges):
        # The bin that held every row is cut in the next pass.
        k = (len(before) + 1) // 2
        lower, upper = before[k - 1], before[k]
        assert any(lower < e < upper for e in after), (lower, upper)


def test_no_scorer_or_one_class_gives_no_row_and_a_reason() -> None:
    queue = Evaluations()
    queue.add(2, MODEL)
    queue.add(3, MODEL)
    first, second = queue.requests()
    nobody = ScoreCounts((0,) * first.bins, (0,) * first.bins, 0, 0, 0.0, 0)
    assert "no peer scored" in queue.on_result(first, nobody, 4).note
    one_class = ScoreCounts((0,) * second.bins, (1,) * second.bins, 0, 1, 1.0, 2)
    assert "one class" in queue.on_result(second, one_class, 4).note
    assert not queue.pending


def test_a_result_for_bins_no_longer_asked_for_changes_nothing() -> None:
    queue = Evaluations()
    queue.add(2, MODEL)
    (request,) = queue.requests()
    queue.on_result(request, lumped(request.bins), committed_in=3)  # refined
    assert queue.on_result(request, apart(request.bins), committed_in=4).row is None
    assert queue.pending


def test_a_restarted_hub_asks_again_for_the_recent_models_the_peers_did_not_score(
    tmp_path: Path,
) -> None:
    """The queue does not survive a restart: the hub rebuilds it from its state,
    every ok training round after the newest one with federated scores, each
    model bit for bit as committed, and no more than RECENT_MODELS of them."""
    store = started(tmp_path)
    models = {}
    for r in range(1, 13):
        kind = "statistics" if r == 1 else "training"
        status = "aborted" if r == 8 else "ok"
        commit_next(store, r, kind=kind, status=status, metrics=False, scores=[3] if r == 5 else [])
        if kind == "training" and status == "ok":
            models[r] = tuple(store.model or ())
    assert store.models == {r: models[r] for r in (4, 5, 6, 7, 9, 10, 11, 12)}  # the last 8
    again = HubStore.open(tmp_path)
    assert again.models == store.models  # replayed from updates.csv: the same floats

    def unscored(state: HubStore) -> list[int]:
        config = HubConfig(bind="inproc://unused", state_dir=tmp_path)
        listed = Committer(config, state, Evaluations(), None).unscored_models()
        assert [model for _, model in listed] == [models[r] for r, _ in listed]
        return [r for r, _ in listed]

    assert unscored(again) == [4, 5, 6, 7, 9, 10, 11, 12]  # after round 3, the one scored
    commit_next(again, 13, metrics=False, scores=[10])
    models[13] = tuple(again.model or ())
    assert unscored(HubStore.open(tmp_path)) == [11, 12, 13]


def test_a_restarted_hub_rebuilds_as_many_models_as_a_peer_keeps_to_score() -> None:
    # daemon/ never imports peer/: this keeps the two in step.
    assert RECENT_MODELS == MODELS_KEPT
