"""Any valid run, of rounds of every kind, reads back from its files as it was committed."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fedd.daemon.state.commits import Commit
from fedd.daemon.state.csvfile import read_table
from fedd.daemon.state.hubfiles import (
    CLIENT_PERF,
    KINDS,
    METRIC_SOURCES,
    STAGES,
    UPDATES,
    ClientPerfRow,
    MetricsRow,
    PerfRow,
    RoundRow,
    UpdateRow,
)
from fedd.daemon.state.runfile import check_features
from fedd.daemon.state.statistics import Statistics
from fedd.daemon.state.store import HubStore
from fedd.daemon.state.survivors import SURVIVORS, SurvivorRow
from fedd.learner.scaling import ColumnStats
from fedd.learner.strategy import SETTING_KEYS
from tests.crypto._support import FAST


def _can_name_a_feature(name: str) -> bool:
    try:
        check_features((name,))
    except ValueError:
        return False
    return True


@FAST
@given(data=st.data())
def test_any_valid_rounds_read_back_identically(data: st.DataObject) -> None:
    seconds = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
    unit = st.floats(min_value=0, max_value=1, allow_nan=False)
    # Bounded so that five rounds of deltas cannot overflow the model.
    weight = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)
    count = st.integers(0, 2**63 - 1)
    text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30)
    rounds = sorted(data.draw(st.sets(st.integers(1, 2**31 - 1), min_size=1, max_size=5)))
    features = tuple(
        data.draw(st.lists(text.filter(_can_name_a_feature), min_size=1, max_size=4, unique=True))
    )
    commits = []
    model = [0.0] * (len(features) + 1)
    trained: list[int] = []
    scored: set[tuple[int, str]] = set()
    statistics: Statistics | None = None
    for r in rounds:
        kind = data.draw(st.sampled_from(KINDS))
        status = data.draw(st.sampled_from(["ok", "aborted"]))
        if kind == "statistics" and statistics is not None:
            status = "aborted"  # a run computes its statistics once
        ok = status == "ok"
        delta = None
        if ok and kind == "training":
            delta = data.draw(st.lists(weight, min_size=len(model), max_size=len(model)))
            model = [m + d for m, d in zip(model, delta, strict=True)]
        if ok and kind == "statistics":
            rows = data.draw(st.integers(1, 2**63 - 1))
            statistics = Statistics(
                tuple(
                    ColumnStats(
                        name, data.draw(weight), data.draw(seconds.filter(bool)), data.draw(text)
                    )
                    for name in features
                ),
                r,
                data.draw(st.integers(1, 2**63 - 1)),
                rows,
                data.draw(st.integers(0, rows)),
            )
        trained += [r] if kind == "training" else []
        fresh = [
            (t, source) for t in trained for source in METRIC_SOURCES if (t, source) not in scored
        ]
        chosen = (
            data.draw(st.lists(st.sampled_from(fresh), max_size=3, unique=True)) if fresh else []
        )
        scored.update(chosen)
        metrics = []
        for t, source in chosen:
            n = data.draw(count)
            metrics.append(
                MetricsRow(
                    t,
                    source,
                    r,
                    data.draw(count),
                    n,
                    data.draw(st.integers(0, n)),
                    *(data.draw(unit) for _ in range(10)),
                    data.draw(seconds),
                )
            )
        n = data.draw(st.integers(0, 50))
        peers = data.draw(
            st.lists(
                st.from_regex(r"[A-Za-z0-9.:+=_-]{1,12}", fullmatch=True), max_size=3, unique=True
            )
        )
        commits.append(
            Commit(
                RoundRow(
                    r,
                    kind,
                    data.draw(st.sampled_from(["off", "full", "plus"])),
                    data.draw(seconds),
                    data.draw(seconds),
                    n + 2,
                    n,
                    2,
                    status,
                    data.draw(text),
                ),
                model,
                metrics,
                PerfRow(
                    r,
                    data.draw(seconds),
                    data.draw(seconds),
                    data.draw(st.dictionaries(st.sampled_from(STAGES), seconds)),
                    data.draw(seconds),
                    data.draw(count),
                    data.draw(count),
                ),
                [
                    ClientPerfRow(
                        r,
                        p,
                        data.draw(count),
                        data.draw(seconds),
                        data.draw(seconds),
                        data.draw(count),
                    )
                    for p in peers
                ],
                delta,
                statistics if ok and kind == "statistics" else None,
                delta,
                survivors=[SurvivorRow(r, f"s{i}") for i in range(n if ok else 0)],
            )
        )
    run_settings = data.draw(
        st.dictionaries(
            text.filter(lambda s: s not in ("", "run_id", "created_at", "feature", *SETTING_KEYS)),
            text,
            max_size=3,
        ).filter(lambda d: not any(key.startswith("statistics_") for key in d))
    )
    with tempfile.TemporaryDirectory() as name:
        state_dir = Path(name)
        store = HubStore.open(state_dir)
        store.start("run-1", features, run_settings)
        for c in commits:
            store.commit(c)
        again = HubStore.open(state_dir)
        assert again.reconciled == []
        assert (again.features, again.settings) == (features, run_settings)
        assert again.model == list(commits[-1].model)  # float equality: -0.0 == 0.0, so also:
        assert [math.copysign(1, v) for v in again.model] == [
            math.copysign(1, v) for v in commits[-1].model
        ]
        assert (again.committed_round, again.statistics) == (rounds[-1], statistics)
        assert again.training_rounds == len(trained)
        assert again.metrics_rows() == [m for c in commits for m in c.metrics]
        scores = {(m.round, m.source): m for c in commits for m in c.metrics}
        assert again.recent_rounds(len(rounds)) == [
            (
                c.round,
                scores.get((c.round.round, "federated")) or scores.get((c.round.round, "test")),
                c.perf,
            )
            for c in commits
        ]
        clients = read_table(state_dir / "client_perf.csv", CLIENT_PERF, ClientPerfRow)
        assert clients is not None
        assert [row for _, row in clients.rows] == [x for c in commits for x in c.clients]
        survivors = read_table(state_dir / "survivors.csv", SURVIVORS, SurvivorRow)
        assert survivors is not None
        assert [row for _, row in survivors.rows] == [s for c in commits for s in c.survivors]
        for c in commits:
            for peer in ("s0", "s1"):
                held = c.round.status == "ok" and peer in {s.peer for s in c.survivors}
                assert again.included(c.round.round, peer) is held
        updates = read_table(state_dir / "updates.csv", UPDATES, UpdateRow)
        assert updates is not None
        assert [row.values() for _, row in updates.rows] == [
            (c.round.round, name, d, d, math.nan)
            for c in commits
            for name, d in zip(("bias", *features), c.delta or (), strict=False)
        ]
