"""A Docker engine for the live compose test, and the stand-in base image.

`Engine.ensure()` uses the engine that answers `docker info`, or starts
`dockerd` (defaults: overlay2, bridge networking) and `stop()` ends only that
process, by its pid. No image registry is reachable from here, so
python:3.11-slim cannot be pulled; `stand_in_base` makes a stand-in from
Debian's own packages: debootstrap (minbase) with Python 3 and a venv at
/opt/venv first on PATH, so that `python -m pip install` behaves as on the
official image (Debian's own python refuses system-wide installs, PEP 668).
The root file system is cached as a tar file outside the repository, named
by a hash of the recipe, and the engine keeps the imported image under the
same key: a warm run neither debootstraps nor imports.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "NOTES",
    "TIMINGS",
    "Engine",
    "apt_mirror",
    "cache_dir",
    "recipe_key",
    "run",
    "stand_in_base",
    "timed",
]

SUITE = "bookworm"
VARIANT = "minbase"
# passwd: the Dockerfile's useradd, which minbase leaves out and the slim image has.
PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")
VENV = "/opt/venv"
CHANGES = (
    f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python"]',
)
# Left out of the tar: apt's downloads and lists, which no build step needs.
DROP = ("var/cache/apt/archives", "var/lib/apt/lists")

# What each step took, and what else a reader of CI's log wants to know: the
# summary at the end shows both (conftest.py).
TIMINGS: list[tuple[str, float]] = []
NOTES: list[str] = []


@contextlib.contextmanager
def timed(step: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    TIMINGS.append((step, time.monotonic() - start))


def run(
    *args: str,
    timeout: float = 120,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise with its output, which is what one needs to see."""
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=cwd
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}"
            f"\n{result.stderr[-3000:]}"
        )
    return result


def docker_answers() -> bool:
    return run("docker", "info", timeout=30, check=False).returncode == 0


@dataclass
class Engine:
    """The engine the test uses; `pid` is set only when this object started it."""

    log: Path
    pid: int | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def ensure(self, wait_s: float = 60) -> str | None:
        """Use a running engine or start one. Returns why none can be had, or None."""
        if docker_answers():
            return None
        dockerd = shutil.which("dockerd", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
        if dockerd is None:
            return (
                "no Docker engine runs and there is no dockerd (Debian: apt-get install docker.io)"
            )
        with open(self.log, "wb") as out:
            # A session of its own: ^C in pytest does not reach it; stop() does.
            self._proc = subprocess.Popen(
                [dockerd], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid = self._proc.pid
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return f"dockerd exited {self._proc.returncode} at start: {self._tail()}"
            if docker_answers():
                return None
            time.sleep(0.5)
        self.stop()
        return f"dockerd did not answer within {wait_s:g}s: {self._tail()}"

    def stop(self) -> None:
        """End the dockerd this object started (and so its containerd), nothing else."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(30)

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:]


def cache_dir() -> Path:
    """Outside the repository, kept between runs: $XDG_CACHE_HOME or ~/.cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fedd-docker-test"


def apt_mirror(suite: str = SUITE) -> str | None:
    """The Debian mirror apt here is configured with for `suite`, or None."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(
                re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M)  # comments never match
            )
            if (
                "deb" in fields.get("Types", "").split()
                and suite in fields.get("Suites", "").split()
            ):
                return fields["URIs"].split()[0]
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()  # drop [arch=... signed-by=...]
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    return None


def recipe_key() -> str:
    recipe = repr((SUITE, VARIANT, PACKAGES, VENV, CHANGES, DROP))
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def stand_in_base(mirror: str) -> tuple[str, str]:
    """The stand-in base image's tag, made if needed, and how it was had."""
    key = recipe_key()
    tag = f"fedd-test-base:{key}"
    if run("docker", "image", "inspect", tag, check=False).returncode == 0:
        return tag, "in the engine"
    cache = cache_dir()
    tar = cache / f"base-{key}.tar"
    how = "imported from the cache"
    if not tar.exists():
        cache.mkdir(parents=True, exist_ok=True)
        _debootstrap_tar(mirror, tar)
        how = "debootstrapped"
    changes = [arg for change in CHANGES for arg in ("--change", change)]
    run("docker", "import", *changes, str(tar), tag, timeout=300)
    return tag, how


def _debootstrap_tar(mirror: str, tar: Path) -> None:
    """Debootstrap, add the venv, and pack the root into `tar` (complete or absent)."""
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tar.parent))
    rootfs = work / "rootfs"
    try:
        include = ",".join(PACKAGES)
        run(
            "debootstrap", f"--variant={VARIANT}", f"--include={include}",
            SUITE, str(rootfs), mirror, timeout=900,
        )  # fmt: skip
        run("chroot", str(rootfs), "/usr/bin/python3", "-m", "venv", VENV, timeout=300)
        for drop in DROP:
            for entry in (rootfs / drop).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = work / "base.tar"
        run("tar", "-C", str(rootfs), "-cf", str(partial), ".", timeout=600)
        partial.replace(tar)
    finally:
        _unmount_under(rootfs)
        shutil.rmtree(work, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """debootstrap mounts /proc and /sys in the target; a failed run can leave them."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):
        with contextlib.suppress(RuntimeError):
            run("umount", "-l", point, check=False)
