"""The daemons' sockets survive a flood followed by an abrupt hang-up.

Each case runs in a child process, because what it guards against is libzmq
aborting the whole process: with ZMTP heartbeats on, a connection whose
input stopped (its queue full, the daemon busy) and whose other end then
hung up trips `Assertion failed: !_io_error` at the next heartbeat tick
(zeromq/libzmq#4364). One client flooding the hub and disconnecting was
enough to kill it; a hub doing the same to a peer killed the peer.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from fedd.daemon.errors import ConfigError
from fedd.daemon.transport.sockets import check_endpoint

FLOOD = """
started = time.monotonic()
while time.monotonic() - started < 0.3:  # its queues fill, then it keeps trying
    try:
        send(bytes(1000))
    except zmq.Again:
        time.sleep(0.001)
flooder.close(0)  # hang up while the other side's input is stopped
time.sleep(2.5)  # a few heartbeat intervals, had there been any
print("alive")
"""

HUB_FLOODED = """
import socket, time, zmq
from fedd.daemon.transport.sockets import hub_socket

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
ctx = zmq.Context()
hub = hub_socket(ctx, f"tcp://127.0.0.1:{port}")  # never reads: the daemon is busy
flooder = ctx.socket(zmq.DEALER)
flooder.setsockopt(zmq.LINGER, 0)
flooder.setsockopt(zmq.SNDHWM, 100_000)
flooder.connect(f"tcp://127.0.0.1:{port}")
send = lambda frame: flooder.send(frame, zmq.NOBLOCK)
"""

PEER_FLOODED = """
import time, zmq
from fedd.daemon.transport.sockets import peer_socket

ctx = zmq.Context()
flooder = ctx.socket(zmq.ROUTER)
flooder.setsockopt(zmq.LINGER, 0)
flooder.setsockopt(zmq.SNDHWM, 100_000)
port = flooder.bind_to_random_port("tcp://127.0.0.1")
peer, _ = peer_socket(ctx, f"tcp://127.0.0.1:{port}")  # never reads after its hello
peer.send(b"hello")
routing = flooder.recv_multipart()[0]
send = lambda frame: flooder.send_multipart([routing, frame], zmq.NOBLOCK)
"""


def test_a_flood_then_a_hang_up_aborts_neither_the_hub_nor_a_peer() -> None:
    children = {
        side: subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(setup) + textwrap.dedent(FLOOD)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for side, setup in (("hub", HUB_FLOODED), ("peer", PEER_FLOODED))
    }
    for side, child in children.items():
        out, err = child.communicate(timeout=60)
        assert (child.returncode, out.strip()) == (0, "alive"), f"{side}: {err}"


@pytest.mark.parametrize(
    "address",
    [
        "tcp://127.0.0.1:99999",  # libzmq would use port 34463
        "tcp://127.0.0.1:-1",  # ... 65535
        "tcp://127.0.0.1:5x",  # ... 5
        "tcp://127.0.0.1:0",  # ... any free port
        "tcp://127.0.0.1:",
        "tcp://127.0.0.1",
        "tcp://:5555",
        "tcp://127.0.0.1:\uff15\uff15",  # full-width digits
        "nonsense",
        "udp://127.0.0.1:5555",
    ],
)
@pytest.mark.parametrize("bind", [True, False])
def test_addresses_libzmq_would_misread_or_refuse_are_config_errors(address, bind):
    with pytest.raises(ConfigError, match=r"tcp://HOST:PORT|port must be"):
        check_endpoint(address, bind=bind)


def test_usable_addresses_pass():
    for address in ("tcp://127.0.0.1:1", "tcp://hub:65535", "tcp://[::1]:5555", "ipc:///tmp/x"):
        assert check_endpoint(address, bind=False) == address
    assert check_endpoint("tcp://*:5555", bind=True) == "tcp://*:5555"
    assert check_endpoint("tcp://*:*", bind=True) == "tcp://*:*"
    with pytest.raises(ConfigError):
        check_endpoint("tcp://hub:*", bind=False)
