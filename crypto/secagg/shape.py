"""How strong a round is: the hub chooses its shape, each peer checks it against its floor.

A round's shape is its graph degree k, Shamir threshold t, the survivors it
needs and the corruption it tolerates. The hub chooses it per round for the
dropout and corrupt fractions it is configured with (`choose_shape`); the
peers do not take its word for it. Each holds a `Floor`, the fractions it
assumes itself, and `Floor.check` refuses parameters weaker than the rule
of `topology.params` requires for them: a threshold or degree too low for
the corruption, too few survivors for the consistency check of an active
round, or a tolerated corruption below the peer's. With equal fractions,
what the hub chooses always passes.

Both read a fraction of n peers as at least one peer where a safe (k, t)
exists for that (with a handful of peers, 5% rounds down to nobody, and a
secure round that cannot lose a single peer is not what anyone wants), and
never less than what the fraction says.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

from fedd.crypto.errors import ParameterError
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.topology.params import GraphParams, check_parameters, choose_for_counts, counts

__all__ = ["DEFAULT_CORRUPT", "DEFAULT_DROPOUT", "Floor", "RoundShape", "choose_shape"]

DEFAULT_CORRUPT = 0.05  # the fraction of peers assumed to collude with the hub
DEFAULT_DROPOUT = 0.1  # the fraction of peers that may drop out of a round


class RoundShape(NamedTuple):
    """The graph degree, thresholds and tolerated corruption of one round."""

    k: int
    t: int
    min_survivors: int
    max_corrupt: int


def choose_shape(
    n: int,
    mode: Mode,
    *,
    dropout: float,
    corrupt: float,
    threshold: int | None = None,
    degree: int | None = None,
    active: bool = False,
) -> RoundShape:
    """The graph degree k, threshold t and minimum survivors for a round of `n` peers.

    Without explicit values, (k, t) follow `topology.choose_parameters` for
    the fractions (with `active`, its rule against a hub that lies about
    who dropped); SecAgg (FULL) always uses the complete graph and its
    majority threshold. t is never below 2: a single share must never
    reveal a secret. Explicit `degree` and `threshold` win, but must still
    be as strong as the rule requires. min_survivors is t, or with `active`
    the smallest value above (n + max_corrupt)/2. Raises ParameterError
    naming the value that cannot work.
    """
    if n < 2:
        raise ParameterError(f"a secure round needs at least 2 peers, not {n}")
    if mode is Mode.FULL and degree is not None and degree != n - 1:
        raise ParameterError("--degree applies to SecAgg+ (plus) only; SecAgg uses k = n-1")
    chosen = _choose(n, dropout, corrupt, active, complete=mode is Mode.FULL)
    a, d = chosen.max_corrupt, chosen.max_dropouts
    k, t = chosen.k, max(2, chosen.t)
    if degree is not None:
        if not (2 <= degree <= n - 1 and (degree % 2 == 0 or degree == n - 1)):
            raise ParameterError(f"degree must be even and in [2, {n - 1}], got {degree}")
        k = degree
        t = next((u for u in range(2, k + 2) if _safe(n, k, u, a, d, active)), k + 1)
    if threshold is not None:
        t = threshold
    if not 2 <= t <= k + 1:
        raise ParameterError(f"the Shamir threshold t must be in [2, k+1] = [2, {k + 1}], got {t}")
    min_survivors = max(t, _majority(n, a)) if active else t
    if min_survivors > n:
        raise ParameterError(
            f"an active round of {n} peers tolerating {a} corrupt needs more than "
            f"{(n + a) / 2:g} survivors; there are only {n} peers"
        )
    try:
        check_parameters(n, k, t, max_corrupt=a, max_dropouts=d, active=active)
    except ValueError as exc:
        raise ParameterError(f"unsafe for {n} peers: {exc}") from None
    return RoundShape(k, t, min_survivors, a)


@dataclass(frozen=True, slots=True)
class Floor:
    """The weakest rounds a peer takes part in: the corruption and dropout it assumes.

    Raises ParameterError unless both are fractions in [0, 1) with a sum below 1.
    """

    corrupt: float = DEFAULT_CORRUPT
    dropout: float = DEFAULT_DROPOUT

    def __post_init__(self) -> None:
        try:
            counts(2, dropout=self.dropout, corrupt=self.corrupt)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None

    def check(self, params: RoundParams) -> GraphParams:
        """The round's privacy figures, if `params` are at least as strong as this floor.

        Raises ParameterError saying which parameter is weaker than the floor
        requires for this round's n peers.
        """
        n = params.n
        full = params.mode is Mode.FULL
        floor = _choose(n, self.dropout, self.corrupt, params.active, complete=full)
        a, d = floor.max_corrupt, floor.max_dropouts
        try:
            figures = _figures(n, params.k, params.t, a, d, params.active)
        except ValueError as exc:
            raise ParameterError(self._weaker(str(exc))) from None
        if params.active and params.min_survivors < _majority(n, a):
            raise ParameterError(
                self._weaker(
                    f"min_survivors={params.min_survivors} must be above {(n + a) / 2:g} for "
                    f"{n} peers with {a} corrupt"
                )
            )
        if params.active and params.max_corrupt < a:
            raise ParameterError(
                self._weaker(f"the round tolerates {params.max_corrupt} corrupt peers, not {a}")
            )
        return figures

    def _weaker(self, why: str) -> str:
        return (
            f"the round's parameters are weaker than this peer accepts (--corrupt "
            f"{self.corrupt:g}, --dropout-budget {self.dropout:g}): {why}"
        )


# A peer checks every round's shape twice (before its job, and as its session
# starts), and a run's rounds share one shape: the tail probabilities behind
# the check are computed once, not again in every round.
@functools.lru_cache(maxsize=64)
def _figures(n: int, k: int, t: int, a: int, d: int, active: bool) -> GraphParams:
    return check_parameters(n, k, t, max_corrupt=a, max_dropouts=d, active=active)


@functools.lru_cache(maxsize=64)
def _choose(n: int, dropout: float, corrupt: float, active: bool, *, complete: bool) -> GraphParams:
    """The rule's (k, t) for the fractions, each at least one peer where that stays feasible."""
    try:
        a, d = counts(n, dropout=dropout, corrupt=corrupt)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    tried: list[str] = []
    for a_, d_ in dict.fromkeys(((max(a, 1), max(d, 1)), (a, d))):
        try:
            return choose_for_counts(
                n, max_corrupt=a_, max_dropouts=d_, active=active, complete=complete
            )
        except ValueError as exc:
            tried.append(str(exc))
    raise ParameterError(f"no safe (k, t) for {n} peers: {tried[-1]}")


def _safe(n: int, k: int, t: int, a: int, d: int, active: bool) -> bool:
    try:
        check_parameters(n, k, t, max_corrupt=a, max_dropouts=d, active=active)
    except ValueError:
        return False
    return True


def _majority(n: int, corrupt: int) -> int:
    """The fewest survivors above (n + corrupt)/2 (Bonawitz et al. 2017, Theorem 6.5)."""
    return math.floor((n + corrupt) / 2) + 1
