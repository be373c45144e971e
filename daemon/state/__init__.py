"""How the daemons keep state on disk, as CSV: typed tables with atomic
rewrites and fsync'd appends, the hub's files and its store, and the
state-directory lock.

    daemon.state.columns    typed columns (check, parse, render) and tables
    daemon.state.csvfile    strict reading, atomic rewrite, fsync'd append
    daemon.state.statedir   a state directory: created private, cleared of leftovers
    daemon.state.hubfiles   the hub's tables and their typed rows
    daemon.state.statistics the run's feature statistics: stats.csv
    daemon.state.runfile    the hub's run.csv: run id, features, settings, provenance
    daemon.state.reconcile  what opening the hub's state checks and repairs
    daemon.state.store      HubStore: the hub's state directory, open and commit

May import `daemon.errors`, `crypto`, `topology` and `learner`; never
`daemon.transport`, `daemon.hub`, the peer or the command line.
"""
