"""The peer daemon: a DEALER loop that registers with the hub, trains locally
with `learner`, and takes part in secure aggregation through `crypto.secagg`.

A peer's transactions never leave it; only (masked) model updates do.

May import `daemon.transport`, `daemon.state`, `daemon.errors`, `crypto`,
`topology` and `learner`; never `daemon.hub` or the command line.
"""
