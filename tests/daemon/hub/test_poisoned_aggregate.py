"""A malicious peer's gross poisoning is refused, not applied (the hub and peers in process).

One peer of three bypasses its own clipping (or its weight cap) in a
training round of a secure run. Nobody can see its masked update, but the
sum gives it away: a coordinate of the mean outside [-clip, clip], or a
weight sum above what the survivors may carry. The hub aborts that round,
says why in its log and in round_log.csv, and leaves the model as it was;
the next training round (of the two `--rounds`), honest again, is applied.
"""

from __future__ import annotations

import logging
import struct

import pytest

from fedd.crypto.encoding import FixedPoint
from tests.daemon.hostile import InProcessFederation, squeeze_evaluations

_encode = FixedPoint.encode


def _poison_once(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """The first training update any peer encodes is poisoned; all later ones are honest."""
    poisoned = []

    def encode(self: FixedPoint, x, weight):  # type: ignore[no-untyped-def]
        if poisoned:
            return _encode(self, x, weight)
        poisoned.append(True)
        out = bytearray(_encode(self, x, weight))
        code = "<I" if self.mod_bits == 32 else "<Q"
        mask = (1 << self.mod_bits) - 1
        if how == "coordinate":
            # What clipping would have stopped: the bias moved far out of range.
            w = min(weight, self.max_weight)
            struct.pack_into(code, out, self.width, round(-26_843 * w * self.scale) & mask)
        else:
            struct.pack_into(code, out, 0, 3 * self.max_weight)  # a weight no peer may claim
        return bytes(out)

    monkeypatch.setattr(FixedPoint, "encode", encode)


@pytest.mark.parametrize("how", ["coordinate", "weight"])
def test_a_grossly_poisoned_training_round_is_refused(tmp_path, monkeypatch, caplog, how):
    _poison_once(monkeypatch, how)
    caplog.set_level(logging.WARNING, logger="fedd.hub")
    with InProcessFederation(tmp_path, peers=3, rounds=2, secagg="full") as fed:
        rows = fed.run_rounds()
        model = fed.hub.store.model
    outcome = squeeze_evaluations((r.kind, r.status) for r in rows)
    assert outcome[:3] == [("statistics", "ok"), ("training", "aborted"), ("training", "ok")]
    refused = next(r for r in rows if r.kind == "training")
    what = "outside the clipping range" if how == "coordinate" else "weight sum"
    assert what in refused.reason
    assert what in caplog.text
    assert model is not None and all(abs(v) < 16 for v in model)
