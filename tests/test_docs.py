"""The README and docs/ stay true: their shell commands run, their links resolve.

Commands are taken from the fenced code blocks marked `sh`, `bash`, `shell`
or `console` (there, the lines after a `$ ` prompt) of README.md and
docs/*.md: backslash continuations are joined, a compound command (`for ...
done`) stays whole, and comment lines are not commands. Every command runs
as written, unless NOT_RUN lists it with the reason it cannot run in a test
(a Docker engine, several hosts, a benchmark that takes minutes, ...). So a
command added to a document runs here (and fails the test if it does not
work), and an entry of NOT_RUN that no document shows any more fails the
test as stale. Commands are compared after shell word splitting, so line
breaks, quoting and trailing comments do not matter.

How they run: the runnable commands of one document, in document order, are
one bash script (`set -e -o pipefail`), run in a fresh temporary directory so
that a later command finds the files an earlier one wrote. The `fedd` and
`python` of this interpreter's environment come first on PATH, the repository
root is on PYTHONPATH (so `python -m bench.NAME` works as from the root), and
no FEDD_* variable of the caller's environment gets through. The script runs
in a session of its own with a hard time-out; on exit it stops the jobs it
started in the background, and afterwards every process left in its session
is killed, pass or fail.

Ports: documents show fixed ports (`tcp://127.0.0.1:5555`). Each port written
in a `tcp://HOST:PORT` address of a document's runnable commands is replaced,
throughout that document's script, by a port that was free on 127.0.0.1 a
moment before, and FEDD_BIND, FEDD_CONNECT and FEDD_HUB send the daemons'
default addresses to the free port that stands for 5555. So a documented 5555
collides neither with another program on this machine nor with a concurrent
run of the suite. A runnable command may address only 127.0.0.1 or
localhost; an address of another host is a placeholder and must be listed.

Besides: every option of every `fedd` command appears in the section of
docs/cli.md that names the command, every case of `bench.bad_input` has its
row in the table there, every relative link (and its #anchor) resolves, and
the README links every page of docs/.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from bench.bad_input import CASES
from fedd.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
CLI_REFERENCE = ROOT / "docs" / "cli.md"
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
SCRIPT_TIMEOUT_S = 120.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})

_DOCKER = (
    "needs a Docker engine and root: tests/docker/test_compose_up.py runs these commands "
    "(in compose v1's spelling, docker-compose)"
)
_DOCKER_DATA = (
    "data for the compose run that follows, which needs a Docker engine "
    "(tests/docker/test_compose_up.py makes its data the same way)"
)
_HOSTS = "`hub-host` stands for the hub's address on another host"
_SUITE = "runs the test suite, this test included"

# Commands the documents show that cannot run here, each with the reason.
NOT_RUN: dict[str, str] = {
    "make demo": "installs fedd into .venv and runs the demo at full size (284,807 rows): minutes",
    "make test": _SUITE,
    "make bench": "runs bench.learner and bench.secagg at full size: minutes",
    ".venv/bin/pytest -q -m not slow": _SUITE,
    "jupyter nbconvert --to notebook --execute notebooks/fedd_demo.ipynb": (
        "needs jupyter, which is not a fedd dependency (tests/e2e/test_notebook.py runs the "
        "notebook where it is installed)"
    ),
    "fedd start hub --bind tcp://*:5555 --state-dir state/hub --min-peers 3 --rounds 10 "
    "--curve-secret keys/hub.secret --allow-dir keys/peers": (
        "the hub of a federation across hosts: it listens on every interface and waits for "
        "peers on other hosts"
    ),
    "fedd start peer --connect tcp://hub-host:5555 --data transactions.csv --state-dir "
    "state/peer --curve-secret bank-a.secret --hub-public hub.pub": _HOSTS,
    "fedd status peers --hub tcp://hub-host:5555 --curve-secret keys/peers/bank-a.secret "
    "--hub-public keys/hub.pub": _HOSTS,
    "fedd data synth --rows 100000 --out data/creditcard.csv": _DOCKER_DATA,
    "fedd data split --input data/creditcard.csv --peers 5 --out data/clients": _DOCKER_DATA,
    "docker compose -f docker/docker-compose.yml up -d --build --scale peer=3": _DOCKER,
    "docker compose -f docker/docker-compose.yml up -d --scale peer=5": _DOCKER,
    "docker compose -f docker/docker-compose.yml exec -T hub fedd status": _DOCKER,
    "docker compose -f docker/docker-compose.yml logs -f hub": _DOCKER,
    "docker compose -f docker/docker-compose.yml down -v": _DOCKER,
    "docker compose -f docker/docker-compose.yml run --rm --no-deps hub keys generate "
    "--out /home/fedd/keys --name hub": _DOCKER,
    "docker compose -f docker/docker-compose.yml run --rm --no-deps hub keys generate "
    "--out /home/fedd/keys/peers --name peer-1 --name peer-2 --name peer-3 --name peer-4 "
    "--name peer-5": _DOCKER,
    "docker compose -f docker/docker-compose.yml -f docker/curve.yml up -d --build "
    "--scale peer=5": _DOCKER,
    "setfacl -R -m u:10001:rX -m d:u:10001:rX data": (
        "opens the data of the compose run to the containers' user, for data kept private "
        "(the compose run needs a Docker engine)"
    ),
    "apt-get install docker.io docker-compose debootstrap": (
        "installs system packages as root (.ci/run does, where it can)"
    ),
    ".venv/bin/pytest tests/docker": "runs tests/docker, which the suite runs too",
    "python -m bench.learner": "a benchmark: 228,000 rows trained three ways, about 30 s",
    "python -m bench.secagg --only mask,rounds,large": "a benchmark: 1000 peers, minutes",
    "python -m bench.rounds": "a benchmark: hubs with up to 100 peer processes, minutes",
    "python -m bench.rounds --curve": "a benchmark: hubs with up to 100 peer processes, minutes",
    "python -m bench.rounds --active": "a benchmark: hubs with up to 100 peer processes, minutes",
    "python -m bench.soak": "100 rounds while daemons are killed: minutes",
    "python -m bench.fuzz --seconds 600": "fuzzes for ten minutes, by design",
    "python -m bench.bad_input": "about 350 fedd processes: a minute and a half on two cores",
    "python -m bench.store": "a benchmark of fsync on a long run's state: tens of seconds",
    "python -m bench.topology": "a benchmark: graphs of up to 10,000 peers, tens of seconds",
    "python -m bench.strategies": (
        "a benchmark: 7 strategies on 4 partitions of 284,807 rows, 20 rounds each: half an hour"
    ),
}


# --- reading the documents -------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, its lines (unindented) and where it starts."""

    language: str
    lines: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Command:
    """One shell command of a document, as written (continuations and all)."""

    text: str
    document: Path
    line: int

    @property
    def key(self) -> str:
        """The command after shell word splitting: what NOT_RUN is keyed by."""
        return normalize(self.text)

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)")


def blocks(text: str) -> Iterator[Block]:
    """The fenced code blocks of a markdown text, in order."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        start = i + 1
        i += 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if closing and closing["fence"].startswith(fence) and not closing["info"]:
                break
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        yield Block(opening["info"].lower(), tuple(body), start + 1)
        i += 1


def outside_code(text: str) -> str:
    """The text with every fenced code block blanked out (line numbers kept)."""
    lines = text.splitlines()
    for block in blocks(text):
        for n in range(block.line - 1, block.line - 1 + len(block.lines)):
            lines[n] = ""
        lines[block.line - 2] = ""  # the opening fence
        if block.line - 1 + len(block.lines) < len(lines):
            lines[block.line - 1 + len(block.lines)] = ""  # the closing fence
    return "\n".join(lines)


def is_complete(source: str) -> bool:
    """Whether bash parses `source` as whole commands (no open `for`, quote, ...)."""
    result = subprocess.run(
        ["bash", "-n"], input=source, capture_output=True, text=True, timeout=30, check=False
    )
    return result.returncode == 0


def commands_of(block: Block, document: Path) -> list[Command]:
    """The shell commands of one block; `console` blocks count only prompted lines."""
    lines: list[tuple[int, str]] = []
    prompted = block.language == "console"
    continuing = False
    for n, raw in enumerate(block.lines, block.line):
        line = raw
        if prompted:
            if raw.startswith("$ ") or (continuing and raw.startswith("> ")):
                line = raw[2:]
            elif not continuing:
                continue  # output
        lines.append((n, line))
        continuing = line.endswith("\\")
    found: list[Command] = []
    pending: list[str] = []
    first = 0
    for n, line in lines:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            first = n
        pending.append(line)
        if line.endswith("\\"):
            continue
        source = "\n".join(pending) + "\n"
        if is_complete(source):
            found.append(Command(source, document, first))
            pending = []
    if pending:
        raise AssertionError(f"{document.relative_to(ROOT)}:{first}: not a complete shell command")
    return found


def normalize(text: str) -> str:
    """A command as shell words: no line breaks, quoting or trailing comment."""
    return " ".join(shlex.split(text.replace("\\\n", " "), comments=True))


@functools.cache
def document_commands(document: Path) -> tuple[Command, ...]:
    """The shell commands of a document, in order."""
    text = document.read_text(encoding="utf-8")
    return tuple(
        command
        for block in blocks(text)
        if block.language in SHELL_LANGUAGES
        for command in commands_of(block, document)
    )


@pytest.fixture(scope="module")
def all_commands() -> list[Command]:
    return [command for document in DOCUMENTS for command in document_commands(document)]


# --- the commands ----------------------------------------------------------------


_ADDRESS = re.compile(r"(tcp://)([^\s:/'\"]+)(:)(\d+)")


def test_the_documents_are_read() -> None:
    assert ROOT / "README.md" in DOCUMENTS
    assert len(DOCUMENTS) >= 7


def test_no_listed_command_is_stale(all_commands: list[Command]) -> None:
    """Every entry of NOT_RUN is still shown somewhere."""
    shown = {command.key for command in all_commands}
    assert sorted(set(NOT_RUN) - shown) == []


def test_runnable_commands_stay_on_this_machine(all_commands: list[Command]) -> None:
    elsewhere = [
        f"{command.where}: {match[0]}"
        for command in all_commands
        if command.key not in NOT_RUN
        for match in _ADDRESS.finditer(command.text)
        if match[2] not in LOCAL_HOSTS
    ]
    assert elsewhere == [], "list these in NOT_RUN, or address 127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script_for(commands: list[Command]) -> tuple[str, dict[str, int]]:
    """The bash script of a document's runnable commands, with its ports made free."""
    ports: dict[str, int] = {}
    for command in commands:
        for match in _ADDRESS.finditer(command.text):
            ports.setdefault(match[4], _free_port())
    ports.setdefault("5555", _free_port())
    lines = [
        "set -e -o pipefail",
        # Stop what the script started in the background, and wait for it to go.
        "trap 'code=$?; set +e; kill $(jobs -p) 2>/dev/null; wait; exit $code' EXIT",
        "PS4='+ [${SECONDS}s] '",
        "set -x",
    ]
    for command in commands:
        lines.append(
            _ADDRESS.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{ports[m[4]]}", command.text).rstrip("\n")
        )
    return "\n".join(lines) + "\n", ports


def _environment(ports: dict[str, int]) -> dict[str, str]:
    bindir = Path(sys.executable).parent
    if shutil.which("fedd", path=str(bindir)) is None:
        pytest.fail(f"no fedd script beside {sys.executable}: install fedd into this environment")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDD_")}
    address = f"tcp://127.0.0.1:{ports['5555']}"
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        MPLBACKEND="Agg",
        FEDD_BIND=address,
        FEDD_CONNECT=address,
        FEDD_HUB=address,
    )
    return env


def _kill_session(pgid: int) -> None:
    """SIGKILL every process still in the script's session; none may outlive the test."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _runnable(document: Path) -> list[Command]:
    return [c for c in document_commands(document) if c.key not in NOT_RUN]


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize(
    "document",
    [d for d in DOCUMENTS if _runnable(d)],
    ids=lambda d: str(d.relative_to(ROOT)),
)
def test_the_commands_of_each_document_run_as_written(document: Path, tmp_path: Path) -> None:
    script, ports = script_for(_runnable(document))
    (tmp_path / ".docs-script.sh").write_text(script, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    log_path = tmp_path / ".docs-output.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["bash", str(tmp_path / ".docs-script.sh")],
            cwd=work,
            env=_environment(ports),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code: int | None = proc.wait(timeout=SCRIPT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            _kill_session(proc.pid)
            proc.wait()
    output = log_path.read_text(encoding="utf-8", errors="replace")
    tail = "\n".join(output.splitlines()[-60:])
    assert code is not None, f"still running after {SCRIPT_TIMEOUT_S:g} s:\n{tail}"
    assert code == 0, f"exit {code}; the output's end:\n{tail}"


def test_the_reader_finds_the_extraction_rules() -> None:
    """Continuations join, compound commands stay whole, prompts and comments count right."""
    text = (
        "intro\n"
        "```sh\n"
        "# a comment\n"
        "fedd data synth --rows 10 \\\n"
        "    --out 'a b.csv'   # trailing\n"
        "\n"
        "for k in 1 2; do\n"
        "    echo $k\n"
        "done\n"
        "```\n"
        "```console\n"
        "$ fedd status --hub tcp://127.0.0.1:5555\n"
        "run        run-1\n"
        "$ echo one \\\n"
        "> two\n"
        "```\n"
        "```text\n"
        "fedd not a command\n"
        "```\n"
        "  ```bash\n"
        "  make demo\n"
        "  ```\n"
    )
    document = ROOT / "README.md"
    found = [
        (c.key, c.line)
        for block in blocks(text)
        if block.language in SHELL_LANGUAGES
        for c in commands_of(block, document)
    ]
    assert found == [
        ("fedd data synth --rows 10 --out a b.csv", 4),
        ("for k in 1 2; do echo $k done", 7),
        ("fedd status --hub tcp://127.0.0.1:5555", 12),
        ("echo one two", 14),
        ("make demo", 21),
    ]
    script, ports = script_for([Command("fedd status --hub tcp://127.0.0.1:5555\n", document, 1)])
    assert f"--hub tcp://127.0.0.1:{ports['5555']}\n" in script


# --- the command line reference --------------------------------------------------


@dataclass(frozen=True)
class Section:
    level: int
    title: str
    body: str


def sections(text: str) -> list[Section]:
    """Each heading (outside code) with its text up to the next heading of its level or above."""
    lines = outside_code(text).splitlines()
    heads = [
        (n, len(m[1]), m[2].strip())
        for n, line in enumerate(lines)
        if (m := re.match(r"^(#{1,6})\s+(.*)$", line))
    ]
    found = []
    for i, (n, level, title) in enumerate(heads):
        end = next((m for m, lv, _ in heads[i + 1 :] if lv <= level), len(lines))
        found.append(Section(level, title, "\n".join(lines[n + 1 : end])))
    return found


def _commands_with_options() -> Iterator[tuple[str, click.Command]]:
    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        if any(isinstance(p, click.Option) for p in command.params):
            yield path, command
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{path} lists {name} but has no such command"
                yield from walk(sub, f"{path} {name}")

    return walk(main, "fedd")


def test_every_option_is_in_the_cli_reference() -> None:
    by_title = {s.title: s for s in sections(CLI_REFERENCE.read_text(encoding="utf-8"))}
    missing = []
    for path, command in _commands_with_options():
        section = next((s for t, s in by_title.items() if f"`{path}`" in t), None)
        if section is None:
            missing.append(f"a heading naming `{path}`")
            continue
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            for flag in param.opts:
                if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", section.body):
                    missing.append(f"{path} {flag}")
    assert missing == []


def test_every_bad_input_case_has_its_row_in_the_cli_reference() -> None:
    rows: set[tuple[str, str]] = set()
    for line in CLI_REFERENCE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4:
            rows.update((what, cells[1]) for what in re.findall(r"`([^`]+)`", cells[0]))
    missing = [
        f"{case.what}: {case.tried}"
        for case in CASES
        if (case.what, case.tried.replace("|", "\\|").replace("\n", " ")) not in rows
    ]
    assert missing == [], "run python -m bench.bad_input and update docs/cli.md's table"


# --- links -----------------------------------------------------------------------


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for section in sections(document.read_text(encoding="utf-8")):
        base = slug(section.title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(document: Path) -> list[str]:
    return _LINK.findall(outside_code(document.read_text(encoding="utf-8")))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_link_resolves(document: Path) -> None:
    broken = []
    for target in links(document):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        where = (document.parent / path).resolve() if path else document
        if not where.exists():
            broken.append(f"{target}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


_MODULE_PATH = re.compile(r"`((?:[\w.-]+/)+[\w.-]+\.py)`")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_module_path_named_exists(document: Path) -> None:
    """A reading guide that names a module that moved sends the reader nowhere."""
    named = _MODULE_PATH.findall(document.read_text(encoding="utf-8"))
    assert [path for path in named if not (ROOT / path).exists()] == []


def test_the_readme_links_every_page_of_docs() -> None:
    linked = {target.partition("#")[0] for target in links(ROOT / "README.md")}
    pages = {f"docs/{page.name}" for page in DOCUMENTS if page.parent == ROOT / "docs"}
    assert sorted(pages - linked) == []
