"""Signing key files: generate, load, trust, and every way they must be refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fedd.crypto.signing import verify
from fedd.daemon.errors import ConfigError
from fedd.daemon.transport.curve import generate
from fedd.daemon.transport.signkeys import generate_signing, load_signing_key, load_trusted_dir


def test_generated_keys_load_sign_and_verify(tmp_path: Path):
    public, secret = generate_signing(tmp_path, "bank-a")
    assert (public.name, secret.name) == ("bank-a.sigpub", "bank-a.sigkey")
    assert secret.stat().st_mode & 0o777 == 0o600
    key = load_signing_key(secret)
    trusted = load_trusted_dir(tmp_path)
    assert list(trusted) == ["bank-a"]
    verify(trusted["bank-a"], b"statement", key.sign(b"statement"))


def test_a_shared_secret_file_is_refused(tmp_path: Path):
    _, secret = generate_signing(tmp_path, "p1")
    secret.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signing_key(secret)


def test_missing_and_malformed_files_are_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such signing key file"):
        load_signing_key(tmp_path / "nope.sigkey")
    bad = tmp_path / "bad.sigkey"
    bad.write_text("x" * 12 + "\n")
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match="40 Z85 characters"):
        load_signing_key(bad)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("k.sigpub", "signing public key"),
        ("k.secret", "CURVE secret key"),
        ("k.pub", "CURVE public key"),
    ],
)
def test_a_file_named_as_another_kind_of_key_is_refused(tmp_path: Path, name: str, kind: str):
    generate_signing(tmp_path, "k")
    generate(tmp_path, "k")
    path = tmp_path / name
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: named like a {kind} file"):
        load_signing_key(path)
    mounted = tmp_path / "mounted"  # names without fedd's suffixes are not judged
    mounted.write_bytes((tmp_path / "k.sigkey").read_bytes())
    mounted.chmod(0o600)
    assert load_signing_key(mounted).public == load_trusted_dir(tmp_path)["k"]


def test_the_trusted_dir_refuses_duplicates_bad_names_and_emptiness(tmp_path: Path):
    with pytest.raises(ConfigError, match="nobody would be trusted"):
        load_trusted_dir(tmp_path)
    public, _ = generate_signing(tmp_path / "keys", "p1")
    (tmp_path / "keys" / "p2.sigpub").write_bytes(public.read_bytes())
    with pytest.raises(ConfigError, match="same key"):
        load_trusted_dir(tmp_path / "keys")
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "a b.sigpub").write_bytes(public.read_bytes())
    with pytest.raises(ConfigError, match="not usable"):
        load_trusted_dir(odd)


def test_generation_never_overwrites(tmp_path: Path):
    generate_signing(tmp_path, "p1")
    with pytest.raises(ConfigError, match="exists"):
        generate_signing(tmp_path, "p1")
