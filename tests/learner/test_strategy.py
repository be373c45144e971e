"""The server optimizers and SCAFFOLD's rules, step by step against numbers worked by hand.

Two rounds with means D1 = (0.5, -2.0) and D2 = (0.01, 1.0): the second
round's first coordinate is small enough for FedYogi's second moment to
shrink (v > D^2), the other grows it. Each expected value is written as the
paper's rule applied by hand, and the first rounds also as decimals.
"""

from __future__ import annotations

import math

import pytest

from fedd.learner.strategy import (
    STRATEGIES,
    ServerState,
    Strategy,
    control_change,
    defaults,
    server_step,
)

D1 = (0.5, -2.0)
D2 = (0.01, 1.0)
TAU = 1e-3


def two_rounds(strategy: Strategy, **kw: object) -> tuple[list[float], list[float], ServerState]:
    state = ServerState.initial(strategy, 2)
    first, state = server_step(strategy, state, D1, **kw)  # type: ignore[arg-type]
    second, state = server_step(strategy, state, D2, **kw)  # type: ignore[arg-type]
    return first, second, state


def test_fedavg_adds_the_mean_times_the_server_lr() -> None:
    first, second, state = two_rounds(Strategy("fedavg"))
    assert (first, second) == ([0.5, -2.0], [0.01, 1.0])  # server_lr 1: today's FedAvg, exactly
    assert state == ServerState.initial(Strategy(), 2)  # nothing kept
    first, second, _ = two_rounds(Strategy("fedavg", server_lr=0.5))
    assert (first, second) == ([0.25, -1.0], [0.005, 0.5])


def test_fedavgm_keeps_a_momentum_of_the_means() -> None:
    first, second, state = two_rounds(Strategy("fedavgm", server_lr=0.5, server_momentum=0.9))
    # m1 = D1; m2 = 0.9 m1 + D2 = (0.46, -0.8); step = 0.5 m
    assert first == [0.25, -1.0]
    assert second == pytest.approx([0.23, -0.4], abs=1e-15)
    assert state.momentum == pytest.approx((0.46, -0.8), abs=1e-15)
    assert state.second_moment == (0.0, 0.0)


def adaptive_rounds(name: str) -> tuple[list[float], list[float], ServerState]:
    return two_rounds(Strategy(name, server_lr=0.1, beta1=0.9, tau=TAU))


@pytest.mark.parametrize("name", ["fedadam", "fedyogi", "fedadagrad"])
def test_the_first_moment_is_an_exponential_average(name: str) -> None:
    _, _, state = adaptive_rounds(name)
    # m1 = 0.1 D1 = (0.05, -0.2); m2 = 0.9 m1 + 0.1 D2 = (0.046, -0.08)
    assert state.momentum == pytest.approx((0.046, -0.08), abs=1e-15)


def test_fedadam() -> None:
    first, second, state = adaptive_rounds("fedadam")
    # v starts at tau^2 = 1e-6.  v1 = 0.99e-6 + 0.01 D1^2 = (0.00250099, 0.04000099)
    v1 = (0.99e-6 + 0.0025, 0.99e-6 + 0.04)
    assert first == pytest.approx(
        [0.1 * 0.05 / (math.sqrt(v1[0]) + TAU), 0.1 * -0.2 / (math.sqrt(v1[1]) + TAU)], rel=1e-14
    )
    assert first == pytest.approx([0.0980202, -0.0995013], abs=1e-7)  # ~ 0.1 sign(D1) at first
    v2 = (0.99 * v1[0] + 0.01 * 0.0001, 0.99 * v1[1] + 0.01 * 1.0)
    assert state.second_moment == pytest.approx(v2, rel=1e-14)
    assert second == pytest.approx(
        [0.1 * 0.046 / (math.sqrt(v2[0]) + TAU), 0.1 * -0.08 / (math.sqrt(v2[1]) + TAU)],
        rel=1e-14,
    )


def test_fedyogi_moves_the_second_moment_towards_the_square_additively() -> None:
    first, second, state = adaptive_rounds("fedyogi")
    # v1 = 1e-6 + 0.01 D1^2 (v0 < D1^2, so it grows) = (0.002501, 0.040001)
    assert first == pytest.approx([0.0980200, -0.0995012], abs=1e-7)
    # v1[0] = 0.002501 > D2[0]^2 = 0.0001: it shrinks by 0.01 * 0.0001 to exactly 0.0025;
    # v1[1] = 0.040001 < 1.0: it grows by 0.01 to 0.050001.
    assert state.second_moment == pytest.approx((0.0025, 0.050001), rel=1e-14)
    assert second == pytest.approx(
        [0.1 * 0.046 / (0.05 + TAU), 0.1 * -0.08 / (math.sqrt(0.050001) + TAU)], rel=1e-13
    )
    assert second[0] == pytest.approx(0.0046 / 0.051, rel=1e-13)


def test_fedadagrad_sums_the_squares() -> None:
    first, second, state = adaptive_rounds("fedadagrad")
    # v1 = 1e-6 + D1^2 = (0.250001, 4.000001); v2 = v1 + D2^2 = (0.250101, 5.000001)
    assert first == pytest.approx(
        [0.1 * 0.05 / (math.sqrt(0.250001) + TAU), 0.1 * -0.2 / (math.sqrt(4.000001) + TAU)],
        rel=1e-14,
    )
    assert state.second_moment == pytest.approx((0.250101, 5.000001), rel=1e-14)
    assert second == pytest.approx(
        [0.1 * 0.046 / (math.sqrt(0.250101) + TAU), 0.1 * -0.08 / (math.sqrt(5.000001) + TAU)],
        rel=1e-14,
    )


def test_scaffold_moves_the_control_variate_by_the_survivors_share() -> None:
    strategy = Strategy("scaffold", server_lr=1.0)
    state = ServerState.initial(strategy, 2)
    step, state = server_step(strategy, state, D1, (0.2, -0.4), share=1.0)
    assert step == [0.5, -2.0]
    assert state.control == (0.2, -0.4)
    # 3 of 4 participants survived: c moves by 3/4 of their mean change.
    step, state = server_step(strategy, state, D2, (0.4, 0.8), share=0.75)
    assert step == [0.01, 1.0]
    assert state.control == pytest.approx((0.5, 0.2), abs=1e-15)


def test_a_peers_control_variate_change_is_option_two_of_the_paper() -> None:
    # x = (1, 2) -> y = (0.5, 2.5) in K = 10 steps at lr 0.1: (x - y) / (K lr) = (0.5, -0.5);
    # minus c = (0.25, 0.25): the change is (0.25, -0.75).
    change = control_change((1.0, 2.0), (0.5, 2.5), 10, 0.1, (0.25, 0.25))
    assert change == pytest.approx([0.25, -0.75], abs=1e-15)
    with pytest.raises(ValueError, match="at least one step"):
        control_change((1.0,), (1.0,), 0, 0.1, (0.0,))


def test_defaults_are_those_of_the_cli() -> None:
    described = {name: Strategy(name).describe() for name in STRATEGIES}
    assert described == {
        "fedavg": "fedavg (server_lr 1)",
        "fedavgm": "fedavgm (server_lr 0.5, server_momentum 0.5)",
        "fedadam": "fedadam (server_lr 0.3, beta1 0.9, beta2 0.99, tau 0.1)",
        "fedyogi": "fedyogi (server_lr 0.3, beta1 0.9, beta2 0.99, tau 0.1)",
        "fedadagrad": "fedadagrad (server_lr 1, beta1 0.9, tau 0.1)",
        "scaffold": "scaffold (server_lr 0.5)",
    }
    assert set(defaults("fedadagrad")) == {"server_lr", "beta1", "tau"}
    with pytest.raises(ValueError, match="strategy must be one of"):
        defaults("sgd")


@pytest.mark.parametrize("name", STRATEGIES)
def test_settings_round_trip_through_run_csv(name: str) -> None:
    strategy = Strategy(name, server_lr=0.25)
    assert Strategy.from_settings(strategy.settings) == strategy
    assert Strategy.from_settings({"mode": "full"}) == Strategy()  # a run that did not say


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "sgd"}, "strategy must be one of"),
        ({"name": "fedavg", "beta1": 0.9}, "beta1 is a setting of fedadam, fedyogi and fedadagrad"),
        ({"name": "fedadagrad", "beta2": 0.99}, "beta2 is a setting of fedadam and fedyogi"),
        ({"name": "fedadam", "server_momentum": 0.5}, "server_momentum is a setting of fedavgm"),
        ({"name": "fedavg", "server_lr": 0.0}, "server_lr must be > 0"),
        ({"name": "fedavgm", "server_momentum": 1.0}, r"server_momentum must be in \[0, 1\)"),
        ({"name": "fedyogi", "tau": -1.0}, "tau must be > 0"),
        ({"name": "fedadam", "beta2": math.nan}, "beta2 must be a finite number"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Strategy(**kwargs)  # type: ignore[arg-type]


def test_bad_steps_are_refused() -> None:
    state = ServerState.initial(Strategy(), 2)
    with pytest.raises(ValueError, match="the mean has 3 values"):
        server_step(Strategy(), state, (1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="SCAFFOLD rounds, and only they"):
        server_step(Strategy(), state, D1, (0.0, 0.0))
    with pytest.raises(ValueError, match="SCAFFOLD rounds, and only they"):
        server_step(Strategy("scaffold"), state, D1)
    with pytest.raises(ValueError, match=r"share of survivors must be in \(0, 1\]"):
        server_step(Strategy("scaffold"), state, D1, (0.0, 0.0), share=0.0)
    with pytest.raises(ValueError, match="not finite"):
        server_step(Strategy("fedavg", server_lr=1e300), state, (1e300, 0.0))
    with pytest.raises(ValueError, match="one value of each kind per parameter"):
        ServerState((0.0,), (0.0, 0.0), (0.0,))
    with pytest.raises(ValueError, match="finite floats"):
        ServerState((math.inf,), (0.0,), (0.0,))
