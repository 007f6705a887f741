"""Loki output against a local HTTP receiver that checks the push format and can be down."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from otus._logging.loki import LokiHandler


class _Receiver(BaseHTTPRequestHandler):
    pushes: list[dict[str, Any]] = []  # noqa: RUF012 - one receiver per test via subclass
    status = 204

    def do_POST(self) -> None:
        assert self.path == "/loki/api/v1/push"
        assert self.headers["Content-Type"] == "application/json"
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).pushes.append(body)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _serve(status: int) -> tuple[HTTPServer, type[_Receiver]]:
    handler = type("Rx", (_Receiver,), {"pushes": [], "status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def _logger(handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(f"test-loki-{id(handler)}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    return log


def test_push_format_labels_and_ns_timestamps() -> None:
    server, rx = _serve(204)
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        h = LokiHandler(url, {"app": "otus", "host": "n1"}, batch_size=3, batch_wait=0.1)
        log = _logger(h)
        before = time.time_ns()
        log.info("one")
        log.warning("two")
        log.info("three")
        h.close()
        streams = [s for push in rx.pushes for s in push["streams"]]
        lines = sorted(v[1] for s in streams for v in s["values"])
        assert lines == ["one", "three", "two"]
        for s in streams:
            assert s["stream"]["app"] == "otus"
            assert s["stream"]["host"] == "n1"
            assert s["stream"]["level"] in ("info", "warning")
            for ts, _ in s["values"]:
                assert isinstance(ts, str)
                assert int(ts) >= before - 1_000_000_000
        assert h.stats()["sent"] == 3
    finally:
        server.shutdown()


def test_unreachable_loki_drops_and_counts_without_blocking() -> None:
    # Nothing listens on this port (bound then closed): pushes fail and the buffer fills.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    h = LokiHandler(f"http://127.0.0.1:{port}", {"app": "otus"}, buffer=10, batch_wait=0.05)
    log = _logger(h)
    for i in range(100):
        log.info("line %d", i)
    st = h.stats()
    assert st["dropped"] + st["buffered"] + st["sent"] <= 100
    assert st["dropped"] >= 100 - 10 - h.batch_size
    h.close(timeout=0.5)


def test_slow_loki_never_blocks_the_caller() -> None:
    """The receiver hangs until released: every log call still returns, overflow is counted."""
    release = threading.Event()

    class Hanging(_Receiver):
        pushes: list[dict[str, Any]] = []  # noqa: RUF012

        def do_POST(self) -> None:
            release.wait(30)
            super().do_POST()

    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        h = LokiHandler(
            f"http://127.0.0.1:{server.server_port}", {"app": "otus"},
            buffer=50, batch_size=10, batch_wait=0.05, timeout=30,
        )  # fmt: skip
        log = _logger(h)
        for i in range(500):
            log.info("line %d", i)  # returns although the receiver is stuck
        st = h.stats()
        assert st["dropped"] >= 500 - 50 - 10
        release.set()
        h.close(timeout=10)
        delivered = sum(len(s["values"]) for p in Hanging.pushes for s in p["streams"])
        assert delivered + h.stats()["dropped"] == 500
    finally:
        release.set()
        server.shutdown()


class _RefusesOld(_Receiver):
    """Answers 400 to a push holding a line 'too old' (as Loki does, every time), else 204."""

    pushes: list[dict[str, Any]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).pushes.append(json.loads(body))
        self.send_response(400 if b"too old" in body else 204)
        self.end_headers()


def test_a_batch_loki_refuses_is_dropped_and_counted_not_retried_forever() -> None:
    server = HTTPServer(("127.0.0.1", 0), _RefusesOld)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        h = LokiHandler(
            f"http://127.0.0.1:{server.server_port}", {"app": "otus"},
            batch_size=1, batch_wait=0.05, max_backoff=0.1,
        )  # fmt: skip
        log = _logger(h)
        log.info("too old")
        log.info("after")
        deadline = time.monotonic() + 5
        while h.stats()["sent"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        h.close()
        lines = [v[1] for push in _RefusesOld.pushes for s in push["streams"] for v in s["values"]]
        # A 4xx is final (the same body would be refused again): once, then the next line.
        assert lines == ["too old", "after"]
        assert h.stats() == {"sent": 1, "dropped": 1, "errors": 1, "buffered": 0}
    finally:
        server.shutdown()


def test_static_labels_are_made_legal_loki_label_names() -> None:
    """Node tags (free-form: 'k8s-cluster', 'rack.row') become stream labels; Loki refuses any
    push whose label names are not letters, digits and '_', so they are written that way."""
    server, rx = _serve(204)
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        h = LokiHandler(url, {"app": "otus", "k8s-cluster": "eu1", "rack.row": "3", "9x": "y"},
                        batch_size=1, batch_wait=0.05)  # fmt: skip
        _logger(h).info("one")
        h.close()
        (stream,) = [s["stream"] for push in rx.pushes for s in push["streams"]]
        assert stream == {"app": "otus", "k8s_cluster": "eu1", "rack_row": "3", "_9x": "y",
                          "level": "info"}  # fmt: skip
    finally:
        server.shutdown()
