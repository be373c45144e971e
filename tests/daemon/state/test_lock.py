"""The state-directory lock: one daemon per directory, readers free, a killed holder no obstacle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fedd.daemon.errors import ConfigError
from fedd.daemon.state.statedir import LOCK_NAME, lock_state_dir
from fedd.daemon.state.store import HubStore
from fedd.peer.state import PeerState, read_peer_id
from tests.daemon._support import mode, snapshot
from tests.daemon.state._support import commit_next, started


def test_a_second_lock_names_the_directory_and_the_holder(tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "hub"
    held = lock_state_dir(state_dir)
    assert mode(state_dir) == 0o700 and mode(state_dir / LOCK_NAME) == 0o600
    with pytest.raises(ConfigError) as caught:
        lock_state_dir(state_dir)
    message = str(caught.value)
    assert message.startswith(f"{state_dir}: in use by another fedd daemon (pid {os.getpid()})")
    assert "\n" not in message
    held.release()
    held.release()  # idempotent
    lock_state_dir(state_dir).release()


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from fedd.daemon.state.statedir import lock_state_dir\n"
            "lock = lock_state_dir(Path(sys.argv[1]))\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        with pytest.raises(ConfigError, match=rf"\(pid {holder.pid}\)"):
            lock_state_dir(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock_state_dir(tmp_path).release()
    assert (tmp_path / LOCK_NAME).exists()  # it stays, and means nothing while unlocked


def test_the_lock_file_is_neither_foreign_nor_a_leftover(tmp_path: Path) -> None:
    hub_dir, peer_dir = tmp_path / "hub", tmp_path / "peer"
    locks = [lock_state_dir(hub_dir), lock_state_dir(peer_dir)]
    store = started(hub_dir)
    commit_next(store, 0)
    before = snapshot(hub_dir)
    # Readers take no lock: a running hub's directory can be reported on.
    reader = HubStore.open(hub_dir, read_only=True)
    assert reader.reconciled == [] and reader.committed_round == store.committed_round
    assert HubStore.open(hub_dir).reconciled == []
    assert snapshot(hub_dir) == before
    state = PeerState.open(peer_dir, peer_id="p1")
    assert [note for note in state.notes if "identity" not in note] == []
    assert read_peer_id(peer_dir) == "p1"
    assert LOCK_NAME in before and (peer_dir / LOCK_NAME).exists()
    for lock in locks:
        lock.release()
