"""Strategies in a running federation: resumed bit for bit, SCAFFOLD through secure sums.

The real hub and real peers run in this process (tests/daemon/hostile.py).
What the hub wrote is checked against an independent replay: updates.csv's
means, read with the csv module, through `server_step` from round 1
(tests/daemon/replay.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.daemon.errors import ConfigError
from fedd.daemon.hub.config import HubConfig
from fedd.daemon.hub.loop import Hub
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.membership import Hello
from fedd.daemon.transport.messages.rounds import RoundEnd
from fedd.daemon.transport.messages.uploads import PlainContribution
from fedd.learner.strategy import ServerState, Strategy
from tests.daemon.hostile import InProcessFederation
from tests.daemon.replay import bits, on_disk, replay, rows

ADAM = Strategy("fedadam", server_lr=0.3, tau=0.01)


def test_a_hub_restarted_mid_run_resumes_the_optimizer_bit_for_bit(tmp_path: Path) -> None:
    options = {"strategy": ADAM}
    hub_dir = tmp_path / "hub"
    with InProcessFederation(tmp_path, secagg="off", rounds=5, hub_options=options) as fed:
        fed.run_until(lambda: fed.hub.store.training_rounds >= 2)
        # The hub dies here, its state as the last commit left it.
    before = replay(hub_dir, ADAM)
    assert on_disk(hub_dir)[1:] == before
    with InProcessFederation(tmp_path, secagg="off", rounds=5, hub_options=options) as fed:
        store = fed.hub.store
        # After the restart: the committed aggregates through the optimizer, from round 1.
        assert (bits(store.model or []), store.optimizer) == (bits(before[0]), before[1])
        fed.run_rounds()
        trained = [r for r in fed.round_log() if r.kind == "training"]
        assert [r.status for r in trained] == ["ok"] * 5
    model, state = replay(hub_dir, ADAM)
    _, kept, kept_state = on_disk(hub_dir)
    assert (bits(kept), kept_state) == (bits(model), state)
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


def test_a_peer_adopts_its_control_variate_change_as_clipped_for_the_sum(
    tmp_path: Path,
) -> None:
    """With a clip below the changes, each peer's change travels clipped: the peer
    adopts the clipped one, so the hub's mean is the mean of what the peers hold."""
    clip = 0.01
    options = {"strategy": Strategy("scaffold"), "clip": clip}
    with InProcessFederation(tmp_path, secagg="off", rounds=1, hub_options=options) as fed:
        weights = {
            name: fed.agents[fed.routing(name)].data.train.n_rows  # type: ignore[union-attr]
            for name in ("p1", "p2", "p3")
        }
        fed.run_rounds()
    adopted = {
        name: [float(r["value"]) for r in rows(tmp_path / name / "control.csv")] for name in weights
    }
    assert all(abs(v) <= clip for values in adopted.values() for v in values)
    assert any(abs(v) == clip for values in adopted.values() for v in values)  # some were clipped
    total = sum(weights.values())
    expected = [
        sum(weights[name] * adopted[name][i] for name in weights) / total
        for i in range(len(adopted["p1"]))
    ]
    decoded = [float(r["control"]) for r in rows(tmp_path / "hub" / "updates.csv")]
    assert decoded == pytest.approx(expected, abs=1e-7)


def test_a_round_end_a_peer_missed_is_settled_when_it_registers_again(tmp_path: Path) -> None:
    """p3's RoundEnd of the training round is lost: its new control variate waits
    on disk until it registers again, when the hub answers its Hello with that
    round's RoundEnd, and it adopts it as the others did. The hub answers any
    such Hello from survivors.csv: included or not, and aborted for a round
    that never committed."""
    lost: list[RoundEnd] = []

    def lose_p3s_end(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        msg = wire.decode(frame)
        mine = direction == "to_peer" and routing == b"r-p3"
        if mine and type(msg) is RoundEnd and msg.round == 2 and not lost:  # 1: the statistics
            lost.append(msg)
            return []
        return [frame]

    options = {"strategy": Strategy("scaffold"), "secagg_threshold": 2}
    with InProcessFederation(
        tmp_path, peers=3, rounds=1, hook=lose_p3s_end, hub_options=options
    ) as fed:
        hub = fed.hub.store
        fed.run_until(lambda: hub.training_rounds == 1)  # then rounds that only score
        assert [end.included for end in lost] == [True]
        p3 = fed.agents[fed.routing("p3")]
        assert p3.state.unsettled == 2
        assert not (tmp_path / "p3" / "control.csv").exists()
        assert [hub.included(2, name) for name in ("p1", "p2", "p3", "p9")] == [
            True,
            True,
            True,
            False,
        ]

        p3.registered, p3._next_hello = False, 0.0  # as after the hub fell silent
        fed.run_until(lambda: p3.registered and p3.state.unsettled == 0)
        adopted = {n: rows(tmp_path / n / "control.csv") for n in ("p1", "p2", "p3")}
        assert {(r["run"], r["round"]) for n in adopted for r in adopted[n]} == {(hub.run_id, "2")}
        assert rows(tmp_path / "p3" / "control_pending.csv") == []

        def answer(name: str, unsettled: int) -> list[RoundEnd]:
            hello = Hello("", 0, PeerId(name), p3.features, unsettled=unsettled)
            replies = [wire.decode(f) for f in fed.to_hub(fed.routing(name), wire.encode(hello))]
            return [r for r in replies if type(r) is RoundEnd]

        later = hub.committed_round + 10  # beyond the rounds run and running
        assert [(e.round, e.status, e.included) for e in answer("p9", 2)] == [(2, "ok", False)]
        assert [(e.round, e.status, e.included) for e in answer("p9", later)] == [
            (later, "aborted", False)
        ]
        assert answer("p9", 0) == []
    survivors = rows(tmp_path / "hub" / "survivors.csv")
    assert {(r["round"], r["peer"]) for r in survivors} >= {("2", n) for n in ("p1", "p2", "p3")}
