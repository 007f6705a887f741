"""The daemon's ``/metrics`` endpoint (Prometheus text, or OpenMetrics when asked for)."""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Iterable
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import MetricsHandler

from otus import __version__
from otus._metrics.families import METRICS, task_families
from otus.errors import OtusError

TaskRows = Callable[[], Iterable[tuple[str, str, str, dict[int, dict[str, Any]], int]]]


class _Collector:
    def __init__(self, rows: TaskRows) -> None:
        self._rows = rows

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("otus_build_info", METRICS["otus_build_info"][1],
                                 labels=["version", "python"])  # fmt: skip
        info.add_metric([__version__, platform.python_version()], 1)
        yield info
        yield from task_families(self._rows())


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    try:
        return (host.strip("[]") or "0.0.0.0", int(port))
    except ValueError:
        raise OtusError(f"bad otus.metrics.listen {listen!r}: use host:port or :port") from None


class MetricsServer:
    """Serves the registry on ``listen`` at ``path`` in a background thread."""

    def __init__(self, listen: str, path: str, rows: TaskRows) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(rows))
        host, port = parse_listen(listen)
        handler = MetricsHandler.factory(self.registry)
        wanted = path

        class _Handler(handler):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                if self.path.split("?")[0] != wanted:
                    self.send_error(404, f"metrics are at {wanted}")
                    return
                super().do_GET()

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
