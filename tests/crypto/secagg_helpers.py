"""Builders shared by the secure aggregation tests."""

from __future__ import annotations

import random
from collections.abc import Callable

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.shape import choose_shape


def peer_ids(n: int) -> tuple[PeerId, ...]:
    return tuple(PeerId(f"p{i:03d}") for i in range(1, n + 1))


def make_params(
    n: int = 5,
    *,
    mode: Mode = Mode.FULL,
    k: int | None = None,
    t: int | None = None,
    min_survivors: int | None = None,
    dim: int = 8,
    mod_bits: int = 32,
    round: int = 0,
    run: str = "test-run",
    seed: int = 1,
    active: bool = False,
    max_corrupt: int | None = None,
) -> RoundParams:
    """Round parameters for tests; an active round tolerates one corrupt peer unless told,
    as a peer's default floor requires for any handful of peers."""
    k = n - 1 if k is None else k
    t = (k + 1) // 2 + 1 if t is None else t
    return RoundParams(
        run=run,
        round=round,
        mode=mode,
        participants=peer_ids(n),
        k=k,
        t=t,
        min_survivors=t if min_survivors is None else min_survivors,
        graph_seed=random.Random(seed).randbytes(32),
        dim=dim,
        active=active,
        max_corrupt=(1 if active else 0) if max_corrupt is None else max_corrupt,
        mod_bits=mod_bits,
    )


def shaped_params(n: int, mode: Mode, *, active: bool, dim: int, **fractions: float) -> RoundParams:
    """Round parameters of n peers shaped as the hub shapes them (`choose_shape`)."""
    return RoundParams(
        run="test-run",
        round=0,
        mode=mode,
        participants=peer_ids(n),
        **choose_shape(n, mode, active=active, **fractions)._asdict(),
        graph_seed=random.Random(n).randbytes(32),
        dim=dim,
        active=active,
    )


def seeded(seed: int) -> Callable[[int], bytes]:
    """A deterministic random_bytes for reproducible sessions (tests only)."""
    return random.Random(seed).randbytes


def random_inputs(params: RoundParams, seed: int = 7) -> dict[PeerId, bytes]:
    rng = random.Random(seed)
    return {p: rng.randbytes(params.vector_size) for p in params.participants}
