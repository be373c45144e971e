"""Model CSV: exact round trip, and every malformed file named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedd.learner.errors import DataError
from fedd.learner.modelio import Model, load_model, save_model


def test_round_trip_is_exact_and_the_format_is_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "models" / "m.csv"
    params = [-8.25, 1 / 3, -1e-300, 12345.678]
    save_model(path, ["Time", "V1", "Amount"], params)
    assert path.read_text().splitlines() == [
        "parameter,value",
        "bias,-8.25",
        f"Time,{1 / 3!r}",
        "V1,-1e-300",
        "Amount,12345.678",
    ]
    model = load_model(path, ["Time", "V1", "Amount"])
    assert model == Model(features=("Time", "V1", "Amount"), params=tuple(params))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "row 1: the header must be 'parameter,value'"),
        ("name,value\nbias,1\n", "row 1: the header must be"),
        ("parameter,value\n", "no feature rows"),
        ("parameter,value\nbias,1\n", "no feature rows"),
        (
            "parameter,value\nV1,1\nbias,2\n",
            "row 2, column 'parameter': the first parameter must be 'bias'",
        ),
        ("parameter,value\nbias,1\nbias,2\n", "row 3, column 'parameter': 'bias' appears twice"),
        ("parameter,value\nbias,1\nV1,2\nV1,3\n", "row 4, column 'parameter': 'V1' appears twice"),
        ("parameter,value\nbias,1\n,2\n", "row 3, column 'parameter': empty feature name"),
        ("parameter,value\nbias,1\nV1\n", "row 3: 1 cells; expected 2"),
        ("parameter,value\nbias,x\nV1,1\n", "row 2, column 'value': 'x' is not a finite number"),
        (
            "parameter,value\nbias,1\nV1,inf\n",
            "row 3, column 'value': 'inf' is not a finite number",
        ),
    ],
)
def test_malformed_models_name_file_row_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        load_model(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_model_and_feature_mismatch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such model file"):
        load_model(tmp_path / "absent.csv")
    path = tmp_path / "m.csv"
    save_model(path, ["a", "b"], [0.0, 1.0, 2.0])
    with pytest.raises(DataError, match=r"features \(a, b\) differ from the data's \(a, c\)"):
        load_model(path, ["a", "c"])


def test_save_rejects_inconsistent_models(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one weight per feature"):
        save_model(tmp_path / "m.csv", ["a"], [0.0])
    with pytest.raises(ValueError, match="unique"):
        save_model(tmp_path / "m.csv", ["a", "a"], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="unique"):
        save_model(tmp_path / "m.csv", ["bias"], [0.0, 1.0])
    with pytest.raises(ValueError, match="one weight per feature"):
        Model(features=("a",), params=(1.0,))
