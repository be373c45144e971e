"""The centralized baseline end to end on small synthetic data, and its metrics file read
back (`read_centralized_metrics`, what `fedd report` compares with)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

import pytest

from fedd.learner.centralized import (
    COUNT_FIELDS,
    MIN_STEPS,
    RECORD_FIELDS,
    SCORE_FIELDS,
    TrainConfig,
    base_rate_loss,
    default_epochs,
    read_centralized_metrics,
    run_centralized,
)
from fedd.learner.errors import DataError
from fedd.learner.modelio import load_model
from fedd.learner.prepare import prepare
from fedd.learner.synth import COLUMNS, write_synth


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_synth(root / "cc.csv", 20_000, fraud_rate=0.02, seed=5)
    prepare(root / "cc.csv", 3, root)
    return root / "processed"


def test_trains_evaluates_and_writes_model_and_metrics(prepared: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, lr=0.5, batch_size=128)
    result = run_centralized(prepared / "train.csv", prepared / "test.csv", tmp_path, config=config)
    # The synthetic frauds are separable, but not trivially so (some look normal).
    assert 0.93 < result.metrics.roc_auc < 0.999
    assert result.metrics.f1 > 0.5
    assert result.train_rows == 16_000
    assert result.metrics.rows == 4_000
    assert result.stats.rows_seen == 32_000
    record = result.record()
    assert tuple(record) == RECORD_FIELDS
    assert record["roc_auc"] == result.metrics.roc_auc
    with (tmp_path / "metrics" / "centralized_metrics.csv").open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == list(RECORD_FIELDS)
    assert len(rows) == 2
    assert float(rows[1][0]) == result.metrics.roc_auc
    assert rows[1][RECORD_FIELDS.index("class_weight")] == "none"
    model = load_model(tmp_path / "models" / "centralized_model.csv", COLUMNS[:-1])
    assert len(model.params) == 31
    assert any(line.startswith("ROC-AUC") for line in result.lines())


def test_progress_hears_each_stage_to_its_end(prepared: Path, tmp_path: Path) -> None:
    last: dict[str, tuple[int, int]] = {}
    run_centralized(
        prepared / "train.csv",
        prepared / "test.csv",
        tmp_path,
        progress=lambda name, done, total: last.__setitem__(name, (done, total)),
    )
    assert list(last) == ["read train.csv", "read test.csv", "train"]
    assert all(done == total for done, total in last.values())
    # By default, the epochs of ceil(16000 / 512) = 32 minibatches that make 2000 steps.
    assert last["train"][1] == 63 * 32


def test_by_default_a_small_file_gets_the_epochs_of_two_thousand_steps() -> None:
    assert default_epochs(16_000, 512) == 63  # 32 minibatches an epoch
    assert default_epochs(3_200, 512) == 286  # the 4,000-row file a user tried: 7 an epoch
    assert default_epochs(228_000, 512) == 5  # the Kaggle file's training rows
    assert default_epochs(10, 512) == MIN_STEPS
    assert default_epochs(10**7, 512) == 2  # never fewer than 2


def test_training_that_ends_above_the_base_rate_loss_says_so(
    prepared: Path, tmp_path: Path
) -> None:
    short = run_centralized(
        prepared / "train.csv", prepared / "test.csv", tmp_path / "a", config=TrainConfig(epochs=1)
    )
    base = base_rate_loss(short.train_rows, short.train_positives)
    assert short.stats.final_loss > base
    assert short.warnings() == [
        f"the final training loss {short.stats.final_loss:.5f} is above {base:.5f}, that of "
        "predicting the training rows' fraud rate for every row: training has not converged; "
        "raise --epochs (it trained 1)"
    ]
    default = run_centralized(prepared / "train.csv", prepared / "test.csv", tmp_path / "b")
    assert default.stats.epochs == 63 and default.record()["epochs"] == 63
    assert default.stats.final_loss < base and default.warnings() == []
    assert "(2016 SGD steps, at least 2000 steps by default)" in "\n".join(default.lines())


def test_the_base_rate_loss_is_the_entropy_of_the_fraud_rate() -> None:
    entropy = -(0.01 * math.log(0.01) + 0.99 * math.log(0.99))
    assert base_rate_loss(1000, 10) == pytest.approx(entropy, rel=1e-15)
    assert base_rate_loss(10, 0) == base_rate_loss(10, 10) == 0.0


def test_balanced_class_weights_raise_recall(prepared: Path, tmp_path: Path) -> None:
    plain = run_centralized(prepared / "train.csv", prepared / "test.csv", tmp_path / "a")
    balanced = run_centralized(
        prepared / "train.csv",
        prepared / "test.csv",
        tmp_path / "b",
        config=TrainConfig(class_weight="balanced"),
    )
    assert balanced.metrics.recall > plain.metrics.recall


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_train_and_test_must_share_features_and_hold_both_classes(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.csv", "a,b,Class", ["1,2,0", "2,3,1", "0,1,0"])
    other_cols = _write(tmp_path / "t1.csv", "a,c,Class", ["1,2,0", "2,3,1"])
    reordered = _write(tmp_path / "t2.csv", "b,a,Class", ["1,2,0", "2,3,1"])
    one_class = _write(tmp_path / "t3.csv", "a,b,Class", ["1,2,0", "2,3,0"])
    with pytest.raises(DataError, match=r"missing \['b'\], extra \['c'\]"):
        run_centralized(train, other_cols, tmp_path)
    with pytest.raises(DataError, match="different order"):
        run_centralized(train, reordered, tmp_path)
    with pytest.raises(
        DataError, match=r"every test row has label 0 .* both classes \(0 and 1\) are needed"
    ):
        run_centralized(train, one_class, tmp_path)
    with pytest.raises(DataError, match="every training row has label 0"):
        run_centralized(one_class, train, tmp_path)


def test_columns_that_are_not_features_are_left_out_of_both_files(tmp_path: Path) -> None:
    rows = ["T1,1,2,0", "T2,2,3,1", "T3,0,1,0", "T4,3,1,1"]
    train = _write(tmp_path / "train.csv", "id,a,b,Class", rows)
    test = _write(tmp_path / "test.csv", "id,a,b,Class", rows)
    with pytest.raises(DataError, match=r"train\.csv row 2, column 'id'"):
        run_centralized(train, test, tmp_path, standardize_rows=True)
    config = TrainConfig(epochs=2)
    result = run_centralized(
        train, test, tmp_path, ignore=("id",), config=config, standardize_rows=True
    )
    assert result.metrics.rows == 4
    assert load_model(tmp_path / "models" / "centralized_model.csv", ("a", "b")).params
    numbers_only = _write(tmp_path / "test.csv", "a,b,Class", ["1,2,0", "2,3,1"])
    with pytest.raises(DataError, match=r"test\.csv: no column 'id'"):
        run_centralized(train, numbers_only, tmp_path, ignore=("id",), standardize_rows=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"l2": float("nan")}, "l2"),
        ({"class_weight": "auto"}, "class_weight"),
        ({"threshold": 1.5}, "threshold"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)  # type: ignore[arg-type]


# --- the centralized metrics file -----------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def good_record() -> dict[str, str]:
    values = dict.fromkeys(RECORD_FIELDS, "1")
    values.update(roc_auc="0.97", pr_auc="0.7", precision="0.8", recall="0.6", f1="0.69",
                  logloss="0.004", class_weight="none")  # fmt: skip
    return values


def record_text(values: Mapping[str, str], header: list[str] | None = None) -> str:
    names = header or list(values)
    return ",".join(names) + "\n" + ",".join(values[n] for n in names) + "\n"


def test_reads_the_scores_and_the_counts_of_a_centralized_metrics_file(tmp_path: Path) -> None:
    path = write(tmp_path / "m.csv", record_text(good_record()))
    got = read_centralized_metrics(path)
    assert list(got) == [*SCORE_FIELDS, "threshold", *COUNT_FIELDS]
    assert got["roc_auc"] == 0.97 and got["f1"] == 0.69 and got["logloss"] == 0.004
    assert got["threshold"] == float(good_record()["threshold"])
    assert got["tp"] == 1 and type(got["tp"]) is int and got["epochs"] == 1


@pytest.mark.parametrize(("column", "cell"), [("tp", "-1"), ("tp", "1.5"), ("epochs", "0")])
def test_a_count_that_is_not_one_names_its_column(tmp_path: Path, column: str, cell: str) -> None:
    values = good_record()
    values[column] = cell
    with pytest.raises(DataError, match=f"row 2, column '{column}': '{cell}' is not an integer"):
        read_centralized_metrics(write(tmp_path / "m.csv", record_text(values)))


def test_other_columns_and_their_order_do_not_matter(tmp_path: Path) -> None:
    values = {"f1": "0.5", "logloss": "1.5", "recall": "0", "precision": "1", "pr_auc": "0.2",
              "roc_auc": "0.6", "note": "mine"}  # fmt: skip
    got = read_centralized_metrics(write(tmp_path / "m.csv", record_text(values)))
    assert got["f1"] == 0.5 and "threshold" not in got  # a file without it: nothing to check


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["the file is empty"]),
        ("\n\n", ["the file is empty"]),
        ("roc_auc,pr_auc,precision,recall,f1,logloss\n", ["no data row"]),
        ("roc_auc,pr_auc,precision,recall,f1\n1,1,1,1,1\n", ["row 1", "no 'logloss' column"]),
        ("roc_auc,pr_auc,precision,recall,f1,logloss,f1\n1,1,1,1,1,1,1\n",
         ["row 1", "'f1' appears twice"]),
        ("roc_auc,pr_auc,precision,recall,f1,logloss\n1,1,1,1,1,1\n1,1,1,1,1,1\n",
         ["2 data rows"]),
        ("roc_auc,pr_auc,precision,recall,f1,logloss\n1,1,1,1,1\n", ["row 2", "5 cells"]),
        ("roc_auc,pr_auc,precision,recall,f1,logloss\nhigh,1,1,1,1,1\n",
         ["row 2, column 'roc_auc'", "'high' is not a number in [0, 1]"]),
        ("roc_auc,pr_auc,precision,recall,f1,logloss\n1,1,1,1,1.5,1\n",
         ["row 2, column 'f1'", "'1.5'"]),
        ("roc_auc,pr_auc,precision,recall,f1,logloss\n1,nan,1,1,1,1\n",
         ["column 'pr_auc'", "'nan'"]),
        ("roc_auc,pr_auc,precision,recall,f1,logloss\n1,1,1,1,1,-1\n",
         ["column 'logloss'", "not a finite number >= 0"]),
        ("roc_auc,pr_auc,precision,recall,f1,logloss\n\n1,1,1,1,1,inf\n",
         ["row 3, column 'logloss'"]),
        ('roc_auc,pr_auc,precision,recall,f1,logloss\n"1,1,1,1,1,1\n', ["cannot read"]),
    ],
)  # fmt: skip
def test_a_bad_centralized_file_is_one_error_naming_it(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path / "centralized_metrics.csv", text)
    with pytest.raises(DataError) as info:
        read_centralized_metrics(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_a_missing_or_undecodable_centralized_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file; run `fedd train centralized`"):
        read_centralized_metrics(tmp_path / "nope.csv")
    path = tmp_path / "binary.csv"
    path.write_bytes(b"roc_auc\xff\xfe\n")
    with pytest.raises(DataError, match="cannot read"):
        read_centralized_metrics(path)
