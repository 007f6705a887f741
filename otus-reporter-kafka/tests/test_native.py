"""The C fast path (``_native._kafka_fast``) against the Python path, byte for byte.

Both run through ``KafkaReporter.report()`` (not started: the messages stay in its buffer),
so the hand-over of oversized or unusual records from C to Python is covered too."""

from __future__ import annotations

import gc
import random
import sys
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka_helpers import corrupt, labels_json_variant, sip_record
from kafka_hostile import VICTIMS, LabelThief, ListThief, Shifty, fresh_labels

from otus import PluginContext, Record, record_to_dict
from otus.testing import need
from otus_reporter_kafka._batch import records_section, records_section_py, varint
from otus_reporter_kafka._buffer import Message
from otus_reporter_kafka._native import FAST
from otus_reporter_kafka._records import BodyEncoder
from otus_reporter_kafka.encoding import JsonEncoder
from otus_reporter_kafka.options import KafkaReporterOptions
from otus_reporter_kafka.reporter import KafkaReporter


@pytest.fixture(autouse=True)
def _built() -> None:
    need(FAST is not None, "the C extension _kafka_fast is not built (needs a C compiler)")


def _reporter(native: bool, **options: Any) -> KafkaReporter:
    opts = KafkaReporterOptions.model_validate({"brokers": ["127.0.0.1:1"], **options})
    return KafkaReporter(opts, PluginContext(), native=native)


def _both(records: list[Record], **options: Any) -> tuple[list[Message], dict[str, int]]:
    """The messages and counters of ``report(records)`` on the C path, checked equal to the
    Python path's."""
    results = []
    for native in (True, False):
        reporter = _reporter(native, **options)
        assert reporter._bodies.native is native
        reporter.report(records)
        results.append((reporter._buffer.take_all(), reporter.stats()))
    (fast, fast_stats), (slow, slow_stats) = results
    assert fast == slow
    assert fast_stats == slow_stats
    return fast, fast_stats


# Text that needs every kind of JSON escape orjson writes, non-ASCII, and anything else.
_odd = st.text(alphabet=st.sampled_from('"\\/\x00\x01\x1f\b\t\n\f\r\x7fé東\u2028a'), max_size=10)
_text = _odd | st.text(max_size=12)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_records = st.builds(
    lambda ids, ips, ports, ts_ns, raw, labels, payload, serialized: Record(
        ts_ns=ts_ns,
        src_ip=ips[0],
        dst_ip=ips[1],
        src_port=ports[0],
        dst_port=ports[1],
        protocol=17,
        payload_type=ids[0][:3] or "sip",
        raw_payload=raw,
        payload=None if serialized else payload,
        payload_json=orjson.dumps(payload) if serialized else None,
        labels=labels,
        task_id=ids[0],
        agent_id=ids[1],
        pipeline_id=ids[2],
    ),
    ids=st.tuples(_text, _text, st.integers(0, 2**31)),
    ips=st.tuples(_text, st.sampled_from(["10.0.0.2", "::1"])),
    ports=st.tuples(st.integers(0, 65535), st.integers(0, 65535)),
    ts_ns=st.integers(-(2**63), 2**63 - 1) | st.integers(1_600_000_000 * 10**9, 2**62),
    raw=st.binary(max_size=900),
    labels=st.dictionaries(_text, _text, max_size=6),
    payload=st.dictionaries(_text, _json_values, max_size=4),
    serialized=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(_records, max_size=6),
    topic=st.sampled_from([{"topic": "calls"}, {"topic_prefix": "otus"}]),
    max_bytes=st.sampled_from([1_000_000, 1300, 1024]),
)
def test_c_and_python_report_the_same_messages(
    records: list[Record], topic: dict[str, str], max_bytes: int
) -> None:
    messages, _ = _both(records, max_message_bytes=max_bytes, **topic)
    for message in messages:
        assert message.record is None  # no fallback reporter here: records are not kept
    # and the value inside each body is what orjson makes of record_to_dict (unless cut)
    if max_bytes == 1_000_000:
        taken: list[Message] = []
        stop, _ = BodyEncoder(JsonEncoder()).encode_run(
            records, 0, taken, "t", "", False, 10**6, 128
        )
        assert stop == len(records)  # C took them all: none needed the Python path
        reference = BodyEncoder(JsonEncoder(), native=False)
        for record, message in zip(records, messages, strict=True):
            value = orjson.dumps(record_to_dict(record))
            assert message.body == reference.with_value(record, value)


def test_oversized_records_are_cut_or_dropped_the_same_way() -> None:
    records = [sip_record(i, raw=bytes(range(256)) * (i % 6 + 1)) for i in range(12)]
    for oversize in ("truncate", "drop"):
        messages, stats = _both(records, topic="t", max_message_bytes=1024, oversize=oversize)
        assert stats["truncated" if oversize == "truncate" else "dropped.oversize"] > 0
        assert len(messages) + stats["dropped.oversize"] == len(records)


def test_records_the_c_code_leaves_go_through_python_with_its_errors() -> None:
    odd = [sip_record(i) for i in range(8)]
    odd[1].labels["sip.bad"] = "\ud800"  # not UTF-8: an encode error in both paths
    odd[3].payload = {"x": {1, 2}}  # orjson refuses a set
    odd[4].ts_ns = 2**70  # beyond 64 bits: Python's ints
    odd[5].raw_payload = bytearray(b"abc")  # type: ignore[assignment]
    odd[6].labels = {}
    messages, stats = _both(odd, topic_prefix="p")
    assert stats["dropped.encode_error"] == 2
    assert len(messages) == 6
    assert [m.topic for m in messages] == ["p-sip"] * 6


def test_escapes_at_every_position_of_a_word() -> None:
    """C tests label text eight bytes at a time for characters to escape: one at each offset
    of a longer string, next to plain ASCII and multi-byte UTF-8, comes out as orjson's."""
    specials = ['"', "\\", "\x00", "\x1f", "\b", "\n", "\x7f", "é", "東", "\u2028", " ", "~"]
    records = []
    for k, special in enumerate(specials):
        for pos in range(17):
            text = "a" * pos + special + "b" * (20 - pos)
            mixed = "é" * pos + special + "z" * 9
            record = sip_record(k * 17 + pos)
            record.labels = {"sip.x": text, text: mixed, "plain ascii long label": "y" * 23}
            records.append(record)
    messages, stats = _both(records, topic="t")
    assert len(messages) == len(records)
    assert stats["dropped.encode_error"] == 0


class _Relabelled(Record):
    """A subclass that overrides slots with properties: C must read it through getattr."""

    @property
    def labels(self) -> dict[str, str]:
        return {"sub.class": "yes"}

    @labels.setter
    def labels(self, value: dict[str, str]) -> None:
        pass

    @property
    def src_port(self) -> int:
        return 4242

    @src_port.setter
    def src_port(self, value: int) -> None:
        pass


def test_subclasses_are_read_through_getattr_not_slots() -> None:
    base = sip_record(1)
    sub = _Relabelled(
        ts_ns=base.ts_ns, src_ip=base.src_ip, dst_ip=base.dst_ip, src_port=1, dst_port=2,
        protocol=17, payload_type="sip", raw_payload=b"x", payload_json=b'{"a":1}',
    )  # fmt: skip
    records = [base, sub, base]
    messages, _ = _both(records, topic="t")
    assert b"sub.class" in messages[1].body
    assert b"4242" in messages[1].body
    assert b"sub.class" not in messages[0].body


def test_the_c_path_holds_no_references() -> None:
    records = [sip_record(i) for i in range(50)]
    before = [sys.getrefcount(r) + sys.getrefcount(r.labels) for r in records]
    encoder = BodyEncoder(JsonEncoder())
    for keep in (False, True):
        out: list[Message] = []
        stop, held = encoder.encode_run(records, 0, out, None, "", keep, 10**6, 128)
        assert stop == len(records)
        assert held == sum(m.size for m in out)
        assert all((m.record is r) == keep for m, r in zip(out, records, strict=True))
        del out
    assert [sys.getrefcount(r) + sys.getrefcount(r.labels) for r in records] == before


def test_messages_without_a_record_are_not_tracked_by_the_collector() -> None:
    """Queued Messages hold only str, int and bytes unless a fallback keeps the record: C
    untracks those, so collections do not rescan a full buffer (a tuple subclass is never
    untracked by CPython itself)."""
    need(FAST is not None, "the _kafka_fast extension is not built")
    records = [sip_record(i) for i in range(20)]
    for keep in (False, True):
        out: list[Message] = []
        BodyEncoder(JsonEncoder()).encode_run(records, 0, out, None, "", keep, 10**6, 128)
        assert len(out) == len(records)
        assert [gc.is_tracked(m) for m in out] == [keep] * len(records)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.tuples(st.binary(max_size=200), st.integers(-(2**40), 2**40)), min_size=1, max_size=40
    ),
    first=st.integers(-(2**40), 2**40),
)
def test_records_section_in_c_is_the_python_one(parts: list[tuple[bytes, int]], first: int) -> None:
    messages = [Message("t", 0, body, stamp, 0, None) for body, stamp in parts]
    assert records_section(messages, first) == records_section_py(messages, first)


@settings(max_examples=100, deadline=None)
@given(
    sections=st.lists(
        st.lists(
            st.tuples(st.binary(max_size=300), st.integers(0, 2**40)), min_size=1, max_size=30
        ),
        min_size=1,
        max_size=4,
    ),
    limit=st.integers(1, 4000),
)
def test_records_section_into_a_reused_scratch_is_the_python_one_part_by_part(
    sections: list[list[tuple[bytes, int]]], limit: int
) -> None:
    """Sections written part by part (at most ``limit`` bytes, at least one record each) into
    one bytearray: the parts joined are the Python section, with its largest timestamp; the
    scratch grows but never shrinks."""
    need(FAST is not None, "the _kafka_fast extension is not built")
    scratch = bytearray()
    for parts in sections:
        messages = [Message("t", 0, body, stamp, 0, None) for body, stamp in parts]
        first = parts[0][1]
        expected, expected_max = records_section_py(messages, first)
        got, got_max, start = b"", first, 0
        while start < len(messages):
            before = len(scratch)
            length, part_max, stop = FAST.records_section_into(
                scratch, messages, first, start, limit
            )
            assert stop > start
            assert length <= limit or stop == start + 1
            assert len(scratch) == max(before, length)
            got += bytes(scratch[:length])
            got_max = max(got_max, part_max)
            start = stop
        assert got == expected
        assert got_max == expected_max


def test_records_section_into_refuses_what_it_cannot_write() -> None:
    """A scratch that is exported (a live memoryview) cannot grow: BufferError, nothing
    written; a scratch that is not a bytearray or messages that are not Messages: TypeError;
    a start outside the list: IndexError."""
    need(FAST is not None, "the _kafka_fast extension is not built")
    messages = [Message("t", 0, b"x" * 100, 5, 0, None)]
    scratch = bytearray(b"keep")
    with memoryview(scratch), pytest.raises(BufferError):
        FAST.records_section_into(scratch, messages, 0, 0, 1 << 20)
    assert scratch == b"keep"
    with pytest.raises(TypeError):
        FAST.records_section_into(bytes(10), messages, 0, 0, 1 << 20)
    with pytest.raises(TypeError):
        FAST.records_section_into(bytearray(), [("t", 0, b"x")], 0, 0, 1 << 20)
    for start in (-1, 1):
        with pytest.raises(IndexError):
            FAST.records_section_into(bytearray(), messages, 0, start, 1 << 20)


def test_records_section_past_64_bits_falls_back() -> None:
    messages = [Message("t", 0, b"x", 2**63 - 1, 0, None)]
    assert records_section(messages, -(2**63)) == records_section_py(messages, -(2**63))


# -- regressions found by the sanitizer run (test_kafka_sanitizers.py) ---------------------------


def test_labels_are_read_after_any_python_code_of_the_record() -> None:
    """C used to keep pointers into the label strings while it read ``raw_payload``; a
    property that changes the labels freed them under it (use after free). Now the labels are
    read last, so the body has the labels as they are after every other field was read."""
    base = sip_record(1)
    fields: dict[str, Any] = {
        "ts_ns": base.ts_ns, "src_ip": base.src_ip, "dst_ip": base.dst_ip, "src_port": 1,
        "dst_port": 2, "protocol": 17, "payload_type": "sip", "payload_json": b'{"a":1}',
    }  # fmt: skip
    thieves = [LabelThief(**fields, labels=fresh_labels(5, i)) for i in range(20)]
    reporter = _reporter(True, topic="t")
    reporter.report(thieves)
    messages = reporter._buffer.take_all()
    assert len(messages) == len(thieves)
    plain = BodyEncoder(JsonEncoder(), native=False)
    for thief, message in zip(thieves, messages, strict=True):
        same = Record(**fields, raw_payload=b"raw", labels=fresh_labels(3, 99))
        assert thief.labels == same.labels
        assert message.body == plain.encode(same)[0]


@pytest.mark.parametrize("native", [True, False])
def test_a_records_list_that_shrinks_during_report_is_not_read_past_its_end(native: bool) -> None:
    """C used to keep the list's length from before the call and read freed records past the
    new end; ``_encode_native`` raised IndexError. Now both stop at the list's end."""
    base = sip_record(0)
    thief = ListThief(
        ts_ns=base.ts_ns, src_ip=base.src_ip, dst_ip=base.dst_ip, src_port=1, dst_port=2,
        protocol=17, payload_type="sip", payload_json=b'{"a":1}',
    )  # fmt: skip
    VICTIMS[:] = [thief] + [sip_record(i) for i in range(50)]
    reporter = _reporter(native, topic="t")
    reporter.report(VICTIMS)
    assert len(reporter._buffer.take_all()) == len(VICTIMS) == 1


def test_records_section_takes_only_int_timestamps_and_a_snapshot_of_the_list() -> None:
    """C used to call ``__index__`` between sizing the section and writing it (the list
    emptied, the value changed: reads of freed messages, a write past the section). Now
    anything but an int is a TypeError before any Python code runs, and int subclasses are
    read as their value."""
    assert FAST is not None
    messages = [Message("t", 0, b"b" * i * 50, i, 0, None) for i in range(40)]
    shifty = Shifty(messages)
    messages.append(Message("t", 0, b"x" * 1000, shifty, 0, None))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FAST.records_section(messages, 0)
    assert shifty.calls == 0
    assert len(messages) == 41

    class Stamp(int):
        def __index__(self) -> int:
            raise AssertionError("not called")

    odd = [Message("t", 0, b"body%d" % i, Stamp(1000 + i), 0, None) for i in range(5)]
    assert records_section(odd, 1000) == records_section_py(odd, 1000)


# -- labels handed as JSON bytes (Record(labels_json=...)): spliced, parsed in C for headers ---


def _with_labels_json(record: Record, labels_json: Any) -> Record:
    """``record`` with these serialised labels instead of its labels dict."""
    return Record(
        ts_ns=record.ts_ns, src_ip=record.src_ip, dst_ip=record.dst_ip, src_port=record.src_port,
        dst_port=record.dst_port, protocol=record.protocol, payload_type=record.payload_type,
        raw_payload=record.raw_payload, payload=record.payload, labels_json=labels_json,
        task_id=record.task_id, agent_id=record.agent_id, pipeline_id=record.pipeline_id,
    )  # fmt: skip


def _read_varint(body: bytes, at: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        byte = body[at]
        at += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (n >> 1) ^ -(n & 1), at


def _split_body(body: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """Key, value and headers of a record body (as ``_records`` writes it)."""
    parts: list[bytes] = []
    at = 0
    for _ in range(2):
        size, at = _read_varint(body, at)
        parts.append(body[at : at + size])
        at += size
    count, at = _read_varint(body, at)
    headers = []
    for _ in range(count):
        pair = []
        for _ in range(2):
            size, at = _read_varint(body, at)
            pair.append(body[at : at + size])
            at += size
        headers.append((pair[0], pair[1]))
    assert at == len(body)
    return parts[0], parts[1], headers


def test_split_body_reads_what_the_encoder_writes() -> None:
    record = sip_record(3)
    key, value, headers = _split_body(BodyEncoder(JsonEncoder(), native=False).encode(record)[0])
    assert key == record.key.encode()
    assert value == orjson.dumps(record_to_dict(record))
    assert headers[-1] == (b"l.test.seq", b"3")
    assert varint(len(headers)) == varint(8 + len(record.labels))


def _c_takes_all(records: list[Record]) -> bool:
    stop, _ = BodyEncoder(JsonEncoder()).encode_run(records, 0, [], "t", "", False, 10**6, 128)
    return stop == len(records)


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(_records, min_size=1, max_size=5),
    rnd=st.randoms(use_true_random=False),
    max_bytes=st.sampled_from([1_000_000, 1300]),
)
def test_serialized_labels_give_the_messages_of_the_same_labels_as_a_dict(
    records: list[Record], rnd: random.Random, max_bytes: int
) -> None:
    """Labels handed as ``orjson.dumps(labels)`` come out byte for byte as the same labels in
    a dict, on the C and the Python path; and ``record.labels`` is never decoded for it."""
    serialized = [_with_labels_json(r, orjson.dumps(r.labels)) for r in records]
    as_dicts, dict_stats = _both(records, topic="t", max_message_bytes=max_bytes)
    as_json, json_stats = _both(serialized, topic="t", max_message_bytes=max_bytes)
    assert as_json == as_dicts
    assert json_stats == dict_stats
    for record, original in zip(serialized, records, strict=True):
        assert record.serialized_labels() == orjson.dumps(original.labels)  # still undecoded
    if max_bytes == 1_000_000:
        assert _c_takes_all(serialized)
        for record, message in zip(records, as_json, strict=True):
            assert _split_body(message.body)[1] == orjson.dumps(record_to_dict(record))
    # the same labels spelt with escapes orjson never writes: the bytes are spliced as they
    # are, the headers are those of the decoded labels
    variants = [_with_labels_json(r, labels_json_variant(r.labels, rnd)) for r in records]
    spelt, spelt_stats = _both(variants, topic="t")
    plain, _ = _both(records, topic="t")
    assert spelt_stats["dropped.encode_error"] == 0
    assert _c_takes_all(variants)
    for record, variant, ours, theirs in zip(records, variants, spelt, plain, strict=True):
        key, value, headers = _split_body(ours.body)
        canonical = b'"labels":' + orjson.dumps(record.labels)
        assert canonical in _split_body(theirs.body)[1]
        labels_json = variant.serialized_labels()
        assert labels_json is not None
        assert value == _split_body(theirs.body)[1].replace(
            canonical, b'"labels":' + labels_json, 1
        )
        assert (key, headers) == (_split_body(theirs.body)[0], _split_body(theirs.body)[2])


_HOSTILE_LABELS: list[Any] = [
    b"", b"{", b"}", b"{}x", b"[]", b'"x"', b"null", b'{"a":1}', b'{"a":null}', b'{"a":true}',
    b'{"a":{"b":"c"}}', b'{"a":["b"]}', b'{"a":"b"}x', b'{"a":"b"}\x00', b'{"a":"b",}',
    b'{"a","b"}', b'{"a"}', b'{"a":}', b'{:"b"}', b'{"a":"b"', b'{"a":"b', b'{"a":"b\\',
    b'{"a":"b\\"}', b'{"a":"\\ud800"}', b'{"a":"\\udc00"}', b'{"a":"\\ud800\\u0041"}',
    b'{"a":"\\ud800\\n"}', b'{"a":"\\ud800"', b'{"a":"\\x41"}', b'{"a":"\\u12"}',
    b'{"a":"\\u12g4"}', b'{"a":"\\U0041"}', b'{"a":"\\a"}', b'{"a":"\xff"}', b'{"a":"\xc0\xaf"}',
    b'{"a":"\xe0\x80\xaf"}', b'{"a":"\xed\xa0\x80"}', b'{"a":"\xf4\x90\x80\x80"}',
    b'{"a":"\xf0\x80\x80\xaf"}',
    b'{"a":"\xe2\x82"}', b'{"a":"\x01"}', b'{"a":"\x1f"}', b'{"\n":"b"}', b'{a:"b"}', b"{'a':'b'}",
    "{\"a\":\"b\"}", bytearray(b'{"a":"\xff"}'), 7,
]  # fmt: skip
# Valid JSON that C does not take (whitespace, a name twice, not bytes, too many labels): the
# Python path encodes them from the decoded labels.
_DECLINED_LABELS: list[Any] = [
    b' {"a":"b"}', b'{"a":"b"} ', b'{ "a":"b"}', b'{"a" : "b"}', b'{"a":"b", "c":"d"}', b"{ }",
    b'{"a":"1","a":"2","b":"3"}', b'{"a":"1","\\u0061":"2"}', b'{"\\/":"1","/":"2"}',
    bytearray(b'{"a":"b"}'), memoryview(b'{"x":"y"}'),
    orjson.dumps({f"n{i}": str(i) for i in range(257)}),
]  # fmt: skip


def test_hostile_serialized_labels_go_to_python_and_are_counted_not_crashed() -> None:
    good = [sip_record(i) for i in range(3)]
    for hostile in _HOSTILE_LABELS + _DECLINED_LABELS:
        record = _with_labels_json(sip_record(9), hostile)
        assert not _c_takes_all([record]), hostile
        try:
            decoded = orjson.loads(hostile)
        except (orjson.JSONDecodeError, TypeError):
            decoded = None
        valid = type(hostile) is not str and (
            type(decoded) is dict and all(type(v) is str for v in decoded.values())
        )
        assert valid == (hostile in _DECLINED_LABELS), hostile
        messages, stats = _both([good[0], record, *good[1:]], topic="t")
        assert stats["dropped.encode_error"] == (0 if valid else 1), hostile
        assert len(messages) == (4 if valid else 3)
        if valid:  # the headers are the decoded labels'
            headers = _split_body(messages[1].body)[2]
            assert headers[8:] == [(b"l." + k.encode(), v.encode()) for k, v in decoded.items()]


def test_serialized_labels_of_every_size_and_at_every_offset() -> None:
    """The C parser reads plain text eight bytes at a time: an escape, a multi-byte character
    or the closing quote at each offset, and empty names and values."""
    specials = ['"', "\\", "/", "\x00", "\x1f", "\n", "\x7f", "é", "東", "\U0001f600", "\u2028"]
    records = []
    rnd = random.Random(7)
    for k, special in enumerate(specials):
        for pos in range(18):
            labels = {"a" * pos + special: "b" * pos + special + "c" * (17 - pos), "": "", "e": ""}
            base = sip_record(k * 18 + pos)
            base.labels = labels
            records.append(base)
            records.append(_with_labels_json(base, orjson.dumps(labels)))
            records.append(_with_labels_json(base, labels_json_variant(labels, rnd)))
    messages, stats = _both(records, topic="t")
    assert stats["dropped.encode_error"] == 0
    assert _c_takes_all(records)
    for i in range(0, len(records), 3):
        bodies = [_split_body(m.body) for m in messages[i : i + 3]]
        assert bodies[0] == bodies[1]
        assert bodies[0][2] == bodies[2][2]


@settings(max_examples=300, deadline=None)
@given(
    labels=st.dictionaries(_text, _text, max_size=8),
    rnd=st.randoms(use_true_random=False),
    edits=st.integers(1, 3),
)
def test_corrupted_serialized_labels_c_and_python_agree(
    labels: dict[str, str], rnd: random.Random, edits: int
) -> None:
    data = orjson.dumps(labels) if rnd.random() < 0.5 else labels_json_variant(labels, rnd)
    for _ in range(edits):
        data = corrupt(data, rnd)
    record = _with_labels_json(sip_record(1), data)
    messages, stats = _both([record, sip_record(2)], topic="t")
    assert len(messages) + stats["dropped.encode_error"] == 2


def test_subclasses_hand_serialized_labels_through_the_method() -> None:
    class Serialized(Record):
        __slots__ = ()

        def serialized_labels(self) -> bytes | None:
            return b'{"sub.json":"yes\\n"}'

    class Refuses(Record):
        __slots__ = ()

        def serialized_labels(self) -> bytes | None:
            raise RuntimeError("no")

    base = sip_record(1)
    sub = _with_labels_json(base, None)
    sub.__class__ = Serialized
    messages, _ = _both([base, sub, base], topic="t")
    assert b'"labels":{"sub.json":"yes\\n"}' in messages[1].body
    assert _split_body(messages[1].body)[2][8:] == [(b"l.sub.json", b"yes\n")]
    refuses = _with_labels_json(base, b'{"a":"b"}')
    refuses.__class__ = Refuses
    for native in (True, False):  # C leaves it to Python, whose error passes through
        with pytest.raises(RuntimeError):
            _reporter(native, topic="t").report([base, refuses])


def test_the_c_path_holds_no_references_to_serialized_labels() -> None:
    records = [
        _with_labels_json(sip_record(i), orjson.dumps(sip_record(i).labels)) for i in range(50)
    ]
    before = [sys.getrefcount(r) + sys.getrefcount(r.serialized_labels()) for r in records]
    out: list[Message] = []
    stop, _ = BodyEncoder(JsonEncoder()).encode_run(records, 0, out, None, "", True, 10**6, 128)
    assert stop == len(records)
    del out
    assert [sys.getrefcount(r) + sys.getrefcount(r.serialized_labels()) for r in records] == before
