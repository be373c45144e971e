"""Who shares secrets and masks with whom: the complete graph (SecAgg) and
Harary-style k-regular graphs (SecAgg+), derived identically by every party
from public inputs, plus the choice of (k, t) for a given population.

`topology.graph` builds the graphs (construction and citations in its
docstring); `topology.params` chooses the degree and the Shamir threshold
(the rule and why it is safe in its docstring). Nothing here imports the rest
of fedd: peer ids are plain `str`, so the protocol's `PeerId` values pass
straight in. Every bad argument raises `ValueError`.
"""

from .graph import (
    SEED_BYTES,
    PeerGraph,
    check_seed,
    complete_graph,
    harary_graph,
    harary_neighbours,
    ring_order,
)
from .params import (
    GraphParams,
    check_parameters,
    choose_for_counts,
    choose_parameters,
    counts,
)

__all__ = [
    "SEED_BYTES",
    "GraphParams",
    "PeerGraph",
    "check_parameters",
    "check_seed",
    "choose_for_counts",
    "choose_parameters",
    "complete_graph",
    "counts",
    "harary_graph",
    "harary_neighbours",
    "ring_order",
]
