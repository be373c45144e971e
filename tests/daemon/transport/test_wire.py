"""The wire format: round trips, limits, and garbage that only ever raises MalformedMessage."""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import tracemalloc

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages import MESSAGE_TYPES
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.unmask import UnmaskRequest
from fedd.daemon.transport import wire
from fedd.daemon.transport.contribution import Layout
from fedd.daemon.transport.messages import DAEMON_MESSAGE_TYPES
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.membership import Bye, Done, Heartbeat, Hello, Welcome
from fedd.daemon.transport.messages.rounds import (
    Decline,
    EvalRequest,
    RoundEnd,
    RoundStart,
    Scaling,
    TrainConfig,
)
from fedd.daemon.transport.messages.status import StatusReply, StatusRequest
from fedd.daemon.transport.messages.uploads import PeerStats, PlainContribution
from fedd.daemon.transport.wire import MalformedMessage
from tests.crypto.test_secagg_transitions import ANY_MESSAGE, PARAMS
from tests.daemon.hostile import Mutator

TRAIN = TrainConfig(1, 0.1, 512, 0.0, "none", 43)
SCALING = Scaling((100.0, -0.5, 3.25), (20.0, 1.0, 0.5))
NARROW = FixedPoint.fit(max_peers=4, max_weight=100, clip=2.0)
WIDE = FixedPoint.fit(max_peers=4, max_weight=100, clip=2.0, mod_bits=64)
MODEL = (0.5, -1.0, 2.0, 0.0)
SCORE = EvalRequest(1, MODEL, (-3.0, 0.0, 0.25, 7.5), 0.5)
SECURE = dataclasses.replace(
    PARAMS,
    dim=Layout("training", 3, WIDE, (SCORE.bins,)).lanes,
    mod_bits=64,
)
DAEMON_MESSAGES = [
    Hello("", 0, PeerId("p1"), ("V1", "V2", "Amount"), shard="auto", holdout=True, unsettled=7),
    Welcome("test-run", 3, PeerId("p1"), 1.0, 2),
    Heartbeat("test-run", 3),
    RoundStart("test-run", 2, "training", "off", MODEL, TRAIN, SCALING, (), None, NARROW),
    RoundStart(
        SECURE.run, SECURE.round, "training", "plus", MODEL, TRAIN, SCALING, (SCORE,), SECURE, WIDE
    ),
    RoundStart("test-run", 1, "statistics", "off", MODEL),
    RoundStart("test-run", 9, "evaluation", "off", MODEL, None, SCALING, (SCORE,)),
    RoundStart(  # SCAFFOLD, with FedProx's term
        "test-run",
        3,
        "training",
        "off",
        MODEL,
        dataclasses.replace(TRAIN, proximal_mu=0.01),
        SCALING,
        (),
        None,
        NARROW,
        (0.25, -0.5, 1e-9, 0.0),
    ),
    PlainContribution("test-run", 1, b"\x01" * 40),
    PeerStats("test-run", 1, 0, 0.02, 0.019),
    RoundEnd("test-run", 1, "aborted", "only 2 peers completed share-keys"),
    RoundEnd("test-run", 2, "ok", included=True),
    Done("test-run", 5),
    Bye("", 0),
    Decline("test-run", 2, "this peer requires the active-adversary protocol"),
    Error("", 0, "feature mismatch", retry=False),
    StatusRequest("", 0, "rounds", 5),
    StatusReply(
        "test-run",
        2,
        "summary",
        {"run": "test-run", "peers": [{"peer": "p1"}], "last_round": None, "roc_auc": 0.97},
    ),
]
assert {type(m) for m in DAEMON_MESSAGES} == set(DAEMON_MESSAGE_TYPES)

MESSAGES = [ANY_MESSAGE[k] for k in MESSAGE_TYPES] + DAEMON_MESSAGES


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg):
    frame = wire.encode(msg)
    assert wire.decode(frame) == msg


def test_vectors_travel_as_packed_bytes():
    msg = ANY_MESSAGE[MaskedInput]
    doc = msgpack.unpackb(wire.encode(msg), raw=False)
    assert type(doc["body"]["y"]) is bytes
    assert doc["v"] == 1 and doc["type"] == "masked_input"
    model = msgpack.unpackb(wire.encode(DAEMON_MESSAGES[3]), raw=False)["body"]["model"]
    assert model == struct.pack("<4d", 0.5, -1.0, 2.0, 0.0)


@pytest.mark.parametrize(
    "body_change",
    [
        {"model": struct.pack("<2d", float("nan"), 1.0)},
        {"model": b"\x00" * 12},
        {"mode": "half"},
        {"train": {"epochs": 1}},
        {"kind": "teaching"},
        {"scaling": {"means": struct.pack("<3d", 0, 0, 0), "stds": struct.pack("<3d", 1, 0, 1)}},
        {"scaling": {"means": struct.pack("<2d", 0, 0), "stds": struct.pack("<2d", 1, 1)}},
        {"evals": [{"model_round": 1, "params": b"", "edges": b"", "threshold": 0.5}]},
        {"evals": [{**SCORE.to_body(), "edges": struct.pack("<2d", 1.0, 1.0)}]},
        {"evals": [{**SCORE.to_body(), "threshold": 1.0}]},
        {"evals": [SCORE.to_body()] * 3},
    ],
    ids=[
        "nan-model",
        "ragged-model",
        "bad-mode",
        "short-train",
        "bad-kind",
        "zero-std",
        "scaling-short",
        "eval-no-model",
        "eval-edges-not-increasing",
        "eval-threshold-1",
        "three-evals",
    ],
)
def test_round_start_rejects_bad_models_and_configs(body_change):
    doc = envelope(DAEMON_MESSAGES[3])
    doc["body"].update(body_change)
    with pytest.raises(MalformedMessage):
        wire.decode(pack(doc))


@pytest.mark.parametrize(
    ("where", "change", "error"),
    [
        ("survivors", lambda ids: [*ids, ids[0]], "survivor '[^']+' listed twice"),
        ("survivors", lambda ids: [*ids[:-1], 7], "survivor must be 1-64 printable"),
        ("survivors", lambda ids: [*ids[:-1], "p 9"], "survivor must be 1-64 printable"),
        ("participants", lambda ids: [ids[0], *ids], "participants must be sorted and unique"),
        ("participants", lambda ids: [*ids[:-1], b"p9"], "participant must be 1-64 printable"),
    ],
)
def test_lists_of_peer_ids_name_the_id_that_is_wrong(where, change, error):
    if where == "survivors":
        doc = envelope(ANY_MESSAGE[UnmaskRequest])
        body = doc["body"]
    else:
        doc = envelope(DAEMON_MESSAGES[4])
        body = doc["body"]["secagg"]
    body[where] = change(body[where])
    with pytest.raises(MalformedMessage, match=error):
        wire.decode(pack(doc))


def test_round_start_rejects_secagg_parameters_of_another_round():
    doc = envelope(DAEMON_MESSAGES[4])
    doc["body"]["secagg"]["round"] += 1
    with pytest.raises(MalformedMessage, match="another round"):
        wire.decode(pack(doc))


def test_round_start_rejects_secagg_vectors_of_another_shape():
    """The vector's length follows from the round's contents; the hub cannot say otherwise."""
    doc = envelope(DAEMON_MESSAGES[4])
    doc["body"]["evals"] = []
    with pytest.raises(MalformedMessage, match="layout"):
        wire.decode(pack(doc))
    doc = envelope(DAEMON_MESSAGES[4])
    doc["body"]["encoding"] = envelope(DAEMON_MESSAGES[3])["body"]["encoding"]
    with pytest.raises(MalformedMessage, match="64-bit"):
        wire.decode(pack(doc))


@pytest.mark.parametrize(
    "body_change",
    [
        {"control": struct.pack("<3d", 0.0, 1.0, 2.0)},
        {"control": struct.pack("<4d", 0.0, float("inf"), 0.0, 0.0)},
        {"control": [0.0, 0.0, 0.0, 0.0]},
        {"train": {**TRAIN.to_body(), "proximal_mu": -1.0}},
        {"train": {**TRAIN.to_body(), "proximal_mu": 1}},
    ],
    ids=["control-short", "control-inf", "control-list", "mu-negative", "mu-int"],
)
def test_round_start_rejects_bad_strategy_fields(body_change):
    doc = envelope(DAEMON_MESSAGES[7])
    doc["body"].update(body_change)
    with pytest.raises(MalformedMessage):
        wire.decode(pack(doc))


def test_only_training_rounds_carry_a_control_variate():
    doc = envelope(DAEMON_MESSAGES[6])  # an evaluation round
    doc["body"]["control"] = struct.pack("<4d", 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(MalformedMessage, match="only training rounds carry control"):
        wire.decode(pack(doc))


@pytest.mark.parametrize("included", [1, None, "yes"])
def test_round_end_says_plainly_whether_a_peer_is_in_the_sum(included):
    doc = envelope(RoundEnd("test-run", 2, "ok", included=True))
    doc["body"]["included"] = included
    with pytest.raises(MalformedMessage, match="included"):
        wire.decode(pack(doc))
    doc = envelope(RoundEnd("test-run", 2, "aborted", "too few"))
    doc["body"]["included"] = True
    with pytest.raises(MalformedMessage, match="includes no one"):
        wire.decode(pack(doc))


def envelope(msg) -> dict:
    return msgpack.unpackb(wire.encode(msg), raw=False)


def pack(doc) -> bytes:
    return msgpack.packb(doc, use_bin_type=True)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(v=2),
        lambda d: d.update(v=True),
        lambda d: d.update(type="no_such_type"),
        lambda d: d.update(type=7),
        lambda d: d.update(run=b"bytes"),
        lambda d: d.update(run="has space"),
        lambda d: d.update(round=-1),
        lambda d: d.update(round=True),
        lambda d: d.update(round=2**40),
        lambda d: d.update(body=[]),
        lambda d: d.update(extra=1),
        lambda d: d.pop("body"),
    ],
    ids=[
        "v2",
        "v-bool",
        "unknown-type",
        "type-int",
        "run-bytes",
        "run-space",
        "round-neg",
        "round-bool",
        "round-huge",
        "body-list",
        "extra-field",
        "no-body",
    ],
)
def test_bad_envelopes_are_malformed(mutate):
    doc = envelope(MESSAGES[0])
    mutate(doc)
    with pytest.raises(MalformedMessage):
        wire.decode(pack(doc))


WRONG_VALUES = [None, True, 1, -1, 1.5, "text", b"\x00" * 3, [], {}, [[1, 2]], "x" * 100]
# Fields a peer of the previous protocol leaves out of its Hello: their default
# lets the Hello decode, so that the hub refuses that peer's protocol by name.
LATER_FIELDS = {("Hello", "unsettled"): 0}


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_wrong_types_in_every_body_field_are_malformed(msg):
    """Any value of another type than the field's (True is not an int) is refused."""
    doc = envelope(msg)
    for name in doc["body"]:
        for value in WRONG_VALUES:
            if type(value) is type(doc["body"][name]):
                continue
            bad = {**doc, "body": {**doc["body"], name: value}}
            with pytest.raises(MalformedMessage):
                wire.decode(pack(bad))
        missing = {**doc, "body": {k: v for k, v in doc["body"].items() if k != name}}
        later = (type(msg).__name__, name)
        if later in LATER_FIELDS:
            assert getattr(wire.decode(pack(missing)), name) == LATER_FIELDS[later]
            continue
        with pytest.raises(MalformedMessage):
            wire.decode(pack(missing))


def test_non_string_map_keys_are_malformed():
    with pytest.raises(MalformedMessage):
        wire.decode(msgpack.packb({1: 2}))


def test_ext_types_are_malformed():
    doc = envelope(MESSAGES[0])
    doc["body"]["c_pk"] = msgpack.ExtType(5, b"\x00" * 32)
    with pytest.raises(MalformedMessage):
        wire.decode(pack(doc))


def test_huge_declared_lengths_are_malformed_without_allocating():
    # bin32 header claiming 2 GiB followed by 3 bytes; array32 claiming 2**31 items.
    for frame in (
        b"\xc6" + struct.pack(">I", 2**31) + b"abc",
        b"\xdd" + struct.pack(">I", 2**31) + b"\x01",
        b"\xdf" + struct.pack(">I", 2**31),
    ):
        with pytest.raises(MalformedMessage):
            wire.decode(frame)


def test_oversized_frames_are_refused_before_unpacking():
    with pytest.raises(MalformedMessage, match="exceeds"):
        wire.decode(b"\x00" * (wire.MAX_FRAME + 1))


def test_deep_nesting_is_malformed():
    frame = b"\x91" * 100_000 + b"\x00"
    with pytest.raises(MalformedMessage):
        wire.decode(frame)


def test_encode_refuses_objects_that_are_not_wire_messages():
    from fedd.crypto.errors import LocalProtocolError

    with pytest.raises(LocalProtocolError):
        wire.encode(object())  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_garbage_only_ever_raises_malformed(frame):
    with contextlib.suppress(MalformedMessage):
        wire.decode(frame)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_valid_frames_only_ever_raise_malformed(data):
    msg = data.draw(st.sampled_from(MESSAGES), label="message")
    frame = bytearray(wire.encode(msg))
    action = data.draw(st.sampled_from(["truncate", "extend", "flip", "splice"]))
    if action == "truncate":
        frame = frame[: data.draw(st.integers(0, len(frame) - 1))]
    elif action == "extend":
        frame += data.draw(st.binary(min_size=1, max_size=64))
    elif action == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(frame) - 1))
            frame[i] ^= 1 << data.draw(st.integers(0, 7))
    else:
        i = data.draw(st.integers(0, len(frame)))
        frame[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    with contextlib.suppress(MalformedMessage):
        decoded = wire.decode(bytes(frame))
        assert type(decoded) in (*MESSAGE_TYPES, *DAEMON_MESSAGE_TYPES)


@pytest.mark.parametrize("reason", ["two\nlines", "cr\r", "tab\t", "nul\x00", "\x1b[2J", "c1\x9b"])
@pytest.mark.parametrize("kind", [RoundEnd, Error, Decline], ids=lambda k: k.__name__)
def test_reasons_with_control_characters_are_malformed(kind, reason):
    doc = envelope(next(m for m in DAEMON_MESSAGES if type(m) is kind))
    doc["body"]["reason"] = reason
    with pytest.raises(MalformedMessage, match="without control characters"):
        wire.decode(pack(doc))
    doc["body"]["reason"] = "ünïcode is fine"
    assert wire.decode(pack(doc)).reason == "ünïcode is fine"


# --- hostile frames built from valid ones, structure-aware ---------------------------

ALL_TYPES = (*MESSAGE_TYPES, *DAEMON_MESSAGE_TYPES)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=70)
    | st.binary(max_size=100)
)
# msgpack's strict_map_key admits both.
KEYS = st.text(max_size=10) | st.binary(max_size=10)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=10,
)


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a decoded frame, as a path of map keys and list indices."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def assert_malformed_or_valid(frame: bytes) -> None:
    """The only two outcomes: MalformedMessage, or a message the wire reproduces exactly."""
    try:
        decoded = wire.decode(frame)
    except MalformedMessage:
        return
    assert type(decoded) in ALL_TYPES
    assert wire.decode(wire.encode(decoded)) == decoded


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_any_value_anywhere_is_malformed_or_a_valid_message(data):
    """Every field at every depth (roster entries, sealed shares, train config, round
    parameters, encoding, status data) replaced by any value, dropped, or joined by another."""
    doc = envelope(data.draw(st.sampled_from(MESSAGES), label="message"))
    path = data.draw(st.sampled_from(paths(doc)[1:]), label="path")
    *parents, last = path
    container = doc
    for key in parents:
        container = container[key]
    action = data.draw(st.sampled_from(["replace", "drop", "add"]), label="action")
    if action == "replace":
        container[last] = data.draw(VALUES, label="value")
    elif action == "drop":
        del container[last]
    elif isinstance(container, dict):
        container[data.draw(KEYS, label="key")] = data.draw(VALUES)
    else:
        container.insert(last, data.draw(VALUES, label="value"))
    assert_malformed_or_valid(pack(doc))


HUGE_HEADERS = [
    b"\xc6\xff\xff\xff\xff",  # bin 32, 4 GiB
    b"\xdb\xff\xff\xff\xff",  # str 32
    b"\xdd\xff\xff\xff\xff",  # array 32
    b"\xdf\xff\xff\xff\xff",  # map 32
    b"\xc6" + struct.pack(">I", wire.MAX_FRAME),
    b"\xdc\xff\xff",  # array 16, 65,535 entries
    b"\xde\xff\xff",  # map 16
]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_huge_declared_lengths_anywhere_in_a_frame_are_never_allocated(data):
    """A header claiming gigabytes, put anywhere: refused (or, inside a byte
    string, just bytes) without allocating anything near the claim."""
    frame = wire.encode(data.draw(st.sampled_from(MESSAGES), label="message"))
    at = data.draw(st.integers(0, len(frame)), label="at")
    header = data.draw(st.sampled_from(HUGE_HEADERS), label="header")
    overwrite = data.draw(st.booleans(), label="overwrite")
    bad = frame[:at] + header + frame[at + (len(header) if overwrite else 0) :]
    tracemalloc.start()
    try:
        assert_malformed_or_valid(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@settings(max_examples=100, deadline=None)
@given(v=VALUES.filter(lambda v: not (type(v) is int and v == wire.WIRE_VERSION)))
def test_every_other_wire_version_is_malformed(v):
    doc = envelope(MESSAGES[0])
    doc["v"] = v
    with pytest.raises(MalformedMessage, match="not a version 1 message"):
        wire.decode(pack(doc))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_frames_from_the_mutation_fuzzer_are_malformed_or_valid(seed):
    """The seeded mutator of bench/fuzz.py, a few hundred seeds at a time in the suite."""
    mutator = Mutator([wire.encode(m) for m in MESSAGES], seed=seed)
    for frame in mutator.frames(5):
        assert_malformed_or_valid(frame)


def test_envelope_keys_of_mixed_types_are_malformed():
    """msgpack's strict_map_key admits str and bytes keys: sorting them for the
    message must not raise TypeError (which would escape the hub's handler)."""
    doc = envelope(MESSAGES[0])
    doc["extra"], doc[b"more"] = 1, 2
    with pytest.raises(MalformedMessage, match="unexpected envelope fields"):
        wire.decode(pack(doc))
