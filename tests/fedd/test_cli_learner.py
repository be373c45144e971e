"""`fedd data`, `fedd train centralized` and `fedd demo` through click's test runner.

User mistakes must give a non-zero exit, one line naming the problem and no
traceback: our own errors exit 1 with `fedd: error: ...`; option values that
click validates exit 2 with its single `Error: ...` line under the usage.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fedd.cli.main import main
from fedd.learner.centralized import RECORD_FIELDS
from fedd.learner.dataset import read_dataset


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def assert_user_error(result: Result, *fragments: str) -> None:
    """Exit 1, exactly one stderr line (ours), naming the problem, no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fedd: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def assert_bad_option(result: Result, option: str) -> None:
    """Exit 2 from click's validation, one `Error:` line that names the option."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert option in errors[0]
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "creditcard.csv"
    result = run("data", "synth", "--rows", 3000, "--fraud-rate", 0.02, "--out", path)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def prepared(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    result = run("data", "prepare", "--input", raw, "--peers", 3, "--out-root", root)
    assert result.exit_code == 0, result.output
    return root / "processed"


# --- data synth ---------------------------------------------------------------


def test_synth_writes_a_deterministic_file(raw: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.csv"
    result = run("data", "synth", "--rows", 3000, "--fraud-rate", 0.02, "--out", again)
    assert result.exit_code == 0
    assert result.stdout == f"wrote 3000 rows (60 positives) to {again}\n"
    assert again.read_bytes() == raw.read_bytes()
    other = tmp_path / "other.csv"
    assert run("data", "synth", "--rows", 3000, "--seed", 1, "--out", other).exit_code == 0
    assert other.read_bytes() != raw.read_bytes()


def test_options_come_from_the_environment_too(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "env.csv"
    result = run("data", "synth", "--out", out, env={"FEDD_DATA_SYNTH_ROWS": "25"})
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 26
    env = {
        "FEDD_DATA_PREPARE_INPUT": str(raw),
        "FEDD_DATA_PREPARE_PEERS": "2",
        "FEDD_DATA_PREPARE_OUT_ROOT": str(tmp_path / "d"),
        "FEDD_DATA_PREPARE_PARTITION": "quantity",
    }
    assert run("data", "prepare", env=env).exit_code == 0
    processed = tmp_path / "d" / "processed"
    env = {
        "FEDD_TRAIN_CENTRALIZED_TRAIN": str(processed / "train.csv"),
        "FEDD_TRAIN_CENTRALIZED_TEST": str(processed / "test.csv"),
        "FEDD_TRAIN_CENTRALIZED_OUT_DIR": str(tmp_path / "o"),
        "FEDD_TRAIN_CENTRALIZED_JSON": "1",
    }
    result = run("train", "centralized", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 2400


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--rows", "-5"], "--rows"),
        (["--rows", "0"], "--rows"),
        (["--rows", "ten"], "--rows"),
        (["--rows", "10", "--fraud-rate", "1.5"], "--fraud-rate"),
        (["--rows", "10", "--fraud-rate", "nan"], "--fraud-rate"),
        (["--rows", "10", "--seed", "x"], "--seed"),
    ],
)
def test_synth_rejects_bad_options(tmp_path: Path, args: list[str], option: str) -> None:
    assert_bad_option(run("data", "synth", "--out", tmp_path / "x.csv", *args), option)


def test_synth_into_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("data", "synth", "--rows", 5, "--out", blocker / "x.csv")
    assert_user_error(result, str(blocker / "x.csv"), "cannot write")


# --- data split ---------------------------------------------------------------


def test_split_prints_a_summary_and_a_second_run_removes_stale_files(
    raw: Path, tmp_path: Path
) -> None:
    result = run("data", "split", "--input", raw, "--peers", 3, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"input   {raw}: 3000 rows, 30 features, 60 positives (2.000%)"
    assert [line.split()[:5] for line in lines[1:]] == [
        [f"peer_{k}", "1000", "rows", "20", "positives"] for k in (1, 2, 3)
    ]
    body = raw.read_text().splitlines()[1:]
    written = [tmp_path / f"peer_{k}.csv" for k in (1, 2, 3)]
    assert sum(len(path.read_text().splitlines()) - 1 for path in written) == len(body)
    result = run("data", "split", "--input", raw, "--peers", 2, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"note: removed {tmp_path / 'peer_3.csv'}: left over from a run with more peers"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peer_1.csv", "peer_2.csv"]


def test_split_options_come_from_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a,fraud,b\n" + "".join(f"{i},{int(i % 5 == 0)},{-i}\n" for i in range(50))
    )
    env = {
        "FEDD_DATA_SPLIT_INPUT": str(path),
        "FEDD_DATA_SPLIT_PEERS": "2",
        "FEDD_DATA_SPLIT_OUT": str(tmp_path / "out"),
        "FEDD_DATA_SPLIT_LABEL": "fraud",
        "FEDD_DATA_SPLIT_PARTITION": "quantity",
        "FEDD_DATA_SPLIT_ALPHA": "5",
        "FEDD_DATA_SPLIT_SEED": "3",
        "FEDD_DATA_SPLIT_QUIET": "1",
    }
    result = run("data", "split", env=env)
    assert result.exit_code == 0, result.output
    again = run(
        "data", "split", "--input", path, "--peers", 2, "--out", tmp_path / "again",
        "--label", "fraud", "--partition", "quantity", "--alpha", 5, "--seed", 3,
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    for name in ("peer_1.csv", "peer_2.csv"):
        first = (tmp_path / "out" / name).read_text()
        assert first == (tmp_path / "again" / name).read_text()
        assert first.splitlines()[0] == "a,b,fraud"


def test_split_reads_a_semicolon_separated_file_and_writes_commas(tmp_path: Path) -> None:
    rows = "".join(f"{i % 4};{i % 3};{i * 1.5};{int(i % 5 == 0)}\n" for i in range(60))
    path = write(tmp_path, "EDUCATION;MARRIAGE;AMOUNT;default\n" + rows)
    out = tmp_path / "out"
    result = run("data", "split", "--input", path, "--peers", 2, "--out", out, "--label", "default")
    assert result.exit_code == 0, result.output
    assert (out / "peer_1.csv").read_text().splitlines()[0] == ("EDUCATION,MARRIAGE,AMOUNT,default")


def test_split_leaves_out_columns_named_as_in_a_csv_header(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    rows = [f"T{i},{i}.5,{i % 2},EUR,{i % 24}" for i in range(20)]
    source.write_text('id,"Amount, EUR",Class,currency,hour\n' + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    names = 'id, currency , "Amount, EUR"'
    result = run(
        "data", "split", "--input", source, "--peers", 2, "--out", out, "--ignore-columns", names
    )
    assert result.exit_code == 0, result.output
    assert (out / "peer_1.csv").read_text().splitlines()[0] == "hour,Class"
    unclosed = run(
        "data", "split", "--input", source, "--peers", 2, "--out", out, "--ignore-columns", '"id'
    )
    assert_bad_option(unclosed, "--ignore-columns")


def test_split_reads_a_file_in_the_encoding_it_is_told_and_writes_utf8(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    rows = [f"{i}.5;{i % 2};Caf\u00e9 {i}" for i in range(20)]
    source.write_bytes(
        ("Betrag \u20ac;Class;H\u00e4ndler\n" + "\n".join(rows) + "\n").encode("cp1252")
    )
    out = tmp_path / "out"
    split = ("data", "split", "--input", source, "--peers", 2, "--out", out)
    refused = run(*split, "--ignore-columns", "H\u00e4ndler")
    assert refused.exit_code == 1
    assert "row 1: not UTF-8 text" in refused.output
    result = run(*split, "--ignore-columns", "H\u00e4ndler", "--encoding", "Windows-1252")
    assert result.exit_code == 0, result.output
    assert (out / "peer_1.csv").read_text(encoding="utf-8").splitlines()[0] == "Betrag \u20ac,Class"


def test_split_leaves_out_a_column_with_no_name_when_asked_by_its_quoted_empty_name(
    tmp_path: Path,
) -> None:
    source = tmp_path / "indexed.csv"
    rows = [f"{i},{i}.5,{i % 2},EUR" for i in range(20)]
    source.write_text(",amount,Class,currency\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    split = ("data", "split", "--input", source, "--peers", 2, "--out", out, "--ignore-columns")
    refused = run(*split, "currency")
    assert refused.exit_code == 1
    assert "row 1, column 1: the column has no name" in refused.output
    assert not out.exists()
    result = run(*split, '"", currency')
    assert result.exit_code == 0, result.output
    assert (out / "peer_1.csv").read_text().splitlines()[0] == "amount,Class"
    slip = run(*split, ",currency")
    assert_bad_option(slip, "--ignore-columns")
    assert '"" names a column that has no name' in slip.output


def test_split_refuses_a_foreign_file_and_impossible_cuts_in_one_line(
    raw: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = run("data", "split", "--input", raw, "--peers", 2, "--out", tmp_path)
    assert_user_error(result, f"{tmp_path} holds notes.txt, which fedd did not write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    out = tmp_path / "out"
    result = run("data", "split", "--input", raw, "--peers", 3001, "--out", out)
    assert_user_error(result, "3000 rows cannot give 3001 peers a row each")
    result = run(
        "data", "split", "--input", raw, "--peers", 40, "--out", out,
        "--partition", "dirichlet", "--alpha", "0.01",
    )  # fmt: skip
    assert_user_error(result, "would get no rows at all", "a larger --alpha")
    result = run("data", "split", "--input", tmp_path / "none.csv", "--peers", 2, "--out", out)
    assert_user_error(result, "none.csv: no such file")
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--peers", "0"], "--peers"),
        (["--peers", "x"], "--peers"),
        (["--peers", "2", "--alpha", "0"], "--alpha"),
        (["--peers", "2", "--alpha", "nan"], "--alpha"),
        (["--peers", "2", "--partition", "random"], "--partition"),
        (["--peers", "2", "--seed", "1.5"], "--seed"),
        ([], "--peers"),
    ],
)
def test_split_rejects_bad_options(raw: Path, tmp_path: Path, args: list[str], option: str) -> None:
    result = run("data", "split", "--input", raw, "--out", tmp_path / "out", *args)
    assert_bad_option(result, option)
    assert not (tmp_path / "out").exists()


def test_split_out_must_be_a_directory(raw: Path) -> None:
    assert_bad_option(run("data", "split", "--input", raw, "--peers", 2, "--out", raw), "--out")


# --- data prepare -------------------------------------------------------------


def test_prepare_prints_a_summary_and_writes_the_layout(raw: Path, tmp_path: Path) -> None:
    result = run("data", "prepare", "--input", raw, "--peers", 2, "--out-root", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"input   {raw}: 3000 rows, 30 features, 60 positives (2.000%)"
    assert lines[1].split()[:5] == ["train", "2400", "rows", "48", "positives"]
    assert lines[2].split()[:5] == ["test", "600", "rows", "12", "positives"]
    assert [line.split()[0] for line in lines[3:5]] == ["peer_1", "peer_2"]
    for rel in ("train", "test", "stats", "partition"):
        assert (tmp_path / "processed" / f"{rel}.csv").is_file()
    assert sorted(p.name for p in (tmp_path / "clients").iterdir()) == ["peer_1.csv", "peer_2.csv"]


def test_prepare_finds_a_label_of_another_name_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    rows = [[i % 7, i % 4 == 0, (i * 37) % 11] for i in range(200)]
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["tenure", "default", "balance"])
        writer.writerows([a, int(b), c] for a, b, c in rows)
    result = run(
        "data",
        "prepare",
        "--input",
        path,
        "--peers",
        2,
        "--out-root",
        tmp_path,
        "--label",
        "default",
    )
    assert result.exit_code == 0, result.output
    header = (tmp_path / "processed" / "train.csv").read_text().splitlines()[0]
    assert header == "tenure,balance,default"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["empty file"]),
        ("a,b,Class\n", ["a header but no data rows"]),
        ("a,b,label\n1,2,0\n", ["no label column 'Class'", "its columns are: a, b, label"]),
        ("a,b,Class\n1,2,0\n3,abc,1\n", ["row 3, column 'b'", "'abc' is not a number"]),
        ("a,b,Class\n1,2,0\n3,inf,1\n", ["row 3, column 'b'", "not a finite number"]),
        ("a,b,Class\n1,2,0\n3,4\n", ["row 3: 2 cells, but the header has 3"]),
        ("a,b,Class\n1,2,0\n3,4,7\n", ["row 3, column 'Class'", "must be 0 or 1, not '7'"]),
        ("a,b,Class\n" + "1,2,0\n" * 10, ["every row has label 0", "both classes"]),
        ("a,b,Class\n" + "1,2,0\n" * 10 + "1,2,1\n", ["only 1 row has label 1"]),
    ],
)
def test_prepare_bad_files_give_one_line(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    result = run("data", "prepare", "--input", path, "--peers", 1, "--out-root", tmp_path / "o")
    assert_user_error(result, *fragments)
    if "row" in fragments[0]:
        assert str(path) in result.stderr


def test_prepare_missing_file_and_too_many_peers(raw: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = run("data", "prepare", "--input", missing, "--peers", 2, "--out-root", tmp_path)
    assert_user_error(result, str(missing), "no such file")
    result = run("data", "prepare", "--input", raw, "--peers", 60, "--out-root", tmp_path)
    assert_user_error(result, "60 peers need at least 60", "label 1", "use --peers 48 or fewer")
    result = run(
        "data", "prepare", "--input", raw, "--peers", 12, "--out-root", tmp_path,
        "--partition", "dirichlet", "--alpha", "0.01",
    )  # fmt: skip
    assert_user_error(result, "would get no training rows", "a larger --alpha")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--peers", "0"], "--peers"),
        (["--peers", "2", "--test-size", "0"], "--test-size"),
        (["--peers", "2", "--test-size", "1"], "--test-size"),
        (["--peers", "2", "--test-size", "1.5"], "--test-size"),
        (["--peers", "2", "--alpha", "0"], "--alpha"),
        (["--peers", "2", "--alpha", "-1"], "--alpha"),
        (["--peers", "2", "--alpha", "inf"], "--alpha"),
        (["--peers", "2", "--partition", "random"], "--partition"),
    ],
)
def test_prepare_rejects_bad_options(
    raw: Path, tmp_path: Path, args: list[str], option: str
) -> None:
    result = run("data", "prepare", "--input", raw, "--out-root", tmp_path, *args)
    assert_bad_option(result, option)


# --- train centralized --------------------------------------------------------


def test_train_prints_a_table_and_writes_outputs(prepared: Path, tmp_path: Path) -> None:
    result = run(
        "train", "centralized", "--train", prepared / "train.csv", "--test",
        prepared / "test.csv", "--out-dir", tmp_path, "--lr", 0.5, "--batch-size", 64,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0].split()
    assert first[0] == "ROC-AUC"
    assert float(first[1]) > 0.9
    assert (tmp_path / "metrics" / "centralized_metrics.csv").is_file()
    assert (tmp_path / "models" / "centralized_model.csv").is_file()
    assert result.stderr == ""  # no progress when stderr is not a terminal


def test_train_json_is_exactly_one_object(prepared: Path, tmp_path: Path) -> None:
    result = run(
        "train", "centralized", "--train", prepared / "train.csv", "--test",
        prepared / "test.csv", "--out-dir", tmp_path, "--json", "--class-weight", "balanced",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert list(record) == list(RECORD_FIELDS)
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "logloss", "train_seconds"):
        assert isinstance(record[key], float)
    assert record["rows"] == 2400
    assert record["class_weight"] == "balanced"


def test_train_warns_in_one_line_when_the_model_has_not_learned_yet(
    prepared: Path, tmp_path: Path
) -> None:
    result = run(
        "train", "centralized", "--train", prepared / "train.csv", "--test",
        prepared / "test.csv", "--out-dir", tmp_path, "--epochs", 1, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs"] == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("fedd: warning: the final training loss ")
    assert line.endswith("raise --epochs (it trained 1)")


def test_train_refuses_mismatched_or_missing_files(prepared: Path, tmp_path: Path) -> None:
    other = write(tmp_path, "a,b,Class\n1,2,0\n2,3,1\n")
    result = run(
        "train", "centralized", "--train", prepared / "train.csv", "--test", other,
        "--out-dir", tmp_path,
    )  # fmt: skip
    assert_user_error(result, str(other), "feature columns differ", "missing")
    result = run(
        "train", "centralized", "--train", tmp_path / "none.csv", "--test", other,
        "--out-dir", tmp_path,
    )  # fmt: skip
    assert_user_error(result, "none.csv: no such file")
    result = run(
        "train", "centralized", "--train", prepared / "train.csv", "--test",
        prepared / "test.csv", "--label", "fraud", "--out-dir", tmp_path,
    )  # fmt: skip
    assert_user_error(result, "no label column 'fraud'")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--epochs", "0"], "--epochs"),
        (["--lr", "0"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--batch-size", "0"], "--batch-size"),
        (["--l2", "-1"], "--l2"),
        (["--class-weight", "auto"], "--class-weight"),
        (["--threshold", "2"], "--threshold"),
    ],
)
def test_train_rejects_bad_options(prepared: Path, args: list[str], option: str) -> None:
    result = run(
        "train", "centralized", "--train", prepared / "train.csv", "--test",
        prepared / "test.csv", *args,
    )  # fmt: skip
    assert_bad_option(result, option)


# --- demo ---------------------------------------------------------------------


def test_demo_runs_end_to_end_and_reuses_its_data(tmp_path: Path) -> None:
    result = run("demo", "--out", tmp_path, "--rows", 4000, "--peers", 3, "--rounds", 2)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "== 1/6 data" in out
    assert "synthesized 4000 rows" in out
    assert "ROC-AUC" in out
    assert f"== done: data in {tmp_path / 'data'}, outputs in {tmp_path / 'outputs'}" in out
    # The first round computes the statistics; the two training rounds follow.
    assert "round 1 statistics: ok, 3/3 peers" in out
    assert "round 2 training: ok, 3/3 peers" in out
    assert "round 3 training: ok, 3/3 peers" in out
    assert (tmp_path / "state" / "hub" / "global_model.csv").is_file()
    assert (tmp_path / "data" / "creditcard.csv").is_file()
    assert (tmp_path / "data" / "clients" / "peer_3.csv").is_file()
    assert (tmp_path / "outputs" / "metrics" / "centralized_metrics.csv").is_file()
    # Both models scored every pooled held-out row, so the report pairs the two sides.
    scores = tmp_path / "outputs" / "metrics" / "holdout_scores.csv"
    assert f"pooled held-out rows (the federation's model of round 3) -> {scores}" in out
    assert "test rows    both models on the same 799 held-out rows" in out
    assert "intervals    95%, of the differences: paired bootstrap" in out
    # The baseline had the federation's SGD steps: 1000 or more, the demo's default.
    assert "budget       matched in SGD steps" in out
    # It ends with the report, saying where its files are.
    assert "== 6/6 report: federated vs centralized" in out
    assert "federated model of round 3 vs centralized baseline" in out
    assert "statistics   federated: from 3 peers'" in out and "no row was pooled" in out
    assert "verdict: " in out
    written = [
        tmp_path / "outputs" / "metrics" / "baseline_vs_fl.csv",
        tmp_path / "outputs" / "metrics" / "performance_summary.csv",
    ]
    if importlib.util.find_spec("matplotlib") is None:  # the optional extra
        assert "plots: skipped, matplotlib is not installed" in out
    else:
        written += [
            tmp_path / "outputs" / "plots" / name
            for name in ("convergence.png", "performance.png", "centralized_vs_fl.png")
        ]
    for path in written:
        assert f"wrote {path}" in out
        assert path.stat().st_size > 0
    again = run("demo", "--out", tmp_path, "--rows", 4000, "--rounds", 1)
    assert again.exit_code == 0, again.output
    assert f"using {tmp_path / 'data' / 'creditcard.csv'}" in again.stdout
    # A file of one's own with an id column, saved in Windows' code page: refused as
    # it is, run with the column left out and the encoding named.
    own = tmp_path / "data" / "creditcard.csv"
    header, *rows = own.read_text().splitlines()
    lines = [f"account,{header}"] + [f"\u00c4{i},{r}" for i, r in enumerate(rows)]
    own.write_bytes("\n".join(lines).encode("cp1252"))
    refused = run("demo", "--out", tmp_path, "--rounds", 1, "--ignore-columns", "account")
    assert_user_error(refused, "row 2: not UTF-8 text")
    refused = run("demo", "--out", tmp_path, "--rounds", 1, "--encoding", "cp1252")
    assert_user_error(refused, "row 2, column 'account': '\u00c40' is not a number")
    kept = run(
        "demo",
        "--out",
        tmp_path,
        "--rounds",
        1,
        "--ignore-columns",
        "account",
        "--encoding",
        "cp1252",
    )
    assert kept.exit_code == 0, kept.output
    assert "round 2 training: ok, 3/3 peers" in kept.stdout
    assert read_dataset(tmp_path / "data" / "clients" / "peer_1.csv").features[0] == "Time"


def test_demo_with_too_few_rows_says_why(tmp_path: Path) -> None:
    result = run("demo", "--out", tmp_path, "--rows", 100)
    assert_user_error(result, "every row has label 0")


def test_demo_passes_the_partition_on(tmp_path: Path) -> None:
    result = run(
        "demo", "--out", tmp_path, "--rows", 20000, "--peers", 10, "--partition", "dirichlet",
        "--alpha", 0.05,
    )  # fmt: skip
    assert_user_error(result, "would get no rows at all", "--partition dirichlet --alpha 0.05")


def test_demo_rejects_bad_options(tmp_path: Path) -> None:
    assert_bad_option(run("demo", "--out", tmp_path, "--rows", "-1"), "--rows")
    assert_bad_option(run("demo", "--out", tmp_path, "--peers", "1"), "--peers")
    assert_bad_option(run("demo", "--out", tmp_path, "--rounds", "0"), "--rounds")
    assert_bad_option(run("demo", "--out", tmp_path, "--secagg", "half"), "--secagg")
    assert_bad_option(run("demo", "--out", tmp_path, "--partition", "skewed"), "--partition")
    assert_bad_option(run("demo", "--out", tmp_path, "--alpha", "0"), "--alpha")
