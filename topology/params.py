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

Against a hub that lies about who dropped (`active`), which may withhold
the shares it forwards and declare any peer gone, three more conditions hold.
Let a be the corrupt-neighbour bound, the most corrupt neighbours any peer
has except with the probability (a) allows (so t > a already), and d the
dropped-neighbour bound of the correctness condition (so t <= k - d):
  (c) 2t > k + 1 + a: any two sets of t of a peer's k + 1 share holders have
      more than a members in common, so an honest one, which never reveals
      both of the peer's secrets. This is the semi-malicious bound of Bell et
      al. and of federated-compute's finder (t > (k + a)/2 there, whose
      holders are the k neighbours alone), counting the owner's own share.
  (d) t >= a + d + 2: a peer masks only when the holders of its shares that
      it does not mask against (itself, and neighbours whose shares never
      reached it), together with a corrupt ones, are fewer than t, so that
      no t of them unmask it while every peer it masks against is declared
      dropped (`crypto.secagg.peer`); this leaves d neighbours room to drop
      before masking.
The scan takes the smallest t meeting (a), (c) and (d) and the first k where
it is correct. On the complete graph a = A, (c) is t > (n + A)/2, Bonawitz
et al.'s majority with the corrupt margin, and t stays there even where
fewer than t peers can be expected to survive D dropouts: security first.

`check_parameters` states the same conditions as a floor: it raises for a
(k, t) that is weaker than they require for given A and D, so a peer can
refuse parameters a hub announces instead of trusting them.

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
from .tails import LN2, Tail, log2_sum, log_p_disconnect

__all__ = [
    "GraphParams",
    "check_parameters",
    "choose_for_counts",
    "choose_parameters",
    "counts",
]

_MARGIN = 1e-9  # nats, on the safe side of every bound
_MAX_BITS = 256


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
    - `corrupt_neighbours`: a, the most corrupt neighbours a peer has except
      with probability 2^log2_p_leak (A for the complete graph); t > a.
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
    corrupt_neighbours: int
    log2_p_leak: float
    log2_p_disconnect: float
    log2_p_incorrect: float

    def __post_init__(self) -> None:
        for name in ("k", "t", "n", "max_corrupt", "max_dropouts", "corrupt_neighbours"):
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
        if not 0 <= self.corrupt_neighbours <= min(self.max_corrupt, k) or t <= (
            self.corrupt_neighbours
        ):
            raise ValueError("corrupt_neighbours must be in [0, min(max_corrupt, k)] and below t")

    @property
    def complete(self) -> bool:
        """Whether these parameters mean the complete graph (plain SecAgg)."""
        return self.k == self.n - 1

    @property
    def log2_p_insecure(self) -> float:
        """log2 of the bound on P[privacy fails] (leak or disconnection)."""
        return log2_sum(self.log2_p_leak, self.log2_p_disconnect)

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
    active: bool = False,
) -> GraphParams:
    """Choose (k, t) for n peers by the rule in the module docstring.

    `dropout` (delta) and `corrupt` (gamma) are the tolerated fractions of
    peers that drop out and that collude with the hub; `active` adds the
    conditions against a hub that lies about who dropped. The result keeps
    the round correct except with probability <= 2^-correctness_bits and
    private except with probability <= 2^-security_bits; see `GraphParams`
    for the figures actually reached. Lands at or slightly above the
    reference finder (gamma = delta = 0.05: n = 100 -> (12, 6), n = 1000 ->
    (30, 17)).

    Raises `ValueError` unless n is an int >= 2, both fractions are int or
    float in [0, 1) with a sum below 1, the bit counts are ints in
    [1, 256], and some threshold is feasible at all.
    """
    if type(n) is not int or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    corrupt_count, dropout_count = counts(n, dropout=dropout, corrupt=corrupt)
    return choose_for_counts(
        n,
        max_corrupt=corrupt_count,
        max_dropouts=dropout_count,
        security_bits=security_bits,
        correctness_bits=correctness_bits,
        active=active,
    )


def counts(n: int, *, dropout: float, corrupt: float) -> tuple[int, int]:
    """(A, D): the numbers of corrupt and dropped peers the fractions mean for n peers.

    Raises `ValueError` as `choose_parameters` does for the fractions.
    """
    gamma = _fraction("corrupt", corrupt)
    delta = _fraction("dropout", dropout)
    if gamma + delta >= 1:
        raise ValueError("corrupt + dropout must be below 1")
    return math.floor(gamma * n), math.floor(delta * n)


def choose_for_counts(
    n: int,
    *,
    max_corrupt: int,
    max_dropouts: int,
    security_bits: int = 40,
    correctness_bits: int = 20,
    active: bool = False,
    complete: bool = False,
) -> GraphParams:
    """`choose_parameters` for A = max_corrupt and D = max_dropouts peers;
    with `complete`, the complete graph's threshold without trying sparse ones.

    Raises `ValueError` for counts that are not ints >= 0 with A + D < n, bit
    counts outside [1, 256], and when no threshold is feasible.
    """
    bounds = _Budgets(n, max_corrupt, max_dropouts, security_bits, correctness_bits)
    for k in range(2, 0 if complete else n - 1, 2):
        sparse = bounds.sparse(k)
        if sparse is None:
            continue
        leak, loss, log_cut = sparse
        a, d = leak.safe - 1, loss.safe - 1
        t = max(leak.safe, 2)
        if active:
            t = max(t, (k + 1 + a) // 2 + 1, a + d + 2)
        if t <= k - d:
            return bounds.params(k, t, leak, loss, log_cut)
    return bounds.complete(active)


def check_parameters(
    n: int,
    k: int,
    t: int,
    *,
    max_corrupt: int,
    max_dropouts: int,
    active: bool,
    security_bits: int = 40,
) -> GraphParams:
    """The figures of a given (k, t), if it is as strong as the rule requires.

    Privacy only: conditions (a) and (b), and with `active` (c), for A =
    max_corrupt and D = max_dropouts; whether (k, t) is also correct is the
    choosing party's business. Raises `ValueError` naming the condition that
    fails, and for arguments `choose_for_counts` or `GraphParams` refuse.
    """
    for name, value in (("k", k), ("t", t)):
        if type(value) is not int:
            raise ValueError(f"{name} must be an int")
    bounds = _Budgets(n, max_corrupt, max_dropouts, security_bits, 20)
    if k == n - 1:
        if t <= max_corrupt or (active and 2 * t <= n + max_corrupt):
            bound = (n + max_corrupt) / 2 if active else max_corrupt
            raise ValueError(
                f"threshold t={t} of the complete graph of {n} peers must be above "
                f"{bound:g} with {max_corrupt} corrupt"
            )
        return bounds.complete(active, t)
    sparse = bounds.sparse(k) if 2 <= k < n - 1 and k % 2 == 0 else None
    if sparse is None:
        raise ValueError(
            f"degree k={k} does not keep the honest survivors of {n} peers connected "
            f"with {max_corrupt} corrupt and {max_dropouts} dropping out"
        )
    leak, loss, log_cut = sparse
    a = leak.safe - 1
    if t <= a or (active and 2 * t <= k + 1 + a):
        bound = (k + 1 + a) / 2 if active else a
        raise ValueError(
            f"threshold t={t} must be above {bound:g} for degree k={k}: a peer may have "
            f"{a} corrupt neighbours among {n} peers with {max_corrupt} corrupt"
        )
    return bounds.params(k, t, leak, loss, log_cut)


class _Budgets:
    """The bounds of the module docstring for n peers, A corrupt and D dropping out."""

    __slots__ = ("_correct", "_log_n", "_secure", "a", "d", "n")

    def __init__(self, n: int, a: int, d: int, security_bits: int, correctness_bits: int) -> None:
        if type(n) is not int or n < 2:
            raise ValueError(f"n must be an int >= 2, got {n!r}")
        for name, count in (("max_corrupt", a), ("max_dropouts", d)):
            if type(count) is not int or count < 0:
                raise ValueError(f"{name} must be an int >= 0, got {count!r}")
        if a + d >= n:
            raise ValueError("corrupt + dropout must be below 1")
        for name, bits in (
            ("security_bits", security_bits),
            ("correctness_bits", correctness_bits),
        ):
            if type(bits) is not int or not 1 <= bits <= _MAX_BITS:
                raise ValueError(f"{name} must be an int in [1, {_MAX_BITS}], got {bits!r}")
        self.n, self.a, self.d = n, a, d
        self._log_n = math.log(n)
        # Natural-log budgets per peer (union bound over n) and for the cut event.
        self._secure = -(security_bits + 1) * LN2 - _MARGIN
        self._correct = -correctness_bits * LN2 - _MARGIN

    def sparse(self, k: int) -> tuple[Tail, Tail, float] | None:
        """(leak tail, loss tail, ln P[cut]) for degree k; None if (b) fails."""
        log_cut = log_p_disconnect(self.n, k, self.a + self.d)
        if log_cut > self._secure:
            return None
        leak = Tail(self.n - 1, self.a, k, self._secure - self._log_n)
        loss = Tail(self.n - 1, self.d, k, self._correct - self._log_n)
        return leak, loss, log_cut

    def params(self, k: int, t: int, leak: Tail, loss: Tail, log_cut: float) -> GraphParams:
        # Correctness fails when k - Y < t, i.e. when Y >= k - t + 1 neighbours drop.
        lost = k - t + 1
        return GraphParams(
            k=k,
            t=t,
            n=self.n,
            max_corrupt=self.a,
            max_dropouts=self.d,
            corrupt_neighbours=leak.safe - 1,
            log2_p_leak=min(0.0, (self._log_n + leak.at(t)) / LN2),
            log2_p_disconnect=log_cut / LN2,
            log2_p_incorrect=min(0.0, (self._log_n + loss.at(lost)) / LN2)
            if lost >= loss.safe
            else 0.0,
        )

    def complete(self, active: bool, t: int | None = None) -> GraphParams:
        """The complete graph, with threshold `t` or the rule's."""
        n, a, d = self.n, self.a, self.d
        lowest = a + 1  # more than the corrupt holders
        highest = n - 1 - d  # surviving holders besides the owner
        majority = (n + a) // 2 + 1
        if t is None:
            if active:
                t = max(lowest, majority)
            elif lowest > highest:
                raise ValueError(
                    f"no threshold is safe and correct for {n} peers with {a}"
                    f" corrupt and {d} dropping out: need {a} + 1 <= {n} - 1 - {d}"
                )
            else:
                t = min(max(lowest, majority), highest)
        return GraphParams(
            k=n - 1,
            t=t,
            n=n,
            max_corrupt=a,
            max_dropouts=d,
            corrupt_neighbours=a,
            log2_p_leak=-math.inf,
            log2_p_disconnect=-math.inf,
            log2_p_incorrect=-math.inf if t <= highest else 0.0,
        )


def _fraction(name: str, value: float) -> Fraction:
    if type(value) not in (int, float):
        raise ValueError(f"{name} must be an int or float, not {type(value).__name__}")
    if not math.isfinite(value) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    # repr() is the shortest decimal that reads back as this float.
    return Fraction(repr(value))
