"""Key files: one 32-byte key per file, as one line of Z85 text (RFC 32).

Shared by the CURVE keys (`daemon.transport.curve`) and the Ed25519 signing keys
(`daemon.transport.signkeys`): both are 32 bytes, 40 Z85 characters. Lines that are
empty or start with `#` are comments. Secret files must be private (no
group or other bits); names are peer ids. Every problem raises ConfigError
with one line saying which file and what to do; key material never appears
in messages.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import PeerId, check_peer_id
from fedd.daemon.errors import ConfigError

__all__ = [
    "KeyFiles",
    "check_key_kind",
    "check_key_name",
    "check_private_file",
    "is_z85",
    "key_files",
    "read_key",
    "write_new_key",
]

Z85_LENGTH = 40
_Z85_DIGITS = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
_Z85_VALUE = {c: i for i, c in enumerate(_Z85_DIGITS)}
_MAX_FILE = 4096  # a key file is a few lines; anything larger is not one
# What fedd's key files hold, by the suffix `fedd keys generate` gives them
# (daemon.transport.curve's and daemon.transport.signkeys' *_SUFFIX constants).
_KINDS = {
    ".pub": "CURVE public key",
    ".secret": "CURVE secret key",
    ".sigpub": "signing public key",
    ".sigkey": "signing key",
}


def check_key_kind(path: Path, suffix: str) -> None:
    """Refuse a file named as another kind of key file than `suffix` files are.

    Both halves of both pairs are 40 Z85 characters, so a mix-up would load
    without complaint and fail later, silently (a peer that never gets in, a
    signature nobody accepts). A name without one of fedd's suffixes passes.
    """
    kind = _KINDS.get(path.suffix)
    if kind is not None and path.suffix != suffix:
        raise ConfigError(
            f"{path}: named like a {kind} file, but a {_KINDS[suffix]} file "
            f"(NAME{suffix}) is needed here"
        )


def check_private_file(path: Path, what: str = "secret key") -> None:
    """`path` exists, is a regular file, and only its owner may read or write it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path}: not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path}: {what} file is accessible by group or others (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )


def read_key(path: Path, what: str) -> bytes:
    """The one 40-character Z85 key line of `path`, as ASCII bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > _MAX_FILE:
        raise ConfigError(f"{path}: too large for a {what} file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a {what} file (not ASCII text)") from None
    lines = [s for s in (line.strip() for line in text.splitlines()) if s and s[0] != "#"]
    if len(lines) != 1:
        raise ConfigError(f"{path}: expected one {what} line, found {len(lines)}")
    key = lines[0]
    if len(key) != Z85_LENGTH:
        raise ConfigError(
            f"{path}: a {what} is {Z85_LENGTH} Z85 characters, this one has {len(key)}"
        )
    if not is_z85(key):
        raise ConfigError(f"{path}: the {what} is not valid Z85 text")
    return key.encode("ascii")


def is_z85(text: str) -> bool:
    """Z85 digits only, each group of five encoding a 32-bit value (RFC 32)."""
    if len(text) % 5 or not set(text) <= _Z85_VALUE.keys():
        return False
    for start in range(0, len(text), 5):
        value = 0
        for char in text[start : start + 5]:
            value = value * 85 + _Z85_VALUE[char]
        if value >= 1 << 32:
            return False
    return True


@dataclass(frozen=True)
class KeyFiles:
    """One kind of key pair on disk: NAME + `public_suffix`, NAME + `secret_suffix`."""

    label: str  # "CURVE", "signing": for the files' comment lines
    public_suffix: str
    secret_suffix: str
    share_with: str  # who gets the public half, for its comment line

    def write_pair(
        self, out_dir: Path, name: str, public: bytes, secret: bytes
    ) -> tuple[Path, Path]:
        """Write a fresh pair (Z85 `public` and `secret`) as OUT_DIR/NAME.*, the secret 0600.

        Creates `out_dir` (mode 0700) if missing and refuses to overwrite either
        file. Returns (public path, secret path). Raises ConfigError.
        """
        name = check_key_name(name, "--name")
        public_path = out_dir / f"{name}{self.public_suffix}"
        secret_path = out_dir / f"{name}{self.secret_suffix}"
        try:
            out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{out_dir}: cannot create: {exc.strerror or exc}") from None
        for path in (public_path, secret_path):
            if path.exists():
                raise ConfigError(f"{path} exists; remove it first or choose another --name")
        # The secret first, created 0600 from the start (never briefly world-readable).
        write_new_key(
            secret_path,
            f"# fedd {self.label} secret key {name!r}: keep it private (mode 0600)\n",
            secret,
            0o600,
        )
        write_new_key(
            public_path,
            f"# fedd {self.label} public key {name!r}: share it with {self.share_with}\n",
            public,
            0o644,
        )
        return public_path, secret_path


def write_new_key(path: Path, comment: str, key: bytes, mode: int) -> None:
    """Create `path` (never overwrite) holding `comment` and the Z85 `key`, with `mode`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(comment)
        f.write(key.decode("ascii") + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, mode)  # the umask may have taken bits off a public file


def check_key_name(name: str, what: str) -> PeerId:
    """A key's name is the peer id it stands for, and the stem of its files."""
    try:
        peer = check_peer_id(name, "a key name")
    except LocalProtocolError as exc:
        raise ConfigError(f"{what} {name!r} is not usable: {exc.reason}") from None
    # Peer ids may hold '/' and '.'; file stems in a key directory may not: '../x'
    # would leave the directory, and '.x' would be a hidden file key_files skips.
    if "/" in name or name.startswith("."):
        raise ConfigError(
            f"{what} {name!r} is not usable: a key name is a file name in the key "
            "directory, so it has no '/' and does not start with '.'"
        )
    return peer


def key_files(directory: Path, suffix: str, what: str) -> Iterator[Path]:
    """The files of `directory` ending in `suffix` (not hidden), sorted by name."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        raise ConfigError(f"{directory}: no such {what} directory") from None
    except NotADirectoryError:
        raise ConfigError(f"{directory}: the {what} must be a directory") from None
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.name.endswith(suffix) and not entry.name.startswith("."):
            yield Path(entry.path)
