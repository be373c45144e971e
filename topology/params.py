"""Choosing the degree k and the Shamir threshold t for a round of n peers.

Model (Bell, Bonawitz, Gascón, Lepoint, Raykova, "Secure Single-Server
Aggregation with (Poly)Logarithmic Overhead", CCS 2020, whose random Harary
graph construction and parameter analysis this follows): an honest-but-curious
hub colludes with at most A = floor(gamma * n) corrupt peers, and at most
D = floor(delta * n) peers drop out. Both sets are fixed independently of the
round seed, so each peer's neighbourhood in the Harary graph of
`topology.graph` is a uniformly random k-subset of the other n-1 peers, and
the removed peers sit at uniformly random places on the cycle. The fractions
are read as the shortest decimal that round-trips the float (what the user
wrote), so 0.29 of 100 peers is 29, not the 28 that binary rounding would
give.

The shares of a peer's secrets are held by its k neighbours and by the peer
itself. Both conditions below count neighbours only: a peer that dropped
cannot contribute its own share, and an honest peer is never a corrupt holder
of its own.

Correctness (fails with probability at most 2^-correctness_bits): every
peer's secrets can be rebuilt from shares of surviving neighbours. With
Y ~ Hypergeometric(population n-1, marked D, draws k) the number of dropped
neighbours of a peer, we need P[k - Y < t] <= 2^-correctness_bits / n for
each peer; a union bound over the n peers gives the total.

Privacy (fails with probability at most 2^-security_bits, split evenly):
  (a) no peer has t or more corrupt neighbours. With
      X ~ Hypergeometric(n-1, A, k), require n * P[X >= t] <= 2^-(security_bits+1).
  (b) the graph of honest survivors is connected, so the hub learns only the
      sum over all of them. Removing a set from a Harary graph disconnects
      it only if the set contains two runs of k/2 consecutive cycle positions
      separated by at least one position on each side. There are
      n(n-k-1)/2 such pairs of runs; all k of their positions lie among the
      B = A + D removed peers with probability C(n-k, B-k) / C(n, B).
      The union bound n(n-k-1)/2 * C(n-k, B-k) / C(n, B) must be
      <= 2^-(security_bits+1).

Rule: scan even k = 2, 4, ... below n-1 and return the first k for which (b)
holds and some t >= 2 satisfies both (a) and correctness; t is the smallest
such value, because the smallest t leaves the largest margin for dropouts.
So a sparse result always has 2 <= t <= k: the k neighbours alone can reach
the threshold, and the protocol may, but need not, count the owner's share.
This is the rule of Google's federated-compute `graph_parameter_finder` for
an honest-but-curious server, computed here with the exact population n-1
for a peer's neighbours (it uses n), which can only raise k and t. With
gamma = delta = 0.05 it gives n = 100 -> (12, 6) and n = 1000 -> (30, 17),
as that finder does.

Every check only grows harder with A or D, so more corruption or dropout
never lowers k.

If no k < n-1 qualifies (small n, large fractions), the result is the
complete graph (SecAgg, k = n-1). There nothing is random: a peer has at most
A corrupt and at least n-1-D surviving other holders, so any t with
A < t <= n-1-D is safe and correct with certainty (failure figures -inf).
Within that range t is a majority rule with a margin for corruption,
t = floor((n + A) / 2) + 1, as Bonawitz et al. (CCS 2017) take t > n/2 and
federated-compute's CheckFullGraphParameters asks of a semi-malicious server:
any two sets of t of the n holders then overlap in more than A peers, so in
an honest one, and an honest peer never reveals both the mask seed b_u and
the key s_sk_u of one peer, so even a hub that lies about who dropped cannot
gather both. When n-1-D is below that, t = n-1-D, still safe against an
honest-but-curious hub. For n = 2 this gives t = 1 (the one other peer holds
the secret outright), which is all two peers allow. If A+1 > n-1-D no
threshold works and `ValueError` is raised.

The sparse rule assumes an honest-but-curious hub. Against a hub that lies
about dropouts the threshold must also exceed half the neighbourhood plus the
corrupt neighbours (federated-compute's semi-malicious finder raises t to
about (k + t_a) / 2, t_a the corrupt-neighbour bound); this rule does not.

Tail probabilities are computed from log-gamma in floating point. Comparisons
keep a margin of 1e-9 nats on the safe side, far above the rounding error of
these sums, so a borderline k is rejected rather than accepted by rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from .graph import N, PeerGraph, check_seed, complete_graph, harary_graph

__all__ = ["GraphParams", "choose_parameters"]

_LN2 = math.log(2)
_MARGIN = 1e-9  # nats, on the safe side of every bound
_MAX_BITS = 256
_SKIP = 50.0  # nats below the budget at which the far tail is bounded, not summed


@dataclass(frozen=True, slots=True)
class GraphParams:
    """Degree, threshold and the failure bounds they were chosen for.

    - `k`: degree; k = n-1 means the complete graph (SecAgg), any smaller k
      is even and means `harary_graph` (SecAgg+).
    - `t`: Shamir threshold per neighbourhood; the holders of a peer's shares
      are its k neighbours and itself, so 1 <= t <= k+1 (chosen values keep
      t <= k, reachable without the owner's share).
    - `n`: number of peers these were chosen for.
    - `max_corrupt`, `max_dropouts`: the counts A and D the bounds assume.
    - `log2_p_leak`: log2 of the bound on P[some peer has >= t corrupt
      neighbours].
    - `log2_p_disconnect`: log2 of the bound on P[the honest survivors'
      graph is disconnected].
    - `log2_p_incorrect`: log2 of the bound on P[some peer's secrets cannot
      be rebuilt from surviving neighbours].
    The log2 figures are -inf when the event is impossible. The constructor
    checks the ranges and raises `ValueError`.
    """

    k: int
    t: int
    n: int
    max_corrupt: int
    max_dropouts: int
    log2_p_leak: float
    log2_p_disconnect: float
    log2_p_incorrect: float

    def __post_init__(self) -> None:
        for name in ("k", "t", "n", "max_corrupt", "max_dropouts"):
            if type(getattr(self, name)) is not int:
                raise ValueError(f"{name} must be an int")
        for name in ("log2_p_leak", "log2_p_disconnect", "log2_p_incorrect"):
            value = getattr(self, name)
            if type(value) is not float or not value <= 0.0:
                raise ValueError(f"{name} must be a float <= 0 (a log2 probability)")
        n, k, t = self.n, self.k, self.t
        if n < 2 or not 1 <= k <= n - 1:
            raise ValueError(f"need n >= 2 and 1 <= k <= n-1, got n={n}, k={k}")
        if k < n - 1 and (k % 2 or k < 2):
            raise ValueError(f"a sparse degree must be even and >= 2, got k={k}")
        if not 1 <= t <= k + 1:
            raise ValueError(f"t must be in [1, k+1] = [1, {k + 1}], got {t}")
        if min(self.max_corrupt, self.max_dropouts) < 0 or (
            self.max_corrupt + self.max_dropouts >= n
        ):
            raise ValueError("max_corrupt and max_dropouts must be >= 0 and sum below n")

    @property
    def complete(self) -> bool:
        """Whether these parameters mean the complete graph (plain SecAgg)."""
        return self.k == self.n - 1

    @property
    def log2_p_insecure(self) -> float:
        """log2 of the bound on P[privacy fails] (leak or disconnection)."""
        return _log2_sum(self.log2_p_leak, self.log2_p_disconnect)

    def graph_for(self, peers: Iterable[N], seed: bytes) -> PeerGraph[N]:
        """The round's graph: complete if `complete`, else `harary_graph`.

        Raises `ValueError` if `peers` is not a valid roster of exactly `n`
        ids, or for a `seed` that is not 32 bytes (checked for the complete
        graph too, so a caller's mistake does not hide behind a small n).
        """
        if isinstance(peers, str | bytes | bytearray):
            raise ValueError("peers must be a collection of ids, not a single string")
        try:
            roster = tuple(peers)
        except TypeError:
            raise ValueError(f"peers must be iterable, not {type(peers).__name__}") from None
        if len(roster) != self.n:
            raise ValueError(f"parameters are for {self.n} peers, got {len(roster)}")
        if self.complete:
            check_seed(seed)
            return complete_graph(roster)
        return harary_graph(roster, self.k, seed)


def choose_parameters(
    n: int,
    *,
    dropout: float,
    corrupt: float,
    security_bits: int = 40,
    correctness_bits: int = 20,
) -> GraphParams:
    """Choose (k, t) for n peers by the rule in the module docstring.

    `dropout` (delta) and `corrupt` (gamma) are the tolerated fractions of
    peers that drop out and that collude with the hub. The result keeps the
    round correct except with probability <= 2^-correctness_bits and private
    except with probability <= 2^-security_bits; see `GraphParams` for the
    figures actually reached. Lands at or slightly above the reference finder
    (gamma = delta = 0.05: n = 100 -> (12, 6), n = 1000 -> (30, 17)).

    Raises `ValueError` unless n is an int >= 2, both fractions are int or
    float in [0, 1) with a sum below 1, the bit counts are ints in
    [1, 256], and some threshold is feasible at all.
    """
    if type(n) is not int or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    gamma = _fraction("corrupt", corrupt)
    delta = _fraction("dropout", dropout)
    if gamma + delta >= 1:
        raise ValueError("corrupt + dropout must be below 1")
    for name, bits in (("security_bits", security_bits), ("correctness_bits", correctness_bits)):
        if type(bits) is not int or not 1 <= bits <= _MAX_BITS:
            raise ValueError(f"{name} must be an int in [1, {_MAX_BITS}], got {bits!r}")

    corrupt_count = math.floor(gamma * n)
    dropout_count = math.floor(delta * n)
    log_n = math.log(n)
    # Natural-log budgets per peer (union bound over n) and for the cut event.
    secure_budget = -(security_bits + 1) * _LN2 - _MARGIN
    correct_budget = -correctness_bits * _LN2 - _MARGIN

    for k in range(2, n - 1, 2):
        log_cut = _log_p_disconnect(n, k, corrupt_count + dropout_count)
        if log_cut > secure_budget:
            continue
        leak = _Tail(n - 1, corrupt_count, k, secure_budget - log_n)
        loss = _Tail(n - 1, dropout_count, k, correct_budget - log_n)
        # Correctness fails when k - Y < t, i.e. when Y >= k - t + 1 neighbours drop.
        t_high = k + 1 - loss.safe
        t = max(leak.safe, 2)
        if t <= t_high:
            return GraphParams(
                k=k,
                t=t,
                n=n,
                max_corrupt=corrupt_count,
                max_dropouts=dropout_count,
                log2_p_leak=min(0.0, (log_n + leak.at(t)) / _LN2),
                log2_p_disconnect=log_cut / _LN2,
                log2_p_incorrect=min(0.0, (log_n + loss.at(k - t + 1)) / _LN2),
            )
    return _complete_parameters(n, corrupt_count, dropout_count)


def _complete_parameters(n: int, corrupt_count: int, dropout_count: int) -> GraphParams:
    lowest = corrupt_count + 1  # more than the corrupt holders
    highest = n - 1 - dropout_count  # surviving holders besides the owner
    if lowest > highest:
        raise ValueError(
            f"no threshold is safe and correct for {n} peers with {corrupt_count}"
            f" corrupt and {dropout_count} dropping out: need"
            f" {corrupt_count} + 1 <= {n} - 1 - {dropout_count}"
        )
    majority = (n + corrupt_count) // 2 + 1
    return GraphParams(
        k=n - 1,
        t=min(max(lowest, majority), highest),
        n=n,
        max_corrupt=corrupt_count,
        max_dropouts=dropout_count,
        log2_p_leak=-math.inf,
        log2_p_disconnect=-math.inf,
        log2_p_incorrect=-math.inf,
    )


def _fraction(name: str, value: float) -> Fraction:
    if type(value) not in (int, float):
        raise ValueError(f"{name} must be an int or float, not {type(value).__name__}")
    if not math.isfinite(value) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    # repr() is the shortest decimal that reads back as this float.
    return Fraction(repr(value))


def _log_comb(a: int, b: int) -> float:
    return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)


class _Tail:
    """Upper bounds on ln P[X >= x] for X ~ Hypergeometric(population, marked, draws).

    `safe` is the smallest x whose bound is <= `budget` (a negative ln
    probability); `at(x)` gives the bound for any x >= safe. Above the mode
    the mass function decreases, so the far upper tail is bounded by
    (terms left) * (first term) instead of being summed: that bound is kept
    `_SKIP` nats below the budget, where it cannot move `safe`, and it only
    ever overestimates (the safe direction).
    """

    __slots__ = ("_base", "_draws", "_high", "_marked", "_population", "_sums", "safe")

    def __init__(self, population: int, marked: int, draws: int, budget: float) -> None:
        self._population, self._marked, self._draws = population, marked, draws
        low = max(0, draws - (population - marked))
        self._high = high = min(draws, marked)
        self._base = (
            math.lgamma(marked + 1)
            + math.lgamma(population - marked + 1)
            - _log_comb(population, draws)
        )
        # Find where to start summing: the first x past the mode whose
        # unimodality bound is negligible; step sizes double to stay O(log).
        start, acc = high + 1, -math.inf
        x = max(low, (draws + 1) * (marked + 1) // (population + 2))
        step = 1
        while x <= high:
            bound = math.log(high - x + 1) + self._log_pmf(x)
            if bound <= budget - _SKIP:
                start, acc = x, bound
                break
            x, step = x + step, step * 2
        self._sums: dict[int, float] = {start: acc}
        x = start - 1
        while x >= low:
            acc = _log_add(acc, self._log_pmf(x))
            if acc > budget:
                break
            self._sums[x] = acc
            x -= 1
        self.safe = x + 1

    def at(self, x: int) -> float:
        """An upper bound on ln P[X >= x]; x must be >= `safe`."""
        if x < self.safe:
            raise ValueError(f"tail bound asked below the safe point {self.safe}")
        if x > self._high:
            return -math.inf
        cached = self._sums.get(x)
        if cached is not None:
            return cached
        # Beyond the summed range: the unimodality bound, as for `start`.
        return math.log(self._high - x + 1) + self._log_pmf(x)

    def _log_pmf(self, x: int) -> float:
        n, m, k = self._population, self._marked, self._draws
        return self._base - (
            math.lgamma(x + 1)
            + math.lgamma(m - x + 1)
            + math.lgamma(k - x + 1)
            + math.lgamma(n - m - k + x + 1)
        )


def _log_p_disconnect(n: int, k: int, removed: int) -> float:
    """ln of the union bound (b) in the module docstring; -inf if impossible."""
    if removed < k:
        return -math.inf
    pairs = math.log(n) + math.log(n - k - 1) - _LN2
    all_removed = (
        math.lgamma(removed + 1)
        - math.lgamma(removed - k + 1)
        + math.lgamma(n - k + 1)
        - math.lgamma(n + 1)
    )
    return pairs + all_removed


def _log_add(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _log2_sum(a: float, b: float) -> float:
    return _log_add(a * _LN2, b * _LN2) / _LN2
