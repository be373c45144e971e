"""Lane-wise arithmetic mod 2**(8*width) on packed vectors, in pure Python.

A packed vector is `count` values of `width` bytes, little-endian, back to
back: the wire format of masked inputs and the output of `crypto.prg.expand`.
This is the protocol's hot path (a peer adds k+1 masks to its input, the hub
adds n masked inputs and removes masks), so it avoids a Python-level loop
over values entirely.

Theory of operation
-------------------
`int.from_bytes` turns a packed vector into one big integer m whose lane i
sits at bits [b*i, b*(i+1)), b = 8*width. Adding such integers directly lets a
carry escape from one lane into the next, so each term is split once:

    E = ones in the even lanes (lanes 0, 2, 4, ...), zeros in the odd lanes
    D += m & E        # even lanes only: each has b spare bits above it
    T += m            # everything, carries and all

D holds every even lane's exact (unreduced) sum in a 2b-bit slot, so no carry
crosses a slot while fewer than 2**b terms are added. T - D is then exactly
the sum of the odd lanes in place, and (T - D) & ~E gives them reduced.
One AND and two big-integer additions per term, with no per-term reduction
("lazy reduction"); after 2**b - 1 terms the state is folded back to reduced
form.

Subtraction goes into a second pair of accumulators, so it costs what an
addition costs; the reduced negatives N are taken from the reduced positives
P once, at the end, with a SWAR subtraction (the top bit of every lane is set
before subtracting, so no borrow crosses a lane).

Vectors are processed in chunks of CHUNK_BYTES so that the operands of each
big-integer operation stay in the CPU cache and temporaries come from the
allocator's free lists instead of fresh pages. Several terms at once
(`add_masks`) go chunk-major: every term's piece of chunk i is added before
moving to chunk i+1, so the running sums are read and written once per call
rather than once per term. What remains is dominated by `int.from_bytes`
itself (about half of the time per term; see bench/secagg.py).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence

from fedd.crypto._args import require_int
from fedd.crypto.prg import PrgKind, expand_chunks

__all__ = [
    "CHUNK_BYTES",
    "WIDTHS",
    "VectorSum",
    "add_packed",
    "negate_packed",
    "sub_packed",
]

WIDTHS = frozenset({2, 4, 8})
# A multiple of 2 * 8 bytes, so every chunk starts on an even lane for every
# width and the even-lane mask E of a full chunk also serves the last one.
CHUNK_BYTES = 1 << 16

_Packed = bytes | bytearray


class _Accumulator:
    """Per-chunk running sums T (all lanes) and D (even lanes), plus a term count."""

    __slots__ = ("d", "t", "terms")

    def __init__(self, nchunks: int) -> None:
        self.t = [0] * nchunks
        self.d = [0] * nchunks
        self.terms = 0


class VectorSum:
    """Running lane-wise sum of packed vectors (count values of `width` bytes,
    little-endian) mod 2**(8*width).

    The state is a private accumulator; `to_bytes()` returns the reduced sum.
    Its repr shows only the shape: a partial sum can hold an unmasked input.
    """

    __slots__ = (
        "_bounds",
        "_even",
        "_high",
        "_limit",
        "_low",
        "_nbytes",
        "_neg",
        "_odd",
        "_pos",
        "count",
        "width",
    )

    def __init__(self, count: int, width: int = 4) -> None:
        """An all-zero sum of `count` lanes of `width` bytes.

        Raises TypeError unless both are ints, ValueError unless count >= 0
        and width is 2, 4 or 8.
        """
        require_int("count", count, lo=0)
        require_int("width", width, lo=0)
        if width not in WIDTHS:
            raise ValueError(f"width must be 2, 4 or 8 bytes, got {width}")
        self.count = count
        self.width = width
        self._nbytes = count * width
        self._bounds = [
            (start, min(start + CHUNK_BYTES, self._nbytes))
            for start in range(0, self._nbytes, CHUNK_BYTES)
        ]
        self._even, self._odd = _lane_masks(min(CHUNK_BYTES, self._nbytes), width)
        self._low, self._high = _bit_masks(min(CHUNK_BYTES, self._nbytes), width)
        # Fewer than 2**b terms per accumulator keep every 2b-bit slot exact.
        self._limit = (1 << (8 * width)) - 1
        self._pos = _Accumulator(len(self._bounds))
        self._neg: _Accumulator | None = None

    def add(self, packed: _Packed) -> None:
        """Add `packed` lane-wise.

        Raises TypeError unless it is bytes or bytearray, ValueError unless it
        has exactly count * width bytes. The sum is unchanged on error.
        """
        self._check(packed)
        self._accumulate(False, [(packed[a:b] for a, b in self._bounds)])

    def subtract(self, packed: _Packed) -> None:
        """Subtract `packed` lane-wise; same contract as `add`."""
        self._check(packed)
        self._accumulate(True, [(packed[a:b] for a, b in self._bounds)])

    def add_mask(self, seed: bytes, kind: PrgKind = PrgKind.AES_CTR) -> None:
        """Add the mask `expand(seed, count, width, kind)` lane-wise.

        Same result as `add(crypto.prg.expand(...))`, but the keystream is
        streamed chunk by chunk and never exists as one large buffer. Raises
        what `expand` raises for a bad seed or kind, before touching the sum.
        """
        self.add_masks([seed], kind)

    def subtract_mask(self, seed: bytes, kind: PrgKind = PrgKind.AES_CTR) -> None:
        """Subtract the mask `expand(seed, count, width, kind)`; as `add_mask`."""
        self.subtract_masks([seed], kind)

    def add_masks(self, seeds: Iterable[bytes], kind: PrgKind = PrgKind.AES_CTR) -> None:
        """Add the masks of all `seeds`, as `add_mask` for each, in one pass.

        Going through the vector once, chunk by chunk, with every keystream
        at hand keeps the running sum in cache: faster than one call per
        seed. Every seed is checked before the sum is touched.
        """
        self._accumulate(False, self._mask_streams(seeds, kind))

    def subtract_masks(self, seeds: Iterable[bytes], kind: PrgKind = PrgKind.AES_CTR) -> None:
        """Subtract the masks of all `seeds` in one pass; as `add_masks`."""
        self._accumulate(True, self._mask_streams(seeds, kind))

    def to_bytes(self) -> bytes:
        """The reduced sum, packed: count * width bytes, little-endian lanes.

        Folds the state to reduced form as a side effect (the value it
        represents does not change), so calling it again is cheap.
        """
        self._fold()  # leaves the reduced lanes in T
        return b"".join(
            t.to_bytes(stop - start, "little")
            for t, (start, stop) in zip(self._pos.t, self._bounds, strict=True)
        )

    def __repr__(self) -> str:
        return f"VectorSum(count={self.count}, width={self.width})"

    # -- internals ---------------------------------------------------------

    def _check(self, packed: object) -> None:
        if not isinstance(packed, bytes | bytearray):
            raise TypeError(f"packed vector must be bytes, not {type(packed).__name__}")
        if len(packed) != self._nbytes:
            raise ValueError(
                f"packed vector must be {self._nbytes} bytes "
                f"({self.count} x {self.width}), got {len(packed)}"
            )

    def _mask_streams(self, seeds: Iterable[bytes], kind: PrgKind) -> list[Iterator[bytes]]:
        # expand_chunks checks its arguments when called, so building the whole
        # list validates every seed first; its pieces follow CHUNK_BYTES, which
        # is exactly self._bounds.
        return [
            expand_chunks(seed, self.count, self.width, kind, chunk_bytes=CHUNK_BYTES)
            for seed in seeds
        ]

    def _negatives(self) -> _Accumulator:
        if self._neg is None:
            self._neg = _Accumulator(len(self._bounds))
        return self._neg

    def _accumulate(self, negative: bool, streams: Sequence[Iterator[_Packed]]) -> None:
        """Add (or subtract) every stream of chunk pieces, chunk-major."""
        # Never more unreduced terms than the slots hold: batches of at most
        # limit - 1, each after a fold if needed (a fold leaves one term).
        for start in range(0, len(streams), self._limit - 1):
            batch = streams[start : start + self._limit - 1]
            acc = self._negatives() if negative else self._pos
            if acc.terms + len(batch) > self._limit:
                self._fold()  # replaces the accumulators: fetch again
                acc = self._negatives() if negative else self._pos
            t, d, even = acc.t, acc.d, self._even
            from_bytes = int.from_bytes
            for i in range(len(self._bounds)):
                t_i, d_i = t[i], d[i]
                for stream in batch:
                    m = from_bytes(next(stream), "little")
                    d_i += m & even
                    t_i += m
                t[i], d[i] = t_i, d_i
            acc.terms += len(batch)

    def _fold(self) -> None:
        """Replace both accumulators by one reduced term (same value)."""
        pos, neg, even, odd = self._pos, self._neg, self._even, self._odd
        low, high = self._low, self._high
        for i in range(len(self._bounds)):
            value = _reduce(pos.t[i], pos.d[i], even, odd)
            if neg is not None:
                minus = _reduce(neg.t[i], neg.d[i], even, odd)
                # SWAR subtraction of reduced lanes: the top bit of every lane
                # is set before subtracting the low bits, so no borrow leaves a
                # lane; the true top bits are then a ^ m ^ (not borrow).
                value = ((value | high) - (minus & low)) ^ ((value ^ minus) & high) ^ high
            pos.t[i], pos.d[i] = value, value & even
        pos.terms = 1
        self._neg = None


def _reduce(t: int, d: int, even: int, odd: int) -> int:
    """The packed, reduced lanes of accumulator (T, D).

    D holds each even lane's sum in a 2b-bit slot starting at the lane, and
    T - D each odd lane's sum in a 2b-bit slot starting at that odd lane; the
    low b bits of a slot are the lane's sum mod 2**b, and the slots' higher
    bits land exactly on the lanes of the other parity, which the masks drop.
    """
    return (d & even) | ((t - d) & odd)


@functools.lru_cache(maxsize=16)
def _lane_masks(nbytes: int, width: int) -> tuple[int, int]:
    """Ones in lanes 0, 2, 4, ... and ones in lanes 1, 3, 5, ... of nbytes bytes."""
    pair = b"\xff" * width + bytes(width)
    even = int.from_bytes((pair * (nbytes // (2 * width) + 1))[:nbytes], "little")
    return even, even ^ ((1 << (8 * nbytes)) - 1)


@functools.lru_cache(maxsize=16)
def _bit_masks(nbytes: int, width: int) -> tuple[int, int]:
    """Ones in all but the top bit of every lane, and ones in only the top bit."""
    top = (0x80).to_bytes(width, "big")
    high = int.from_bytes(top * (nbytes // width), "little")
    return high ^ ((1 << (8 * nbytes)) - 1), high


def add_packed(a: _Packed, b: _Packed, width: int = 4) -> bytes:
    """a + b lane-wise mod 2**(8*width). Raises ValueError on unequal lengths."""
    total = _sum_for(a, b, width)
    total.add(a)
    total.add(b)
    return total.to_bytes()


def sub_packed(a: _Packed, b: _Packed, width: int = 4) -> bytes:
    """a - b lane-wise mod 2**(8*width). Raises ValueError on unequal lengths."""
    total = _sum_for(a, b, width)
    total.add(a)
    total.subtract(b)
    return total.to_bytes()


def negate_packed(a: _Packed, width: int = 4) -> bytes:
    """-a lane-wise mod 2**(8*width). Raises ValueError unless len(a) % width == 0."""
    total = _sum_for(a, a, width)
    total.subtract(a)
    return total.to_bytes()


def _sum_for(a: _Packed, b: _Packed, width: int) -> VectorSum:
    require_int("width", width, lo=0)
    if width not in WIDTHS:
        raise ValueError(f"width must be 2, 4 or 8 bytes, got {width}")
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, bytes | bytearray):
            raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    if len(a) != len(b):
        raise ValueError(f"packed vectors differ in length: {len(a)} and {len(b)}")
    if len(a) % width:
        raise ValueError(f"packed length {len(a)} is not a multiple of width {width}")
    return VectorSum(len(a) // width, width)
