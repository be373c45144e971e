"""The queue of models waiting for their federated scores."""

from __future__ import annotations

import itertools

from fedd.daemon.hub.evaluation import MAX_PASSES, TARGET_BOUND, Evaluations
from fedd.learner.binned import ScoreCounts

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
