"""The hub daemon's message handling under hostile input, in process.

The real hub and real peers run in this process (tests/daemon/hostile.py);
attackers are connections the test controls. The hub must never let an
exception out of its frame handler, must answer what it refuses, and a round
running at the same time must complete with every honest peer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto.secagg.fields import PeerId
from daemon import wire
from daemon.messages import Error, Hello
from tests.daemon.hostile import InProcessFederation

FEATURES = ("V1", "V2", "V3")


def decode_all(frames: list[bytes]) -> list[object]:
    return [wire.decode(f) for f in frames]


@pytest.mark.parametrize(
    ("features", "reason"),
    [
        (("bias", "V1"), "'bias' is the model's intercept"),
        (("V1", "V1"), "appears twice"),
        (("V1\x01",), "control character"),
    ],
    ids=["bias", "duplicate", "control-character"],
)
def test_a_first_hello_whose_features_cannot_name_a_model_is_refused(
    tmp_path: Path, features: tuple[str, ...], reason: str
) -> None:
    with InProcessFederation(tmp_path, peers=2, rounds=1) as fed:
        replies = decode_all(
            fed.to_hub(b"mallory", wire.encode(Hello("", 0, PeerId("m"), features)))
        )
        assert [type(r) for r in replies] == [Error]
        assert reason in replies[0].reason and replies[0].retry is False  # type: ignore[attr-defined]
        # Nothing was fixed by the refused peer: honest peers define the run.
        assert fed.hub.registry.features is None and fed.hub.model is None
        assert [(r.status, r.survivors) for r in fed.run_rounds()] == [("ok", 2)]
        assert fed.hub.registry.features == FEATURES
