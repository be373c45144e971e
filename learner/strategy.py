"""Federated strategies: how the hub turns a round's mean update into a step.

A training round's survivors each send their update `y_u - x` (local model
minus the global model x); the hub learns only their sample-weighted mean
D, through secure aggregation. FedAvg adds D to the model. The server
optimizers of Reddi et al. ("Adaptive Federated Optimization", ICLR 2021,
Algorithm 2) treat -D as a pseudo-gradient, so they need nothing but the
mean and work unchanged under secure aggregation. Coordinatewise, with
server learning rate `eta`:

    fedavg      x <- x + eta D
    fedavgm     m <- mu m + D                          x <- x + eta m
    fedadagrad  m <- b1 m + (1 - b1) D;  v <- v + D^2;  x <- x + eta m / (sqrt(v) + tau)
    fedadam     m as fedadagrad;  v <- b2 v + (1 - b2) D^2;  x as fedadagrad
    fedyogi     m as fedadagrad;  v <- v - (1 - b2) D^2 sign(v - D^2);  x as fedadagrad
    scaffold    x <- x + eta D;   c <- c + (|S| / |P|) C

FedAvgM is Hsu et al. (2019), as Flower ships it. The momentum m starts at
0 and the second moment v at tau^2, as the paper initialises it, with no
bias correction.

SCAFFOLD (Karimireddy et al., ICML 2020, option II): each peer keeps a
control variate c_i, the hub their weighted mean c. A peer trains with each
step's gradient corrected by c - c_i (`learner.model.train`'s
`correction`); after K local steps at learning rate lr from x to y_i its
new control variate is c_i+ = c_i - c + (x - y_i) / (K lr), and it sends the
change c_i+ - c_i (`control_change`) beside its update, through the same
secure sum. C is the weighted mean of the changes of the survivors S; a
dropped peer keeps its c_i, so c moves by the fraction |S| / |P| of the
round's participants P whose changes the sum holds (exact when no one
drops; with dropouts, it counts each peer's weight as the survivors'
average).

`server_step` is the one implementation of these rules: the hub applies it
to each round's mean, and its state directory replays the committed means
through it, so both must give the same floats bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

__all__ = [
    "SETTING_KEYS",
    "STRATEGIES",
    "ServerState",
    "Strategy",
    "control_change",
    "defaults",
    "server_step",
    "strategies_using",
]

STRATEGIES = ("fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "scaffold")
_ADAPTIVE = ("fedadam", "fedyogi", "fedadagrad")
# The settings each strategy uses, and their defaults (chosen with bench.strategies).
_DEFAULTS: dict[str, dict[str, float]] = {
    "fedavg": {"server_lr": 1.0},
    "fedavgm": {"server_lr": 0.5, "server_momentum": 0.5},
    "fedadam": {"server_lr": 0.3, "beta1": 0.9, "beta2": 0.99, "tau": 0.1},
    "fedyogi": {"server_lr": 0.3, "beta1": 0.9, "beta2": 0.99, "tau": 0.1},
    "fedadagrad": {"server_lr": 1.0, "beta1": 0.9, "tau": 0.1},
    "scaffold": {"server_lr": 0.5},
}
# Each setting's range: (low, high, whether high is excluded).
_RANGES = {
    "server_lr": (0.0, math.inf, False),
    "server_momentum": (0.0, 1.0, True),
    "beta1": (0.0, 1.0, True),
    "beta2": (0.0, 1.0, True),
    "tau": (0.0, math.inf, False),
}

# The keys of a strategy's settings in run.csv (`Strategy.settings`).
SETTING_KEYS = ("strategy", *_RANGES)


@dataclass(frozen=True, slots=True)
class Strategy:
    """A strategy and its settings. Build it with the settings given (None: not given).

    A setting the strategy uses defaults to the strategy's own value; one it
    does not use must not be given, and stays None. Raises `ValueError`
    naming the setting for an unknown strategy, a setting out of range
    (`server_lr` and `tau` > 0, the others in [0, 1)) or one the strategy
    does not use.
    """

    name: str = "fedavg"
    server_lr: float | None = None
    server_momentum: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    tau: float | None = None

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.name!r}")
        defaults = _DEFAULTS[self.name]
        for key, (low, high, open_high) in _RANGES.items():
            value = getattr(self, key)
            if key not in defaults:
                if value is not None:
                    users = strategies_using(key)
                    raise ValueError(f"{key} is a setting of {users}, not of {self.name}")
                continue
            if value is None:
                value = defaults[key]
            if type(value) not in (int, float) or not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number, not {value!r}")
            if not (low < value if key in ("server_lr", "tau") else low <= value) or not (
                value < high if open_high else value <= high
            ):
                ends = "> 0" if key in ("server_lr", "tau") else "in [0, 1)"
                raise ValueError(f"{key} must be {ends}, not {value!r}")
            object.__setattr__(self, key, float(value))

    @property
    def settings(self) -> dict[str, str]:
        """The strategy and the settings it uses, as run.csv keeps them."""
        kept = {"strategy": self.name}
        kept.update((key, repr(self.setting(key))) for key in _DEFAULTS[self.name])
        return kept

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> Strategy:
        """The strategy that `settings` (run.csv's) record; FedAvg if none is.

        Raises `ValueError` naming the setting that is not a number or not valid.
        """
        given: dict[str, float] = {}
        for key in _RANGES:
            if key in settings:
                try:
                    given[key] = float(settings[key])
                except ValueError:
                    raise ValueError(f"{key} {settings[key]!r} is not a number") from None
        return cls(settings.get("strategy", "fedavg"), **given)

    def describe(self) -> str:
        """One line: `fedadam (server_lr 0.1, beta1 0.9, beta2 0.99, tau 0.001)`."""
        used = ", ".join(f"{key} {self.setting(key):g}" for key in _DEFAULTS[self.name])
        return f"{self.name} ({used})"

    @property
    def keeps_state(self) -> bool:
        """Whether the strategy has state beyond the model (all but FedAvg)."""
        return self.name != "fedavg"

    @property
    def controls(self) -> bool:
        """Whether rounds carry SCAFFOLD's control variates."""
        return self.name == "scaffold"

    def setting(self, key: str) -> float:
        """The value of setting `key`; ValueError if the strategy does not use it."""
        value = getattr(self, key)
        if type(value) is not float:
            raise ValueError(f"{self.name} does not use {key}")
        return value


def defaults(name: str) -> dict[str, float]:
    """The settings strategy `name` uses, with their defaults; ValueError if unknown."""
    if name not in _DEFAULTS:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {name!r}")
    return dict(_DEFAULTS[name])


def strategies_using(key: str) -> str:
    """The strategies that use setting `key`, as prose: `fedadam and fedyogi`."""
    names = [name for name in STRATEGIES if key in _DEFAULTS[name]]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@dataclass(frozen=True, slots=True)
class ServerState:
    """What a strategy keeps between rounds, one value per model parameter:
    the momentum m, the second moment v, and SCAFFOLD's control variate c.
    A strategy that does not use one keeps it at 0."""

    momentum: tuple[float, ...]
    second_moment: tuple[float, ...]
    control: tuple[float, ...]

    def __post_init__(self) -> None:
        sizes = {len(self.momentum), len(self.second_moment), len(self.control)}
        if len(sizes) != 1:
            raise ValueError("the server state holds one value of each kind per parameter")
        for field in fields(self):
            values = getattr(self, field.name)
            if type(values) is not tuple or not all(
                type(v) is float and math.isfinite(v) for v in values
            ):
                raise ValueError(f"ServerState.{field.name} must be a tuple of finite floats")

    @classmethod
    def initial(cls, strategy: Strategy, size: int) -> ServerState:
        """The state before the first round: all zeros, but v = tau^2 for the adaptive ones."""
        v = strategy.setting("tau") ** 2 if strategy.name in _ADAPTIVE else 0.0
        return cls((0.0,) * size, (v,) * size, (0.0,) * size)

    def __len__(self) -> int:
        return len(self.momentum)


def server_step(
    strategy: Strategy,
    state: ServerState,
    mean: Sequence[float],
    control: Sequence[float] | None = None,
    share: float = 1.0,
) -> tuple[list[float], ServerState]:
    """The step to add to the model for a round whose mean update is `mean`,
    and the strategy's state after it.

    `control` is the mean of the survivors' control variate changes (SCAFFOLD
    only) and `share` the fraction of the round's participants that survived
    (SCAFFOLD only). Raises `ValueError` for vectors of another length than
    the state, a missing or unexpected `control`, a share outside (0, 1]
    with it, or a step that is not finite.
    """
    size = len(state)
    if len(mean) != size:
        raise ValueError(f"the mean has {len(mean)} values, the server state {size}")
    if (control is not None) != strategy.controls:
        raise ValueError("SCAFFOLD rounds, and only they, carry control variates")
    eta = strategy.setting("server_lr")
    m, v, c = state.momentum, state.second_moment, state.control
    name = strategy.name
    if name in ("fedavg", "scaffold"):
        step = [eta * d for d in mean]
    elif name == "fedavgm":
        mu = strategy.setting("server_momentum")
        m = tuple([mu * mj + d for mj, d in zip(m, mean, strict=True)])
        step = [eta * mj for mj in m]
    else:
        b1, tau = strategy.setting("beta1"), strategy.setting("tau")
        m = tuple([b1 * mj + (1.0 - b1) * d for mj, d in zip(m, mean, strict=True)])
        squares = [d * d for d in mean]
        if name == "fedadagrad":
            v = tuple([vj + s for vj, s in zip(v, squares, strict=True)])
        elif name == "fedadam":
            b2 = strategy.setting("beta2")
            v = tuple([b2 * vj + (1.0 - b2) * s for vj, s in zip(v, squares, strict=True)])
        else:
            b2 = strategy.setting("beta2")
            v = tuple(
                [vj - (1.0 - b2) * s * _sign(vj - s) for vj, s in zip(v, squares, strict=True)]
            )
        step = [eta * mj / (math.sqrt(vj) + tau) for mj, vj in zip(m, v, strict=True)]
    if control is not None:
        if not 0.0 < share <= 1.0:
            raise ValueError("the share of survivors must be in (0, 1]")
        if len(control) != size:
            raise ValueError(f"the control mean has {len(control)} values, the state {size}")
        c = tuple([cj + share * dc for cj, dc in zip(c, control, strict=True)])
    if not all(map(math.isfinite, step)):
        raise ValueError(f"{name} made a step that is not finite")
    return step, ServerState(m, v, c)


def control_change(
    start: Sequence[float],
    end: Sequence[float],
    steps: int,
    lr: float,
    control: Sequence[float],
) -> list[float]:
    """SCAFFOLD option II at a peer: c_i+ - c_i = (x - y_i) / (K lr) - c, for
    local training from `start` (x) to `end` (y_i) in `steps` (K) steps at
    learning rate `lr`, with the hub's control variate `control` (c)."""
    if steps < 1 or not lr > 0.0:
        raise ValueError("a control variate needs at least one step at a positive rate")
    scale = 1.0 / (steps * lr)
    return [(x - y) * scale - c for x, y, c in zip(start, end, control, strict=True)]


def _sign(x: float) -> float:
    return 1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0
