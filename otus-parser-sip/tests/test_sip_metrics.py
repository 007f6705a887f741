"""The SIP parser's metric families: registered through ``otus_metrics()``, fed with a real
parser's statistics, and documented in docs/metrics.md (its section is checked here, where the
distribution is installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sip_builders import dgram, sip

from otus import HistogramSample, MetricSample
from otus._metrics import docs
from otus._metrics.families import PluginFamilies, task_families
from otus._plugins.registry import load_registry
from otus_parser_sip import SipOptions, metrics
from otus_parser_sip.parser import SipParser

MS = 1_000_000
REPO = Path(__file__).resolve().parents[2]
NAMES = ["otus_sip_call_setup_seconds", "otus_sip_dialogs_active", "otus_sip_messages_total"]


def test_the_plugin_registers_its_metric_families() -> None:
    registry = load_registry(strict=False)
    assert [s.name for s in registry.metrics_by_distribution()["otus-parser-sip"]] == NAMES
    assert not [f for f in registry.failures if f.distribution == "otus-parser-sip"]


def test_its_section_of_the_metrics_reference_is_current() -> None:
    text = (REPO / docs.MARKDOWN_PATH).read_text(encoding="utf-8")
    section = docs.split_sections(text)[1].get("otus-parser-sip")
    assert section == docs.render_plugin_section("otus-parser-sip", metrics.METRICS), (
        f"{docs.MARKDOWN_PATH} is stale: run python -m otus._metrics.docs --root ."
    )
    for spec in metrics.METRICS:
        assert set(spec.label_help) == set(spec.labels), f"{spec.name}: explain every label"


def _split(stats: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """The pipeline's split: keys whose last component starts with ``active`` are levels."""
    c, g = {}, {}
    for key, value in stats.items():
        target = g if key.rsplit(".", 1)[-1].startswith("active") else c
        target[f"parse.sip.{key}"] = value
    return c, g


def _worker(*messages: tuple[int, bytes]) -> dict[str, Any]:
    """The statistics one worker's SIP parser ships after parsing ``(ts_ns, message)``."""
    p = SipParser(SipOptions())
    for ts_ns, message in messages:
        p.parse([dgram(message, ts_ns=ts_ns)])
    c, g = _split(p.stats())
    return {"counters": c, "gauges": g}


def test_families_from_two_workers_of_a_task() -> None:
    w0 = _worker(
        (0, sip(call_id="a")),
        (120 * MS, sip("SIP/2.0 200 OK", call_id="a", to_tag="t")),
        (130 * MS, sip("FROB sip:x SIP/2.0", call_id="f", cseq="1 FROB")),
    )
    w1 = _worker(
        (0, sip(call_id="b")),
        (0, sip("OPTIONS sip:x SIP/2.0", call_id="o", cseq="1 OPTIONS")),
        (2 * MS, sip("SIP/2.0 404 Not Found", call_id="o", cseq="1 OPTIONS", to_tag="u")),
        (700 * MS, sip("SIP/2.0 200 OK", call_id="b", to_tag="t")),
    )
    rows = [("t1", "running", "lo", {0: w0, 1: w1}, 0)]
    fams = {f.name: f for f in task_families(rows, PluginFamilies(metrics.METRICS))}
    messages = {
        (s.labels["task"], s.labels["method"], s.labels["status_class"]): s.value
        for s in fams["otus_sip_messages"].samples
    }
    assert messages == {
        ("t1", "INVITE", ""): 2,
        ("t1", "OPTIONS", ""): 1,
        ("t1", "other", ""): 1,
        ("t1", "", "1xx"): 0,
        ("t1", "", "2xx"): 2,
        ("t1", "", "3xx"): 0,
        ("t1", "", "4xx"): 1,
        ("t1", "", "5xx"): 0,
        ("t1", "", "6xx"): 0,
    }
    assert [(s.labels, s.value) for s in fams["otus_sip_dialogs_active"].samples] == [
        ({"task": "t1"}, 2.0)
    ]
    setup = {
        (s.name, s.labels.get("le")): s.value for s in fams["otus_sip_call_setup_seconds"].samples
    }
    assert setup[("otus_sip_call_setup_seconds_bucket", "0.1")] == 0
    assert setup[("otus_sip_call_setup_seconds_bucket", "0.25")] == 1
    assert setup[("otus_sip_call_setup_seconds_bucket", "1.0")] == 2
    assert setup[("otus_sip_call_setup_seconds_bucket", "+Inf")] == 2
    assert setup[("otus_sip_call_setup_seconds_count", None)] == 2
    assert abs(setup[("otus_sip_call_setup_seconds_sum", None)] - 0.82) < 1e-9
    assert [s.value for s in fams["otus_plugin_metric_errors"].samples] == [0, 0, 0]


def test_collect_functions_without_sip_traffic_yield_nothing() -> None:
    for spec in metrics.METRICS:
        assert list(spec.collect({"capture.packets": 3}, {})) == []


def test_collect_functions_return_the_sample_types_of_their_kind() -> None:
    c, g = _worker(
        (0, sip(call_id="a")), (300 * MS, sip("SIP/2.0 200 OK", call_id="a", to_tag="t"))
    ).values()
    by_name = {spec.name: list(spec.collect(c, g)) for spec in metrics.METRICS}
    assert by_name["otus_sip_messages_total"] == [
        *(MetricSample(("", f"{n}xx"), int(n == 2)) for n in range(1, 7)),
        MetricSample(("INVITE", ""), 1),
    ]
    assert by_name["otus_sip_dialogs_active"] == [MetricSample((), 1)]
    (hist,) = by_name["otus_sip_call_setup_seconds"]
    assert isinstance(hist, HistogramSample)
    assert (hist.count, hist.sum) == (1.0, 0.3)


def test_a_task_with_the_parser_twice_is_counted_over_both() -> None:
    """A task may name the parser twice (``sip`` and ``sip#2``, say for two port sets): the
    families add up both instances' statistics; other parsers' keys are not taken."""
    c, g = _worker(
        (0, sip(call_id="a")), (300 * MS, sip("SIP/2.0 200 OK", call_id="a", to_tag="t"))
    ).values()
    twice_c = {**c, **{k.replace("parse.sip.", "parse.sip#2."): v for k, v in c.items()}}
    twice_g = {**g, **{k.replace("parse.sip.", "parse.sip#2."): v for k, v in g.items()}}
    twice_c["parse.sipx.method.INVITE"] = 5  # another parser whose name starts with "sip"
    by_name = {spec.name: list(spec.collect(twice_c, twice_g)) for spec in metrics.METRICS}
    assert MetricSample(("INVITE", ""), 2) in by_name["otus_sip_messages_total"]
    assert MetricSample(("", "2xx"), 2) in by_name["otus_sip_messages_total"]
    assert by_name["otus_sip_dialogs_active"] == [MetricSample((), 2)]
    (hist,) = by_name["otus_sip_call_setup_seconds"]
    assert isinstance(hist, HistogramSample)
    assert (hist.count, hist.sum) == (2.0, 0.6)
