"""Hostile input for the daemons: an in-process federation and a seeded mutation fuzzer.

`InProcessFederation` runs the real `Hub` and real `PeerAgent`s in this
process, their ZeroMQ sockets replaced by lists that `step()` moves frames
between. Nothing else is faked: frames go through `wire`, the hub's
registry, round runners and CSV store, and the peers' training, sessions
and state. Hooks see (and may replace or add to) every frame in both
directions, and `to_hub`/`to_peer` inject frames from anyone, so a test can
interleave hostile frames with a round that is running and then check that
the round completed.

`squeeze_evaluations` and `check_whole_run` state what a run's rounds must
look like, for the tests that run a federation to its end.

`Mutator` turns valid frames into hostile ones, deterministically from a
seed: byte-level damage (bit flips, truncation, extension, insertion,
splices, random bytes, msgpack headers declaring huge lengths) and
structure-aware changes (any field anywhere replaced by a value of another
type or range, fields dropped or added, another wire version, another run
or round, another message type's body).

Used by the tests in tests/daemon and tests/peer and by `bench/fuzz.py`.
"""

from __future__ import annotations

import contextlib
import math
import random
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgpack

from fedd.crypto.secagg.fields import MAX_ROUND
from fedd.daemon.hub.config import HubConfig
from fedd.daemon.hub.loop import Hub
from fedd.daemon.state.hubfiles import RoundRow
from fedd.peer.agent import PeerAgent
from fedd.peer.config import PeerConfig

__all__ = [
    "FakeDealer",
    "FakeRouter",
    "InProcessFederation",
    "Mutator",
    "Recorded",
    "check_whole_run",
    "hostile_values",
    "record",
    "squeeze_evaluations",
    "write_shard",
]


class FakeRouter:
    """Stands in for the hub's ROUTER socket: keeps what the hub sends."""

    def __init__(self) -> None:
        self.outbox: list[tuple[bytes, bytes]] = []

    def send_multipart(self, parts: list[bytes], flags: int = 0) -> None:
        routing, frame = parts
        self.outbox.append((routing, frame))

    def take(self) -> list[tuple[bytes, bytes]]:
        out, self.outbox = self.outbox, []
        return out


class FakeDealer:
    """Stands in for a peer's DEALER socket: keeps what the peer sends."""

    def __init__(self) -> None:
        self.outbox: list[bytes] = []

    def send(self, frame: bytes, flags: int = 0) -> None:
        self.outbox.append(frame)

    def take(self) -> list[bytes]:
        out, self.outbox = self.outbox, []
        return out


def write_shard(path: Path, *, rows: int, features: int, seed: int) -> Path:
    """A small labelled CSV (features V1..Vf, label Class) with both classes."""
    rng = random.Random(seed)
    weights = [rng.uniform(-2, 2) for _ in range(features)]
    lines = [",".join([*(f"V{j + 1}" for j in range(features)), "Class"])]
    for i in range(rows):
        x = [rng.gauss(0, 1) for _ in range(features)]
        z = sum(w * v for w, v in zip(weights, x, strict=True))
        label = i % 2 if i < 2 else int(rng.random() < 1 / (1 + math.exp(-z)))
        lines.append(",".join([*(f"{v:.6f}" for v in x), str(label)]))
    path.write_text("\n".join(lines) + "\n")
    return path


# A round's entry in a list of rounds: its kind first.
Entry = TypeVar("Entry", bound=tuple[Any, ...])

# (direction, routing, frame) -> frames to deliver instead (empty: drop it).
Hook = Callable[[str, bytes, bytes], list[bytes]]


def _pass(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
    return [frame]


@dataclass
class InProcessFederation:
    """A real hub and `peers` real peer agents in this process, pumped by `step()`.

    Peers are named p1..pN with routing ids b"r-p1"...; their data are small
    synthetic shards, or the files `shards` (one per peer). `hub_options`
    override the HubConfig fields (the defaults make rounds start as soon as
    everyone is in, and keep time-outs short enough for tests). Call
    `close()` (or use `with`) to stop the training threads and release the
    state directories' locks.
    """

    root: Path
    peers: int = 3
    secagg: str = "full"
    rounds: int = 2
    rows: int = 80
    features: int = 3
    hub_options: dict[str, Any] = field(default_factory=dict)
    shards: tuple[Path, ...] = ()
    hook: Hook = _pass
    # A fixed run id makes frames recorded in one federation current in another.
    run_id: str | None = None
    hub: Hub = field(init=False)
    agents: dict[bytes, PeerAgent] = field(init=False)
    router: FakeRouter = field(init=False)
    dealers: dict[bytes, FakeDealer] = field(init=False, default_factory=dict)
    exited: dict[bytes, int] = field(init=False, default_factory=dict)
    frames_to_hub: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        options: dict[str, Any] = {
            "bind": "inproc://unused",
            "state_dir": self.root / "hub",
            "min_peers": self.peers,
            "rounds": self.rounds,
            "secagg": self.secagg,
            "join_window": 0.0,
            "heartbeat_s": 0.2,
            "liveness_s": 30.0,
            "stage_timeout": 2.0,
            "train_timeout": 10.0,
            **self.hub_options,
        }
        self.hub = Hub(HubConfig(**options))
        self.router = FakeRouter()
        self.hub._sock = self.router  # type: ignore[assignment]
        if self.run_id is not None:
            self.hub.rounds.run_id = self.run_id  # before the first Hello starts the run
        self.agents = {}
        if self.shards and len(self.shards) != self.peers:
            raise ValueError(f"{len(self.shards)} shards for {self.peers} peers")
        for k in range(1, self.peers + 1):
            self.add_peer(f"p{k}", seed=k, data=self.shards[k - 1] if self.shards else None)

    def __enter__(self) -> InProcessFederation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_peer(
        self, name: str, *, seed: int, data: Path | None = None, **options: Any
    ) -> PeerAgent:
        """Another peer, on `data` or a synthetic shard: `options` are PeerConfig fields."""
        shard = data or write_shard(
            self.root / f"{name}.csv", rows=self.rows, features=self.features, seed=seed
        )
        config = PeerConfig("inproc://unused", shard, self.root / name, peer_id=name, **options)
        agent = PeerAgent(config)
        dealer = FakeDealer()
        agent._sock = dealer  # type: ignore[assignment]
        self.agents[self.routing(name)] = agent
        self.dealers[self.routing(name)] = dealer
        return agent

    @staticmethod
    def routing(name: str) -> bytes:
        return b"r-" + name.encode()

    def close(self) -> None:
        for agent in self.agents.values():
            agent.rounds.shutdown(wait=True)
            agent.lock.release()
        self.hub.lock.release()

    # -- frames in by hand ---------------------------------------------------

    def to_hub(self, routing: bytes, frame: bytes) -> list[bytes]:
        """Deliver one frame to the hub as if from `routing`; returns what the hub
        sent back to `routing` at once. Whatever the hub sent to agents (`routing`
        included, if it is one) is delivered to them."""
        self.frames_to_hub += 1
        self.hub._on_frame(routing, frame, self.hub.clock(), None)
        replies = []
        for to, out in self.router.take():
            if to == routing:
                replies.append(out)
            self._deliver_from_hub(to, out)
        return replies

    def to_peer(self, routing: bytes, frame: bytes) -> int | None:
        """Deliver one frame to the agent on `routing` as if from the hub; returns
        the agent's exit code if it decided to stop."""
        agent = self.agents[routing]
        code = agent._on_frame(frame, time.monotonic())
        if code is not None:
            self.exited.setdefault(routing, code)
        return code

    # -- the pump --------------------------------------------------------------

    def step(self) -> bool:
        """Move every queued frame once and run the timers; True if anything moved."""
        moved = False
        now = time.monotonic()
        for routing, agent in self.agents.items():
            if routing in self.exited:
                continue
            agent._timers(now)
            for frame in self.dealers[routing].take():
                moved = True
                for out in self.hook("to_hub", routing, frame):
                    self.frames_to_hub += 1
                    self.hub._on_frame(routing, out, self.hub.clock(), None)
        self.hub._tick(self.hub.clock())
        for routing, frame in self.router.take():
            moved = True
            self._deliver_from_hub(routing, frame)
        for routing, agent in self.agents.items():
            job = agent.rounds.job
            if routing not in self.exited and job is not None and job.future.done():
                moved = True
                agent.on_job_done()
        return moved

    def _deliver_from_hub(self, routing: bytes, frame: bytes) -> None:
        if routing not in self.agents:
            return
        if routing in self.exited:
            return
        for out in self.hook("to_peer", routing, frame):
            self.to_peer(routing, out)

    def run_until(self, done: Callable[[], bool], *, timeout: float = 60.0) -> None:
        """Pump until `done()`; raises AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; hub at {self.describe()}")
            if not self.step():
                self._wait_for_training()

    def _wait_for_training(self) -> None:
        for agent in self.agents.values():
            job = agent.rounds.job
            if job is not None and not job.future.done():
                with contextlib.suppress(TimeoutError):
                    job.future.exception(timeout=0.01)
                return
        time.sleep(0.001)

    def run_rounds(self, *, timeout: float = 60.0) -> list[RoundRow]:
        """Pump until the hub has committed all its rounds; returns round_log's rows."""
        self.run_until(lambda: self.hub.rounds.done, timeout=timeout)
        return self.round_log()

    def round_log(self) -> list[RoundRow]:
        return [row for row, _, _ in self.hub.store.recent_rounds(10_000)]

    def outcome(self, *, timeout: float = 60.0) -> list[tuple[str, str, int]]:
        """Pump until the run is done; each round's (kind, status, survivors) in
        order, as `squeeze_evaluations` gives them."""
        rows = self.run_rounds(timeout=timeout)
        return squeeze_evaluations((r.kind, r.status, r.survivors) for r in rows)

    def describe(self) -> str:
        current = self.hub.rounds.current
        stage = f"round {current.number}: {current.runner.stage}" if current else "between rounds"
        committed = self.hub.store.committed_round
        return f"{stage}, committed {committed}, alive {self.hub.registry.alive()}"


def squeeze_evaluations(entries: Iterable[Entry]) -> list[Entry]:
    """`entries` (one per round, in order, each starting with the round's kind)
    with each run of equal evaluation entries given once: how many passes
    scoring a model takes depends on the data, which a test of message
    handling is not about; how each round ended is."""
    out: list[Entry] = []
    for entry in entries:
        if not (entry[0] == "evaluation" and out and out[-1] == entry):
            out.append(entry)
    return out


def check_whole_run(rows: Sequence[RoundRow], rounds: int) -> None:
    """Assert that round_log's `rows` are a whole run of `rounds` training
    rounds, however each round ended: numbered from 1 without a gap;
    statistics rounds until one ends ok, then the training rounds, then
    evaluation rounds if and only if a training round ended ok (a model to
    score); every round ok, or aborted with a reason."""
    assert [r.round for r in rows] == list(range(1, len(rows) + 1))
    kinds = [r.kind for r in rows]
    statistics = kinds.count("statistics")
    evaluations = len(rows) - statistics - rounds
    assert (
        kinds == ["statistics"] * statistics + ["training"] * rounds + ["evaluation"] * evaluations
    )
    assert [r.status for r in rows[:statistics]] == ["aborted"] * (statistics - 1) + ["ok"]
    trained = any(r.status == "ok" for r in rows if r.kind == "training")
    assert (evaluations > 0) == trained
    assert all(r.status == "ok" or (r.status == "aborted" and r.reason) for r in rows)


@dataclass(frozen=True)
class Recorded:
    """One frame of a recorded federation: which way it went, whose it was, its type."""

    direction: str
    routing: bytes
    frame: bytes
    type: str


def record(root: Path, **options: Any) -> list[Recorded]:
    """Every frame of an honest federation's run (InProcessFederation options)."""
    frames: list[Recorded] = []

    def keep(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        kind = msgpack.unpackb(frame, raw=False)["type"]
        frames.append(Recorded(direction, routing, frame, kind))
        return [frame]

    with InProcessFederation(root, hook=keep, **options) as fed:
        fed.run_rounds()
    return frames


# -- the mutation fuzzer ---------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def _packed_floats(rng: random.Random) -> bytes:
    values = [rng.choice([math.nan, math.inf, 1e300, -0.0, 2.0]) for _ in range(rng.randrange(6))]
    return struct.pack(f"<{len(values)}d", *values)


# Each makes one value of a kind, size or range that some field must refuse.
_HOSTILE: tuple[Callable[[random.Random], Any], ...] = (
    lambda rng: None,
    lambda rng: rng.choice([True, False]),
    lambda rng: rng.choice([0, -1, 1, 2, 255, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1]),
    lambda rng: rng.choice([-(2**63), 2**64 - 1, -(2**31)]),
    lambda rng: rng.choice([0.0, -0.0, 1.5, -1.0, 1e308, 5e-324, math.nan, math.inf, -math.inf]),
    lambda rng: "",
    lambda rng: "x" * rng.choice([1, 63, 64, 65, 129, 401, 4096]),
    lambda rng: rng.choice(
        ["\x00", "a b", "line\nbreak", "é", "p1", "bias", "off", "plus", "auto"]
    ),
    lambda rng: b"",
    lambda rng: rng.randbytes(rng.choice([1, 7, 8, 31, 32, 33, 64, 96, 97, 1000])),
    lambda rng: [],
    lambda rng: {},
    lambda rng: [rng.randbytes(32) for _ in range(rng.randrange(1, 5))],
    lambda rng: [[f"p{i}", rng.randbytes(32)] for i in range(rng.randrange(1, 5))],
    lambda rng: [[f"p{i}", rng.randbytes(32), rng.randbytes(32)] for i in range(rng.randrange(5))],
    lambda rng: [f"p{i}" for i in range(rng.choice([0, 1, 2, 3, 10, 300]))],
    lambda rng: _nested(rng.choice([5, 50, 500])),
    lambda rng: {"k": rng.randbytes(4), "": None},
    lambda rng: msgpack.ExtType(rng.randrange(128), rng.randbytes(rng.randrange(8))),
    _packed_floats,
    lambda rng: ["x"] * rng.choice([1, 4097, 20_003]),
    lambda rng: rng.random(),
)


def hostile_values(rng: random.Random) -> Any:
    """One value of a random kind, size or range: what a field should never hold."""
    return rng.choice(_HOSTILE)(rng)


_HUGE_HEADERS = (
    b"\xc6\xff\xff\xff\xff",  # bin32
    b"\xdb\xff\xff\xff\xff",  # str32
    b"\xdd\xff\xff\xff\xff",  # array32
    b"\xdf\xff\xff\xff\xff",  # map32
    b"\xc6\x80\x00\x00\x00",
    b"\xdd\x00\x10\x00\x00",
    b"\xc5\xff\xff",  # bin16
)


@dataclass
class Mutator:
    """Seeded mutations of valid frames. Same seed, same corpus: same frames."""

    corpus: list[bytes]
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        if not self.corpus:
            raise ValueError("the mutator needs at least one valid frame")
        self.rng = random.Random(self.seed)

    def frames(self, count: int) -> Iterable[bytes]:
        for _ in range(count):
            yield self.mutate(self.rng.choice(self.corpus))

    def mutate(self, frame: bytes) -> bytes:
        """One hostile frame derived from `frame` (one to three mutations)."""
        out = frame
        for _ in range(self.rng.choice([1, 1, 1, 2, 3])):
            structural = self.rng.random() < 0.55
            out = self._structural(out) if structural else self._bytes(out)
        return out

    # -- byte level --

    def _bytes(self, frame: bytes) -> bytes:
        rng, data = self.rng, bytearray(frame)
        op = rng.randrange(8)
        if op == 0 and data:  # flip bits
            for _ in range(rng.randrange(1, 9)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1:  # truncate
            del data[rng.randrange(len(data) + 1) :]
        elif op == 2:  # extend
            data += rng.randbytes(rng.randrange(1, 65))
        elif op == 3:  # insert
            i = rng.randrange(len(data) + 1)
            data[i:i] = rng.randbytes(rng.randrange(1, 17))
        elif op == 4 and data:  # delete a slice
            i = rng.randrange(len(data))
            del data[i : i + rng.randrange(1, 17)]
        elif op == 5:  # splice with another frame
            other = rng.choice(self.corpus)
            data = data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]
        elif op == 6:  # random bytes
            data = bytearray(rng.randbytes(rng.choice([0, 1, 2, 5, 64, 4096])))
        else:  # a header declaring a huge length, anywhere
            i = rng.randrange(len(data) + 1)
            data[i:i] = rng.choice(_HUGE_HEADERS)
        return bytes(data)

    # -- structure level --

    def _structural(self, frame: bytes) -> bytes:
        try:
            doc = msgpack.unpackb(frame, raw=False, strict_map_key=False)
        except Exception:  # already damaged: fall back to bytes
            return self._bytes(frame)
        rng = self.rng
        op = rng.randrange(6)
        if op == 0 and isinstance(doc, dict):  # the envelope
            self._envelope(doc)
        elif op == 1 and isinstance(doc, dict):  # another message's body under this type
            other = self._decoded(rng.choice(self.corpus))
            if isinstance(other, dict) and "body" in other:
                doc["body"] = other["body"]
        else:
            doc = self._somewhere(doc, depth=0)
        try:
            packed: bytes = msgpack.packb(doc, use_bin_type=True)
        except (ValueError, TypeError, OverflowError):
            return self._bytes(frame)
        return packed

    @staticmethod
    def _decoded(frame: bytes) -> Any:
        try:
            return msgpack.unpackb(frame, raw=False, strict_map_key=False)
        except Exception:
            return None

    def _envelope(self, doc: dict[Any, Any]) -> None:
        rng = self.rng
        key = rng.choice(["v", "type", "run", "round", "round", "run"])
        if key == "v":
            doc["v"] = rng.choice([0, 2, 255, "1", 1.0, True, None])
        elif key == "type":
            doc["type"] = rng.choice(
                [
                    "hello",
                    "welcome",
                    "heartbeat",
                    "round_start",
                    "plain_contribution",
                    "decline",
                    "peer_stats",
                    "round_end",
                    "done",
                    "bye",
                    "error",
                    "status_request",
                    "status_reply",
                    "key_advert",
                    "roster",
                    "encrypted_shares",
                    "forwarded_shares",
                    "masked_input",
                    "unmask_request",
                    "unmask_shares",
                    "round_abort",
                    "nope",
                ]
            )
        elif key == "run":
            doc["run"] = rng.choice(["", "other-run", "run-20000101T000000Z-000000", "x" * 65])
        else:
            current = doc.get("round")
            base = current if type(current) is int else 1
            doc["round"] = rng.choice([base - 1, base + 1, 0, MAX_ROUND, MAX_ROUND + 1, -1])

    def _somewhere(self, value: Any, depth: int) -> Any:
        """Replace, drop or add at a random place under `value`."""
        rng = self.rng
        if depth > 0 and rng.random() < 0.3:
            return hostile_values(rng)
        if isinstance(value, dict) and value:
            key = rng.choice(list(value))
            roll = rng.random()
            if roll < 0.1:
                del value[key]
            elif roll < 0.2:
                value[rng.choice(["extra", "", "body", "v"])] = hostile_values(rng)
            else:
                value[key] = self._somewhere(value[key], depth + 1)
            return value
        if isinstance(value, list) and value:
            i = rng.randrange(len(value))
            roll = rng.random()
            if roll < 0.15:
                del value[i]
            elif roll < 0.3:
                value.append(value[i])  # a duplicate entry
            else:
                value[i] = self._somewhere(value[i], depth + 1)
            return value
        return hostile_values(rng)
