"""Bounded fuzz of the Kafka reporter's C paths, run by ``test_kafka_sanitizers.py``.

``python kafka_fuzz_driver.py FAST_SO SECONDS SEED`` loads the sanitized build of
``_kafka_fast`` in place of the installed one, runs hostile cases (subclasses whose properties
mutate the records list, the labels dict or the serialised labels during the call, stamps whose
``__index__`` mutates the messages list, odd arguments) and then random records (surrogates,
control characters, huge and negative ints, non-str label values, str/int subclasses, labels
handed as JSON bytes: as orjson writes them, spelt with other escapes, or corrupted; empty and
large batches) through ``report()`` with the C path against the Python path, and their
messages through the records section, batch header and CRC-32C entry points against the
Python ones. Prints ``fuzz ok`` with the counts; a sanitizer report aborts the process
(non-zero exit).
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from otus.testing.sanitizers import load_extension  # noqa: E402

FAST = load_extension("otus_reporter_kafka._native._kafka_fast", sys.argv[1])

from aiokafka.record.util import calc_crc32c  # noqa: E402
from kafka_helpers import corrupt, labels_json_variant  # noqa: E402
from kafka_hostile import VICTIMS, LabelThief, ListThief, Shifty, fresh_labels  # noqa: E402
from orjson import dumps  # noqa: E402

from otus import PluginContext, Record  # noqa: E402
from otus_reporter_kafka import _native  # noqa: E402
from otus_reporter_kafka._batch import build_batch_py, records_section_py  # noqa: E402
from otus_reporter_kafka._buffer import Message  # noqa: E402
from otus_reporter_kafka._records import BodyEncoder  # noqa: E402
from otus_reporter_kafka.encoding import JsonEncoder  # noqa: E402
from otus_reporter_kafka.options import KafkaReporterOptions  # noqa: E402
from otus_reporter_kafka.reporter import KafkaReporter  # noqa: E402

assert _native.FAST is FAST, "the sanitized build must be the one in use"


class Str(str):
    """A str subclass: not taken by C (exact types only), same text in Python."""


class Int(int):
    """An int subclass."""


# -- hostile records ---------------------------------------------------------------------------


class PayloadThief(Record):
    """``serialized_payload()`` replaces every label value with a fresh string."""

    def serialized_payload(self) -> bytes | None:
        labels = Record.labels.__get__(self)  # type: ignore[attr-defined]
        for name in list(labels):
            labels[name] = "z" * 300 + name
        return b'{"ok":1}'


class JsonThief(Record):
    """``serialized_labels()`` hands bytes only the caller holds, and drops the record's own."""

    __slots__ = ()

    def serialized_labels(self) -> bytes | None:
        self._labels_json = dumps(fresh_labels(2, 8))
        return dumps(fresh_labels(5, 7)) + b""


class JsonSwap(Record):
    """``raw_payload`` (read by C before the labels) replaces the serialised labels."""

    __slots__ = ()

    @property  # type: ignore[override]
    def raw_payload(self) -> bytes:
        self._labels_json = dumps(fresh_labels(6, 5)) + b""
        return b"raw"

    @raw_payload.setter
    def raw_payload(self, value: bytes) -> None:
        pass


def base_record(seq: int, cls: type[Record] = Record, **over: Any) -> Record:
    fields: dict[str, Any] = {
        "ts_ns": 1_700_000_000_123_456_789 + seq, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2",
        "src_port": 5060, "dst_port": 5060, "protocol": 17, "payload_type": "sip",
        "raw_payload": b"INVITE sip:b SIP/2.0\r\n\r\n", "payload": {"seq": seq},
        "labels": fresh_labels(4, seq), "task_id": "task", "agent_id": "agent",
        "pipeline_id": 1,
    }  # fmt: skip
    fields.update(over)
    return cls(**fields)


def reporter(native: bool, **options: Any) -> KafkaReporter:
    opts = KafkaReporterOptions.model_validate({"brokers": ["127.0.0.1:1"], **options})
    return KafkaReporter(opts, PluginContext(), native=native)


def report(rep: KafkaReporter, records: list[Any]) -> tuple[Any, Any]:
    try:
        rep.report(records)
    except Exception as err:  # the same exception from both paths is fine
        return type(err).__name__, None
    out, stats = rep._buffer.take_all(), rep.stats()
    rep._buffer.release(len(out), sum(m.size for m in out))  # as if delivered: never full
    return out, stats


def hostile_cases() -> int:
    fast = reporter(True, topic_prefix="p")
    n = 0
    for cls in (LabelThief, PayloadThief):
        for seq in range(20):
            records = [base_record(seq, cls, labels=fresh_labels(5, seq)) for _ in range(3)]
            messages, _ = report(fast, records)
            assert isinstance(messages, list), messages
            n += 1
    for json_cls in (JsonThief, JsonSwap):
        for seq in range(20):
            records = [
                base_record(seq, json_cls, labels=None, labels_json=dumps(fresh_labels(4, seq)))
                for _ in range(3)
            ]
            messages, _ = report(fast, records)
            assert isinstance(messages, list), messages
            assert len(messages) == 3
            n += 1
    for size in (1, 2, 5, 50):
        VICTIMS[:] = [base_record(i) for i in range(size)]
        VICTIMS.insert(min(1, size), base_record(0, ListThief))
        report(fast, VICTIMS)
        VICTIMS[:] = [base_record(0, ListThief)] + [base_record(i) for i in range(size)]
        report(fast, VICTIMS)
        n += 2
    for size in (1, 3, 40):
        messages: list[Any] = []
        for i in range(size):
            messages.append(Message("t", 0, b"b" * i * 50, i, 0, None))
        messages.append(Message("t", 0, b"x" * 1000, Shifty(messages), 0, None))  # type: ignore[arg-type]
        with contextlib.suppress(TypeError, OverflowError, ValueError):
            FAST.records_section(messages, 0)
        with contextlib.suppress(TypeError, OverflowError, ValueError):
            FAST.records_section_into(bytearray(), messages, 0, 0, 1 << 20)
        n += 2
    # odd arguments to every entry point
    encoder = BodyEncoder(JsonEncoder())
    good = [base_record(i) for i in range(3)]
    for start in (-(2**62), -1, 0, 2, 3, 4, 2**62):
        out: list[Message] = []
        FAST.encode_bodies(good, start, out, {}, encoder._flow, dumps, "t", {}, "", False,
                           10**6, 128, Message)  # fmt: skip
        n += 1
    for new_flow in (
        lambda r: None, lambda r: (b"", b"", 0, b""), lambda r: (b"k", b"h", Int(3), b"", b""),
        lambda r: ("k", b"h", 1, b"", b""), lambda r: 1 / 0, lambda r: (b"", b"", 2**70, b"", b""),
    ):  # fmt: skip
        out = []
        FAST.encode_bodies(good, 0, out, {}, new_flow, dumps, None, {}, "p-", True, 10**6, 128,
                           Message)  # fmt: skip
        n += 1
    for max_size, framing in ((-1, 0), (0, 0), (10**6, -(10**6)), (2**62, 2**62)):
        out = []
        with contextlib.suppress(OverflowError):
            FAST.encode_bodies(good, 0, out, {}, encoder._flow, dumps, "t", {}, "", False,
                               max_size, framing, Message)  # fmt: skip
        n += 1
    for bad in ((), (good,), (good, 0, [], {}, None, None, 5, {}, "", 0, 1, 1, Message),
                (good, 0, [], {}, None, None, None, {}, "", 0, 1, 1, int),
                (tuple(good), 0, [], {}, None, None, None, {}, "", 0, 1, 1, Message)):  # fmt: skip
        with contextlib.suppress(TypeError):
            FAST.encode_bodies(*bad)
        n += 1
    for args in (
        (b"", 0, 1, 0, 0, -1, -1, -1), (b"x" * 100, 3, 2**31 - 1, -(2**63), 2**63 - 1, 2**63 - 1,
        32767, 2**31 - 1), (b"", 0, 0, 0, 0, 0, 0, 0), (b"", 0, 1, 2**63, 0, 0, 0, 0),
        (b"", 2**15, 1, 0, 0, 0, 0, 0), (b"", -(2**15) - 1, 1, 0, 0, 0, 0, 0),
        (bytearray(b"x"), 0, 1, 0, 0, 0, 0, 0), (b"y", 0, 1, 0, 0, 0, 0),
    ):  # fmt: skip
        try:
            fast = FAST.batch(*args)
        except (TypeError, OverflowError):  # refused: the Python builder is used then
            pass
        else:
            assert fast == build_batch_py(*args)
        n += 1
    chunks = (b"", b"a", bytearray(b"abc" * 33), memoryview(b"0123456789abcdef")[3:], b"\xff" * 99)
    for data in chunks:
        assert FAST.crc32c(data) == calc_crc32c(bytes(data))
        n += 1
    with contextlib.suppress(TypeError):
        FAST.crc32c("text")
    return n


# -- random records ----------------------------------------------------------------------------

ALPHABET = [*'"\\/\x00\x01\x1f\b\t\n\f\r\x7f é東\u2028\U0001f600aZ09.-:@', "\ud800", "\udfff"]
INTS = [0, 1, -1, 5060, 65535, 65536, 2**31, 2**32, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
        2**64, 2**70, -(2**70), 999_999, -999_999, -1_000_000, 1_000_000]  # fmt: skip


def rand_text(rng: random.Random, odd: bool = False) -> Any:
    roll = rng.random()
    if odd and roll < 0.1:
        return rng.choice([None, 7, b"bytes", 1.5, Int(3)])
    size = rng.choice((0, 1, 3, 7, 8, 9, 15, 16, 17, 40, 300, 5000 if roll > 0.97 else 64))
    if rng.random() < 0.3:
        text = "".join(rng.choice("abcdefgh.-_") for _ in range(size))
    else:
        text = "".join(rng.choice(ALPHABET) for _ in range(size))
    if rng.random() < 0.98:  # a lone surrogate (not UTF-8) now and then
        text = text.replace("\ud800", "").replace("\udfff", "")
    return Str(text) if rng.random() < 0.01 else text


def rand_int(rng: random.Random, odd: bool = False) -> Any:
    roll = rng.random()
    if odd and roll < 0.1:
        return rng.choice(["5060", None, 1.0, Int(8), True])
    if roll < 0.03:
        return rng.choice(INTS)  # some beyond 64 bits: orjson refuses, Python counts it
    if roll < 0.5:
        return rng.choice([i for i in INTS if -(2**63) <= i < 2**63])
    return rng.randint(-(2**63), 2**63 - 1)


def rand_labels(rng: random.Random, odd: bool = False) -> Any:
    roll = rng.random()
    if odd and roll < 0.1:
        return rng.choice([None, [("a", "b")], "labels"])
    labels = {}
    for _ in range(rng.choice((0, 1, 3, 13, 21, 70))):
        name, value = rand_text(rng, odd), rand_text(rng, odd)
        with contextlib.suppress(TypeError):  # unhashable
            labels[name] = value
    return labels


def rand_labels_json(rng: random.Random, labels: Any) -> bytes | None:
    """Serialised labels for ``labels`` (``None``: keep the dict): as orjson writes them, spelt
    with other escapes, or corrupted by one to three hostile edits."""
    try:
        data = dumps(labels)
    except TypeError:  # lone surrogates, non-str names: these stay a dict
        return None
    roll = rng.random()
    if roll < 0.2 and type(labels) is dict and all(type(v) is str for v in labels.values()):
        data = labels_json_variant(labels, rng)
    if roll > 0.7:
        for _ in range(rng.randint(1, 3)):
            data = corrupt(data, rng)
    return data


def rand_record(rng: random.Random) -> Any:
    """Mostly records of the declared types with hostile content; a few (``odd``) with
    fields of other types, which make the Python path (and so ``report()``) raise."""
    odd = rng.random() < 0.01
    serialized = rng.random() < 0.5
    payload: Any = {"m": rand_text(rng), "n": rand_int(rng)} if rng.random() < 0.9 else None
    if rng.random() < 0.03:
        payload = {"s": {1, 2}}
    raw: Any = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 2, 3, 4, 100, 473))))
    if rng.random() < 0.03:
        raw = rng.choice([bytearray(raw), b"\x00" * 70_000, b"\xff" * 5000])
    if odd and rng.random() < 0.2:
        raw = rng.choice([memoryview(raw), "text", None])
    try:
        payload_json = dumps(payload) if serialized and payload is not None else None
    except TypeError:
        payload_json = None
    if serialized and rng.random() < 0.05:
        payload_json = rng.choice([b"", b"not json", b'{"a":"\xff"}'])
    labels = rand_labels(rng, odd)
    labels_json = rand_labels_json(rng, labels) if rng.random() < 0.5 else None
    if labels_json is not None:
        labels = None
    text, number = (lambda: rand_text(rng, odd)), (lambda: rand_int(rng, odd))
    now = 1_700_000_000 * 10**9 + rng.randrange(10**12)
    return Record(
        ts_ns=rand_int(rng) if rng.random() < 0.5 else now,
        src_ip=text(), dst_ip=rng.choice(["10.0.0.2", "::1", text()]),
        src_port=number(), dst_port=number(), protocol=number(),
        payload_type=rng.choice(["sip", "rtp", text()]), raw_payload=raw,
        payload=None if serialized else payload, payload_json=payload_json,
        labels=labels, labels_json=labels_json, task_id=text(), agent_id=text(),
        pipeline_id=number(),
    )  # fmt: skip


def check_sections(messages: list[Message], rng: random.Random) -> None:
    first = messages[0].timestamp_ms if rng.random() < 0.8 else rng.choice(INTS[:12])
    try:
        fast = FAST.records_section(messages, first)
    except OverflowError:
        return
    assert fast == records_section_py(messages, first)
    section = fast[0]
    # the same section part by part into one reused scratch (at times a tiny one)
    scratch, parts, start = bytearray(rng.randrange(64)), [], 0
    limit = rng.choice((1, 100, 3000, 1 << 20))
    while start < len(messages):
        length, _, stop = FAST.records_section_into(scratch, messages, first, start, limit)
        assert start < stop <= len(messages)
        parts.append(bytes(scratch[:length]))
        start = stop
    assert b"".join(parts) == section
    fields = (section, rng.choice((0, 3, 4)), len(messages), first, fast[1], -1, -1, -1)
    try:
        built = FAST.batch(*fields)
    except OverflowError:
        return
    assert built == build_batch_py(*fields)
    assert FAST.crc32c(built[21:]) == calc_crc32c(built[21:])


def check_routed(routed: KafkaReporter, batch: list[Any], slow: Any, rng: random.Random) -> None:
    """``routed`` (C, routes installed for some topics) wrote into sections what the Python
    path made Messages of, per topic and partition, byte for byte; the rest as Messages."""
    buffer = routed._buffer
    counts = {topic: len(sections) for topic, sections in buffer.routes.items()}
    failed = None
    try:
        routed.report(batch)
    except Exception as err:  # the same exception as the Python path's is fine
        failed = type(err).__name__
    if failed is not None:
        assert slow[1] is None, slow
        assert slow[0] == failed, (failed, slow)
        return
    messages, sections = buffer.take_all(), buffer.take_sections()
    assert [m for m in slow[0] if m.topic not in counts] == messages
    for topic, count in counts.items():
        for part in range(count):
            expected = [m for m in slow[0] if m.topic == topic and m.hashed % count == part]
            mine = [x for x in sections if x.topic == topic and x.partition == part]
            at = 0
            for section in mine:
                if rng.random() < 0.3 and section.count > 1:
                    rest = section.split()
                    halves = [(section, section.count), (rest, rest.count)]
                else:
                    halves = [(section, section.count)]
                for part_section, n in halves:
                    chunk = expected[at : at + n]
                    first = chunk[0].timestamp_ms
                    with contextlib.suppress(OverflowError):
                        body, max_ts = records_section_py(chunk, first)
                        assert bytes(memoryview(part_section)) == body
                        assert (part_section.first_ts, part_section.max_ts) == (first, max_ts)
                    at += n
            assert at == len(expected)
    for section in sections:
        buffer.release(section.count, section.held)
        buffer.recycle(section)
    for topic in {m.topic for m in messages}:  # routed from the next call on
        buffer.install_routes(topic, list(range(rng.randint(1, 3))))
    buffer.release(len(messages), sum(m.size for m in messages))


def fuzz(seconds: float, seed: int) -> tuple[int, int, int]:
    rng = random.Random(seed)
    pairs = {}
    routed = {}
    for options in (
        {"topic": "calls"}, {"topic_prefix": "otus"},
        {"topic": "t", "max_message_bytes": 1024}, {"topic": "t", "max_message_bytes": 1500},
        {"topic_prefix": "p", "max_message_bytes": 4096, "oversize": "drop"},
    ):  # fmt: skip
        key = repr(options)
        pairs[key] = (reporter(True, **options), reporter(False, **options))
        routed[key] = reporter(True, **options, batch_size=rng.choice((1024, 8192, 1 << 20)))
    deadline = time.monotonic() + seconds
    runs = records = messages_seen = 0
    while time.monotonic() < deadline:
        batch = [rand_record(rng) for _ in range(rng.choice((0, 1, 2, 5, 30, 200)))]
        key = rng.choice(list(pairs))
        fast_rep, slow_rep = pairs[key]
        fast, slow = report(fast_rep, batch), report(slow_rep, batch)
        assert fast == slow, (fast, slow)
        if isinstance(slow[0], list):
            check_routed(routed[key], batch, slow, rng)
        runs += 1
        records += len(batch)
        if isinstance(fast[0], list) and fast[0]:
            messages_seen += len(fast[0])
            check_sections(fast[0], rng)
    return runs, records, messages_seen


def main() -> None:
    seconds, seed = float(sys.argv[2]), int(sys.argv[3])
    hostile = hostile_cases()
    runs, records, messages = fuzz(seconds, seed)
    print(f"fuzz ok: {hostile} hostile cases, {runs} report() calls, {records} records, "
          f"{messages} messages")  # fmt: skip


if __name__ == "__main__":
    main()
