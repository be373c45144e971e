"""crypto.encoding: parameter checks, capacity, weighted-mean round trips."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import CryptoCheckFailed, ParameterError
from fedd.crypto.lanes import VectorSum
from tests.crypto._support import FAST, THOROUGH

GOOD: dict[str, object] = {"mod_bits": 32, "scale": 1024.0, "clip": 4.0, "max_weight": 100}


def _fp(**changes: object) -> FixedPoint:
    return FixedPoint(**{**GOOD, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"mod_bits": 16}, "mod_bits"),
        ({"mod_bits": 32.0}, "mod_bits"),
        ({"mod_bits": True}, "mod_bits"),
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"scale": math.nan}, "scale"),
        ({"scale": math.inf}, "scale"),
        ({"scale": True}, "scale"),
        ({"scale": "1024"}, "scale"),
        ({"scale": 10**400}, "scale"),
        ({"clip": 0}, "clip"),
        ({"clip": -math.inf}, "clip"),
        ({"clip": None}, "clip"),
        ({"max_weight": 0}, "max_weight"),
        ({"max_weight": True}, "max_weight"),
        ({"max_weight": 2.0}, "max_weight"),
        ({"l2_clip": 0.0}, "l2_clip"),
        ({"l2_clip": math.nan}, "l2_clip"),
        ({"l2_clip": "1"}, "l2_clip"),
        ({"scale": 2.0**40}, "scale"),  # one peer's value alone reaches R/2
    ],
)
def test_fields_are_validated(changes: dict[str, object], names: str) -> None:
    with pytest.raises(ParameterError, match=names):
        _fp(**changes)


def test_ints_are_accepted_for_float_fields() -> None:
    fp = _fp(scale=1024, clip=4, l2_clip=10)
    assert (fp.scale, fp.clip, fp.l2_clip) == (1024.0, 4.0, 10.0)
    assert all(type(v) is float for v in (fp.scale, fp.clip, fp.l2_clip))
    assert fp.width == 4
    assert _fp(mod_bits=64).width == 8


def test_capacity_error_names_every_parameter() -> None:
    fp = _fp()
    fp.check_capacity(2**31 // (100 * 4 * 1024 + 1))
    with pytest.raises(ParameterError) as info:
        fp.check_capacity(2**31 // (100 * 4 * 1024) + 1)
    text = str(info.value)
    for name in ("mod_bits=32", "max_peers=", "max_weight=100", "clip=4.0", "scale=1024.0"):
        assert name in text
    with pytest.raises(ParameterError, match="max_peers"):
        fp.check_capacity(0)
    with pytest.raises(TypeError, match="max_peers"):
        fp.check_capacity(True)


def test_capacity_boundary_is_exact() -> None:
    # clip * scale = 2**29 and weight 1: one value is 2**29 (+1 allowed for
    # rounding), so 3 peers fit below 2**31 and 4 do not.
    fp = FixedPoint(mod_bits=32, scale=2.0**29, clip=1.0, max_weight=1)
    fp.check_capacity(3)
    with pytest.raises(ParameterError):
        fp.check_capacity(4)


def test_weight_lane_counts_too() -> None:
    # Tiny clip * scale, but 2**31 units of weight would wrap the weight lane.
    fp = FixedPoint(mod_bits=32, scale=1.0, clip=2.0**-20, max_weight=2**16)
    fp.check_capacity(2**15 - 1)
    with pytest.raises(ParameterError):
        fp.check_capacity(2**15)


def test_fit_picks_the_largest_power_of_two() -> None:
    fp = FixedPoint.fit(max_peers=1, max_weight=1, clip=1.0)
    assert fp.scale == 2.0**30  # 2**30 + 1 < 2**31, while 2**31 itself is R/2
    with pytest.raises(ParameterError):
        FixedPoint(mod_bits=32, scale=2.0**31, clip=1.0, max_weight=1)
    fp64 = FixedPoint.fit(max_peers=1000, max_weight=5000, clip=3.0, mod_bits=64, l2_clip=2.5)
    assert fp64.l2_clip == 2.5 and fp64.mod_bits == 64
    fp64.check_capacity(1000)
    with pytest.raises(ParameterError):
        FixedPoint(mod_bits=64, scale=fp64.scale * 2, clip=3.0, max_weight=5000).check_capacity(
            1000
        )


@FAST
@given(
    max_peers=st.integers(1, 10**5),
    max_weight=st.integers(1, 10**5),
    clip=st.floats(1e-6, 1e4),
    mod_bits=st.sampled_from([32, 64]),
)
def test_fit_is_maximal(max_peers: int, max_weight: int, clip: float, mod_bits: int) -> None:
    try:
        fp = FixedPoint.fit(
            max_peers=max_peers, max_weight=max_weight, clip=clip, mod_bits=mod_bits
        )
    except ParameterError:
        # Then even scale 1 must fail.
        with pytest.raises(ParameterError):
            FixedPoint(
                mod_bits=mod_bits, scale=1.0, clip=clip, max_weight=max_weight
            ).check_capacity(max_peers)
        return
    fp.check_capacity(max_peers)
    assert fp.scale >= 1 and math.log2(fp.scale).is_integer()
    with pytest.raises(ParameterError):
        FixedPoint(
            mod_bits=mod_bits, scale=fp.scale * 2, clip=clip, max_weight=max_weight
        ).check_capacity(max_peers)


def test_fit_with_a_tiny_clip_caps_the_scale() -> None:
    # 2**31 / 1e-300 overflows a float; fit must still answer, and stop at 2**1000.
    fp = FixedPoint.fit(max_peers=1, max_weight=1, clip=1e-300)
    assert fp.scale == 2.0**1000
    assert FixedPoint.fit(max_peers=3, max_weight=2, clip=5e-324, mod_bits=64).scale == 2.0**1000


def test_fit_refuses_when_scale_one_cannot_fit() -> None:
    with pytest.raises(ParameterError, match="max_peers=1048576"):
        FixedPoint.fit(max_peers=2**20, max_weight=2**12, clip=1.0)


def test_encode_layout() -> None:
    fp = FixedPoint(mod_bits=32, scale=4.0, clip=10.0, max_weight=50)
    packed = fp.encode([1.0, -0.5, 2.25], weight=3)
    values = [int.from_bytes(packed[i : i + 4], "little") for i in range(0, 16, 4)]
    assert values == [3, 12, 2**32 - 6, 27]
    fp64 = FixedPoint(mod_bits=64, scale=4.0, clip=10.0, max_weight=50)
    assert len(fp64.encode([1.0], weight=1)) == 16
    assert fp.encode([], weight=7) == (7).to_bytes(4, "little")


def test_clipping_and_weight_cap() -> None:
    fp = FixedPoint(mod_bits=32, scale=1.0, clip=2.0, max_weight=10)
    assert fp.clip_vector([5.0, -7.0, 1.5]) == [2.0, -2.0, 1.5]
    assert fp.encode([5.0], weight=10**9) == fp.encode([2.0], weight=10)
    l2 = FixedPoint(mod_bits=32, scale=1.0, clip=2.0, max_weight=10, l2_clip=1.0)
    clipped = l2.clip_vector([3.0, 4.0])
    assert clipped == pytest.approx([0.6, 0.8])
    assert l2.clip_vector([0.3, 0.4]) == [0.3, 0.4]  # already inside the ball
    assert l2.clip_vector([]) == []
    huge = l2.clip_vector([1e300, 1e300])  # the norm overflows a naive sum of squares
    assert huge == pytest.approx([math.sqrt(0.5)] * 2)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_inputs_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="NaN or infinity"):
        _fp().encode([1.0, value], weight=1)


@pytest.mark.parametrize(
    ("x", "weight", "error"),
    [
        ([1.0], 0, ValueError),
        ([1.0], -3, ValueError),
        ([1.0], True, TypeError),
        ([1.0], 2.0, TypeError),
        ("1.0", 1, TypeError),
        (b"\x01", 1, TypeError),
        ({1.0}, 1, TypeError),
        (["1.0"], 1, TypeError),
    ],
)
def test_encode_rejects_bad_arguments(x: object, weight: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        _fp().encode(x, weight)  # type: ignore[arg-type]


def test_decode_rejects_bad_totals() -> None:
    fp = _fp()
    with pytest.raises(ValueError, match="multiple of 4"):
        fp.decode_mean(b"\x01\x00\x00")
    with pytest.raises(ValueError, match="multiple of 4"):
        fp.decode_mean(b"")
    with pytest.raises(TypeError):
        fp.decode_mean(bytearray(8))  # type: ignore[arg-type]
    with pytest.raises(CryptoCheckFailed, match="weight"):
        fp.decode_mean(bytes(8))
    with pytest.raises(CryptoCheckFailed, match="weight"):
        fp.decode_mean((2**32 - 5).to_bytes(4, "little") + bytes(4))


def _exact_mean(fp: FixedPoint, xs: list[list[float]], weights: list[int]) -> list[Fraction]:
    capped = [min(w, fp.max_weight) for w in weights]
    total = sum(capped)
    clipped = [fp.clip_vector(x) for x in xs]
    d = len(xs[0])
    return [
        sum(
            (Fraction(w) * Fraction(c[i]) for w, c in zip(capped, clipped, strict=True)),
            Fraction(0),
        )
        / total
        for i in range(d)
    ]


@st.composite
def _rounds(draw: st.DrawFn) -> tuple[FixedPoint, list[list[float]], list[int]]:
    mod_bits = draw(st.sampled_from([32, 64]))
    max_peers = draw(st.integers(1, 5000))
    max_weight = draw(st.integers(1, 20000))
    clip = draw(st.floats(1e-3, 1e3))
    l2_clip = draw(st.none() | st.floats(1e-3, 1e3))
    try:
        fp = FixedPoint.fit(
            max_peers=max_peers,
            max_weight=max_weight,
            clip=clip,
            mod_bits=mod_bits,
            l2_clip=l2_clip,
        )
    except ParameterError:
        assume(False)
        raise
    n = draw(st.integers(1, min(max_peers, 6)))
    d = draw(st.integers(0, 6))
    element = st.floats(-3 * clip, 3 * clip, allow_nan=False, allow_infinity=False)
    xs = [draw(st.lists(element, min_size=d, max_size=d)) for _ in range(n)]
    weights = [draw(st.integers(1, 2 * max_weight)) for _ in range(n)]
    return fp, xs, weights


@THOROUGH
@given(_rounds())
def test_sum_of_encodings_decodes_to_the_weighted_mean(
    case: tuple[FixedPoint, list[list[float]], list[int]],
) -> None:
    fp, xs, weights = case
    total = VectorSum(len(xs[0]) + 1, fp.width)
    for x, w in zip(xs, weights, strict=True):
        total.add(fp.encode(x, w))
    weight_sum, mean = fp.decode_mean(total.to_bytes())
    assert weight_sum == sum(min(w, fp.max_weight) for w in weights)
    bound = fp.error_bound(len(xs))
    # Not vacuous: one rounding step, or float precision once scale outgrows it.
    assert bound <= 1 / fp.scale + fp.clip * 2.0**-49
    for got, exact in zip(mean, _exact_mean(fp, xs, weights), strict=True):
        assert abs(Fraction(got) - exact) <= bound


@FAST
@given(
    x=st.lists(st.floats(-100, 100), max_size=8),
    weight=st.integers(1, 1000),
    mod_bits=st.sampled_from([32, 64]),
)
def test_single_round_trip(x: list[float], weight: int, mod_bits: int) -> None:
    fp = FixedPoint.fit(max_peers=100, max_weight=1000, clip=50.0, mod_bits=mod_bits)
    w, mean = fp.decode_mean(fp.encode(x, weight))
    assert w == weight
    for got, exact in zip(mean, _exact_mean(fp, [x], [weight]), strict=True):
        assert abs(Fraction(got) - exact) <= fp.error_bound(1)


@pytest.mark.parametrize("mod_bits", [32, 64])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_extreme_inputs_at_full_capacity_do_not_wrap(mod_bits: int, sign: float) -> None:
    max_peers, max_weight, clip = 300, 777, 3.0
    fp = FixedPoint.fit(max_peers=max_peers, max_weight=max_weight, clip=clip, mod_bits=mod_bits)
    packed = fp.encode([sign * clip, -sign * clip, 0.0], weight=max_weight)
    total = VectorSum(4, fp.width)
    for _ in range(max_peers):
        total.add(packed)
    w, mean = fp.decode_mean(total.to_bytes())
    assert w == max_peers * max_weight
    bound = fp.error_bound(max_peers)
    assert abs(mean[0] - sign * clip) <= bound
    assert abs(mean[1] + sign * clip) <= bound
    assert mean[2] == 0.0


def test_beyond_capacity_the_sum_really_wraps() -> None:
    # Why check_capacity exists: one more peer than allowed and the same
    # inputs decode to garbage.
    fp = FixedPoint(mod_bits=32, scale=2.0**29, clip=1.0, max_weight=1)
    packed = fp.encode([1.0], weight=1)
    total = VectorSum(2, 4)
    for _ in range(4):
        total.add(packed)
    _, mean = fp.decode_mean(total.to_bytes())
    assert mean[0] < 0


def test_error_bound_requires_capacity() -> None:
    fp = FixedPoint(mod_bits=32, scale=2.0**29, clip=1.0, max_weight=1)
    assert fp.error_bound(3) == pytest.approx(0.5 / 2.0**29)
    with pytest.raises(ParameterError):
        fp.error_bound(4)
