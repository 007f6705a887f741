"""Registration, options, interest, record shape and the parser contract of the core."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest
from pydantic import ValidationError
from sip_builders import SDP, dgram, sip

from otus import Interest, ParserSpec, PluginContext, record_to_dict
from otus_parser_sip import SipOptions
from otus_parser_sip.plugin import otus_parsers


def spec() -> ParserSpec:
    (s,) = otus_parsers()
    return s


def test_entry_point_is_registered() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group="otus.plugins")}
    assert eps["sip"] == "otus_parser_sip.plugin"


def test_options_forbid_typos() -> None:
    with pytest.raises(ValidationError):
        SipOptions.model_validate({"portz": [5060]})
    assert SipOptions.model_validate({"ports": [5080]}).ports == [5080]


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_a_port_out_of_range_is_refused_at_validation(port: int) -> None:
    # before: accepted, and the run failed later in interest() (a daemon worker crash-looped)
    with pytest.raises(ValidationError, match=r"ports\.0"):
        SipOptions.model_validate({"ports": [port]})


def test_interest_uses_detector_and_ports() -> None:
    parser = spec().factory(SipOptions(ports=[5080]), PluginContext())
    assert parser.interest() == Interest(
        transports=frozenset({"udp", "tcp"}),
        ports=frozenset({5080}),
        detector="sip",
        tcp_stream=True,
    )
    assert parser.payload_type == "sip"


def test_record_shape_is_json_ready() -> None:
    ctx = PluginContext()
    parser = spec().factory(SipOptions(), ctx)
    msg = sip(body=SDP, extra="User-Agent: ua/1\r\n")
    (rec,) = parser.parse([dgram(msg, sport=5062, dport=5060)])
    assert (rec.src_port, rec.dst_port, rec.protocol, rec.payload_type) == (5062, 5060, 17, "sip")
    assert rec.raw_payload == msg
    assert rec.labels["sip.method"] == "INVITE"
    assert rec.labels["sip.from_uri"] == "sip:alice@example.com"
    assert rec.labels["sip.to_uri"] == "sip:bob@example.com"
    assert rec.labels["sip.via"] == "SIP/2.0/UDP 192.0.2.10:5060"
    assert rec.labels["sip.via_branch"] == "z9hG4bK776asdhds"
    assert rec.labels["sip.user_agent"] == "ua/1"
    assert all(isinstance(v, str) for v in rec.labels.values())
    wire = json.loads(json.dumps(record_to_dict(rec)))
    assert wire["payload"]["body"]["sdp"]["media"][0]["rtpmap"]["0"]["encoding"] == "PCMU"
    st = parser.stats()
    assert (st["messages"], st["requests"], st["responses"]) == (1, 1, 0)


def test_rejected_messages_can_be_reported() -> None:
    parser = spec().factory(SipOptions(report_errors=True), PluginContext())
    (rec,) = parser.parse([dgram(b"INVITE sip:x SIP/7.0\r\n\r\n")])
    assert rec.labels == {"sip.error": "not_sip_2_0"}
    assert parser.stats()["error.not_sip_2_0"] == 1


def test_keepalives_and_dtls_on_udp() -> None:
    parser = spec().factory(SipOptions(), PluginContext())
    assert parser.parse([dgram(b"\r\n\r\n"), dgram(b"\x16\xfe\xfd" + bytes(40))]) == []
    st = parser.stats()
    assert (st["keepalives"], st["error.encrypted"]) == (1, 1)
