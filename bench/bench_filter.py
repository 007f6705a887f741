"""Benchmark of the filter processor: records/s through a realistic rule set.

The records are an edge's mix (SIP requests and responses with their labels, RTP, some TCP),
the rules what an operator writes: drop OPTIONS keep-alives and scanners by User-Agent regex,
label the carrier's networks (CIDR v4 and v6, port range) with a node tag, keep SIP, drop the rest.
There is no peer: no other tool filters Otus records. ``run(quick)`` returns rows for
``nox -s bench``; ``python bench/bench_filter.py [--quick]`` prints them.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

RULES: dict[str, Any] = {
    "default": "drop",
    "rules": [
        {
            "name": "options",
            "action": "drop",
            "match": {"field": "labels.sip.method", "equals": "OPTIONS"},
        },
        {
            "name": "scanners",
            "action": "drop",
            "match": {"field": "labels.sip.user_agent", "regex": "(?i)friendly-scanner|sipvicious"},
        },
        {
            "name": "carrier",
            "action": "label",
            "labels": {"net.peer": "carrier", "net.site": "${node.tags.site}"},
            "match": {
                "all": [
                    {"field": "ip", "cidr": ["203.0.113.0/24", "2001:db8:100::/48"]},
                    {"field": "port", "range": [5060, 5080]},
                ]
            },
        },
        {
            "name": "sip",
            "action": "keep",
            "match": {
                "any": [
                    {"field": "payload_type", "equals": "sip"},
                    {"field": "labels.sip.call_id", "exists": True},
                ]
            },
        },
    ],
}


def _records(n: int) -> list[Any]:
    from otus.testing import make_record

    kinds = [
        ("sip", {"sip.method": "INVITE", "sip.call_id": "a@b", "sip.user_agent": "PBX 1.0"}),
        ("sip", {"sip.status_code": "200", "sip.call_id": "a@b"}),
        ("sip", {"sip.method": "OPTIONS", "sip.call_id": "k@a"}),
        ("sip", {"sip.method": "REGISTER", "sip.user_agent": "friendly-scanner"}),
        ("rtp", {}),
        ("raw", {}),
    ]
    out = []
    for i in range(n):
        ptype, labels = kinds[i % len(kinds)]
        src = f"203.0.113.{i % 250}" if i % 3 == 0 else f"2001:db8:100::{i % 250:x}"
        if i % 5 == 0:
            src = f"10.{i % 200}.{i % 100}.{i % 250}"
        dport = 5060 if ptype == "sip" else 20000 + i % 1000
        if ":" in src:
            out.append(make_record(ptype, labels=labels, src=src, dst="2001:db8::1", dport=dport))
        else:
            out.append(make_record(ptype, labels=labels, src=src, dport=dport))
    return out


def _rate(n: int, batch: int, repeats: int) -> float:
    from otus import PluginContext
    from otus_processor_filter import FilterOptions, FilterProcessor

    options = FilterOptions.model_validate(RULES)
    records = _records(n)
    batches = [records[i : i + batch] for i in range(0, n, batch)]
    times = []
    for _ in range(repeats):
        processor = FilterProcessor(options, PluginContext(node_tags={"site": "fra1"}))
        start = time.perf_counter()
        for b in batches:
            processor.process(list(b))
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def run(quick: bool) -> list[dict[str, Any]]:
    n = 60_000 if quick else 600_000
    repeats = 3 if quick else 7
    return [
        {
            "stage": "process.filter",
            "otus_rate": _rate(n, 1024, repeats),
            "unit": "records/s",
            "peer": None,
            "peer_rate": None,
            "note": f"4 rules (regex, CIDR v4+v6, range, label with node tag), batches of 1024, "
            f"{n} records, median of {repeats}",
        }
    ]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(f"{row['stage']:<16} {row['otus_rate']:>14,.0f} {row['unit']}  {row['note']}")
