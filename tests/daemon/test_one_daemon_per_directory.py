"""Two daemons on one state directory: the second stops at once, naming the first,
and the first one's state is left as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedd.daemon.errors import ConfigError
from fedd.daemon.hub.config import HubConfig
from fedd.daemon.hub.loop import Hub
from fedd.peer.agent import PeerAgent
from fedd.peer.config import PeerConfig
from fedd.peer.state import read_peer_id
from tests.daemon._support import snapshot
from tests.daemon.state._support import FEATURES


def test_a_second_hub_on_a_state_directory_stops_and_leaves_it_intact(tmp_path: Path) -> None:
    config = HubConfig(state_dir=tmp_path / "hub", min_peers=2)
    first = Hub(config)
    first.rounds.start_run(FEATURES)
    before = snapshot(config.state_dir)
    held = rf"hub: in use by another fedd daemon \(pid {os.getpid()}\)"
    with pytest.raises(ConfigError, match=held):
        Hub(HubConfig(state_dir=config.state_dir, bind="tcp://127.0.0.1:5599"))
    assert snapshot(config.state_dir) == before
    first.lock.release()
    Hub(config).lock.release()  # free again once the first one is gone


def test_a_second_peer_on_a_state_directory_stops(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("V1,Class\n" + "".join(f"{k / 10},{k % 2}\n" for k in range(10)))
    config = PeerConfig("tcp://127.0.0.1:5599", data, tmp_path / "peer", peer_id="p1")
    first = PeerAgent(config)
    with pytest.raises(ConfigError, match=r"peer: in use by another fedd daemon \(pid"):
        PeerAgent(PeerConfig("tcp://127.0.0.1:5598", data, tmp_path / "peer", peer_id="p2"))
    assert read_peer_id(tmp_path / "peer") == "p1"
    first.lock.release()
    first.rounds.shutdown()
