"""Fixed-point encoding through a secure round: the hub gets the weighted mean, nothing else."""

from __future__ import annotations

import random

import pytest

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import ParameterError
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.shape import choose_shape
from fedd.simulate import run_secure_round
from tests.crypto.secagg_helpers import peer_ids


@pytest.mark.parametrize(
    ("mode", "n", "mod_bits"), [(Mode.FULL, 6, 32), (Mode.PLUS, 14, 32), (Mode.PLUS, 9, 64)]
)
def test_secure_round_yields_the_weighted_mean_within_the_quantization_bound(mode, n, mod_bits):
    rng = random.Random(n)
    dim = 12
    fp = FixedPoint.fit(max_peers=n, max_weight=50_000, clip=4.0, mod_bits=mod_bits)
    vectors = {p: [rng.uniform(-5, 5) for _ in range(dim)] for p in peer_ids(n)}
    weights = {p: rng.randint(1, 80_000) for p in peer_ids(n)}
    k, t, _, _ = choose_shape(n, mode, dropout=0.1, corrupt=0.05)
    params = RoundParams(
        run="mean",
        round=3,
        mode=mode,
        participants=peer_ids(n),
        k=k,
        t=t,
        min_survivors=t,
        graph_seed=rng.randbytes(32),
        dim=dim + 1,
        mod_bits=mod_bits,
    )
    inputs = {p: fp.encode(vectors[p], weights[p]) for p in params.participants}
    dropped = rng.choice(params.participants)
    report = run_secure_round(params, inputs, {dropped: "masked-input"})
    assert report.status == "ok"
    assert report.aggregate is not None
    weight_sum, mean = fp.decode_mean(report.aggregate)
    survivors = report.survivor_ids
    capped = {p: min(weights[p], fp.max_weight) for p in survivors}
    assert weight_sum == sum(capped.values())
    clipped = {p: fp.clip_vector(vectors[p]) for p in survivors}
    for i in range(dim):
        exact = sum(capped[p] * clipped[p][i] for p in survivors) / weight_sum
        assert abs(mean[i] - exact) <= fp.error_bound(len(survivors))


def test_a_scale_that_could_wrap_is_refused_naming_the_parameters():
    with pytest.raises(ParameterError) as info:
        FixedPoint(mod_bits=32, scale=2.0**20, clip=10.0, max_weight=100_000).check_capacity(10)
    text = str(info.value)
    for name in ("mod_bits", "max_peers", "max_weight", "clip", "scale"):
        assert name in text


@pytest.mark.parametrize("n", [2, 3, 4, 5, 10, 30, 100])
@pytest.mark.parametrize("mode", [Mode.FULL, Mode.PLUS])
@pytest.mark.parametrize("active", [False, True])
def test_chosen_shapes_are_valid_round_parameters(n, mode, active):
    shape = choose_shape(n, mode, dropout=0.1, corrupt=0.05, active=active)
    assert 2 <= shape.t <= shape.k + 1 <= n and shape.t <= shape.min_survivors <= n
    if active:
        assert 2 * shape.min_survivors > n + shape.max_corrupt
    else:
        assert shape.min_survivors == shape.t
    RoundParams(
        run="r",
        round=0,
        mode=mode,
        participants=peer_ids(n),
        **shape._asdict(),
        graph_seed=bytes(32),
        dim=1,
        active=active,
    )
