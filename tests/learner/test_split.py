"""`split`: raw institution files, every row once and exact, the shard directory kept clean."""

from __future__ import annotations

import csv
import re
import struct
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.learner.dataset import read_dataset
from fedd.learner.errors import DataError
from fedd.learner.partition import PARTITIONS, PartitionScheme
from fedd.learner.split import split
from fedd.learner.synth import write_synth


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "cc.csv"
    write_synth(path, 2000, fraud_rate=0.02, seed=5)
    return path


def rows_of(path: Path) -> list[tuple[float, ...]]:
    """A file's rows as exact floats, label last."""
    data = read_dataset(path)
    return [(*row, float(cls)) for row, cls in zip(data.rows(), data.y, strict=True)]


def bits(rows: list[tuple[float, ...]]) -> Counter[bytes]:
    """Rows compared bit for bit (so -0.0 differs from 0.0)."""
    return Counter(struct.pack(f"{len(r)}d", *r) for r in rows)


def write_table(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_every_row_lands_once_raw_and_in_input_order(synthetic: Path, tmp_path: Path) -> None:
    report = split(synthetic, 3, tmp_path)
    raw = rows_of(synthetic)
    files = [tmp_path / f"peer_{k}.csv" for k in (1, 2, 3)]
    shards = [rows_of(path) for path in files]
    assert sum(map(bits, shards), Counter()) == bits(raw)
    for shard in shards:  # a subsequence of the input: the input order is kept
        positions = iter(range(len(raw)))
        assert all(any(raw[i] == row for i in positions) for row in shard)
    header = synthetic.read_text().splitlines()[0].replace('"', "")
    assert all(path.read_text().splitlines()[0] == header for path in files)
    assert (report.rows, report.positives, report.features) == (2000, 40, 30)
    assert [(p.name, p.path, p.rows) for p in report.peers] == [
        (f"peer_{k}", files[k - 1], len(shards[k - 1])) for k in (1, 2, 3)
    ]
    assert [p.positives for p in report.peers] == [sum(r[-1] for r in s) for s in shards]
    assert max(p.rows for p in report.peers) - min(p.rows for p in report.peers) <= 1
    assert report.notes == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peer_1.csv", "peer_2.csv", "peer_3.csv"]


# Every value fedd reads is finite and below 2^62 in magnitude (learner.dataset).
_FLOATS = st.floats(min_value=-(2.0**62), max_value=2.0**62, exclude_min=True, exclude_max=True)


@settings(max_examples=30, deadline=None)
@given(
    table=st.lists(st.tuples(_FLOATS, _FLOATS, st.integers(0, 1)), min_size=4, max_size=40),
    peers=st.integers(1, 4),
    scheme=st.sampled_from(PARTITIONS),
    seed=st.integers(0, 2**32),
)
def test_values_read_back_identical_and_the_label_moves_last(
    table: list[tuple[float, float, int]], peers: int, scheme: PartitionScheme, seed: int
) -> None:
    labels = [cls for _, _, cls in table]
    if len(set(labels)) < 2 or len(table) < peers:
        return
    with tempfile.TemporaryDirectory() as tmp:
        source = write_table(
            Path(tmp) / "in.csv",
            ["amount", "is fraud", "b,c"],
            [[a, cls, repr(b)] for a, b, cls in table],
        )
        try:
            report = split(source, peers, Path(tmp) / "out", label="is fraud", scheme=scheme,
                           alpha=0.3, seed=seed)  # fmt: skip
        except DataError as exc:  # skew may leave a peer without rows: said, not written
            assert "would get no rows at all" in str(exc)
            assert not (Path(tmp) / "out").exists()
            return
        out = [report.peers[k].path for k in range(peers)]
        got = sum((bits(rows_of_label(path, "is fraud")) for path in out), Counter())
        assert got == bits([(a, b, float(cls)) for a, b, cls in table])
        assert all(path.read_text().splitlines()[0] == 'amount,"b,c",is fraud' for path in out)


def test_ignored_columns_stay_out_of_the_files(tmp_path: Path) -> None:
    source = write_table(
        tmp_path / "export.csv",
        ["id", "amount", "Class", "merchant", "hour"],
        [[f"T{i}", i * 1.5, i % 2, f"shop {i % 3}", i % 24] for i in range(40)],
    )
    report = split(source, 2, tmp_path / "out", ignore=("id", "merchant"))
    for k in range(2):
        path = report.peers[k].path
        assert path.read_text().splitlines()[0] == "amount,hour,Class"
    rows = sum((bits(rows_of(report.peers[k].path)) for k in range(2)), Counter())
    assert rows == bits([(i * 1.5, float(i % 24), float(i % 2)) for i in range(40)])


def test_cells_come_out_as_they_went_in(tmp_path: Path) -> None:
    cells = ["149.62", "0.1", "-1.359807", "2.5e-05", "1e+16", "-0.0", "378.66"]
    source = write_table(
        tmp_path / "in.csv", ["amount", "Class"], [[c, i % 2] for i, c in enumerate(cells)]
    )
    report = split(source, 2, tmp_path / "out")
    lines = [line for k in range(2) for line in report.peers[k].path.read_text().splitlines()[1:]]
    assert sorted(lines) == sorted(f"{c},{i % 2}" for i, c in enumerate(cells))


def rows_of_label(path: Path, label: str) -> list[tuple[float, ...]]:
    data = read_dataset(path, label)
    return [(*row, float(cls)) for row, cls in zip(data.rows(), data.y, strict=True)]


def test_same_seed_same_files_and_the_schemes_differ(synthetic: Path, tmp_path: Path) -> None:
    split(synthetic, 3, tmp_path / "a", scheme="dirichlet", alpha=2.0, seed=9)
    split(synthetic, 3, tmp_path / "b", scheme="dirichlet", alpha=2.0, seed=9)
    split(synthetic, 3, tmp_path / "c", scheme="dirichlet", alpha=2.0, seed=10)
    a, b, c = (sorted((tmp_path / d).iterdir()) for d in "abc")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]
    quantity = split(synthetic, 3, tmp_path / "q", scheme="quantity", alpha=0.5, seed=1)
    sizes = [p.rows for p in quantity.peers]
    assert max(sizes) - min(sizes) > 100  # size skew
    rates = [p.positives / p.rows for p in quantity.peers]
    assert max(rates) - min(rates) < 0.02  # but each class cut by the same shares


def test_label_skew_may_leave_a_peer_with_one_class_and_says_so(tmp_path: Path) -> None:
    source = write_table(
        tmp_path / "in.csv", ["x", "Class"], [[i, int(i < 40)] for i in range(400)]
    )
    report = split(source, 4, tmp_path / "out", scheme="dirichlet", alpha=0.1, seed=5)
    one_class = [p for p in report.peers if p.positives in (0, p.rows)]
    assert one_class
    notes = [n for n in report.notes if "holds only rows with label" in n]
    assert len(notes) == len(one_class)
    assert "label skew of --partition dirichlet --alpha 0.1" in notes[0]
    assert any(line.startswith("note: peer_") for line in report.lines())


def test_fewer_positives_than_peers_under_iid_is_a_note(tmp_path: Path) -> None:
    source = write_table(tmp_path / "in.csv", ["x", "Class"], [[i, int(i < 2)] for i in range(30)])
    report = split(source, 3, tmp_path / "out")
    assert [p.positives for p in report.peers] == [1, 1, 0]
    assert report.notes == (
        "peer_3 holds only rows with label 0 (fewer rows with label 1 than peers); "
        "it trains, but its local ROC-AUC is undefined",
    )


def test_summary_lines(synthetic: Path, tmp_path: Path) -> None:
    lines = split(synthetic, 2, tmp_path).lines()
    assert lines[0] == f"input   {synthetic}: 2000 rows, 30 features, 40 positives (2.000%)"
    assert [line.split()[:5] for line in lines[1:]] == [
        ["peer_1", "1000", "rows", "20", "positives"],
        ["peer_2", "1000", "rows", "20", "positives"],
    ]
    assert lines[1].endswith(f"-> {tmp_path / 'peer_1.csv'}")


def test_progress_hears_reading_and_writing(synthetic: Path, tmp_path: Path) -> None:
    last: dict[str, tuple[int, int]] = {}
    split(synthetic, 2, tmp_path, progress=lambda s, d, t: last.__setitem__(s, (d, t)))
    assert last == {"read cc.csv": (synthetic.stat().st_size,) * 2, "write shards": (2000, 2000)}


# --- the shard directory ---------------------------------------------------------


def test_a_second_split_with_fewer_peers_leaves_no_stale_file(
    synthetic: Path, tmp_path: Path
) -> None:
    split(synthetic, 4, tmp_path)
    report = split(synthetic, 2, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peer_1.csv", "peer_2.csv"]
    assert report.notes == tuple(
        f"removed {tmp_path / name}: left over from a run with more peers"
        for name in ("peer_3.csv", "peer_4.csv")
    )
    assert "note: removed" in report.lines()[-1]
    assert sum(p.rows for p in report.peers) == 2000


def test_old_layout_directories_are_removed(synthetic: Path, tmp_path: Path) -> None:
    for k in (1, 3):
        (tmp_path / f"peer_{k}").mkdir()
        (tmp_path / f"peer_{k}" / "train.csv").write_text("old\n")
    (tmp_path / "peer_7").mkdir()  # emptied by hand: nothing in it to lose
    report = split(synthetic, 2, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peer_1.csv", "peer_2.csv"]
    assert [n for n in report.notes if "old" in n] == [
        f"removed {tmp_path / name}/: the old peer_<k>/train.csv layout"
        for name in ("peer_1", "peer_3", "peer_7")
    ]


@pytest.mark.parametrize(
    ("made", "named"),
    [
        ("notes.txt", "notes.txt"),
        ("peer_0.csv", "peer_0.csv"),
        ("peer_02.csv", "peer_02.csv"),
        ("peer_9.csv/", "peer_9.csv"),
        (".peer_1.csv.x1.tmp", ".peer_1.csv.x1.tmp"),
        ("raw/", "raw"),
        ("peer_4/test.csv", "peer_4/test.csv"),
        ("peer_4/train.csv/", "peer_4/train.csv"),
    ],
)
def test_anything_fedd_did_not_write_is_refused_before_writing(
    synthetic: Path, tmp_path: Path, made: str, named: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "peer_5.csv").write_text("an earlier shard\n")
    path = out / made
    path.parent.mkdir(exist_ok=True)
    if made.endswith("/"):
        path.mkdir()
    else:
        path.write_text("x\n")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(DataError) as info:
        split(synthetic, 2, out)
    message = str(info.value)
    assert message.startswith(f"{out} holds {named}, which fedd did not write")
    assert "\n" not in message
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_a_linked_old_layout_directory_is_not_followed(synthetic: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "train.csv").write_text("someone's\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "peer_3").symlink_to(elsewhere)
    with pytest.raises(DataError, match=re.escape(f"{out} holds peer_3, which fedd did not")):
        split(synthetic, 2, out)
    assert (elsewhere / "train.csv").read_text() == "someone's\n"


# --- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        (
            [0] * 20,
            {},
            "every row has label 0 in column 'Class'; both classes (0 and 1) are needed",
        ),
        ([0, 1, 0], {"peers": 4}, "in.csv: 3 rows cannot give 4 peers a row each: use --peers 3"),
        (
            [0] * 400 + [1] * 40,
            {"peers": 8, "scheme": "dirichlet", "alpha": 0.01},
            "would get no rows at all under --partition dirichlet --alpha 0.01: use fewer peers",
        ),
    ],
)
def test_impossible_splits_say_what_to_change(
    tmp_path: Path, labels: list[int], kwargs: dict[str, object], message: str
) -> None:
    source = write_table(
        tmp_path / "in.csv", ["x", "Class"], [[i, y] for i, y in enumerate(labels)]
    )
    args: dict[str, object] = {"peers": 2, **kwargs}
    peers = args.pop("peers")
    with pytest.raises(DataError, match=re.escape(message)) as info:
        split(source, peers, tmp_path / "out", **args)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_bad_arguments_and_unusable_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="peers"):
        split(tmp_path / "x.csv", 0, tmp_path)
    with pytest.raises(DataError, match="no such file"):
        split(tmp_path / "x.csv", 1, tmp_path / "out")
    source = write_table(tmp_path / "in.csv", ["x", "Class"], [[1, 0], [2, 1]])
    with pytest.raises(DataError, match="no label column 'label'; its columns are: x, Class"):
        split(source, 1, tmp_path / "out", label="label")
    with pytest.raises(DataError, match="not a directory"):
        split(source, 1, source)
