"""`fedd report` on hand-made hub state: the files, the plots, the verdict, the errors."""

from __future__ import annotations

import csv
import importlib.util
import struct
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fedd.cli.main import main
from fedd.daemon.state.commits import Commit
from fedd.daemon.state.hubfiles import ClientPerfRow, MetricsRow, PerfRow, RoundRow
from fedd.daemon.state.store import HubStore
from fedd.daemon.state.survivors import SurvivorRow
from fedd.learner.centralized import RECORD_FIELDS
from fedd.learner.strategy import ServerState, Strategy, server_step
from fedd.report.files import PERFORMANCE_FILE, VERDICT_FILE
from fedd.report.maker import PLOTS_HINT, make_report
from tests.daemon._support import set_cell

FEATURES = ("Time", "V1", "Amount")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ("convergence.png", "performance.png", "centralized_vs_fl.png")
T0 = 1_700_000_000.0
# The plots are an optional extra; everything else must work without them.
needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is not installed (pip install 'fedd[plots]')",
)
BASE_ROC, BASE_F1 = 0.90, 0.80


MODEL = (0.1, 0.2, 0.3, 0.4)


def commit(number: int, roc_auc: float = 0.9, f1: float = 0.8, *, ok: bool = True) -> Commit:
    """Round 1 moves the model from zeros to MODEL (unless it aborts); later ok rounds apply
    a zero delta."""
    peers = ("peer_1", "peer_2", "peer_3")
    zeros = (0.0,) * len(MODEL)
    delta = (MODEL if number == 1 else zeros) if ok else None
    return Commit(
        round=RoundRow(number, "training", "full", T0 + number, 1.0 + number / 10, 3,
                       3 if ok else 1, 0 if ok else 2, "ok" if ok else "aborted",
                       "" if ok else "too few"),
        model=MODEL if ok or number > 1 else zeros,
        metrics=[MetricsRow(number, "test", number, 0, 200, 20, roc_auc, 0.0, 0.6, 0.0, 0.7, 0.5,
                            f1, 0.5, 0.5, f1, 0.01)] if ok else [],
        perf=PerfRow(number, 1.0 + number / 10, 0.5, {"advertise-keys": 0.75, "unmask": 0.125},
                     0.0625, 3000 + number, 4500),
        clients=[ClientPerfRow(number, p, 1000 + i, 0.25 * (i + 1), 0.2, 1000)
                 for i, p in enumerate(peers)] if ok else [],
        delta=delta,
        mean=delta,
        survivors=[SurvivorRow(number, p) for p in peers] if ok else [],
    )  # fmt: skip


def hub_state(
    path: Path, finals: Sequence[tuple[float, float]], *, aborted_last: bool = True
) -> Path:
    """A hub state dir whose rounds end at the scores `finals[-1]`, then (optionally) an abort."""
    store = HubStore.open(path)
    store.start("run-1", FEATURES, {"secagg": "full"})
    for number, (roc_auc, f1) in enumerate(finals, 1):
        store.commit(commit(number, roc_auc, f1))
    if aborted_last:
        store.commit(commit(len(finals) + 1, ok=False))
    return path


def centralized_csv(
    path: Path, roc_auc: float = BASE_ROC, f1: float = BASE_F1, threshold: float = 0.5
) -> Path:
    values = dict.fromkeys(RECORD_FIELDS, "1")
    values.update(roc_auc=repr(roc_auc), pr_auc="0.62", precision="0.75", recall="0.6",
                  f1=repr(f1), logloss="0.008", class_weight="none", threshold=repr(threshold),
                  tp="12", fp="4", tn="176", fn="8", rows="800", positives="80",
                  test_rows="200", test_positives="20", epochs="2", batch_size="512")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",".join(RECORD_FIELDS) + "\n" + ",".join(values.values()) + "\n")
    return path


def run(*args: str | Path | float) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def report_args(tmp_path: Path) -> list[str | Path]:
    return ["report", "--state-dir", tmp_path / "hub", "--centralized",
            tmp_path / "central.csv", "--out", tmp_path / "out"]  # fmt: skip


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    hub_state(tmp_path / "hub", [(0.85, 0.70), (0.88, 0.75), (0.905, 0.795)])
    centralized_csv(tmp_path / "central.csv")
    return tmp_path


# --- the files -------------------------------------------------------------------------


@needs_matplotlib
def test_report_writes_valid_pngs_and_csvs(run_dir: Path) -> None:
    result = make_report(run_dir / "hub", run_dir / "central.csv", run_dir / "out")
    assert result.plots_note == ""
    assert [p.name for p in result.plot_files] == list(PLOTS)
    for path in result.plot_files:
        width, height = png_size(path)
        assert width > 500 and height > 300
    perf = read_rows(run_dir / "out" / "metrics" / PERFORMANCE_FILE)
    assert [r["scope"] for r in perf] == ["round"] * 4 + ["overall"] + ["peer"] * 3
    assert [r["status"] for r in perf[:4]] == ["ok", "ok", "ok", "aborted"]
    assert float(perf[0]["up_bytes_per_peer"]) == 3001 / 3
    assert float(perf[0]["advertise_keys_s"]) == 0.75 and float(perf[0]["train_upload_s"]) == 0
    assert float(perf[0]["train_s"]) == 0.5  # the median of 0.25, 0.5, 0.75
    assert perf[4]["rounds"] == "3" and float(perf[4]["duration_s"]) == 1.2
    assert [r["peer"] for r in perf[5:]] == ["peer_1", "peer_2", "peer_3"]
    verdict = read_rows(run_dir / "out" / "metrics" / VERDICT_FILE)
    assert [(r["metric"], r["decision"]) for r in verdict] == [
        ("roc_auc", "equivalent"), ("pr_auc", "shown only"), ("f1", "equivalent"),
        ("overall", "equivalent"),
    ]  # fmt: skip
    # The aborted round 4 left the model alone: the final scores are round 3's.
    assert float(verdict[0]["federated"]) == 0.905 and result.report.verdict.round == 3


def test_the_peer_rows_say_how_many_training_sums_hold_each_peer(run_dir: Path) -> None:
    make_report(run_dir / "hub", run_dir / "central.csv", run_dir / "out")
    perf = read_rows(run_dir / "out" / "metrics" / PERFORMANCE_FILE)
    # Three ok training rounds held all three peers; the aborted fourth held nobody.
    assert [(r["peer"], r["trained_in"]) for r in perf if r["scope"] == "peer"] == [
        ("peer_1", "3"), ("peer_2", "3"), ("peer_3", "3"),
    ]  # fmt: skip
    assert {r["trained_in"] for r in perf if r["scope"] != "peer"} == {""}


@needs_matplotlib
def test_figure_builders_draw_what_the_report_holds(run_dir: Path) -> None:
    from fedd.report.plots import comparison_figure, convergence_figure, performance_figure

    result = make_report(run_dir / "hub", run_dir / "central.csv", run_dir / "out")
    report = result.report
    convergence = convergence_figure(report)
    assert [ax.get_title() for ax in convergence.axes] == ["ROC-AUC", "PR-AUC", "F1"]
    roc = convergence.axes[0]
    federated = next(line for line in roc.get_lines() if line.get_label() == "federated")
    assert list(federated.get_xdata()) == [1, 2, 3]
    assert list(federated.get_ydata()) == [0.85, 0.88, 0.905]
    baseline = next(line for line in roc.get_lines() if line.get_label() == "centralized")
    assert list(baseline.get_ydata()) == [BASE_ROC, BASE_ROC]
    aborted = [line for line in roc.get_lines() if line.get_label() == "aborted round"]
    assert len(aborted) == 1 and list(aborted[0].get_xdata()) == [4, 4]

    performance = performance_figure(report)
    assert len(performance.axes) == 2
    time_ax, bytes_ax = performance.axes
    legend = [t.get_text() for t in time_ax.get_legend().get_texts()]
    # Stages no round spent time in are left out; the abort gets one legend entry.
    assert sorted(legend) == ["aborted round", "advertise-keys (with local training)", "evaluate",
                              "round + evaluation (wall clock)", "unmask"]  # fmt: skip
    # The hub evaluates after a round's clock stops: the marker spans both, as the stack does.
    total = next(line for line in time_ax.get_lines() if line.get_label().startswith("round +"))
    assert list(total.get_ydata()) == [r.duration_s + r.evaluate_s for r in report.per_round]
    tallest = max(bar.get_y() + bar.get_height() for bars in time_ax.containers for bar in bars)
    assert time_ax.get_ylim()[1] >= 1.3 * max(tallest, *total.get_ydata())  # room for the legend
    assert len(bytes_ax.patches) == 2 * 4 + 1  # up and down bars per round, one shaded abort

    comparison = comparison_figure(report)
    assert len(comparison.axes) == 2
    assert comparison.get_suptitle() == "Centralized vs federated: EQUIVALENT"


def test_without_matplotlib_the_csvs_and_the_verdict_still_come(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "fedd.report.plots", raising=False)
    result = run(*report_args(run_dir))
    assert result.exit_code == 0, result.output
    assert "verdict: EQUIVALENT" in result.stdout
    assert f"plots: skipped, matplotlib is not installed; {PLOTS_HINT}" in result.stdout
    assert "pip install 'fedd[plots]'" in result.stdout
    assert (run_dir / "out" / "metrics" / VERDICT_FILE).is_file()
    assert (run_dir / "out" / "metrics" / PERFORMANCE_FILE).is_file()
    assert not (run_dir / "out" / "plots").exists()


# --- the verdict through the command line ---------------------------------------------


@pytest.mark.parametrize(
    ("roc_auc", "f1", "tolerance", "decisions", "verdict"),
    [
        (0.905, 0.795, 0.01, ("equivalent", "equivalent"), "EQUIVALENT"),  # inside
        (0.91, 0.79, 0.01, ("equivalent", "equivalent"), "EQUIVALENT"),  # at (float noise)
        (0.89, 0.81, 0.01, ("equivalent", "equivalent"), "EQUIVALENT"),  # at, other side
        (0.9101, 0.80, 0.01, ("not equivalent", "equivalent"), "NOT EQUIVALENT"),  # beyond
        (0.90, 0.7899, 0.01, ("equivalent", "not equivalent"), "NOT EQUIVALENT"),  # beyond
        (0.95, 0.70, 0.01, ("not equivalent", "not equivalent"), "NOT EQUIVALENT"),
        (0.95, 0.70, 0.1, ("equivalent", "equivalent"), "EQUIVALENT"),  # at 0.1
    ],
)
def test_verdict_inside_at_and_beyond_the_tolerance(
    tmp_path: Path,
    roc_auc: float,
    f1: float,
    tolerance: float,
    decisions: tuple[str, str],
    verdict: str,
) -> None:
    hub_state(tmp_path / "hub", [(0.5, 0.1), (roc_auc, f1)])
    centralized_csv(tmp_path / "central.csv")
    result = run(*report_args(tmp_path), "--tolerance", tolerance)
    assert result.exit_code == 0, result.output
    assert f"verdict: {verdict} (" in result.stdout
    rows = {r["metric"]: r for r in read_rows(tmp_path / "out" / "metrics" / VERDICT_FILE)}
    assert (rows["roc_auc"]["decision"], rows["f1"]["decision"]) == decisions
    assert rows["overall"]["decision"] == verdict.lower()
    assert float(rows["roc_auc"]["tolerance"]) == tolerance


def test_f1_at_two_thresholds_is_not_decided_and_the_verdict_says_what_to_change(
    tmp_path: Path,
) -> None:
    """A baseline trained with --threshold 0.3 against a federation counting at 0.5."""
    hub_state(tmp_path / "hub", [(0.905, 0.795)])
    centralized_csv(tmp_path / "central.csv", threshold=0.3)
    result = run(*report_args(tmp_path))
    assert result.exit_code == 0, result.output
    assert "verdict: NOT DECIDED (F1 at threshold 0.3 (centralized) against 0.5" in result.stdout
    assert "--threshold 0.5" in result.stdout and "--decision-threshold 0.3" in result.stdout
    rows = {r["metric"]: r for r in read_rows(tmp_path / "out" / "metrics" / VERDICT_FILE)}
    assert (rows["roc_auc"]["decision"], rows["f1"]["decision"]) == ("equivalent", "not decided")
    assert rows["overall"]["decision"] == "not decided"


@needs_matplotlib
def test_report_says_where_the_files_are(run_dir: Path) -> None:
    result = run(*report_args(run_dir))
    assert result.exit_code == 0, result.output
    for path in [run_dir / "out" / "metrics" / PERFORMANCE_FILE,
                 *(run_dir / "out" / "plots" / name for name in PLOTS)]:  # fmt: skip
        assert f"wrote {path}" in result.stdout
    assert "rounds       3 training rounds completed, 1 aborted" in result.stdout


@pytest.mark.parametrize(
    ("strategy", "mu", "line"),
    [
        (Strategy(), "0.0", "training     strategy fedavg (server_lr 1)"),
        (Strategy("fedavgm", server_momentum=0.25), "0.01",
         "training     strategy fedavgm (server_lr 0.5, server_momentum 0.25), "
         "FedProx proximal_mu 0.01"),
    ],
)  # fmt: skip
def test_report_names_the_strategy_and_its_settings(
    tmp_path: Path, strategy: Strategy, mu: str, line: str
) -> None:
    store = HubStore.open(tmp_path / "hub")
    store.start("run-1", FEATURES, {"secagg": "full", **strategy.settings, "proximal_mu": mu})
    step, _ = server_step(strategy, ServerState.initial(strategy, len(MODEL)), MODEL)
    store.commit(replace(commit(1), model=step, delta=step, mean=MODEL))
    centralized_csv(tmp_path / "central.csv")
    result = run(*report_args(tmp_path))
    assert result.exit_code == 0, result.output
    assert line in result.stdout.splitlines()


def test_report_on_a_running_hub_changes_nothing(run_dir: Path) -> None:
    """Read-only: even a log a crash left a torn line in is only repaired in memory."""
    log = run_dir / "hub" / "round_log.csv"
    with open(log, "a") as f:
        f.write("5,full,1.0,")
    before = {p.name: p.read_bytes() for p in (run_dir / "hub").iterdir()}
    result = run(*report_args(run_dir))
    assert result.exit_code == 0, result.output
    assert "note: round_log.csv: dropped a torn last line" in result.stdout
    assert {p.name: p.read_bytes() for p in (run_dir / "hub").iterdir()} == before


# --- missing, empty and corrupt input: one line naming the file --------------------------


def assert_user_error(result: Result, *fragments: str | Path) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fedd: error: ")
    for fragment in fragments:
        assert str(fragment) in lines[0]
    assert "Traceback" not in result.output


def test_a_missing_state_directory(tmp_path: Path) -> None:
    centralized_csv(tmp_path / "central.csv")
    assert_user_error(run(*report_args(tmp_path)), tmp_path / "hub", "no such state directory")


def test_an_empty_state_directory(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    centralized_csv(tmp_path / "central.csv")
    assert_user_error(run(*report_args(tmp_path)), tmp_path / "hub" / "run.csv", "no hub run")


def test_a_run_without_committed_rounds(tmp_path: Path) -> None:
    hub_state(tmp_path / "hub", [], aborted_last=False)
    centralized_csv(tmp_path / "central.csv")
    assert_user_error(
        run(*report_args(tmp_path)), tmp_path / "hub" / "round_log.csv", "no committed round"
    )


def test_a_run_without_scores(tmp_path: Path) -> None:
    hub_state(tmp_path / "hub", [], aborted_last=True)
    centralized_csv(tmp_path / "central.csv")
    assert_user_error(
        run(*report_args(tmp_path)), tmp_path / "hub" / "metrics_log.csv", "--eval-test"
    )


def test_an_emptied_metrics_log(run_dir: Path) -> None:
    (run_dir / "hub" / "metrics_log.csv").write_text("")
    assert_user_error(run(*report_args(run_dir)), run_dir / "hub" / "metrics_log.csv", "no scores")


@pytest.mark.parametrize(
    ("name", "row", "column", "value", "fragments"),
    [
        ("round_log.csv", 2, "status", "maybe", ["row 2, column 'status'", "'maybe'"]),
        ("metrics_log.csv", 3, "f1", "1.5", ["row 3, column 'f1'"]),
        ("perf_log.csv", 2, "bytes_in", "-4", ["row 2, column 'bytes_in'"]),
        ("client_perf.csv", 4, "train_s", "fast", ["row 4, column 'train_s'"]),
        ("global_model.csv", 3, "round", "2", ["row 3, column 'round'", "differs"]),
    ],
)
def test_a_corrupt_state_file(
    run_dir: Path, name: str, row: int, column: str, value: str, fragments: list[str]
) -> None:
    set_cell(run_dir / "hub" / name, row, column, value)
    assert_user_error(run(*report_args(run_dir)), run_dir / "hub" / name, *fragments)


def test_a_state_file_that_is_not_fedds(run_dir: Path) -> None:
    (run_dir / "hub" / "perf_log.csv").write_text("a,b\n1,2\n")
    assert_user_error(run(*report_args(run_dir)), run_dir / "hub" / "perf_log.csv", "header")


def test_a_missing_empty_or_corrupt_centralized_file(run_dir: Path) -> None:
    central = run_dir / "central.csv"
    central.unlink()
    assert_user_error(run(*report_args(run_dir)), central, "no such file")
    central.write_text("")
    assert_user_error(run(*report_args(run_dir)), central, "empty")
    centralized_csv(central)
    set_cell(central, 2, "roc_auc", "0.9x")
    assert_user_error(run(*report_args(run_dir)), central, "row 2, column 'roc_auc'", "'0.9x'")


def test_an_unwritable_output(run_dir: Path) -> None:
    (run_dir / "out").mkdir()
    (run_dir / "out" / "metrics").write_text("a file where a directory should be")
    assert_user_error(run(*report_args(run_dir)), run_dir / "out" / "metrics", "cannot write")


@pytest.mark.parametrize("value", ["-0.01", "nan", "inf", "much"])
def test_a_bad_tolerance_is_refused_by_the_option(run_dir: Path, value: str) -> None:
    result = run(*report_args(run_dir), "--tolerance", value)
    assert result.exit_code == 2, result.output
    assert "--tolerance" in result.stderr and "Traceback" not in result.output
