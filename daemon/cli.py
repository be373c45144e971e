"""The `fedd` command line: a shell over the library.

Each command parses its options, builds a config and calls one function.
User mistakes (bad flags, unusable files, impossible parameters) become one
line on stderr and a non-zero exit; anything else is a bug and keeps its
traceback. Every option can also be set through an environment variable,
`FEDD_<GROUP>_<COMMAND>_<OPTION>` (shown in `--help`), so that containers can
be configured without long command lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from crypto.errors import ParameterError
from learner.errors import DataError

__all__ = ["main"]

EXIT_USER_ERROR = 1

# Exceptions whose message is written for the user: print it, exit non-zero.
USER_ERRORS: tuple[type[Exception], ...] = (DataError, ParameterError)


class _FeddGroup(click.Group):
    """A click group that turns our user-facing exceptions into one stderr line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            click.echo(f"fedd: error: {exc}", err=True)
            ctx.exit(EXIT_USER_ERROR)


@click.group(
    cls=_FeddGroup,
    context_settings={"auto_envvar_prefix": "FEDD", "show_default": True},
)
@click.version_option(package_name="fedd")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
def main(verbose: int) -> None:
    """fedd: federated fraud-detection training with secure aggregation."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
