"""End to end: real sipp calls captured by tcpdump, decoded by Otus and by tshark (the oracle).

For every SIP message tshark sees, Otus must report the same method or status, Call-ID, CSeq,
From/To URIs and tags and top Via branch, and nothing tshark does not see. Two routes: the real
pipeline (``otus run --pcap ... --parser sip --reporter console``) and the parser alone, fed from
the pcap, which checks the TCP framing independently of the core's reassembly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sip_capture import Row, otus_row, parse_pcap_directly, record_calls, tshark_rows

from otus.testing import need_root, need_tool
from otus_parser_sip import SipOptions
from otus_parser_sip.parser import SipParser

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["u1", "t1"], ids=["udp", "tcp"])
def capture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int]:
    for tool in ("sipp", "tcpdump", "tshark"):
        need_tool(tool)
    need_root()
    pcap = tmp_path_factory.mktemp("sipp") / f"calls-{request.param}.pcap"
    port = record_calls(pcap, request.param)
    return pcap, port


def _compare(otus: list[Row], oracle: list[Row], oracle_kinds: list[str]) -> None:
    assert oracle, "tshark saw no SIP at all: the capture is broken"
    assert Counter(r[1:] for r in otus) == Counter(r[1:] for r in oracle)
    assert Counter(r[0] for r in otus) == Counter(oracle_kinds)
    # Messages alone in their packet are compared whole (kind with its fields); the pipeline
    # may emit records of different TCP connections in another order than the capture.
    whole = Counter(t for t in oracle if t[0] != "?")
    assert not whole - Counter(otus)


def _expected_scenarios(rows: list[Row]) -> None:
    """The capture holds what the scenarios promise (guards against a silently short capture)."""
    kinds = Counter(r[0] for r in rows)
    for k in (
        "INVITE",
        "ACK",
        "BYE",
        "REGISTER",
        "CANCEL",
        "401",
        "407",
        "180",
        "200",
        "486",
        "487",
    ):
        assert kinds[k] >= 1, f"{k} missing from the capture: {kinds}"
    assert kinds["INVITE"] >= 8  # 5 calls, a re-INVITE, the auth call's retry and hold


def test_otus_run_matches_tshark(capture: tuple[Path, int]) -> None:
    pcap, port = capture
    oracle, kinds = tshark_rows(pcap, port)
    proc = subprocess.run(
        [sys.executable, "-m", "otus.cli", "run", "--pcap", str(pcap), "--parser", "sip",
         "--reporter", "console", "--no-progress"],
        capture_output=True, timeout=120, check=False, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert all(r["payload_type"] == "sip" for r in records)
    otus = [otus_row(r["labels"]) for r in records]
    _compare(otus, oracle, kinds)
    _expected_scenarios(otus)


def test_parser_alone_matches_tshark(capture: tuple[Path, int]) -> None:
    pcap, port = capture
    oracle, kinds = tshark_rows(pcap, port)
    parser = SipParser(SipOptions(ports=[port]))
    records = parse_pcap_directly(parser, pcap)
    _compare([otus_row(r.labels) for r in records], oracle, kinds)
    stats = parser.stats()
    assert not [k for k in stats if k.startswith("error.")], stats
    assert stats["dialogs.terminated"] >= 3
    assert stats["dialogs.cancelled"] == 1
    # the 486 only: the INVITE challenged with 407 and sent again is one answered call
    assert stats["dialogs.failed"] == 1
    assert stats["dialogs.created"] == 5  # uac, cancel, busy, reinvite, auth
    assert "dialogs.timeout" not in stats
    # The re-INVITE moved the media: both the first and the second offer are registered.
    assert parser.media is not None
    assert parser.media.lookup("127.0.0.1", 40000) is not None
    assert parser.media.lookup("127.0.0.1", 40002) is not None
    # the auth call's hold re-INVITE (c=IN IP4 0.0.0.0) names no endpoint
    assert not [f for f in parser.media.flows() if f.ip == "0.0.0.0"]
    assert parser.media.lookup("127.0.0.1", 41000) is not None
