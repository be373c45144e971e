"""A short soak (bench.soak): SecAgg+ rounds through a peer kill and a hub kill, then its checks.

One run of 15 training rounds (with its statistics round first and its
evaluation rounds last) with 4 peer processes feeds every test here: the first
asserts that all of the soak's checks pass on it; the others damage a copy of
its state, one way each, and assert that the check meant to catch that damage
fails, so that no check passes vacuously.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.soak import SoakConfig, SoakRun, run_soak
from bench.soak_checks import Check, Kill, RssSample, RunFacts, run_checks

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = SoakConfig(
    rounds=15, peers=4, min_peers=3, max_down=1, peer_kills=1, hub_restarts=1, seed=3, timeout_s=120
)


@dataclasses.dataclass
class Soak:
    run: SoakRun
    said: list[str]


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> Soak:
    said: list[str] = []
    run = run_soak(CONFIG, tmp_path_factory.mktemp("soak"), say=said.append)
    return Soak(run, said)


def logs(run: SoakRun) -> str:
    return "\n".join(
        f"--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted((run.root / "procs").glob("*.log"))
    )


def test_a_short_soak_loses_no_round_and_no_row(soak: Soak) -> None:
    run = soak.run
    assert run.problems == [], "\n".join(soak.said) + logs(run)
    checks = run_checks(run.facts)
    failed = [c for c in checks if not c.ok]
    assert not failed, f"{failed}\n" + "\n".join(soak.said) + logs(run)
    assert len(checks) == 10
    kills = [k.what for k in run.facts.kills]
    assert kills.count("hub") == 1 and len(kills) == 2, soak.said
    # The hub really came back on its state: its second process resumed mid-run.
    hub_log = (run.root / "procs" / "hub.log").read_text()
    resumed = [line for line in hub_log.splitlines() if "listening on" in line]
    assert len(resumed) == 2 and "next round 1)" not in resumed[1]
    # The killed peer really came back, under its id, from its state directory.
    (victim,) = (k.what.removeprefix("peer ") for k in run.facts.kills if k.what != "hub")
    peer_log = (run.root / "procs" / f"{victim}.log").read_text()
    assert peer_log.count(f"peer {victim} (") == 2
    assert len(run.facts.rss) >= 10 and any("VmRSS" in line for line in soak.said)


# --- each check catches what it is for ------------------------------------------------------


def edit_csv(path: Path, edit: Callable[[list[list[str]]], None]) -> None:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    edit(rows)
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def column(rows: list[list[str]], name: str) -> int:
    return rows[0].index(name)


def drop_round_5(rows: list[list[str]]) -> None:
    del rows[5]


def abort_round_4(rows: list[list[str]]) -> None:
    rows[4][column(rows, "status")] = "aborted"
    rows[4][column(rows, "reason")] = "cannot decode the aggregate: weight is not positive"


def one_ulp_more(rows: list[list[str]]) -> None:
    cell = column(rows, "value")
    rows[-1][cell] = repr(math.nextafter(float(rows[-1][cell]), math.inf))


def shift_a_mean(rows: list[list[str]]) -> None:
    cell = column(rows, "mean")
    rows[40][cell] = repr(float(rows[40][cell]) + 1e-3)


def nudge_a_mean(rows: list[list[str]]) -> None:
    mean, std = column(rows, "mean"), column(rows, "std")
    rows[3][mean] = repr(float(rows[3][mean]) + 1e-6 * float(rows[3][std]))


def score_a_model_in_its_own_round(rows: list[list[str]]) -> None:
    federated = next(row for row in rows[1:] if row[column(rows, "source")] == "federated")
    federated[column(rows, "committed_in")] = federated[column(rows, "round")]


def repeat_a_client_row(rows: list[list[str]]) -> None:
    rows.insert(3, rows[2])


def lose_a_peer_in_round_6(rows: list[list[str]]) -> None:
    rows[6][column(rows, "survivors")] = str(int(rows[6][column(rows, "participants")]) - 1)


def no_kills(facts: RunFacts) -> RunFacts:
    return dataclasses.replace(facts, kills=[])


def growing_memory(facts: RunFacts) -> RunFacts:
    grown = [RssSample(r, 9, 1, 40_000 + 1_000 * r) for r in range(1, 16)]
    return dataclasses.replace(facts, rss=[*facts.rss, *grown])


def an_extra_kill(facts: RunFacts) -> RunFacts:
    return dataclasses.replace(facts, kills=[*facts.kills, Kill(0.0, "peer p1", 1)])


def keep(facts: RunFacts) -> RunFacts:
    return facts


@pytest.mark.parametrize(
    ("name", "edit", "adjust", "fails"),
    [
        ("round_log.csv", drop_round_5, keep, "every round committed exactly once"),
        ("round_log.csv", abort_round_4, keep, "no round lost that had enough survivors"),
        ("round_log.csv", lose_a_peer_in_round_6, no_kills, "every dropout had a kill behind it"),
        ("global_model.csv", one_ulp_more, keep, "final model = replay of updates.csv"),
        ("updates.csv", shift_a_mean, keep, "each ok training round is FedAvg of its survivors"),
        ("stats.csv", nudge_a_mean, keep, "each ok training round is FedAvg of its survivors"),
        (
            "metrics_log.csv",
            score_a_model_in_its_own_round,
            keep,
            "no duplicate or missing rows in the hub's",
        ),
        ("client_perf.csv", repeat_a_client_row, keep, "no duplicate or missing rows in the hub's"),
        ("", None, growing_memory, "hub resident memory flat"),
        ("", None, an_extra_kill, "the schedule ran as planned"),
    ],
)
def test_each_check_catches_its_violation(
    soak: Soak,
    tmp_path: Path,
    name: str,
    edit: Callable[[list[list[str]]], None] | None,
    adjust: Callable[[RunFacts], RunFacts],
    fails: str,
) -> None:
    facts = soak.run.facts
    hub_state = tmp_path / "hub"
    shutil.copytree(facts.hub_state, hub_state)
    if edit is not None:
        edit_csv(hub_state / name, edit)
    checks = run_checks(adjust(dataclasses.replace(facts, hub_state=hub_state)))
    failed = [c for c in checks if not c.ok]
    assert any(c.name.startswith(fails) for c in failed), checks


def test_a_peer_log_that_repeats_a_round_is_caught(soak: Soak, tmp_path: Path) -> None:
    facts = soak.run.facts
    peers = {}
    for peer, path in facts.peer_states.items():
        peers[peer] = tmp_path / peer
        shutil.copytree(path, peers[peer])
    edit_csv(peers["p1"] / "rounds.csv", lambda rows: rows.append(rows[-1]))
    checks = run_checks(dataclasses.replace(facts, peer_states=peers))
    assert [c.name for c in checks if not c.ok] == ["each peer's rounds.csv agrees with the hub"]


def test_the_store_check_fails_on_what_the_store_would_repair(soak: Soak, tmp_path: Path) -> None:
    facts = soak.run.facts
    hub_state = tmp_path / "hub"
    shutil.copytree(facts.hub_state, hub_state)
    (hub_state / ".global_model.csv.x1.tmp").write_text("half a model")
    checks = run_checks(dataclasses.replace(facts, hub_state=hub_state))
    assert [c.name for c in checks if not c.ok] == ["the store opens the state cleanly"]


def test_a_torn_row_fails_the_reading_itself(soak: Soak, tmp_path: Path) -> None:
    facts = soak.run.facts
    hub_state = tmp_path / "hub"
    shutil.copytree(facts.hub_state, hub_state)
    torn = facts.last_round + 2  # its row number: the header is row 1
    with open(hub_state / "round_log.csv", "a") as f:
        # A torn append, which a clean stop never leaves.
        f.write(f"{facts.last_round + 1},evaluation,plus")
    checks: list[Check] = run_checks(dataclasses.replace(facts, hub_state=hub_state))
    assert len(checks) == 1 and not checks[0].ok
    assert f"round_log.csv row {torn}: 3 cells, the header has 10" in checks[0].detail
