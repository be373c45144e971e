"""A round's shape: what the hub chooses passes a peer's floor, and weaker shapes do not."""

from __future__ import annotations

import dataclasses

import pytest

from fedd.crypto.errors import ParameterError
from fedd.crypto.secagg.params import Mode
from fedd.crypto.secagg.shape import Floor, choose_shape
from fedd.crypto.secagg.vouching import masking_is_safe
from tests.crypto.secagg_helpers import shaped_params


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("active", [False, True])
def test_what_the_hub_chooses_passes_the_same_floor(mode, active):
    for n in (2, 3, 4, 5, 7, 8, 12, 20, 30, 64, 100, 250):
        for corrupt, dropout in ((0.05, 0.1), (0.0, 0.0), (0.2, 0.1), (0.1, 0.3)):
            params = shaped_params(n, mode, active=active, dim=4, corrupt=corrupt, dropout=dropout)
            Floor(corrupt, dropout).check(params)
            Floor(corrupt / 2, dropout / 2).check(params)  # and any lower floor


def test_a_peer_assuming_more_corruption_declines_and_says_why():
    params = shaped_params(11, Mode.FULL, active=True, dim=4, corrupt=0.05, dropout=0.1)
    assert (params.t, params.min_survivors, params.max_corrupt) == (7, 7, 1)
    with pytest.raises(ParameterError, match=r"weaker than this peer accepts \(--corrupt 0.3"):
        Floor(corrupt=0.3).check(params)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"t": 6, "min_survivors": 6, "max_corrupt": 0}, "must be above 6 with 1 corrupt"),
        ({"max_corrupt": 0}, "tolerates 0 corrupt peers, not 1"),
    ],
)
def test_every_weaker_parameter_is_named(change, match):
    params = shaped_params(11, Mode.FULL, active=True, dim=4, corrupt=0.05, dropout=0.1)
    with pytest.raises(ParameterError, match=match):
        Floor().check(dataclasses.replace(params, **change))


def test_a_sparse_graph_too_thin_for_the_floor_is_declined():
    params = shaped_params(100, Mode.PLUS, active=False, dim=4, corrupt=0.05, dropout=0.1)
    Floor().check(params)
    with pytest.raises(ParameterError, match="does not keep the honest survivors"):
        Floor(dropout=0.4).check(params)
    active = shaped_params(100, Mode.PLUS, active=True, dim=4, corrupt=0.05, dropout=0.1)
    with pytest.raises(ParameterError, match="must be above"):
        Floor().check(dataclasses.replace(active, t=params.t))


def test_the_hub_refuses_to_choose_what_peers_would_decline():
    with pytest.raises(ParameterError, match="must be above"):
        choose_shape(11, Mode.FULL, dropout=0.1, corrupt=0.05, threshold=6, active=True)
    with pytest.raises(ParameterError, match="must be above"):
        choose_shape(100, Mode.PLUS, dropout=0.1, corrupt=0.05, threshold=3)
    degree = choose_shape(100, Mode.PLUS, dropout=0.1, corrupt=0.05, degree=40, active=True)
    assert degree.k == 40 and 2 * degree.t > 40 + 1


def test_a_floor_is_two_fractions_below_one():
    with pytest.raises(ParameterError, match="below 1"):
        Floor(corrupt=0.6, dropout=0.5)
    with pytest.raises(ParameterError, match="corrupt"):
        Floor(corrupt=-0.1)


@pytest.mark.parametrize(
    ("dealt", "partners", "t", "a", "safe"),
    [
        (14, 14, 9, 2, True),  # everyone's shares arrived
        (14, 9, 9, 2, True),  # 6 holders unmasked-against + 2 corrupt = 8 < 9
        (14, 8, 9, 2, False),  # 7 + 2 = 9: t of them could unmask this input alone
        (6, 3, 5, 1, False),  # 4 + 1 = 5 holders: t
        (6, 4, 5, 1, True),  # 3 + 1 = 4 < 5
    ],
)
def test_the_masking_rule(dealt, partners, t, a, safe):
    assert masking_is_safe(dealt, partners, t, a) is safe
