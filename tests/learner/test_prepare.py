"""`prepare`: every row lands once, train-only statistics, layout, errors."""

from __future__ import annotations

import csv
import math
import os
import random
import re
import stat
import statistics
from array import array
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.learner.dataset import Dataset, read_dataset
from fedd.learner.errors import DataError
from fedd.learner.prepare import column_stats, prepare
from fedd.learner.scaling import ZERO_VARIANCE_NOTE
from fedd.learner.synth import write_synth


def read_rows(path: Path) -> tuple[list[str], list[tuple[float, ...]]]:
    with path.open(newline="") as stream:
        reader = csv.reader(stream)
        header = next(reader)
        return header, [tuple(map(float, row)) for row in reader]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "cc.csv"
    write_synth(path, 3000, fraud_rate=0.02, seed=11)
    return path


def test_every_row_lands_exactly_once_standardized_with_train_statistics(
    synthetic: Path, tmp_path: Path
) -> None:
    report = prepare(synthetic, 3, tmp_path)
    raw = read_dataset(synthetic)
    _, stats_rows = read_rows_text(tmp_path / "processed" / "stats.csv")
    means = [float(r[1]) for r in stats_rows]
    stds = [float(r[2]) for r in stats_rows]
    expected = Counter(
        (*((v - m) / s for v, m, s in zip(row, means, stds, strict=True)), float(cls))
        for row, cls in zip(raw.rows(), raw.y, strict=True)
    )
    header, test = read_rows(tmp_path / "processed" / "test.csv")
    shards = [read_rows(tmp_path / "clients" / f"peer_{k}.csv")[1] for k in (1, 2, 3)]
    _, train = read_rows(tmp_path / "processed" / "train.csv")
    assert header == [*raw.features, "Class"]
    assert Counter(test) + sum((Counter(s) for s in shards), Counter()) == expected
    assert Counter(train) == sum((Counter(s) for s in shards), Counter())
    # Train-only statistics: the training rows, and only they, end up with
    # mean 0 and population standard deviation 1 in every column.
    for j in range(raw.n_features):
        column = [row[j] for row in train]
        assert statistics.fmean(column) == pytest.approx(0.0, abs=1e-9)
        assert statistics.pstdev(column) == pytest.approx(1.0, abs=1e-9)
    assert abs(statistics.fmean(row[0] for row in test)) > 1e-6
    assert (report.rows, report.positives, report.features) == (3000, 60, 30)
    assert (report.train.rows, report.test.rows) == (len(train), len(test))
    assert report.test.positives == 12  # round(60 * 0.2)
    assert [p.rows for p in report.peers] == [len(s) for s in shards]


def read_rows_text(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    return rows[0], rows[1:]


def test_partition_csv_and_summary_lines(synthetic: Path, tmp_path: Path) -> None:
    report = prepare(synthetic, 2, tmp_path, scheme="quantity", alpha=2.0, seed=3)
    header, rows = read_rows_text(tmp_path / "processed" / "partition.csv")
    assert header == ["peer", "rows", "positives"]
    assert rows == [[p.name, str(p.rows), str(p.positives)] for p in report.peers]
    assert sum(p.rows for p in report.peers) == report.train.rows
    lines = report.lines()
    assert lines[0].startswith(f"input   {synthetic}: 3000 rows, 30 features, 60 positives")
    assert any(line.startswith("peer_2") and "positives" in line for line in lines)


def test_progress_hears_reading_and_writing(synthetic: Path, tmp_path: Path) -> None:
    last: dict[str, tuple[int, int]] = {}
    prepare(synthetic, 2, tmp_path, progress=lambda s, d, t: last.__setitem__(s, (d, t)))
    assert last == {
        "read cc.csv": (synthetic.stat().st_size,) * 2,
        "write shards": (3000, 3000),
    }


def test_same_seed_same_files(synthetic: Path, tmp_path: Path) -> None:
    prepare(synthetic, 3, tmp_path / "a", scheme="dirichlet", alpha=5.0, seed=9)
    prepare(synthetic, 3, tmp_path / "b", scheme="dirichlet", alpha=5.0, seed=9)
    for rel in ("processed/train.csv", "processed/test.csv", "clients/peer_3.csv"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_data_files_are_readable_by_other_accounts_under_the_usual_umask(
    tmp_path: Path,
) -> None:
    # A container's unprivileged user reads them through a bind mount (docker/).
    old = os.umask(0o022)
    try:
        raw = tmp_path / "raw.csv"
        write_synth(raw, 500, fraud_rate=0.05, seed=3)
        prepare(raw, 2, tmp_path / "data", scheme="iid", seed=3)
    finally:
        os.umask(old)
    written = [raw, *(p for p in (tmp_path / "data").rglob("*") if p.is_file())]
    assert len(written) == 7  # raw, test, train, stats, partition and two shards
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o644}


def test_label_in_the_middle_with_another_name(tmp_path: Path) -> None:
    rng = random.Random(4)
    path = tmp_path / "loans.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["income", "debt", "default", "age", "const"])
        for i in range(400):
            writer.writerow(
                [rng.gauss(50, 10), rng.gauss(5, 2), int(i % 4 == 0), rng.randint(18, 90), 7]
            )
    report = prepare(path, 2, tmp_path / "out", label="default")
    header, rows = read_rows(tmp_path / "out" / "processed" / "train.csv")
    assert header == ["income", "debt", "age", "const", "default"]
    assert {row[-1] for row in rows} == {0.0, 1.0}
    assert {row[3] for row in rows} == {0.0}  # a constant column: (7 - 7) / 1
    stats_header, stats = read_rows_text(tmp_path / "out" / "processed" / "stats.csv")
    assert stats_header == ["column", "mean", "std", "note"]
    assert stats[3] == ["const", "7.0", "1.0", ZERO_VARIANCE_NOTE]
    assert report.notes == (f"const: {ZERO_VARIANCE_NOTE}",)
    assert (
        (tmp_path / "out" / "processed" / "train.csv")
        .read_text()
        .splitlines()[1]
        .endswith((",0", ",1"))
    )


def test_a_run_with_fewer_peers_removes_the_stale_shards(synthetic: Path, tmp_path: Path) -> None:
    prepare(synthetic, 4, tmp_path)
    clients = tmp_path / "clients"
    report = prepare(synthetic, 2, tmp_path)
    assert sorted(p.name for p in clients.iterdir()) == ["peer_1.csv", "peer_2.csv"]
    assert [n for n in report.notes if n.startswith("removed")] == [
        f"removed {clients / name}: left over from a run with more peers"
        for name in ("peer_3.csv", "peer_4.csv")
    ]


def test_the_old_layout_goes_and_a_foreign_file_stops_it_first(
    synthetic: Path, tmp_path: Path
) -> None:
    clients = tmp_path / "clients"
    for k in (1, 5):
        (clients / f"peer_{k}").mkdir(parents=True)
        (clients / f"peer_{k}" / "train.csv").write_text("old\n")
    (clients / "peer_5" / "notes.txt").write_text("mine\n")
    with pytest.raises(DataError, match=r"clients holds peer_5/notes.txt, which fedd did not"):
        prepare(synthetic, 2, tmp_path)
    assert not (tmp_path / "processed").exists()
    (clients / "peer_5" / "notes.txt").unlink()
    report = prepare(synthetic, 2, tmp_path)
    assert sorted(p.name for p in clients.iterdir()) == ["peer_1.csv", "peer_2.csv"]
    assert f"removed {clients / 'peer_5'}/: the old peer_<k>/train.csv layout" in report.notes


def write_labels(tmp_path: Path, labels: list[int]) -> Path:
    path = tmp_path / "small.csv"
    path.write_text("x,Class\n" + "".join(f"{i},{y}\n" for i, y in enumerate(labels)))
    return path


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        (
            [0] * 20,
            {},
            "every row has label 0 in column 'Class'; both classes (0 and 1) are needed",
        ),
        ([1] * 20, {}, "every row has label 1"),
        ([0] * 19 + [1], {}, "only 1 row has label 1"),
        (
            [0] * 40 + [1] * 5,
            {"peers": 5},
            "5 peers need at least 5 training rows of each class, but the split leaves 4 "
            "with label 1: use --peers 4 or fewer",
        ),
        (
            [0] * 400 + [1] * 40,
            {"peers": 8, "scheme": "dirichlet", "alpha": 0.01},
            "would get no training rows at all",
        ),
    ],
)
def test_impossible_splits_say_what_to_change(
    tmp_path: Path, labels: list[int], kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"peers": 2, **kwargs}
    peers = args.pop("peers")
    with pytest.raises(DataError, match=re.escape(message)) as info:
        prepare(write_labels(tmp_path, labels), peers, tmp_path / "out", **args)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    if args.get("scheme") == "dirichlet":
        assert "fewer peers, a larger --alpha, or --partition iid" in str(info.value)
        assert str(info.value).startswith("peer_")


def test_bad_arguments_and_unusable_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="peers"):
        prepare(tmp_path / "x.csv", 0, tmp_path)
    with pytest.raises(ValueError, match="test_size"):
        prepare(tmp_path / "x.csv", 1, tmp_path, test_size=1.0)
    with pytest.raises(DataError, match="no such file"):
        prepare(tmp_path / "x.csv", 1, tmp_path)
    with pytest.raises(DataError, match="no label column 'label'; its columns are: x, Class"):
        prepare(write_labels(tmp_path, [0, 1] * 5), 1, tmp_path, label="label")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=6, max_size=60),
    st.integers(0, 10**6),
)
def test_column_stats_use_only_the_chosen_rows(values: list[float], seed: int) -> None:
    n = len(values) // 2
    x = array("d", values[: 2 * n])
    data = Dataset("m", ("a", "b"), "y", x, bytes(n))
    chosen = sorted(random.Random(seed).sample(range(n), max(1, n // 2)))
    stats = column_stats(data, chosen)
    # Overwrite every other row: the statistics must not move.
    other = array("d", x)
    for i in set(range(n)) - set(chosen):
        other[2 * i] = other[2 * i + 1] = 1e9
    assert column_stats(Dataset("m", ("a", "b"), "y", other, bytes(n)), chosen) == stats
    for j, s in enumerate(stats):
        column = [x[2 * i + j] for i in chosen]
        assert s.mean == pytest.approx(statistics.fmean(column), rel=1e-12, abs=1e-9)
        std = statistics.pstdev(column)
        if std > 0:
            assert s.std == pytest.approx(std, rel=1e-9, abs=1e-9)
        assert math.isfinite(s.std) and s.std > 0


def test_label_skew_may_leave_a_peer_without_fraud_and_says_so(tmp_path: Path) -> None:
    report = prepare(
        write_labels(tmp_path, [0] * 400 + [1] * 40), 4, tmp_path / "out",
        scheme="dirichlet", alpha=0.1, seed=4,
    )  # fmt: skip
    one_class = [p for p in report.peers if p.positives in (0, p.rows)]
    assert one_class and all(p.rows > 0 for p in report.peers)
    skew_notes = [n for n in report.notes if "holds only training rows with label" in n]
    assert len(skew_notes) == len(one_class)
    assert sum(p.rows for p in report.peers) == report.train.rows
