"""Terminal progress only on terminals; atomic writes leave nothing half-written."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fedd.learner.atomic import DATA_FILE_MODE, atomic_text_writer
from fedd.learner.errors import DataError
from fedd.learner.progress import TerminalProgress, progress_display, stage


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_one_line_per_stage() -> None:
    stream = io.StringIO()
    display = TerminalProgress(stream, min_interval=3600.0)
    read = stage(display, "read")
    assert read is not None
    read(1, 4)
    read(2, 4)  # within the redraw interval: skipped
    read(4, 4)  # the last step is always drawn
    display("train", 1, 2)  # a new stage starts a new line
    display.close()
    assert stream.getvalue() == "\rread   25% (1/4)\rread  100% (4/4)\n\rtrain   50% (1/2)\n"


def test_progress_display_draws_on_a_terminal_and_ends_the_line() -> None:
    stream = FakeTerminal()
    with progress_display(stream=stream) as display:
        assert display is not None
        display("synth", 5, 10)
    assert stream.getvalue() == "\rsynth   50% (5/10)\n"


def test_no_progress_when_quiet_or_not_a_terminal() -> None:
    with progress_display(stream=io.StringIO()) as display:
        assert display is None
        assert stage(display, "x") is None
    with progress_display(quiet=True, stream=FakeTerminal()) as display:
        assert display is None


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


def test_atomic_writer_flushes_the_file_then_renames_then_flushes_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rename is durable only once its directory is flushed: the order matters.
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    target = tmp_path / "f.csv"

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            same = (info.st_dev, info.st_ino) == (tmp_path.stat().st_dev, tmp_path.stat().st_ino)
            events.append("fsync target dir" if same else "fsync other dir")
        else:
            events.append("fsync file")
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_text_writer(target) as stream:
        stream.write("x\n")
    assert events == ["fsync file", "replace", "fsync target dir"]
    assert target.read_text() == "x\n"


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test, and put the old one back afterwards."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_private_by_default_and_data_files_as_the_umask_says(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    for mask, data_mode in ((0o022, 0o644), (0o077, 0o600)):
        umask(mask)
        private, data = tmp_path / f"private-{mask:o}.csv", tmp_path / f"data-{mask:o}.csv"
        with atomic_text_writer(private) as stream:
            stream.write("x\n")
        with atomic_text_writer(data, mode=DATA_FILE_MODE) as stream:
            stream.write("x\n")
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert stat.S_IMODE(data.stat().st_mode) == data_mode
