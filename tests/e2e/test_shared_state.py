"""Two daemons started on one state directory, as real processes: the second stops at
once, naming the directory and the first one's pid, and the first runs to its end."""

from __future__ import annotations

import pytest

from fedd.daemon.state.store import HubStore
from fedd.launch import free_port
from tests.e2e.conftest import Cluster, Shards

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_a_second_hub_and_a_second_peer_on_a_state_directory_refuse(
    cluster: Cluster, shards: Shards
) -> None:
    hub = cluster.hub("--min-peers", "3", "--rounds", "2", "--secagg", "off", "--exit-when-done")
    cluster.wait_for(lambda: "listening on" in hub.output(), 30, "the first hub to listen")
    # The user's mistake: another hub, another port, the same --state-dir.
    other = f"tcp://127.0.0.1:{free_port()}"
    second = cluster.fedd(
        "hub2", "start", "hub", "--bind", other, "--state-dir", str(cluster.hub_state)
    )
    assert second.wait(30) == 1, cluster.logs()
    assert second.output() == (
        f"fedd: error: {cluster.hub_state}: in use by another fedd daemon "
        f"(pid {hub.popen.pid}); stop it, or give this one a --state-dir of its own\n"
    )
    peers = [cluster.peer(f"p{k}", shards.peers[k - 1]) for k in range(1, 4)]
    cluster.wait_for(lambda: "registered" in peers[0].output(), 30, "p1 to register")
    twin = cluster.fedd(
        "twin",
        "start",
        "peer",
        "--connect",
        cluster.address,
        "--data",
        str(shards.peers[3]),
        "--state-dir",
        str(cluster.root / "p1"),
    )
    assert twin.wait(30) == 1, cluster.logs()
    assert f"(pid {peers[0].popen.pid})" in twin.output()
    assert hub.wait(120) == 0, cluster.logs()
    for peer in peers:
        assert peer.wait(30) == 0, cluster.logs()
    # The first hub's history is whole: every round once, the model the updates replay to.
    store = HubStore.open(cluster.hub_state, read_only=True)
    rounds = [row.round for row, _, _ in store.recent_rounds(100)]
    assert rounds == list(range(1, len(rounds) + 1)) and store.training_rounds == 2
    assert store.reconciled == []
