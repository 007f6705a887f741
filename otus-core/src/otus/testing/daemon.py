"""A real Otus daemon process on a temporary socket and data dir, driven through the CLI.

Used by the daemon tests and the end-to-end tests; plugin authors can drive their plugins
through a daemon with it too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OTUS = [sys.executable, "-m", "otus.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaemonProcess:
    def __init__(self, root: Path, metrics_port: int) -> None:
        self.root = root
        self.socket = str(root / "otus.sock")
        self.data_dir = str(root / "data")
        self.metrics_port = metrics_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "daemon.log"

    def env(self) -> dict[str, str]:
        return {**os.environ, "OTUS_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
                "OTUS_LOG_FORMAT": "json"}  # fmt: skip

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*OTUS, "daemon", "--socket", self.socket, "--data-dir", self.data_dir],
                stdout=log, stderr=log, env=self.env(),
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.log.read_text()}")
            if os.path.exists(self.socket) and self.cli("status").returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"daemon did not come up: {self.log.read_text()}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*OTUS, *args]
        if args[0] in ("task", "status", "stats", "reload", "stop"):
            cmd += ["--socket", self.socket]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=60)

    def json(self, *args: str) -> Any:
        out = self.cli(*args, "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)
