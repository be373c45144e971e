"""Synthetic transactions: schema, determinism, shape of the distributions."""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from pathlib import Path

import pytest

from fedd.learner.dataset import read_dataset
from fedd.learner.synth import COLUMNS, TIME_MAX, synth_rows, write_synth


def test_schema_and_quoting_match_the_kaggle_file(tmp_path: Path) -> None:
    path = tmp_path / "cc.csv"
    summary = write_synth(path, 500, fraud_rate=0.02, seed=1)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(f'"{c}"' for c in COLUMNS)
    assert ("Time", *(f"V{j}" for j in range(1, 29)), "Amount", "Class") == COLUMNS
    assert len(lines) == 501
    assert lines[1].endswith(('"0"', '"1"'))
    data = read_dataset(path)
    assert data.features == COLUMNS[:-1]
    assert (summary.rows, summary.positives) == (500, 10)
    assert data.n_positives == 10


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = (tmp_path / name for name in ("a.csv", "b.csv", "c.csv"))
    write_synth(a, 300, seed=7)
    write_synth(b, 300, seed=7)
    write_synth(c, 300, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_fraud_count_is_exact_and_progress_reaches_the_end(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    summary = write_synth(
        tmp_path / "x.csv", 10_000, fraud_rate=0.00172, progress=lambda d, t: seen.append((d, t))
    )
    assert summary.positives == round(10_000 * 0.00172)
    assert seen[-1] == (10_000, 10_000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_distributions_look_like_the_original() -> None:
    rows = list(synth_rows(20_000, fraud_rate=0.01, seed=3))
    times = [t for t, _, _, _ in rows]
    assert times == sorted(times)
    assert 0 <= times[0] < 600
    assert TIME_MAX - 600 < times[-1] <= TIME_MAX
    night = sum(1 for t in times if 1 <= (t // 3600) % 24 < 6)
    assert night / len(times) < 0.5 * 5 / 24  # nights are quiet
    amounts = [a for _, _, a, _ in rows]
    assert 60 < statistics.fmean(amounts) < 120
    assert statistics.median(amounts) < 35  # long right tail: median far below the mean
    assert min(amounts) > 0
    normal = [v for _, v, _, c in rows if c == 0]
    sds = [statistics.pstdev(v[j] for v in normal) for j in range(28)]
    means = [statistics.fmean(v[j] for v in normal) for j in range(28)]
    assert all(abs(m) < 0.05 * s for m, s in zip(means, sds, strict=True))
    assert sds[0] == pytest.approx(1.96, rel=0.05)
    assert sds[-1] == pytest.approx(0.33, rel=0.05)
    assert all(b < a + 0.05 for a, b in itertools.pairwise(sds))  # decreasing, up to noise
    frauds = [v for _, v, _, c in rows if c == 1]
    assert len(frauds) == 200
    v14 = statistics.fmean(v[13] for v in frauds)
    assert v14 < -2 * sds[13]  # frauds sit several deviations out


def test_streams_rows_one_at_a_time() -> None:
    rows = synth_rows(10**9, seed=1)  # a billion rows would not fit in memory
    first = [next(rows) for _ in range(3)]
    assert [t for t, _, _, _ in first] == sorted(t for t, _, _, _ in first)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rows"):
        next(synth_rows(0))
    with pytest.raises(ValueError, match="fraud_rate"):
        next(synth_rows(10, fraud_rate=1.5))
    with pytest.raises(ValueError, match="fraud_rate"):
        next(synth_rows(10, fraud_rate=math.nan))


def test_the_file_parses_with_plain_csv(tmp_path: Path) -> None:
    path = tmp_path / "cc.csv"
    write_synth(path, 50, seed=2)
    with path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert all(len(r) == 31 for r in rows)
    assert {r[-1] for r in rows[1:]} <= {"0", "1"}
