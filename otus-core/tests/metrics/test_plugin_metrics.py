"""Metric families declared by plugins: the spec, the registry's checks, and how /metrics serves
them (summed per task, ``task`` added, a failing ``collect`` left out and counted)."""

from __future__ import annotations

import logging
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import otus
from otus._metrics.families import PluginFamilies, task_families
from otus._metrics.server import MetricsServer
from otus._plugins.registry import PluginInfo, load_registry
from otus.errors import PluginError

DIST = "otus-fake-metrics"


def _widgets(
    counters: Mapping[str, int], _gauges: Mapping[str, int]
) -> Iterator[otus.MetricSample]:
    for colour, value in otus.prefixed(counters, "parse.fakem.widgets."):
        yield otus.MetricSample((colour,), value)


WIDGETS = otus.MetricSpec(
    name="otus_fakem_widgets_total",
    kind="counter",
    help="Widgets seen, by colour.",
    labels=("colour",),
    collect=_widgets,
    label_help={"colour": "widget colour"},
)


def _spec(collect: Any, name: str = "otus_fakem_broken", kind: str = "gauge") -> otus.MetricSpec:
    return otus.MetricSpec(name=name, kind=kind, help="A family.", labels=(), collect=collect)  # type: ignore[arg-type]


def _row(task: str, *workers: tuple[dict[str, int], dict[str, int]]) -> tuple[Any, ...]:
    per_worker = {i: {"counters": c, "gauges": g} for i, (c, g) in enumerate(workers)}
    return (task, "running", "eth0", per_worker, 0)


def _by_name(families: Iterable[Any]) -> dict[str, Any]:
    return {f.name: f for f in families}


def _values(family: Any) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


# -- the spec ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "otus fakem"}, "not a valid Prometheus name"),
        ({"name": "otus_fakem_widgets"}, "counter names end in _total"),
        ({"kind": "gauge"}, "counter names end in _total, other kinds"),
        ({"kind": "summary"}, "kind must be counter, gauge or histogram"),
        ({"help": " "}, "help must say what it measures"),
        ({"labels": ("task",), "label_help": {}}, "label 'task' is reserved"),
        ({"labels": ("le",), "label_help": {}}, "label 'le' is reserved"),
        ({"labels": ("a", "a"), "label_help": {}}, "duplicate label names"),
        ({"labels": ("bad-name",), "label_help": {}}, "bad label name"),
        ({"labels": ["colour"]}, "labels must be a tuple"),
        ({"label_help": {"shade": "x"}}, r"label_help for unknown \['shade'\]"),
    ],
)
def test_a_bad_spec_is_refused_when_built(changes: dict[str, Any], message: str) -> None:
    fields = {
        "name": WIDGETS.name, "kind": WIDGETS.kind, "help": WIDGETS.help,
        "labels": WIDGETS.labels, "collect": _widgets, "label_help": WIDGETS.label_help,
    }  # fmt: skip
    with pytest.raises(ValueError, match=message):
        otus.MetricSpec(**{**fields, **changes})


def test_histogram_sample_reads_the_latency_convention() -> None:
    values = {
        "x.lat.le_100": 1, "x.lat.le_500": 3, "x.lat.le_1000": 4, "x.lat.count": 5,
        "x.lat.sum_ms": 2100, "x.lat.le_bogus": 9, "x.other": 1,
    }  # fmt: skip
    sample = otus.histogram_sample(values, "x.lat.", 1e-3, ("a",))
    assert sample == otus.HistogramSample(
        ("a",), ((0.1, 1.0), (0.5, 3.0), (1.0, 4.0)), count=5.0, sum=2.1
    )
    ns = otus.histogram_sample({"y.le_1000": 2, "y.count": 2, "y.sum_ns": 1500}, "y.", 1e-9)
    assert ns is not None
    assert ns.buckets == (pytest.approx((1e-6, 2.0)),)
    assert ns.sum == pytest.approx(1.5e-6)
    assert otus.histogram_sample({"y.count": 2}, "y.", 1e-9) is None
    assert otus.histogram_sample({"y.le_5": 2}, "y.", 1e-9) is None


# -- the registry --------------------------------------------------------------------------------

_MODULES = {
    "ok": """
        import otus
        from otus_fake_metrics.shared import WIDGETS

        @otus.hookimpl
        def otus_metrics():
            return [WIDGETS]
    """,
    "shared": f"""
        import otus

        def _none(counters, gauges):
            return []

        def spec(name, kind="gauge"):
            return otus.MetricSpec(name=name, kind=kind, help="h", labels=(), collect=_none)

        WIDGETS = otus.MetricSpec(
            name={WIDGETS.name!r}, kind="counter", help="Widgets seen, by colour.",
            labels=("colour",), collect=_none,
        )
    """,
    "coreclash": """
        import otus
        from otus_fake_metrics.shared import spec

        @otus.hookimpl
        def otus_metrics():
            # the same name as a core family, and a gauge named like a core histogram's series
            return [spec("otus_capture_packets_total", "counter"),
                    spec("otus_pipeline_latency_seconds_count")]
    """,
    "twin_a": """
        import otus
        from otus_fake_metrics.shared import spec

        @otus.hookimpl
        def otus_metrics():
            return [spec("otus_fakem_twin"), spec("otus_fakem_delay_seconds", "histogram")]
    """,
    "twin_b": """
        import otus
        from otus_fake_metrics.shared import spec

        @otus.hookimpl
        def otus_metrics():
            return [spec("otus_fakem_twin"), spec("otus_fakem_delay_seconds_sum")]
    """,
    "wrongtype": """
        import otus

        @otus.hookimpl
        def otus_metrics():
            return ["otus_fakem_text"]
    """,
    "explodes": """
        import otus

        @otus.hookimpl
        def otus_metrics():
            raise RuntimeError("no metrics today")
    """,
}


@pytest.fixture
def fake_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A distribution ``otus-fake-metrics`` on ``sys.path`` with good, clashing and broken
    ``otus_metrics()`` implementations, one entry point each."""
    package = tmp_path / "otus_fake_metrics"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, source in _MODULES.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / "otus_fake_metrics-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: 0.1.0\n")
    entry_points = "".join(
        f"m-{module} = otus_fake_metrics.{module}\n" for module in _MODULES if module != "shared"
    )
    (info / "entry_points.txt").write_text(f"[otus.plugins]\n{entry_points}")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m.startswith("otus_fake_metrics")]:
        del sys.modules[name]


def _metric_failures(entries: list[PluginInfo]) -> dict[tuple[str, str], str]:
    return {
        (e.entry_point, e.name): e.error or ""
        for e in entries
        if e.distribution == DIST and e.status == "failed"
    }


@pytest.mark.usefixtures("fake_metrics")
def test_the_registry_collects_metric_specs_and_rejects_clashes() -> None:
    registry = load_registry(strict=False)
    assert [s.name for s in registry.metrics_by_distribution()[DIST]] == [WIDGETS.name]
    assert WIDGETS.name in [s.name for s in registry.metrics()]
    failures = _metric_failures(registry.entries())
    assert all(e.kind == "metric" for e in registry.failures if e.distribution == DIST)
    assert set(failures) == {
        ("m-coreclash", "otus_capture_packets_total"),
        ("m-coreclash", "otus_pipeline_latency_seconds_count"),
        ("m-twin_a", "otus_fakem_twin"),
        ("m-twin_b", "otus_fakem_twin"),
        ("m-twin_a", "otus_fakem_delay_seconds"),
        ("m-twin_b", "otus_fakem_delay_seconds_sum"),
        ("m-wrongtype", "m-wrongtype"),
        ("m-explodes", "m-explodes"),
    }
    assert failures[("m-coreclash", "otus_capture_packets_total")] == (
        "name clash: metric 'otus_capture_packets_total' collides with the core metric "
        "'otus_capture_packets_total'; name plugin metrics otus_<plugin>_…"
    )
    assert (
        "core metric 'otus_pipeline_latency_seconds'"
        in failures[("m-coreclash", "otus_pipeline_latency_seconds_count")]
    )
    twin = failures[("m-twin_a", "otus_fakem_twin")]
    assert twin == (
        f"name clash: metric 'otus_fakem_twin' of {DIST} (entry point 'm-twin_a') collides with "
        f"'otus_fakem_twin' of {DIST} (entry point 'm-twin_b'); uninstall one of them"
    )
    assert "'otus_fakem_delay_seconds' of" in failures[("m-twin_b", "otus_fakem_delay_seconds_sum")]
    assert "must return MetricSpec objects" in failures[("m-wrongtype", "m-wrongtype")]
    assert failures[("m-explodes", "m-explodes")] == (
        "otus_metrics(): RuntimeError: no metrics today"
    )
    rejected = {name for _, name in failures}
    assert not rejected & {s.name for s in registry.metrics()}


@pytest.mark.usefixtures("fake_metrics")
def test_strict_mode_fails_on_a_metric_clash() -> None:
    with pytest.raises(PluginError, match=r"metric 'otus_fakem_twin': name clash"):
        load_registry(strict=True)


# -- serving -------------------------------------------------------------------------------------


def test_plugin_families_are_fed_the_per_task_sums() -> None:
    rows = [
        _row(
            "t1",
            ({"parse.fakem.widgets.red": 2}, {}),
            ({"parse.fakem.widgets.red": 3, "parse.fakem.widgets.blue": 1}, {}),
        ),
        _row("t2", ({"parse.fakem.widgets.red": 7}, {})),
    ]
    fams = _by_name(task_families(rows, PluginFamilies([WIDGETS])))
    assert _values(fams["otus_fakem_widgets"]) == {
        (("colour", "red"), ("task", "t1")): 5,
        (("colour", "blue"), ("task", "t1")): 1,
        (("colour", "red"), ("task", "t2")): 7,
    }
    assert fams["otus_fakem_widgets"].type == "counter"
    assert _values(fams["otus_plugin_metric_errors"]) == {(("metric", WIDGETS.name),): 0}
    assert "otus_capture_packets" in fams  # the core families are still there


def _raises(_c: Mapping[str, int], _g: Mapping[str, int]) -> list[otus.MetricSample]:
    raise KeyError("parse.fakem.missing")


def _half_then_raises(c: Mapping[str, int], _g: Mapping[str, int]) -> Iterator[otus.MetricSample]:
    yield otus.MetricSample((), 1)
    raise ZeroDivisionError("oops")


def _mutates(c: Mapping[str, int], _g: Mapping[str, int]) -> list[otus.MetricSample]:
    c["capture.packets"] = 0  # type: ignore[index]
    return []


@pytest.mark.parametrize(
    "bad",
    [
        _spec(_raises),
        _spec(_half_then_raises),
        _spec(lambda _c, _g: [otus.MetricSample(("extra",), 1)]),  # a label it did not declare
        _spec(lambda _c, _g: [otus.MetricSample((), 1)], kind="histogram"),  # wrong shape
        _spec(lambda _c, _g: [(("x",), 1)]),  # not a sample object
        _spec(_mutates),  # the counters are read-only: it must not change the core's figures
    ],
    ids=["raises", "raises-midway", "labels", "kind", "tuple", "mutates"],
)
def test_a_failing_collect_leaves_out_its_family_only_and_is_counted(
    bad: otus.MetricSpec, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = PluginFamilies([WIDGETS, bad])
    rows = [_row("t1", ({"parse.fakem.widgets.red": 2, "capture.packets": 9}, {}))]
    with caplog.at_level(logging.DEBUG, logger="otus._metrics.families"):
        for scrape in (1, 2):
            fams = _by_name(task_families(rows, plugins))
            assert bad.name not in fams
            assert _values(fams["otus_fakem_widgets"]) == {(("colour", "red"), ("task", "t1")): 2}
            assert _values(fams["otus_capture_packets"]) == {
                (("interface", "eth0"), ("task", "t1")): 9
            }
            assert _values(fams["otus_plugin_metric_errors"]) == {
                (("metric", WIDGETS.name),): 0, (("metric", bad.name),): scrape,
            }  # fmt: skip
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "logged once as a warning, then at debug"
    assert bad.name in warnings[0].getMessage()
    assert sum(bad.name in r.getMessage() for r in caplog.records) == 2


def test_the_endpoint_survives_a_failing_plugin_family() -> None:
    rows = [_row("t1", ({"parse.fakem.widgets.red": 4}, {}))]
    server = MetricsServer("127.0.0.1:0", "/metrics", lambda: rows, [WIDGETS, _spec(_raises)])
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        texts = []
        for _ in range(2):
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
                texts.append(response.read().decode())
    finally:
        server.close()
    assert 'otus_fakem_widgets_total{colour="red",task="t1"} 4.0' in texts[1]
    assert "otus_fakem_broken" not in texts[1].replace('metric="otus_fakem_broken"', "")
    assert 'otus_plugin_metric_errors_total{metric="otus_fakem_broken"} 2.0' in texts[1]
    assert "otus_build_info{python=" in texts[1]


def test_head_answers_like_get_without_a_body() -> None:
    """Before: HEAD /metrics (health checks, load balancers) was answered 501."""
    rows = [_row("t1", ({"parse.fakem.widgets.red": 4}, {}))]
    server = MetricsServer("127.0.0.1:0", "/metrics", lambda: rows, [WIDGETS])
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            get_type = response.headers["Content-Type"]
        head = urllib.request.Request(f"{base}/metrics", method="HEAD")
        with urllib.request.urlopen(head, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == get_type
            assert int(response.headers["Content-Length"]) > 100
            assert response.read() == b""
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(f"{base}/x", method="HEAD"), timeout=10)
        assert err.value.code == 404
    finally:
        server.close()


def test_head_content_length_is_what_get_sends_for_the_same_headers() -> None:
    """Before: HEAD gave the uncompressed length (and no Content-Encoding) to a client that
    accepts gzip, while GET sent the gzipped body: a probe comparing the two saw a mismatch."""
    rows = [_row("t1", ({"parse.fakem.widgets.red": 4}, {}))]
    server = MetricsServer("127.0.0.1:0", "/metrics", lambda: rows, [WIDGETS])
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        for headers in (
            {"Accept-Encoding": "gzip"},
            {},
            {"Accept": "application/openmetrics-text"},
        ):
            get = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(get, timeout=10) as response:
                body = response.read()
                get_encoding = response.headers["Content-Encoding"]
            head = urllib.request.Request(url, method="HEAD", headers=headers)
            with urllib.request.urlopen(head, timeout=10) as response:
                assert int(response.headers["Content-Length"]) == len(body), headers
                assert response.headers["Content-Encoding"] == get_encoding, headers
                assert response.read() == b""
        assert get_encoding is None
    finally:
        server.close()


def test_reporter_queue_drops_are_exported_per_reporter() -> None:
    """The run loop's queue in front of each reporter is named ``report.<reporter>``: its drops
    are that reporter's (``queue_<reason>``), other queues' drops the stage's."""
    counters = {
        "queue.report.kafka.dropped.full": 3,
        "queue.report.kafka.dropped.closed": 2,
        "queue.report.console.dropped.timeout": 1,
        "report.kafka.dropped.buffer_full": 4,
        "queue.decode.dropped.full": 5,
    }
    fams = _by_name(task_families([_row("t1", (counters, {}))], PluginFamilies([])))
    assert _values(fams["otus_reporter_dropped"]) == {
        (("reason", "queue_full"), ("reporter", "kafka"), ("task", "t1")): 3,
        (("reason", "queue_closed"), ("reporter", "kafka"), ("task", "t1")): 2,
        (("reason", "queue_timeout"), ("reporter", "console"), ("task", "t1")): 1,
        (("reason", "buffer_full"), ("reporter", "kafka"), ("task", "t1")): 4,
    }
    assert _values(fams["otus_pipeline_dropped"]) == {
        (("reason", "full"), ("stage", "decode"), ("task", "t1")): 5,
    }


def test_truncated_packets_are_exported_per_interface() -> None:
    """Before: capture.truncated (snap length shorter than the packets) had no series."""
    counters = {"capture.packets": 10, "capture.truncated": 3}
    fams = _by_name(task_families([_row("t1", (counters, {}))], PluginFamilies([])))
    assert _values(fams["otus_capture_truncated"]) == {
        (("interface", "eth0"), ("task", "t1")): 3,
    }


def test_loki_output_counts_are_exported_per_task_and_for_the_daemon() -> None:
    """Before: the Loki output's sent/dropped counts stayed inside each process, so an alert
    on log lines lost to a slow or refusing Loki could not be written."""
    counters = {"capture.packets": 1, "log.loki.sent": 40, "log.loki.dropped": 2,
                "log.loki.errors": 1}  # fmt: skip
    fams = _by_name(
        task_families(
            [_row("t1", (counters, {"log.loki.buffered": 5})), _row("t2", ({}, {}))],
            PluginFamilies([]),
            own_loki={"sent": 7, "dropped": 0, "errors": 0, "buffered": 1},
        )
    )
    assert _values(fams["otus_log_loki_lines"]) == {
        (("outcome", "sent"), ("task", "t1")): 40,
        (("outcome", "dropped"), ("task", "t1")): 2,
        (("outcome", "sent"), ("task", "")): 7,
        (("outcome", "dropped"), ("task", "")): 0,
    }
    assert _values(fams["otus_log_loki_push_errors"]) == {
        (("task", "t1"),): 1, (("task", ""),): 0,
    }  # fmt: skip
    assert _values(fams["otus_log_loki_buffered_lines"]) == {
        (("task", "t1"),): 5, (("task", ""),): 1,
    }  # fmt: skip
