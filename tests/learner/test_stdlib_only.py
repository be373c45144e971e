"""The learner's hard constraint: pure standard library (no numpy, pandas, sklearn)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from fedd import learner

LEARNER_DIR = Path(learner.__file__).parent


def _root(module: str) -> str:
    """The distribution a module comes from; fedd's own rooms count apart."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "fedd" else parts[0]


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(_root(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(_root(node.module))
    return roots


def test_learner_imports_only_the_standard_library_and_itself() -> None:
    modules = sorted(LEARNER_DIR.rglob("*.py"))
    assert len(modules) >= 10  # the walk really found the package
    offenders = {}
    for path in modules:
        roots = _imported_roots(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        outside = roots - set(sys.stdlib_module_names) - {"fedd.learner", "__future__"}
        if outside:
            offenders[path.name] = sorted(outside)
    assert offenders == {}


def test_the_check_catches_a_third_party_import() -> None:
    tree = ast.parse("import numpy as np\nfrom pandas.io import parsers\nimport math\n")
    roots = _imported_roots(tree)
    assert roots - set(sys.stdlib_module_names) == {"numpy", "pandas"}
