"""Strategies with real daemons on 127.0.0.1: a server optimizer across a hub killed
mid-round, SCAFFOLD's control variates across dropouts, an aborted round and restarts.

What the daemons wrote is checked against an independent replay of updates.csv
(tests/daemon/replay.py) and against the peers' own control.csv files.
"""

from __future__ import annotations

import signal
import time

import pytest

from fedd.learner.dataset import read_dataset
from fedd.learner.holdout import split_holdout
from fedd.learner.strategy import Strategy
from tests.daemon.replay import bits, on_disk, replay, rows
from tests.e2e.conftest import Cluster, Shards, check_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FAULT_EXIT = 3  # a peer's exit code when `--fault exit-at:STAGE` strikes


def committed_round(cluster: Cluster) -> int:
    model = cluster.rows("global_model.csv")
    return int(model[0]["round"]) if model else 0


def running(cluster: Cluster) -> int | None:
    """The round the hub is running, or None when it waits for peers or is done."""
    status = cluster.status()
    return int(str(status["round"])) if str(status["stage"]).startswith("round ") else None


def waiting(cluster: Cluster) -> bool:
    stage = str(cluster.status()["stage"])
    return not stage.startswith("round ") and stage != "done"


def alive(cluster: Cluster) -> set[str]:
    peers = cluster.status("peers")["peers"]
    assert isinstance(peers, list)
    return {p["peer"] for p in peers if p["status"] == "alive"}


def test_the_hub_killed_mid_round_resumes_fedadam_bit_for_bit(
    cluster: Cluster, shards: Shards
) -> None:
    """SIGKILL while a round waits for a stopped peer, after three training rounds;
    the restarted hub finishes the run. Every delta, the model and optimizer.csv,
    before the restart and at the end, are the replay of the recorded means
    through FedAdam from round 1, bit for bit."""
    strategy = Strategy("fedadam", server_lr=0.1, tau=0.01)
    rounds = 12
    args = (
        "--min-peers", "3", "--rounds", str(rounds), "--secagg", "full",
        "--strategy", "fedadam", "--server-lr", "0.1", "--tau", "0.01",
        "--liveness", "60", "--exit-when-done",
    )  # fmt: skip
    hub = cluster.hub(*args)
    peers = [cluster.peer(f"p{k}", shards.peers[k - 1]) for k in (1, 2, 3)]
    cluster.wait_for(lambda: committed_round(cluster) >= 4, 90, "three training rounds")
    # A stopped p3 holds the next round open (liveness 60 s, stage timeouts 10 and 20 s).
    peers[2].popen.send_signal(signal.SIGSTOP)

    def stuck() -> bool:  # the round after the last committed one, twice half a second apart
        first = running(cluster)
        time.sleep(0.5)
        return first == running(cluster) == committed_round(cluster) + 1

    cluster.wait_for(stuck, 30, "a round held open")
    hub.popen.send_signal(signal.SIGKILL)
    hub.wait(10)
    committed, model, state = on_disk(cluster.hub_state)
    assert str(committed + 1) not in {r["round"] for r in cluster.rows("round_log.csv")}
    assert 1 + 3 <= committed < 1 + rounds  # killed with training rounds still to run
    replayed = replay(cluster.hub_state, strategy, through=committed)
    assert (bits(model), state) == (bits(replayed[0]), replayed[1])
    before = cluster.rows("updates.csv")

    peers[2].popen.send_signal(signal.SIGCONT)
    hub = cluster.hub(*args, name="hub-again")
    assert hub.wait(180) == 0, cluster.logs()
    for p in peers:
        assert p.wait(30) == 0, cluster.logs()
    log = cluster.rows("round_log.csv")
    check_run(log, training=rounds)
    assert all(r["status"] == "ok" for r in log), log
    updates = cluster.rows("updates.csv")
    assert updates[: len(before)] == before  # the committed rounds' rows, untouched
    trained = [r["round"] for r in log if r["kind"] == "training"]
    assert [r["round"] for r in updates[:: len(model)]] == trained  # each once, in order
    final_round, final_model, final_state = on_disk(cluster.hub_state)
    assert final_round == len(log)
    replayed = replay(cluster.hub_state, strategy)
    assert (bits(final_model), final_state) == (bits(replayed[0]), replayed[1])
    assert final_state is not None and any(v != 0.0 for v in final_state.momentum)


def test_scaffold_control_variates_move_only_with_the_rounds_that_commit_them(
    cluster: Cluster, shards: Shards
) -> None:
    """Four peers, secure sums of at least t = 3. A peer that dies at its masked
    input leaves the round to the others and keeps its control variate; one that
    dies after it, at the unmask stage, is in the round's sum, and adopts the
    round's control variate when, restarted, it hears how the round ended; a
    round that loses two aborts and every peer keeps its own; peers restarted on
    their state directories go on from the control variates they adopted."""
    strategy = Strategy("scaffold")
    rounds = 40
    hub = cluster.hub(
        "--min-peers", "4", "--secagg-threshold", "3", "--rounds", str(rounds),
        "--secagg", "full", "--strategy", "scaffold", "--exit-when-done",
    )  # fmt: skip
    names = ("p1", "p2", "p3", "p4")
    data = dict(zip(names, shards.peers, strict=False))
    weight = {n: split_holdout(read_dataset(data[n]), 0.2, 42).train.n_rows for n in names}
    for name in names:
        cluster.peer(name, data[name])

    def control(name: str) -> list[float]:
        return [float(r["value"]) for r in rows(cluster.root / name / "control.csv")]

    def settled() -> dict[str, list[float]]:
        """Each peer's control variate as it stands once the peer hears how its last
        round ended: the one it holds pending if survivors.csv has it in that
        round's sum (a peer killed mid-round adopts it when it registers again),
        else the one it adopted (none: [])."""
        held = {(r["round"], r["peer"]) for r in cluster.rows("survivors.csv")}
        out = {}
        for n in names:
            pending = cluster.root / n / "control_pending.csv"
            waiting_ = rows(pending) if pending.exists() else []
            adopted = cluster.root / n / "control.csv"
            if waiting_ and (waiting_[0]["round"], n) in held:
                out[n] = [float(r["value"]) for r in waiting_]
            else:
                out[n] = control(n) if adopted.exists() else []
        return out

    def kill(*killed: str) -> None:
        for child in cluster.children:
            if child.name in killed and child.alive():
                child.popen.send_signal(signal.SIGKILL)
                child.wait(10)
        cluster.wait_for(lambda: alive(cluster).isdisjoint(killed), 30, f"{killed} gone")
        cluster.wait_for(lambda: waiting(cluster), 60, "the hub to wait for peers")

    def rounds_since(last: int) -> list[dict[str, str]]:
        return [r for r in cluster.rows("round_log.csv") if int(r["round"]) > last]

    def means(numbers: list[str]) -> list[float]:
        """The sum over rounds `numbers` of the hub's decoded means of the changes."""
        by_round: dict[str, list[float]] = {}
        for r in cluster.rows("updates.csv"):
            by_round.setdefault(r["round"], []).append(float(r["control"]))
        return [sum(column) for column in zip(*(by_round[n] for n in numbers), strict=True)]

    def check_adopted(
        before: dict[str, list[float]], committed: list[str], who: tuple[str, ...]
    ) -> None:
        """Peers `who` adopted the changes of rounds `committed`, whose sums held
        exactly theirs: their weighted mean moved as the hub's decoded means add up."""
        size = len(control(who[0]))
        old = {n: before[n] or [0.0] * size for n in who}
        new = {n: control(n) for n in who}
        total = sum(weight[n] for n in who)
        moved = [sum(weight[n] * (new[n][i] - old[n][i]) for n in who) / total for i in range(size)]
        assert moved == pytest.approx(means(committed), abs=1e-6 * len(committed))

    # Phase 1: everyone trains; then p3 and p4 die and the hub waits for four peers.
    cluster.wait_for(lambda: committed_round(cluster) >= 3, 90, "two training rounds")
    kill("p3", "p4")  # maybe mid-round: then each adopts that round's when it returns
    start = settled()
    assert all(start[n] for n in names), "every peer adopted a control variate"
    last = committed_round(cluster)

    # Phase 2: p4 comes back and dies at its masked input; the others commit without it.
    cluster.peer("p3", data["p3"])
    doomed = cluster.peer("p4", data["p4"], "--fault", "exit-at:masked-input")
    assert doomed.wait(90) == FAULT_EXIT, cluster.logs()
    cluster.wait_for(lambda: "p4" not in alive(cluster), 30, "p4 gone")
    cluster.wait_for(lambda: waiting(cluster), 60, "the hub to wait for peers")
    trained = rounds_since(last)
    assert trained and all(
        (r["kind"], r["status"], r["participants"], r["survivors"]) == ("training", "ok", "4", "3")
        for r in trained
    ), trained
    after = settled()
    assert after["p4"] == start["p4"]  # dropped: unchanged, bit for bit
    numbers = [r["round"] for r in trained]
    for name in ("p1", "p2", "p3"):
        assert {r["round"] for r in rows(cluster.root / name / "control.csv")} == {numbers[-1]}
    check_adopted(start, numbers, ("p1", "p2", "p3"))
    last = committed_round(cluster)

    # Phase 3: p4 comes back and dies at the unmask stage, its masked input sent: the
    # round commits with p4's vector in its sum, and p4 never heard its RoundEnd.
    doomed = cluster.peer("p4", data["p4"], "--fault", "exit-at:unmask")
    assert doomed.wait(90) == FAULT_EXIT, cluster.logs()
    cluster.wait_for(lambda: "p4" not in alive(cluster), 30, "p4 gone")
    cluster.wait_for(lambda: waiting(cluster), 60, "the hub to wait for peers")
    [held] = rounds_since(last)
    assert (held["kind"], held["status"], held["survivors"]) == ("training", "ok", "4"), held
    assert control("p4") == after["p4"]  # not adopted: it never heard the end
    pending = rows(cluster.root / "p4" / "control_pending.csv")
    assert {r["round"] for r in pending} == {held["round"]}
    last = committed_round(cluster)

    # Phase 4: p3 and p4 both die at their masked inputs: 2 < t, the round aborts.
    # p4 first registers again and hears how its round ended: it adopts that
    # round's control variate, as the others did, and the four move as the hub's mean.
    kill("p3")
    for name in ("p3", "p4"):
        cluster.peer(name, data[name], "--fault", "exit-at:masked-input")
    for child in cluster.children[-2:]:
        assert child.wait(90) == FAULT_EXIT, cluster.logs()
    cluster.wait_for(lambda: alive(cluster).isdisjoint({"p3", "p4"}), 30, "p3 and p4 gone")
    cluster.wait_for(lambda: waiting(cluster), 60, "the hub to wait for peers")
    aborted = rounds_since(last)
    assert aborted and all((r["kind"], r["status"]) == ("training", "aborted") for r in aborted), (
        aborted
    )
    ended = settled()
    assert {r["round"] for r in rows(cluster.root / "p4" / "control.csv")} == {held["round"]}
    check_adopted(after, [held["round"]], names)  # and nothing since: the rounds aborted
    # What p4 holds now is of the round it died in, before its vector left.
    pending = rows(cluster.root / "p4" / "control_pending.csv")
    assert len(pending) == len(control("p1"))
    assert {r["round"] for r in pending} <= {r["round"] for r in aborted}
    assert {r["round"] for r in cluster.rows("updates.csv")}.isdisjoint(r["round"] for r in aborted)
    last = committed_round(cluster)

    # Phase 5: both come back for good; the run ends with all four in every round.
    for name in ("p3", "p4"):
        cluster.peer(name, data[name])
    assert hub.wait(180) == 0, cluster.logs()
    log = cluster.rows("round_log.csv")
    check_run(log, training=rounds)
    trained = [r for r in rounds_since(last) if r["kind"] == "training"]
    assert trained and all(
        (r["status"], r["participants"], r["survivors"]) == ("ok", "4", "4") for r in trained
    ), trained
    # p3 and p4 went on from the control variates in their state directories: had
    # either started again from zeros, the weighted mean would not add up.
    check_adopted(ended, [r["round"] for r in trained], names)
    for name in names:  # every round's end was heard
        assert rows(cluster.root / name / "control_pending.csv") == [], name
    _, model, state = on_disk(cluster.hub_state)
    replayed = replay(cluster.hub_state, strategy)
    assert (bits(model), state) == (bits(replayed[0]), replayed[1])
