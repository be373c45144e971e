"""The `fedd` command: the click group, its logging, and the mapping of user errors.

Each command parses its options, builds a config and calls one function.
User mistakes (bad flags, unusable files, impossible parameters) become one
line on stderr and a non-zero exit; anything else is a bug and keeps its
traceback. Every option can also be set through an environment variable,
`FEDD_<GROUP>_<COMMAND>_<OPTION>`, so that containers can be configured
without long command lines. The options of the daemons and of `fedd status`
also answer to the short `FEDD_<OPTION>` (FEDD_SECAGG, FEDD_STATE_DIR, ...),
which wins when both are set; `--help` shows both names. Options whose
Python name differs from the flag (--input -> input_path) name their
variable explicitly, so that it still follows the flag.

The commands live in the modules of `fedd.cli` named after them; the `fedd`
group imports a command's module only when that command runs (or help lists
it), so that a daemon does not start by loading the demo, the simulator and
the report.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from fedd.crypto.errors import ParameterError
from fedd.daemon.errors import ConfigError, StateError
from fedd.learner.errors import DataError

__all__ = ["main"]

EXIT_USER_ERROR = 1

# Exceptions whose message is written for the user: print it, exit non-zero.
USER_ERRORS: tuple[type[Exception], ...] = (DataError, ParameterError, ConfigError, StateError)


# Command name -> the name its module, `fedd.cli.<command name>`, defines it under.
COMMANDS = {
    "data": "data",
    "demo": "demo",
    "keys": "keys",
    "report": "report",
    "simulate": "simulate",
    "start": "start",
    "status": "status",
    "train": "train_group",
}


class _FeddGroup(click.Group):
    """A click group that loads its commands on demand and turns our user-facing
    exceptions into one stderr line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command = getattr(importlib.import_module(f"fedd.cli.{cmd_name}"), COMMANDS[cmd_name])
        assert isinstance(command, click.Command)
        return command

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
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """fedd: federated fraud-detection training with secure aggregation."""
    ctx.obj = verbose
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
