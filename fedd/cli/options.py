"""What the `fedd` commands share: option types, options, and option helpers.

`FiniteFloat`, `PATH` and `DIR` are option types; `QUIET`, `PARTITION` and
`ALPHA` are options of more than one command, and `ignore_columns_option`
makes --ignore-columns for the files a command reads;
`secagg_threshold_options` and `secagg_threshold` give the Shamir
threshold its name and its old spelling; `short_envvars` gives the
daemons' and `fedd status`'s options their short environment variables;
`column_names` reads a list of columns; `curve_client` turns
--curve-secret/--hub-public into CURVE client settings.
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from fedd.daemon.errors import ConfigError
from fedd.learner.dataset import MAX_MAGNITUDE
from fedd.learner.partition import PARTITIONS

__all__ = [
    "ALPHA",
    "DIR",
    "PARTITION",
    "PATH",
    "QUIET",
    "FiniteFloat",
    "column_names",
    "curve_client",
    "fill_missing_option",
    "reading_options",
    "secagg_threshold",
    "secagg_threshold_options",
    "short_envvars",
    "warn_old_threshold",
]


class FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and inf (which slip through range checks);
    `shown` is how the help gives the range, where click's bounds would be unreadable."""

    name = "float"

    def __init__(self, *args: Any, shown: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown = shown

    def _describe_range(self) -> str:
        return self.shown or super()._describe_range()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


_QUOTED_EMPTY = re.compile(r'(?:^|,)\s*""\s*(?=,|$)')


def column_names(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """Comma-separated column names, as a tuple ('' for none), quoted as in a CSV header
    where a name holds a comma, `""` for a column with no name; refuses an empty
    name written otherwise, or a repeated one."""
    if not value:
        return ()
    try:
        cells = next(csv.reader([value], skipinitialspace=True, strict=True))
    except csv.Error as exc:
        raise click.BadParameter(f"{value!r}: {exc}") from None
    names = tuple(name.strip() for name in cells)
    # `""`, quoted as a CSV header quotes an empty cell, names a column with no
    # name; an empty name otherwise is a slip, as in "a,,b".
    if names.count("") > len(_QUOTED_EMPTY.findall(value)):
        raise click.BadParameter(
            f"{value!r}: an empty column name (separate names by commas; "
            '"" names a column that has no name)'
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise click.BadParameter(f"{value!r}: column {repeated[0]!r} is named twice")
    return names


PATH = click.Path(path_type=Path, dir_okay=False)
DIR = click.Path(path_type=Path, file_okay=False)


QUIET = click.option("--quiet", is_flag=True, help="No progress display.")
PARTITION = click.option(
    "--partition",
    type=click.Choice(PARTITIONS),
    default="iid",
    help="How to cut the peers' shards: iid, label skew (dirichlet), size skew (quantity).",
)

_Command = TypeVar("_Command", bound=click.Command)
_Function = TypeVar("_Function", bound=Callable[..., Any])


def _encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise click.BadParameter(
            f"{value!r} is not a text encoding Python knows (utf-8, cp1252, latin-1, ...)"
        ) from None


def fill_missing_option(of: str = "the data") -> Callable[[_Function], _Function]:
    """--fill-missing, for the CSV files named `of` in its help."""
    option: Callable[[_Function], _Function] = click.option(
        "--fill-missing",
        type=FiniteFloat(
            -MAX_MAGNITUDE, MAX_MAGNITUDE, min_open=True, max_open=True, shown="|x|<2^62"
        ),
        default=None,
        help=f"The value a feature's missing cell (empty, NA, N/A, NULL, NaN, ...) of {of} "
        "reads as; without it such a cell is an error. Every institution fills in the same.",
    )
    return option


def reading_options(of: str = "the data") -> Callable[[_Function], _Function]:
    """--label, --ignore-columns, --encoding and --fill-missing: how to read the CSV
    files named `of` in their help, as an institution exports them."""
    options = (
        click.option("--label", default="Class", help=f"Name of the 0/1 label column of {of}."),
        click.option(
            "--ignore-columns",
            default="",
            callback=column_names,
            show_default=False,
            help=f"Columns of {of} to leave out, by name, comma-separated (ids, names, "
            "categories, dates): every other column but the label is a feature.",
        ),
        click.option(
            "--encoding",
            default="utf-8",
            callback=_encoding,
            show_default=True,
            help=f"The text encoding of {of}: a spreadsheet's CSV is often cp1252 (Windows, "
            "Western Europe) unless saved as UTF-8.",
        ),
        fill_missing_option(of),
    )

    def decorate(function: _Function) -> _Function:
        for option in reversed(options):  # as if stacked in this order, for --help
            function = option(function)
        return function

    return decorate


ALPHA = click.option(
    "--alpha",
    type=FiniteFloat(0.0, min_open=True),
    default=0.5,
    help="Dirichlet concentration for --partition dirichlet|quantity: smaller is more skewed.",
)


def secagg_threshold_options(lowest: int, help_text: str) -> Callable[[_Function], _Function]:
    """--secagg-threshold, and --threshold, its hidden old spelling.

    The old name read like a decision threshold; `secagg_threshold` merges
    the two, and `warn_old_threshold` says, once the command's settings are
    known to be good, that the old one is deprecated.
    """

    def decorate(function: _Function) -> _Function:
        function = click.option(
            "--threshold",
            type=click.IntRange(lowest),
            default=None,
            hidden=True,
            help="Deprecated spelling of --secagg-threshold.",
        )(function)
        return click.option(
            "--secagg-threshold", type=click.IntRange(lowest), default=None, help=help_text
        )(function)

    return decorate


def secagg_threshold(new: int | None, old: int | None) -> int | None:
    """The Shamir threshold given by --secagg-threshold or its old spelling --threshold."""
    if old is None:
        return new
    if new is not None:
        raise click.UsageError("give --secagg-threshold only (--threshold is its old name)")
    return old


def warn_old_threshold(old: int | None) -> None:
    """Say that --threshold is deprecated, if it was given (after the settings checked out,
    so that a bad value gets its one line of error and nothing else)."""
    if old is not None:
        click.echo(
            "fedd: warning: --threshold is deprecated: it is the Shamir threshold, now "
            "--secagg-threshold (the decision threshold is --decision-threshold)",
            err=True,
        )


def short_envvars(*path: str) -> Callable[[_Command], _Command]:
    """Give each option of the command at `path` two environment variables.

    FEDD_<FLAG> (short, for compose files: FEDD_SECAGG) first, then the
    FEDD_<PATH>_<FLAG> that every other fedd option has (FEDD_START_HUB_SECAGG).
    Both are click's own envvar lookup, listed in `--help`.
    """

    def apply(command: _Command) -> _Command:
        for param in command.params:
            if isinstance(param, click.Option):
                flag = max(param.opts, key=len).lstrip("-").replace("-", "_").upper()
                param.envvar = [f"FEDD_{flag}", "_".join(("FEDD", *path, flag)).upper()]
                param.show_envvar = True
        return command

    return apply


def curve_client(
    secret: Path | None, hub_public: Path | None, *, claim_from_dir: bool
) -> tuple[Any, IO[bytes] | None]:
    """The CURVE client settings of --curve-secret/--hub-public (None without CURVE).

    A directory as --curve-secret: a peer claims one of its keys (see
    daemon.transport.curve.claim_secret; the returned file holds the claim open);
    `fedd status` just uses the first, since it only authenticates and never
    registers. Without --hub-public the hub's key is the one of
    --curve-secret itself: that is `fedd status` beside the hub, with its key.
    """
    from fedd.daemon.transport.curve import SECRET_SUFFIX, claim_secret, load_public, load_secret
    from fedd.daemon.transport.sockets import ClientCurve

    if secret is None:
        if hub_public is not None:
            raise ConfigError("--hub-public needs --curve-secret (this side's key)")
        return None, None
    claim = None
    if secret.is_dir() and claim_from_dir:
        keys, claim = claim_secret(secret)
    elif secret.is_dir():
        found = sorted(secret.glob(f"*{SECRET_SUFFIX}"))
        if not found:
            raise ConfigError(f"{secret}: no *{SECRET_SUFFIX} key files")
        keys = load_secret(found[0])
    else:
        keys = load_secret(secret)
    server = keys.public if hub_public is None else load_public(hub_public)
    return ClientCurve(keys, server), claim
