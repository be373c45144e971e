"""`fedd report`: the federated run against the centralized baseline.

    maker.py     reads the hub's state and the baseline, writes the report (`make_report`)
    compute.py   the records of a run in, the performance figures and the `Report` out
    decision.py  the equivalence decision (ROC-AUC and F1 within the tolerance)
    trust.py     what the decision rests on: test rows, positives, intervals
    budget.py    how much training each side had: rows seen and SGD steps
    rowscores.py both models' scores of each held-out row (written by `fedd demo`)
    files.py     performance_summary.csv and baseline_vs_fl.csv
    plots.py     the PNG plots; imports matplotlib, an optional extra, so it is imported lazily

The baseline's scores come from `learner.centralized.read_centralized_metrics`,
beside the code that writes that file.
"""
