"""A hub and its peers as child processes on this machine (demo, benchmarks, tests).

Each child writes its output to a log file in the federation's directory.
`stop()` (and leaving the `with` block, also on Ctrl-C or an exception)
sends SIGTERM to whatever still runs, waits, and SIGKILLs stragglers, so
no process is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["FEDD", "Child", "Federation", "free_port"]

# The fedd command line of this interpreter (no reliance on PATH).
FEDD = (sys.executable, "-m", "fedd")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    """One daemon process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def alive(self) -> bool:
        return self.popen.poll() is None


class Federation:
    """Children sharing one hub address on 127.0.0.1."""

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.children: list[Child] = []
        root.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Federation:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def spawn(self, name: str, *args: str) -> Child:
        """Run `fedd ARGS` as a child; its output goes to ROOT/NAME.log."""
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                [*FEDD, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def hub(self, state_dir: Path, *args: str, name: str = "hub") -> Child:
        return self.spawn(
            name, "start", "hub", "--bind", self.address, "--state-dir", str(state_dir), *args
        )

    def peer(self, name: str, data: Path, state_dir: Path, *args: str) -> Child:
        return self.spawn(
            name,
            "start",
            "peer",
            "--connect",
            self.address,
            "--data",
            str(data),
            "--state-dir",
            str(state_dir),
            "--peer-id",
            name,
            *args,
        )

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the children still running, then SIGKILL any that outlive `grace`."""
        for child in self.children:
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    child.popen.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.popen.send_signal(signal.SIGKILL)
                child.popen.wait()
