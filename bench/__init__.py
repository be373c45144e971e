"""Benchmarks: each prints a table and can write CSV. Run with `python -m bench.<name>`."""
