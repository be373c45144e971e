"""The hub and peers as real processes on 127.0.0.1: rounds, dropouts, restarts, bad input."""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import msgpack
import pytest
import zmq

from fedd.crypto.encoding import FixedPoint
from fedd.daemon.hub.config import HubConfig, choose_encoding
from fedd.learner.dataset import read_dataset
from fedd.learner.model import make_training_set, train, zeros
from tests.e2e.conftest import Cluster, Shards

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SEED = 42


def replay(peers: list[Path], rounds: int, secure: bool) -> list[float]:
    """The model the federation should reach: FedAvg computed directly, round by round."""
    data = [read_dataset(p) for p in peers]
    # Peers cut their minibatches once per run (the run's seed), reorder them each round.
    layouts = [make_training_set(ds, batch_size=512, class_weight="none", seed=SEED) for ds in data]
    model = zeros(data[0].n_features)
    fp = FixedPoint.fit(max_peers=len(peers), max_weight=1 << 20, clip=16.0, mod_bits=64)
    for r in range(1, rounds + 1):
        total, weights = [0.0] * len(model), 0
        for ds, ts in zip(data, layouts, strict=True):
            params, _ = train(model, ts, epochs=1, lr=0.1, l2=0.0, seed=SEED + r)
            delta = [p - m for p, m in zip(params, model, strict=True)]
            if secure:
                delta = fp.clip_vector(delta)
            total = [t + ds.n_rows * d for t, d in zip(total, delta, strict=True)]
            weights += ds.n_rows
        model = [m + t / weights for m, t in zip(model, total, strict=True)]
    return model


def hub_encoding(n: int) -> FixedPoint:
    """The encoding the hub picks for n peers with its default settings."""
    return choose_encoding(n, HubConfig())


def committed_model(cluster: Cluster) -> tuple[int, list[float]]:
    rows = cluster.rows("global_model.csv")
    return int(rows[0]["round"]), [float(r["value"]) for r in rows]


def round_log(cluster: Cluster) -> list[dict[str, str]]:
    return cluster.rows("round_log.csv")


def start_peers(cluster: Cluster, shards: Shards, n: int, *extra: str) -> list:
    return [cluster.peer(f"p{k}", shards.peers[k - 1], *extra) for k in range(1, n + 1)]


@pytest.mark.parametrize(("mode", "n"), [("off", 3), ("full", 3), ("plus", 5)])
def test_rounds_reach_the_directly_computed_weighted_mean(cluster, shards, mode, n):
    hub = cluster.hub(
        "--min-peers",
        str(n),
        "--rounds",
        "2",
        "--secagg",
        mode,
        "--eval-test",
        str(shards.test),
        "--exit-when-done",
    )
    peers = start_peers(cluster, shards, n)
    assert hub.wait(120) == 0, cluster.logs()
    for p in peers:
        assert p.wait(30) == 0, cluster.logs()
    log = round_log(cluster)
    assert [(r["round"], r["status"], r["survivors"]) for r in log] == [
        ("1", "ok", str(n)),
        ("2", "ok", str(n)),
    ]
    assert len(cluster.rows("metrics_log.csv")) == 2
    assert len(cluster.rows("client_perf.csv")) == 2 * n
    assert len(cluster.rows("perf_log.csv")) == 2
    last, model = committed_model(cluster)
    expected = replay(shards.peers[:n], 2, secure=mode != "off")
    # Plain: float summation order only. Secure: fixed-point rounding, bounded per round.
    tolerance = 1e-9 if mode == "off" else 2 * hub_encoding(n).error_bound(n)
    assert last == 2
    assert max(abs(a - b) for a, b in zip(model, expected, strict=True)) <= tolerance
    with open(cluster.root / "p1" / "rounds.csv", newline="") as f:
        mine = list(csv.DictReader(f))
    assert [r["status"] for r in mine] == ["ok", "ok"]
    assert all(int(r["bytes_up"]) > 0 for r in mine)


STAGES = ["training", "advertise-keys", "share-keys", "masked-input", "unmask"]


@pytest.mark.parametrize("stage", STAGES)
def test_a_peer_dying_at_any_stage_leaves_the_round_to_the_survivors(cluster, shards, stage):
    # --min-peers 4 puts the doomed peer in round 1 however slowly it starts;
    # a fifth peer joins for round 2.
    hub = cluster.hub("--min-peers", "4", "--rounds", "2", "--secagg", "full", "--exit-when-done")
    start_peers(cluster, shards, 3)
    doomed = cluster.peer("p4", shards.peers[3], "--fault", f"exit-at:{stage}")
    assert doomed.wait(60) == 3, cluster.logs()
    cluster.peer("p5", shards.peers[4])
    assert hub.wait(120) == 0, cluster.logs()
    log = round_log(cluster)
    assert [r["status"] for r in log] == ["ok", "ok"], log
    first = log[0]
    assert first["participants"] == "4"
    survivors = "4" if stage == "unmask" else "3"  # at unmask its input is already summed
    assert first["survivors"] == survivors, cluster.logs()
    assert (log[1]["participants"], log[1]["survivors"]) == ("4", "4")


def test_a_round_below_threshold_aborts_and_the_next_one_runs(cluster, shards):
    hub = cluster.hub(
        "--min-peers",
        "4",
        "--rounds",
        "2",
        "--secagg",
        "full",
        "--threshold",
        "4",
        "--exit-when-done",
    )
    start_peers(cluster, shards, 3)
    cluster.peer("p4", shards.peers[3], "--fault", "exit-at:masked-input")
    cluster.wait_for(lambda: len(round_log(cluster)) == 1, 60, "round 1 to end")
    assert round_log(cluster)[0]["status"] == "aborted"
    before = committed_model(cluster)[1]
    assert before == [0.0] * len(before)  # an aborted round leaves the model alone
    cluster.peer("p5", shards.peers[4])  # a late joiner makes round 2 possible
    assert hub.wait(120) == 0, cluster.logs()
    log = round_log(cluster)
    assert [(r["round"], r["status"]) for r in log] == [("1", "aborted"), ("2", "ok")]
    assert "the round needs 4" in log[0]["reason"]


def test_a_peer_killed_mid_run_and_the_hub_carries_on(cluster, shards):
    hub = cluster.hub("--min-peers", "3", "--rounds", "40", "--secagg", "plus", "--exit-when-done")
    peers = start_peers(cluster, shards, 4)
    cluster.wait_for(
        lambda: any(r["peer"] == "p4" for r in cluster.rows("client_perf.csv")),
        60,
        "p4 to take part in a round",
    )
    peers[3].popen.send_signal(signal.SIGKILL)
    assert hub.wait(120) == 0, cluster.logs()
    log = round_log(cluster)
    assert [r["round"] for r in log] == [str(r) for r in range(1, 41)]
    assert all(r["status"] == "ok" for r in log), log
    assert "4" in {r["participants"] for r in log} and log[-1]["participants"] == "3"


@pytest.mark.parametrize("when", ["after-commits", "mid-round"])
def test_the_hub_killed_and_restarted_resumes_without_losing_or_repeating_rows(
    cluster, shards, when
):
    rounds = 60 if when == "after-commits" else 3
    args = (
        "--min-peers",
        "3",
        "--rounds",
        str(rounds),
        "--secagg",
        "full",
        "--exit-when-done",
        "--eval-test",
        str(shards.test),
    )
    hub = cluster.hub(*args)
    peers = start_peers(cluster, shards, 3)
    if when == "after-commits":
        cluster.wait_for(lambda: len(round_log(cluster)) >= 2, 60, "two rounds")
    else:
        # Silence one peer as soon as all three are in: round 1 starts (after the
        # join window) and then waits for it, so the hub is killed inside a round.
        cluster.wait_for(lambda: len(cluster.status("peers")["peers"]) == 3, 30, "3 peers")
        peers[2].popen.send_signal(signal.SIGSTOP)
        cluster.wait_for(
            lambda: str(cluster.status().get("stage")).startswith("round 1"),
            30,
            "round 1 in progress",
        )
    hub.popen.send_signal(signal.SIGKILL)
    hub.wait(10)
    committed = len(round_log(cluster))
    peers[2].popen.send_signal(signal.SIGCONT)
    hub = cluster.hub(*args, name="hub-again")
    assert hub.wait(120) == 0, cluster.logs()
    for p in peers:
        assert p.wait(30) == 0, cluster.logs()
    numbers = [str(r) for r in range(1, rounds + 1)]
    log = round_log(cluster)
    assert [r["round"] for r in log] == numbers, log
    assert all(r["status"] == "ok" and r["survivors"] == "3" for r in log)
    assert [r["round"] for r in cluster.rows("metrics_log.csv")] == numbers
    assert [r["round"] for r in cluster.rows("perf_log.csv")] == numbers
    assert (2 <= committed < rounds) if when == "after-commits" else committed == 0
    assert "registered" in cluster.children[-1].output()
    # Every round had all three peers, so the model is FedAvg replayed directly.
    _, model = committed_model(cluster)
    expected = replay(shards.peers[:3], rounds, secure=True)
    bound = rounds * hub_encoding(3).error_bound(3)
    assert max(abs(a - b) for a, b in zip(model, expected, strict=True)) <= bound


def test_status_commands_answer_during_a_run(cluster, shards):
    cluster.hub(
        "--min-peers", "2", "--rounds", "0", "--secagg", "full", "--eval-test", str(shards.test)
    )
    start_peers(cluster, shards, 2)
    cluster.wait_for(lambda: len(round_log(cluster)) >= 2, 60, "two rounds")
    summary = cluster.status()
    assert summary["mode"] == "full" and summary["peers_alive"] == 2
    assert summary["rounds_committed"] >= 2
    assert isinstance(summary["last_round"], dict) and "roc_auc" in summary["last_round"]
    peers = cluster.status("peers")["peers"]
    assert {p["peer"] for p in peers} == {"p1", "p2"}
    assert all(p["status"] == "alive" for p in peers)
    rounds = cluster.status("rounds", "--last", "2")["rounds"]
    assert len(rounds) == 2 and all("roc_auc" in r for r in rounds)


def test_status_without_a_hub_fails_clearly_within_the_wait(cluster):
    started = time.monotonic()
    proc = cluster.fedd("status", "status", "--hub", cluster.address, "--timeout", "1")
    assert proc.wait(30) == 1
    assert time.monotonic() - started < 15
    assert "no answer from a hub" in proc.output()


def test_a_peer_started_before_the_hub_joins_when_it_comes_up(cluster, shards):
    peers = start_peers(cluster, shards, 2)
    time.sleep(1.5)
    hub = cluster.hub("--min-peers", "2", "--rounds", "1", "--secagg", "full", "--exit-when-done")
    assert hub.wait(90) == 0, cluster.logs()
    for p in peers:
        assert p.wait(30) == 0, cluster.logs()


def test_a_peer_with_other_features_is_refused_with_the_reason(cluster, shards, tmp_path):
    narrow = tmp_path / "narrow.csv"
    with open(shards.peers[0], newline="") as src, open(narrow, "w", newline="") as dst:
        out = csv.writer(dst)
        for row in csv.reader(src):
            out.writerow(row[2:])
    cluster.hub(
        "--min-peers", "2", "--rounds", "1", "--secagg", "full", "--eval-test", str(shards.test)
    )
    odd = cluster.peer("odd", narrow)
    assert odd.wait(30) == 1
    assert "feature mismatch" in odd.output()


def test_garbage_sent_to_the_hub_is_dropped_and_the_round_completes(cluster, shards):
    hub = cluster.hub("--min-peers", "3", "--rounds", "2", "--secagg", "full", "--exit-when-done")
    ctx = zmq.Context()
    attacker = ctx.socket(zmq.DEALER)
    attacker.setsockopt(zmq.LINGER, 0)
    attacker.connect(cluster.address)
    try:
        start_peers(cluster, shards, 3)
        junk = [
            os.urandom(64),
            b"",
            msgpack.packb({"v": 1, "type": "masked_input"}),
            msgpack.packb(
                {
                    "v": 1,
                    "type": "key_advert",
                    "run": "x",
                    "round": 1,
                    "body": {"c_pk": b"1" * 32, "s_pk": b"1" * 32},
                }
            ),
            msgpack.packb([1, 2, 3]),
            b"\xc6\xff\xff\xff\xff",
        ]
        deadline = time.monotonic() + 60
        while hub.alive() and time.monotonic() < deadline:
            for frame in junk:
                attacker.send(frame)
            time.sleep(0.02)
        assert hub.wait(60) == 0, cluster.logs()
    finally:
        attacker.close()
        ctx.term()
    assert [r["status"] for r in round_log(cluster)] == ["ok", "ok"]
    assert "dropped malformed message" in hub.output()
