"""The filter over record batches: operators, combinations, actions, order and statistics."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from otus import ConfigError, PluginContext, Record
from otus.testing import ProcessorContract, make_record
from otus_processor_filter import FilterOptions, FilterProcessor
from otus_processor_filter.plugin import SPEC


class TestFilterContract(ProcessorContract):
    spec = SPEC
    options: ClassVar[dict[str, Any]] = {
        "rules": [
            {
                "name": "no-rtp",
                "action": "drop",
                "match": {"field": "payload_type", "equals": "rtp"},
            },
            {"action": "label", "labels": {"site.name": "${node.tags.site}"}},
        ]
    }

    def make_context(self) -> PluginContext:
        return PluginContext(node_tags={"site": "lab"})


def _filter(*rules: dict[str, Any], default: str = "keep", **ctx: Any) -> FilterProcessor:
    options = FilterOptions.model_validate({"rules": list(rules), "default": default})
    return FilterProcessor(options, PluginContext(**ctx))


def _kept(match: dict[str, Any], records: list[Record]) -> list[Record]:
    return _filter({"action": "keep", "match": match}, default="drop").process(records)


INVITE = make_record("sip", labels={"sip.method": "INVITE", "sip.call_id": "c1@x"})
OK = make_record("sip", labels={"sip.status_code": "200"}, src="10.1.2.3", sport=5080, dport=5062)
V6 = make_record("sip", labels={"sip.method": "BYE"}, src="2001:db8::7", dst="2001:db8:1::1")
RTP = make_record("rtp", src="198.51.100.5", sport=10000, dport=20000, protocol=17)
TCP = make_record("raw", protocol=6, src="10.200.0.1", dport=443)
ALL = [INVITE, OK, V6, RTP, TCP]


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"field": "labels.sip.method", "equals": "INVITE"}, [INVITE]),
        ({"field": "labels.sip.status_code", "equals": 200}, [OK]),
        ({"field": "labels.sip.method", "in": ["BYE", "INVITE"]}, [INVITE, V6]),
        ({"field": "labels.sip.call_id", "prefix": ["zz", "c1@"]}, [INVITE]),
        ({"field": "labels.sip.method", "regex": "^(BYE|CANCEL)$"}, [V6]),
        ({"field": "labels.sip.status_code", "exists": True}, [OK]),
        ({"field": "labels.sip.method", "exists": False}, [OK, RTP, TCP]),
        ({"field": "src_ip", "cidr": "10.0.0.0/8"}, [OK, TCP]),
        ({"field": "src_ip", "cidr": ["2001:db8::/48", "198.51.100.0/24"]}, [V6, RTP]),
        ({"field": "ip", "cidr": "2001:db8:1::/48"}, [V6]),
        ({"field": "src_ip", "equals": "10.1.2.3"}, [OK]),
        ({"field": "src_ip", "prefix": "198.51."}, [RTP]),
        ({"field": "dst_port", "range": [5060, 5080]}, [INVITE, OK, V6]),
        ({"field": "port", "range": [5080, 5080]}, [OK]),
        ({"field": "dst_port", "in": [443, 20000]}, [RTP, TCP]),
        ({"field": "protocol", "equals": "tcp"}, [TCP]),
        ({"field": "protocol", "in": ["udp", 132]}, [INVITE, OK, V6, RTP]),
        ({"field": "payload_type", "in": ["rtp", "raw"]}, [RTP, TCP]),
        (
            {
                "all": [
                    {"field": "payload_type", "equals": "sip"},
                    {"field": "src_ip", "cidr": "::/0"},
                ]
            },
            [V6],
        ),
        (
            {"any": [{"field": "protocol", "equals": 6}, {"field": "dst_port", "equals": 20000}]},
            [RTP, TCP],
        ),
        ({"not": {"field": "payload_type", "equals": "sip"}}, [RTP, TCP]),
        (
            {
                "all": [
                    {"field": "payload_type", "equals": "sip"},
                    {
                        "not": {
                            "any": [
                                {"field": "ip", "cidr": "10.0.0.0/8"},
                                {"field": "src_ip", "regex": ":"},
                            ]
                        }
                    },
                ]
            },
            [INVITE],
        ),
    ],
)
def test_conditions(match: dict[str, Any], expected: list[Record]) -> None:
    assert _kept(match, list(ALL)) == expected
    # The same records with their labels handed serialised (as the SIP parser hands them):
    # the same verdicts, and label tests read them without decoding them.
    serialized = [_serialized(r) for r in ALL]
    kept = _kept(match, list(serialized))
    assert [serialized.index(r) for r in kept] == [ALL.index(r) for r in expected]
    assert all(r.serialized_labels() is not None for r in serialized)


def _serialized(r: Record) -> Record:
    return Record(
        ts_ns=r.ts_ns, src_ip=r.src_ip, dst_ip=r.dst_ip, src_port=r.src_port,
        dst_port=r.dst_port, protocol=r.protocol, payload_type=r.payload_type,
        raw_payload=r.raw_payload, labels_json=json.dumps(r.labels, separators=(",", ":")).encode(),
    )  # fmt: skip


def test_first_keep_or_drop_wins_and_default_applies() -> None:
    f = _filter(
        {
            "name": "keep-invite",
            "action": "keep",
            "match": {"field": "labels.sip.method", "equals": "INVITE"},
        },
        {"name": "drop-sip", "action": "drop", "match": {"field": "payload_type", "equals": "sip"}},
        {"action": "drop", "match": {"field": "protocol", "equals": "tcp"}},
        default="drop",
    )
    assert f.process(list(ALL)) == [INVITE]
    assert f.process([INVITE, RTP]) == [INVITE]
    assert f.stats() == {
        "kept": 2,
        "labelled": 0,
        "dropped.keep-invite": 0,
        "dropped.drop-sip": 2,
        "dropped.2": 1,
        "dropped.default": 2,
    }


def test_label_rules_apply_and_evaluation_continues() -> None:
    records = [
        make_record("sip", labels={"sip.method": "INVITE"}, src="10.0.0.1"),
        make_record("sip", labels={"sip.method": "INVITE", "net.peer": "old"}, src="203.0.113.9"),
        make_record("rtp", src="203.0.113.10"),
    ]
    f = _filter(
        {
            "action": "label",
            "labels": {"net.peer": "carrier", "net.site": "${node.tags.site}/${task.id} $$1"},
            "match": {"field": "ip", "cidr": "203.0.113.0/24"},
        },
        {"name": "rtp", "action": "drop", "match": {"field": "payload_type", "equals": "rtp"}},
        {"action": "label", "labels": {"node.agent": "${node.agent_id}"}},
        node_tags={"site": "fra1"},
        task_id="edge",
        agent_id="otus-7",
    )
    out = f.process(records)
    assert out == records[:2]
    assert out[0].labels == {"sip.method": "INVITE", "node.agent": "otus-7"}
    assert out[1].labels == {
        "sip.method": "INVITE",
        "net.peer": "carrier",
        "net.site": "fra1/edge $1",
        "node.agent": "otus-7",
    }
    assert records[2].labels["net.peer"] == "carrier"  # labelled before it was dropped
    stats = f.stats()
    assert stats["labelled"] == 4
    assert stats["kept"] == 2
    assert stats["dropped.rtp"] == 1


def test_a_later_rule_sees_labels_set_by_an_earlier_one() -> None:
    f = _filter(
        {
            "action": "label",
            "labels": {"net.peer": "x"},
            "match": {"field": "src_ip", "equals": "10.1.2.3"},
        },
        {"action": "keep", "match": {"field": "labels.net.peer", "exists": True}},
        default="drop",
    )
    assert f.process(list(ALL)) == [OK]


def test_missing_node_tag_fails_when_built() -> None:
    with pytest.raises(ConfigError, match=r"rules\[0\]\.labels: node tag 'site' is not set"):
        _filter({"action": "label", "labels": {"a.b": "${node.tags.site}"}}, node_tags={"dc": "x"})


def test_no_rules_keeps_everything() -> None:
    f = _filter()
    assert f.process(list(ALL)) == ALL
    assert f.stats() == {"kept": 5, "labelled": 0, "dropped.default": 0}


def test_cidr_handles_odd_addresses_and_many_distinct_ones() -> None:
    f = _filter(
        {"action": "keep", "match": {"field": "src_ip", "cidr": "10.0.0.0/8"}}, default="drop"
    )
    odd = [make_record(src=""), make_record(src="not-an-ip"), make_record(src="::ffff:10.0.0.1")]
    assert f.process(odd) == []
    many = [make_record(src=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(70_000)]
    assert len(f.process(many)) == 70_000  # beyond the cache bound: still right


def test_plugin_builds_through_the_spec() -> None:
    processor = SPEC.factory(
        SPEC.options_model.model_validate({"default": "drop"}), PluginContext()
    )
    assert isinstance(processor, FilterProcessor)
    assert processor.process([INVITE]) == []
