"""`fedd keys generate`: CURVE and signing key files for the hub and the peers."""

from __future__ import annotations

from pathlib import Path

import click

from fedd.cli.options import DIR
from fedd.daemon.errors import ConfigError

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """Key files: CURVE (transport) and Ed25519 (signing) pairs for the hub and the peers."""


@keys.command("generate")
@click.option("--out", type=DIR, required=True, help="Directory for the NAME.* key files.")
@click.option(
    "--name",
    "names",
    multiple=True,
    default=("fedd",),
    help="Key name (a peer's id on the hub's allow-list); repeat for several peers.",
)
def keys_generate(*, out: Path, names: tuple[str, ...]) -> None:
    """Write each NAME's keys: CURVE (NAME.pub, NAME.secret) and signing (NAME.sigpub, NAME.sigkey).

    Public halves (.pub for the hub's --allow-dir, .sigpub for the peers'
    --trusted-dir) may be shared; secret halves are written with mode 0600.
    """
    from fedd.daemon.transport.curve import generate
    from fedd.daemon.transport.keyfiles import check_key_name
    from fedd.daemon.transport.signkeys import generate_signing

    checked = [check_key_name(name, "--name") for name in names]  # all, before writing any
    twice = next((name for i, name in enumerate(checked) if name in checked[:i]), None)
    if twice is not None:
        raise ConfigError(f"--name {twice!r} is given twice")
    for name in names:
        public, secret = generate(out, name)
        sign_public, sign_secret = generate_signing(out, name)
        click.echo(f"wrote {public}, {secret}, {sign_public} and {sign_secret}")
