"""A third-party plugin returning the wrong thing from parse/process: its batch is lost and
counted against it, with one log line naming it; the run goes on (nothing blames the capturer)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from otus import Datagram, Record
from otus._pipeline.runner import Runner


def _run(fakes: SimpleNamespace, parser: Any, processors: list[Any]) -> tuple[Any, Any]:
    reporter = fakes.CollectingReporter()
    capturer = fakes.ListCapturer([fakes.sip_batch(2) for _ in range(3)])
    pipeline = fakes.make_pipeline(capturer, [parser], processors, [reporter])
    return Runner(pipeline).run(), reporter


def test_a_parser_returning_things_that_are_not_records(
    fakes: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    class DictParser(fakes.CountingParser):  # type: ignore[name-defined,misc]
        def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
            good = super().parse(datagrams)
            return [*good, {"not": "a record"}] if self.calls == 2 else good  # type: ignore[list-item]

    with caplog.at_level(logging.ERROR, logger="otus.pipeline"):
        result, reporter = _run(fakes, DictParser(), [])
    assert result.status == "completed", result.error
    assert len(reporter.records) == 6  # the two real records of batch 2 still go through
    c = result.snapshot["counters"]
    assert c["errors.parse.counting"] == 1
    assert c["lost.parse.counting"] == 1
    assert c["parse.counting.records"] == 6
    assert "parse counting raised TypeError: returned dict, not otus.Record" in caplog.text


@pytest.mark.parametrize("result", [None, 42, (r for r in ())])
def test_a_parser_returning_something_other_than_a_list(
    fakes: SimpleNamespace, result: object
) -> None:
    class OddParser(fakes.CountingParser):  # type: ignore[name-defined,misc]
        def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
            records = super().parse(datagrams)
            return result if self.calls == 1 else records  # type: ignore[return-value]

    run, reporter = _run(fakes, OddParser(), [])
    assert run.status == "completed", run.error
    assert len(reporter.records) == 4
    if result is not None:  # None is "nothing", as an empty list
        assert run.snapshot["counters"]["errors.parse.counting"] == 1
        assert run.snapshot["counters"]["lost.parse.counting"] == 2


def test_a_parser_returning_a_tuple_of_records_is_taken(fakes: SimpleNamespace) -> None:
    class TupleParser(fakes.CountingParser):  # type: ignore[name-defined,misc]
        def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
            return tuple(super().parse(datagrams))  # type: ignore[return-value]

    run, reporter = _run(fakes, TupleParser(), [])
    assert len(reporter.records) == 6
    assert run.snapshot["counters"]["errors.parse.counting"] == 0


@pytest.mark.parametrize("result", [None, 42, "records"])
def test_a_processor_returning_something_other_than_a_list(
    fakes: SimpleNamespace, caplog: pytest.LogCaptureFixture, result: object
) -> None:
    class OddProcessor(fakes.KeepEvery):  # type: ignore[name-defined,misc]
        def process(self, records: list[Record]) -> list[Record]:
            kept = super().process(records)
            return result if self.calls == 2 else kept  # type: ignore[return-value]

    with caplog.at_level(logging.ERROR, logger="otus.pipeline"):
        run, reporter = _run(fakes, fakes.CountingParser(), [OddProcessor()])
    assert run.status == "completed", run.error
    assert len(reporter.records) == 4
    c = run.snapshot["counters"]
    assert c["errors.process.keep"] == 1
    assert c["lost.process.keep"] == 2
    assert f"process keep raised TypeError: returned {type(result).__name__}, not a list" in (
        caplog.text
    )


def test_a_list_subclass_is_a_list(fakes: SimpleNamespace) -> None:
    class Batch(list):  # type: ignore[type-arg]
        pass

    class SubclassParser(fakes.CountingParser):  # type: ignore[name-defined,misc]
        def parse(self, datagrams: Sequence[Datagram]) -> list[Record]:
            return Batch(super().parse(datagrams))

    class SubclassProcessor(fakes.KeepEvery):  # type: ignore[name-defined,misc]
        def process(self, records: list[Record]) -> list[Record]:
            return Batch(super().process(records))

    run, reporter = _run(fakes, SubclassParser(), [SubclassProcessor()])
    assert len(reporter.records) == 6
    c = run.snapshot["counters"]
    assert c["errors.parse.counting"] == c["errors.process.keep"] == 0
