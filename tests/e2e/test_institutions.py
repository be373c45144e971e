"""Three institutions, each with its own raw file, and a hub with no data at all.

Real daemons on 127.0.0.1, in each secure mode: the institutions differ in
size and fraud rate, none of their rows is pooled, and the hub has no test
file. The test then does, on its own and from the raw files, what the
federation must not: it pools the contributing peers' training rows and the
union of their held-out rows, and checks against them

- the hub's stats.csv: each mean and std within 1e-9 of that feature's std;
- the federated ROC-AUC and PR-AUC of the first and the last trained model:
  within the bounds the hub states (each below 0.001) of the exact values
  on the union of the held-out rows, scored with models rebuilt from
  updates.csv;
- the final federated model against a centralized one trained on the union
  of the training rows: ROC-AUC on the union of the holdouts within 0.005.

In full mode one peer dies during the statistics round and comes back: the
statistics then describe the two other peers only.
"""

from __future__ import annotations

import csv
import math
from fractions import Fraction
from pathlib import Path

import pytest

from fedd.launch import FEDD
from fedd.learner.centralized import TrainConfig, train_and_score
from fedd.learner.dataset import Dataset, read_dataset
from fedd.learner.holdout import concat, split_holdout
from fedd.learner.metrics import pr_auc, roc_auc
from fedd.learner.model import predict_proba
from fedd.learner.prepare import column_stats
from fedd.learner.scaling import ColumnStats, standardize
from tests.e2e.conftest import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# (rows, fraud rate, seed) of each institution: sizes and label skew differ.
INSTITUTIONS = [(3000, 0.03, 11), (1800, 0.012, 12), (1200, 0.006, 13)]
ROUNDS = 4
LOCAL_EPOCHS = 3


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    import subprocess

    root = tmp_path_factory.mktemp("institutions")
    files = []
    for k, (rows, rate, seed) in enumerate(INSTITUTIONS, 1):
        path = root / f"bank_{k}.csv"
        subprocess.run(
            [*FEDD, "data", "synth", "--rows", str(rows), "--fraud-rate", str(rate),
             "--seed", str(seed), "--out", str(path)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        files.append(path)
    return files


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _models(hub: Path, features: int) -> dict[int, list[float]]:
    """Every committed training round's model, replayed from updates.csv."""
    model = [0.0] * (features + 1)
    models = {}
    by_round: dict[int, list[float]] = {}
    for row in _rows(hub / "updates.csv"):
        by_round.setdefault(int(row["round"]), []).append(float(row["delta"]))
    for number in sorted(by_round):
        model = [m + d for m, d in zip(model, by_round[number], strict=True)]
        models[number] = model
    return models


def _check_statistics(hub: Path, train_rows: Dataset) -> list[ColumnStats]:
    stats = [
        ColumnStats(r["column"], float(r["mean"]), float(r["std"]), r["note"])
        for r in _rows(hub / "stats.csv")
    ]
    d, n = train_rows.n_features, train_rows.n_rows
    assert [s.name for s in stats] == list(train_rows.features)
    for j, stat in enumerate(stats):
        column = [Fraction(v) for v in train_rows.x[j::d]]
        mean = sum(column, Fraction(0)) / n
        std = math.sqrt(sum(((v - mean) ** 2 for v in column), Fraction(0)) / n)
        assert abs(stat.mean - float(mean)) <= 1e-9 * std, stat
        assert abs(stat.std - std) <= 1e-9 * std, stat
    return stats


@pytest.mark.parametrize("mode", ["off", "full", "plus"])
def test_institutions_on_raw_files_train_and_score_without_pooling(
    cluster: Cluster, raw_files: list[Path], mode: str
) -> None:
    hub = cluster.hub(
        "--min-peers", "3", "--rounds", str(ROUNDS), "--secagg", mode,
        "--local-epochs", str(LOCAL_EPOCHS), "--exit-when-done",
    )  # fmt: skip
    drop = mode == "full"
    peers = [
        cluster.peer(
            f"bank_{k}", path, *(["--fault", "exit-at:advertise-keys"] if drop and k == 3 else [])
        )
        for k, path in enumerate(raw_files, 1)
    ]
    if drop:
        assert peers[2].wait(60) == 3, cluster.logs()
        peers[2] = cluster.peer("bank_3", raw_files[2])  # back, on the same state directory
    assert hub.wait(240) == 0, cluster.logs()
    for p in peers:
        assert p.wait(30) == 0, cluster.logs()

    rounds = _rows(cluster.hub_state / "round_log.csv")
    assert [r["kind"] for r in rounds][: 1 + ROUNDS] == ["statistics"] + ["training"] * ROUNDS
    assert all(r["status"] == "ok" for r in rounds), rounds
    assert all(r["kind"] == "evaluation" for r in rounds[1 + ROUNDS :])
    statistics_round = rounds[0]
    contributing = raw_files[:2] if drop else raw_files
    assert statistics_round["survivors"] == str(len(contributing))

    splits = [split_holdout(read_dataset(path), 0.2, 42) for path in raw_files]
    _check_statistics(
        cluster.hub_state, concat([s.train for s in splits[: len(contributing)]], "contributing")
    )
    stats = [
        ColumnStats(r["column"], float(r["mean"]), float(r["std"]), r["note"])
        for r in _rows(cluster.hub_state / "stats.csv")
    ]
    holdouts = [s.holdout for s in splits if s.holdout is not None]
    union = standardize(concat(holdouts, "the union of the holdouts"), stats)

    metrics = {int(r["round"]): r for r in _rows(cluster.hub_state / "metrics_log.csv")}
    training = [int(r["round"]) for r in rounds if r["kind"] == "training"]
    assert sorted(metrics) == training
    models = _models(cluster.hub_state, union.n_features)
    labels = list(union.y)
    for number in (training[0], training[-1]):
        row = metrics[number]
        assert row["source"] == "federated" and int(row["committed_in"]) > number
        assert (int(row["peers"]), int(row["rows"])) == (3, union.n_rows)
        roc_bound, pr_bound = float(row["roc_auc_bound"]), float(row["pr_auc_bound"])
        assert roc_bound < 1e-3 and pr_bound < 1e-3, row
        probs = predict_proba(models[number], union)
        assert abs(float(row["roc_auc"]) - roc_auc(labels, probs)) <= roc_bound + 1e-12
        assert abs(float(row["pr_auc"]) - pr_auc(labels, probs)) <= pr_bound + 1e-12

    # The centralized model: the union of the training rows, z-scored with their own statistics.
    train = concat([s.train for s in splits], "the union of the training rows")
    pooled = column_stats(train, range(train.n_rows))
    baseline = train_and_score(
        standardize(train, pooled),
        standardize(concat(holdouts, "holdouts"), pooled),
        cluster.root / "baseline",
        config=TrainConfig(epochs=ROUNDS * LOCAL_EPOCHS // len(raw_files)),
    )
    federated = roc_auc(labels, predict_proba(models[training[-1]], union))
    assert abs(federated - baseline.metrics.roc_auc) <= 0.005, (federated, baseline.metrics)


def _with_columns(
    source: Path,
    out: Path,
    extra: dict[int, tuple[str, str]],
    encoding: str = "utf-8",
    missing: tuple[int, ...] = (),
) -> Path:
    """`source` with a text column inserted at each position of `extra` (name, cell
    prefix), written in `encoding`; the columns at `missing` (positions in `source`)
    miss a cell in every fifth row, as exports spell that."""
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    spellings = ["", "NA", "NULL", "nan"]
    for i, row in enumerate(rows[1::5]):
        for j in missing:
            row[j] = spellings[i % len(spellings)]
    for at, (name, prefix) in sorted(extra.items(), reverse=True):
        for i, row in enumerate(rows):
            row.insert(at, name if i == 0 else f"{prefix}{i}")
    with open(out, "w", newline="", encoding=encoding) as f:
        csv.writer(f).writerows(rows)
    return out


def test_institutions_leave_out_columns_of_their_own(
    cluster: Cluster, raw_files: list[Path], tmp_path: Path
) -> None:
    """Each bank's export carries its own ids and categories, elsewhere in the row: each
    peer names its own with --ignore-columns, and the federation trains on the rest. The
    second bank's spreadsheet saved its file in Windows' code page, which it names; the
    third bank's file misses cells of two columns, which it fills in with 0."""
    extra = [
        {0: ("account", "ACC-"), 5: ("merchant", "shop ")},
        {31: ("currency", "\u20ac ")},  # the euro sign, after the label
        {},
    ]
    encodings = ["utf-8", "cp1252", "utf-8"]
    missing: list[tuple[int, ...]] = [(), (), (3, 17)]
    files = [
        _with_columns(path, tmp_path / path.name, columns, encoding, gaps)
        for path, columns, encoding, gaps in zip(raw_files, extra, encodings, missing, strict=True)
    ]
    # The hub's own test file, for comparison, is shaped like the first bank's export.
    hub = cluster.hub(
        *("--min-peers", "3", "--rounds", "2", "--secagg", "plus", "--exit-when-done"),
        *("--eval-test", str(files[0]), "--ignore-columns", "account,merchant"),
    )
    peers = [
        cluster.peer(
            f"bank_{k}",
            path,
            *(["--ignore-columns", ",".join(n for n, _ in columns.values())] if columns else []),
            *("--encoding", encoding),
            *(["--fill-missing", "0"] if gaps else []),
        )
        for k, (path, columns, encoding, gaps) in enumerate(
            zip(files, extra, encodings, missing, strict=True), 1
        )
    ]
    assert hub.wait(240) == 0, cluster.logs()
    for p in peers:
        assert p.wait(30) == 0, cluster.logs()
    rounds = _rows(cluster.hub_state / "round_log.csv")
    assert [r["kind"] for r in rounds][:3] == ["statistics", "training", "training"]
    assert all(r["status"] == "ok" and r["survivors"] == "3" for r in rounds), rounds
    # The statistics are those of the numeric columns, as the files without the extra ones
    # give, with the third's missing cells 0.
    read = [read_dataset(path) for path in raw_files[:2]]
    read.append(read_dataset(files[2], fill_missing=0.0))
    d, untouched = read[2].n_features, read_dataset(raw_files[2])
    for j in missing[2]:
        assert read[2].x[j::d] != untouched.x[j::d] and 0.0 in read[2].x[j::d]
    splits = [split_holdout(data, 0.2, 42) for data in read]
    _check_statistics(cluster.hub_state, concat([s.train for s in splits], "all training rows"))
    scored = [r for r in _rows(cluster.hub_state / "metrics_log.csv") if r["source"] == "test"]
    assert [r["round"] for r in scored] == ["2", "3"]  # each trained model, on the hub's file
    assert all(r["rows"] == str(read_dataset(raw_files[0]).n_rows) for r in scored)
