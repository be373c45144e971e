"""Mask and key derivations that peers and hub must compute identically.

    share key    c_uv = HKDF(X25519(c_sk_u, c_pk_v), SHARE_KEY, run, round, (u, v))
                 ordered pair, so each direction has its own key
    pair mask    PRG(HKDF(X25519(s_sk_u, s_pk_v), PAIR_MASK, run, round, sorted(u, v)))
                 peer u adds it when u < v and subtracts it when u > v, so the
                 two copies cancel in the sum
    self mask    PRG(HKDF(b_u, SELF_MASK, run, round, (u,)))

The hub uses the same functions to remove the self masks of survivors and
to cancel the pair masks of peers that dropped after sharing their keys.
"""

from __future__ import annotations

from fedd.crypto import kdf
from fedd.crypto.keys import AgreementKey
from fedd.crypto.lanes import VectorSum
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.params import RoundParams

__all__ = ["MaskSeeds", "pair_mask_seed", "self_mask_seed", "share_key"]


class MaskSeeds:
    """Seeds of masks to add and to subtract, applied to a sum in one pass each.

    Collecting the seeds first lets `VectorSum.add_masks` stream every
    keystream through the sum chunk by chunk, which is faster than adding
    masks one at a time.
    """

    __slots__ = ("minus", "plus")

    def __init__(self) -> None:
        self.plus: list[bytes] = []
        self.minus: list[bytes] = []

    def add_pair(
        self, params: RoundParams, s_key: AgreementKey, me: PeerId, other: PeerId, other_s_pk: bytes
    ) -> None:
        """`me`'s signed pair mask with `other`: + when me < other, - otherwise.

        `me` is the peer whose s_sk is `s_key`. A peer adds one per neighbour
        while masking. The hub adds them for a peer `me` that dropped after
        sharing its keys, with s_sk_me reconstructed: what `me` would have
        added cancels the mirrored copy in the surviving neighbour's input.
        Raises CryptoCheckFailed when `other_s_pk` is a low-order point.
        """
        seed = pair_mask_seed(params, s_key, me, other, other_s_pk)
        (self.plus if me < other else self.minus).append(seed)

    def apply(self, acc: VectorSum, params: RoundParams) -> None:
        acc.add_masks(self.plus, params.prg)
        acc.subtract_masks(self.minus, params.prg)


def share_key(
    params: RoundParams, c_key: AgreementKey, other_c_pk: bytes, sender: PeerId, recipient: PeerId
) -> bytes:
    """The AEAD key for shares sealed by `sender` for `recipient`.

    Raises CryptoCheckFailed when `other_c_pk` is a low-order point.
    """
    return kdf.derive_key(
        c_key.exchange(other_c_pk),
        purpose=kdf.Purpose.SHARE_KEY,
        run=params.run,
        round=params.round,
        parties=(sender, recipient),
    )


def pair_mask_seed(
    params: RoundParams, s_key: AgreementKey, me: PeerId, other: PeerId, other_s_pk: bytes
) -> bytes:
    """The seed both `me` and `other` derive for their pair mask (s_uv)."""
    low, high = (me, other) if me < other else (other, me)
    return kdf.derive_key(
        s_key.exchange(other_s_pk),
        purpose=kdf.Purpose.PAIR_MASK,
        run=params.run,
        round=params.round,
        parties=(low, high),
    )


def self_mask_seed(params: RoundParams, b: bytes, owner: PeerId) -> bytes:
    """The seed of `owner`'s self mask, derived from b_owner."""
    return kdf.derive_key(
        b, purpose=kdf.Purpose.SELF_MASK, run=params.run, round=params.round, parties=(owner,)
    )
