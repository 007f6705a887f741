"""Records: a payload or labels handed as JSON bytes are decoded on first read, and only then."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from otus import Record, record_to_dict


def _record(**kw: object) -> Record:
    return Record(
        ts_ns=1_700_000_000_123_456_789, src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060,
        dst_port=5060, protocol=17, payload_type="sip", raw_payload=b"OPTIONS", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


PAYLOAD = {"kind": "request", "method": "OPTIONS", "via": [{"host": "zoë.example", "port": 5060}]}
SERIALIZED = json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":")).encode()


def test_serialized_payload_is_offered_until_read_then_decoded_once() -> None:
    record = _record(payload_json=SERIALIZED)
    assert record.serialized_payload() == SERIALIZED
    first = record.payload
    assert first == PAYLOAD
    assert record.payload is first  # decoded once
    assert record.serialized_payload() is None  # the dict may change from now on
    assert record_to_dict(record)["payload"] == PAYLOAD


def test_assigning_a_payload_drops_the_serialized_one() -> None:
    record = _record(payload_json=SERIALIZED)
    record.payload = {"kind": "other"}
    assert record.serialized_payload() is None
    assert record.payload == {"kind": "other"}


def test_a_dict_payload_wins_over_bytes_and_none_stays_none() -> None:
    assert _record(payload=PAYLOAD, payload_json=b'{"x":1}').serialized_payload() is None
    assert _record(payload=PAYLOAD, payload_json=b'{"x":1}').payload == PAYLOAD
    empty = _record()
    assert empty.payload is None
    assert empty.serialized_payload() is None


LABELS = {"sip.method": "OPTIONS", "sip.from_user": "zoë", "sip.note": 'say "hi"\n'}
SERIALIZED_LABELS = json.dumps(LABELS, ensure_ascii=False, separators=(",", ":")).encode()


def test_serialized_labels_are_offered_until_read_then_decoded_once() -> None:
    record = _record(labels_json=SERIALIZED_LABELS)
    assert record.serialized_labels() == SERIALIZED_LABELS
    first = record.labels
    assert first == LABELS
    assert record.labels is first
    assert record.serialized_labels() is None
    record.labels["task"] = "t1"  # changed in place, as processors and the run loop do
    assert record_to_dict(record)["labels"] == {**LABELS, "task": "t1"}


def test_assigning_labels_drops_the_serialized_ones() -> None:
    record = _record(labels_json=SERIALIZED_LABELS)
    record.labels = {"a": "b"}
    assert record.serialized_labels() is None
    assert record.labels == {"a": "b"}


def test_a_labels_dict_wins_over_bytes_and_no_labels_is_an_empty_dict() -> None:
    both = _record(labels={"a": "b"}, labels_json=SERIALIZED_LABELS)
    assert both.serialized_labels() is None
    assert both.labels == {"a": "b"}
    empty = _record()
    assert empty.serialized_labels() is None
    assert empty.labels == {}
    empty.labels["x"] = "y"
    assert empty.labels == {"x": "y"}


def _dumps(labels: dict[str, str]) -> bytes:
    """What orjson.dumps writes for a dict of strings (the standard library, written alike)."""
    return json.dumps(labels, ensure_ascii=False, separators=(",", ":")).encode()


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_names = st.one_of(_text, st.sampled_from(["sip.method", "method", 'x"sip.method', "sip.", ""]))


@given(labels=st.dictionaries(_names, _text, max_size=8), others=st.lists(_names, max_size=4))
def test_one_label_is_read_from_the_serialized_labels(
    labels: dict[str, str], others: list[str]
) -> None:
    record = _record(labels_json=_dumps(labels))
    for name in [*labels, *others]:
        assert record.label(name) == labels.get(name)
    plain = all("\\" not in _dumps({"v": v}).decode() for v in labels.values())
    assert (record.serialized_labels() is not None) == plain  # decoded only for escapes
    assert record.labels == labels


@given(
    labels=st.dictionaries(_names, _text, max_size=6),
    pairs=st.lists(st.tuples(_names, _text), max_size=4),
)
def test_setdefault_labels_is_dict_setdefault_on_the_serialized_labels(
    labels: dict[str, str], pairs: list[tuple[str, str]]
) -> None:
    expected = dict(labels)
    for name, value in pairs:
        expected.setdefault(name, value)
    record = _record(labels_json=_dumps(labels))
    record.setdefault_labels(pairs)
    serialized = record.serialized_labels()
    assert serialized is None or serialized == _dumps(expected)  # same members, same order
    assert list(record.labels.items()) == list(expected.items())
    as_dict = _record(labels=dict(labels))
    as_dict.setdefault_labels(pairs)
    assert list(as_dict.labels.items()) == list(expected.items())


def test_a_label_named_like_the_tail_of_another_key_is_not_confused() -> None:
    record = _record(labels_json=_dumps({'x"sip.method': "BYE", "a": '"sip.method":"ACK"'}))
    assert record.label("sip.method") is None
    record = _record(labels_json=b'{"a":"\\"sip.method\\":","sip.method":"INVITE"}')
    assert record.label("sip.method") == "INVITE"
    assert record.serialized_labels() is not None


def test_label_lookup_runs_in_c_when_the_extension_is_built() -> None:
    from otus import records
    from otus._native import _pyapi  # type: ignore[attr-defined]

    assert records._label_in is _pyapi.label_in


_json_like = st.one_of(
    st.binary(max_size=40),
    st.builds(
        b"".join,
        st.lists(st.sampled_from([b"{", b"}", b",", b'"', b":", b"\\", b'"k":', b"k", b"\xff",
                                  b"\xc3\xa9", b'{"k":"v"}', b'"k":"']), max_size=12),
    ),
)  # fmt: skip


@given(j=_json_like, key=st.sampled_from([b'"k":', b'"":', b'"x"k":', b"k"]))
def test_the_c_label_lookup_matches_the_python_one_on_any_bytes(j: bytes, key: bytes) -> None:
    from otus import records
    from otus._native import _pyapi  # type: ignore[attr-defined]

    assert _pyapi.label_in(j, key) == records._label_in_python(j, key)


@given(labels=st.dictionaries(_names, _text, max_size=8), others=st.lists(_names, max_size=4))
def test_the_c_label_lookup_matches_the_python_one_on_labels(
    labels: dict[str, str], others: list[str]
) -> None:
    from otus import records
    from otus._native import _pyapi  # type: ignore[attr-defined]

    j = _dumps(labels)
    for name in [*labels, *others]:
        key = records._json_str(name) + b":"
        assert _pyapi.label_in(j, key) == records._label_in_python(j, key)
