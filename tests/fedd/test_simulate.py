"""`fedd simulate` through click: reports, dumps, exit codes and bad options."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedd.cli.main import main
from fedd.crypto.secagg import masks, unmasking

FIELDS = {
    "status",
    "n",
    "survivors",
    "k",
    "t",
    "modulus",
    "hub_seconds",
    "peer_seconds_median",
    "round_seconds",
    "peer_bytes_up_median",
    "peer_bytes_down_median",
    "hub_bytes_in",
    "hub_bytes_out",
    "exact",
}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["simulate", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("mode", ["full", "plus"])
def test_json_lines_report_every_field_and_an_exact_sum(mode):
    code, out, _ = run(
        "--peers",
        "12",
        "--secagg",
        mode,
        "--dim",
        "16",
        "--rounds",
        "2",
        "--dropout",
        "0.25",
        "--dropout-stage",
        "masked-input",
        "--json",
    )
    assert code == 0
    reports = [json.loads(line) for line in out.splitlines()]
    assert len(reports) == 2
    for r in reports:
        assert r.keys() >= FIELDS
        assert r["status"] == "ok" and r["exact"] is True
        assert r["n"] == 12 and r["survivors"] == 9
        assert r["modulus"] == 2**32
        assert r["hub_bytes_in"] > 0 and r["peer_bytes_up_median"] > 16 * 4


def test_plain_mode_sums_the_uploads():
    code, out, _ = run(
        "--peers", "5", "--secagg", "off", "--dim", "8", "--dropout", "0.2", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["status"] == "ok" and report["exact"] is True and report["survivors"] == 4


def test_below_threshold_the_round_aborts_and_that_is_correct_behaviour():
    code, out, _ = run(
        "--peers",
        "6",
        "--secagg",
        "full",
        "--dim",
        "4",
        "--dropout",
        "0.5",
        "--dropout-stage",
        "share-keys",
        "--threshold",
        "4",
        "--json",
    )
    assert code == 0
    report = json.loads(out)
    assert report["status"] == "aborted" and report["exact"] is None
    assert "the round needs" in report["reason"]


def test_dump_lets_anyone_check_the_aggregate(tmp_path: Path):
    code, _, _ = run(
        "--peers",
        "7",
        "--secagg",
        "plus",
        "--dim",
        "5",
        "--dropout",
        "0.3",
        "--dropout-stage",
        "mixed",
        "--dump",
        str(tmp_path),
        "--rounds",
        "2",
    )
    assert code == 0
    for r in (0, 1):
        folder = tmp_path / f"round_{r}"
        with open(folder / "inputs.csv") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["peer", "x0", "x1", "x2", "x3", "x4"]
        inputs = {row[0]: [int(v) for v in row[1:]] for row in rows[1:]}
        assert len(inputs) == 7
        assert all(0 <= v < 2**32 for values in inputs.values() for v in values)
        with open(folder / "survivors.csv") as f:
            survivors = [row[0] for row in list(csv.reader(f))[1:]]
        with open(folder / "aggregate.csv") as f:
            header, aggregate = list(csv.reader(f))
        assert header == ["x0", "x1", "x2", "x3", "x4"]
        expected = [sum(inputs[p][i] for p in survivors) % 2**32 for i in range(5)]
        assert [int(v) for v in aggregate] == expected
        assert 0 < len(survivors) <= 7


def test_a_wrong_result_exits_non_zero(monkeypatch):
    # Break unmasking: the hub forgets to remove the masks, so its sum is wrong.
    class Forgetful(masks.MaskSeeds):
        def apply(self, acc, params):
            pass

    monkeypatch.setattr(unmasking, "MaskSeeds", Forgetful)
    code, out, err = run("--peers", "4", "--secagg", "full", "--dim", "4", "--json")
    assert code == 3
    assert json.loads(out)["exact"] is False
    assert "wrong result" in err


def test_human_table_names_the_columns():
    code, out, _ = run("--peers", "4", "--secagg", "plus", "--dim", "4")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["round", "status", "n", "surv"]
    assert row.split()[1] == "ok" and row.split()[-1] == "yes"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--peers", "1"], "--peers"),
        (["--dim", "0"], "--dim"),
        (["--dropout", "1.0"], "--dropout"),
        (["--secagg", "maybe"], "--secagg"),
        (["--dropout-stage", "lunch"], "--dropout-stage"),
    ],
)
def test_bad_options_are_usage_errors(args, message):
    code, _, err = run(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--peers", "5", "--secagg", "full", "--threshold", "9"], "threshold"),
        (["--peers", "9", "--secagg", "plus", "--degree", "3"], "degree"),
        (["--peers", "9", "--secagg", "full", "--degree", "4"], "degree"),
    ],
)
def test_impossible_parameters_are_one_line_errors(args, message):
    code, _, err = run(*args)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("fedd: error:") and message in err


def test_an_impossible_configuration_fails_before_the_table_starts():
    code, out, err = run("--peers", "5", "--secagg", "full", "--dropout", "0.8", "--threshold", "3")
    assert code == 1 and err.startswith("fedd: error: no safe (k, t) for 5 peers")
    assert out == ""  # no header of a table that will never have a row
