"""Data pipeline, logistic regression and metrics, in pure standard library
Python (no numpy, pandas or scikit-learn: a hard constraint).

Every artifact this package reads or writes is CSV.

Imports nothing of fedd outside itself.
"""
