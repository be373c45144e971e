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
- CURVE (optional): the hub's ROUTER is a CURVE server in the ZAP domain
  "fedd", whose handler (`daemon.transport.zap`) must be bound in the same context
  first; DEALERs are CURVE clients holding their own key pair and the hub's
  public key. Without CURVE both sides speak ZMTP's NULL mechanism.
"""

from __future__ import annotations

from dataclasses import dataclass

import zmq

from fedd.daemon.errors import ConfigError
from fedd.daemon.transport.curve import KeyPair
from fedd.daemon.transport.wire import MAX_FRAME
from fedd.daemon.transport.zap import ZAP_DOMAIN

__all__ = [
    "ClientCurve",
    "auth_failures",
    "check_endpoint",
    "client_socket",
    "hub_socket",
    "peer_socket",
    "watch_auth",
]


@dataclass(frozen=True)
class ClientCurve:
    """What a CURVE client needs: its own key pair and the hub's public key (Z85)."""

    keys: KeyPair
    server_public: bytes


# ZeroMQ adds a few bytes of framing; the wire limit is what matters.
_MAX_MSG = MAX_FRAME + 1024
# A silent connection is probed after 5 s, then every second; 5 unanswered probes drop it.
_KEEPALIVE_IDLE_S = 5
_KEEPALIVE_INTVL_S = 1
_KEEPALIVE_CNT = 5


def check_endpoint(address: str, *, bind: bool) -> str:
    """`address` if fedd can bind (or connect) to it; raises ConfigError saying why not.

    tcp:// needs HOST:PORT with a port from 1 to 65535 (or `*`, any port, to
    bind): libzmq itself reads port 99999 as 34463, -1 as 65535, 5x as 5 and
    0 as any free port, so a typo would silently serve, or join, the wrong
    port. ipc:// and inproc:// addresses are left to libzmq.
    """
    transport, sep, rest = address.partition("://")
    if not sep or transport not in ("tcp", "ipc", "inproc"):
        raise ConfigError(f"{address!r} is not an address such as tcp://HOST:PORT")
    if transport == "tcp":
        host, _, port = rest.rpartition(":")
        if not host:
            raise ConfigError(f"{address!r} needs a host and a port: tcp://HOST:PORT")
        wildcard = bind and port == "*"
        if not wildcard and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise ConfigError(f"{address!r}: the port must be a number from 1 to 65535")
    return address


def hub_socket(
    ctx: zmq.Context[zmq.Socket[bytes]], bind: str, curve: KeyPair | None = None
) -> zmq.Socket[bytes]:
    """The hub's ROUTER, bound to `bind` (e.g. tcp://*:5555). Raises ConfigError.

    With `curve` (the hub's key pair) it accepts CURVE clients only, each
    vetted by the ZAP handler of `ctx`.
    """
    check_endpoint(bind, bind=True)
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    if curve is not None:
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, curve.secret)
        sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())
    _common(sock)
    try:
        sock.bind(bind)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise ConfigError(f"cannot bind {bind!r}: {exc.strerror}") from None
    return sock


def peer_socket(
    ctx: zmq.Context[zmq.Socket[bytes]], connect: str, curve: ClientCurve | None = None
) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes] | None]:
    """A peer's DEALER connected to the hub at `connect`, and with `curve` its
    `watch_auth` monitor (attached before connecting, so that not even the
    first handshake's failure goes unseen). Raises ConfigError."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
    _common(sock)
    _client_curve(sock, curve)
    monitor = watch_auth(sock) if curve is not None else None
    try:
        return _connect(sock, connect), monitor
    except ConfigError:
        if monitor is not None:
            monitor.close(0)
        raise


def client_socket(
    ctx: zmq.Context[zmq.Socket[bytes]], connect: str, curve: ClientCurve | None = None
) -> zmq.Socket[bytes]:
    """A short-lived DEALER for one request (fedd status). Raises ConfigError."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    _common(sock)
    _client_curve(sock, curve)
    return _connect(sock, connect)


def _client_curve(sock: zmq.Socket[bytes], curve: ClientCurve | None) -> None:
    if curve is None:
        return
    sock.setsockopt(zmq.CURVE_SERVERKEY, curve.server_public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, curve.keys.secret)


def _common(sock: zmq.Socket[bytes]) -> None:
    sock.setsockopt(zmq.MAXMSGSIZE, _MAX_MSG)
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, _KEEPALIVE_IDLE_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, _KEEPALIVE_INTVL_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, _KEEPALIVE_CNT)


def _connect(sock: zmq.Socket[bytes], address: str) -> zmq.Socket[bytes]:
    try:
        check_endpoint(address, bind=False)
        sock.connect(address)
    except zmq.ZMQError as exc:
        sock.disable_monitor()
        sock.close(0)
        raise ConfigError(f"cannot connect to {address!r}: {exc.strerror}") from None
    except ConfigError:
        sock.close(0)
        raise
    return sock


def watch_auth(sock: zmq.Socket[bytes]) -> zmq.Socket[bytes]:
    """A monitor of `sock` that reports failed CURVE handshakes (poll it; see auth_failures).

    A CURVE client whose key the hub denies sees no error on its socket:
    libzmq just reconnects. The monitor is how it can tell its operator why.
    Close it with `sock.disable_monitor()` and `monitor.close(0)`.
    """
    return sock.get_monitor_socket(
        zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    )


def auth_failures(monitor: zmq.Socket[bytes]) -> list[str]:
    """Drain `monitor`; one line per failed handshake, saying what probably went wrong."""
    from zmq.utils.monitor import recv_monitor_message

    lines: list[str] = []
    while True:
        try:
            event = recv_monitor_message(monitor, zmq.NOBLOCK)
        except zmq.Again:
            return lines
        if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            lines.append(
                f"the hub refused this key (ZAP status {event['value']}): "
                "is its .pub file in the hub's --allow-dir?"
            )
        else:
            lines.append(
                "the CURVE handshake with the hub failed: is --hub-public the hub's key, "
                "and does the hub use CURVE?"
            )
