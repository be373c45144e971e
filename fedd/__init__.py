"""fedd: federated fraud-detection training with secure aggregation.

Installed, all of fedd lives under this one name (so it never collides with
other distributions' `daemon` or `crypto`). In the repository its rooms are
the top-level folders, and `fedd/<room>` is a link to each:

    fedd.learner, fedd.topology   data, model and metrics; who masks with whom
    fedd.crypto                   primitives and the sans-IO SecAgg/SecAgg+ sessions
    fedd.daemon                   what both daemons use to talk and to keep state, and the hub
    fedd.peer                     the peer daemon

and, in this folder, the command line and what only it runs:

    fedd.cli                      the `fedd` command line, one module per command
    fedd.demo, fedd.simulate      the whole pipeline locally; rounds without a network
    fedd.report                   the federated run against the centralized baseline
    fedd.launch                   daemons as child processes (demo, benchmarks, tests)

Imports point downward only, in that order from the bottom; the command line
is the one place that may import everything. tests/test_layers.py holds the
rule.
"""
