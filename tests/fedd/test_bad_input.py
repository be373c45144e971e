"""Every case of docs/cli.md's "What fedd says when input is wrong" table, in process.

`python -m bench.bad_input` runs the cases as real processes and prints the
table; here click's test runner runs the same cases (much faster), and each
must follow the rules: a non-zero exit, no traceback, one line saying what
is wrong (ours with exit 1, or click's `Error:` line with exit 2).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bench.bad_input import CASES, Case, Outcome, arguments, check, prepare_workdir
from fedd.cli.main import main


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    prepare_workdir(root)
    return root


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


def test_the_cases_cover_every_option_that_takes_a_value() -> None:
    """A new option without a bad-input case fails here."""
    tried = {
        (c.what.split(" --")[0], "--" + c.what.split(" --")[1]) for c in CASES if " --" in c.what
    }
    missing = []

    def walk(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{path} lists {name} but has no such command"
                walk(sub, f"{path} {name}".strip())
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag or param.count:
                continue  # flags and -v take no value that could be wrong
            flag = next(f for f in param.opts if f.startswith("--"))
            if (path, flag) not in tried:
                missing.append(f"{path} {flag}")

    walk(main, "")
    assert missing == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.what} {c.tried}")
def test_every_bad_input_gives_one_clear_line_and_a_non_zero_exit(
    case: Case, workdir: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    result = CliRunner().invoke(main, arguments(case, busy_port), env=case.env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    outcome = Outcome(case, result.exit_code, result.stderr)
    assert check(outcome) == [], result.stderr
    assert outcome.line.strip()
