"""A logging handler that pushes to Loki without ever blocking the caller.

Records go into a bounded in-memory queue; a background thread pushes them in batches (by
size and by time) to ``/loki/api/v1/push`` as JSON streams keyed by the static labels plus
the level. Failed pushes are retried with back-off; when the queue is full (Loki slow or
down) new lines are dropped and counted in :attr:`LokiHandler.dropped`. A batch Loki refuses
with a 4xx other than 408/429 (a line too old or too long, bad labels) is dropped and counted
at once: the same body would be refused again, and retrying it would hold back every later line.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from otus._config.settings import loki_label_name

_log = logging.getLogger("otus.log.loki")
#: 4xx answers that may succeed later (timeout, rate limit): retried like a 5xx.
_RETRY_4XX = frozenset({408, 429})


class LokiHandler(logging.Handler):
    def __init__(
        self,
        url: str,
        labels: dict[str, str],
        *,
        batch_size: int = 500,
        batch_wait: float = 1.0,
        buffer: int = 10_000,
        timeout: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__()
        self.url = url.rstrip("/")
        if not self.url.endswith("/loki/api/v1/push"):
            self.url += "/loki/api/v1/push"
        self.labels = {loki_label_name(k): v for k, v in labels.items()}
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.timeout = timeout
        self.max_backoff = max_backoff
        self._queue: collections.deque[tuple[int, str, str]] = collections.deque()
        self._buffer = buffer
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.sent = 0
        self.errors = 0
        self._refusing = False  # a refusal was logged; logged again after the next success
        self._thread = threading.Thread(target=self._run, name="otus-loki", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        item = (int(record.created * 1e9), record.levelname.lower(), line)
        with self._cond:
            if len(self._queue) >= self._buffer:
                self.dropped += 1
                return
            self._queue.append(item)
            if len(self._queue) >= self.batch_size:
                self._cond.notify()

    def _take(self) -> list[tuple[int, str, str]]:
        with self._cond:
            if not self._queue and not self._closed:
                self._cond.wait(self.batch_wait)
            n = min(len(self._queue), self.batch_size)
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        backoff = 0.5
        pending: list[tuple[int, str, str]] = []
        while True:
            if not pending:
                pending = self._take()
                if not pending:
                    if self._closed:
                        return
                    continue
            outcome = self._push(pending)
            if outcome == "sent":
                self.sent += len(pending)
                pending = []
                backoff = 0.5
                self._refusing = False
                continue
            self.errors += 1
            if outcome != "retry":
                self.dropped += len(pending)
                if not self._refusing:  # once until a push succeeds again
                    self._refusing = True
                    _log.warning("loki refused %d log lines: %s; dropped", len(pending), outcome)
                pending = []
                continue
            if self._closed:
                self.dropped += len(pending)
                return
            time.sleep(backoff)
            backoff = min(self.max_backoff, backoff * 2)

    def _push(self, items: list[tuple[int, str, str]]) -> str:
        """``sent``, ``retry`` (Loki down, slow, 5xx, 408, 429) or why Loki refused the batch."""
        streams: dict[str, list[list[str]]] = {}
        labels: dict[str, str] = self.labels
        for ts, level, line in items:
            streams.setdefault(level, []).append([str(ts), line])
        body: dict[str, Any] = {
            "streams": [
                {"stream": {**labels, "level": level}, "values": values}
                for level, values in streams.items()
            ]
        }
        req = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return "sent" if 200 <= resp.status < 300 else "retry"
        except urllib.error.HTTPError as err:
            if 400 <= err.code < 500 and err.code not in _RETRY_4XX:
                detail = err.read(200).decode(errors="replace").strip()
                return f"HTTP {err.code} {detail}".strip()
            return "retry"
        except (urllib.error.URLError, OSError, ValueError):
            return "retry"

    def close(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
        super().close()

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "dropped": self.dropped, "errors": self.errors,
                "buffered": len(self._queue)}  # fmt: skip
