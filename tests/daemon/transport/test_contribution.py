"""The shape of a round's vectors: what each kind holds, and that sums decode to sums."""

from __future__ import annotations

import random
import struct

import pytest

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.lanes import VectorSum
from fedd.daemon.transport.contribution import Layout
from fedd.learner.binned import ScoreCounts
from fedd.learner.moments import Moments

WIDE = FixedPoint.fit(max_peers=8, max_weight=1000, clip=4.0, mod_bits=64)
NARROW = FixedPoint.fit(max_peers=8, max_weight=1000, clip=4.0)


def total(layout: Layout, parts: list[bytes]) -> bytes:
    acc = VectorSum(layout.lanes, layout.mod_bits // 8)
    for part in parts:
        assert len(part) == layout.nbytes
        acc.add(part)
    return acc.to_bytes()


def counts(rng: random.Random, bins: int, peers: int = 1) -> ScoreCounts:
    pos = tuple(rng.randrange(5) for _ in range(bins))
    neg = tuple(rng.randrange(50) for _ in range(bins))
    return ScoreCounts(pos, neg, rng.randrange(sum(pos) + 1), rng.randrange(sum(neg) + 1),
                       rng.uniform(0, 100), peers)  # fmt: skip


def test_statistics_sum_to_the_exact_moments() -> None:
    layout = Layout("statistics", 2)
    parts = [
        Moments(10, 1, (2**140, -(2**130)), (2**280, 2**260)),
        Moments(5, 5, (-(2**140) + 7, 3), (1, 2**200)),
    ]
    decoded = layout.decode(total(layout, [layout.encode(moments=m) for m in parts]), len(parts))
    assert decoded.moments == Moments(15, 6, (7, 3 - 2**130), (2**280 + 1, 2**260 + 2**200))
    assert decoded.mean is None and decoded.scores == [] and decoded.problems == []


@pytest.mark.parametrize("encoding", [WIDE, NARROW], ids=["64-bit", "32-bit"])
def test_training_sums_to_the_weighted_mean_and_the_scores(encoding: FixedPoint) -> None:
    rng = random.Random(4)
    bins = (3, 5) if encoding is WIDE else ()
    layout = Layout("training", 2, encoding, bins)
    updates = [(rng.randrange(1, 100), [rng.uniform(-1, 1) for _ in range(3)]) for _ in range(4)]
    scores = [[counts(rng, b) for b in bins] for _ in updates]
    parts = [layout.encode(update=u, scores=s) for u, s in zip(updates, scores, strict=True)]
    decoded = layout.decode(total(layout, parts), len(parts))
    weight = sum(w for w, _ in updates)
    assert decoded.weight_sum == weight and decoded.mean is not None
    for i in range(3):
        exact = sum(w * d[i] for w, d in updates) / weight
        assert abs(decoded.mean[i] - exact) <= encoding.error_bound(4)
    for j, got in enumerate(decoded.scores):
        mine = [s[j] for s in scores]
        assert got is not None
        assert got.positives == tuple(map(sum, zip(*(m.positives for m in mine), strict=True)))
        assert got.negatives == tuple(map(sum, zip(*(m.negatives for m in mine), strict=True)))
        assert (got.tp, got.fp, got.peers) == (sum(m.tp for m in mine), sum(m.fp for m in mine), 4)
        assert got.loss == pytest.approx(sum(m.loss for m in mine), abs=4 * 2**-32)


def test_a_sum_no_honest_peers_can_give_is_named_and_the_rest_kept() -> None:
    layout = Layout("training", 1, WIDE, (2,))
    honest = layout.encode(
        update=(10, [0.5, -0.5]), scores=[ScoreCounts((1, 0), (0, 3), 1, 0, 1.0, 1)]
    )
    # A peer that subtracts counts: lanes mod 2^64 make negative totals.
    bad = ScoreCounts((0, 0), (0, 0), 0, 0, 0.0, 0)
    forged = bytearray(layout.encode(update=(10, [0.5, -0.5]), scores=[bad]))
    forged[-8:] = (2**64 - 5).to_bytes(8, "little")  # the last bin's negatives: -5
    decoded = layout.decode(total(layout, [honest, bytes(forged)]), 2)
    assert decoded.mean is not None and decoded.scores == [None]
    assert decoded.problems and "evaluation 1" in decoded.problems[0]


@pytest.mark.parametrize("encoding", [WIDE, NARROW], ids=["64-bit", "32-bit"])
def test_an_update_outside_the_clip_or_the_weight_cap_is_refused(encoding: FixedPoint) -> None:
    layout = Layout("training", 1, encoding)
    edge = [layout.encode(update=(encoding.max_weight, [encoding.clip, -encoding.clip]))] * 3
    decoded = layout.decode(total(layout, edge), 3)
    assert decoded.refused == ""
    assert decoded.mean == pytest.approx([encoding.clip, -encoding.clip])
    code = "<I" if encoding.mod_bits == 32 else "<Q"
    mask = (1 << encoding.mod_bits) - 1
    far = bytearray(layout.encode(update=(1, [0.0, 0.0])))
    struct.pack_into(code, far, encoding.width, round(-26_843 * encoding.scale) & mask)
    decoded = layout.decode(total(layout, [edge[0], bytes(far)]), 2)
    assert decoded.mean is None
    assert "coordinate 0 of the mean" in decoded.refused and decoded.refused in decoded.problems
    heavy = bytearray(edge[0])
    struct.pack_into(code, heavy, 0, encoding.max_weight + 1)  # one more than any peer may claim
    decoded = layout.decode(total(layout, [bytes(heavy)]), 1)
    assert decoded.mean is None and "weight sum" in decoded.refused


def test_parts_of_the_wrong_kind_or_shape_are_refused() -> None:
    training = Layout("training", 2, WIDE, (3,))
    with pytest.raises(ValueError, match="only they, take moments"):
        training.encode(moments=Moments(1, 0, (0, 0), (0, 0)), update=(1, [0.0] * 3))
    with pytest.raises(ValueError, match="take an update"):
        Layout("evaluation", 2, None, (3,)).encode(update=(1, [0.0] * 3))
    with pytest.raises(ValueError, match="1 evaluations asked for, 0 given"):
        training.encode(update=(1, [0.0] * 3))
    with pytest.raises(ValueError, match="bytes"):
        training.decode(b"\0" * 8, 1)
    for bad in (
        lambda: Layout("statistics", 2, None, (3,)),
        lambda: Layout("evaluation", 2),
        lambda: Layout("training", 2),
        lambda: Layout("training", 2, NARROW, (3,)),
        lambda: Layout("scoring", 2),
        lambda: Layout("statistics", 0),
    ):
        with pytest.raises(LocalProtocolError):
            bad()


def test_scaffold_rounds_add_the_control_variate_changes_in_the_same_vector() -> None:
    layout = Layout("training", 2, NARROW, (), control=True)
    plain = Layout("training", 2, NARROW)
    assert layout.lanes == plain.lanes + 3  # one more value per parameter, one weight
    rng = random.Random(7)
    peers = [
        (
            rng.randrange(1, 100),
            [rng.uniform(-1, 1) for _ in range(3)],
            [rng.uniform(-2, 2) for _ in range(3)],
        )
        for _ in range(5)
    ]
    parts = [layout.encode(update=(w, d), control=c) for w, d, c in peers]
    decoded = layout.decode(total(layout, parts), len(parts))
    weight = sum(w for w, _, _ in peers)
    assert decoded.weight_sum == weight and decoded.mean is not None and decoded.control is not None
    for i in range(3):
        mean = sum(w * d[i] for w, d, _ in peers) / weight
        control = sum(w * c[i] for w, _, c in peers) / weight
        assert abs(decoded.mean[i] - mean) <= NARROW.error_bound(5)
        assert abs(decoded.control[i] - control) <= NARROW.error_bound(5)
    assert plain.decode(total(plain, [plain.encode(update=(1, [0.0] * 3))]), 1).control is None
    with pytest.raises(ValueError, match="SCAFFOLD rounds, and only they"):
        layout.encode(update=(1, [0.0] * 3))
    with pytest.raises(ValueError, match="SCAFFOLD rounds, and only they"):
        plain.encode(update=(1, [0.0] * 3), control=[0.0] * 3)
    with pytest.raises(ValueError, match="of the model's shape"):
        layout.encode(update=(1, [0.0] * 3), control=[0.0] * 2)
    with pytest.raises(LocalProtocolError, match="only training rounds carry control"):
        Layout("evaluation", 2, None, (3,), control=True)
