"""The filter's metric families: what it kept and what each rule dropped reach Prometheus, from
a real processor's statistics; its section of docs/metrics.md is checked here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otus import MetricSample
from otus._metrics import docs
from otus._metrics.families import PluginFamilies, task_families
from otus._plugins.registry import load_registry
from otus.testing import make_record
from otus_processor_filter import FilterOptions, FilterProcessor, metrics

REPO = Path(__file__).resolve().parents[2]
NAMES = ["otus_filter_dropped_total", "otus_filter_kept_total"]
RULES = {
    "rules": [
        {"name": "no-rtp", "action": "drop", "match": {"field": "payload_type", "equals": "rtp"}},
        {"action": "drop", "match": {"field": "dst_port", "equals": 9}},
    ],
    "default": "keep",
}


def _worker(*payload_types: str, prefix: str = "process.filter.") -> dict[str, Any]:
    """The counters one worker ships after filtering records of these payload types."""
    f = FilterProcessor(FilterOptions.model_validate(RULES))
    f.process([make_record(t) for t in payload_types])
    return {"counters": {prefix + k: v for k, v in f.stats().items()}, "gauges": {}}


def test_the_plugin_registers_its_metric_families() -> None:
    registry = load_registry(strict=False)
    assert [s.name for s in registry.metrics_by_distribution()["otus-processor-filter"]] == NAMES


def test_its_section_of_the_metrics_reference_is_current() -> None:
    text = (REPO / docs.MARKDOWN_PATH).read_text(encoding="utf-8")
    section = docs.split_sections(text)[1].get("otus-processor-filter")
    assert section == docs.render_plugin_section("otus-processor-filter", metrics.METRICS), (
        f"{docs.MARKDOWN_PATH} is stale: run python -m otus._metrics.docs --root ."
    )
    for spec in metrics.METRICS:
        assert set(spec.label_help) == set(spec.labels), f"{spec.name}: explain every label"


def test_kept_and_dropped_by_rule_over_workers_and_instances() -> None:
    w0 = _worker("sip", "rtp", "rtp")
    w1 = _worker("rtp", "sip", "sip")
    second = _worker("rtp", prefix="process.filter#2.")  # a task naming the filter twice
    w1["counters"].update(second["counters"])
    w1["counters"]["process.filterx.dropped.no-rtp"] = 50  # another processor: not taken
    rows = [("t1", "running", "lo", {0: w0, 1: w1}, 0)]
    fams = {f.name: f for f in task_families(rows, PluginFamilies(metrics.METRICS))}
    assert [(s.labels, s.value) for s in fams["otus_filter_kept"].samples] == [({"task": "t1"}, 3)]
    dropped = {s.labels["rule"]: s.value for s in fams["otus_filter_dropped"].samples}
    assert dropped == {"1": 0, "default": 0, "no-rtp": 4}


def test_no_filter_in_the_task_yields_nothing() -> None:
    for spec in metrics.METRICS:
        assert list(spec.collect({"capture.packets": 3}, {})) == []
    (kept,) = [s for s in metrics.METRICS if s.name == "otus_filter_kept_total"]
    assert list(kept.collect({"process.filter.kept": 2}, {})) == [MetricSample((), 2)]
