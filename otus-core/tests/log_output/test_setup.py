"""Logging set-up: every line has timestamp, level and event (plus task/worker when bound);
the rotating file compresses its backups; the level can change at run time."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from otus._logging.setup import bind, configure_logging, set_level


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    structlog.contextvars.clear_contextvars()
    for h in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(h)


def test_json_lines_carry_timestamp_level_event_task_worker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")
    bind(task="sip-eth0", worker=1)
    logging.getLogger("otus.test").info("stdlib line %d", 7)
    structlog.get_logger("otus.test").warning("structlog line", packets=3)
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert [x["event"] for x in lines] == ["stdlib line 7", "structlog line"]
    for x in lines:
        assert x["task"] == "sip-eth0"
        assert x["worker"] == 1
        assert x["timestamp"].endswith("Z")
    assert [x["level"] for x in lines] == ["info", "warning"]
    assert lines[1]["packets"] == 3


def test_level_changes_at_run_time(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", "json")
    log = logging.getLogger("otus.test")
    log.info("hidden")
    set_level("debug")
    log.debug("shown")
    events = [json.loads(x)["event"] for x in capsys.readouterr().err.splitlines()]
    assert events == ["shown"]


def test_rotating_file_compresses_backups(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "otus.log"
    configure_logging(
        "info", "json", file={"path": str(path), "max_size": 2000, "backups": 2, "compress": True}
    )
    log = logging.getLogger("otus.test")
    for i in range(200):
        log.info("line %d %s", i, "x" * 40)
    backups = sorted(path.parent.glob("otus.log.*.gz"))
    assert len(backups) == 2  # bounded by `backups`
    with gzip.open(backups[0], "rt") as f:
        first = json.loads(f.readline())
    assert first["event"].startswith("line ")
    assert path.stat().st_size <= 2000


def test_a_library_repeating_itself_is_logged_once_a_minute(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """aiokafka logs 'Unable connect to ...' at error level on every reconnect (several a
    second per worker while a broker is down); Otus's own lines are never held back."""
    configure_logging("info", "json")
    kafka = logging.getLogger("aiokafka")
    for _ in range(50):
        kafka.error('Unable connect to "127.0.0.1:9092": [Errno 111] Connect call failed')
    logging.getLogger("aiokafka.cluster").error("Unable to update metadata from [111]")
    for _ in range(3):
        logging.getLogger("otus.test").warning("same otus line")
    events = [json.loads(x)["event"] for x in capsys.readouterr().err.splitlines()]
    assert events == [
        'Unable connect to "127.0.0.1:9092": [Errno 111] Connect call failed',
        "Unable to update metadata from [111]",
        "same otus line",
        "same otus line",
        "same otus line",
    ]


def test_held_back_repeats_are_counted_on_the_next_line_let_through() -> None:
    from otus._logging.setup import RepeatLimiter

    now = [100.0]
    limiter = RepeatLimiter(("aiokafka",), window=60.0, clock=lambda: now[0])

    def record(name: str, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)

    first = record("aiokafka.conn", "down")
    assert limiter.filter(first)
    assert not hasattr(first, "repeats_held_back")
    assert [limiter.filter(record("aiokafka.conn", "down")) for _ in range(4)] == [False] * 4
    assert limiter.filter(record("aiokafka.conn", "other text"))
    assert limiter.filter(record("aiokafkax", "down"))  # not under the prefix
    now[0] += 60.0
    again = record("aiokafka.conn", "down")
    assert limiter.filter(again)
    assert again.repeats_held_back == 4  # type: ignore[attr-defined]


def test_every_handler_gets_the_line_let_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "otus.log"
    handlers = configure_logging("info", "json", file={"path": str(log_file)})
    for _ in range(5):
        logging.getLogger("aiokafka").error("Unable to update metadata from [111]")
    for h in handlers:
        h.flush()
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert len(log_file.read_text().splitlines()) == 1


def test_a_log_file_that_cannot_be_opened_is_one_error_naming_the_key() -> None:
    from otus.errors import OtusError

    with pytest.raises(OtusError) as caught:
        configure_logging("info", "json", file={"path": "/proc/otus-no-dir/otus.log"})
    assert str(caught.value) == (
        "otus.log.file.path: cannot open /proc/otus-no-dir/otus.log: No such file or directory"
    )


def test_every_loki_setting_reaches_the_handler() -> None:
    from otus._config.settings import LokiSettings
    from otus._logging.loki import LokiHandler

    loki = LokiSettings.model_validate(
        {"url": "http://127.0.0.1:9/", "batch_size": 7, "batch_wait": "3s", "buffer": 11,
         "timeout": "30s"}
    ).model_dump()  # fmt: skip
    handlers = configure_logging("info", "json", loki=loki)
    try:
        (h,) = [h for h in handlers if isinstance(h, LokiHandler)]
        assert (h.batch_size, h.batch_wait, h._buffer, h.timeout) == (7, 3.0, 11, 30.0)
    finally:
        configure_logging("info", "json")
