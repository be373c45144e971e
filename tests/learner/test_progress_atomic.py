"""Terminal progress only on terminals; atomic writes leave nothing half-written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from learner.atomic import atomic_text_writer
from learner.errors import DataError
from learner.progress import progress_display


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_and_ends_the_line() -> None:
    stream = FakeTerminal()
    with progress_display("train", stream=stream) as progress:
        assert progress is not None
        progress(1, 4)
        progress(4, 4)  # the last update is always drawn
    text = stream.getvalue()
    assert text.startswith("\rtrain   25% (1/4)")
    assert "\rtrain  100% (4/4)" in text
    assert text.endswith("\n")


def test_no_progress_when_quiet_or_not_a_terminal() -> None:
    with progress_display("x", stream=io.StringIO()) as progress:
        assert progress is None
    with progress_display("x", quiet=True, stream=FakeTerminal()) as progress:
        assert progress is None


def test_atomic_writer_replaces_on_success_and_keeps_the_old_file_on_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sub" / "f.csv"
    with atomic_text_writer(path) as stream:
        stream.write("new\n")
    assert path.read_text() == "new\n"
    with pytest.raises(RuntimeError), atomic_text_writer(path) as stream:
        stream.write("half")
        raise RuntimeError("boom")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.csv"]


def test_unwritable_target_is_a_data_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match="cannot write"), atomic_text_writer(blocker / "x.csv"):
        pass
