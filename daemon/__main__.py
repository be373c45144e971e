"""`python -m daemon` is the `fedd` command (used to start child daemons)."""

from daemon.cli import main

main()
