"""The hub's state directory (default `state/hub`): one run, its committed rounds.

Files (CSV, UTF-8, header first; conventions in `daemon.state.csvfile`, the
columns in `daemon.state.hubfiles`, every column in docs/state-files.md):

    run.csv           run id, features, the hub's settings (its strategy among
                      them), where stats.csv came from (`daemon.state.runfile`)
    stats.csv         the run's feature statistics, from its ok statistics round
    global_model.csv  bias, then the features; `round` is the last committed round
    round_log.csv     one row per round: its kind, survivors, status
    metrics_log.csv   the scores of training round `round`'s model, on the peers'
                      held-out rows (`federated`) or the hub's test CSV (`test`),
                      written by the commit of `committed_in`; one per round and source
    perf_log.csv, client_perf.csv     where each round's time and bytes went
    updates.csv       per ok training round and parameter: the step it added to
                      the model, the mean update (and SCAFFOLD's mean control
                      variate change) the strategy made it of
    optimizer.csv     the strategy's state after the last ok training round
                      (`daemon.state.replay`); none for fedavg
    survivors.csv     per ok round, the peers whose vectors its sum holds
                      (`daemon.state.survivors`)
    peers.csv         the peers the hub has seen

Theory of operation. A round is of one kind: the statistics round computes
the run's feature statistics (once per run), a training round updates the
model, an evaluation round only scores models. The six logs are appended
(fsync of every file's rows, side by side); the others are replaced
atomically. `commit` appends a round's log rows first, then, for an ok
statistics round, writes stats.csv and run.csv with the statistics'
provenance, for an ok training round optimizer.csv, and rewrites
global_model.csv last: that rename is the commit point, so
`global_model.csv`'s round is, by definition, the last committed round.
Every round is committed with a model (unchanged but
by an ok training round), so every committed round has exactly one
round_log row and one perf_log row, and maybe client, metrics and survivor rows.

Scores travel late: the peers score a training round's model on their
held-out rows during later rounds, so its `federated` metrics row is written
by a later commit than its `test` row. A metrics row is therefore known by
(round, source), `round` naming a committed training round, and ordered in
the log by `committed_in`, the round whose commit wrote it.

The model is all zeros before the first round, and each ok training round
adds its delta, the step the run's strategy (run.csv) makes of the round's
mean, so replaying the means of updates.csv through the strategy gives its
deltas, and zeros plus the deltas, added in file order with float addition,
give global_model.csv, bit for bit. `commit` refuses a round that breaks
this, and `open` replays updates.csv and refuses state where it does not
hold: the model and optimizer.csv can be audited, or rebuilt as of any
round, from the updates alone.

A crash between the first write and the rename leaves rows written by a
round that never committed (a `round`, or a metrics row's `committed_in`,
above the committed one), possibly ending in a torn line, and maybe
stats.csv and run.csv's provenance of a statistics round that never
committed, or optimizer.csv of a training round that never committed. `open`
removes exactly those (atomic rewrites; run.csv's provenance before
stats.csv; optimizer.csv rewritten from the replay) and says so in
`reconciled`. Anything else that is not as `commit` leaves it (a committed
round without its rows, a row that is not ours, rows out of order, a score
of a round that trained no model, provenance without stats.csv, statistics
of other features, a delta that is not the strategy's step) is corruption:
`StateError` naming the file, the row (the header is row 1) and the column,
and nothing on disk is touched.

The rows are typed in `daemon.state.hubfiles`, run.csv's entries in
`daemon.state.runfile`, the statistics in `daemon.state.statistics`, and
what `open` checks and repairs in `daemon.state.opening`; `HubStore` is
what the hub and its readers use.
"""

from __future__ import annotations

import io
import math
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from operator import attrgetter
from pathlib import Path
from typing import Any

from fedd.daemon.errors import StateError
from fedd.daemon.state.columns import Table
from fedd.daemon.state.commits import Commit
from fedd.daemon.state.csvfile import appending, write_table
from fedd.daemon.state.hubfiles import (
    CLIENT_PERF,
    LOGS,
    METRICS_LOG,
    MODEL,
    OPTIMIZER,
    PEERS,
    PERF_LOG,
    ROUND_LOG,
    RUN,
    UPDATES,
    ClientPerfRow,
    MetricsRow,
    PeerRow,
    PerfRow,
    RoundRow,
)
from fedd.daemon.state.opening import open_hub_state
from fedd.daemon.state.replay import (
    RECENT_MODELS,
    check_next_model,
    optimizer_rows,
)
from fedd.daemon.state.runfile import run_entries
from fedd.daemon.state.statistics import STATS, Statistics
from fedd.daemon.state.survivors import SURVIVORS
from fedd.learner.strategy import ServerState, Strategy

__all__ = ["HISTORY", "HubStore"]

# Rounds a writing hub keeps in memory: the most `fedd status rounds --last` shows.
HISTORY = 10_000
# What peers.csv says of a peer but when it was last heard from.
_MEMBER = attrgetter("peer", "public_key", "first_seen", "shard", "status")


class HubStore:
    """The hub's state directory. Build it with `open`; one writer at a time.

    Attributes: `run_id` (None for a fresh directory), `created_at`,
    `settings`, `features` (None on a fresh directory until `start`), `model`
    (None before the first commit), `committed_round` (-1 before it),
    `training_rounds` (how many training rounds, ok or aborted, have
    committed), `statistics` (None until the statistics round commits),
    `strategy` (run.csv's), `optimizer` (its state after the committed
    rounds), `reconciled` (what `open` repaired, one line each, for the log),
    `models` (those of the last RECENT_MODELS ok training rounds, by round).
    """

    def __init__(self, state_dir: Path, *, read_only: bool) -> None:
        """Private: use `HubStore.open`."""
        self.state_dir = state_dir
        self.read_only = read_only
        self.run_id: str | None = None
        self.created_at: float | None = None
        self.settings: dict[str, str] = {}
        self.features: tuple[str, ...] | None = None
        self.model: list[float] | None = None
        self.committed_round = -1
        self.training_rounds = 0
        self.statistics: Statistics | None = None
        self.strategy = Strategy()
        self.optimizer: ServerState | None = None  # None until the features are known
        self.reconciled: list[str] = []
        self.models: dict[int, tuple[float, ...]] = {}
        self._rounds: list[RoundRow] = []
        # Keyed by (round, source); a dict keeps metrics_log.csv's order.
        self._metrics: dict[tuple[int, str], MetricsRow] = {}
        self._perf: dict[int, PerfRow] = {}
        self._clients: list[ClientPerfRow] = []
        self._survivors: dict[int, frozenset[str]] = {}  # of the ok rounds held
        self._peers: list[PeerRow] = []
        self._broken = ""

    @classmethod
    def open(cls, state_dir: Path, *, read_only: bool = False) -> HubStore:
        """Open (creating it, mode 0700, if missing) and fully validate `state_dir`.

        Then reconcile: drop log rows written by a round that never committed
        and a torn last line, remove stats.csv and run.csv's provenance of a
        statistics round that never committed, create logs missing after an
        interrupted `start`, and remove temporary files of interrupted atomic
        writes; each repair is a line in `reconciled`.

        With `read_only` the directory must exist and nothing is written:
        repairs apply only in memory (and are still listed), and the writing
        methods raise `io.UnsupportedOperation`. That is how a reader, such as
        a report, opens the directory of a running hub.

        Raises `StateError` (naming file, row and column) for corrupt or
        foreign state, before anything is written; `ConfigError` when the
        directory cannot be created, read or written.
        """
        store = cls(Path(state_dir), read_only=read_only)
        store._load()
        return store

    def _path(self, table: Table) -> Path:
        return self.state_dir / table.name

    # --- opening ------------------------------------------------------------------

    def _load(self) -> None:
        opened = open_hub_state(self.state_dir, read_only=self.read_only)
        if opened.run is not None:
            run = opened.run
            self.run_id, self.created_at = run.run_id, run.created_at
            self.features, self.settings = run.features, run.settings
        self.strategy, self.optimizer = opened.strategy, opened.optimizer
        self.committed_round, self.model = opened.committed_round, opened.model
        self.statistics, self._peers = opened.statistics, opened.peers
        self.reconciled, self.models = opened.reconciled, opened.models
        self._rounds = opened.kept[ROUND_LOG]
        self.training_rounds = sum(row.kind == "training" for row in self._rounds)
        self._metrics = {(row.round, row.source): row for row in opened.kept[METRICS_LOG]}
        self._perf = {row.round: row for row in opened.kept[PERF_LOG]}
        self._clients = opened.kept[CLIENT_PERF]
        for row in opened.kept[SURVIVORS]:
            self._survivors[row.round] = self._survivors.get(row.round, frozenset()) | {row.peer}
        self._trim()

    def _trim(self) -> None:
        """A writing hub keeps the last HISTORY rounds in memory (what status can ask
        for), so a hub running forever does not grow; a read-only reader keeps all."""
        if self.read_only or len(self._rounds) <= HISTORY:
            return
        self._rounds = self._rounds[-HISTORY:]
        first = self._rounds[0].round
        self._metrics = {key: row for key, row in self._metrics.items() if row.round >= first}
        self._perf = {r: row for r, row in self._perf.items() if r >= first}
        self._clients = [row for row in self._clients if row.round >= first]
        self._survivors = {r: peers for r, peers in self._survivors.items() if r >= first}

    # --- writing ------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise io.UnsupportedOperation(f"{self.state_dir} was opened read-only")

    def start(self, run_id: str, features: tuple[str, ...], settings: Mapping[str, str]) -> None:
        """Begin a run in a fresh directory: write run.csv, then the empty logs.

        Raises `StateError` if the directory already holds a run; `ValueError`
        for a bad run id, feature list (empty, a duplicate, `bias`) or setting
        (a reserved key, not a string, a control character, a strategy setting
        `Strategy.from_settings` refuses); `ConfigError` if it cannot write.
        """
        self._writable()
        if self.run_id is not None:
            raise StateError(
                f"{self.state_dir}: already holds run {self.run_id!r}; "
                "resume it, or start a new run in another state directory"
            )
        features = tuple(features)
        created_at = time.time()
        entries = run_entries(run_id, created_at, features, settings)
        strategy = Strategy.from_settings(settings)
        # run.csv first: logs without it would make the directory unusable, while
        # run.csv without logs is an interrupted start that `open` completes.
        write_table(self._path(RUN), RUN, entries)
        for table in LOGS:
            write_table(self._path(table), table, [])
        self.run_id, self.created_at, self.features = run_id, created_at, features
        self.settings = dict(settings)
        self.strategy = strategy
        self.optimizer = ServerState.initial(strategy, len(features) + 1)

    def commit(self, commit: Commit) -> None:
        """Record one finished or aborted round; the model's rewrite is the commit point.

        Appends to round_log, metrics_log (when `commit.metrics`), perf_log,
        client_perf, updates (when `commit.delta`) and survivors, fsyncing them all; for a
        statistics commit, replaces stats.csv and then run.csv (with the
        statistics' provenance); for a delta of a strategy that keeps state,
        replaces optimizer.csv; then replaces global_model.csv. Afterwards
        the attributes reflect the commit.

        Raises `ValueError`, before writing anything, if no run was started,
        the round is not after the last committed one, the model's length
        is not 1 + len(features), `commit.delta` is not the strategy's step
        of `commit.mean` or the model not the previous one (zeros before the
        first commit) plus it, bit for bit (unchanged without a delta), a
        metrics row scores no committed training round (of
        the last HISTORY rounds, or this one if it trains) or one already
        scored from its source, or the statistics are not of the run's
        features or not its first. `ConfigError` if a write fails: the
        files may then hold rows of this round, so the store refuses further
        commits with `StateError`; opening the directory again reconciles it.
        """
        self._writable()
        if self._broken:
            raise StateError(
                f"{self.state_dir}: an earlier commit failed midway ({self._broken}); "
                "open the state directory again (restart the hub) to reconcile it"
            )
        if self.features is None or self.optimizer is None:
            raise ValueError("start() the run before committing rounds")
        number = commit.round.round
        if number <= self.committed_round:
            raise ValueError(
                f"round {number} is not after the last committed round {self.committed_round}"
            )
        names = ("bias", *self.features)
        optimizer = check_next_model(commit, self.model, names, self.strategy, self.optimizer)
        self._check_scores(commit)
        rewrites = self._rewrites(commit, names, optimizer)
        try:
            appends: list[tuple[Table, list[Any]]] = [(ROUND_LOG, [commit.round.values()])]
            if commit.metrics:
                appends.append((METRICS_LOG, [row.values() for row in commit.metrics]))
            appends.append((PERF_LOG, [commit.perf.values()]))
            if commit.clients:
                appends.append((CLIENT_PERF, [client.values() for client in commit.clients]))
            if commit.delta is not None and commit.mean is not None:
                controls = commit.control or [math.nan] * len(names)
                columns = zip(names, commit.delta, commit.mean, controls, strict=True)
                appends.append((UPDATES, [(number, *c) for c in columns]))
            if commit.survivors:
                appends.append((SURVIVORS, [row.values() for row in commit.survivors]))
            # The rows are fsynced with the new model, before its rename.
            with appending([(self._path(table), table, rows) for table, rows in appends]) as sync:
                for table, rewritten in rewrites:
                    write_table(self._path(table), table, rewritten)
                params = [(number, n, v) for n, v in zip(names, commit.model, strict=True)]
                write_table(self._path(MODEL), MODEL, params, sync=sync)
        except BaseException as exc:
            self._broken = f"round {number}: {exc}"
            raise
        self.committed_round = number
        self.model = list(commit.model)
        if commit.delta is not None:
            self.models[number] = tuple(commit.model)
            if len(self.models) > RECENT_MODELS:
                del self.models[min(self.models)]
        self.optimizer = optimizer
        self.training_rounds += commit.round.kind == "training"
        self.statistics = commit.statistics or self.statistics
        self._rounds.append(commit.round)
        self._metrics.update(((row.round, row.source), row) for row in commit.metrics)
        self._perf[number] = commit.perf
        self._clients.extend(commit.clients)
        if commit.survivors:
            self._survivors[number] = frozenset(row.peer for row in commit.survivors)
        self._trim()

    def _rewrites(
        self, commit: Commit, names: tuple[str, ...], optimizer: ServerState
    ) -> list[tuple[Table, list[Any]]]:
        """The files `commit` replaces before the model; ValueError for statistics
        that are not the run's first, or not of its features."""
        if commit.delta is not None and self.strategy.keeps_state:
            return [(OPTIMIZER, optimizer_rows(commit.round.round, names, optimizer))]
        if commit.statistics is None or self.run_id is None or self.created_at is None:
            return []
        if self.statistics is not None:
            raise ValueError(
                f"the run's statistics committed in round {self.statistics.round}: "
                "a run computes them once"
            )
        if tuple(stat.name for stat in commit.statistics.columns) != names[1:]:
            raise ValueError("the statistics are not of the run's features, in order")
        entries = run_entries(
            self.run_id, self.created_at, names[1:], self.settings, commit.statistics
        )
        # stats.csv before run.csv: without its provenance, `open` knows it never committed.
        return [(STATS, commit.statistics.values()), (RUN, entries)]

    def _check_scores(self, commit: Commit) -> None:
        """ValueError unless each metrics row of `commit` is the first from its source
        for the model of a training round: this one, or one the store holds."""
        for row in commit.metrics:
            kind = commit.round.kind
            if row.round != commit.round.round:
                scored = self.round_row(row.round)
                kind = scored.kind if scored is not None else ""
            if kind != "training":
                what = f"of kind {kind!r}" if kind else "not a committed round the store holds"
                raise ValueError(
                    f"metrics of round {row.round}, which is {what}: only training rounds "
                    "make models to score"
                )
            if (row.round, row.source) in self._metrics:
                raise ValueError(f"round {row.round}'s model is already scored by {row.source!r}")

    def save_peers(self, rows: Iterable[PeerRow], *, stopping: bool = False) -> None:
        """Replace peers.csv with `rows`, atomically, unless only `last_seen` changed
        (it moves with every message: it waits for the next other change) and the
        hub is not `stopping`. Allowed before `start`. Raises `ValueError` if a
        peer id appears twice, `ConfigError` if it cannot write."""
        self._writable()
        peers = list(rows)
        ids = [row.peer for row in peers]
        if len(set(ids)) != len(ids):
            raise ValueError("a peer id appears twice")
        if not stopping and list(map(_MEMBER, peers)) == list(map(_MEMBER, self._peers)):
            return
        write_table(self._path(PEERS), PEERS, [row.values() for row in peers])
        self._peers = peers

    # --- reading ------------------------------------------------------------------

    def load_peers(self) -> list[PeerRow]:
        """The peers of the last `save_peers` that wrote, or of peers.csv when opened."""
        return list(self._peers)

    def recent_rounds(self, last: int) -> list[tuple[RoundRow, MetricsRow | None, PerfRow | None]]:
        """The last `last` committed rounds (at most HISTORY for a writing store),
        oldest first, each with the scores of its model (the `federated` row,
        else the `test` row, else None: always None for a round that trained no
        model) and its perf row."""
        if type(last) is not int or last < 0:
            raise ValueError("last must be a non-negative integer")
        rounds = self._rounds[-last:] if last else []
        return [(r, self._scores(r.round), self._perf.get(r.round)) for r in rounds]

    def _scores(self, number: int) -> MetricsRow | None:
        return self._metrics.get((number, "federated")) or self._metrics.get((number, "test"))

    def metrics_rows(self) -> list[MetricsRow]:
        """The committed metrics rows in metrics_log.csv's order (all of them when
        opened read-only, as `fedd report` does; else those of the rounds held)."""
        return list(self._metrics.values())

    def round_row(self, number: int) -> RoundRow | None:
        """Committed round `number`'s round_log row, if the store holds it (a writing
        store holds the last HISTORY rounds)."""
        index = bisect_left(self._rounds, number, key=attrgetter("round"))
        held = index < len(self._rounds) and self._rounds[index].round == number
        return self._rounds[index] if held else None

    def included(self, number: int, peer: str) -> bool | None:
        """Whether committed round `number`'s sum holds `peer`'s vector; None for a
        round the store does not hold (`round_row`) or whose survivors it does not
        know (committed before the directory had survivors.csv)."""
        row = self.round_row(number)
        if row is None:
            return None
        if row.status != "ok":
            return False
        peers = self._survivors.get(number)
        if peers is None:
            return False if row.survivors == 0 else None
        return peer in peers

    def survivor_sets(self) -> dict[int, frozenset[str]]:
        """The peers whose vectors each committed ok round's sum holds, by round (all
        of them when opened read-only); a round committed before the directory
        had survivors.csv is missing."""
        return dict(self._survivors)

    def client_rows(self) -> list[ClientPerfRow]:
        """The committed rounds' client_perf rows, oldest round first (all of them
        when opened read-only, as `fedd report` does)."""
        return list(self._clients)
