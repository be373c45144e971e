"""The daemons: what both of them use, and the hub.

    daemon.errors      ConfigError and StateError: what an operator can fix
    daemon.transport   talking: wire format, typed daemon messages, sockets,
                       CurveZMQ and ZAP, key files, log rate limits
    daemon.state       keeping: CSV tables, the hub's store, the state-directory lock
    daemon.hub         the hub daemon: its loop, config, registry, round runners, status

transport and state stand side by side on daemon.errors, crypto, topology and
learner, and never import each other; hub stands on both. Nothing here imports
the peer or the command line. Nothing here decides protocol steps: those live
in the sans-IO sessions of `crypto.secagg`.
"""
