"""The hub daemon: its loop and timers, configuration, peer registry, round
runners (plain and secure) and the status it reports.

May import `daemon.transport`, `daemon.state`, `daemon.errors`, `crypto`,
`topology` and `learner`; never the peer or the command line.
"""
