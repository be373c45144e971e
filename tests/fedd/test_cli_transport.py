"""The daemons' environment variables and the CLI checks of CURVE and --shard options."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fedd.cli.main import main
from fedd.daemon.transport.curve import generate


def run(*args: object, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("command", "option", "short", "long"),
    [
        (["start", "hub"], "--secagg", "FEDD_SECAGG", "FEDD_START_HUB_SECAGG"),
        (["start", "hub"], "--state-dir", "FEDD_STATE_DIR", "FEDD_START_HUB_STATE_DIR"),
        (["start", "hub"], "--allow-dir", "FEDD_ALLOW_DIR", "FEDD_START_HUB_ALLOW_DIR"),
        (["start", "peer"], "--data", "FEDD_DATA", "FEDD_START_PEER_DATA"),
        (["start", "peer"], "--shard", "FEDD_SHARD", "FEDD_START_PEER_SHARD"),
        (["start", "peer"], "--hub-public", "FEDD_HUB_PUBLIC", "FEDD_START_PEER_HUB_PUBLIC"),
        (["status"], "--hub", "FEDD_HUB", "FEDD_STATUS_HUB"),
        (["status", "peer"], "--state-dir", "FEDD_STATE_DIR", "FEDD_STATUS_PEER_STATE_DIR"),
    ],
)
def test_help_shows_both_environment_variables(command, option, short, long):
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=400)
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.strip().startswith(option))
    assert f"env var: {short}, {long}" in line


@pytest.mark.parametrize("name", ["FEDD_SECAGG", "FEDD_START_HUB_SECAGG"])
def test_either_name_configures_the_hub(tmp_path: Path, name: str):
    code, err = run("start", "hub", "--state-dir", tmp_path / "hub", env={name: "maybe"})
    assert code == 2 and "--secagg" in err and "'maybe'" in err


def test_the_short_name_wins_and_an_empty_one_counts_as_unset(tmp_path: Path):
    env = {"FEDD_SECAGG": "sometimes", "FEDD_START_HUB_SECAGG": "maybe"}
    code, err = run("start", "hub", "--state-dir", tmp_path / "hub", env=env)
    assert code == 2 and "'sometimes'" in err
    env = {"FEDD_SECAGG": "", "FEDD_START_HUB_SECAGG": "maybe"}
    code, err = run("start", "hub", "--state-dir", tmp_path / "hub", env=env)
    assert code == 2 and "'maybe'" in err


def test_a_peer_needs_data_or_a_shard_but_not_both(tmp_path: Path):
    state = tmp_path / "peer"
    code, err = run("start", "peer", "--state-dir", state)
    assert code == 2 and "--data PATH or --shard auto" in err
    code, err = run("start", "peer", "--state-dir", state, "--data", "x.csv", "--shard", "auto")
    assert code == 2 and "--data PATH or --shard auto" in err
    code, err = run("start", "peer", "--state-dir", state, "--data", "x.csv", "--synth-rows", "5")
    assert code == 2 and "--synth-rows works with --shard auto" in err
    assert not state.exists()


def test_shard_auto_without_shard_files_says_what_to_do(tmp_path: Path):
    code, err = run(
        "start", "peer", "--shard", "auto", "--data-dir", tmp_path, "--state-dir", tmp_path / "s"
    )
    assert code == 1 and "no peer_<k>.csv shard files" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_curve_options_come_in_pairs_and_bad_keys_are_one_line_errors(tmp_path: Path):
    generate(tmp_path, "hub")
    generate(tmp_path, "p1")
    code, err = run(
        "start", "hub", "--state-dir", tmp_path / "h", "--curve-secret", tmp_path / "hub.secret"
    )
    assert code == 1 and "both --curve-secret and --allow-dir" in err
    code, err = run("start", "peer", "--data", "x.csv", "--curve-secret", tmp_path / "p1.secret")
    assert code == 1 and "both --curve-secret and --hub-public" in err
    (tmp_path / "hub.secret").chmod(0o644)
    code, err = run(
        "start",
        "hub",
        "--state-dir",
        tmp_path / "h",
        "--curve-secret",
        tmp_path / "hub.secret",
        "--allow-dir",
        tmp_path,
    )
    assert code == 1 and err.startswith("fedd: error:") and "chmod 600" in err
    assert err.count("\n") == 1 and not (tmp_path / "h").exists()
    code, err = run("status", "--curve-secret", tmp_path / "missing.secret")
    assert code == 1 and "no such secret key file" in err


def test_status_peer_before_the_peer_ever_ran(tmp_path: Path):
    code, err = run("status", "peer", "--state-dir", tmp_path / "none")
    assert code == 1 and "no such state directory" in err
