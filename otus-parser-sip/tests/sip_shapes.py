"""Message shapes shared by the parity tests: common ones the C path must answer, tricky ones it
may decline (then the pure-Python reference runs)."""

from __future__ import annotations

from sip_builders import SDP, sip

#: Well-formed variants the C path must answer (and equal the reference on).
ACCEPTED = [
    ("plain", sip()),
    ("sdp", sip(body=SDP)),
    ("response", sip("SIP/2.0 180 Ringing", to_tag="t1")),
    ("response_no_reason", sip("SIP/2.0 200", to_tag="t1")),
    ("response_empty_reason", sip("SIP/2.0 200 ", to_tag="t1")),
    ("ack", sip("ACK sip:bob@example.com SIP/2.0", cseq="1 INVITE")),
    ("two_vias", sip(extra="Via: SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKb;"
                           "received=192.0.2.1;rport=5062\r\n")),
    ("via_list", sip(extra="Via: SIP/2.0/UDP a.example.com;branch=z1, "
                           "SIP/2.0/TLS b:5061;rport\r\n")),
    ("via_lowercase_transport", sip(extra="Via: SIP/2.0/sctp h.example.com:5060;branch=x\r\n")),
    ("contacts", sip(extra='Contact: "Bob Smith" <sip:bob@h;transport=tcp>;expires=60;q=0.5, '
                           "<sips:b2@h>\r\n")),
    ("star", sip(extra="Contact: *\r\n")),
    ("routes", sip(extra="Route: <sip:p1.example.com;lr>, <sip:p2;lr>\r\n"
                         "Record-Route: <sip:p3;lr>\r\n")),
    ("pai", sip(extra="P-Asserted-Identity: <tel:+4930123;phone-context=x>, sip:a@b\r\n")),
    ("tel_uri", sip("INVITE tel:+4930123;phone-context=example.com SIP/2.0")),
    ("other_scheme", sip("OPTIONS urn:service:sos SIP/2.0", cseq="1 OPTIONS")),
    ("password", sip("INVITE sip:bob:secret@example.com:5070;user=phone SIP/2.0")),
    ("ipv6_ruri", sip("INVITE sip:bob@[2001:db8::2]:5060 SIP/2.0")),
    ("no_port_bad", sip("INVITE sip:bob@example.com:99999 SIP/2.0")),
    ("uppercase_scheme", sip("INVITE SIP:bob@example.com SIP/2.0")),
    ("quoted_param", sip(extra='Contact: <sip:a@b>;+sip.instance="<urn:uuid:1>";reg-id=1\r\n')),
    ("flag_params", sip(extra="Route: <sip:p;lr;ob>;x;y=\r\n")),
    ("empty_ua", sip(extra="User-Agent:\r\nServer: s\r\n")),
    ("empty_ua_only", sip(extra="User-Agent:\r\n")),
    ("no_via_port", sip(extra="Via: SIP/2.0/UDP [::1];branch=z9\r\n")),
    ("scalars", sip(extra="User-Agent: softphone 1.0\r\nExpires: 3600\r\n"
                          "Subject: hello there\r\n")),
    ("repeated_scalar", sip(extra="Allow: INVITE, ACK\r\nAllow: BYE\r\nSupported: timer\r\n")),
    ("server", sip("SIP/2.0 200 OK", to_tag="t", extra="Server: pbx\r\nReason: SIP;cause=200\r\n")),
    ("date", sip(extra="Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n")),
    ("compact", sip(extra="m: <sip:c@h>\r\nk: timer\r\ns: subj\r\no: presence\r\n")),
    ("addr_spec_from", sip().replace(b'"Alice" <sip:alice@example.com>', b"sip:alice@example.com")),
    ("token_display", sip().replace(b'"Alice"', b"Alice Smith")),
    ("empty_display", sip().replace(b'"Alice"', b'""')),
    ("unknown_headers", sip(extra="X-Foo: bar\r\nP-Charging-Vector: icid-value=1\r\n")),
    ("trailing", sip(body=SDP) + b"garbage"),
]  # fmt: skip

#: Shapes the C path may decline (the reference flags or rejects them, or they are rare).
TRICKY = [
    ("escaped_display", sip().replace(b'"Alice"', b'"Al\\"ice"')),
    ("uri_space", sip().replace(b"<sip:bob@example.com>", b"< sip:bob@example.com >")),
    ("dup_call_id", sip(extra="Call-ID: abc123@192.0.2.10\r\n")),
    ("conflicting_call_id", sip(extra="i: other\r\n")),
    ("cseq_mismatch", sip(cseq="1 BYE")),
    ("cseq_big", sip(cseq="4294967296 INVITE")),
    ("cseq_zeros", sip(cseq="00000000001 INVITE")),
    ("no_via", sip().replace(b"Via:", b"X-Via:")),
    ("bad_via", sip(extra="Via: nonsense\r\n")),
    ("bad_mf", sip().replace(b"Max-Forwards: 70", b"Max-Forwards: 300")),
    ("two_mf", sip(extra="Max-Forwards: 70\r\n")),
    ("bad_date", sip(extra="Date: yesterday\r\n")),
    ("two_cl", sip(extra="Content-Length: 0\r\n")),
    ("bad_cl", sip().replace(b"Content-Length: 0", b"Content-Length: x")),
    ("long_cl", sip().replace(b"Content-Length: 0", b"Content-Length: 0000000000")),
    ("cl_too_big", sip().replace(b"Content-Length: 0", b"Content-Length: 10")),
    ("ruri_brackets", sip("INVITE <sip:bob@example.com> SIP/2.0")),
    ("ruri_headers", sip("INVITE sip:bob@example.com?Subject=x SIP/2.0")),
    ("two_spaces", sip("INVITE  sip:bob@example.com SIP/2.0")),
    ("bad_method", sip("INV@TE sip:bob@example.com SIP/2.0")),
    ("sip_1_0", sip("INVITE sip:bob@example.com SIP/1.0")),
    ("bad_status", sip("SIP/2.0 999 Odd")),
    ("status_4", sip("SIP/2.0 2000 OK")),
    ("contact_qmark", sip(extra="Contact: sip:a@b?x=y\r\n")),
    ("contact_garbage", sip(extra='Contact: "unterminated <sip:a@b>\r\n')),
    ("param_space", sip().replace(b";tag=f1", b" ; tag = f1")),
    ("param_lt", sip(extra="Route: <sip:p>;x=<y>\r\n")),
    ("params_no_semi", sip().replace(b";tag=f1", b"tag=f1")),
    ("unterminated_gt", sip(extra="Route: <sip:p\r\n")),
    ("tab_start_line", sip("INVITE\tsip:bob@example.com SIP/2.0")),
    ("start_only", b"OPTIONS sip:x SIP/2.0\r\n\r\n"),
]  # fmt: skip
