"""Helpers shared by the primitive tests: vectors on disk and seeded randomness."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import settings

VECTORS = Path(__file__).resolve().parent.parent / "vectors"

# Two cores: modest example counts, no per-example deadline (timings are noisy).
FAST = settings(max_examples=40, deadline=None)
THOROUGH = settings(max_examples=120, deadline=None)


def load_vectors(name: str) -> Any:
    """The parsed JSON file `tests/vectors/<name>`."""
    with (VECTORS / name).open(encoding="utf-8") as handle:
        return json.load(handle)


def seeded_random_bytes(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic stand-in for os.urandom: SHA-256 in counter mode.

    Successive calls continue the same stream, so two generators built from
    one seed return identical sequences.
    """
    counter = 0

    def random_bytes(n: int) -> bytes:
        nonlocal counter
        out = bytearray()
        while len(out) < n:
            out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            counter += 1
        return bytes(out[:n])

    return random_bytes
