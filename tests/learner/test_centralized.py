"""The centralized baseline end to end on small synthetic data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fedd.learner.centralized import RECORD_FIELDS, TrainConfig, run_centralized
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
    assert last["train"][1] == 2 * 32  # 2 epochs of ceil(16000 / 512) minibatches


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
