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
