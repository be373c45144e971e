"""`fedd start hub|peer` and `fedd status` through click: bad options and rendering."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fedd.cli.main import main
from fedd.cli.statusclient import render
from fedd.daemon.transport.messages.status import StatusReply
from fedd.launch import free_port


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secagg", "maybe"], "--secagg"),
        (["--min-peers", "0"], "--min-peers"),
        (["--rounds", "-1"], "--rounds"),
        (["--lr", "nan"], "--lr"),
        (["--stage-timeout", "0"], "--stage-timeout"),
        (["--class-weight", "heavy"], "--class-weight"),
    ],
)
def test_hub_options_are_checked_before_anything_starts(tmp_path: Path, args, message):
    code, err = run("start", "hub", "--state-dir", tmp_path / "hub", *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "hub").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "5", "--min-peers", "3"], "exceeds --min-peers"),
        (["--secagg", "full", "--min-peers", "1"], "at least 1 (2 for secure"),
        (["--heartbeat", "5", "--liveness", "2"], "liveness must be longer"),
        (["--bind", "nonsense://here"], "'nonsense://here' is not an address"),
        (["--eval-test", "missing.csv"], "missing.csv: no such file"),
        (["--ignore-columns", "id"], "names columns of --eval-test, which is not given"),
    ],
)
def test_impossible_hub_settings_are_one_line_errors(tmp_path: Path, args, message):
    code, err = run("start", "hub", "--state-dir", tmp_path / "hub", *args)
    assert code == 1, err
    assert err.startswith("fedd: error:") and message in err and err.count("\n") == 1
    if "--bind" not in args:
        assert not (tmp_path / "hub").exists()


def test_a_port_in_use_is_a_clear_error(tmp_path: Path):
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    port = free_port()
    sock.bind(f"tcp://127.0.0.1:{port}")
    try:
        code, err = run(
            "start", "hub", "--state-dir", tmp_path / "hub", "--bind", f"tcp://127.0.0.1:{port}"
        )
    finally:
        sock.close(0)
        ctx.term()
    assert code == 1 and "Address already in use" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--fault", "explode"], 2, "exit-at:STAGE"),
        (["--fault", "exit-at:lunch"], 1, "exit-at:STAGE takes one of"),
        (["--peer-id", "has space"], 1, "peer id"),
    ],
)
def test_peer_options_are_checked(tmp_path: Path, shard: Path, args, code, message):
    got, err = run("start", "peer", "--data", shard, "--state-dir", tmp_path / "p", *args)
    assert got == code, err
    assert message in err and "Traceback" not in err


def test_a_peer_without_its_data_leaves_no_state_behind(tmp_path: Path):
    code, err = run("start", "peer", "--data", tmp_path / "none.csv", "--state-dir", tmp_path / "p")
    assert code == 1 and "none.csv: no such file" in err
    assert not (tmp_path / "p").exists()


@pytest.fixture
def shard(tmp_path: Path) -> Path:
    path = tmp_path / "shard.csv"
    path.write_text("V1,V2,Class\n0.5,1.0,0\n-0.5,2.0,1\n")
    return path


def test_status_tables_show_what_the_hub_reports():
    summary = StatusReply(
        "run-1",
        4,
        "summary",
        {
            "run": "run-1",
            "mode": "plus",
            "stage": "round 4: share-keys",
            "round": 4,
            "rounds_total": 10,
            "rounds_committed": 3,
            "min_peers": 3,
            "peers_alive": 5,
            "peers_known": 6,
            "last_round": {
                "round": 3,
                "status": "ok",
                "reason": "",
                "duration_s": 0.25,
                "participants": 5,
                "survivors": 4,
                "roc_auc": 0.97,
                "f1": 0.71,
                "stages": {"advertise-keys": 0.1, "unmask": 0.01},
            },
        },
    )
    text = "\n".join(render(summary))
    assert "round 4: share-keys" in text and "3 of 10" in text and "5 alive, 6 known" in text
    assert "last round 3 ok: 4/5 peers in 0.25s, roc_auc 0.9700 f1 0.7100" in text
    assert "advertise-keys 0.100s" in text
    rounds = StatusReply(
        "run-1",
        4,
        "rounds",
        {
            "rounds": [
                {
                    "round": 3,
                    "kind": "training",
                    "mode": "plus",
                    "status": "aborted",
                    "reason": "too few",
                    "duration_s": 1.5,
                    "participants": 5,
                    "survivors": 2,
                    "dropped": 3,
                },
            ]
        },
    )
    lines = render(rounds)
    assert lines[0].split() == [
        "round",
        "kind",
        "mode",
        "status",
        "peers",
        "seconds",
        "roc_auc",
        "pr_auc",
        "f1",
        "reason",
    ]
    assert lines[1].split()[:6] == ["3", "training", "plus", "aborted", "2/5", "1.50"]
    peers = StatusReply("run-1", 4, "peers", {"peers": []})
    assert render(peers) == ["no peers have registered yet"]


def test_the_hub_picks_32_bit_vectors_only_when_their_scale_stays_fine():
    from fedd.daemon.hub.config import HubConfig, choose_encoding

    assert choose_encoding(3, HubConfig(max_weight=1000, clip=4.0)).mod_bits == 32
    wide = choose_encoding(10, HubConfig())
    assert wide.mod_bits == 64
    wide.check_capacity(10)
    assert choose_encoding(10, HubConfig(mod_bits=32, max_weight=1000)).mod_bits == 32


def test_a_hub_whose_sums_would_wrap_even_with_min_peers_refuses_to_start():
    from fedd.daemon.errors import ConfigError
    from fedd.daemon.hub.config import HubConfig

    with pytest.raises(ConfigError, match=r"200 peers' updates .* mod 2\^32, .*--mod-bits 64$"):
        HubConfig(mod_bits=32, min_peers=200)
    with pytest.raises(ConfigError, match=r"mod 2\^64, so no round could start: lower --clip"):
        HubConfig(clip=1e30)
    HubConfig(secagg="off", clip=1e30)  # plain rounds add floats


def test_a_test_csv_whose_columns_cannot_name_a_model_is_a_one_line_error(tmp_path: Path):
    bad = tmp_path / "test.csv"
    bad.write_text("bias,V1,Class\n0.5,1.0,0\n-0.5,2.0,1\n")
    code, err = run("start", "hub", "--state-dir", tmp_path / "hub", "--eval-test", bad)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("fedd: error:") and "'bias' is the model's intercept" in err
    assert not (tmp_path / "hub").exists()


def test_a_peer_status_the_hub_does_not_know_is_a_one_line_state_error(tmp_path: Path):
    from fedd.daemon.state.store import HubStore

    HubStore.open(tmp_path / "hub").start("run-1", ("V1", "V2"), {"mode": "full"})
    (tmp_path / "hub" / "peers.csv").write_text(
        "peer,public_key,first_seen,last_seen,shard,status\np1,,1.0,2.0,0,sleeping\n"
    )
    code, err = run("start", "hub", "--state-dir", tmp_path / "hub")
    assert code == 1 and err.count("\n") == 1, err
    assert "peers.csv" in err and "'sleeping'" in err and "alive, gone, left" in err


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:5x", "nonsense"])
def test_an_address_libzmq_would_misread_is_refused_before_anything_starts(tmp_path: Path, address):
    shard = tmp_path / "shard.csv"
    shard.write_text("V1,V2,Class\n0.5,1.0,0\n-0.5,2.0,1\n")
    for args in (
        ("start", "hub", "--state-dir", tmp_path / "hub", "--bind", address),
        ("start", "peer", "--data", shard, "--state-dir", tmp_path / "peer", "--connect", address),
        ("status", "--hub", address),
    ):
        code, err = run(*args)
        assert code == 1 and err.startswith("fedd: error:") and err.count("\n") == 1, err
        assert repr(address) in err
    assert not (tmp_path / "hub").exists() and not (tmp_path / "peer").exists()
