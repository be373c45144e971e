"""A peer holds its own floor under a lying hub: parameters, seeds it lets a hub see, and
what it gives (statistics once per run) hold in active rounds as in any other.

`PeerRounds` runs with a real state directory; the RoundStarts are those a
lying hub would send.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from types import SimpleNamespace

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.peer import PeerStage
from fedd.crypto.secagg.seed import MAX_SEED_RETRIES
from fedd.crypto.secagg.shape import Floor, choose_shape
from fedd.crypto.signing import SigningKey
from fedd.daemon.transport.contribution import Layout
from fedd.daemon.transport.messages.rounds import Decline, RoundStart
from fedd.daemon.transport.messages.uploads import coarse_seconds
from fedd.peer.config import PeerConfig, Signing, refusal
from fedd.peer.rounds import PeerRound, PeerRounds
from fedd.peer.state import PeerState
from tests.crypto.secagg_helpers import peer_ids
from tests.daemon.hostile import InProcessFederation

MODEL = (0.0, 0.0, 0.0)


def statistics_start(n: int, mode: Mode, *, active: bool, **change: int) -> RoundStart:
    """A statistics round of n peers, sized as the hub sizes it (but for `change`)."""
    shape = choose_shape(n, mode, dropout=0.1, corrupt=0.05, active=active)
    lanes = Layout("statistics", len(MODEL) - 1)
    params = RoundParams(
        run="run-1",
        round=1,
        mode=mode,
        participants=peer_ids(n),
        k=shape.k,
        t=change.get("t", shape.t),
        min_survivors=change.get("min_survivors", shape.min_survivors),
        max_corrupt=change.get("max_corrupt", shape.max_corrupt),
        graph_seed=random.Random(n).randbytes(32),
        dim=lanes.lanes,
        mod_bits=lanes.mod_bits,
        active=active,
    )
    return RoundStart("run-1", 1, "statistics", mode.value, MODEL, secagg=params)


def config(tmp_path: Path, n: int) -> PeerConfig:
    keys = {p: SigningKey.generate() for p in peer_ids(n)}
    signing = Signing(keys[PeerId("p001")], {p: k.public for p, k in keys.items()})
    shard = tmp_path / "data.csv"
    shard.write_text("V1,V2,Class\n0.1,0.2,0\n0.3,0.4,1\n")
    return PeerConfig("tcp://127.0.0.1:5555", shard, tmp_path / "p001", signing=signing)


def rounds(tmp_path: Path, cfg: PeerConfig) -> tuple[PeerRounds, list[object]]:
    sent: list[object] = []
    state = PeerState.open(cfg.state_dir, peer_id="p001")
    return PeerRounds(cfg, state, sent.append, lambda _: None), sent


def test_parameters_weaker_than_the_floor_are_declined_with_the_reason(tmp_path):
    cfg = config(tmp_path, 11)
    assert refusal(statistics_start(11, Mode.FULL, active=True), cfg, PeerId("p001")) is None
    # The hub claims nobody is corrupt, which lowers t and min_survivors to 6.
    weak = statistics_start(11, Mode.FULL, active=True, t=6, min_survivors=6, max_corrupt=0)
    reason = refusal(weak, cfg, PeerId("p001"))
    assert reason is not None and "weaker than this peer accepts" in reason
    strict = PeerConfig(cfg.connect, cfg.data, cfg.state_dir, signing=cfg.signing, floor=Floor(0.3))
    reason = refusal(statistics_start(11, Mode.FULL, active=True), strict, PeerId("p001"))
    assert reason is not None and "--corrupt 0.3" in reason
    passive = statistics_start(100, Mode.PLUS, active=False, t=5, min_survivors=5)
    assert "weaker" in (refusal(passive, cfg, PeerId("p001")) or "")


def test_an_active_round_gets_no_statistics_a_peer_already_gave(tmp_path):
    cfg = config(tmp_path, 8)
    peer, sent = rounds(tmp_path, cfg)
    peer.state.record_statistics("run-1", 1, 2)
    start = statistics_start(8, Mode.PLUS, active=True)
    assert start.secagg is not None and start.secagg.sparse
    peer.on_round_start(start, PeerId("p001"), None)
    assert [type(m) for m in sent] == [Decline]
    assert "once per run" in sent[0].reason  # type: ignore[attr-defined]


def test_a_hub_that_keeps_aborting_after_the_seed_is_drawn_is_refused(tmp_path):
    cfg = config(tmp_path, 8)
    peer, sent = rounds(tmp_path, cfg)
    start = statistics_start(8, Mode.PLUS, active=True)
    revealed = SimpleNamespace(revealed_nonce=True, stage=PeerStage.ABORTED)
    for _ in range(MAX_SEED_RETRIES + 1):
        peer._count_seed(PeerRound(1, start, session=revealed))  # type: ignore[arg-type]
    assert peer.seeds_spent == MAX_SEED_RETRIES + 1
    peer.on_round_start(start, PeerId("p001"), None)
    assert [type(m) for m in sent] == [Decline]
    assert "draws no more" in sent[0].reason  # type: ignore[attr-defined]
    # A round that reached the unmask stage resets the count; one that never
    # revealed a nonce does not count.
    done = SimpleNamespace(revealed_nonce=True, stage=PeerStage.DONE)
    peer._count_seed(PeerRound(1, start, session=done))  # type: ignore[arg-type]
    assert peer.seeds_spent == 0
    quiet = SimpleNamespace(revealed_nonce=False, stage=PeerStage.ABORTED)
    peer._count_seed(PeerRound(1, start, session=quiet))  # type: ignore[arg-type]
    assert peer.seeds_spent == 0


def test_training_seconds_are_reported_coarsely():
    assert coarse_seconds(0.0) == 2**-6
    assert coarse_seconds(0.3) == 0.5
    assert coarse_seconds(0.5) == 0.5
    assert coarse_seconds(3.1) == 4.0
    assert coarse_seconds(float("nan")) == 2**-6


def test_in_secure_rounds_the_hub_gets_no_sample_count_and_coarse_seconds(tmp_path):
    with InProcessFederation(tmp_path, peers=3, rounds=1, secagg="full") as fed:
        fed.run_rounds()
        rows = fed.hub.store.client_rows()
    assert rows and all(r.n_samples == 0 for r in rows)
    assert all(math.log2(r.train_s).is_integer() and r.train_s >= 2**-6 for r in rows)
    assert all(math.log2(r.cpu_s).is_integer() for r in rows)
