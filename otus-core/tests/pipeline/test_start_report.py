"""The runner says when its pipeline has started (source open, reporters started) and, when it
could not start, whether the error is permanent (``OtusError.permanent``): what a daemon worker
reports to the daemon (docs/architecture.md, "Starting a task")."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from otus._pipeline.runner import Runner
from otus.errors import CaptureError, ConfigError


def test_started_is_reported_once_before_the_first_batch(fakes: SimpleNamespace) -> None:
    events: list[str] = []
    capturer = fakes.ListCapturer(
        [fakes.sip_batch(2), fakes.sip_batch(2)], on_batch=lambda n: events.append(f"batch {n}")
    )
    pipeline = fakes.make_pipeline(capturer, reporters=[fakes.CollectingReporter()])
    result = Runner(pipeline, on_started=lambda: events.append("started")).run()
    assert result.status == "completed"
    assert (result.error, result.permanent) == (None, False)
    assert events[0] == "started"
    assert events.count("started") == 1
    assert len(events) == 3


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (CaptureError("interface 'x' does not exist", permanent=True), True),
        (CaptureError("interface 'x' is down"), False),
        (OSError("no buffer space"), False),  # not an OtusError: a bug or a passing problem
    ],
)
def test_a_source_that_does_not_open_is_not_started(
    fakes: SimpleNamespace, error: Exception, permanent: bool
) -> None:
    class Refusing(fakes.ListCapturer):  # type: ignore[name-defined,misc]
        def open(self) -> None:
            raise error

    started: list[int] = []
    pipeline = fakes.make_pipeline(Refusing([]), reporters=[fakes.CollectingReporter()])
    result = Runner(pipeline, on_started=lambda: started.append(1)).run()
    assert (result.status, result.permanent, started) == ("failed", permanent, [])
    assert str(error) in (result.error or "")


@pytest.mark.parametrize(
    ("error", "permanent"),
    [(ConfigError("tls.ca_file: no such file", source="kafka"), True), (RuntimeError("x"), False)],
)
def test_a_reporter_that_does_not_start_is_not_started(
    fakes: SimpleNamespace, error: Exception, permanent: bool
) -> None:
    class Refusing(fakes.CollectingReporter):  # type: ignore[name-defined,misc]
        def start(self) -> None:
            raise error

    started: list[Any] = []
    capturer = fakes.ListCapturer([fakes.sip_batch(1)])
    pipeline = fakes.make_pipeline(capturer, reporters=[Refusing()])
    result = Runner(pipeline, on_started=lambda: started.append(1)).run()
    assert (result.status, result.permanent, started) == ("failed", permanent, [])
    assert result.error == f"reporter 'collect' failed to start: {error}"
