"""docs/metrics.md is current and names exactly the metrics the daemon's endpoint serves.

Plugin sections are checked for the plugins installed here; the section of a distribution that
is not (otus-core's own test session) is checked by that distribution's tests.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

import otus
from otus._metrics import docs
from otus._metrics.families import METRICS
from otus._metrics.server import MetricsServer

REPO = Path(__file__).resolve().parents[3]


def test_metrics_md_is_current() -> None:
    path = REPO / docs.MARKDOWN_PATH
    assert path.exists(), f"{path} missing: run python -m otus._metrics.docs --root ."
    current = path.read_text(encoding="utf-8")
    expected, _kept = docs.expected_markdown(current, docs.installed_metrics())
    assert current == expected, (
        f"{docs.MARKDOWN_PATH} is stale: run python -m otus._metrics.docs --root ."
    )


def _gauge(name: str, labels: tuple[str, ...] = (), **help_: str) -> otus.MetricSpec:
    return otus.MetricSpec(name, "gauge", f"{name} help", labels, lambda _c, _g: [], help_)


def test_plugin_sections_are_rendered_and_kept_only_where_they_cannot_be_checked() -> None:
    absent = [_gauge("otus_absent_b"), _gauge("otus_absent_a", ("x",), x="an x")]
    installed = [_gauge("otus_here_level")]  # stands for a plugin of an installed distribution
    specs = {"otus-fake-absent": absent, "otus-core": installed}
    text = docs.render_markdown(specs)
    core, sections = docs.split_sections(text)
    assert core == docs.render_core()
    assert sections == {d: docs.render_plugin_section(d, s) for d, s in specs.items()}
    assert text.index("### otus-core") < text.index("### otus-fake-absent")
    section = sections["otus-fake-absent"]
    assert section.index("otus_absent_a") < section.index("otus_absent_b")
    assert "| `otus_absent_a` | gauge | `task`, `x` | otus_absent_a help |" in section
    assert "| `x` | an x |" in section
    # A section of a distribution not installed here is kept as the file has it; an installed
    # distribution's is rendered from its specs, and dropped when it declares none.
    edited = text.replace("help |", "edited by hand |")
    expected, kept = docs.expected_markdown(edited, {"otus-core": installed})
    assert kept == ["otus-fake-absent"]
    assert docs.split_sections(expected)[1] == {
        "otus-fake-absent": docs.split_sections(edited)[1]["otus-fake-absent"],
        "otus-core": sections["otus-core"],
    }
    expected, _ = docs.expected_markdown(edited, {})
    assert "### otus-core" not in expected
    assert "otus_absent_a edited by hand" in expected
    assert docs.expected_markdown(None, {})[0] == docs.render_markdown({})
    assert "No installed plugin declares any." in docs.render_markdown({})


def test_check_mode_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / docs.MARKDOWN_PATH).write_text("# old\n")
    assert docs.main(["--root", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docs.main(["--root", str(tmp_path)]) == 0
    assert docs.main(["--root", str(tmp_path), "--check"]) == 0


def test_every_label_is_explained() -> None:
    used = {label for _, _, labels in METRICS.values() for label in labels}
    assert used <= set(docs.LABELS), f"add to docs.LABELS: {sorted(used - set(docs.LABELS))}"


def _table_names(markdown: str) -> set[str]:
    return set(re.findall(r"^\| `(otus_[a-z_]+)` \|", markdown, flags=re.MULTILINE))


def test_the_table_lists_what_the_endpoint_serves() -> None:
    """A scrape of a real endpoint, fed one task whose counters touch every family (the
    installed plugins' too: SIP's and the filter's, plus one plugin family of this test's)."""
    counters = {
        "capture.packets": 10, "capture.bytes": 1000, "capture.drops.kernel": 1,
        "decode.decoded": 9, "decode.error.truncated": 1, "decode.frag_evicted.timeout": 1,
        "reassembly.tcp.evicted.memory": 1, "lost.parse.sip": 1,
        "queue.decode.dropped.full": 1, "parse.sip.in": 8, "parse.sip.error.bad_start": 1,
        "parse.sip.method.INVITE": 3, "parse.sip.method.FOO": 1, "parse.sip.status_class.2xx": 3,
        "records.parsed": 7, "records.reported": 7, "report.kafka.records": 7,
        "report.kafka.errors": 1, "report.kafka.dropped.buffer_full": 1,
        "latency.decode.le_1000": 1, "latency.decode.count": 1, "latency.decode.sum_ns": 500,
        "parse.sip.call_setup.le_100": 1, "parse.sip.call_setup.count": 1,
        "parse.sip.call_setup.sum_ms": 80, "parse.probe.things": 2,
        "process.filter.kept": 6, "process.filter.dropped.options": 1,
        "log.loki.sent": 3, "log.loki.dropped": 1, "log.loki.errors": 1,
    }  # fmt: skip
    gauges = {"decode.frag_active": 2, "reassembly.tcp.active_flows": 3, "log.loki.buffered": 2,
              "report.kafka.buffer_records": 4, "parse.sip.dialogs.active": 5}  # fmt: skip
    rows = [("t1", "running", "eth0", {0: {"counters": counters, "gauges": gauges}}, 1)]
    probe = otus.MetricSpec(
        "otus_probe_things_total", "counter", "Things.", (),
        lambda c, _g: [otus.MetricSample((), c["parse.probe.things"])],
    )  # fmt: skip
    installed = [spec for specs in docs.installed_metrics().values() for spec in specs]
    server = MetricsServer("127.0.0.1:0", "/metrics", lambda: rows, [*installed, probe])
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    finally:
        server.close()
    served = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
        served.add(name + "_total" if kind == "counter" and not name.endswith("_total") else name)
    # Every served family carries samples here, so an empty family would show up as missing.
    sampled = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    core, sections = docs.split_sections((REPO / docs.MARKDOWN_PATH).read_text(encoding="utf-8"))
    assert _table_names(core) == set(METRICS)
    plugins = {spec.name: spec.kind for spec in installed}
    assert plugins.keys() <= _table_names("\n".join(sections.values()))
    assert served == set(METRICS) | set(plugins) | {probe.name}
    kinds = {name: kind for name, (kind, _, _) in METRICS.items()} | plugins
    for name, kind in kinds.items():
        sample = f"{name}_bucket" if kind == "histogram" else name
        assert sample in sampled, f"{name} has no sample in:\n{text}"
