"""HKDF-SHA256 (RFC 5869) and the labelled key derivation of the protocol.

Every key of a round comes out of `derive_key`, whose HKDF `info` binds the
protocol version label, the purpose, the run id, the round number and the
parties. So a key derived for one purpose, run, round or pair is unrelated to
the key for any other, even from the same X25519 output or the same seed.
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedd.crypto import _framing
from fedd.crypto._args import require_bytes, require_int, require_str

__all__ = ["MIN_SECRET_SIZE", "Purpose", "derive_key", "hkdf_sha256"]

_HASH_SIZE = 32
_MAX_LENGTH = 255 * _HASH_SIZE  # RFC 5869 §2.3

# derive_key takes only full-entropy secrets: X25519 outputs and 32-byte seeds.
MIN_SECRET_SIZE = 32


class Purpose(enum.Enum):
    """What a derived key is for. The value is part of the HKDF info."""

    SHARE_KEY = "share-key"  # AEAD key for shares sent sender -> recipient (ordered pair)
    PAIR_MASK = "pair-mask"  # pairwise mask seed s_uv (the pair in sorted order)
    SELF_MASK = "self-mask"  # PRG key derived from b_u (one party)
    SEED_SHARE = "seed-share"  # AEAD key for a share of a graph-seed nonce, dealer -> holder


# How many parties each purpose binds; a wrong count is a caller bug.
_ARITY = {Purpose.SHARE_KEY: 2, Purpose.PAIR_MASK: 2, Purpose.SELF_MASK: 1, Purpose.SEED_SHARE: 2}


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """Plain RFC 5869 HKDF with SHA-256: extract with `salt`, expand with `info`.

    Returns `length` bytes. An empty salt means the RFC's default (32 zero
    bytes). Raises TypeError unless `ikm`, `salt` and `info` are `bytes` and
    `length` an int, ValueError unless 1 <= length <= 8160.
    """
    require_bytes("ikm", ikm)
    require_bytes("salt", salt)
    require_bytes("info", info)
    require_int("length", length, lo=1, hi=_MAX_LENGTH)
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def derive_key(
    secret: bytes,
    *,
    purpose: Purpose,
    run: str,
    round: int,
    parties: tuple[str, ...],
    length: int = 32,
) -> bytes:
    """A `length`-byte key for `purpose` in (`run`, `round`) between `parties`.

    The HKDF info is the length-prefixed encoding of ("fedd/v1", purpose,
    run, round, number of parties, each party) in the order given: the caller
    orders the parties (sender then recipient for SHARE_KEY and SEED_SHARE; sorted for
    PAIR_MASK, so both ends derive the same seed). The salt is empty.

    Raises TypeError for wrong types; ValueError if `secret` is shorter than
    32 bytes, `run` or a party is empty, `round` is outside [0, 2**64), the
    number of parties is not 2 (SHARE_KEY, PAIR_MASK, SEED_SHARE) or 1 (SELF_MASK), the
    PAIR_MASK pair is not strictly ascending, or `length` is outside [1, 8160].
    """
    require_bytes("secret", secret, min_size=MIN_SECRET_SIZE)
    if not isinstance(purpose, Purpose):
        raise TypeError(f"purpose must be a Purpose, not {type(purpose).__name__}")
    require_str("run", run)
    require_int("round", round, lo=0, hi=2**64 - 1)
    if type(parties) is not tuple:
        raise TypeError(f"parties must be a tuple, not {type(parties).__name__}")
    for party in parties:
        require_str("party", party)
    if len(parties) != _ARITY[purpose]:
        raise ValueError(f"{purpose.name} binds {_ARITY[purpose]} parties, got {len(parties)}")
    if purpose is Purpose.PAIR_MASK and not parties[0] < parties[1]:
        raise ValueError("PAIR_MASK parties must be two distinct ids in sorted order")
    require_int("length", length, lo=1, hi=_MAX_LENGTH)
    info = _framing.frame(
        _framing.PROTOCOL_LABEL,
        _framing.text(purpose.value),
        _framing.text(run),
        _framing.uint64(round),
        _framing.uint64(len(parties)),
        *(_framing.text(party) for party in parties),
    )
    return hkdf_sha256(secret, salt=b"", info=info, length=length)
