"""Fixed-point encoding of weighted real vectors into Z / 2**mod_bits.

Masks only cancel in modular integer arithmetic, so a peer's update
(a vector of floats x with a sample-count weight w) is encoded as

    [w, round(w * x_1 * scale), ..., round(w * x_d * scale)]  mod R,  R = 2**mod_bits

and the hub, holding only the sum of such encodings over the survivors,
decodes the weighted mean: sum_u w_u x_u / sum_u w_u (DESIGN §3).

Values are first limited so that the sum cannot wrap: optionally the whole
vector is scaled down to L2 norm `l2_clip`, then each coordinate is clamped
to [-clip, clip] and the weight capped at `max_weight`. Then every encoded
lane of one peer is at most max_weight * clip * scale (+ rounding) in
absolute value, and `check_capacity(n)` proves that n of them sum to less
than R/2, so the centred lift of the sum is exact.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from fedd.crypto._args import require_bytes, require_int
from fedd.crypto.errors import CryptoCheckFailed, ParameterError

__all__ = ["MOD_BITS", "FixedPoint"]

MOD_BITS = frozenset({32, 64})

_STRUCT_CODE = {32: "I", 64: "Q"}
# |fl(x * fl(w * scale))| <= |x * w * scale| * (1 + 2**-53)**2 < ... * (1 + 2**-51).
_FLOAT_SLACK = 1 + Fraction(1, 2**51)
_MAX_SCALE_EXPONENT = 1000  # fit() never proposes a scale above 2**1000


@dataclass(frozen=True, slots=True)
class FixedPoint:
    """Parameters of the encoding; every field is checked on construction.

    Raises ParameterError (naming the field) unless mod_bits is the int 32
    or 64, scale and clip are finite numbers > 0, max_weight is an int >= 1,
    l2_clip is None or a finite number > 0, and one peer's encoding fits
    (`check_capacity(1)`). Ints are accepted for the float fields and stored
    as floats; bools are refused everywhere.
    """

    mod_bits: int
    scale: float
    clip: float
    max_weight: int
    l2_clip: float | None = None

    def __post_init__(self) -> None:
        if type(self.mod_bits) is not int or self.mod_bits not in MOD_BITS:
            raise ParameterError(f"mod_bits must be 32 or 64, got {self.mod_bits!r}")
        object.__setattr__(self, "scale", _positive_finite("scale", self.scale))
        object.__setattr__(self, "clip", _positive_finite("clip", self.clip))
        if type(self.max_weight) is not int or self.max_weight < 1:
            raise ParameterError(f"max_weight must be an int >= 1, got {self.max_weight!r}")
        if self.l2_clip is not None:
            object.__setattr__(self, "l2_clip", _positive_finite("l2_clip", self.l2_clip))
        self.check_capacity(1)

    @property
    def width(self) -> int:
        """Bytes per packed value: mod_bits // 8."""
        return self.mod_bits // 8

    def check_capacity(self, max_peers: int) -> None:
        """Prove that the sum of `max_peers` encodings cannot wrap the modulus.

        Raises TypeError unless max_peers is an int, ParameterError if it is
        below 1 or if max_peers * (max_weight * clip * scale + rounding), or
        max_peers * max_weight for the weight lane, reaches R/2. The message
        names mod_bits, max_peers, max_weight, clip and scale.
        """
        if type(max_peers) is not int:
            raise TypeError(f"max_peers must be int, not {type(max_peers).__name__}")
        if max_peers < 1:
            raise ParameterError(f"max_peers must be >= 1, got {max_peers}")
        if not _fits(self.mod_bits, self.scale, self.clip, self.max_weight, max_peers):
            raise ParameterError(
                f"fixed-point sum can wrap: max_peers={max_peers} x max_weight="
                f"{self.max_weight} x clip={self.clip!r} x scale={self.scale!r} (+ rounding) "
                f"must stay below 2**{self.mod_bits - 1} with mod_bits={self.mod_bits}; "
                "lower scale, clip or max_weight, or use mod_bits=64"
            )

    @classmethod
    def fit(
        cls,
        *,
        max_peers: int,
        max_weight: int,
        clip: float,
        mod_bits: int = 32,
        l2_clip: float | None = None,
    ) -> FixedPoint:
        """The encoding with the largest power-of-two scale that passes
        `check_capacity(max_peers)`.

        Raises ParameterError (as the constructor and `check_capacity`) if
        not even scale 1 passes, and TypeError for a non-int max_peers.
        """
        probe = cls(mod_bits=mod_bits, scale=1.0, clip=clip, max_weight=max_weight, l2_clip=l2_clip)
        probe.check_capacity(max_peers)  # scale 1 must fit, or no scale >= 1 does

        def fits(exponent: int) -> bool:
            return _fits(mod_bits, math.ldexp(1.0, exponent), probe.clip, max_weight, max_peers)

        # Start from the real-valued optimum, then settle on the exact boundary.
        # (in logs: a tiny clip makes the budget itself overflow a float)
        budget = mod_bits - 1 - math.log2(max_peers) - math.log2(max_weight) - math.log2(probe.clip)
        exponent = min(max(math.floor(budget), 0), _MAX_SCALE_EXPONENT)
        while exponent > 0 and not fits(exponent):
            exponent -= 1
        while exponent < _MAX_SCALE_EXPONENT and fits(exponent + 1):
            exponent += 1
        return cls(
            mod_bits=mod_bits,
            scale=math.ldexp(1.0, exponent),
            clip=probe.clip,
            max_weight=max_weight,
            l2_clip=probe.l2_clip,
        )

    def clip_vector(self, x: Sequence[float]) -> list[float]:
        """`x` as `encode` sees it: scaled to L2 norm `l2_clip` if longer,
        then clamped to [-clip, clip].

        Raises TypeError unless `x` is a sequence of real numbers, ValueError
        if any is NaN or infinite.
        """
        if isinstance(x, str | bytes | bytearray) or not isinstance(x, Sequence):
            raise TypeError(f"x must be a sequence of floats, not {type(x).__name__}")
        if not all(map(math.isfinite, x)):
            raise ValueError("x contains NaN or infinity")
        values = [float(v) for v in x]
        if self.l2_clip is not None and values:
            norm = math.hypot(*values)
            if norm > self.l2_clip:
                factor = self.l2_clip / norm
                values = [v * factor for v in values]
        c = self.clip
        return [-c if v < -c else c if v > c else v for v in values]

    def encode(self, x: Sequence[float], weight: int) -> bytes:
        """Pack [w, round(w * x_i * scale) for each i] mod R: len(x) + 1 values.

        w = min(weight, max_weight); x goes through `clip_vector`. Returns
        (len(x) + 1) * width bytes, little-endian. Raises TypeError unless
        weight is an int (not a bool), ValueError if weight < 1, and what
        `clip_vector` raises.
        """
        w = min(require_int("weight", weight, lo=1), self.max_weight)
        clipped = self.clip_vector(x)
        # w * scale once per vector: the rounding this adds is in error_bound.
        factor = w * self.scale
        mask = (1 << self.mod_bits) - 1
        values = [w, *(round(v * factor) & mask for v in clipped)]
        return struct.pack(f"<{len(values)}{_STRUCT_CODE[self.mod_bits]}", *values)

    def decode_mean(self, total: bytes) -> tuple[int, list[float]]:
        """(sum of weights, weighted mean) from the lane-wise sum of encodings.

        Each lane is lifted to (-R/2, R/2), then divided by the weight sum and
        the scale. Raises TypeError unless `total` is bytes, ValueError unless
        it holds at least one whole value, CryptoCheckFailed if the weight sum
        is not positive (no inputs, or masks were not removed correctly).
        """
        require_bytes("total", total)
        if len(total) < self.width or len(total) % self.width:
            raise ValueError(
                f"total must be a positive multiple of {self.width} bytes, got {len(total)}"
            )
        count = len(total) // self.width
        half, modulus = 1 << (self.mod_bits - 1), 1 << self.mod_bits
        lanes = struct.unpack(f"<{count}{_STRUCT_CODE[self.mod_bits]}", total)
        weight = lanes[0] - modulus if lanes[0] >= half else lanes[0]
        if weight <= 0:
            raise CryptoCheckFailed(
                "aggregate weight is not positive: no inputs, or masks not removed"
            )
        # int / int is correctly rounded in Python; the scale divides after.
        return weight, [
            ((v - modulus if v >= half else v) / weight) / self.scale for v in lanes[1:]
        ]

    def error_bound(self, n_peers: int) -> float:
        """Max |decoded mean - exact weighted mean of the clipped inputs|, per
        coordinate, for the sum of `n_peers` encodings.

        Each encoded value is off by at most 1/2 (rounding) plus its float
        error (relative 2**-52 at most), and every weight is >= 1, so the n
        roundings divided by the weight sum (>= n) times scale give at most
        0.5 / scale whatever n is. Float error in encoding adds at most
        clip * 2**-52 and decoding's two roundings at most 2**-52 of
        |mean| <= clip + 0.5 / scale; the bound doubles those allowances.
        Raises what `check_capacity(n_peers)` raises: beyond it there is no
        bound.
        """
        self.check_capacity(n_peers)
        return 0.5 / self.scale + (self.clip + 1.0 / self.scale) * 2.0**-50


def _positive_finite(name: str, value: object) -> float:
    if type(value) not in (int, float):
        raise ParameterError(f"{name} must be a float, not {type(value).__name__}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise ParameterError(f"{name} is too large for a float") from None
    if not math.isfinite(number) or number <= 0:
        raise ParameterError(f"{name} must be finite and > 0, got {value!r}")
    return number


def _fits(mod_bits: int, scale: float, clip: float, max_weight: int, max_peers: int) -> bool:
    """Exact check, in rationals, that max_peers encodings sum below R/2."""
    if not math.isfinite(scale):
        return False
    per_value = math.ceil(Fraction(max_weight) * Fraction(clip) * Fraction(scale) * _FLOAT_SLACK)
    half = 1 << (mod_bits - 1)
    return max_peers * per_value < half and max_peers * max_weight < half
