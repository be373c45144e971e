"""CURVE key files: generate, load and check them; the hub's allow-list.

CurveZMQ (RFC 26) authenticates both ends of a connection with Curve25519
key pairs and encrypts the traffic. fedd keeps each key in its own text file:

    NAME.pub     the public key, Z85 (40 characters); may be shared freely
    NAME.secret  the secret key, Z85; mode 0600, never shared

Lines that are empty or start with `#` are comments; exactly one other line
must hold the key. The public key is not stored beside the secret: it is
derived from it (`zmq.curve_public`), so the two cannot disagree.

The hub's allow-list is a directory of `*.pub` files; the stem of each file
(`peer-3` for `peer-3.pub`) is the name under which a peer holding the
matching secret key is known: its peer id in the registry and in peers.csv.
Other files in that directory are ignored, so a directory holding both
halves of the peers' keys works as an allow-list too.

Every problem (missing file, wrong length, bad characters, a secret readable
by others, two names for one key, a file named as another kind of key file)
raises `ConfigError` with one line saying which file and what to do.
Secrets never appear in messages or reprs.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import zmq

from fedd.crypto.secagg.fields import PeerId
from fedd.daemon.errors import ConfigError
from fedd.daemon.transport.keyfiles import (
    KeyFiles,
    check_key_kind,
    check_key_name,
    check_private_file,
    key_files,
    read_key,
)

__all__ = [
    "HUB_NAME",
    "PUBLIC_SUFFIX",
    "SECRET_SUFFIX",
    "AllowList",
    "KeyPair",
    "claim_secret",
    "generate",
    "load_allow_dir",
    "load_public",
    "load_secret",
    "signature",
]

PUBLIC_SUFFIX = ".pub"
SECRET_SUFFIX = ".secret"  # noqa: S105 (a file name suffix, not a secret)
# The name the hub's own key is known under (fedd status run beside the hub).
HUB_NAME = PeerId("hub")


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair as Z85 bytes (what pyzmq's socket options take)."""

    public: bytes
    secret: bytes = field(repr=False)
    name: str = ""

    @property
    def public_text(self) -> str:
        return self.public.decode("ascii")


@dataclass(frozen=True)
class AllowList:
    """Public keys the hub accepts, each with the name it is known under.

    `source` is the directory it was read from; `keys` maps the Z85 text of
    each public key (as ZAP's User-Id carries it) to its name.
    """

    source: Path
    keys: Mapping[str, PeerId]

    def __len__(self) -> int:
        return len(self.keys)

    def name_of(self, key: str) -> PeerId | None:
        """The name of the public key whose Z85 text is `key`, or None if it is not allowed."""
        return self.keys.get(key)

    def names(self) -> frozenset[PeerId]:
        return frozenset(self.keys.values())


CURVE_FILES = KeyFiles("CURVE", PUBLIC_SUFFIX, SECRET_SUFFIX, "the hub")


def generate(out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write a fresh key pair as OUT_DIR/NAME.pub and OUT_DIR/NAME.secret (mode 0600).

    Refuses to overwrite either file. Returns (public path, secret path).
    Raises ConfigError.
    """
    public, secret = zmq.curve_keypair()
    return CURVE_FILES.write_pair(out_dir, name, public, secret)


def load_secret(path: Path) -> KeyPair:
    """The key pair whose secret half is in `path` (named after the file's stem).

    Raises ConfigError when the file is named as another kind of key file
    (NAME.pub, say), is missing or unreadable, is readable or writable by
    group or others, or does not hold one 40-character Z85 key.
    """
    check_key_kind(path, SECRET_SUFFIX)
    check_private_file(path)
    secret = read_key(path, "secret key")
    try:
        public = zmq.curve_public(secret)
    except zmq.ZMQError as exc:  # libzmq built without CURVE
        raise ConfigError(f"{path}: cannot derive the public key: {exc}") from None
    return KeyPair(public, secret, path.stem)


def claim_secret(directory: Path) -> tuple[KeyPair, IO[bytes]]:
    """The first `*.secret` of `directory` that no other process has claimed.

    For identical replicas sharing one key directory (`docker compose up
    --scale peer=N` on one host): each takes a different key. The claim is an
    exclusive `flock` on the key file, held for as long as the returned file
    stays open and released by the kernel when the process dies, so a
    restarted replica can take a key again. Raises ConfigError when the
    directory holds no secret key, every key is claimed, or a key is unusable.
    """
    try:
        paths = sorted(
            Path(e.path) for e in os.scandir(directory) if e.name.endswith(SECRET_SUFFIX)
        )
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    for path in paths:
        try:
            handle = open(path, "rb")  # noqa: SIM115 (returned to the caller, who holds it open)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            return load_secret(path), handle
        except ConfigError:
            handle.close()
            raise
    if not paths:
        raise ConfigError(f"{directory}: no *{SECRET_SUFFIX} key files to claim")
    raise ConfigError(
        f"{directory}: all {len(paths)} secret key(s) are claimed by other peers; "
        "generate more with `fedd keys generate`"
    )


def load_public(path: Path) -> bytes:
    """The Z85 public key in `path`. Raises ConfigError (named as another kind of key
    file, missing, wrong length, bad text)."""
    check_key_kind(path, PUBLIC_SUFFIX)
    try:
        if not path.is_file():
            raise ConfigError(f"{path}: no such public key file")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return read_key(path, "public key")


def load_allow_dir(directory: Path) -> AllowList:
    """Every `*.pub` of `directory`, by name (the file's stem). Raises ConfigError.

    An empty allow-list is allowed (keys may be added later; the hub reloads),
    but a name that is not a valid peer id, or one key under two names, is not.
    """
    keys: dict[str, PeerId] = {}
    for path in _public_files(directory):
        name = check_key_name(path.stem, f"{path}: the file name")
        key = load_public(path).decode("ascii")
        other = keys.get(key)
        if other is not None:
            raise ConfigError(
                f"{directory}: {other}{PUBLIC_SUFFIX} and {path.name} hold the same key; "
                "one key must have one name"
            )
        keys[key] = name
    return AllowList(directory, keys)


def signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a `*.pub` of `directory` is added, removed or rewritten.

    Empty when the directory cannot be listed (the reload then reports why).
    """
    try:
        return tuple(
            (p.name, s.st_mtime_ns, s.st_size)
            for p in _public_files(directory)
            for s in (p.stat(),)
        )
    except (ConfigError, OSError):
        return ()


def _public_files(directory: Path) -> Iterator[Path]:
    return key_files(directory, PUBLIC_SUFFIX, "allow-list")
