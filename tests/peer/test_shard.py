"""`ShardSource`: shard k is DIR/peer_<k>.csv, or synthetic rows from seed + k, raw."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fedd.learner.dataset import read_dataset
from fedd.learner.errors import DataError
from fedd.learner.split import split
from fedd.learner.synth import COLUMNS, synth_rows, write_synth
from fedd.peer.shard import SYNTH_LABEL, ShardSource


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    write_synth(root / "cc.csv", 600, fraud_rate=0.05, seed=2)
    split(root / "cc.csv", 3, root / "clients")
    return root / "clients"


def test_shard_k_is_the_file_split_wrote(shard_dir: Path) -> None:
    source = ShardSource(data_dir=shard_dir)
    assert source.features() == COLUMNS[:-1]
    assert source.describe() == f"{shard_dir}/peer_<k>.csv"
    for k in (1, 2, 3):
        assert source.path(k) == shard_dir / f"peer_{k}.csv"
        assert source.describe(k) == str(shard_dir / f"peer_{k}.csv")
        loaded, expected = source.load(k), read_dataset(shard_dir / f"peer_{k}.csv")
        assert (loaded.x, loaded.y, loaded.features) == (expected.x, expected.y, expected.features)


def test_features_come_from_the_lowest_numbered_file(tmp_path: Path) -> None:
    (tmp_path / "peer_10.csv").write_text("b,Class\n1,0\n")
    (tmp_path / "peer_2.csv").write_text("a,Class\n1,0\n")
    (tmp_path / "peer_x.csv").write_text("z,Class\n1,0\n")
    assert ShardSource(data_dir=tmp_path).features() == ("a",)
    with pytest.raises(DataError, match="no label column 'Fraud' in the header"):
        ShardSource(data_dir=tmp_path, label="Fraud").features()


def test_a_missing_shard_and_a_directory_without_shards_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "peer_1").mkdir()
    (tmp_path / "peer_1" / "train.csv").write_text("a,Class\n1,0\n")  # the old layout
    source = ShardSource(data_dir=tmp_path)
    message = (
        f"{tmp_path}: no peer_<k>.csv shard files; run `fedd data split` or `fedd data prepare` "
        "first, or give the peer --synth-rows"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        source.features()
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'peer_4.csv'} does not exist")):
        source.load(4)
    with pytest.raises(DataError, match="no such directory"):
        ShardSource(data_dir=tmp_path / "none").features()


def test_synthetic_shards_are_raw_rows_of_seed_plus_k() -> None:
    source = ShardSource(label=SYNTH_LABEL, synth_rows=200, synth_seed=7, fraud_rate=0.05)
    assert source.features() == COLUMNS[:-1]
    shard = source.load(3)
    rows = list(synth_rows(200, 0.05, 10))
    assert shard.y == bytes(label for *_, label in rows)
    assert list(shard.x) == [v for t, vs, amount, _ in rows for v in (float(t), *vs, amount)]
    assert shard.source == "synthetic shard 3"
    again = source.load(3)
    assert (again.x, again.y) == (shard.x, shard.y)
    assert source.load(4).x != shard.x
    with pytest.raises(ValueError, match="numbered from 1"):
        source.load(0)
