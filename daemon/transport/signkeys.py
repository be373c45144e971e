"""Ed25519 signing key files: a peer's long-term identity for active rounds.

    NAME.sigkey   the secret key (32 bytes as Z85); mode 0600, never shared
    NAME.sigpub   the public key; every other peer puts it in its trusted dir

In an active round (`fedd start hub --active`) a peer signs its key
advertisement and the survivor set with its secret key, and accepts another
peer's keys only under a signature that verifies with NAME.sigpub from its
own trusted directory, NAME being that peer's id. The hub never sees these
keys, so it cannot invent peers or show peers different survivor sets.
Same file rules as the CURVE keys (`daemon.transport.keyfiles`).
"""

from __future__ import annotations

from pathlib import Path

from zmq.utils import z85

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.signing import SigningKey
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
    "SIGN_PUBLIC_SUFFIX",
    "SIGN_SECRET_SUFFIX",
    "generate_signing",
    "load_signing_key",
    "load_trusted_dir",
]

SIGN_PUBLIC_SUFFIX = ".sigpub"
SIGN_SECRET_SUFFIX = ".sigkey"  # noqa: S105 (a file name suffix, not a secret)


SIGNING_FILES = KeyFiles(
    "signing", SIGN_PUBLIC_SUFFIX, SIGN_SECRET_SUFFIX, "every other peer's --trusted-dir"
)


def generate_signing(out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write OUT_DIR/NAME.sigpub and OUT_DIR/NAME.sigkey (0600); never overwrites.

    Returns (public path, secret path). Raises ConfigError.
    """
    key = SigningKey.generate()
    return SIGNING_FILES.write_pair(
        out_dir, name, z85.encode(key.public), z85.encode(key.private_bytes())
    )


def load_signing_key(path: Path) -> SigningKey:
    """The signing key in `path`. Raises ConfigError (named as another kind of key
    file, missing, shared, malformed)."""
    check_key_kind(path, SIGN_SECRET_SUFFIX)
    check_private_file(path, "signing key")
    return SigningKey.from_private_bytes(z85.decode(read_key(path, "signing key")))


def load_trusted_dir(directory: Path) -> dict[PeerId, bytes]:
    """Every NAME.sigpub of `directory`: peer id NAME -> its Ed25519 public key.

    Raises ConfigError when a name is not a valid peer id, a file is
    malformed, one key appears under two names, or the directory is empty.
    """
    trusted: dict[PeerId, bytes] = {}
    names: dict[bytes, PeerId] = {}
    for path in key_files(directory, SIGN_PUBLIC_SUFFIX, "trusted keys"):
        name = check_key_name(path.name[: -len(SIGN_PUBLIC_SUFFIX)], f"{path}: the name")
        public = z85.decode(read_key(path, "signing public key"))
        if public in names:
            raise ConfigError(
                f"{directory}: {names[public]}{SIGN_PUBLIC_SUFFIX} and {path.name} hold the "
                "same key; one key must have one name"
            )
        names[public] = name
        trusted[name] = public
    if not trusted:
        raise ConfigError(f"{directory}: no *{SIGN_PUBLIC_SUFFIX} files; nobody would be trusted")
    return trusted
