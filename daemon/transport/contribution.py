"""What a peer contributes to a round, lane by lane, and what their sum decodes to.

Every round aggregates one vector per peer, added lane by lane mod
2^mod_bits: in the clear with `--secagg off`, masked otherwise. The hub and
each peer derive the vector's layout from the round's public settings alone
(`Layout.of`): its kind, the number of features, the update's fixed-point
encoding and the bins of each evaluation it asks for. Segments, in order:

    statistics   [rows, positives], then per feature sum q and sum q^2
                 (learner.moments: exact integers, in limbs)
    training     [w, w * delta]: the weighted mean of the updates (crypto.encoding);
                 with `control` (SCAFFOLD), [w, w * delta, w * dc]: the control
                 variate changes dc ride in the same encoded vector
    evaluation   per requested evaluation: [peers, tp, fp], the log-loss sum in
                 fixed point, then the positives and the negatives of each bin
                 (learner.binned)

Counts and sums travel as exact integers (`crypto.exact`), so a sum over the
federation is the sum over the union of the contributing peers' rows. Those
need 64-bit lanes: a round that carries them uses mod 2^64 throughout; only
a training round with nothing else may use the 32-bit encoding.

Nobody sees a single vector, so a peer that skips its own clipping is seen
only in the sum. `decode` refuses a training sum that no honest peers can
give: a coordinate of the mean outside [-clip, clip] (beyond the encoding's
rounding), or a weight sum above the peers' count times the weight cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.exact import LANE_BITS, IntLanes
from fedd.learner.binned import MAX_BINS, ScoreCounts
from fedd.learner.moments import MAX_ROWS, SQUARE_BITS, SUM_BITS, Moments

__all__ = ["KINDS", "Decoded", "Layout"]

KINDS = ("statistics", "training", "evaluation")
_COUNT = MAX_ROWS.bit_length() + 1  # signed bits of any one peer's count
_LOSS_FRACTION = 32  # fractional bits of the log-loss sum
# A row's loss is at most -log(1e-15) < 2^6, so a peer's sum is below 2^(40 + 6).
_LOSS = _COUNT + 6 + _LOSS_FRACTION


@dataclass(frozen=True, slots=True)
class Decoded:
    """A round's sum, by segment.

    `mean` and `weight_sum` are those of a training round (None and 0
    otherwise); `control` the weighted mean of the peers' control variate
    changes in a SCAFFOLD round (None otherwise). `moments` and the entries
    of `scores` are None where the round had no such segment or its sum is
    one no honest peers can give (a negative count, more positives than
    rows): `problems` says which. `refused` says why a training round's
    update may not be applied ('' if it may; `mean` and `control` are then
    None).
    """

    weight_sum: int
    mean: list[float] | None
    moments: Moments | None
    scores: list[ScoreCounts | None]
    problems: list[str]
    refused: str = ""
    control: list[float] | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """The shape of one round's vectors. Raises LocalProtocolError if inconsistent.

    `control`: the training segment also carries SCAFFOLD's control variate changes.
    """

    kind: str
    n_features: int
    encoding: FixedPoint | None = None
    eval_bins: tuple[int, ...] = ()
    control: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LocalProtocolError(f"kind must be one of {', '.join(KINDS)}")
        if (self.kind == "training") != (self.encoding is not None):
            raise LocalProtocolError("training rounds, and only they, carry an encoding")
        if self.kind == "statistics" and self.eval_bins:
            raise LocalProtocolError("a statistics round carries no evaluation")
        if self.kind == "evaluation" and not self.eval_bins:
            raise LocalProtocolError("an evaluation round carries at least one evaluation")
        if type(self.n_features) is not int or self.n_features < 1:
            raise LocalProtocolError("a layout needs at least one feature")
        if any(type(b) is not int or not 1 <= b <= MAX_BINS for b in self.eval_bins):
            raise LocalProtocolError(f"an evaluation has 1 to {MAX_BINS} bins")
        if self.encoding is not None and self.eval_bins and self.encoding.mod_bits != LANE_BITS:
            raise LocalProtocolError("a round with evaluations needs the 64-bit encoding")
        if type(self.control) is not bool or (self.control and self.kind != "training"):
            raise LocalProtocolError("only training rounds carry control variates")

    @property
    def mod_bits(self) -> int:
        return self.encoding.mod_bits if self.encoding is not None else LANE_BITS

    @property
    def nbytes(self) -> int:
        size = 0
        if self.kind == "statistics":
            size += sum(c.nbytes for c in self._statistics())
        if self.encoding is not None:
            size += (self._updated + 1) * self.encoding.width
        for bins in self.eval_bins:
            size += sum(c.nbytes for c in _evaluation(bins))
        return size

    @property
    def lanes(self) -> int:
        return self.nbytes * 8 // self.mod_bits

    @property
    def _updated(self) -> int:
        """The values of a training round's update: the model's, twice with control."""
        return (self.n_features + 1) * (2 if self.control else 1)

    def _statistics(self) -> tuple[IntLanes, IntLanes, IntLanes]:
        d = self.n_features
        return IntLanes(2, _COUNT), IntLanes(d, SUM_BITS), IntLanes(d, SQUARE_BITS)

    def encode(
        self,
        *,
        moments: Moments | None = None,
        update: tuple[int, Sequence[float]] | None = None,
        control: Sequence[float] | None = None,
        scores: Sequence[ScoreCounts] = (),
    ) -> bytes:
        """One peer's vector: `moments` for statistics, `update` (weight, delta) for
        training, with `control` (its control variate change) when the layout
        has it, one ScoreCounts per requested evaluation.

        Raises ValueError if a part is missing, extra or of the wrong shape.
        """
        parts = []
        if (moments is not None) != (self.kind == "statistics"):
            raise ValueError("statistics rounds, and only they, take moments")
        if moments is not None:
            counts, sums, squares = self._statistics()
            if len(moments.sums) != self.n_features:
                raise ValueError("moments of another number of features")
            parts += [
                counts.encode([moments.rows, moments.positives]),
                sums.encode(moments.sums),
                squares.encode(moments.squares),
            ]
        if (update is not None) != (self.encoding is not None):
            raise ValueError("training rounds, and only they, take an update")
        if (control is not None) != self.control:
            raise ValueError("SCAFFOLD rounds, and only they, take a control variate change")
        if update is not None and self.encoding is not None:
            weight, delta = update
            if len(delta) != self.n_features + 1:
                raise ValueError("the update must hold a bias and one weight per feature")
            if control is not None and len(control) != len(delta):
                raise ValueError("the control variate change must be of the model's shape")
            parts.append(self.encoding.encode([*delta, *(control or ())], weight))
        if len(scores) != len(self.eval_bins):
            raise ValueError(f"{len(self.eval_bins)} evaluations asked for, {len(scores)} given")
        for bins, counts_ in zip(self.eval_bins, scores, strict=True):
            if len(counts_.positives) != bins:
                raise ValueError("scores with another number of bins")
            head, loss, cells = _evaluation(bins)
            parts += [
                head.encode([counts_.peers, counts_.tp, counts_.fp]),
                loss.encode([round(counts_.loss * 2**_LOSS_FRACTION)]),
                cells.encode([*counts_.positives, *counts_.negatives]),
            ]
        return b"".join(parts)

    def decode(self, total: bytes, peers: int) -> Decoded:
        """The sum of `peers` peers' vectors, by segment.

        Raises ValueError for a total of the wrong size, CryptoCheckFailed
        (from the encoding) if a training round's weight sum is not positive.
        """
        if len(total) != self.nbytes:
            raise ValueError(f"the sum has {len(total)} bytes, the layout {self.nbytes}")
        at = 0

        def take(size: int) -> bytes:
            nonlocal at
            at += size
            return total[at - size : at]

        moments = mean = control = None
        weight_sum = 0
        problems = []
        refused = ""
        if self.kind == "statistics":
            counts, sums, squares = self._statistics()
            rows, positives = counts.decode(take(counts.nbytes))
            sum_values = tuple(sums.decode(take(sums.nbytes)))
            square_values = tuple(squares.decode(take(squares.nbytes)))
            try:
                moments = Moments(rows, positives, sum_values, square_values)
            except ValueError as exc:
                problems.append(f"statistics: {exc}")
        if self.encoding is not None:
            weight_sum, mean = self.encoding.decode_mean(
                take((self._updated + 1) * self.encoding.width)
            )
            # The control variate changes are clipped with the update: one range for both.
            refused = _out_of_range(self.encoding, weight_sum, mean, peers)
            if refused:
                mean = None
                problems.append(refused)
            elif self.control:
                mean, control = mean[: self.n_features + 1], mean[self.n_features + 1 :]
        scores: list[ScoreCounts | None] = []
        for index, bins in enumerate(self.eval_bins):
            head, loss, cells = _evaluation(bins)
            peers, tp, fp = head.decode(take(head.nbytes))
            (loss_sum,) = loss.decode(take(loss.nbytes))
            values = cells.decode(take(cells.nbytes))
            try:
                scores.append(
                    ScoreCounts(
                        tuple(values[:bins]),
                        tuple(values[bins:]),
                        tp,
                        fp,
                        loss_sum / 2**_LOSS_FRACTION,
                        peers,
                    )
                )
            except ValueError as exc:
                scores.append(None)
                problems.append(f"evaluation {index + 1}: {exc}")
        return Decoded(weight_sum, mean, moments, scores, problems, refused, control)


def _out_of_range(encoding: FixedPoint, weight_sum: int, mean: list[float], peers: int) -> str:
    """Why no `peers` honest peers could have given this weighted mean ('' if they could)."""
    cap = peers * encoding.max_weight
    if weight_sum > cap:
        return (
            f"update refused: weight sum {weight_sum} is above {peers} peers x the weight "
            f"cap {encoding.max_weight}"
        )
    bound = encoding.clip + encoding.error_bound(peers)
    worst = max(range(len(mean)), key=lambda i: abs(mean[i]))
    if abs(mean[worst]) > bound:
        return (
            f"update refused: coordinate {worst} of the mean is {mean[worst]:.6g}, "
            f"outside the clipping range [-{encoding.clip:g}, {encoding.clip:g}]"
        )
    return ""


def _evaluation(bins: int) -> tuple[IntLanes, IntLanes, IntLanes]:
    return IntLanes(3, _COUNT), IntLanes(1, _LOSS), IntLanes(2 * bins, _COUNT)
