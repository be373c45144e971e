"""What both daemons stand on, and the hub itself.

The wire format (msgpack envelope, limits, validation into typed messages),
the CSV state store, socket set-up, CurveZMQ authentication, the `fedd`
command line, and the hub daemon. Nothing here decides protocol steps: those
live in the sans-IO sessions of `crypto.secagg`.
"""
