"""docs/metrics.md is current and names exactly the metrics the daemon's endpoint serves."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from otus._metrics import docs
from otus._metrics.families import METRICS
from otus._metrics.server import MetricsServer

REPO = Path(__file__).resolve().parents[3]


def test_metrics_md_is_current() -> None:
    path = REPO / docs.MARKDOWN_PATH
    assert path.exists(), f"{path} missing: run python -m otus._metrics.docs --root ."
    assert path.read_text(encoding="utf-8") == docs.render_markdown(), (
        f"{docs.MARKDOWN_PATH} is stale: run python -m otus._metrics.docs --root ."
    )


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
    """A scrape of a real endpoint, fed one task whose counters touch every family."""
    counters = {
        "capture.packets": 10, "capture.bytes": 1000, "capture.drops.kernel": 1,
        "decode.decoded": 9, "decode.error.truncated": 1, "decode.frag_evicted.timeout": 1,
        "reassembly.tcp.evicted.memory": 1, "lost.parse.sip": 1,
        "queue.report.dropped.queue_full": 1, "parse.sip.in": 8, "parse.sip.error.bad_start": 1,
        "parse.sip.method.INVITE": 3, "parse.sip.method.FOO": 1, "parse.sip.status_class.2xx": 3,
        "records.parsed": 7, "records.reported": 7, "report.kafka.records": 7,
        "report.kafka.errors": 1, "report.kafka.dropped.buffer_full": 1,
        "latency.decode.le_1000": 1, "latency.decode.count": 1, "latency.decode.sum_ns": 500,
        "parse.sip.call_setup.le_100": 1, "parse.sip.call_setup.count": 1,
        "parse.sip.call_setup.sum_ms": 80,
    }  # fmt: skip
    gauges = {"decode.frag_active": 2, "reassembly.tcp.active_flows": 3,
              "report.kafka.buffer_records": 4, "parse.sip.dialogs.active": 5}  # fmt: skip
    rows = [("t1", "running", "eth0", {0: {"counters": counters, "gauges": gauges}}, 1)]
    server = MetricsServer("127.0.0.1:0", "/metrics", lambda: rows)
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
    documented = _table_names((REPO / docs.MARKDOWN_PATH).read_text(encoding="utf-8"))
    assert served == documented == set(METRICS)
    for name, (kind, _, _) in METRICS.items():
        sample = f"{name}_bucket" if kind == "histogram" else name
        assert sample in sampled, f"{name} has no sample in:\n{text}"
