"""The daemons' own messages: registration, liveness, rounds, status.

Like the protocol messages of `crypto.secagg.messages`, each is a frozen,
slotted dataclass that validates itself and raises `LocalProtocolError`;
`daemon.transport.wire` encodes them and re-raises failures as `MalformedMessage`.

    peer -> hub      Hello, Heartbeat, PlainUpdate, PeerStats, Decline, Bye
    hub -> peer      Welcome, Heartbeat, RoundStart, RoundEnd, Done, Error
    client -> hub    StatusRequest            hub -> client   StatusReply, Error

Before a peer is welcomed it does not know the run id: Hello and
StatusRequest carry an empty `run`.

Each message lives with its exchange:

    membership   Hello, Welcome, Heartbeat, Bye, Done
    rounds       RoundStart (with TrainConfig), PlainUpdate, PeerStats, RoundEnd, Decline
    status       StatusRequest, StatusReply
    common       the header and field checks they share, and Error

`DAEMON_MESSAGE_TYPES` lists them all for the wire's type table.
"""

from __future__ import annotations

from fedd.daemon.transport.messages import common, membership, rounds, status

__all__ = ["DAEMON_MESSAGE_TYPES"]

DAEMON_MESSAGE_TYPES = (
    membership.Hello,
    membership.Welcome,
    membership.Heartbeat,
    rounds.RoundStart,
    rounds.PlainUpdate,
    rounds.PeerStats,
    rounds.RoundEnd,
    membership.Done,
    membership.Bye,
    rounds.Decline,
    common.Error,
    status.StatusRequest,
    status.StatusReply,
)
