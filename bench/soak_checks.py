"""The checks at the end of a soak (`bench.soak`), on the CSV state the run left.

Each check reads the files with the `csv` module, not with `daemon.state.store`,
so that it does not trust the code it checks (one check then opens the
directory with the store as well). A run is one statistics round, then
`--rounds` training rounds, then evaluation rounds until every model is
scored. How each invariant is established:

- every round committed exactly once: round_log.csv holds the rounds 1..L,
  each once, where L is the round global_model.csv held when the hub said
  it was done, and global_model.csv is at round L; their kinds are, in
  turn, one ok statistics round, the training rounds, and at least one
  evaluation round;
- no round lost that had enough survivors: a round's threshold t is a pure
  function of its participant count (`choose_shape`, with the hub's default
  dropout and corruption budgets), so it is recomputed from round_log.csv.
  An ok round must have at least t survivors. An aborted round must give one
  of the hub's below-threshold reasons (a stage closed with fewer than t
  peers, fewer than t shares of a secret, or too few neighbours of a peer
  left, SecAgg+'s local threshold), with numbers that show it; any other
  reason is a lost round. Independently of what the hub says, every round
  that lost a peer (or aborted) must have had a peer killed by the soak
  within its time window, widened by the liveness time the hub takes to
  notice a dead peer: the hub never drops live peers by itself;
- no duplicate or missing rows: per file, the rows each round must have
  (one perf row per round; for each ok training round one test metrics row
  written by that round and one federated row written by a later one, and
  its parameters in updates.csv; client rows only for training rounds, at
  most one per participant and peer), and each peer's own rounds.csv has
  no round twice and agrees with the hub on each round's kind and end;
- the final model is zeros plus the deltas of updates.csv in order, bit for
  bit;
- each ok training round's mean (updates.csv's `mean`, of which the run's
  strategy made the delta; FedAvg, the soak's, adds it as it is) is FedAvg
  of `survivors` of its peers: the peers' training rows (their shards less
  the rows they hold out) are z-scored with stats.csv, which must be the
  pooled statistics of the statistics round's contributors to within 1e-9
  of each std; the peers' local training is recomputed from the replayed
  model (it is deterministic), and some subset of that size must give the
  committed mean within the fixed-point rounding bound;
- the hub's memory is flat: within each hub process, VmRSS after its last
  round exceeds VmRSS after its first by at most 2 MiB + 5%.
"""

from __future__ import annotations

import csv
import itertools
import re
import struct
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fedd.crypto.secagg.params import Mode
from fedd.crypto.secagg.shape import choose_shape
from fedd.daemon.errors import StateError
from fedd.daemon.hub.config import HubConfig, choose_encoding
from fedd.daemon.state.store import HubStore
from fedd.learner.dataset import Dataset, read_dataset
from fedd.learner.holdout import concat, split_holdout
from fedd.learner.model import make_training_set, train
from fedd.learner.prepare import column_stats
from fedd.learner.scaling import ColumnStats, standardize

__all__ = [
    "BATCH_SIZE",
    "HOLDOUT",
    "HOLDOUT_SEED",
    "LOCAL_EPOCHS",
    "LR",
    "TRAIN_SEED",
    "Check",
    "Kill",
    "RssSample",
    "RunFacts",
    "run_checks",
    "threshold",
]

# The hub's training settings in a soak (bench.soak passes them), which the FedAvg
# check recomputes the peers' training with.
TRAIN_SEED = 42
LR = 0.1
BATCH_SIZE = 512
LOCAL_EPOCHS = 1
# The peers' settings (bench.soak passes them too): the rows each holds out.
HOLDOUT = 0.2
HOLDOUT_SEED = 42
STATS_TOLERANCE = 1e-9  # of each feature's std: stats.csv against the pooled statistics
RSS_SLACK_KIB = 2048
RSS_SLACK_FRACTION = 0.05

_BELOW_STAGE = re.compile(r"only (\d+) peers completed [\w-]+, the round needs (\d+)")
_BELOW_SHARES = re.compile(r"only (\d+) shares of .+, need (\d+)")
_BELOW_NEIGHBOURS = re.compile(r"too few neighbours of .+ survived to (unmask it|remove its masks)")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Kill:
    """A SIGKILL the soak sent: when (Unix time), to whom, in which round."""

    at: float
    what: str  # "hub" or "peer <id>"
    round: int  # the round in progress: the last committed one plus 1


@dataclass(frozen=True)
class RssSample:
    round: int  # sampled right after this round committed
    hub: int  # which hub process (1, 2, ...)
    pid: int
    kib: int


@dataclass(frozen=True)
class RunFacts:
    """Where the run left its state, and what the soak did to it."""

    rounds: int  # training rounds (--rounds)
    last_round: int  # the round global_model.csv held when the hub said it was done
    hub_state: Path
    peer_states: dict[str, Path]
    shards: dict[str, Path]
    kills: list[Kill]
    rss: list[RssSample]
    liveness_s: float
    planned_peer_kills: int
    planned_hub_kills: int


def threshold(participants: int) -> int:
    """The t the hub chose for a SecAgg+ round of `participants` (default budgets)."""
    hub = HubConfig()
    shape = choose_shape(
        participants, Mode.PLUS, dropout=hub.dropout_budget, corrupt=hub.corrupt, threshold=None
    )
    return shape.t


def run_checks(facts: RunFacts) -> list[Check]:
    """Every check, in order; a check that cannot read what it needs fails with the reason."""
    steps: list[tuple[str, Callable[[_State, RunFacts], str]]] = [
        ("every round committed exactly once", _rounds_once),
        ("no round lost that had enough survivors", _aborts_below_threshold),
        ("every dropout had a kill behind it", _dropouts_had_kills),
        ("no duplicate or missing rows in the hub's CSVs", _hub_rows),
        ("each peer's rounds.csv agrees with the hub", _peer_rows),
        ("final model = replay of updates.csv", _replay),
        ("each ok training round is FedAvg of its survivors", _fedavg),
        ("the store opens the state cleanly", _store_opens),
        ("hub resident memory flat", _rss_flat),
        ("the schedule ran as planned", _schedule),
    ]
    checks = []
    try:
        state = _State.read(facts.hub_state)
    except (OSError, ValueError, KeyError, csv.Error) as exc:
        return [Check("read the hub's state", False, str(exc))]
    for name, step in steps:
        try:
            checks.append(Check(name, True, step(state, facts)))
        except _Failed as exc:
            checks.append(Check(name, False, str(exc)))
        except (OSError, ValueError, KeyError, IndexError, StopIteration, csv.Error) as exc:
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
    return checks


class _Failed(Exception):
    """A check found a violation; the message says which."""


def _read(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts; ValueError for a row of the wrong width."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, strict=True))
    if not rows:
        raise ValueError(f"{path}: empty")
    header = rows[0]
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(
                f"{path.name} row {number}: {len(row)} cells, the header has {len(header)}"
            )
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


@dataclass
class _State:
    round_log: list[dict[str, str]]
    metrics: list[dict[str, str]]
    perf: list[dict[str, str]]
    clients: list[dict[str, str]]
    updates: list[dict[str, str]]
    model: list[dict[str, str]]
    peers: list[dict[str, str]]
    stats: list[dict[str, str]]
    run: list[dict[str, str]]
    names: tuple[str, ...]  # the model's parameters: bias, then run.csv's features

    @classmethod
    def read(cls, d: Path) -> _State:
        run = _read(d / "run.csv")
        features = tuple(row["value"] for row in run if row["key"] == "feature")
        return cls(
            _read(d / "round_log.csv"),
            _read(d / "metrics_log.csv"),
            _read(d / "perf_log.csv"),
            _read(d / "client_perf.csv"),
            _read(d / "updates.csv"),
            _read(d / "global_model.csv"),
            _read(d / "peers.csv"),
            _read(d / "stats.csv"),
            run,
            ("bias", *features),
        )

    def status(self) -> dict[int, dict[str, str]]:
        return {int(row["round"]): row for row in self.round_log}

    def of_kind(self, kind: str) -> list[int]:
        return [int(row["round"]) for row in self.round_log if row["kind"] == kind]

    def trained(self) -> list[int]:
        """The ok training rounds: those that changed the model."""
        return [
            int(row["round"])
            for row in self.round_log
            if row["kind"] == "training" and row["status"] == "ok"
        ]

    def setting(self, key: str) -> str:
        """One value of run.csv (ValueError unless the key is there exactly once)."""
        (value,) = (row["value"] for row in self.run if row["key"] == key)
        return value


def _rounds_numbers(rows: Sequence[dict[str, str]]) -> list[int]:
    return [int(row["round"]) for row in rows]


def _missing_and_repeated(found: list[int], expected: list[int]) -> str:
    counts = Counter(found)
    missing = sorted(set(expected) - set(found))
    repeated = sorted(r for r, n in counts.items() if n > 1)
    stray = sorted(set(found) - set(expected))
    return f"missing {missing[:10]}, repeated {repeated[:10]}, unexpected {stray[:10]}"


def _rounds_once(state: _State, facts: RunFacts) -> str:
    last = facts.last_round
    expected = list(range(1, last + 1))
    found = _rounds_numbers(state.round_log)
    if found != expected:
        raise _Failed(f"round_log.csv: {_missing_and_repeated(found, expected)}")
    model_rounds = {int(row["round"]) for row in state.model}
    if model_rounds != {last}:
        raise _Failed(f"global_model.csv is at round(s) {sorted(model_rounds)}, not {last}")
    kinds = [row["kind"] for row in state.round_log]
    evaluations = last - 1 - facts.rounds
    if evaluations < 1 or kinds != [
        "statistics",
        *["training"] * facts.rounds,
        *["evaluation"] * evaluations,
    ]:
        raise _Failed(
            f"round_log.csv: kinds {dict(Counter(kinds))} in rounds 1..{last}, not one "
            f"statistics round, {facts.rounds} training rounds, then evaluation rounds"
        )
    if state.round_log[0]["status"] != "ok":
        raise _Failed("round_log.csv: the statistics round did not complete")
    return (
        f"round_log.csv holds rounds 1..{last} once each, in order: the statistics round, "
        f"{facts.rounds} training rounds, {evaluations} evaluation rounds; "
        f"global_model.csv is at round {last}"
    )


def _aborts_below_threshold(state: _State, facts: RunFacts) -> str:
    aborted = []
    lost_peers = 0
    for row in state.round_log:
        r, n, s = int(row["round"]), int(row["participants"]), int(row["survivors"])
        t = threshold(n)
        if row["status"] == "ok":
            if s < t:
                raise _Failed(f"round {r} is ok with {s} survivors, below its t = {t}")
            lost_peers += s < n
            continue
        reason = row["reason"]
        stage = _BELOW_STAGE.search(reason)
        shares = _BELOW_SHARES.search(reason)
        if stage and not (int(stage[1]) < int(stage[2]) == t):
            raise _Failed(f"round {r} aborted with numbers that are not below t = {t}: {reason!r}")
        if shares and not (int(shares[1]) < int(shares[2]) == t):
            raise _Failed(f"round {r} aborted with numbers that are not below t = {t}: {reason!r}")
        if not (stage or shares or _BELOW_NEIGHBOURS.search(reason)):
            raise _Failed(f"round {r} was lost: aborted for another reason: {reason!r}")
        aborted.append(f"{r} ({reason})")
    ok = len(state.round_log) - len(aborted)
    text = f"{ok} ok, all with >= t survivors ({lost_peers} of them lost peers); "
    text += f"{len(aborted)} aborted"
    return text + (f", each below its threshold: {'; '.join(aborted)}" if aborted else "")


def _dropouts_had_kills(state: _State, facts: RunFacts) -> str:
    kills = [k.at for k in facts.kills if k.what != "hub"]
    disturbed = 0
    for row in state.round_log:
        n, s = int(row["participants"]), int(row["survivors"])
        if s == n and row["status"] == "ok":
            continue
        disturbed += 1
        start = float(row["started_at"])
        end = start + float(row["duration_s"])
        if not any(start - facts.liveness_s - 1.0 <= at <= end + 1.0 for at in kills):
            raise _Failed(
                f"round {row['round']} lost {n - s} of {n} peers ({row['status']}) "
                "with no peer killed during it"
            )
    return f"{disturbed} round(s) lost peers or aborted; each had a peer SIGKILLed during it"


def _hub_rows(state: _State, facts: RunFacts) -> str:
    every = list(range(1, facts.last_round + 1))
    trained = state.trained()
    training = set(state.of_kind("training"))
    status = state.status()
    found = _rounds_numbers(state.perf)
    if found != every:
        raise _Failed(f"perf_log.csv: {_missing_and_repeated(found, every)}")
    _metrics_rows(state, trained, facts.last_round)
    pairs = [(int(row["round"]), row["peer"]) for row in state.clients]
    repeated = [pair for pair, n in Counter(pairs).items() if n > 1]
    if repeated:
        raise _Failed(f"client_perf.csv: (round, peer) {repeated[0]} appears twice")
    per_round = Counter(r for r, _ in pairs)
    for r, count in per_round.items():
        row = status.get(r)
        if r not in training or row is None or count > int(row["participants"]):
            raise _Failed(
                f"client_perf.csv: {count} rows for round {r}, not one of a training round's "
                "peers each"
            )
    for r in trained:
        if per_round[r] < int(status[r]["survivors"]):
            raise _Failed(f"client_perf.csv: round {r} has fewer rows than survivors")
    if {peer for _, peer in pairs} - set(facts.shards):
        raise _Failed("client_perf.csv: rows of a peer that is not ours")
    d = len(state.names)
    by_round: dict[int, list[str]] = {}
    for row in state.updates:
        by_round.setdefault(int(row["round"]), []).append(row["parameter"])
    if sorted(by_round) != trained or any(p != list(state.names) for p in by_round.values()):
        raise _Failed(
            f"updates.csv: not exactly the {d} parameters, in order, of each ok training round"
        )
    peer_ids = [row["peer"] for row in state.peers]
    if sorted(peer_ids) != sorted(facts.shards):
        raise _Failed(f"peers.csv: peers {sorted(peer_ids)}, expected {sorted(facts.shards)}")
    return (
        f"round_log {len(state.round_log)}, perf_log {len(state.perf)}, metrics_log "
        f"{len(state.metrics)} (a test row and a later federated row per ok training round), "
        f"client_perf {len(pairs)} (training rounds, at most one per participant), updates "
        f"{len(state.updates)} = {len(trained)} ok training rounds x {d} parameters, "
        f"peers.csv {len(peer_ids)} peers once each"
    )


def _metrics_rows(state: _State, trained: list[int], last: int) -> None:
    """metrics_log.csv: for each ok training round, and no other, one `test` row written
    by that round and one `federated` row written by a later one; in commit order."""
    keys = [(int(row["round"]), row["source"]) for row in state.metrics]
    repeated = [key for key, n in Counter(keys).items() if n > 1]
    if repeated:
        raise _Failed(f"metrics_log.csv: (round, source) {repeated[0]} appears twice")
    written = [int(row["committed_in"]) for row in state.metrics]
    if written != sorted(written):
        raise _Failed("metrics_log.csv: rows not in the order of the rounds that wrote them")
    for source in ("test", "federated"):
        found = sorted(r for r, s in keys if s == source)
        if found != trained:
            raise _Failed(
                f"metrics_log.csv ({source} rows, one per ok training round): "
                f"{_missing_and_repeated(found, trained)}"
            )
    for row in state.metrics:
        r, at = int(row["round"]), int(row["committed_in"])
        later = at == r if row["source"] == "test" else r < at <= last
        if not later:
            raise _Failed(
                f"metrics_log.csv: the {row['source']} row of round {r} written by round {at}"
            )


def _peer_rows(state: _State, facts: RunFacts) -> str:
    status = state.status()
    logged = 0
    for name, peer_dir in sorted(facts.peer_states.items()):
        mine = _read(peer_dir / "rounds.csv")
        numbers = _rounds_numbers(mine)
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise _Failed(f"{name}'s rounds.csv: a round twice or out of order: {numbers}")
        for row in mine:
            hub_row = status.get(int(row["round"]))
            said = (row["kind"], row["status"])
            if hub_row is None or said != (hub_row["kind"], hub_row["status"]):
                raise _Failed(
                    f"{name}'s rounds.csv: round {row['round']} {' '.join(said)}, the hub says "
                    + (f"{hub_row['kind']} {hub_row['status']}" if hub_row else "nothing")
                )
        logged += len(mine)
    return (
        f"{len(facts.peer_states)} files, {logged} rows: no round twice, each of the kind and "
        "ended as the hub says (a peer logs only the rounds it saw end; it misses those it "
        "was down for)"
    )


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def replay_models(state: _State) -> tuple[dict[int, list[float]], list[float]]:
    """(the model each ok training round started from, the final model): zeros plus
    the deltas of updates.csv in file order, with float addition as the hub does it."""
    model = [0.0] * len(state.names)
    before: dict[int, list[float]] = {}
    rows = iter(state.updates)
    for r in state.trained():
        before[r] = list(model)
        model = [m + float(next(rows)["delta"]) for m in model]
    return before, model


def _replay(state: _State, facts: RunFacts) -> str:
    _, replayed = replay_models(state)
    committed = [float(row["value"]) for row in state.model]
    differ = [
        state.names[i]
        for i, (a, b) in enumerate(zip(replayed, committed, strict=True))
        if _bits(a) != _bits(b)
    ]
    if differ:
        raise _Failed(f"{len(differ)} parameters differ from the replay, first {differ[0]!r}")
    return (
        f"zeros + the {len(state.trained())} committed deltas, added in order, equal "
        f"global_model.csv in all {len(committed)} values, bit for bit"
    )


def _statistics(state: _State, facts: RunFacts) -> tuple[list[ColumnStats], str]:
    """stats.csv, once it is shown to be the pooled statistics of the training rows of
    `statistics_peers` of the peers (the statistics round's contributors), to within
    STATS_TOLERANCE of each feature's std; and which peers those are."""
    stats = [
        ColumnStats(row["column"], float(row["mean"]), float(row["std"]), row["note"])
        for row in state.stats
    ]
    if tuple(s.name for s in stats) != state.names[1:]:
        raise _Failed("stats.csv: not one row per feature of run.csv, in order")
    contributors = int(state.setting("statistics_peers"))
    rows = int(state.setting("statistics_rows"))
    first = state.round_log[0]
    source = (int(state.setting("statistics_round")), contributors)
    if source != (int(first["round"]), int(first["survivors"])):
        raise _Failed("run.csv: the statistics are not those of round 1's survivors")
    training = {
        name: split_holdout(read_dataset(path), HOLDOUT, HOLDOUT_SEED).train
        for name, path in facts.shards.items()
    }
    for subset in itertools.combinations(sorted(training), contributors):
        pooled = concat([training[p] for p in subset], "the contributors' training rows")
        if pooled.n_rows != rows:
            continue
        expected = column_stats(pooled, range(pooled.n_rows))
        if all(
            abs(got.mean - want.mean) <= STATS_TOLERANCE * want.std
            and abs(got.std - want.std) <= STATS_TOLERANCE * want.std
            for got, want in zip(stats, expected, strict=True)
        ):
            return stats, ", ".join(subset)
    raise _Failed(
        f"stats.csv is not the pooled statistics of the {rows} training rows of any "
        f"{contributors} of the peers"
    )


def _fedavg(state: _State, facts: RunFacts) -> str:
    hub = HubConfig()
    stats, contributors = _statistics(state, facts)
    data: dict[str, Dataset] = {
        name: standardize(split_holdout(read_dataset(path), HOLDOUT, HOLDOUT_SEED).train, stats)
        for name, path in facts.shards.items()
    }
    models, _ = replay_models(state)
    status = state.status()
    trained: dict[int, list[str]] = {}
    for row in state.clients:
        trained.setdefault(int(row["round"]), []).append(row["peer"])
    means: dict[int, list[float]] = {}
    index = 0
    for r in state.trained():
        means[r] = [float(row["mean"]) for row in state.updates[index : index + len(state.names)]]
        index += len(state.names)
    worst = 0.0
    for r in state.trained():
        n, s = int(status[r]["participants"]), int(status[r]["survivors"])
        # A training round that also carries scores uses the wide encoding: either
        # may be this round's, so the coarser one bounds the rounding.
        fp = min(
            (choose_encoding(n, hub, wide=wide) for wide in (False, True)), key=lambda e: e.scale
        )
        seed = TRAIN_SEED + r  # peers order each round's minibatches by --seed plus the round
        local: dict[str, tuple[int, list[float]]] = {}
        for peer in trained.get(r, []):
            ds = data[peer]
            # ...and cut them once per run by --seed alone.
            ts = make_training_set(ds, batch_size=BATCH_SIZE, class_weight="none", seed=TRAIN_SEED)
            params, _ = train(models[r], ts, epochs=LOCAL_EPOCHS, lr=LR, l2=0.0, seed=seed)
            delta = [p - m for p, m in zip(params, models[r], strict=True)]
            local[peer] = (min(ds.n_rows, fp.max_weight), fp.clip_vector(delta))
        best = None
        for subset in itertools.combinations(sorted(local), s):
            weight = sum(local[p][0] for p in subset)
            mean = [
                sum(local[p][0] * local[p][1][i] for p in subset) / weight
                for i in range(len(state.names))
            ]
            error = max(abs(a - b) for a, b in zip(mean, means[r], strict=True))
            # Rounding of s encodings, divided by the weight sum and scale, plus float slack.
            bound = 2 * (s * 0.5 / (weight * fp.scale) + (fp.clip + 1 / fp.scale) * 2.0**-50)
            if error <= bound and (best is None or error < best):
                best = error
        if best is None:
            raise _Failed(
                f"round {r}: no {s} of its peers {sorted(local)} average to the committed mean"
            )
        worst = max(worst, best)
    return (
        f"stats.csv is the pooled statistics of {contributors}'s training rows; "
        f"{len(state.trained())} rounds: the peers' training on their rows z-scored with it "
        "recomputed from the replayed model; a subset of `survivors` peers matches each mean "
        f"(worst error {worst:.2e}, within the fixed-point bound)"
    )


def _store_opens(state: _State, facts: RunFacts) -> str:
    try:
        store = HubStore.open(facts.hub_state, read_only=True)
    except StateError as exc:
        raise _Failed(f"HubStore.open: {exc}") from None
    if store.reconciled or store.committed_round != facts.last_round:
        raise _Failed(f"opened at round {store.committed_round}, repairs {store.reconciled}")
    return (
        f"HubStore.open (read-only) validated every file and replayed updates.csv: "
        f"round {facts.last_round}, nothing to repair"
    )


def _rss_flat(state: _State, facts: RunFacts) -> str:
    by_hub: dict[int, list[RssSample]] = {}
    for sample in facts.rss:
        by_hub.setdefault(sample.hub, []).append(sample)
    parts = []
    for hub, samples in sorted(by_hub.items()):
        first, last = samples[0], samples[-1]
        growth = last.kib - first.kib
        allowed = RSS_SLACK_KIB + RSS_SLACK_FRACTION * first.kib
        peak = max(x.kib for x in samples)
        parts.append(
            f"hub #{hub} {first.kib / 1024:.1f} -> {last.kib / 1024:.1f} MiB over rounds "
            f"{first.round}-{last.round} ({growth / 1024:+.1f}, peak {peak / 1024:.1f})"
        )
        if growth > allowed:
            raise _Failed(f"{parts[-1]}: grew by more than {allowed / 1024:.1f} MiB")
    if not parts:
        raise _Failed("no VmRSS sample was taken")
    return (
        "; ".join(parts)
        + f" (allowed: {RSS_SLACK_KIB // 1024} MiB + {RSS_SLACK_FRACTION:.0%} per process)"
    )


def _schedule(state: _State, facts: RunFacts) -> str:
    peers = [k for k in facts.kills if k.what != "hub"]
    hubs = [k for k in facts.kills if k.what == "hub"]
    if len(peers) != facts.planned_peer_kills or len(hubs) != facts.planned_hub_kills:
        raise _Failed(
            f"{len(peers)} peer kills and {len(hubs)} hub kills happened; the plan had "
            f"{facts.planned_peer_kills} and {facts.planned_hub_kills}"
        )
    windows = [
        (float(row["started_at"]), float(row["started_at"]) + float(row["duration_s"]))
        for row in state.round_log
    ]
    inside = sum(any(a <= k.at <= b for a, b in windows) for k in peers)
    text = ", ".join(f"{k.what.removeprefix('peer ')}@{k.round}" for k in facts.kills)
    return (
        f"{len(peers)} peer kills ({inside} inside a running round, the others between "
        f"rounds), {len(hubs)} hub kills; who@round in progress: {text}"
    )
