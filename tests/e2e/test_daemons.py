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
from fedd.learner.holdout import Split, concat, split_holdout
from fedd.learner.model import make_training_set, train, zeros
from fedd.learner.prepare import column_stats
from fedd.learner.scaling import ColumnStats, standardize
from tests.e2e.conftest import Cluster, Shards, check_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SEED = 42  # the hub's --seed
HOLDOUT, HOLDOUT_SEED = 0.2, 42  # every peer's --holdout and --holdout-seed (the defaults)


def split(shard: Path) -> Split:
    """A peer's rows as it splits them: the rows it trains on, and those it holds out."""
    return split_holdout(read_dataset(shard), HOLDOUT, HOLDOUT_SEED)


def check_statistics(cluster: Cluster, contributors: list[Path], number: int) -> list[ColumnStats]:
    """stats.csv, checked against the pooled statistics of the contributors' training
    rows (to within 1e-9 of each feature's std), and run.csv's record of its source."""
    pooled = concat([split(p).train for p in contributors], "the contributors' training rows")
    expected = column_stats(pooled, range(pooled.n_rows))
    stats = [
        ColumnStats(r["column"], float(r["mean"]), float(r["std"]), r["note"])
        for r in cluster.rows("stats.csv")
    ]
    assert [s.name for s in stats] == [e.name for e in expected]
    for got, want in zip(stats, expected, strict=True):
        assert abs(got.mean - want.mean) <= 1e-9 * want.std, (got, want)
        assert abs(got.std - want.std) <= 1e-9 * want.std, (got, want)
    run = {r["key"]: r["value"] for r in cluster.rows("run.csv")}
    source = [int(run[f"statistics_{k}"]) for k in ("round", "peers", "rows", "positives")]
    assert source == [number, len(contributors), pooled.n_rows, pooled.n_positives]
    return stats


def replay(peers: list[Path], rounds: list[int], stats: list[ColumnStats]) -> list[float]:
    """The model the federation should reach: FedAvg computed directly, round by round.

    Each peer trains on its training rows z-scored with the federation's
    statistics; its delta is clipped and weighted by its row count (capped)
    as the hub's encoding takes them. `rounds` are the training rounds'
    numbers, which seed the order of their minibatches.
    """
    data = [standardize(split(p).train, stats) for p in peers]
    # Peers cut their minibatches once per run (the run's seed), reorder them each round.
    layouts = [make_training_set(ds, batch_size=512, class_weight="none", seed=SEED) for ds in data]
    model = zeros(data[0].n_features)
    fp = hub_encoding(len(peers))
    for r in rounds:
        total, weights = [0.0] * len(model), 0
        for ds, ts in zip(data, layouts, strict=True):
            params, _ = train(model, ts, epochs=1, lr=0.1, l2=0.0, seed=SEED + r)
            delta = fp.clip_vector([p - m for p, m in zip(params, model, strict=True)])
            weight = min(ds.n_rows, fp.max_weight)
            total = [t + weight * d for t, d in zip(total, delta, strict=True)]
            weights += weight
        model = [m + t / weights for m, t in zip(model, total, strict=True)]
    return model


def hub_encoding(n: int, *, wide: bool = False) -> FixedPoint:
    """The encoding the hub picks for n peers with its default settings (`wide`: a
    training round that also carries scores)."""
    return choose_encoding(n, HubConfig(), wide=wide)


def tolerance(n: int, rounds: int) -> float:
    """How far fixed-point rounding may move the model in `rounds` rounds of n peers,
    plain or secure alike: each round's mean travels in the encoding of its round
    (the wide one when the round also carries scores), within that one's bound."""
    return rounds * max(hub_encoding(n, wide=wide).error_bound(n) for wide in (False, True))


def check_metrics(cluster: Cluster, training: list[int], scorers: list[Path], test: Path) -> None:
    """metrics_log.csv: each trained model scored once on the scorers' held-out rows,
    by a later round, and once on the test CSV, by its own round; in commit order."""
    rows = cluster.rows("metrics_log.csv")
    committed = [int(r["committed_in"]) for r in rows]
    assert committed == sorted(committed), rows
    keys = sorted((int(r["round"]), r["source"]) for r in rows)
    assert keys == [(t, source) for t in training for source in ("federated", "test")], rows
    held = [h for p in scorers if (h := split(p).holdout) is not None]
    federated = (len(scorers), sum(h.n_rows for h in held), sum(h.n_positives for h in held))
    tested = read_dataset(test)
    for r in rows:
        counts = (int(r["peers"]), int(r["rows"]), int(r["positives"]))
        if r["source"] == "federated":
            assert int(r["committed_in"]) > int(r["round"]) and counts == federated, r
        else:
            assert int(r["committed_in"]) == int(r["round"]), r
            assert counts == (0, tested.n_rows, tested.n_positives), r


def committed_round(cluster: Cluster) -> int:
    """The last committed round: global_model.csv's, written last by each commit."""
    rows = cluster.rows("global_model.csv")
    return int(rows[0]["round"]) if rows else 0


def committed_model(cluster: Cluster) -> tuple[int, list[float]]:
    rows = cluster.rows("global_model.csv")
    return int(rows[0]["round"]), [float(r["value"]) for r in rows]


def round_log(cluster: Cluster) -> list[dict[str, str]]:
    return cluster.rows("round_log.csv")


def training_rounds(log: list[dict[str, str]]) -> list[int]:
    return [int(r["round"]) for r in log if r["kind"] == "training"]


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
    check_run(log, training=2)
    assert all((r["status"], r["survivors"]) == ("ok", str(n)) for r in log), log
    training = training_rounds(log)
    check_metrics(cluster, training, shards.peers[:n], shards.test)
    # The run ends with the round that scored its last model.
    assert max(int(r["committed_in"]) for r in cluster.rows("metrics_log.csv")) == len(log)
    # Peers report their training cost in training rounds; the sample count only in the clear.
    samples = {(f"p{k}", split(shards.peers[k - 1]).train.n_rows) for k in range(1, n + 1)}
    clients = cluster.rows("client_perf.csv")
    assert sorted(int(r["round"]) for r in clients) == sorted(training * n)
    assert {(r["peer"], int(r["n_samples"])) for r in clients} == (
        samples if mode == "off" else {(peer, 0) for peer, _ in samples}
    )
    assert [r["round"] for r in cluster.rows("perf_log.csv")] == [r["round"] for r in log]
    stats = check_statistics(cluster, shards.peers[:n], 1)
    last, model = committed_model(cluster)
    expected = replay(shards.peers[:n], training, stats)
    # Plain or secure, each round's mean is fixed-point: rounding, bounded per round.
    assert last == len(log)
    error = max(abs(a - b) for a, b in zip(model, expected, strict=True))
    assert error <= tolerance(n, len(training)), error
    with open(cluster.root / "p1" / "rounds.csv", newline="") as f:
        mine = list(csv.DictReader(f))
    assert [(r["round"], r["kind"], r["status"]) for r in mine] == [
        (r["round"], r["kind"], "ok") for r in log
    ]
    assert all(int(r["bytes_up"]) > 0 for r in mine)


STAGES = ["training", "advertise-keys", "share-keys", "masked-input", "unmask"]


@pytest.mark.parametrize("stage", STAGES)
def test_a_peer_dying_at_any_stage_leaves_the_round_to_the_survivors(cluster, shards, stage):
    # --min-peers 4 puts the doomed peer in round 1, the statistics round, however
    # slowly it starts; a fifth peer joins for the rounds after it.
    hub = cluster.hub("--min-peers", "4", "--rounds", "2", "--secagg", "full", "--exit-when-done")
    start_peers(cluster, shards, 3)
    doomed = cluster.peer("p4", shards.peers[3], "--fault", f"exit-at:{stage}")
    assert doomed.wait(60) == 3, cluster.logs()
    cluster.peer("p5", shards.peers[4])
    assert hub.wait(120) == 0, cluster.logs()
    log = round_log(cluster)
    check_run(log, training=2)
    assert all(r["status"] == "ok" for r in log), log
    first = log[0]
    assert first["participants"] == "4"
    survivors = 4 if stage == "unmask" else 3  # at unmask its input is already summed
    assert first["survivors"] == str(survivors), cluster.logs()
    # The statistics are exactly those of the survivors' rows.
    check_statistics(cluster, shards.peers[:survivors], 1)
    assert all((r["participants"], r["survivors"]) == ("4", "4") for r in log[1:]), log


def test_a_round_below_threshold_aborts_and_the_next_one_runs(cluster, shards, tmp_path):
    hub = cluster.hub(
        "--min-peers",
        "4",
        "--rounds",
        "2",
        "--secagg",
        "full",
        "--secagg-threshold",
        "4",
        "--local-epochs",
        "1000",
        "--exit-when-done",
    )
    start_peers(cluster, shards, 3)
    # p4 holds every shard's rows three times over: its local training far outlasts
    # the others', so that it is killed in the middle of it, before its masked input.
    big = tmp_path / "big.csv"
    header, *rows = shards.train.read_text().splitlines(keepends=True)
    big.write_text("".join([header, *rows * 3]))
    doomed = cluster.peer("p4", big)
    # Round 1 gives the statistics; round 2, the first training round, follows at once.
    cluster.wait_for(lambda: committed_round(cluster) == 1, 60, "round 1 to commit")
    cluster.wait_for(
        lambda: str(cluster.status().get("stage")).startswith("round 2"),
        60,
        "round 2 in progress",
    )
    doomed.popen.send_signal(signal.SIGKILL)
    cluster.wait_for(lambda: committed_round(cluster) == 2, 60, "round 2 to commit")
    log = round_log(cluster)
    assert [(r["kind"], r["status"]) for r in log] == [
        ("statistics", "ok"),
        ("training", "aborted"),
    ], log
    assert "the round needs 4" in log[1]["reason"]
    # An aborted round leaves the model alone: no training round completed, so zeros.
    before = committed_model(cluster)[1]
    assert before == [0.0] * len(before)
    cluster.peer("p5", shards.peers[4])  # a late joiner makes round 3 possible
    assert hub.wait(120) == 0, cluster.logs()
    log = round_log(cluster)
    assert [(r["round"], r["kind"], r["status"], r["participants"]) for r in log[:3]] == [
        ("1", "statistics", "ok", "4"),
        ("2", "training", "aborted", "4"),
        ("3", "training", "ok", "4"),
    ], log
    assert log[2]["survivors"] == "4"
    assert [r["round"] for r in log] == [str(r) for r in range(1, len(log) + 1)]
    assert len(log) > 3 and all((r["kind"], r["status"]) == ("evaluation", "ok") for r in log[3:])
    assert {r["round"] for r in cluster.rows("updates.csv")} == {"3"}


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
    check_run(log, training=40)
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
    log = round_log(cluster)
    check_run(log, training=rounds)
    assert all(r["status"] == "ok" and r["survivors"] == "3" for r in log)
    training = training_rounds(log)
    check_metrics(cluster, training, shards.peers[:3], shards.test)
    assert [r["round"] for r in cluster.rows("perf_log.csv")] == [r["round"] for r in log]
    # Killed with training rounds still to run: after the statistics round and one
    # training round at least, or inside round 1.
    assert (2 <= committed <= rounds) if when == "after-commits" else committed == 0
    assert "registered" in cluster.children[-1].output()
    # Every round had all three peers, so the model is FedAvg replayed directly.
    stats = check_statistics(cluster, shards.peers[:3], 1)
    _, model = committed_model(cluster)
    expected = replay(shards.peers[:3], training, stats)
    error = max(abs(a - b) for a, b in zip(model, expected, strict=True))
    assert error <= tolerance(3, len(training)), error


def test_status_commands_answer_during_a_run(cluster, shards):
    cluster.hub(
        "--min-peers", "2", "--rounds", "0", "--secagg", "full", "--eval-test", str(shards.test)
    )
    start_peers(cluster, shards, 2)
    # The statistics round, then two training rounds (with --rounds 0, every later round trains).
    cluster.wait_for(lambda: len(round_log(cluster)) >= 3, 60, "three rounds")
    summary = cluster.status()
    assert summary["mode"] == "full" and summary["peers_alive"] == 2
    assert summary["rounds_committed"] >= 2
    assert isinstance(summary["last_round"], dict) and "roc_auc" in summary["last_round"]
    pooled = [split(p).train for p in shards.peers[:2]]
    assert summary["statistics"] == {
        "source": "federated",
        "round": 1,
        "peers": 2,
        "rows": sum(d.n_rows for d in pooled),
        "positives": sum(d.n_positives for d in pooled),
    }
    peers = cluster.status("peers")["peers"]
    assert {p["peer"] for p in peers} == {"p1", "p2"}
    assert all(p["status"] == "alive" for p in peers)
    rounds = cluster.status("rounds", "--last", "2")["rounds"]
    assert len(rounds) == 2 and all(r["kind"] == "training" and "roc_auc" in r for r in rounds)


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
    assert "missing: 'Time', 'V1'" in odd.output()


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
    log = round_log(cluster)
    check_run(log, training=2)
    assert all(r["status"] == "ok" for r in log), log
    assert "dropped malformed message" in hub.output()
