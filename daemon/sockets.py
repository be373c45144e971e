"""ZeroMQ sockets set up the one way fedd uses them.

The hub binds one ROUTER; peers and `fedd status` connect DEALERs to it.
Options that matter:
- LINGER: the hub lingers briefly so its last RoundEnd/Done leave on exit;
  peers and status clients never block exit on undelivered messages.
- ROUTER_MANDATORY: a send to a peer whose connection is gone raises
  EHOSTUNREACH instead of vanishing silently; the hub counts that as a sign
  the peer left.
- MAXMSGSIZE: frames above the wire's limit are dropped by libzmq before they
  are ever buffered in Python.
- TCP keepalives: dead TCP connections are noticed (by the kernel) even when
  nothing is being sent; the application heartbeats in the daemons then
  decide liveness of peers. Not ZMTP heartbeats (HEARTBEAT_IVL): with them,
  libzmq 4.3 aborts the whole process (`Assertion failed: !_io_error`,
  zeromq/libzmq#4364) when a heartbeat tick finds a connection whose input
  stopped on a full queue and whose other end hung up, so one client that
  flooded the hub and disconnected killed it (and a hub could kill a peer).
- RECONNECT_IVL/RECONNECT_IVL_MAX: peers reconnect with exponential backoff
  when the hub goes away.
- IMMEDIATE on DEALERs: messages queue only on live connections, so a peer
  does not pile up stale messages while the hub is down.
"""

from __future__ import annotations

import zmq

from daemon.errors import ConfigError
from daemon.wire import MAX_FRAME

__all__ = ["client_socket", "hub_socket", "peer_socket"]

# ZeroMQ adds a few bytes of framing; the wire limit is what matters.
_MAX_MSG = MAX_FRAME + 1024
# A silent connection is probed after 5 s, then every second; 5 unanswered probes drop it.
_KEEPALIVE_IDLE_S = 5
_KEEPALIVE_INTVL_S = 1
_KEEPALIVE_CNT = 5


def hub_socket(ctx: zmq.Context[zmq.Socket[bytes]], bind: str) -> zmq.Socket[bytes]:
    """The hub's ROUTER, bound to `bind` (e.g. tcp://*:5555). Raises ConfigError."""
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    _common(sock)
    try:
        sock.bind(bind)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise ConfigError(f"cannot bind {bind!r}: {exc.strerror}") from None
    return sock


def peer_socket(ctx: zmq.Context[zmq.Socket[bytes]], connect: str) -> zmq.Socket[bytes]:
    """A peer's DEALER connected to the hub at `connect`. Raises ConfigError."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
    _common(sock)
    return _connect(sock, connect)


def client_socket(ctx: zmq.Context[zmq.Socket[bytes]], connect: str) -> zmq.Socket[bytes]:
    """A short-lived DEALER for one request (fedd status). Raises ConfigError."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    _common(sock)
    return _connect(sock, connect)


def _common(sock: zmq.Socket[bytes]) -> None:
    sock.setsockopt(zmq.MAXMSGSIZE, _MAX_MSG)
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, _KEEPALIVE_IDLE_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, _KEEPALIVE_INTVL_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, _KEEPALIVE_CNT)


def _connect(sock: zmq.Socket[bytes], address: str) -> zmq.Socket[bytes]:
    try:
        sock.connect(address)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise ConfigError(f"cannot connect to {address!r}: {exc.strerror}") from None
    return sock
