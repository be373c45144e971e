"""The hub's ZAP handler: which CURVE keys may connect, and who they are.

ZeroMQ asks a ZAP handler (RFC 27) bound at `inproc://zeromq.zap.01` of the
socket's context whether to accept each new CURVE connection, passing the
client's public key. The answer carries a User-Id, which libzmq then attaches
to every message received on that connection (`Frame.get("User-Id")`).

The decision is a pure function, `decide`: a key on the allow-list gets 200
with its Z85 text as User-Id; anything else gets 400 and a reason. The hub's
own key is accepted too (under `HUB_NAME`), so `fedd status` run beside the
hub with the hub's secret can talk to it; the hub never lets that key
register as a peer. The User-Id is the key, not its name, so that a key
removed from the allow-list stops being accepted on connections that are
already open: the hub looks the name up again for every message.

`ZapHandler` is the I/O around it: a REP socket that the hub's loop polls
beside its ROUTER (no thread), denial logging (each key at most once a
minute, every denial counted), and reloading the allow-list when its
directory changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import zmq
from zmq.utils import z85

from fedd.crypto.secagg.fields import PeerId
from fedd.daemon.errors import ConfigError
from fedd.daemon.transport.curve import HUB_NAME, AllowList, load_allow_dir, signature

__all__ = [
    "ZAP_DOMAIN",
    "ZAP_ENDPOINT",
    "Decision",
    "MalformedZapRequest",
    "ZapHandler",
    "ZapRequest",
    "decide",
    "reply_frames",
]

log = logging.getLogger("fedd.hub.auth")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = "fedd"
_VERSION = b"1.0"
_KEY_SIZE = 32
_LOG_EVERY_S = 60.0
_RELOAD_EVERY_S = 1.0
_MAX_REMEMBERED = 1024


class MalformedZapRequest(Exception):
    """libzmq sent a ZAP request that does not follow RFC 27."""


@dataclass(frozen=True, slots=True)
class ZapRequest:
    """One ZAP request, as RFC 27 frames it."""

    request_id: bytes
    domain: str
    address: str
    mechanism: str
    credentials: tuple[bytes, ...]

    @classmethod
    def parse(cls, frames: Sequence[bytes]) -> ZapRequest:
        """Raises MalformedZapRequest unless `frames` is a version 1.0 request."""
        if len(frames) < 6 or frames[0] != _VERSION:
            raise MalformedZapRequest(f"not a ZAP 1.0 request ({len(frames)} frames)")
        try:
            domain = frames[2].decode("ascii")
            address = frames[3].decode("ascii")
            mechanism = frames[5].decode("ascii")
        except UnicodeDecodeError:
            raise MalformedZapRequest("ZAP request fields are not ASCII") from None
        return cls(frames[1], domain, address, mechanism, tuple(frames[6:]))


@dataclass(frozen=True, slots=True)
class Decision:
    """Accept (`user_id` is the key's Z85 text, `name` its name) or deny with `reason`."""

    allowed: bool
    key: str  # Z85 text of the client's public key, "" when it sent none
    name: PeerId | None = None
    reason: str = ""

    @property
    def user_id(self) -> str:
        return self.key if self.allowed else ""


def decide(request: ZapRequest, allow: AllowList, hub_key: str) -> Decision:
    """Whether the CURVE client of `request` may connect. Pure; never raises."""
    key = ""
    if request.mechanism == "CURVE" and len(request.credentials) == 1:
        raw = request.credentials[0]
        if len(raw) == _KEY_SIZE:
            key = z85.encode(raw).decode("ascii")
    if request.domain != ZAP_DOMAIN:
        return Decision(False, key, reason=f"unexpected ZAP domain {request.domain!r}")
    if not key:
        return Decision(False, key, reason=f"{request.mechanism} is not CURVE with one public key")
    if key == hub_key:
        return Decision(True, key, HUB_NAME)
    name = allow.name_of(key)
    if name is None:
        return Decision(False, key, reason=f"key not on the allow-list {allow.source}")
    return Decision(True, key, name)


def reply_frames(request_id: bytes, decision: Decision) -> list[bytes]:
    """The RFC 27 reply to the request `request_id`."""
    if decision.allowed:
        return [_VERSION, request_id, b"200", b"OK", decision.user_id.encode("ascii"), b""]
    return [_VERSION, request_id, b"400", b"not allowed", b"", b""]


class ZapHandler:
    """The hub's ZAP endpoint. Build it before binding any CURVE socket of `ctx`.

    Attributes: `allow` (the current allow-list), `socket` (for the hub's
    poller), `allowed` and `denied` (connection counts since start).
    """

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        allow: AllowList,
        hub_key: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allow = allow
        self.hub_key = hub_key
        self.allowed = 0
        self.denied = 0
        self._clock = clock
        self._logged: dict[str, float] = {}
        self._signature = signature(allow.source)
        self._next_reload = clock() + _RELOAD_EVERY_S
        self.socket: zmq.Socket[bytes] = ctx.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        try:
            self.socket.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            self.socket.close(0)
            raise ConfigError(f"cannot start the ZAP handler: {exc.strerror}") from None

    def close(self) -> None:
        self.socket.close(0)

    def serve(self) -> None:
        """Answer every pending request (non-blocking)."""
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                request = ZapRequest.parse(frames)
            except MalformedZapRequest as exc:
                log.error("ZAP: %s; denied", exc)
                request_id = frames[1] if len(frames) > 1 else b""
                self.socket.send_multipart(
                    [_VERSION, request_id, b"500", b"malformed request", b"", b""]
                )
                continue
            decision = decide(request, self.allow, self.hub_key)
            self._note(request, decision)
            self.socket.send_multipart(reply_frames(request.request_id, decision))

    def _note(self, request: ZapRequest, decision: Decision) -> None:
        if decision.allowed:
            self.allowed += 1
            log.debug("CURVE key of %s accepted from %s", decision.name, request.address)
            return
        self.denied += 1
        now = self._clock()
        if len(self._logged) >= _MAX_REMEMBERED:  # a flood of fresh keys costs no memory
            self._logged.clear()
        last = self._logged.get(decision.key)
        if last is None or now - last >= _LOG_EVERY_S:
            self._logged[decision.key] = now
            log.warning(
                "denied a CURVE connection from %s (key %s): %s (%d denied so far)",
                request.address or "?",
                decision.key or "-",
                decision.reason,
                self.denied,
            )

    def maybe_reload(self) -> set[PeerId] | None:
        """Reload the allow-list if its directory changed (checked once a second).

        Returns None when nothing was reloaded, else the names whose key was
        removed or replaced (their open connections must stop counting). A
        directory that no longer loads keeps the old list, with a warning.
        """
        now = self._clock()
        if now < self._next_reload:
            return None
        self._next_reload = now + _RELOAD_EVERY_S
        current = signature(self.allow.source)
        if current == self._signature:
            return None
        self._signature = current
        try:
            fresh = load_allow_dir(self.allow.source)
        except ConfigError as exc:
            log.warning("allow-list not reloaded, keeping the previous one: %s", exc)
            return None
        old = self.allow
        self.allow = fresh
        revoked = {name for key, name in old.keys.items() if fresh.name_of(key) != name}
        added = {name for key, name in fresh.keys.items() if old.name_of(key) != name}
        log.info(
            "allow-list reloaded from %s: %d keys (%d new, %d removed or replaced)",
            fresh.source,
            len(fresh),
            len(added),
            len(revoked),
        )
        return revoked

    def name_of(self, user_id: str) -> PeerId | None:
        """The name of an authenticated connection's key, None if no longer allowed."""
        if user_id == self.hub_key:
            return HUB_NAME
        return self.allow.name_of(user_id)
