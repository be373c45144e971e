"""survivors.csv: whose vectors each committed round's sum holds.

One row per ok round and survivor (`round,peer`), appended with the round's
other log rows. It answers a peer that asks, after a restart of either side,
whether a round's sum held its vector: SCAFFOLD's peers adopt a new control
variate exactly when it did (`peer.state`), and otherwise the hub's global
control variate, the mean of theirs, drifts from what they hold. An audit
reads it for the same question. Aborted rounds have no rows; a directory
written before the file existed has none for its earlier rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedd.crypto.secagg.fields import MAX_ROUND
from fedd.daemon.state.columns import Table, int_column, normalize_fields, peer_column

__all__ = ["SURVIVORS", "SurvivorRow"]

SURVIVORS = Table(
    "survivors.csv", (int_column("round", 0, MAX_ROUND), peer_column("peer")), appended=True
)


@dataclass(frozen=True, slots=True)
class SurvivorRow:
    """Peer `peer`'s vector is in the committed sum of round `round`."""

    round: int
    peer: str

    def __post_init__(self) -> None:
        normalize_fields(self, SURVIVORS.columns)

    def values(self) -> tuple[object, ...]:
        """The row's cells in survivors.csv's column order."""
        return (self.round, self.peer)
