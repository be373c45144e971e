"""notebooks/fedd_demo.ipynb runs top to bottom under `jupyter nbconvert --execute`.

jupyter is not a dependency of fedd (not even of its dev extra): without
nbconvert and ipykernel the test is skipped, saying how to run it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "fedd_demo.ipynb"
_MISSING = [
    m for m in ("jupyter_core", "nbconvert", "ipykernel") if importlib.util.find_spec(m) is None
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(_MISSING),
        reason=f"jupyter is not installed ({', '.join(_MISSING)} missing; it is not a fedd "
        "dependency): pip install nbconvert ipykernel to run the notebook",
    ),
]


def _text(output: dict[str, Any]) -> str:
    """The text a cell output shows (nbformat stores it as a string or a list of lines)."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def test_the_demo_notebook_runs_and_shows_the_plots_and_the_verdict(tmp_path: Path) -> None:
    notebook = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)  # the kernel runs in the notebook's directory
    executed = tmp_path / "executed.ipynb"
    env = {**os.environ, "FEDD_NOTEBOOK_DIR": str(tmp_path / "run"), "FEDD_NOTEBOOK_ROWS": "8000"}
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=600", "--output", str(executed), str(notebook)],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    cells = json.loads(executed.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert all(cell["execution_count"] for cell in code)  # every cell ran
    outputs = [output for cell in code for output in cell["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3
    text = "\n".join(map(_text, outputs))
    assert "verdict: " in text
    assert "overall " in text and "roc_auc " in text
    assert "round time   median" in text
    assert (tmp_path / "run" / "outputs" / "metrics" / "baseline_vs_fl.csv").is_file()
