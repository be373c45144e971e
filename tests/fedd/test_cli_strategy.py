"""The strategy options: from `fedd demo` through the hub's command line to its config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

import fedd.cli.demo
import fedd.daemon.hub.loop
from fedd.cli.main import main
from fedd.cli.strategy import strategy_flags
from fedd.daemon.hub.config import HubConfig
from fedd.learner.strategy import STRATEGIES, Strategy


class _Hub:
    """Stands in for the hub: keeps the config `fedd start hub` built."""

    configs: ClassVar[list[HubConfig]] = []

    def __init__(self, config: HubConfig) -> None:
        self.configs.append(config)

    def run(self) -> int:
        return 0


def hub_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *flags: str) -> HubConfig:
    monkeypatch.setattr(fedd.daemon.hub.loop, "Hub", _Hub)  # imported when the hub starts
    _Hub.configs.clear()
    args = ["start", "hub", "--bind", "tcp://127.0.0.1:1", "--state-dir", str(tmp_path), *flags]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (config,) = _Hub.configs
    return config


@pytest.mark.parametrize(
    ("args", "strategy", "mu"),
    [
        ([], Strategy(), 0.0),
        (["--strategy", "fedadam", "--tau", "0.01", "--proximal-mu", "0.01"],
         Strategy("fedadam", tau=0.01), 0.01),
        (["--strategy", "fedavgm", "--server-lr", "1", "--server-momentum", "0.9"],
         Strategy("fedavgm", server_lr=1.0, server_momentum=0.9), 0.0),
        (["--strategy", "scaffold"], Strategy("scaffold"), 0.0),
    ],
)  # fmt: skip
def test_the_demo_hands_the_hub_the_strategy_it_was_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], strategy: Strategy, mu: float
) -> None:
    given: dict[str, Any] = {}
    monkeypatch.setattr(fedd.cli.demo, "run_demo", lambda base, **kwargs: given.update(kwargs))
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    assert (given["strategy"], given["proximal_mu"]) == (strategy, mu)
    # The demo starts its hub with these flags: they give the hub the same settings.
    config = hub_config(monkeypatch, tmp_path / "hub", *strategy_flags(strategy, mu))
    assert (config.strategy, config.proximal_mu) == (strategy, mu)


@pytest.mark.parametrize("name", STRATEGIES)
def test_each_strategy_with_its_defaults_reaches_the_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    config = hub_config(monkeypatch, tmp_path, "--strategy", name)
    assert config.strategy == Strategy(name)
    assert hub_config(monkeypatch, tmp_path, *strategy_flags(Strategy(name), 0.0)) == config
