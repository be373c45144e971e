"""Option types the `fedd` commands share."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

__all__ = ["DIR", "PATH", "FiniteFloat"]


class FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and inf (which slip through range checks)."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


PATH = click.Path(path_type=Path, dir_okay=False)
DIR = click.Path(path_type=Path, file_okay=False)
