"""Exceptions of the crypto and protocol layers, one small class per outcome.

Whose fault it is decides the class:
- `LocalProtocolError`: our own caller asked for something illegal (a bug here).
- `RemoteProtocolError`: another party sent something illegal; drop it, log
  why, keep running. `daemon.transport.wire.MalformedMessage` is one of these.
- `RoundAborted`, `CryptoCheckFailed`: outcomes of a round, not bugs.
- `ParameterError`: a user-chosen parameter is unusable (for example a
  fixed-point scale that could wrap the modulus); the message names it.

Messages never contain secret material.
"""

from __future__ import annotations

__all__ = [
    "CryptoCheckFailed",
    "LocalProtocolError",
    "ParameterError",
    "ProtocolError",
    "RemoteProtocolError",
    "RoundAborted",
]


class ProtocolError(Exception):
    """A call or message broke the protocol. Abstract: raise a subclass."""

    def __init__(self, reason: str, *, peer: str | None = None) -> None:
        if type(self) is ProtocolError:
            raise TypeError("raise LocalProtocolError or RemoteProtocolError")
        super().__init__(reason)
        self.reason = reason
        self.peer = peer


class LocalProtocolError(ProtocolError):
    """Our own caller asked for something illegal: a bug on this side."""


class RemoteProtocolError(ProtocolError):
    """Another party sent something illegal: drop it, log why, keep running."""


class RoundAborted(Exception):
    """Fewer than t parties got through a stage; the global model is untouched."""


class CryptoCheckFailed(Exception):
    """A cryptographic check failed: a tag, a share, a signature or a reconstruction."""


class ParameterError(ValueError):
    """A user-chosen parameter cannot work; the message names it and says why."""
