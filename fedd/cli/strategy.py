"""The options that choose how a federation trains: the strategy, its settings, FedProx.

`fedd start hub` and `fedd demo` share them (`strategy_options`); the hub
records them in its run (run.csv) and peers get `--proximal-mu` with each
round's training configuration. `strategy_of` turns the options given into
a `learner.strategy.Strategy`, refusing a setting the chosen strategy does
not use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from fedd.cli.options import FiniteFloat
from fedd.daemon.errors import ConfigError
from fedd.learner.strategy import STRATEGIES, Strategy, defaults, strategies_using

__all__ = ["strategy_flags", "strategy_of", "strategy_options"]

_Function = TypeVar("_Function", bound=Callable[..., Any])

_UNIT = FiniteFloat(0.0, 1.0, max_open=True)
_POSITIVE = FiniteFloat(0.0, min_open=True)
_OPTIONS = (
    click.option(
        "--strategy",
        type=click.Choice(STRATEGIES),
        default="fedavg",
        help="What the hub makes of each round's mean update: fedavg, fedavgm (server "
        "momentum), fedadam, fedyogi, fedadagrad (adaptive server optimizers), or "
        "scaffold (control variates against client drift).",
    ),
    click.option(
        "--server-lr",
        type=_POSITIVE,
        default=None,
        help="Server learning rate [default: 1 for fedavg and fedadagrad, 0.5 for fedavgm "
        "and scaffold, 0.3 for fedadam and fedyogi].",
    ),
    click.option(
        "--server-momentum",
        type=_UNIT,
        default=None,
        help="fedavgm: momentum of the server's update [default: 0.5].",
    ),
    click.option(
        "--beta1",
        type=_UNIT,
        default=None,
        help="fedadam, fedyogi, fedadagrad: decay of the first moment [default: 0.9].",
    ),
    click.option(
        "--beta2",
        type=_UNIT,
        default=None,
        help="fedadam, fedyogi: decay of the second moment [default: 0.99].",
    ),
    click.option(
        "--tau",
        type=_POSITIVE,
        default=None,
        help="fedadam, fedyogi, fedadagrad: adaptivity (added to the root of the second "
        "moment) [default: 0.1].",
    ),
    click.option(
        "--proximal-mu",
        type=FiniteFloat(0.0),
        default=0.0,
        help="FedProx: weight mu of the proximal term mu/2 |w - w_global|^2 in each peer's "
        "objective (0: none); works with every strategy.",
    ),
)


def strategy_options(function: _Function) -> _Function:
    """Add --strategy, its settings and --proximal-mu to a command."""
    for option in reversed(_OPTIONS):
        function = option(function)
    return function


def strategy_of(
    strategy: str,
    server_lr: float | None,
    server_momentum: float | None,
    beta1: float | None,
    beta2: float | None,
    tau: float | None,
) -> Strategy:
    """The strategy the options ask for; ConfigError for a setting it does not use."""
    given = {
        "server_lr": server_lr,
        "server_momentum": server_momentum,
        "beta1": beta1,
        "beta2": beta2,
        "tau": tau,
    }
    used = defaults(strategy)
    for key, value in given.items():
        if value is not None and key not in used:
            raise ConfigError(
                f"--{key.replace('_', '-')} is a setting of {strategies_using(key)} only, "
                f"not of --strategy {strategy}"
            )
    try:
        return Strategy(strategy, **given)
    except ValueError as exc:
        raise ConfigError(f"--strategy {strategy}: {exc}") from None


def strategy_flags(strategy: Strategy, proximal_mu: float) -> list[str]:
    """The `fedd start hub` options that ask for `strategy` and `proximal_mu`."""
    settings = {**strategy.settings, "proximal_mu": repr(proximal_mu)}
    flags: list[str] = []
    for key, value in settings.items():
        flags += [f"--{key.replace('_', '-')}", value]
    return flags
