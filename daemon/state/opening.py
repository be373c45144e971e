"""What `HubStore.open` makes of a hub's state directory: read, check, repair.

`open_hub_state` reads every file, validates it (`daemon.state.reconcile`,
`daemon.state.replay`), and only when everything is valid repairs what a
crash left (rows of a round that never committed, a torn line, statistics
or optimizer state of a round that never committed, temporary files). The
rules are those of `daemon.state.store`'s theory of operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedd.daemon.errors import StateError
from fedd.daemon.state.columns import Table
from fedd.daemon.state.csvfile import read_table
from fedd.daemon.state.hubfiles import (
    CLIENT_PERF,
    HUB_TABLES,
    LOGS,
    METRICS_LOG,
    MODEL,
    OPTIMIZER,
    PEER_FILES,
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
    UpdateRow,
)
from fedd.daemon.state.reconcile import (
    check_order,
    committed_rows,
    committed_statistics,
    read_model,
    repair,
    repair_statistics,
    unique_peers,
)
from fedd.daemon.state.replay import repair_optimizer, replay
from fedd.daemon.state.runfile import RunFile, read_run
from fedd.daemon.state.statedir import open_state_dir, remove_leftovers
from fedd.daemon.state.statistics import STATS, Statistics, stats_row
from fedd.daemon.state.survivors import SURVIVORS, SurvivorRow
from fedd.learner.strategy import ServerState, Strategy

__all__ = ["STATE_TABLES", "Opened", "open_hub_state"]

_MAKERS: dict[Table, Any] = {
    ROUND_LOG: RoundRow,
    METRICS_LOG: MetricsRow,
    PERF_LOG: PerfRow.from_values,
    CLIENT_PERF: ClientPerfRow,
    UPDATES: UpdateRow,
    SURVIVORS: SurvivorRow,
}
# The files whose interrupted atomic writes `open` clears away.
STATE_TABLES = (*HUB_TABLES, STATS)


@dataclass
class Opened:
    """A validated, reconciled state directory: its run (None if fresh), the
    run's strategy, the last committed round (-1 for none) with its model,
    the strategy's state (None without a run), the statistics, each log's
    committed rows, the peers, what was repaired, and the models of the
    recent ok training rounds (`daemon.state.replay.RECENT_MODELS`)."""

    run: RunFile | None = None
    strategy: Strategy = field(default_factory=Strategy)
    committed_round: int = -1
    model: list[float] | None = None
    optimizer: ServerState | None = None
    statistics: Statistics | None = None
    kept: dict[Table, list[Any]] = field(default_factory=dict)
    peers: list[PeerRow] = field(default_factory=list)
    reconciled: list[str] = field(default_factory=list)
    models: dict[int, tuple[float, ...]] = field(default_factory=dict)


def open_hub_state(state_dir: Path, *, read_only: bool) -> Opened:
    """Read, validate and reconcile `state_dir` (see `HubStore.open`)."""
    names = open_state_dir(state_dir, read_only=read_only)
    foreign = sorted(names & set(PEER_FILES))
    if foreign:
        raise StateError(
            f"{state_dir}: holds {foreign[0]}, a peer's state; "
            "give the hub a state directory of its own"
        )
    run = read_table(state_dir / RUN.name, RUN, RUN.checked)
    # The model before the logs: `commit` appends to the logs before it replaces the
    # model, so even while a hub commits, a round seen in the model is in the logs.
    model = read_table(state_dir / MODEL.name, MODEL, MODEL.checked)
    logs = {table: read_table(state_dir / table.name, table, _MAKERS[table]) for table in LOGS}
    stats = read_table(state_dir / STATS.name, STATS, stats_row)
    peers = read_table(state_dir / PEERS.name, PEERS, PeerRow)
    optimizer = read_table(state_dir / OPTIMIZER.name, OPTIMIZER, OPTIMIZER.checked)
    opened = Opened(None if run is None else read_run(run))
    record = opened.run
    if record is None:
        ours = sorted(names & {table.name for table in (MODEL, *LOGS, STATS, OPTIMIZER)})
        if ours:
            raise StateError(
                f"{state_dir}: has {ours[0]} but no run.csv: not a hub state "
                "directory fedd can resume (move the files away or use another directory)"
            )
    else:
        try:
            opened.strategy = Strategy.from_settings(record.settings)
        except ValueError as exc:
            raise StateError(f"{state_dir / RUN.name}: the run's strategy: {exc}") from None
        if model is not None:
            opened.committed_round, opened.model = read_model(model, record.features)
    for table, contents in logs.items():
        check_order(table, contents)
    kept = committed_rows(state_dir, logs, opened.committed_round)
    opened.kept = kept
    if peers is not None:
        opened.peers = unique_peers(peers)
    if record is None:
        opened.reconciled = remove_leftovers(state_dir, names, STATE_TABLES, dry_run=read_only)
        return opened
    replayed = replay(
        state_dir,
        logs[UPDATES],
        optimizer,
        kept,
        features=record.features,
        model=opened.model,
        committed_round=opened.committed_round,
        strategy=opened.strategy,
    )
    opened.optimizer = replayed.state
    opened.models = replayed.models
    opened.statistics, leftover = committed_statistics(
        state_dir, record, stats, logs[ROUND_LOG], opened.committed_round
    )
    # Everything is valid: only now touch the disk.
    notes = opened.reconciled
    for table, contents in logs.items():
        notes += repair(state_dir / table.name, table, contents, kept[table], read_only=read_only)
    if leftover:
        notes += repair_statistics(state_dir, record, read_only=read_only)
    if replayed.debris:
        notes += repair_optimizer(state_dir, replayed, record.features, read_only=read_only)
    notes += remove_leftovers(state_dir, names, STATE_TABLES, dry_run=read_only)
    return opened
