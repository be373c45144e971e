"""Strategies in a running federation: resumed bit for bit, SCAFFOLD through secure sums.

The real hub and real peers run in this process (tests/daemon/hostile.py).
What the hub wrote is checked against an independent replay: updates.csv's
means, read with the csv module, through `server_step` from round 1.
"""

from __future__ import annotations

import csv
import math
import struct
from pathlib import Path

import pytest

from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.daemon.errors import ConfigError
from fedd.daemon.hub.config import HubConfig
from fedd.daemon.hub.loop import Hub
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.rounds import RoundEnd
from fedd.daemon.transport.messages.uploads import PlainContribution
from fedd.learner.strategy import ServerState, Strategy, server_step
from tests.daemon.hostile import InProcessFederation

ADAM = Strategy("fedadam", server_lr=0.3, tau=0.01)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def bits(values: list[float] | tuple[float, ...]) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def replay(state_dir: Path, strategy: Strategy) -> tuple[list[float], ServerState]:
    """The model and the strategy's state: updates.csv's means through the strategy
    from round 1, each round's share from round_log.csv; each delta checked."""
    log = {int(r["round"]): r for r in rows(state_dir / "round_log.csv")}
    updates = rows(state_dir / "updates.csv")
    size = len(rows(state_dir / "global_model.csv"))
    model, state = [0.0] * size, ServerState.initial(strategy, size)
    for start in range(0, len(updates), size):
        mine = updates[start : start + size]
        number = int(mine[0]["round"])
        share = int(log[number]["survivors"]) / int(log[number]["participants"])
        control = [float(r["control"]) for r in mine] if strategy.controls else None
        step, state = server_step(strategy, state, [float(r["mean"]) for r in mine], control, share)
        assert bits(step) == bits([float(r["delta"]) for r in mine]), f"round {number}"
        model = [m + d for m, d in zip(model, step, strict=True)]
    return model, state


def on_disk(state_dir: Path) -> tuple[list[float], ServerState]:
    model = [float(r["value"]) for r in rows(state_dir / "global_model.csv")]
    kept = rows(state_dir / "optimizer.csv")
    state = ServerState(
        *(
            tuple(float(r[column]) for r in kept)
            for column in ("momentum", "second_moment", "control")
        )
    )
    return model, state


def test_a_hub_restarted_mid_run_resumes_the_optimizer_bit_for_bit(tmp_path: Path) -> None:
    options = {"strategy": ADAM}
    hub_dir = tmp_path / "hub"
    with InProcessFederation(tmp_path, secagg="off", rounds=5, hub_options=options) as fed:
        fed.run_until(lambda: fed.hub.store.training_rounds >= 2)
        # The hub dies here, its state as the last commit left it.
    before = replay(hub_dir, ADAM)
    assert on_disk(hub_dir) == before
    with InProcessFederation(tmp_path, secagg="off", rounds=5, hub_options=options) as fed:
        store = fed.hub.store
        # After the restart: the committed aggregates through the optimizer, from round 1.
        assert (bits(store.model or []), store.optimizer) == (bits(before[0]), before[1])
        fed.run_rounds()
        trained = [r for r in fed.round_log() if r.kind == "training"]
        assert [r.status for r in trained] == ["ok"] * 5
    model, state = replay(hub_dir, ADAM)
    assert (bits(on_disk(hub_dir)[0]), on_disk(hub_dir)[1]) == (bits(model), state)
    assert state != ServerState.initial(ADAM, len(model))


def test_a_restart_with_another_strategy_is_refused(tmp_path: Path) -> None:
    with InProcessFederation(
        tmp_path, secagg="off", rounds=1, hub_options={"strategy": ADAM}
    ) as fed:
        fed.run_until(lambda: fed.hub.store.training_rounds >= 1)
    for changed in (
        {"strategy": Strategy("fedadam", server_lr=0.1, tau=0.01)},
        {"strategy": ADAM, "proximal_mu": 0.1},
    ):
        config = HubConfig(bind="inproc://unused", state_dir=tmp_path / "hub", **changed)  # type: ignore[arg-type]
        with pytest.raises(
            ConfigError,
            match=r"trains with other settings: start the hub with --strategy fedadam "
            r"--server-lr 0.3 --beta1 0.9 --beta2 0.99 --tau 0.01 --proximal-mu 0.0 ",
        ):
            Hub(config)


def test_scaffold_control_variates_travel_masked_and_a_dropped_peer_keeps_its_own(
    tmp_path: Path,
) -> None:
    """Four peers, secure aggregation; p4's masked input of the training round is
    lost, so the sum holds p1..p3 only (p4's masks are removed)."""
    ends: dict[str, RoundEnd] = {}

    def lose_p4s_input(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        msg = wire.decode(frame)
        assert type(msg) is not PlainContribution  # every vector is masked
        mine = direction == "to_hub" and routing == b"r-p4"
        if mine and type(msg) is MaskedInput and msg.round == 2:  # round 1: the statistics
            return []
        if direction == "to_peer" and type(msg) is RoundEnd and msg.round == 2:
            ends[routing.decode()] = msg
        return [frame]

    options = {"strategy": Strategy("scaffold"), "secagg_threshold": 3}
    with InProcessFederation(
        tmp_path, peers=4, rounds=1, hook=lose_p4s_input, hub_options=options
    ) as fed:
        rows_of = {name: fed.agents[fed.routing(name)].data for name in ("p1", "p2", "p3", "p4")}
        log = fed.run_rounds()
        hub = fed.hub.store
    training = next(r for r in log if r.kind == "training")
    assert (training.status, training.participants, training.survivors) == ("ok", 4, 3)
    assert {peer: end.included for peer, end in ends.items()} == {
        "r-p1": True,
        "r-p2": True,
        "r-p3": True,
        "r-p4": False,
    }
    # The survivors adopted their new control variates; c_i was 0, so each is its change.
    changes = {}
    for name in ("p1", "p2", "p3"):
        adopted = rows(tmp_path / name / "control.csv")
        assert {(r["round"], r["run"]) for r in adopted} == {("2", hub.run_id)}
        changes[name] = [float(r["value"]) for r in adopted]
    assert not (tmp_path / "p4" / "control.csv").exists()  # dropped: unchanged (zeros)
    # The hub learned their weighted mean, through the masked sum, and nothing of p4's.
    weights = {name: data.train.n_rows for name, data in rows_of.items() if data is not None}
    total = sum(weights[name] for name in changes)
    expected = [
        sum(weights[name] * changes[name][i] for name in changes) / total
        for i in range(len(changes["p1"]))
    ]
    updates = [r for r in rows(tmp_path / "hub" / "updates.csv") if r["round"] == "2"]
    decoded = [float(r["control"]) for r in updates]
    assert decoded == pytest.approx(expected, abs=1e-6)
    # c moves by the survivors' share of it: 3 of the 4 participants.
    assert hub.optimizer is not None
    assert bits(hub.optimizer.control) == bits([0.75 * c for c in decoded])
    assert all(math.isfinite(v) and v != 0.0 for v in decoded)
    model, state = replay(tmp_path / "hub", Strategy("scaffold"))
    assert (bits(model), state) == (bits(hub.model or []), hub.optimizer)
