"""How the daemons keep state on disk, as CSV: typed tables with atomic
rewrites and fsync'd appends, the hub's files and its store, and the
state-directory lock.

May import `daemon.errors`, `crypto`, `topology` and `learner`; never
`daemon.transport`, `daemon.hub`, the peer or the command line.
"""
