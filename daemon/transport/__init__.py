"""How both daemons talk: the msgpack wire format with its limits, the typed
daemon messages (the protocol's own live in `crypto.secagg`), ZeroMQ sockets,
CurveZMQ keys and the ZAP allow-list, signing-key files, and rate limits for
log lines a remote party can cause.

May import `daemon.errors`, `crypto`, `topology` and `learner`; never
`daemon.state`, `daemon.hub`, the peer or the command line.
"""
