"""Statistics keys read by the Prometheus exporter: methods, status classes, call setup."""

from __future__ import annotations

from sip_builders import dgram, sip

from otus_parser_sip import SipOptions
from otus_parser_sip.parser import SipParser

MS = 1_000_000


def feed(p: SipParser, *msgs: tuple[int, bytes]) -> int:
    return sum(len(p.parse([dgram(m, ts_ns=t)])) for t, m in msgs)


def test_methods_status_classes_and_active_dialogs() -> None:
    p = SipParser(SipOptions())
    n = feed(
        p,
        (0, sip(call_id="a")),
        (0, sip("SIP/2.0 100 Trying", call_id="a")),
        (0, sip("SIP/2.0 180 Ringing", call_id="a", to_tag="t")),
        (0, sip("SIP/2.0 486 Busy Here", call_id="a", to_tag="t")),
        (0, sip("ACK sip:bob@x SIP/2.0", call_id="a", cseq="1 ACK", to_tag="t")),
        (0, sip("OPTIONS sip:x SIP/2.0", call_id="o", cseq="1 OPTIONS")),
        (0, sip("SIP/2.0 503 Unavailable", call_id="o", cseq="1 OPTIONS")),
        (0, sip("FROBNICATE sip:x SIP/2.0", call_id="f", cseq="1 FROBNICATE")),
        (0, sip("XYZZY sip:x SIP/2.0", call_id="g", cseq="1 XYZZY")),
        (0, sip(call_id="b")),
        (0, sip("SIP/2.0 603 Decline", call_id="c", cseq="1 INVITE")),
        (0, sip("SIP/2.0 302 Moved", call_id="c", cseq="1 INVITE")),
    )
    assert n == 12
    s = p.stats()
    methods = {k: v for k, v in s.items() if k.startswith("method.")}
    assert methods == {
        "method.INVITE": 2,
        "method.ACK": 1,
        "method.OPTIONS": 1,
        "method.other": 2,  # unknown tokens folded so the key set stays bounded
    }
    classes = {k: v for k, v in s.items() if k.startswith("status_class.")}
    assert classes == {
        "status_class.1xx": 2,
        "status_class.2xx": 0,
        "status_class.3xx": 1,
        "status_class.4xx": 1,
        "status_class.5xx": 1,
        "status_class.6xx": 1,
    }
    assert sum(methods.values()) == s["requests"]
    assert sum(classes.values()) == s["responses"]
    assert s["dialogs.active"] == 2  # call "a" (failed, lingering) and call "b" (trying)


def test_call_setup_histogram_is_cumulative_in_ms() -> None:
    p = SipParser(SipOptions())
    for cid, setup_ms in (("a", 80), ("b", 100), ("c", 400), ("d", 2600), ("e", 45_000)):
        t0 = 1_000_000 * MS
        feed(
            p,
            (t0, sip(call_id=cid)),
            (t0 + setup_ms * MS, sip("SIP/2.0 200 OK", call_id=cid, to_tag="t")),
            # A retransmitted 200 and an answered re-INVITE do not count again.
            (t0 + (setup_ms + 50) * MS, sip("SIP/2.0 200 OK", call_id=cid, to_tag="t")),
            (t0 + 90_000 * MS, sip(call_id=cid, cseq="2 INVITE", to_tag="t")),
            (t0 + 90_010 * MS, sip("SIP/2.0 200 OK", call_id=cid, cseq="2 INVITE", to_tag="t")),
        )
    feed(p, (0, sip(call_id="x")), (5 * MS, sip("SIP/2.0 486 Busy", call_id="x", to_tag="t")))
    s = p.stats()
    hist = {k: v for k, v in s.items() if k.startswith("call_setup.")}
    assert hist == {
        "call_setup.le_100": 2,
        "call_setup.le_250": 2,
        "call_setup.le_500": 3,
        "call_setup.le_1000": 3,
        "call_setup.le_2500": 3,
        "call_setup.le_5000": 4,
        "call_setup.le_10000": 4,
        "call_setup.le_30000": 4,
        "call_setup.count": 5,
        "call_setup.sum_ms": 80 + 100 + 400 + 2600 + 45_000,
    }


def test_keys_are_what_the_exporter_reads() -> None:
    from otus._metrics.families import task_families

    p = SipParser(SipOptions())
    feed(
        p,
        (0, sip(call_id="a")),
        (300 * MS, sip("SIP/2.0 200 OK", call_id="a", to_tag="t")),
        (400 * MS, sip("FROB sip:x SIP/2.0", call_id="f", cseq="1 FROB")),
    )
    stats = p.stats()
    # The pipeline's split: keys whose last component starts with "active" are levels.
    c = {
        f"parse.sip.{k}": v
        for k, v in stats.items()
        if not k.rsplit(".", 1)[-1].startswith("active")
    }
    g = {f"parse.sip.{k}": v for k, v in stats.items() if k.rsplit(".", 1)[-1].startswith("active")}
    fams = {
        f.name: f
        for f in task_families([("t1", "running", "lo", {0: {"counters": c, "gauges": g}}, 0)])
    }
    msgs = {
        (s.labels["method"], s.labels["status_class"]): s.value
        for s in fams["otus_sip_messages"].samples
    }
    assert msgs[("INVITE", "")] == 1
    assert msgs[("other", "")] == 1
    assert msgs[("", "2xx")] == 1
    assert [s.value for s in fams["otus_sip_dialogs_active"].samples] == [1]
    setup = {
        (s.name, s.labels.get("le")): s.value for s in fams["otus_sip_call_setup_seconds"].samples
    }
    assert setup[("otus_sip_call_setup_seconds_bucket", "0.25")] == 0
    assert setup[("otus_sip_call_setup_seconds_bucket", "0.5")] == 1
    assert setup[("otus_sip_call_setup_seconds_count", None)] == 1
    assert abs(setup[("otus_sip_call_setup_seconds_sum", None)] - 0.3) < 1e-9
