"""CURVE key files, the allow-list, and the ZAP decision (no sockets but in the last tests)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq
from click.testing import CliRunner
from zmq.utils import z85

from fedd.cli.main import main
from fedd.crypto.secagg.fields import PeerId
from fedd.daemon.errors import ConfigError
from fedd.daemon.transport.curve import (
    HUB_NAME,
    AllowList,
    claim_secret,
    generate,
    load_allow_dir,
    load_public,
    load_secret,
)
from fedd.daemon.transport.signkeys import generate_signing
from fedd.daemon.transport.zap import (
    ZAP_DOMAIN,
    MalformedZapRequest,
    ZapHandler,
    ZapRequest,
    decide,
    reply_frames,
)
from tests.daemon._support import mode


def test_generate_writes_a_private_secret_and_a_matching_public_key(tmp_path: Path):
    public, secret = generate(tmp_path / "keys", "peer-1")
    assert (public.name, secret.name) == ("peer-1.pub", "peer-1.secret")
    assert mode(secret) == 0o600 and mode(public) == 0o644
    assert mode(tmp_path / "keys") == 0o700
    pair = load_secret(secret)
    assert pair.name == "peer-1"
    assert pair.public == load_public(public)
    assert len(pair.secret) == 40 and pair.secret != pair.public
    assert pair.secret.decode() not in repr(pair)


def test_generate_never_overwrites(tmp_path: Path):
    generate(tmp_path, "a")
    before = (tmp_path / "a.secret").read_bytes()
    with pytest.raises(ConfigError, match=r"a\.pub exists"):
        generate(tmp_path, "a")
    assert (tmp_path / "a.secret").read_bytes() == before


def test_fedd_keys_generate_on_the_command_line(tmp_path: Path):
    result = CliRunner().invoke(
        main, ["keys", "generate", "--out", str(tmp_path), "--name", "p1", "--name", "p2"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "p1.pub",
        "p1.secret",
        "p1.sigkey",
        "p1.sigpub",
        "p2.pub",
        "p2.secret",
        "p2.sigkey",
        "p2.sigpub",
    ]
    for name in ("p1.secret", "p1.sigkey", "p2.secret", "p2.sigkey"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    bad = CliRunner().invoke(main, ["keys", "generate", "--out", str(tmp_path), "--name", "a b"])
    assert bad.exit_code == 1 and bad.stderr.startswith("fedd: error: --name 'a b'")


@pytest.mark.parametrize(
    ("names", "message"),
    [(["ok", "a b"], "--name 'a b' is not usable"), (["x", "y", "x"], "--name 'x' is given twice")],
)
def test_keys_generate_checks_every_name_before_writing_any(
    tmp_path: Path, names: list[str], message: str
):
    args = ["keys", "generate", "--out", str(tmp_path / "keys")]
    result = CliRunner().invoke(main, [*args, *(a for n in names for a in ("--name", n))])
    assert result.exit_code == 1 and result.stderr.startswith(f"fedd: error: {message}")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize("name", ["../evil", "sub/name", ".hidden", ".."])
def test_generate_refuses_names_that_are_not_file_names_in_the_directory(tmp_path: Path, name: str):
    out = tmp_path / "keys"
    with pytest.raises(ConfigError, match="is not usable: a key name is a file name"):
        generate(out, name)
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "expected one secret key line, found 0"),
        ("# only a comment\n", "found 0"),
        ("x" * 39 + "\n", "40 Z85 characters, this one has 39"),
        ("x" * 41, "this one has 41"),
        ("a" * 40 + "\n" + "b" * 40 + "\n", "found 2"),
        ("~" * 40, "not valid Z85"),
        ("#" * 40 + "\n", "found 0"),
        ("%%%%%" * 8, "not valid Z85"),  # each group above 2**32
    ],
)
def test_bad_secret_files_are_one_line_errors(tmp_path: Path, content: str, message: str):
    path = tmp_path / "k.secret"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=message) as info:
        load_secret(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("bits", [0o640, 0o604, 0o644, 0o660, 0o602])
def test_secret_files_open_to_others_are_refused(tmp_path: Path, bits: int):
    _, secret = generate(tmp_path, "k")
    secret.chmod(bits)
    with pytest.raises(ConfigError, match=f"mode {bits:04o}.*chmod 600"):
        load_secret(secret)


@pytest.mark.parametrize(
    ("load", "name", "kind"),
    [
        (load_secret, "k.pub", "CURVE public key"),
        (load_secret, "k.sigkey", "signing key"),
        (load_public, "k.secret", "CURVE secret key"),
        (load_public, "k.sigpub", "signing public key"),
    ],
)
def test_a_file_named_as_another_kind_of_key_is_refused(
    tmp_path: Path, load: Callable[[Path], object], name: str, kind: str
):
    generate(tmp_path, "k")
    generate_signing(tmp_path, "k")
    path = tmp_path / name
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: named like a {kind} file"):
        load(path)
    mounted = tmp_path / "mounted"  # names without fedd's suffixes are not judged
    mounted.write_bytes((tmp_path / "k.secret").read_bytes())
    mounted.chmod(0o600)
    assert load_secret(mounted).public == load_public(tmp_path / "k.pub")


def test_missing_key_files_are_named(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such secret key file"):
        load_secret(tmp_path / "nope.secret")
    with pytest.raises(ConfigError, match="no such public key file"):
        load_public(tmp_path / "nope.pub")
    with pytest.raises(ConfigError, match="no such allow-list directory"):
        load_allow_dir(tmp_path / "nope")


def test_a_public_key_of_the_wrong_length_is_refused(tmp_path: Path):
    (tmp_path / "p.pub").write_text(z85.encode(os.urandom(24)).decode())
    with pytest.raises(ConfigError, match=r"p\.pub: a public key is 40 Z85 characters"):
        load_allow_dir(tmp_path)


def test_the_allow_list_names_keys_by_file_stem_and_ignores_other_files(tmp_path: Path):
    a_pub, _ = generate(tmp_path, "alice")
    generate(tmp_path, "bob")
    (tmp_path / "notes.txt").write_text("not a key")
    allow = load_allow_dir(tmp_path)
    assert allow.names() == {"alice", "bob"}
    assert allow.name_of(load_public(a_pub).decode()) == "alice"
    assert allow.name_of("x" * 40) is None


def test_one_key_under_two_names_is_refused(tmp_path: Path):
    pub, _ = generate(tmp_path, "alice")
    (tmp_path / "mallory.pub").write_bytes(pub.read_bytes())
    with pytest.raises(ConfigError, match="hold the same key"):
        load_allow_dir(tmp_path)


def test_an_unusable_name_is_refused(tmp_path: Path):
    pub, _ = generate(tmp_path, "alice")
    pub.rename(tmp_path / "al,ice.pub")
    with pytest.raises(ConfigError, match=r"al,ice\.pub: the file name 'al,ice' is not usable"):
        load_allow_dir(tmp_path)


def test_replicas_claim_distinct_keys_and_a_closed_claim_frees_its_key(tmp_path: Path):
    generate(tmp_path, "p1")
    generate(tmp_path, "p2")
    first, hold1 = claim_secret(tmp_path)
    second, hold2 = claim_secret(tmp_path)
    assert {first.name, second.name} == {"p1", "p2"}
    with pytest.raises(ConfigError, match="all 2 secret key"):
        claim_secret(tmp_path)
    hold1.close()
    again, hold3 = claim_secret(tmp_path)
    assert again.name == first.name
    hold2.close()
    hold3.close()


# -- the ZAP decision -------------------------------------------------------------


def request(key: bytes, *, domain: str = ZAP_DOMAIN, mechanism: str = "CURVE") -> ZapRequest:
    return ZapRequest.parse(
        [b"1.0", b"7", domain.encode(), b"10.0.0.9", b"", mechanism.encode(), key]
    )


def keypair() -> tuple[str, bytes]:
    public, _ = zmq.curve_keypair()
    return public.decode(), z85.decode(public)


def test_a_key_on_the_list_is_accepted_with_its_key_as_user_id():
    text, raw = keypair()
    allow = AllowList(Path("allow"), {text: PeerId("alice")})
    decision = decide(request(raw), allow, hub_key="h" * 40)
    assert decision.allowed and decision.name == "alice" and decision.user_id == text
    assert reply_frames(b"7", decision) == [b"1.0", b"7", b"200", b"OK", text.encode(), b""]


def test_unknown_keys_wrong_domains_and_other_mechanisms_are_denied():
    text, raw = keypair()
    other, other_raw = keypair()
    allow = AllowList(Path("allow"), {text: PeerId("alice")})
    denied = decide(request(other_raw), allow, hub_key="h" * 40)
    assert not denied.allowed and denied.key == other and "not on the allow-list" in denied.reason
    assert reply_frames(b"7", denied)[2] == b"400" and reply_frames(b"7", denied)[4] == b""
    assert not decide(request(raw, domain="elsewhere"), allow, "h" * 40).allowed
    assert not decide(request(b"user", mechanism="PLAIN"), allow, "h" * 40).allowed
    assert not decide(request(raw[:31]), allow, "h" * 40).allowed


def test_the_hubs_own_key_is_accepted_as_the_hub():
    text, raw = keypair()
    decision = decide(request(raw), AllowList(Path("allow"), {}), hub_key=text)
    assert decision.allowed and decision.name == HUB_NAME


@pytest.mark.parametrize(
    "frames",
    [[], [b"1.0", b"1", b"d", b"a", b"i"], [b"2.0", b"1", b"d", b"a", b"i", b"CURVE", b"k"]],
)
def test_malformed_requests_raise(frames: list[bytes]):
    with pytest.raises(MalformedZapRequest):
        ZapRequest.parse(frames)


# -- the handler's allow-list reloads --------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_handler_reloads_a_changed_directory_and_reports_revoked_names(tmp_path: Path):
    a_pub, _ = generate(tmp_path, "alice")
    generate(tmp_path, "bob")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    clock = Clock()
    handler = ZapHandler(ctx, load_allow_dir(tmp_path), "h" * 40, clock=clock)
    try:
        alice = load_public(a_pub).decode()
        assert handler.maybe_reload() is None  # too soon to look
        clock.now = 2.0
        assert handler.maybe_reload() is None  # nothing changed
        (tmp_path / "bob.pub").unlink()
        generate(tmp_path, "carol")
        clock.now = 4.0
        assert handler.maybe_reload() == {"bob"}
        assert handler.allow.names() == {"alice", "carol"}
        assert handler.name_of(alice) == "alice" and handler.name_of("h" * 40) == HUB_NAME
        # A broken directory keeps the previous list.
        (tmp_path / "broken.pub").write_text("short")
        time.sleep(0.01)
        clock.now = 6.0
        assert handler.maybe_reload() is None
        assert handler.allow.names() == {"alice", "carol"}
    finally:
        handler.close()
        ctx.term()
