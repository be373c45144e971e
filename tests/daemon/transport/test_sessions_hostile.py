"""The protocol sessions under mutated messages: only the documented refusals escape.

Frames of a recorded active round (so every message type occurs) are
mutated (tests/daemon/hostile.py); whatever still decodes into a protocol
message is fed to a hub or peer session in each stage. The hub session may
refuse it only with RemoteProtocolError; the peer session with
RemoteProtocolError or CryptoCheckFailed (a sealed share that does not
open). Anything else, such as a ValueError from deep inside, would be a
bug, and the daemons would not catch it.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.crypto.errors import CryptoCheckFailed, RemoteProtocolError
from fedd.crypto.secagg.hub import HubStage
from fedd.crypto.secagg.messages import MESSAGE_TYPES
from fedd.crypto.secagg.peer import PeerStage
from fedd.daemon.transport import wire
from tests.crypto.test_secagg_transitions import ACTIVE, ANY_MESSAGE, hub_in, peer_in
from tests.daemon.hostile import Mutator

CORPUS = [wire.encode(m) for m in ANY_MESSAGE.values()]


def protocol_mutant(seed: int) -> object | None:
    """A mutant of a recorded message that still decodes to a protocol message, if one turns up."""
    mutator = Mutator(CORPUS, seed=seed)
    for frame in mutator.frames(50):
        try:
            msg = wire.decode(frame)
        except wire.MalformedMessage:
            continue
        if isinstance(msg, MESSAGE_TYPES):
            return msg
    return None


@settings(max_examples=150, deadline=None)
@given(
    stage=st.sampled_from(
        [
            PeerStage.AWAIT_ROSTER,
            PeerStage.AWAIT_SHARES,
            PeerStage.AWAIT_CONSISTENCY,
            PeerStage.AWAIT_UNMASK,
        ]
    ),
    seed=st.integers(0, 2**32),
)
def test_a_peer_session_refuses_mutants_only_as_documented(stage: PeerStage, seed: int) -> None:
    msg = protocol_mutant(seed)
    if msg is None:
        return
    session = peer_in(ACTIVE, stage)
    assert session is not None
    try:
        session.receive(msg)  # type: ignore[arg-type]
    except (RemoteProtocolError, CryptoCheckFailed):
        assert session.stage is PeerStage.ABORTED


@settings(max_examples=150, deadline=None)
@given(
    stage=st.sampled_from(
        [
            HubStage.ADVERTISE_KEYS,
            HubStage.SHARE_KEYS,
            HubStage.MASKED_INPUT,
            HubStage.CONSISTENCY,
            HubStage.UNMASK,
        ]
    ),
    seed=st.integers(0, 2**32),
)
def test_a_hub_session_refuses_mutants_only_as_documented(stage: HubStage, seed: int) -> None:
    msg = protocol_mutant(seed)
    if msg is None:
        return
    hub = hub_in(ACTIVE, stage)
    assert hub is not None
    try:
        hub.receive(ACTIVE.me, msg, 0.0)  # type: ignore[arg-type]
    except RemoteProtocolError:
        assert hub.stage is stage and ACTIVE.me in hub.pending  # a refusal changes nothing
