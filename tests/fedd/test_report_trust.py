"""What the verdict rests on, as `fedd report` says it: the test rows and their
positives, what one transaction moves F1 by, intervals (paired when both models'
scores of each row are known), "not informative", and the training budgets."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from fedd.daemon.state.hubfiles import MetricsRow
from fedd.daemon.state.store import HubStore
from fedd.learner.errors import DataError
from fedd.report.budget import Budget, budget_lines, centralized_budget, federated_budget
from fedd.report.files import VERDICT_FILE
from fedd.report.rowscores import ROW_SCORES_FILE, read_row_scores, write_row_scores
from tests.daemon.state._support import FEATURES, commit_next, make_commit
from tests.fedd.test_report import centralized_csv, read_rows, report_args, run


def federation(
    root: Path,
    *,
    rounds: int = 3,
    local_epochs: int = 3,
    roc_auc: float = 0.9,
    precision: float = 0.75,
    recall: float = 0.6,
    f1: float = 0.8,
) -> Path:
    """A run under ROOT/hub: statistics of 900 rows from 3 peers, then `rounds` training
    rounds (2 of the 3 peers in each), each model scored on the hub's 200 test rows (20
    positive) at `recall` and `precision`; and the baseline's metrics in ROOT/central.csv
    (800 training rows, 2 epochs of minibatches of 512; 200 test rows, 20 positive)."""
    store = HubStore.open(root / "hub")
    settings = {"secagg": "full", "local_epochs": str(local_epochs), "batch_size": "512"}
    store.start("run-1", FEATURES, settings)
    commit_next(store, 1, kind="statistics")
    for r in range(2, rounds + 2):
        scores = MetricsRow(r, "test", r, 0, 200, 20, roc_auc, 0.0, 0.6, 0.0, precision, recall,
                            f1, 0.5, 0.5, f1, 0.01)  # fmt: skip
        commit = make_commit(r, previous=store.model, metrics=False)
        store.commit(dataclasses.replace(commit, metrics=[scores]))
    centralized_csv(root / "central.csv")
    return root


def report(root: Path, *args: str | Path) -> str:
    result = run(*report_args(root), *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_neither_model_catching_a_fraud_is_not_informative(tmp_path: Path) -> None:
    federation(tmp_path, precision=0.0, recall=0.0, f1=0.0)
    centralized_csv(tmp_path / "central.csv", f1=0.0)
    out = report(tmp_path)
    assert (
        "verdict: NOT INFORMATIVE (neither model catches a single fraud at threshold 0.5, so "
        "F1 is 0 on both sides: train longer, or compare at a lower threshold" in out
    )
    rows = {r["metric"]: r for r in read_rows(tmp_path / "out" / "metrics" / VERDICT_FILE)}
    assert rows["f1"]["decision"] == rows["overall"]["decision"] == "not informative"
    assert rows["roc_auc"]["decision"] == "equivalent"


def test_the_test_rows_their_positives_and_each_sides_interval(tmp_path: Path) -> None:
    federation(tmp_path)
    out = report(tmp_path)
    # 20 positives, 12 caught with 4 false alarms (both sides): F1 24/36; one more, 26/37.
    assert (
        "test rows    centralized on its 200 rows (20 positive), the federation on 200 rows "
        "(20 positive): not paired row by row (no per-row scores: only a simulation such as "
        "`fedd demo` has them); one transaction moves F1 by about 0.036\n" in out
    )
    assert "intervals    95%, each side's own: ROC-AUC by Hanley and McNeil" in out
    assert "note: with 20 positives, one transaction moves F1 by more than the tolerance" in out
    roc, _, f1 = read_rows(tmp_path / "out" / "metrics" / VERDICT_FILE)[:3]
    assert roc["difference_low"] == roc["difference_high"] == ""
    for row in (roc, f1):
        for side in ("centralized", "federated"):
            low, high = float(row[f"{side}_low"]), float(row[f"{side}_high"])
            assert low < float(row[side]) < high


def paired_scores(root: Path, round: int, *, rows: int = 200, positives: int = 20) -> Path:
    """Both models' scores of `rows` held-out rows: each catches 12 of the 20 frauds, with
    4 false alarms, as the baseline's metrics and the run's scores say."""
    rng = random.Random(5)
    labels = [1] * positives + [0] * (rows - positives)
    central = [0.9] * 12 + [0.2] * (positives - 12) + [0.8] * 4 + [0.1] * (rows - positives - 4)
    federated = [min(1.0, max(0.0, s + rng.uniform(-0.05, 0.05))) for s in central]
    path = root / ROW_SCORES_FILE
    write_row_scores(path, round, labels, central, federated)
    return path


def test_both_models_scores_of_each_row_pair_the_comparison(tmp_path: Path) -> None:
    federation(tmp_path)
    path = paired_scores(tmp_path, 4)  # beside central.csv: found without being named
    out = report(tmp_path)
    assert (
        f"test rows    both models on the same 200 held-out rows (20 positive; their scores of "
        f"each row from {path}); one transaction moves F1 by about 0.036" in out
    )
    assert "intervals    95%, of the differences: paired bootstrap of the rows" in out
    roc, _, f1 = read_rows(tmp_path / "out" / "metrics" / VERDICT_FILE)[:3]
    # The models flag the same rows: F1 cannot differ on any resample.
    assert (float(f1["difference_low"]), float(f1["difference_high"])) == (0.0, 0.0)
    assert float(roc["difference_low"]) <= 0.0 <= float(roc["difference_high"])
    assert roc["centralized_low"] == ""


def test_row_scores_of_another_run_are_set_aside_or_refused(tmp_path: Path) -> None:
    federation(tmp_path)
    path = paired_scores(tmp_path, 9)
    out = report(tmp_path)
    assert f"note: {path} not used: its federated model is of round 9, the final model of 4" in out
    assert "not paired row by row" in out
    refused = run(*report_args(tmp_path), "--row-scores", path)
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"fedd: error: {path}: its federated model is of round 9, the final model of 4\n"
    )
    paired_scores(tmp_path, 4, rows=100)
    assert "not used: 100 rows, the baseline was scored on 200" in report(tmp_path)


def test_the_budgets_of_both_sides_and_a_warning_when_they_match_in_neither(
    tmp_path: Path,
) -> None:
    # The README of old: 10 rounds of 1 local epoch against 2 centralized epochs.
    federation(tmp_path, rounds=10, local_epochs=1)
    out = report(tmp_path)
    assert (
        "budget       centralized: 1,600 rows seen, 4 SGD steps (2 epochs over 800 rows, "
        "minibatches of 512)\n"
        "budget       federated: 6,000 rows seen, 10 SGD steps (10 rounds x 1 local epochs over "
        "a peer's share of about 300 rows, minibatches of 512; not every peer in every round)\n"
        "warning: the two runs had different training in rows seen and in SGD steps, so the "
        "verdict compares unequal training: train the baseline with --epochs 5 to match the "
        "federation's SGD steps, or --epochs 8 to match its rows seen\n"
    ) in out


def test_budgets_match_in_steps_or_in_rows_seen() -> None:
    central = centralized_budget({"rows": 24_000, "epochs": 5, "batch_size": 512})
    how = "5 epochs over 24,000 rows, minibatches of 512"
    assert central == Budget(120_000, 235, how, 24_000, 47)
    settings = {"local_epochs": "3", "batch_size": "512"}
    steps = federated_budget(settings, (24_000, 3), [3] * 5)
    assert steps is not None and (steps.rows_seen, steps.steps) == (360_000, 240)
    assert budget_lines(central, steps)[-1] == "budget       matched in SGD steps"
    rows = federated_budget({"local_epochs": "1", "batch_size": "512"}, (24_000, 3), [3] * 5)
    assert rows is not None and budget_lines(central, rows)[-1] == (
        "budget       matched in rows seen"
    )
    assert federated_budget({"secagg": "full"}, (24_000, 3), [3]) is None
    assert budget_lines(None, steps) == [
        "budget       not compared: the centralized metrics lack what it takes (an older fedd "
        "wrote them)"
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("round,label,score\n", "row 1: the header must be round,label,centralized,federated"),
        ("round,label,centralized,federated\n", "no rows"),
        ("round,label,centralized,federated\n4,1,0.5\n", "row 2: 3 cells, the header has 4"),
        ("round,label,centralized,federated\n4,1,0.5,0.5\n5,0,0.5,0.5\n",
         "row 3, column 'round': '5', not '4'"),
        ("round,label,centralized,federated\n4,2,0.5,0.5\n", "row 2, column 'label': '2'"),
        ("round,label,centralized,federated\n4,1,0.5,1.5\n",
         "row 2, column 'federated': '1.5' is not a score in [0, 1]"),
        ("round,label,centralized,federated\nfour,1,0.5,0.5\n",
         "row 2, column 'round': 'four' is not a round number"),
    ],
)  # fmt: skip
def test_a_bad_row_scores_file_is_one_error_naming_it(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / ROW_SCORES_FILE
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        read_row_scores(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and fragment in message and "\n" not in message


def test_row_scores_read_back_as_written(tmp_path: Path) -> None:
    path = paired_scores(tmp_path, 4)
    got = read_row_scores(path)
    assert (got.round, len(got.labels), got.positives) == (4, 200, 20)
    assert got.centralized[:13] == (0.9,) * 12 + (0.2,)
