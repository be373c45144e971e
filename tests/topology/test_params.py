"""choose_parameters: reference points, monotonicity, exact re-derivation, errors."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fedd.topology import (
    GraphParams,
    check_parameters,
    choose_parameters,
    complete_graph,
    counts,
    harary_graph,
)

SEED = bytes(range(32))

# Figures of Google's federated-compute `graph_parameter_finder` (its test
# table, honest-but-curious server, 40 security and 20 correctness bits):
# (n, corrupt, dropout) -> (k, t).
REFERENCE = {
    (100, 0.05, 0.05): (12, 6),
    (1000, 0.05, 0.05): (30, 17),
    (100, 0.33, 0.33): (68, 34),
    (1000, 0.33, 0.33): (286, 150),
    (10000, 0.33, 0.33): (422, 221),
    (100, 0.05, 0.33): (28, 6),
    (1000, 0.05, 0.33): (72, 24),
    (10000, 0.05, 0.33): (86, 29),
    (100, 0.33, 0.05): (34, 29),
    (1000, 0.33, 0.05): (78, 60),
    (10000, 0.33, 0.05): (92, 70),
    (1000, 0.45, 0.45): (822, 417),
}


@pytest.mark.parametrize(("case", "expected"), REFERENCE.items())
def test_lands_near_the_reference_finder(
    case: tuple[int, float, float], expected: tuple[int, int]
) -> None:
    n, corrupt, dropout = case
    params = choose_parameters(n, corrupt=corrupt, dropout=dropout)
    ref_k, ref_t = expected
    # Same rule, with the exact population n-1 for neighbourhoods: never
    # sparser than the reference, and within 1% (plus one even step) of it.
    assert ref_k <= params.k <= ref_k * 1.01 + 2
    assert abs(params.t - ref_t) <= 0.01 * ref_t + 1


def test_headline_reference_points_exactly() -> None:
    p100 = choose_parameters(100, dropout=0.05, corrupt=0.05)
    p1000 = choose_parameters(1000, dropout=0.05, corrupt=0.05)
    assert (p100.k, p100.t) == (12, 6)
    assert (p1000.k, p1000.t) == (30, 17)
    assert (p1000.max_corrupt, p1000.max_dropouts) == (50, 50)


fractions = st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4])


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 1500),
    corrupt=fractions,
    dropout=fractions,
    more_corrupt=fractions,
    more_dropout=fractions,
)
def test_more_dropout_or_corruption_never_lowers_k(
    n: int, corrupt: float, dropout: float, more_corrupt: float, more_dropout: float
) -> None:
    more_corrupt, more_dropout = max(corrupt, more_corrupt), max(dropout, more_dropout)
    try:
        base = choose_parameters(n, corrupt=corrupt, dropout=dropout)
    except ValueError:
        assume(False)  # infeasible to begin with
        raise
    for c, d in ((more_corrupt, dropout), (corrupt, more_dropout), (more_corrupt, more_dropout)):
        try:
            harder = choose_parameters(n, corrupt=c, dropout=d)
        except ValueError:
            continue  # no threshold at all: the hardest possible outcome
        assert harder.k >= base.k, (c, d, harder, base)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 3000),
    corrupt=st.floats(0, 0.45),
    dropout=st.floats(0, 0.45),
    security_bits=st.integers(10, 80),
    correctness_bits=st.integers(5, 40),
)
def test_results_are_consistent_and_meet_their_bounds(
    n: int, corrupt: float, dropout: float, security_bits: int, correctness_bits: int
) -> None:
    try:
        params = choose_parameters(
            n,
            corrupt=corrupt,
            dropout=dropout,
            security_bits=security_bits,
            correctness_bits=correctness_bits,
        )
    except ValueError as exc:
        assert "no threshold" in str(exc)
        a, d = _counts(n, corrupt, dropout)
        assert a + 1 > n - 1 - d
        return
    assert params.n == n
    assert 1 <= params.t <= params.k + 1
    assert params.k == n - 1 or (params.k % 2 == 0 and 2 <= params.k <= n - 2)
    assert params.complete == (params.k == n - 1)
    assert params.t > params.max_corrupt or not params.complete
    assert params.log2_p_insecure <= -security_bits
    assert params.log2_p_incorrect <= -correctness_bits
    assert (params.max_corrupt, params.max_dropouts) == _counts(n, corrupt, dropout)


def _counts(n: int, corrupt: float, dropout: float) -> tuple[int, int]:
    return (
        math.floor(Fraction(repr(corrupt)) * n),
        math.floor(Fraction(repr(dropout)) * n),
    )


# --- an exact re-derivation of the rule ------------------------------------------


def _hyper_tail(population: int, marked: int, draws: int, at_least: int) -> Fraction:
    total = math.comb(population, draws)
    hits = sum(
        math.comb(marked, x) * math.comb(population - marked, draws - x)
        for x in range(max(at_least, 0), min(draws, marked) + 1)
    )
    return Fraction(hits, total)


def exact_rule(n: int, corrupt: float, dropout: float, sec: int, cor: int) -> tuple[int, int]:
    """The module docstring's rule in rational arithmetic, without shortcuts."""
    a, d = _counts(n, corrupt, dropout)
    secure = Fraction(1, 2 ** (sec + 1))
    correct = Fraction(1, 2**cor)
    for k in range(2, n - 1, 2):
        removed = a + d
        if removed >= k:
            cut = Fraction(n * (n - k - 1), 2) * Fraction(
                math.comb(n - k, removed - k), math.comb(n, removed)
            )
            if cut > secure:
                continue
        t_low = next(t for t in range(k + 2) if n * _hyper_tail(n - 1, a, k, t) <= secure)
        y_safe = next(y for y in range(k + 2) if n * _hyper_tail(n - 1, d, k, y) <= correct)
        t = max(t_low, 2)
        if t <= k + 1 - y_safe:
            return k, t
    lowest, highest = a + 1, n - 1 - d
    if lowest > highest:
        raise ValueError("no threshold")
    return n - 1, min(max(lowest, (n + a) // 2 + 1), highest)


@pytest.mark.parametrize(
    ("n", "corrupt", "dropout", "sec", "cor"),
    [
        (n, c, d, sec, cor)
        for n in (2, 3, 4, 5, 8, 13, 30, 64, 101, 250)
        for c, d in ((0.0, 0.0), (0.05, 0.05), (0.1, 0.3), (0.3, 0.1), (0.25, 0.25), (0.45, 0.45))
        for sec, cor in ((40, 20), (20, 10))
    ],
)
def test_agrees_with_exact_rational_rule(
    n: int, corrupt: float, dropout: float, sec: int, cor: int
) -> None:
    try:
        expected = exact_rule(n, corrupt, dropout, sec, cor)
    except ValueError:
        with pytest.raises(ValueError, match="no threshold"):
            choose_parameters(
                n, corrupt=corrupt, dropout=dropout, security_bits=sec, correctness_bits=cor
            )
        return
    params = choose_parameters(
        n, corrupt=corrupt, dropout=dropout, security_bits=sec, correctness_bits=cor
    )
    assert (params.k, params.t) == expected
    if not params.complete:
        a, d = params.max_corrupt, params.max_dropouts
        leak = n * _hyper_tail(n - 1, a, params.k, params.t)
        loss = n * _hyper_tail(n - 1, d, params.k, params.k - params.t + 1)
        _close_log2(params.log2_p_leak, leak)
        _close_log2(params.log2_p_incorrect, loss)


def _close_log2(reported: float, exact: Fraction) -> None:
    if exact == 0:
        assert reported == -math.inf
    else:
        exact_log2 = math.log2(exact.numerator) - math.log2(exact.denominator)
        assert exact_log2 - 1e-6 <= reported <= exact_log2 + 1e-6


# --- the complete-graph fallback --------------------------------------------------


@pytest.mark.parametrize(
    ("n", "corrupt", "dropout", "t"),
    [
        (2, 0.0, 0.0, 1),  # both must answer; the majority rule would ask for 2
        (3, 0.0, 0.0, 2),  # majority of 3
        (3, 0.34, 0.0, 2),  # one corrupt: 2 > 1, still correct with no dropouts
        (4, 0.25, 0.25, 2),  # majority 3 exceeds the 2 surviving others
        (5, 0.4, 0.0, 4),  # A = 2, D = 0: majority (5 + 2) // 2 + 1 = 4 = n - 1
        (7, 0.3, 0.3, 4),  # A = 2, D = 2: majority 5 exceeds the 4 surviving others
        (10, 0.45, 0.45, 5),  # A = 4, D = 4: 5 is both the floor and the ceiling
    ],
)
def test_complete_graph_threshold(n: int, corrupt: float, dropout: float, t: int) -> None:
    params = choose_parameters(n, corrupt=corrupt, dropout=dropout)
    assert params.complete
    assert params.k == n - 1
    assert params.t == t
    assert params.log2_p_leak == params.log2_p_disconnect == params.log2_p_incorrect == -math.inf


@pytest.mark.parametrize(("n", "corrupt", "dropout"), [(2, 0.5, 0.0), (2, 0.0, 0.5), (5, 0.4, 0.4)])
def test_no_threshold_is_an_error(n: int, corrupt: float, dropout: float) -> None:
    with pytest.raises(ValueError, match="no threshold is safe and correct"):
        choose_parameters(n, corrupt=corrupt, dropout=dropout)


def test_fractions_are_read_as_written() -> None:
    # 0.29 * 100 is 28.999999999999996 in binary floating point.
    assert 0.29 * 100 < 29
    assert choose_parameters(100, corrupt=0.29, dropout=0.0).max_corrupt == 29
    assert choose_parameters(100, corrupt=0.0, dropout=0.29).max_dropouts == 29
    assert choose_parameters(100, corrupt=0, dropout=0).max_corrupt == 0


# --- GraphParams ----------------------------------------------------------------------


def test_graph_for_builds_the_matching_graph() -> None:
    roster = [f"p{i}" for i in range(100)]
    sparse = choose_parameters(100, corrupt=0.05, dropout=0.05)
    graph = sparse.graph_for(reversed(roster), SEED)
    assert graph == harary_graph(roster, sparse.k, SEED)
    assert graph.degree == sparse.k
    dense = choose_parameters(5, corrupt=0.4, dropout=0.0)
    assert dense.complete
    assert dense.graph_for(roster[:5], SEED) == complete_graph(roster[:5])


@pytest.mark.parametrize(
    ("peers", "seed", "match"),
    [
        ([f"p{i}" for i in range(4)], SEED, "for 5 peers, got 4"),
        ("abcde", SEED, "single string"),
        (5, SEED, "iterable"),
        ([f"p{i}" for i in range(5)], bytes(31), "32 bytes"),
        (["p0", "p1", "p2", "p3", "p0"], SEED, "duplicate"),
    ],
)
def test_graph_for_rejects_bad_rosters(peers: object, seed: bytes, match: str) -> None:
    dense = choose_parameters(5, corrupt=0.4, dropout=0.0)
    assert dense.complete
    with pytest.raises(ValueError, match=match):
        dense.graph_for(peers, seed)  # type: ignore[arg-type]


def test_log2_p_insecure_adds_the_two_events() -> None:
    params = GraphParams(
        k=4,
        t=2,
        n=10,
        max_corrupt=1,
        max_dropouts=1,
        corrupt_neighbours=1,
        log2_p_leak=-41.0,
        log2_p_disconnect=-41.0,
        log2_p_incorrect=-20.0,
    )
    assert math.isclose(params.log2_p_insecure, -40.0)
    assert not params.complete


GOOD = {
    "k": 4,
    "t": 2,
    "n": 10,
    "max_corrupt": 1,
    "max_dropouts": 1,
    "corrupt_neighbours": 1,
    "log2_p_leak": -41.0,
    "log2_p_disconnect": -41.0,
    "log2_p_incorrect": -20.0,
}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"k": 4.0}, "k must be an int"),
        ({"t": True}, "t must be an int"),
        ({"log2_p_leak": 0.5}, "log2_p_leak must be a float <= 0"),
        ({"log2_p_incorrect": math.nan}, "log2_p_incorrect"),
        ({"log2_p_disconnect": -1}, "log2_p_disconnect"),
        ({"n": 1, "k": 1}, "n >= 2"),
        ({"k": 10}, "1 <= k <= n-1"),
        ({"k": 3}, "even"),
        ({"k": 0}, "1 <= k <= n-1"),
        ({"t": 0}, "t must be in"),
        ({"t": 6}, "t must be in"),
        ({"max_corrupt": -1}, "max_corrupt"),
        ({"max_corrupt": 5, "max_dropouts": 5}, "sum below n"),
    ],
)
def test_graph_params_rejects_inconsistent_records(change: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GraphParams(**{**GOOD, **change})  # type: ignore[arg-type]


def test_complete_graph_params_may_have_odd_degree() -> None:
    assert GraphParams(**{**GOOD, "k": 9, "t": 6}).complete  # type: ignore[arg-type]


# --- argument errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 1}, "n must be an int >= 2"),
        ({"n": 0}, "n must be an int >= 2"),
        ({"n": True}, "n must be an int >= 2"),
        ({"n": 10.0}, "n must be an int >= 2"),
        ({"n": "10"}, "n must be an int >= 2"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"dropout": math.nan}, r"dropout must be in \[0, 1\)"),
        ({"dropout": math.inf}, r"dropout must be in \[0, 1\)"),
        ({"dropout": True}, "dropout must be an int or float"),
        ({"dropout": "0.1"}, "dropout must be an int or float"),
        ({"dropout": Fraction(1, 10)}, "dropout must be an int or float"),
        ({"corrupt": -1e-9}, r"corrupt must be in \[0, 1\)"),
        ({"corrupt": 1}, r"corrupt must be in \[0, 1\)"),
        ({"corrupt": None}, "corrupt must be an int or float"),
        ({"corrupt": 0.5, "dropout": 0.5}, "corrupt \\+ dropout must be below 1"),
        ({"corrupt": 0.7, "dropout": 0.3}, "corrupt \\+ dropout must be below 1"),
        ({"security_bits": 0}, "security_bits must be an int in"),
        ({"security_bits": 257}, "security_bits must be an int in"),
        ({"security_bits": 40.0}, "security_bits must be an int in"),
        ({"correctness_bits": True}, "correctness_bits must be an int in"),
        ({"correctness_bits": -5}, "correctness_bits must be an int in"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"n": 100, "dropout": 0.05, "corrupt": 0.05, **kwargs}
    with pytest.raises(ValueError, match=match):
        choose_parameters(**args)  # type: ignore[arg-type]


# --- against a hub that lies about who dropped (active) ---------------------------


@given(
    n=st.integers(3, 400),
    corrupt=st.floats(0, 0.3),
    dropout=st.floats(0, 0.3),
)
@settings(max_examples=60, deadline=None)
def test_active_results_meet_the_semi_malicious_and_masking_conditions(
    n: int, corrupt: float, dropout: float
) -> None:
    try:
        params = choose_parameters(n, corrupt=corrupt, dropout=dropout, active=True)
    except ValueError:
        return
    a, k, t = params.corrupt_neighbours, params.k, params.t
    assert t > a
    assert 2 * t > k + 1 + a  # (c): two sets of t holders share an honest one
    if not params.complete:
        assert params.log2_p_insecure <= -40
        assert params.log2_p_incorrect <= -20
        # Every degree that meets the active conditions meets the passive ones.
        assert k >= choose_parameters(n, corrupt=corrupt, dropout=dropout).k
    check = check_parameters(
        n, k, t, max_corrupt=params.max_corrupt, max_dropouts=params.max_dropouts, active=True
    )
    assert (check.k, check.t, check.corrupt_neighbours) == (k, t, a)


def test_active_reference_points() -> None:
    # The semi-malicious rule costs about twice the degree of the honest-but-curious one.
    passive = choose_parameters(100, corrupt=0.05, dropout=0.05)
    assert (passive.k, passive.t) == (12, 6)
    active = choose_parameters(100, corrupt=0.05, dropout=0.05, active=True)
    assert (active.k, active.t, active.corrupt_neighbours) == (18, 13, 5)
    complete = choose_parameters(7, corrupt=0.15, dropout=0.15, active=True)
    assert complete.complete and complete.t == (7 + 1) // 2 + 1


@pytest.mark.parametrize(
    ("n", "k", "t", "active", "match"),
    [
        (100, 12, 5, False, "threshold t=5 must be above 5 for degree k=12"),
        (100, 12, 6, True, "threshold t=6 must be above 9 for degree k=12"),
        (100, 4, 3, False, "degree k=4 does not keep the honest survivors"),
        (100, 5, 3, False, "degree k=5"),
        (7, 6, 1, False, "complete graph of 7 peers must be above 1"),
        (7, 6, 4, True, "complete graph of 7 peers must be above 4"),
    ],
)
def test_check_parameters_names_what_is_weaker(
    n: int, k: int, t: int, active: bool, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        check_parameters(n, k, t, max_corrupt=max(1, n // 20), max_dropouts=n // 20, active=active)


def test_what_choose_picks_passes_its_own_check_and_one_less_does_not() -> None:
    for n in (7, 20, 50, 100, 300):
        for active in (False, True):
            p = choose_parameters(n, corrupt=0.05, dropout=0.1, active=active)
            counts_ = {"max_corrupt": p.max_corrupt, "max_dropouts": p.max_dropouts}
            check_parameters(n, p.k, p.t, active=active, **counts_)
            if p.t > 2:
                with pytest.raises(ValueError, match="threshold"):
                    check_parameters(n, p.k, p.t - 1, active=active, **counts_)


def test_counts_read_the_fractions_as_written() -> None:
    assert counts(100, corrupt=0.29, dropout=0.1) == (29, 10)
    with pytest.raises(ValueError, match="below 1"):
        counts(10, corrupt=0.5, dropout=0.5)
