"""The daemon's ``/metrics`` endpoint (Prometheus text, or OpenMetrics when asked for)."""

from __future__ import annotations

import io
import platform
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import MetricsHandler

from otus import __version__
from otus._logging.setup import loki_stats
from otus._metrics.families import METRICS, PluginFamilies, task_families
from otus.errors import OtusError
from otus.metrics import MetricSpec

TaskRows = Callable[[], Iterable[tuple[str, str, str, dict[int, dict[str, Any]], int]]]


class _Collector:
    def __init__(self, rows: TaskRows, plugins: PluginFamilies) -> None:
        self._rows = rows
        self._plugins = plugins

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("otus_build_info", METRICS["otus_build_info"][1],
                                 labels=["version", "python"])  # fmt: skip
        info.add_metric([__version__, platform.python_version()], 1)
        yield info
        yield from task_families(self._rows(), self._plugins, own_loki=loki_stats())


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    try:
        return (host.strip("[]") or "0.0.0.0", int(port))
    except ValueError:
        raise OtusError(f"bad otus.metrics.listen {listen!r}: use host:port or :port") from None


class MetricsServer:
    """Serves the registry on ``listen`` at ``path`` in a background thread.

    ``metrics`` are the plugins' metric specs (the daemon passes its plugin registry's);
    ``None`` loads those of the installed plugins.
    """

    def __init__(
        self, listen: str, path: str, rows: TaskRows, metrics: Iterable[MetricSpec] | None = None
    ) -> None:
        plugins = PluginFamilies.installed() if metrics is None else PluginFamilies(metrics)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(rows, plugins))
        host, port = parse_listen(listen)
        handler = MetricsHandler.factory(self.registry)
        wanted = path

        class _Handler(handler):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                if self.path.split("?")[0] != wanted:
                    self.send_error(404, f"metrics are at {wanted}")
                    return
                super().do_GET()

            def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
                """What GET answers for the same headers (encoding and compression included),
                without the body: health checks and load balancers probe with HEAD."""
                me: BaseHTTPRequestHandler = self
                wire, answer = me.wfile, io.BytesIO()
                me.wfile = answer
                try:
                    self.do_GET()
                finally:
                    me.wfile = wire
                head, _, body = answer.getvalue().partition(b"\r\n\r\n")
                if b"\r\ncontent-length:" not in head.lower():
                    head += b"\r\nContent-Length: %d" % len(body)
                self.wfile.write(head + b"\r\n\r\n")

            def log_message(self, *args: Any) -> None:
                pass

        try:
            self._httpd = ThreadingHTTPServer((host, port), _Handler)
        except OSError as exc:
            raise OtusError(f"cannot serve metrics on {listen}: {exc}") from exc
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name="otus-metrics")  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
