"""The code's rooms stay where docs/layout.md draws them.

Every module of fedd is read (not imported) and each of its imports of fedd
itself checked against the layers, from the bottom:

    0  fedd.learner, fedd.topology
    1  fedd.crypto
    2  fedd.daemon.errors (what transport and state both raise)
    3  fedd.daemon.transport, fedd.daemon.state
    4  fedd.daemon.hub, fedd.peer
    5  fedd's own modules: the command line, demo, simulation, report

A module may import its own room and any room of a lower layer; two rooms of
one layer never import each other. There is no import cycle between modules,
lazy imports inside functions included, and no module is over MAX_LINES.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import fedd

ROOT = Path(fedd.__file__).resolve().parent.parent
ROOMS = ("learner", "topology", "crypto", "daemon", "peer")
MAX_LINES = 450

LAYERS: dict[str, int] = {
    "fedd.learner": 0,
    "fedd.topology": 0,
    "fedd.crypto": 1,
    "fedd.daemon.errors": 2,
    "fedd.daemon": 2,  # the package itself: only its docstring
    "fedd.daemon.transport": 3,
    "fedd.daemon.state": 3,
    "fedd.daemon.hub": 4,
    "fedd.peer": 4,
    "fedd": 5,
}


def room_of(module: str) -> str:
    """The longest LAYERS prefix that `module` falls under."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return prefix
    raise ValueError(f"{module} is in no layer")


def project_modules() -> dict[str, Path]:
    """Every module of fedd by its installed name, from the real files."""
    found: dict[str, Path] = {}
    folders = [(ROOT / room, f"fedd.{room}") for room in ROOMS]
    folders.append((ROOT / "fedd", "fedd"))
    for folder, package in folders:
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            if package == "fedd" and rel.parts[0] in ROOMS:
                continue  # the links to the rooms, read above from the real folders
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def imports_of(module: str, path: Path, known: Iterable[str]) -> set[str]:
    """The fedd modules `module` imports, anywhere in its file."""
    known = set(known)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    targets: set[str] = set()

    def add(name: str) -> None:
        while name and name not in known:  # a name inside a module: its module
            name = name.rpartition(".")[0]
        if name.startswith("fedd"):
            targets.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                add(f"{origin}.{alias.name}")
    targets.discard(module)
    return targets


def layer_violations(graph: Mapping[str, set[str]]) -> list[str]:
    """Each import that goes up, or sideways into another room of the same layer."""
    bad = []
    for source, targets in sorted(graph.items()):
        src_room = room_of(source)
        for target in sorted(targets):
            dst_room = room_of(target)
            if dst_room == src_room or LAYERS[dst_room] < LAYERS[src_room]:
                continue
            direction = "up" if LAYERS[dst_room] > LAYERS[src_room] else "sideways"
            bad.append(f"{source} imports {target} ({direction}: {src_room} -> {dst_room})")
    return bad


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_every_room_is_read(graph: dict[str, set[str]]) -> None:
    rooms = {room_of(name) for name in graph}
    assert rooms == set(LAYERS)
    assert len(graph) > 60  # the walk really found the modules


def test_no_import_goes_up_or_sideways(graph: dict[str, set[str]]) -> None:
    assert layer_violations(graph) == []


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_no_module_is_over_the_size_cap() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in project_modules().items()
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_checks_catch_a_back_import_a_sideways_one_and_a_cycle() -> None:
    graph = {
        "fedd.crypto.shamir": {"fedd.daemon.transport.wire"},
        "fedd.daemon.state.store": {"fedd.daemon.transport.messages"},
        "fedd.daemon.transport.wire": {"fedd.daemon.transport.messages"},
        "fedd.daemon.transport.messages": {"fedd.daemon.transport.wire"},
        "fedd.peer.agent": {"fedd.learner.model", "fedd.daemon.transport.wire"},
    }
    assert layer_violations(graph) == [
        "fedd.crypto.shamir imports fedd.daemon.transport.wire "
        "(up: fedd.crypto -> fedd.daemon.transport)",
        "fedd.daemon.state.store imports fedd.daemon.transport.messages "
        "(sideways: fedd.daemon.state -> fedd.daemon.transport)",
    ]
    assert cycles(graph) == [["fedd.daemon.transport.messages", "fedd.daemon.transport.wire"]]


def test_relative_and_lazy_imports_are_read(tmp_path: Path) -> None:
    source = tmp_path / "__init__.py"
    source.write_text(
        "from .graph import PeerGraph\n"
        "def later():\n"
        "    from fedd.crypto import shamir\n"
        "    import fedd.learner.model\n"
    )
    known = {
        "fedd.topology",
        "fedd.topology.graph",
        "fedd.crypto",
        "fedd.crypto.shamir",
        "fedd.learner",
        "fedd.learner.model",
    }
    assert imports_of("fedd.topology", source, known) == {
        "fedd.topology.graph",
        "fedd.crypto.shamir",
        "fedd.learner.model",
    }


def test_every_module_loads_once_under_its_installed_name() -> None:
    """Importing all of fedd loads no top-level `daemon`, `crypto`, ... and no file twice."""
    names = sorted(name for name in project_modules() if not name.endswith("__main__"))
    script = (
        "import importlib, os, sys\n"
        f"names = {names!r}\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        f"bare = sorted(set({list(ROOMS)!r}) & set(sys.modules))\n"
        "files = {}\n"
        "for name, mod in list(sys.modules.items()):\n"
        "    path = getattr(mod, '__file__', None)\n"
        "    if path and name.startswith('fedd'):\n"
        "        files.setdefault(os.path.realpath(path), []).append(name)\n"
        "twice = sorted(v for v in files.values() if len(v) > 1)\n"
        "print(len(files), bare, twice)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split(maxsplit=1)
    assert int(out[0]) == len(names)
    assert out[1].strip() == "[] []"
