"""URIs, parameters and the structured header parsers."""

from __future__ import annotations

import pytest

from otus_parser_sip._headers import (
    COMPACT,
    HeaderError,
    canonical,
    parse_cseq,
    parse_name_addr,
    parse_name_addr_list,
    parse_via,
)
from otus_parser_sip._text import parse_params, split_quoted, unquote
from otus_parser_sip._uri import parse_uri


def test_sip_uri_with_user_password_port_params_headers() -> None:
    u = parse_uri("sips:alice:secret@example.com:5061;transport=tcp;lr?subject=hi")
    assert u["scheme"] == "sips"
    assert (u["user"], u["password"], u["host"], u["port"]) == (
        "alice",
        "secret",
        "example.com",
        5061,
    )
    assert u["params"] == {"transport": "tcp", "lr": ""}
    assert u["headers"] == "subject=hi"


def test_sip_uri_ipv6_reference() -> None:
    u = parse_uri("sip:bob@[2001:db8::10]:5070;maddr=[2001:db8::1]")
    assert u["host"] == "[2001:db8::10]"
    assert u["port"] == 5070
    assert u["params"]["maddr"] == "[2001:db8::1]"


def test_sip_uri_user_with_semicolon_and_escape() -> None:
    u = parse_uri("sip:user;par=u%40example.net@example.com")
    assert u["user"] == "user;par=u%40example.net"
    assert u["host"] == "example.com"


def test_tel_and_absolute_uris() -> None:
    t = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert t["scheme"] == "tel"
    assert t["user"] == "+1-201-555-0123"
    assert t["params"] == {"phone-context": "example.com"}
    a = parse_uri("soap.beep://192.0.2.103:3002")
    assert a["scheme"] == "soap.beep"
    assert a["opaque"] == "//192.0.2.103:3002"


def test_params_and_quoted_strings() -> None:
    assert parse_params('tag=1;lr;q="a;b"') == {"tag": "1", "lr": "", "q": "a;b"}
    assert unquote('"say \\"hi\\""') == 'say "hi"'
    assert split_quoted('"a,b" <sip:x,y@h>, <sip:z@h>', ",") == ['"a,b" <sip:x,y@h>', " <sip:z@h>"]


def test_compact_forms_cover_the_registry() -> None:
    assert set(COMPACT) == set("iftvmlckseourbxyadjn")
    assert canonical("i") == "call-id"
    assert canonical("V") == "via"
    assert canonical("X-Custom") == "x-custom"


def test_name_addr_display_tag_and_uri_params() -> None:
    na = parse_name_addr('"Bob \\"B\\" Smith" <sip:bob@h;transport=udp>;tag=xyz;expires=5')
    assert na["display"] == 'Bob "B" Smith'
    assert na["uri"]["params"] == {"transport": "udp"}
    assert na["tag"] == "xyz"
    assert na["params"] == {"tag": "xyz", "expires": "5"}


def test_addr_spec_params_belong_to_the_header() -> None:
    na = parse_name_addr("sip:alice@h;tag=1")
    assert na["uri"]["raw"] == "sip:alice@h"
    assert na["tag"] == "1"


def test_unquoted_display_name() -> None:
    na = parse_name_addr("Alice Smith <sip:alice@h>")
    assert na["display"] == "Alice Smith"


def test_name_addr_errors() -> None:
    with pytest.raises(HeaderError):
        parse_name_addr('"unterminated <sip:a@h>')
    with pytest.raises(HeaderError):
        parse_name_addr("<sip:a@h")


def test_contact_list_and_star() -> None:
    items = parse_name_addr_list('"A, B" <sip:a@h>;q=0.5, <sip:b@h>;expires=60')
    assert [i["uri"]["raw"] for i in items] == ["sip:a@h", "sip:b@h"]
    assert items[0]["display"] == "A, B"
    assert parse_name_addr_list("*") == [{"star": True}]


def test_via_with_spaces_branch_received_rport() -> None:
    v = parse_via("SIP / 2.0 / UDP  [2001:db8::9]:5062;branch=z9hG4bK1;received=192.0.2.1;rport")
    assert v["protocol"] == "SIP/2.0"
    assert v["transport"] == "UDP"
    assert (v["host"], v["port"]) == ("[2001:db8::9]", 5062)
    assert (v["branch"], v["received"], v["rport"]) == ("z9hG4bK1", "192.0.2.1", "")


def test_via_without_sent_by_is_an_error() -> None:
    with pytest.raises(HeaderError):
        parse_via("SIP/2.0/UDP")


def test_cseq() -> None:
    assert parse_cseq("0009 INVITE") == (9, "INVITE")
    for bad in ("INVITE", "1", "x INVITE", "36893488147419103232 REGISTER"):
        with pytest.raises(HeaderError):
            parse_cseq(bad)
