"""`python -m fedd` is the `fedd` command (used to start child daemons)."""

from fedd.cli.main import main

main()
