"""Every CLI flag and every CSV input path tried with bad values, as real runs.

    python -m bench.bad_input [--csv PATH] [--only TEXT]

Each case runs `fedd ...` as its own process in a scratch directory (file
names in the table are relative to it) and is checked: a non-zero exit, no
traceback, and exactly one line that says what is wrong. That line is ours
(`fedd: error: ...`, exit 1), or click's (`Error: ...`, exit 2, below
click's usage hint) for a value click itself refuses. Prints the table
docs/cli.md's "What fedd says when input is wrong" section holds; exits 1 if
any case broke a rule.
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fedd.daemon.state.commits import Commit
from fedd.daemon.state.hubfiles import ClientPerfRow, MetricsRow, PerfRow, RoundRow
from fedd.daemon.state.store import HubStore
from fedd.daemon.state.survivors import SurvivorRow
from fedd.daemon.transport.curve import generate
from fedd.daemon.transport.signkeys import generate_signing
from fedd.learner.centralized import RECORD_FIELDS
from fedd.learner.strategy import Strategy
from fedd.peer.state import PeerRoundRow, PeerState

__all__ = [
    "CASES",
    "Case",
    "Outcome",
    "arguments",
    "check",
    "main",
    "prepare_workdir",
    "run_case",
    "table",
]

FEDD = (sys.executable, "-m", "fedd")
GOOD = "good.csv"


@dataclass(frozen=True)
class Case:
    """One bad input: `what` (the flag or file) and `tried`, as the table shows them."""

    what: str
    tried: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def _c(what: str, tried: str, *args: str, env: dict[str, str] | None = None) -> Case:
    return Case(what, tried, args, env or {})


def _hub(*args: str) -> tuple[str, ...]:
    return ("start", "hub", "--bind", "tcp://127.0.0.1:1", "--state-dir", "hubstate", *args)


def _peer(*args: str, data: str = GOOD, state: str = "peerstate") -> tuple[str, ...]:
    return ("start", "peer", "--data", data, "--state-dir", state, *args)


def _synth(*args: str) -> tuple[str, ...]:
    return ("data", "synth", "--quiet", *args)


def _split(*args: str, data: str = GOOD, peers: str = "2", out: str = "shards") -> tuple[str, ...]:
    return ("data", "split", "--quiet", "--input", data, "--peers", peers, "--out", out, *args)


def _prepare(*args: str, data: str = GOOD, out_root: str = "out") -> tuple[str, ...]:
    return (
        "data",
        "prepare",
        "--quiet",
        "--input",
        data,
        "--peers",
        "2",
        "--out-root",
        out_root,
        *args,
    )


def _pool(*args: str, clients: str = "pool_ok", out: str = "pooled") -> tuple[str, ...]:
    return ("data", "pool", "--clients", clients, "--out", out, *args)


def _central(*args: str, train: str = GOOD, test: str = GOOD) -> tuple[str, ...]:
    return ("train", "centralized", "--quiet", "--train", train, "--test", test, *args)


def _sim(*args: str) -> tuple[str, ...]:
    return ("simulate", "--peers", "5", "--dim", "10", *args)


def _report(*args: str, state: str = "hub_scored") -> tuple[str, ...]:
    return ("report", "--state-dir", state, "--centralized", "central.csv", "--out", "rep", *args)


def _hub_curve(*args: str, secret: str = "keys/hub.secret", allow: str = "keys") -> tuple[str, ...]:
    return _hub("--curve-secret", secret, "--allow-dir", allow, *args)


def _peer_curve(
    *args: str, secret: str = "keys/p1.secret", public: str = "keys/hub.pub"
) -> tuple[str, ...]:
    return _peer("--curve-secret", secret, "--hub-public", public, *args)


def _signed(*args: str, key: str = "keys/p1.sigkey", trusted: str = "keys") -> tuple[str, ...]:
    return _peer("--signing-key", key, "--trusted-dir", trusted, *args)


def _shard(*args: str) -> tuple[str, ...]:
    return ("start", "peer", "--state-dir", "peerstate", "--shard", "auto", *args)


def _keys(*args: str, out: str = "newkeys") -> tuple[str, ...]:
    return ("keys", "generate", "--out", out, *args)


# CSV files that are wrong in one way each (written by prepare_workdir).
BAD_CSVS: dict[str, tuple[str, bytes]] = {
    "empty.csv": ("an empty file", b""),
    "header_only.csv": ("a header, no rows", b"V1,V2,Class\n"),
    "no_label.csv": ("no Class column", b"V1,V2,Label\n1,2,0\n"),
    "text_cell.csv": ("a cell 'abc'", b"V1,V2,Class\n1,2,0\n1,abc,1\n"),
    "empty_cell.csv": ("an empty cell", b"V1,V2,Class\n1,2,0\n1,,1\n"),
    "nan_cell.csv": ("a cell 'nan'", b"V1,V2,Class\n1,2,0\n1,nan,1\n"),
    "inf_cell.csv": ("a cell '1e999'", b"V1,V2,Class\n1,2,0\n1e999,2,1\n"),
    "label_2.csv": ("label 2", b"V1,V2,Class\n1,2,0\n1,2,2\n"),
    "ragged.csv": ("a row with a cell missing", b"V1,V2,Class\n1,2,0\n1,1\n"),
    "dup_header.csv": ("a column name twice", b"V1,V1,Class\n1,2,0\n"),
    "unnamed.csv": ("a column with no name", b",V1,Class\n0,1,0\n1,2,1\n"),
    "latin1.csv": ("Latin-1 text", "V1,Vé,Class\n1,2,0\n".encode("latin-1")),
    "nul.csv": ("a NUL byte", b"V1,V2,Class\n1,2\x00,0\n"),
    "quote.csv": ("an unclosed quote", b'V1,V2,Class\n1,"2,0\n1,2,1\n'),
    "huge_cell.csv": ("a 200 kB cell", b"V1,V2,Class\n1," + b"1" * 200_000 + b",0\n"),
    "binary.csv": ("random bytes", bytes(range(256)) * 4),
    "one_class.csv": ("label 0 only", b"V1,V2,Class\n1,2,0\n2,3,0\n3,4,0\n4,5,0\n"),
    "bias_col.csv": ("a column named bias", b"bias,V2,Class\n1,2,0\n2,1,1\n"),
    "other_cols.csv": ("other columns than --train", b"V1,V9,Class\n1,2,0\n2,1,1\n"),
    "raw.csv": (
        "raw features (Time, Amount)",
        b"Time,Amount,Class\n"
        + b"".join(b"%d,%d.25,%d\n" % (i * 1800, (i * 37) % 500, i % 4 == 0) for i in range(40)),
    ),
}
DATA_FILE_CASES = [
    "empty.csv",
    "header_only.csv",
    "no_label.csv",
    "text_cell.csv",
    "empty_cell.csv",
    "nan_cell.csv",
    "inf_cell.csv",
    "label_2.csv",
    "ragged.csv",
    "dup_header.csv",
    "unnamed.csv",
    "latin1.csv",
    "nul.csv",
    "quote.csv",
    "huge_cell.csv",
    "binary.csv",
]


def _csv_cases(what: str) -> list[Case]:
    """The same bad CSV files through one command's CSV option."""
    cases = [
        _c(what, "a file that does not exist", *_ARGS[what]("missing.csv")),
        _c(what, "a directory", *_ARGS[what]("adir")),
    ]
    for name in DATA_FILE_CASES:
        cases.append(_c(what, f"{BAD_CSVS[name][0]} ({name})", *_ARGS[what](name)))
    return cases


_ARGS = {
    "data split --input": lambda f: _split(data=f),
    "data prepare --input": lambda f: _prepare(data=f),
    "train centralized --train": lambda f: _central(train=f),
    "train centralized --test": lambda f: _central(test=f),
    "start hub --eval-test": lambda f: _hub("--eval-test", f),
    "start peer --data": lambda f: _peer(data=f),
}

CASES: list[Case] = [
    # -- the command line itself
    _c("fedd", "an unknown command", "fly"),
    _c("fedd", "an unknown option", "--colour"),
    # -- data synth
    _c("data synth --rows", "0", *_synth("--rows", "0", "--out", "s.csv")),
    _c("data synth --rows", "'many'", *_synth("--rows", "many", "--out", "s.csv")),
    _c("data synth --rows", "missing", *_synth("--out", "s.csv")),
    _c("data synth --out", "a directory", *_synth("--rows", "10", "--out", "adir")),
    _c("data synth --out", "under a file", *_synth("--rows", "10", "--out", f"{GOOD}/s.csv")),
    _c(
        "data synth --fraud-rate",
        "1.5",
        *_synth("--rows", "10", "--out", "s.csv", "--fraud-rate", "1.5"),
    ),
    _c(
        "data synth --fraud-rate",
        "nan",
        *_synth("--rows", "10", "--out", "s.csv", "--fraud-rate", "nan"),
    ),
    _c("data synth --seed", "1.5", *_synth("--rows", "10", "--out", "s.csv", "--seed", "1.5")),
    _c(
        "FEDD_DATA_SYNTH_ROWS",
        "'abc' in the environment",
        *_synth("--out", "s.csv"),
        env={"FEDD_DATA_SYNTH_ROWS": "abc"},
    ),
    # -- data split
    *_csv_cases("data split --input"),
    _c("data split --input", "label 0 only (one_class.csv)", *_split(data="one_class.csv")),
    _c("data split --peers", "0", *_split(peers="0")),
    _c("data split --peers", "more peers than rows", *_split(peers="500")),
    _c("data split --out", "a file", *_split(out=GOOD)),
    _c("data split --out", "a directory holding another file", *_split(out="mixed")),
    _c("data split --label", "a column that is not there", *_split("--label", "Fraud")),
    _c("data split --label", "a feature column holding non-labels", *_split("--label", "V1")),
    _c("data split --partition", "'random'", *_split("--partition", "random")),
    _c("data split --alpha", "0", *_split("--partition", "dirichlet", "--alpha", "0")),
    _c(
        "data split --ignore-columns",
        "a column that is not there",
        *_split("--ignore-columns", "V1,Fraud"),
    ),
    _c("data split --ignore-columns", "the label", *_split("--ignore-columns", "Class")),
    _c("data split --ignore-columns", "an empty name", *_split("--ignore-columns", "V1,,V2")),
    _c("data split --encoding", "'klingon'", *_split("--encoding", "klingon")),
    _c("data split --fill-missing", "'nan'", *_split("--fill-missing", "nan")),
    _c("data split --fill-missing", "1e19", *_split("--fill-missing", "1e19")),
    _c("data split --seed", "'x'", *_split("--seed", "x")),
    _c(
        "FEDD_DATA_SPLIT_PEERS",
        "'x' in the environment",
        "data",
        "split",
        "--input",
        GOOD,
        "--out",
        "shards",
        env={"FEDD_DATA_SPLIT_PEERS": "x"},
    ),
    # -- data prepare
    *_csv_cases("data prepare --input"),
    _c("data prepare --input", "label 0 only (one_class.csv)", *_prepare(data="one_class.csv")),
    _c(
        "data prepare --peers",
        "0",
        "data",
        "prepare",
        "--input",
        GOOD,
        "--peers",
        "0",
        "--out-root",
        "out",
    ),
    _c(
        "data prepare --peers",
        "more peers than rows",
        "data",
        "prepare",
        "--quiet",
        "--input",
        GOOD,
        "--peers",
        "500",
        "--out-root",
        "out",
    ),
    _c(
        "data prepare --out-root",
        "a file",
        "data",
        "prepare",
        "--quiet",
        "--input",
        GOOD,
        "--peers",
        "2",
        "--out-root",
        GOOD,
    ),
    _c(
        "data prepare --out-root",
        "clients/ holding another file",
        *_prepare(out_root="mixed_root"),
    ),
    _c("data prepare --label", "a column that is not there", *_prepare("--label", "Fraud")),
    _c("data prepare --label", "a feature column holding non-labels", *_prepare("--label", "V1")),
    _c(
        "data prepare --ignore-columns",
        "a column named twice",
        *_prepare("--ignore-columns", "V1,V1"),
    ),
    _c("data prepare --encoding", "'klingon'", *_prepare("--encoding", "klingon")),
    _c("data prepare --fill-missing", "'nan'", *_prepare("--fill-missing", "nan")),
    _c("data prepare --test-size", "0", *_prepare("--test-size", "0")),
    _c("data prepare --test-size", "1", *_prepare("--test-size", "1")),
    _c("data prepare --test-size", "inf", *_prepare("--test-size", "inf")),
    _c("data prepare --partition", "'random'", *_prepare("--partition", "random")),
    _c("data prepare --alpha", "0", *_prepare("--partition", "dirichlet", "--alpha", "0")),
    _c("data prepare --alpha", "-inf", *_prepare("--partition", "dirichlet", "--alpha", "-inf")),
    _c("data prepare --seed", "'x'", *_prepare("--seed", "x")),
    # -- data pool
    _c("data pool --clients", "a directory that does not exist", *_pool(clients="nodir")),
    _c("data pool --clients", "a file", *_pool(clients=GOOD)),
    _c("data pool --clients", "a directory without peer files", *_pool(clients="adir")),
    _c("data pool --clients", "peer files with other columns", *_pool(clients="pool_cols")),
    _c("data pool --clients", "a peer file with a cell 'abc'", *_pool(clients="pool_text")),
    _c("data pool --clients", "too few rows to hold any out", *_pool(clients="pool_tiny")),
    _c("data pool --out", "a file", *_pool(out=GOOD)),
    _c("data pool --out", "under a file", *_pool(out=f"{GOOD}/pooled")),
    _c("data pool --label", "a column that is not there", *_pool("--label", "Fraud")),
    _c("data pool --label", "a feature column holding non-labels", *_pool("--label", "V1")),
    _c("data pool --fill-missing", "'nan'", *_pool("--fill-missing", "nan")),
    _c("data pool --holdout", "0", *_pool("--holdout", "0")),
    _c("data pool --holdout", "1", *_pool("--holdout", "1")),
    _c("data pool --holdout", "nan", *_pool("--holdout", "nan")),
    _c("data pool --holdout-seed", "-1", *_pool("--holdout-seed", "-1")),
    # -- train centralized
    *_csv_cases("train centralized --train"),
    _c(
        "train centralized --train",
        "label 0 only (one_class.csv)",
        *_central(train="one_class.csv"),
    ),
    *_csv_cases("train centralized --test"),
    _c(
        "train centralized --test",
        "other columns (other_cols.csv)",
        *_central(test="other_cols.csv"),
    ),
    _c(
        "train centralized --train",
        "raw features (raw.csv), without --standardize",
        *_central(train="raw.csv", test="raw.csv"),
    ),
    _c("train centralized --label", "a column that is not there", *_central("--label", "Fraud")),
    _c(
        "train centralized --ignore-columns",
        "a column not in --train",
        *_central("--ignore-columns", "Fraud"),
    ),
    _c("train centralized --encoding", "'klingon'", *_central("--encoding", "klingon")),
    _c("train centralized --fill-missing", "'nan'", *_central("--fill-missing", "nan")),
    _c("train centralized --epochs", "0", *_central("--epochs", "0")),
    _c("train centralized --lr", "0", *_central("--lr", "0")),
    _c("train centralized --lr", "nan", *_central("--lr", "nan")),
    _c("train centralized --lr", "1e300 (diverges)", *_central("--lr", "1e300", "--l2", "1e300")),
    _c("train centralized --batch-size", "0", *_central("--batch-size", "0")),
    _c("train centralized --l2", "-1", *_central("--l2", "-1")),
    _c("train centralized --class-weight", "'heavy'", *_central("--class-weight", "heavy")),
    _c("train centralized --threshold", "1.5", *_central("--threshold", "1.5")),
    _c("train centralized --out-dir", "a file", *_central("--out-dir", GOOD)),
    _c("train centralized --seed", "'x'", *_central("--seed", "x")),
    # -- demo
    _c("demo --peers", "1", "demo", "--peers", "1"),
    _c("demo --rounds", "0", "demo", "--rounds", "0"),
    _c("demo --rows", "0", "demo", "--rows", "0"),
    _c("demo --rows", "10 (too few to split)", "demo", "--quiet", "--rows", "10", "--out", "demo"),
    _c("demo --secagg", "'half'", "demo", "--secagg", "half"),
    _c("demo --out", "a file", "demo", "--quiet", "--rows", "100", "--out", GOOD),
    _c("demo --partition", "'random'", "demo", "--partition", "random"),
    _c("demo --alpha", "0", "demo", "--alpha", "0"),
    _c("demo --local-epochs", "-1", "demo", "--local-epochs", "-1"),
    _c(
        "demo --local-epochs",
        "1001 (above the hub's limit)",
        "demo",
        "--quiet",
        "--rows",
        "3000",
        "--out",
        "demo",
        "--local-epochs",
        "1001",
    ),
    _c(
        "demo --label",
        "a column that is not there",
        "demo",
        "--quiet",
        "--rows",
        "100",
        "--out",
        "demo_label",
        "--label",
        "Fraud",
    ),
    _c(
        "demo --ignore-columns",
        "without data/creditcard.csv",
        *("demo", "--quiet", "--rows", "100", "--out", "demo_ignore"),
        *("--ignore-columns", "account"),
    ),
    _c("demo --encoding", "'klingon'", "demo", "--encoding", "klingon"),
    _c("demo --fill-missing", "'nan'", "demo", "--fill-missing", "nan"),
    _c(
        "demo --fill-missing",
        "without data/creditcard.csv",
        *("demo", "--quiet", "--rows", "100", "--out", "demo_fill"),
        *("--fill-missing", "0"),
    ),
    _c(
        "demo --encoding",
        "without data/creditcard.csv",
        *("demo", "--quiet", "--rows", "100", "--out", "demo_encoding"),
        *("--encoding", "cp1252"),
    ),
    _c("demo --strategy", "'fedsgd'", "demo", "--strategy", "fedsgd"),
    _c("demo --server-lr", "-1", "demo", "--server-lr", "-1"),
    _c(
        "demo --server-momentum",
        "with --strategy scaffold",
        "demo",
        "--strategy",
        "scaffold",
        "--server-momentum",
        "0.5",
    ),
    _c("demo --beta1", "1.5", "demo", "--strategy", "fedyogi", "--beta1", "1.5"),
    _c("demo --beta2", "with --strategy fedavg (the default)", "demo", "--beta2", "0.99"),
    _c("demo --tau", "-0.001", "demo", "--strategy", "fedadam", "--tau", "-0.001"),
    _c("demo --proximal-mu", "'strong'", "demo", "--proximal-mu", "strong"),
    _c("demo --holdout", "0", "demo", "--holdout", "0"),
    _c("demo --holdout", "1", "demo", "--holdout", "1"),
    # -- report
    _c("report --state-dir", "a directory that does not exist", *_report(state="nodir")),
    _c("report --state-dir", "a file", *_report(state=GOOD)),
    _c("report --state-dir", "an empty directory", *_report(state="adir")),
    _c("report --state-dir", "a run without rounds", *_report(state="hub_ok")),
    _c("report --state-dir", "run.csv garbled", *_report(state="hub_garbled")),
    _c(
        "report --centralized",
        "a file that does not exist",
        *_report("--centralized", "missing.csv"),
    ),
    _c("report --centralized", "an empty file (empty.csv)", *_report("--centralized", "empty.csv")),
    _c("report --centralized", "a data CSV, not metrics", *_report("--centralized", GOOD)),
    _c("report --row-scores", "a file that does not exist", *_report("--row-scores", "none.csv")),
    _c("report --row-scores", "a data CSV, not row scores", *_report("--row-scores", GOOD)),
    _c("report --out", "a file", *_report("--out", GOOD)),
    _c("report --out", "under a file", *_report("--out", f"{GOOD}/rep")),
    _c("report --tolerance", "-1", *_report("--tolerance", "-1")),
    _c("report --tolerance", "nan", *_report("--tolerance", "nan")),
    # -- simulate
    _c("simulate --peers", "1", *_sim("--peers", "1")),
    _c("simulate --peers", "10001", *_sim("--peers", "10001")),
    _c("simulate --secagg", "'half'", *_sim("--secagg", "half")),
    _c("simulate --dim", "0", *_sim("--dim", "0")),
    _c("simulate --dropout", "1", *_sim("--dropout", "1")),
    _c("simulate --dropout-stage", "'lunch'", *_sim("--dropout-stage", "lunch")),
    _c(
        "simulate --dropout-stage",
        "seed-reveal without --active",
        *_sim("--secagg", "plus", "--dropout-stage", "seed-reveal"),
    ),
    _c("simulate --secagg-threshold", "1", *_sim("--secagg-threshold", "1")),
    _c("simulate --secagg-threshold", "9 (above k+1)", *_sim("--secagg-threshold", "9")),
    _c(
        "simulate --threshold",
        "its old name, beside --secagg-threshold",
        *_sim("--threshold", "3", "--secagg-threshold", "3"),
    ),
    _c("simulate --degree", "3 (odd)", *_sim("--peers", "10", "--degree", "3")),
    _c("simulate --degree", "with --secagg full", *_sim("--secagg", "full", "--degree", "2")),
    _c("simulate --dropout-budget", "1", *_sim("--dropout-budget", "1")),
    _c("simulate --corrupt", "-0.1", *_sim("--corrupt", "-0.1")),
    _c("simulate --rounds", "0", *_sim("--rounds", "0")),
    _c("simulate --mod-bits", "16", *_sim("--mod-bits", "16")),
    _c("simulate --dump", "a file", *_sim("--dump", GOOD)),
    _c("simulate --active", "with --secagg off", *_sim("--active", "--secagg", "off")),
    _c("simulate --seed", "'x'", *_sim("--seed", "x")),
    # -- start hub
    _c("start hub --bind", "'nonsense'", *_hub("--bind", "nonsense")),
    _c("start hub --bind", "port 99999", *_hub("--bind", "tcp://127.0.0.1:99999")),
    _c("start hub --bind", "port '5x'", *_hub("--bind", "tcp://127.0.0.1:5x")),
    _c("start hub --bind", "a port in use", *_hub("--bind", "tcp://127.0.0.1:{busy}")),
    _c("start hub --bind", "a host that is not here", *_hub("--bind", "tcp://192.0.2.1:5555")),
    _c("start hub --state-dir", "a file", "start", "hub", "--state-dir", GOOD),
    _c(
        "start hub --state-dir",
        "a peer's state directory",
        "start",
        "hub",
        "--state-dir",
        "peer_ok",
    ),
    _c("start hub --state-dir", "run.csv garbled", "start", "hub", "--state-dir", "hub_garbled"),
    _c(
        "start hub --state-dir",
        "run.csv: a feature 'bias'",
        "start",
        "hub",
        "--state-dir",
        "hub_bias",
    ),
    _c(
        "start hub --state-dir",
        "peers.csv: status 'sleeping'",
        "start",
        "hub",
        "--state-dir",
        "hub_peers",
    ),
    _c("start hub --min-peers", "0", *_hub("--min-peers", "0")),
    _c(
        "start hub --min-peers",
        "1 with --secagg full",
        *_hub("--min-peers", "1", "--secagg", "full"),
    ),
    _c("start hub --rounds", "-1", *_hub("--rounds", "-1")),
    _c("start hub --secagg", "'maybe'", *_hub("--secagg", "maybe")),
    _c("start hub --secagg-threshold", "0", *_hub("--secagg-threshold", "0")),
    _c(
        "start hub --secagg-threshold",
        "above --min-peers",
        *_hub("--secagg-threshold", "5", "--min-peers", "3"),
    ),
    _c(
        "start hub --threshold",
        "its old name, beside --secagg-threshold",
        *_hub("--threshold", "2", "--secagg-threshold", "2"),
    ),
    _c("start hub --decision-threshold", "50 (a percentage)", *_hub("--decision-threshold", "50")),
    _c("start hub --decision-threshold", "0", *_hub("--decision-threshold", "0")),
    _c("start hub --decision-threshold", "nan", *_hub("--decision-threshold", "nan")),
    *_csv_cases("start hub --eval-test"),
    _c("start hub --eval-test", "a column named bias", *_hub("--eval-test", "bias_col.csv")),
    _c("start hub --label", "not in --eval-test", *_hub("--eval-test", GOOD, "--label", "Fraud")),
    _c(
        "start hub --ignore-columns",
        "a column not in --eval-test",
        *_hub("--eval-test", GOOD, "--ignore-columns", "Fraud"),
    ),
    _c("start hub --ignore-columns", "without --eval-test", *_hub("--ignore-columns", "V1")),
    _c("start hub --encoding", "'klingon'", *_hub("--eval-test", GOOD, "--encoding", "klingon")),
    _c("start hub --encoding", "without --eval-test", *_hub("--encoding", "cp1252")),
    _c("start hub --fill-missing", "'nan'", *_hub("--eval-test", GOOD, "--fill-missing", "nan")),
    _c("start hub --fill-missing", "without --eval-test", *_hub("--fill-missing", "0")),
    _c("start hub --local-epochs", "1001", *_hub("--local-epochs", "1001")),
    _c("start hub --lr", "0", *_hub("--lr", "0")),
    _c("start hub --batch-size", "0", *_hub("--batch-size", "0")),
    _c("start hub --l2", "-1", *_hub("--l2", "-1")),
    _c("start hub --class-weight", "'heavy'", *_hub("--class-weight", "heavy")),
    _c("start hub --seed", "-1", *_hub("--seed", "-1")),
    _c("start hub --stage-timeout", "0", *_hub("--stage-timeout", "0")),
    _c("start hub --train-timeout", "inf", *_hub("--train-timeout", "inf")),
    _c("start hub --heartbeat", "61", *_hub("--heartbeat", "61")),
    _c("start hub --liveness", "below --heartbeat", *_hub("--heartbeat", "5", "--liveness", "2")),
    _c("start hub --join-window", "-1", *_hub("--join-window", "-1")),
    _c("start hub --active", "with --secagg off", *_hub("--active", "--secagg", "off")),
    _c("start hub --strategy", "'fedsgd'", *_hub("--strategy", "fedsgd")),
    _c(
        "start hub --strategy",
        "another than the run's in --state-dir",
        "start",
        "hub",
        "--bind",
        "tcp://127.0.0.1:1",
        "--state-dir",
        "hub_adam",
    ),
    _c(
        "FEDD_STRATEGY",
        "'adam' in the environment",
        *_hub(),
        env={"FEDD_STRATEGY": "adam"},
    ),
    _c("start hub --server-lr", "0", *_hub("--server-lr", "0")),
    _c("start hub --server-lr", "nan", *_hub("--strategy", "fedadam", "--server-lr", "nan")),
    _c(
        "start hub --server-momentum", "1", *_hub("--strategy", "fedavgm", "--server-momentum", "1")
    ),
    _c(
        "start hub --server-momentum",
        "with --strategy fedadam",
        *_hub("--strategy", "fedadam", "--server-momentum", "0.9"),
    ),
    _c("start hub --beta1", "1", *_hub("--strategy", "fedadam", "--beta1", "1")),
    _c("start hub --beta1", "with --strategy fedavg (the default)", *_hub("--beta1", "0.9")),
    _c("start hub --beta2", "-0.5", *_hub("--strategy", "fedyogi", "--beta2", "-0.5")),
    _c(
        "start hub --beta2",
        "with --strategy fedadagrad",
        *_hub("--strategy", "fedadagrad", "--beta2", "0.99"),
    ),
    _c("start hub --tau", "0", *_hub("--strategy", "fedadagrad", "--tau", "0")),
    _c(
        "start hub --tau",
        "with --strategy scaffold",
        *_hub("--strategy", "scaffold", "--tau", "1e-3"),
    ),
    _c("start hub --proximal-mu", "-1", *_hub("--proximal-mu", "-1")),
    _c("start hub --proximal-mu", "inf", *_hub("--proximal-mu", "inf")),
    _c("start hub --dropout-budget", "1", *_hub("--dropout-budget", "1")),
    _c("start hub --corrupt", "nan", *_hub("--corrupt", "nan")),
    _c("start hub --clip", "0", *_hub("--clip", "0")),
    _c("start hub --clip", "1e30 (sums would wrap)", *_hub("--clip", "1e30")),
    _c("start hub --max-weight", "0", *_hub("--max-weight", "0")),
    _c("start hub --mod-bits", "16", *_hub("--mod-bits", "16")),
    _c(
        "start hub --mod-bits",
        "32 with --min-peers 200",
        *_hub("--mod-bits", "32", "--min-peers", "200"),
    ),
    _c("start hub --shards", "-1", *_hub("--shards", "-1")),
    _c("start hub --curve-secret", "a file that does not exist", *_hub_curve(secret="none.secret")),
    _c(
        "start hub --curve-secret",
        "readable by others (mode 0644)",
        *_hub_curve(secret="shared.secret"),
    ),
    _c("start hub --curve-secret", "a key of 20 characters", *_hub_curve(secret="short.secret")),
    _c("start hub --curve-secret", "a directory", *_hub_curve(secret="keys")),
    _c("start hub --curve-secret", "a public key file (.pub)", *_hub_curve(secret="keys/hub.pub")),
    _c(
        "start hub --curve-secret",
        "without --allow-dir",
        *_hub("--curve-secret", "keys/hub.secret"),
    ),
    _c("start hub --allow-dir", "without --curve-secret", *_hub("--allow-dir", "keys")),
    _c("start hub --allow-dir", "a directory that does not exist", *_hub_curve(allow="nodir")),
    _c("start hub --allow-dir", "a file", *_hub_curve(allow=GOOD)),
    _c("start hub --allow-dir", "a key file named 'a b.pub'", *_hub_curve(allow="allow_badname")),
    _c("start hub --allow-dir", "a key that is not Z85 text", *_hub_curve(allow="allow_notz85")),
    _c("start hub --allow-dir", "one key under two names", *_hub_curve(allow="allow_twice")),
    _c(
        "FEDD_START_HUB_SECAGG",
        "'maybe' in the environment",
        *_hub(),
        env={"FEDD_START_HUB_SECAGG": "maybe"},
    ),
    # -- start peer
    _c("start peer --connect", "'nonsense'", *_peer("--connect", "nonsense")),
    _c("start peer --connect", "port 99999", *_peer("--connect", "tcp://127.0.0.1:99999")),
    *_csv_cases("start peer --data"),
    _c("start peer --data", "missing (not given)", "start", "peer", "--state-dir", "peerstate"),
    _c("start peer --label", "not in --data", *_peer("--label", "Fraud")),
    _c(
        "start peer --ignore-columns", "a column not in --data", *_peer("--ignore-columns", "Fraud")
    ),
    _c(
        "start peer --ignore-columns",
        "with --shard auto",
        *("start", "peer", "--shard", "auto", "--state-dir", "peerstate"),
        *("--ignore-columns", "V1"),
    ),
    _c("start peer --encoding", "'klingon'", *_peer("--encoding", "klingon")),
    _c("start peer --fill-missing", "'nan'", *_peer("--fill-missing", "nan")),
    _c(
        "start peer --fill-missing",
        "with --shard auto",
        *("start", "peer", "--shard", "auto", "--state-dir", "peerstate"),
        *("--fill-missing", "0"),
    ),
    _c(
        "start peer --encoding",
        "with --shard auto",
        *("start", "peer", "--shard", "auto", "--state-dir", "peerstate"),
        *("--encoding", "cp1252"),
    ),
    _c("start peer --holdout", "1", *_peer("--holdout", "1")),
    _c("start peer --holdout", "-0.1", *_peer("--holdout", "-0.1")),
    _c("start peer --holdout", "nan", *_peer("--holdout", "nan")),
    _c("start peer --holdout-seed", "-1", *_peer("--holdout-seed", "-1")),
    _c("start peer --corrupt", "1", *_peer("--corrupt", "1")),
    _c(
        "start peer --dropout-budget",
        "0.95, with --corrupt 0.05",
        *_peer("--dropout-budget", "0.95", "--corrupt", "0.05"),
    ),
    _c("start peer --state-dir", "a file", *_peer(state=GOOD)),
    _c("start peer --state-dir", "the hub's state directory", *_peer(state="hub_ok")),
    _c("start peer --state-dir", "identity.csv: peer id 'a b'", *_peer(state="peer_badid")),
    _c("start peer --state-dir", "rounds.csv: bytes_up '2e3'", *_peer(state="peer_badrow")),
    _c("start peer --peer-id", "'has space'", *_peer("--peer-id", "has space")),
    _c("start peer --peer-id", "65 characters", *_peer("--peer-id", "p" * 65)),
    _c("start peer --peer-id", "''", *_peer("--peer-id", "")),
    _c("start peer --fault", "'explode'", *_peer("--fault", "explode")),
    _c("start peer --fault", "'exit-at:lunch'", *_peer("--fault", "exit-at:lunch")),
    _c("start peer --shard", "'3'", "start", "peer", "--state-dir", "peerstate", "--shard", "3"),
    _c("start peer --shard", "with --data too", *_peer("--shard", "auto")),
    _c("start peer --data-dir", "a file", *_shard("--data-dir", GOOD)),
    _c("start peer --data-dir", "a directory that does not exist", *_shard("--data-dir", "nodir")),
    _c("start peer --data-dir", "a directory without shards", *_shard("--data-dir", "adir")),
    _c("start peer --synth-rows", "0", *_shard("--synth-rows", "0")),
    _c("start peer --synth-rows", "without --shard auto", *_peer("--synth-rows", "10")),
    _c("start peer --synth-seed", "-1", *_shard("--synth-rows", "10", "--synth-seed", "-1")),
    _c(
        "start peer --curve-secret",
        "a file that does not exist",
        *_peer_curve(secret="none.secret"),
    ),
    _c(
        "start peer --curve-secret",
        "readable by others (mode 0644)",
        *_peer_curve(secret="shared.secret"),
    ),
    _c("start peer --curve-secret", "a key of 20 characters", *_peer_curve(secret="short.secret")),
    _c("start peer --curve-secret", "a directory without keys", *_peer_curve(secret="adir")),
    _c(
        "start peer --curve-secret",
        "a signing key file (.sigkey)",
        *_peer_curve(secret="keys/p1.sigkey"),
    ),
    _c(
        "start peer --curve-secret",
        "without --hub-public",
        *_peer("--curve-secret", "keys/p1.secret"),
    ),
    _c("start peer --hub-public", "without --curve-secret", *_peer("--hub-public", "keys/hub.pub")),
    _c("start peer --hub-public", "a file that does not exist", *_peer_curve(public="none.pub")),
    _c("start peer --hub-public", "a key of 10 characters", *_peer_curve(public="short.pub")),
    _c("start peer --hub-public", "a key that is not Z85 text", *_peer_curve(public="notz85.pub")),
    _c("start peer --hub-public", "a directory", *_peer_curve(public="keys")),
    _c(
        "start peer --hub-public",
        "the hub's secret key file (.secret)",
        *_peer_curve(public="keys/hub.secret"),
    ),
    _c("start peer --signing-key", "a file that does not exist", *_signed(key="none.sigkey")),
    _c("start peer --signing-key", "readable by others (mode 0644)", *_signed(key="shared.sigkey")),
    _c("start peer --signing-key", "a key of 20 characters", *_signed(key="short.sigkey")),
    _c("start peer --signing-key", "a public key file (.sigpub)", *_signed(key="keys/p1.sigpub")),
    _c(
        "start peer --signing-key",
        "a CURVE secret key file (.secret)",
        *_signed(key="keys/p1.secret"),
    ),
    _c(
        "start peer --signing-key",
        "without --trusted-dir",
        *_peer("--signing-key", "keys/p1.sigkey"),
    ),
    _c("start peer --trusted-dir", "without --signing-key", *_peer("--trusted-dir", "keys")),
    _c("start peer --trusted-dir", "an empty directory", *_signed(trusted="adir")),
    _c("start peer --trusted-dir", "a directory that does not exist", *_signed(trusted="nodir")),
    _c("start peer --trusted-dir", "a file", *_signed(trusted=GOOD)),
    _c(
        "start peer --trusted-dir",
        "a key file named 'a b.sigpub'",
        *_signed(trusted="trusted_badname"),
    ),
    _c("start peer --trusted-dir", "one key under two names", *_signed(trusted="trusted_twice")),
    _c("start peer --require", "'paranoid'", *_peer("--require", "paranoid")),
    _c("start peer --require", "active without --signing-key", *_peer("--require", "active")),
    # -- status
    _c("status --hub", "'nonsense'", "status", "--hub", "nonsense"),
    _c(
        "status --hub",
        "no hub listening",
        "status",
        "--hub",
        "tcp://127.0.0.1:9",
        "--timeout",
        "0.5",
    ),
    _c("status --timeout", "0", "status", "--timeout", "0"),
    _c("status --timeout", "nan", "status", "--timeout", "nan"),
    _c("status rounds --last", "0", "status", "rounds", "--last", "0"),
    _c(
        "status peers --hub",
        "a port that is not a hub",
        "status",
        "peers",
        "--hub",
        "tcp://127.0.0.1:9",
        "--timeout",
        "0.5",
    ),
    _c("status peers --timeout", "601", "status", "peers", "--timeout", "601"),
    _c("status rounds --hub", "port 99999", "status", "rounds", "--hub", "tcp://127.0.0.1:99999"),
    _c("status rounds --timeout", "-1", "status", "rounds", "--timeout", "-1"),
    _c(
        "status --curve-secret",
        "a file that does not exist",
        "status",
        "--curve-secret",
        "none.secret",
    ),
    _c("status --curve-secret", "a directory without keys", "status", "--curve-secret", "adir"),
    _c(
        "status --curve-secret",
        "a public key file (.pub)",
        "status",
        "--curve-secret",
        "keys/hub.pub",
    ),
    _c("status --hub-public", "without --curve-secret", "status", "--hub-public", "keys/hub.pub"),
    _c(
        "status peers --curve-secret",
        "readable by others (mode 0644)",
        "status",
        "peers",
        "--curve-secret",
        "shared.secret",
    ),
    _c(
        "status peers --hub-public",
        "a key that is not Z85 text",
        "status",
        "peers",
        "--curve-secret",
        "keys/hub.secret",
        "--hub-public",
        "notz85.pub",
    ),
    _c(
        "status rounds --curve-secret",
        "a key of 20 characters",
        "status",
        "rounds",
        "--curve-secret",
        "short.secret",
    ),
    _c(
        "status rounds --hub-public",
        "a file that does not exist",
        "status",
        "rounds",
        "--curve-secret",
        "keys/p1.secret",
        "--hub-public",
        "none.pub",
    ),
    _c("status peer --hub", "'nonsense'", "status", "peer", "--peer-id", "p1", "--hub", "nonsense"),
    _c(
        "status peer --hub",
        "no hub listening",
        "status",
        "peer",
        "--peer-id",
        "p1",
        "--hub",
        "tcp://127.0.0.1:9",
        "--timeout",
        "0.5",
    ),
    _c("status peer --timeout", "0", "status", "peer", "--peer-id", "p1", "--timeout", "0"),
    _c(
        "status peer --curve-secret",
        "a key of 20 characters",
        "status",
        "peer",
        "--peer-id",
        "p1",
        "--curve-secret",
        "short.secret",
    ),
    _c(
        "status peer --hub-public",
        "without --curve-secret",
        "status",
        "peer",
        "--peer-id",
        "p1",
        "--hub-public",
        "keys/hub.pub",
    ),
    _c(
        "status peer --state-dir",
        "a directory that does not exist",
        "status",
        "peer",
        "--state-dir",
        "nodir",
    ),
    _c("status peer --state-dir", "a file", "status", "peer", "--state-dir", GOOD),
    _c(
        "status peer --state-dir",
        "a directory without identity.csv",
        "status",
        "peer",
        "--state-dir",
        "adir",
    ),
    _c(
        "status peer --state-dir",
        "identity.csv: peer id 'a b'",
        "status",
        "peer",
        "--state-dir",
        "peer_badid",
    ),
    _c("status peer --peer-id", "'has space'", "status", "peer", "--peer-id", "has space"),
    _c("status peer --peer-id", "''", "status", "peer", "--peer-id", ""),
    # -- keys generate
    _c("keys generate --out", "a file", *_keys(out=GOOD)),
    _c("keys generate --out", "under a file", *_keys(out=f"{GOOD}/keys")),
    _c(
        "keys generate --out",
        "holding that name's keys already",
        *_keys("--name", "p1", out="keys"),
    ),
    _c("keys generate --name", "'a b'", *_keys("--name", "a b")),
    _c("keys generate --name", "''", *_keys("--name", "")),
    _c("keys generate --name", "'../evil' (outside --out)", *_keys("--name", "../evil")),
    _c("keys generate --name", "'.hidden'", *_keys("--name", ".hidden")),
    _c("keys generate --name", "the same name twice", *_keys("--name", "x", "--name", "x")),
]


def prepare_workdir(root: Path) -> None:
    """The files and state directories the cases refer to, under `root`."""
    lines = ["V1,V2,Class"] + [
        f"{i % 7 - 3},{(i * 5) % 11 - 5},{int(i % 4 == 0)}" for i in range(40)
    ]
    (root / GOOD).write_text("\n".join(lines) + "\n")
    (root / "adir").mkdir()
    for shards in (root / "mixed", root / "mixed_root" / "clients"):
        shards.mkdir(parents=True)
        (shards / "notes.txt").write_text("not a shard\n")
    for name, (_, content) in BAD_CSVS.items():
        (root / name).write_bytes(content)
    features = ("V1", "V2")
    for name in ("hub_ok", "hub_garbled", "hub_bias", "hub_peers"):
        HubStore.open(root / name).start("run-1", features, {"mode": "full"})
    adam = {"mode": "full", **Strategy("fedadam").settings, "proximal_mu": "0.0"}
    HubStore.open(root / "hub_adam").start("run-1", features, adam)
    (root / "hub_garbled" / "run.csv").write_text("\x00garbage,\n")
    run_csv = root / "hub_bias" / "run.csv"
    run_csv.write_text(run_csv.read_text().replace("feature,V1", "feature,bias"))
    (root / "hub_peers" / "peers.csv").write_text(
        "peer,public_key,first_seen,last_seen,shard,status\np1,,1.0,2.0,0,sleeping\n"
    )
    PeerState.open(root / "peer_ok", peer_id="p1")
    PeerState.open(root / "peer_badid", peer_id="p1")
    identity = root / "peer_badid" / "identity.csv"
    identity.write_text(identity.read_text().replace("peer_id,p1", "peer_id,a b"))
    state = PeerState.open(root / "peer_badrow", peer_id="p1")
    state.log_round(
        PeerRoundRow(
            1, "training", "full", "ok", "", 10, 0.5, 0.25, 0.1, 0.5, 2048, 4096, 1.0, 0.01
        )
    )
    rounds = root / "peer_badrow" / "rounds.csv"
    rounds.write_text(rounds.read_text().replace(",2048,", ",2e3,"))
    _prepare_pools(root, lines)
    _prepare_report(root, features)
    _prepare_keys(root)


def _prepare_pools(root: Path, lines: list[str]) -> None:
    """pool_ok: two good peer files; beside it peer-file directories that are
    wrong in one way each (for `fedd data pool --clients`)."""
    header, rows = lines[0], lines[1:]
    half = len(rows) // 2
    files = {
        "pool_ok/peer_1.csv": [header, *rows[:half]],
        "pool_ok/peer_2.csv": [header, *rows[half:]],
        "pool_cols/peer_1.csv": [header, *rows[:half]],
        "pool_cols/peer_2.csv": ["V1,V9,Class", *rows[half:]],
        "pool_text/peer_1.csv": [header, *rows[:half]],
        "pool_text/peer_2.csv": [header, *rows[half:], "1,abc,1"],
        "pool_tiny/peer_1.csv": [header, "1,2,0", "2,1,1"],
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join(content) + "\n")


def _prepare_report(root: Path, features: tuple[str, ...]) -> None:
    """hub_scored: a run with one scored round; central.csv: a baseline's metrics."""
    store = HubStore.open(root / "hub_scored")
    store.start("run-1", features, {"mode": "full"})
    model = (0.1, 0.2, 0.3)
    store.commit(
        Commit(
            round=RoundRow(1, "training", "full", 1.7e9, 1.0, 2, 2, 0, "ok", ""),
            model=model,
            metrics=[
                MetricsRow(
                    1, "test", 1, 0, 40, 4, 0.9, 0.0, 0.6, 0.0, 0.7, 0.5, 0.8, 0.5, 0.5, 0.8, 0.01
                )
            ],
            perf=PerfRow(1, 1.0, 0.5, {}, 0.0625, 3000, 4500),
            clients=[ClientPerfRow(1, p, 20, 0.25, 0.2, 1000) for p in ("p1", "p2")],
            delta=model,
            mean=model,
            survivors=[SurvivorRow(1, p) for p in ("p1", "p2")],
        )
    )
    values = dict.fromkeys(RECORD_FIELDS, "1")
    values.update(roc_auc="0.9", precision="0.7", recall="0.5", f1="0.8", class_weight="none")
    (root / "central.csv").write_text(
        ",".join(RECORD_FIELDS) + "\n" + ",".join(values.values()) + "\n"
    )


def _prepare_keys(root: Path) -> None:
    """keys/: good keys of `hub` and `p1`; beside them key files and key
    directories that are wrong in one way each."""
    keys = root / "keys"
    for name in ("hub", "p1"):
        generate(keys, name)
        generate_signing(keys, name)
    files = {  # name: (content, mode)
        "shared.secret": ((keys / "hub.secret").read_bytes(), 0o644),
        "shared.sigkey": ((keys / "p1.sigkey").read_bytes(), 0o644),
        "short.secret": (b"abcde" * 4 + b"\n", 0o600),
        "short.sigkey": (b"abcde" * 4 + b"\n", 0o600),
        "short.pub": (b"abcde" * 2 + b"\n", 0o644),
        "notz85.pub": (b"abcd~" * 8 + b"\n", 0o644),
        "allow_badname/a b.pub": ((keys / "p1.pub").read_bytes(), 0o644),
        "allow_notz85/p1.pub": (b"abcd~" * 8 + b"\n", 0o644),
        "allow_twice/p1.pub": ((keys / "p1.pub").read_bytes(), 0o644),
        "allow_twice/p2.pub": ((keys / "p1.pub").read_bytes(), 0o644),
        "trusted_badname/a b.sigpub": ((keys / "p1.sigpub").read_bytes(), 0o644),
        "trusted_twice/p1.sigpub": ((keys / "p1.sigpub").read_bytes(), 0o644),
        "trusted_twice/p2.sigpub": ((keys / "p1.sigpub").read_bytes(), 0o644),
    }
    for name, (content, mode) in files.items():
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int | None  # None: still running after the time limit
    stderr: str

    @property
    def line(self) -> str:
        """The line that says what is wrong (ours, or click's Error line)."""
        ours = [s for s in self.stderr.splitlines() if s.startswith("fedd: error: ")]
        if ours:
            return ours[0]
        clicks = [s for s in self.stderr.splitlines() if s.startswith("Error: ")]
        return (
            clicks[0]
            if clicks
            else self.stderr.strip().splitlines()[-1]
            if self.stderr.strip()
            else ""
        )


def check(outcome: Outcome) -> list[str]:
    """What the outcome does wrong (empty when it follows the rules)."""
    problems = []
    lines = outcome.stderr.splitlines()
    if outcome.code is None:
        problems.append("did not exit")
    elif outcome.code == 0:
        problems.append("exit 0")
    if "Traceback" in outcome.stderr:
        problems.append("traceback")
    ours = [s for s in lines if s.startswith("fedd: error: ")]
    clicks = [s for s in lines if s.startswith("Error: ")]
    if outcome.code == 1 and (len(ours) != 1 or len(lines) != 1):
        problems.append(f"{len(lines)} stderr lines, {len(ours)} ours")
    if outcome.code == 2 and (len(clicks) != 1 or ours):
        problems.append("not one click Error line")
    if outcome.code not in (None, 0, 1, 2):
        problems.append(f"exit {outcome.code}")
    return problems


def arguments(case: Case, busy_port: int) -> list[str]:
    """The case's arguments, with `{busy}` replaced by a port something listens on."""
    return [a.replace("{busy}", str(busy_port)) for a in case.args]


def run_case(case: Case, root: Path, busy_port: int, *, timeout: float = 60.0) -> Outcome:
    """Run one case as a process in `root`."""
    env = {**os.environ, **case.env, "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(
            [*FEDD, *arguments(case, busy_port)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        return Outcome(case, None, err)
    return Outcome(case, done.returncode, done.stderr)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(outcomes: Sequence[Outcome]) -> list[str]:
    """Markdown rows; cases that differ only in the option (the same bad CSV file
    through --input, --train, ...) and say the same thing share a row."""
    rows: dict[tuple[str, int | None, str], list[Outcome]] = {}
    for outcome in outcomes:
        rows.setdefault((outcome.case.tried, outcome.code, outcome.line), []).append(outcome)
    lines = ["| flag or file | what was tried | exit | what the user sees |", "|---|---|---|---|"]
    for (tried, code, line), group in rows.items():
        problems = sorted({p for o in group for p in check(o)})
        what = ", ".join(f"`{o.case.what}`" for o in group)
        seen = _cell(line) + (f" **({'; '.join(problems)})**" if problems else "")
        exit_code = "-" if code is None else str(code)
        lines.append(f"| {what} | {_cell(tried)} | {exit_code} | {seen} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bad_input", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--csv", type=Path, default=None, help="Also write the table as CSV.")
    parser.add_argument(
        "--only", default="", help="Run the cases whose flag or file contains this."
    )
    args = parser.parse_args(argv)
    cases = [c for c in CASES if args.only in c.what]
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        root = Path(tmp)
        prepare_workdir(root)
        port = busy.getsockname()[1]
        with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
            outcomes = list(pool.map(lambda c: run_case(c, root, port), cases))
    broken = sum(bool(check(o)) for o in outcomes)
    for line in table(outcomes):
        print(line)
    if args.csv is not None:
        with open(args.csv, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["what", "tried", "exit", "line", "problems"])
            for outcome in outcomes:
                out.writerow(
                    [
                        outcome.case.what,
                        outcome.case.tried,
                        outcome.code,
                        outcome.line,
                        "; ".join(check(outcome)),
                    ]
                )
    print(f"\n{len(outcomes)} cases, {broken} breaking the rules", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
