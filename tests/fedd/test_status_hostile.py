"""`fedd status` shows whatever a hub answers, or says in one line that it cannot.

The reply's data is validated at the wire only as JSON-like (maps, lists,
scalars); its shape is the hub's business. A hub of another version, or
anything else listening on that port, can send any such data.
"""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fedd.cli.statusclient import render
from fedd.crypto.errors import LocalProtocolError
from fedd.daemon.errors import ConfigError
from fedd.daemon.transport.messages.status import STATUS_TOPICS, StatusReply

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# The keys the renderer looks for, with values of any type.
KEYS = [
    "peer",
    "status",
    "shard",
    "seen_ago_s",
    "round",
    "mode",
    "survivors",
    "participants",
    "duration_s",
    "roc_auc",
    "pr_auc",
    "f1",
    "reason",
    "stages",
    "run",
    "stage",
    "rounds_committed",
    "rounds_total",
    "peers_alive",
    "peers_known",
    "min_peers",
]
ROW = st.fixed_dictionaries({}, optional={key: JSON for key in KEYS})
DATA = st.fixed_dictionaries(
    {},
    optional={
        "peers": st.lists(ROW, max_size=3) | JSON,
        "rounds": st.lists(ROW, max_size=3) | JSON,
        "last_round": ROW | JSON,
        **{key: JSON for key in KEYS},
    },
)


@settings(max_examples=150, deadline=None)
@given(topic=st.sampled_from(STATUS_TOPICS), data=DATA | st.dictionaries(st.text(), JSON))
def test_any_reply_renders_or_is_one_clear_error(topic: str, data: dict[str, object]) -> None:
    try:
        reply = StatusReply("run-1", 1, topic, data)
    except LocalProtocolError:  # nested deeper than the wire allows
        assume(False)
    try:
        lines = render(reply)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "--json" in str(exc)
        return
    assert all(type(line) is str for line in lines)
