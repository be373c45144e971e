"""How a finished round becomes state: decode its sum, apply it, commit the rows.

`Committer.commit` turns the running round's outcome into a `Commit`: an ok
statistics round stores the run's federated feature statistics, an ok
training round adds to the global model the step the run's strategy
(`learner.strategy`) makes of its weighted mean update, and every
round's scores of earlier models become metrics rows (`daemon.hub.evaluation`).
A sum that cannot be decoded, statistics no honest peers can give, or an
update outside the clipping range or the weight cap (`Layout.decode`) turn
the round into an aborted one: the model and the statistics stay as they
were, and the hub logs why.
The hub's own test CSV, when configured, scores each new model exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from fedd.crypto.errors import CryptoCheckFailed
from fedd.daemon.hub.config import HubConfig
from fedd.daemon.hub.evaluation import Evaluations
from fedd.daemon.hub.rounds import RoundOutcome, RunningRound
from fedd.daemon.state.commits import Commit
from fedd.daemon.state.hubfiles import ClientPerfRow, MetricsRow, PerfRow, RoundRow
from fedd.daemon.state.statistics import Statistics
from fedd.daemon.state.store import HubStore
from fedd.daemon.state.survivors import SurvivorRow
from fedd.daemon.transport.contribution import Decoded
from fedd.learner.dataset import Dataset
from fedd.learner.metrics import best_threshold, evaluate
from fedd.learner.model import predict_proba
from fedd.learner.moments import statistics
from fedd.learner.scaling import standardize
from fedd.learner.strategy import server_step

__all__ = ["Committer"]

log = logging.getLogger("fedd.hub")


class Committer:
    """Writes each finished round to the store."""

    def __init__(
        self, config: HubConfig, store: HubStore, evaluations: Evaluations, test: Dataset | None
    ) -> None:
        self.config = config
        self.store = store
        self.evaluations = evaluations
        self._test = test
        self._scaled_test: Dataset | None = None

    @property
    def has_test(self) -> bool:
        return self._test is not None

    def unscored_models(self) -> list[tuple[int, tuple[float, ...]]]:
        """The models of the recent ok training rounds after the newest one the peers
        scored, oldest first: a restarted hub asks for their scores again, since
        the queue of those waiting did not survive it."""
        metrics = self.store.metrics_rows()
        scored = max((m.round for m in metrics if m.source == "federated"), default=-1)
        return sorted((r, model) for r, model in self.store.models.items() if r > scored)

    def commit(
        self, current: RunningRound, model: list[float], now: float
    ) -> tuple[RoundOutcome, list[float], str]:
        """Commit `current`; returns its (possibly downgraded) outcome, the new model
        and the round's log line."""
        start = current.start
        number = current.number
        eval_started = time.perf_counter()
        outcome, decoded = _decode(current)
        stats = delta = mean = None
        notes: list[str] = []
        metrics: list[MetricsRow] = []
        if decoded is not None:
            notes += decoded.problems
            problem = ""
            if start.kind == "statistics":
                stats, problem = self._statistics(decoded, number, len(outcome.survivors))
            elif start.kind == "training":
                delta, problem = self._step(decoded, outcome)
            if problem:
                outcome = _aborted(outcome, problem)
            if delta is not None:
                mean = decoded.mean
                model = [m + d for m, d in zip(model, delta, strict=True)]
                metrics += self._score_test(number, model)
            for request, counts in zip(start.evals, decoded.scores, strict=True):
                result = self.evaluations.on_result(request, counts, number)
                if result.row is not None:
                    metrics.append(result.row)
                if result.note:
                    notes.append(result.note)
        if start.kind == "training" and outcome.status == "ok":
            self.evaluations.add(number, tuple(model))
        evaluate_s = time.perf_counter() - eval_started
        duration = now - current.started
        participants = len(outcome.participants)
        self.store.commit(
            Commit(
                round=RoundRow(
                    number,
                    start.kind,
                    start.mode,
                    current.started_at,
                    duration,
                    participants,
                    len(outcome.survivors),
                    participants - len(outcome.survivors),
                    outcome.status,
                    outcome.reason[:400],
                ),
                model=model,
                metrics=metrics,
                perf=PerfRow(
                    number,
                    duration,
                    time.process_time() - current.cpu_started,
                    outcome.stage_seconds,
                    evaluate_s,
                    current.bytes_in,
                    current.bytes_out,
                ),
                clients=[
                    ClientPerfRow(
                        number, peer, s.n_samples, s.train_s, s.cpu_s, current.upload.get(peer, 0)
                    )
                    for peer, s in sorted(current.stats.items())
                ],
                delta=delta,
                statistics=stats,
                mean=mean,
                control=decoded.control if mean is not None and decoded is not None else None,
                survivors=[SurvivorRow(number, peer) for peer in sorted(outcome.survivors)]
                if outcome.status == "ok"
                else [],
            )
        )
        for note in notes:
            log.warning("round %d: %s", number, note)
        return outcome, model, _summary(number, start.kind, outcome, duration, stats, metrics)

    def _step(self, decoded: Decoded, outcome: RoundOutcome) -> tuple[list[float] | None, str]:
        """The strategy's step for the round's mean (None, and why, if it has none)."""
        optimizer = self.store.optimizer
        if decoded.mean is None or optimizer is None:
            return None, "the round has no mean update"
        share = len(outcome.survivors) / max(len(outcome.participants), 1)  # as the replay
        try:
            step, _ = server_step(
                self.store.strategy, optimizer, decoded.mean, decoded.control, share
            )
        except ValueError as exc:
            return None, f"the aggregate is unusable: {exc}"
        return step, ""

    def _statistics(
        self, decoded: Decoded, number: int, peers: int
    ) -> tuple[Statistics | None, str]:
        moments = decoded.moments
        features = self.store.features
        if moments is None or features is None:
            return None, "the statistics sum is unusable"
        try:
            columns = statistics(moments, features)
            return Statistics(tuple(columns), number, peers, moments.rows, moments.positives), ""
        except ValueError as exc:
            return None, f"the statistics sum is unusable: {exc}"

    def _score_test(self, number: int, model: list[float]) -> list[MetricsRow]:
        """The scores of round `number`'s model on the hub's test CSV, if it has one."""
        if self._test is None or self.store.statistics is None:
            return []
        if self._scaled_test is None:
            self._scaled_test = standardize(self._test, self.store.statistics.columns)
        test = self._scaled_test
        labels = list(test.y)
        probs = predict_proba(model, test)
        threshold = self.config.decision_threshold
        m = evaluate(labels, probs, threshold)
        best_f1, best = best_threshold(labels, probs)
        row = MetricsRow(
            round=number,
            source="test",
            committed_in=number,
            peers=0,
            rows=m.rows,
            positives=m.positives,
            roc_auc=m.roc_auc,
            roc_auc_bound=0.0,
            pr_auc=m.pr_auc,
            pr_auc_bound=0.0,
            precision=m.precision,
            recall=m.recall,
            f1=m.f1,
            threshold=threshold,
            best_threshold=best,
            best_f1=best_f1,
            logloss=m.logloss,
        )
        return [row]


def _decode(current: RunningRound) -> tuple[RoundOutcome, Decoded | None]:
    """The round's outcome and its decoded sum; aborted if the sum cannot be used."""
    outcome = current.runner.outcome()
    if outcome.status != "ok" or outcome.total is None:
        return outcome, None
    started = time.perf_counter()
    try:
        decoded = current.start.layout.decode(outcome.total, len(outcome.survivors))
    except (ValueError, CryptoCheckFailed) as exc:
        return _aborted(outcome, f"cannot decode the aggregate: {exc}"), None
    finally:
        outcome.stage_seconds["decode"] = time.perf_counter() - started
    if decoded.refused:
        log.warning("round %d: %s", current.number, decoded.refused)
        return _aborted(outcome, decoded.refused), None
    return outcome, decoded


def _aborted(outcome: RoundOutcome, reason: str) -> RoundOutcome:
    return dataclasses.replace(outcome, status="aborted", reason=reason, total=None)


def _summary(
    number: int,
    kind: str,
    outcome: RoundOutcome,
    duration: float,
    stats: Statistics | None,
    metrics: list[MetricsRow],
) -> str:
    line = (
        f"round {number} {kind} {outcome.status}: {len(outcome.survivors)}/"
        f"{len(outcome.participants)} peers in {duration:.2f}s"
    )
    if stats is not None:
        line += f", statistics of {stats.rows} rows from {stats.peers} peers"
    for m in metrics:
        line += (
            f"; round {m.round} on {m.source} rows: roc_auc {m.roc_auc:.4f} "
            f"pr_auc {m.pr_auc:.4f} f1 {m.f1:.4f}"
        )
    if outcome.reason:
        line += f" ({outcome.reason})"
    return line
