"""build_pipeline: plugins made once, unique names, a TCP reassembler only when wanted."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from otus import Interest
from otus._pipeline.builder import unique_names
from otus.errors import PipelineError

STREAM = Interest(transports=frozenset({"tcp"}), tcp_stream=True)


def test_repeated_plugin_names_get_numbered() -> None:
    assert unique_names(["sip", "filter", "filter", "x", "filter"]) == [
        "sip", "filter", "filter#2", "x", "filter#3",
    ]  # fmt: skip


def test_parsers_keep_their_task_order_as_interest_index(fakes: SimpleNamespace) -> None:
    a, b = fakes.CountingParser(), fakes.CountingParser()
    pipeline = fakes.make_pipeline(fakes.ListCapturer([]), [a, b], [], [])
    assert [(s.index, s.name, s.plugin) for s in pipeline.parsers] == [
        (0, "counting", a), (1, "counting#2", b),
    ]  # fmt: skip
    assert pipeline.context.task_id == "t1"


def test_a_reassembler_exists_only_for_stream_parsers(fakes: SimpleNamespace) -> None:
    datagrams_only = fakes.make_pipeline(fakes.ListCapturer([]), [fakes.CountingParser()])
    assert datagrams_only.reassembler is None
    streams = fakes.make_pipeline(fakes.ListCapturer([]), [fakes.CountingParser(STREAM)])
    assert streams.reassembler is not None
    disabled = fakes.make_pipeline(
        fakes.ListCapturer([]),
        [fakes.CountingParser(STREAM)],
        decoder={"tcp_reassembly": {"enabled": False}},
    )
    assert disabled.reassembler is None


def test_a_parser_without_a_proper_interest_is_refused(fakes: SimpleNamespace) -> None:
    class NoInterest(fakes.CountingParser):  # type: ignore[name-defined,misc]
        def interest(self) -> Interest:
            return "udp"  # type: ignore[return-value]

    with pytest.raises(PipelineError, match="parser 'counting': interest"):
        fakes.make_pipeline(fakes.ListCapturer([]), [NoInterest()])


def test_a_factory_that_raises_names_the_plugin(fakes: SimpleNamespace) -> None:
    from pydantic import BaseModel, ConfigDict

    from otus._config.task import TaskConfig
    from otus._config.validate import ValidatedTask
    from otus._pipeline.builder import build_pipeline
    from otus.context import PluginContext
    from otus.specs import CapturerSpec, ReporterSpec

    def boom(options: object, context: object) -> object:
        raise OSError("cannot reach the broker")

    class Opts(BaseModel):
        model_config = ConfigDict(extra="forbid")

    task = ValidatedTask(
        config=TaskConfig.model_validate(
            {"id": "t", "capture": {"name": "c"}, "reporters": [{"name": "kafka"}]}
        ),
        capture=(CapturerSpec("c", lambda o, c: fakes.ListCapturer([]), Opts, "x"), Opts()),
        reporters=[(ReporterSpec("kafka", boom, Opts, "x"), Opts())],
    )
    with pytest.raises(PipelineError, match="reporter 'kafka' failed to start: OSError: cannot"):
        build_pipeline(task, PluginContext())
