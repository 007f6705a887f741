"""Working plugins: a capturer of given frames, a port filter and a list reporter."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

import otus


class FramesOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frames: list[str] = Field(default_factory=list, description="Frames as hex strings.")


class FramesCapturer(otus.Capturer):
    def __init__(self, options: FramesOptions) -> None:
        self._frames = [bytes.fromhex(f) for f in options.frames]
        self._stopped = False

    def open(self) -> None:
        pass

    def batches(self) -> Iterator[otus.RawBatch]:
        builder = otus.RawBatchBuilder()
        for i, frame in enumerate(self._frames):
            builder.add(frame, ts_ns=i)
        if len(builder) and not self._stopped:
            yield builder.build()

    def stop(self) -> None:
        self._stopped = True


class PortOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ports: list[int] = Field(default_factory=list)
    action: Literal["keep", "drop"] = "keep"


class PortFilter(otus.Processor):
    def __init__(self, options: PortOptions) -> None:
        self._ports = frozenset(options.ports)
        self._keep = options.action == "keep"

    def process(self, records: list[otus.Record]) -> list[otus.Record]:
        ports = self._ports
        return [r for r in records if (r.src_port in ports or r.dst_port in ports) == self._keep]


class ListOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(100, ge=1)


class ListReporter(otus.Reporter):
    def __init__(self, options: ListOptions) -> None:
        self.limit = options.limit
        self.records: list[otus.Record] = []

    def report(self, records: Sequence[otus.Record]) -> None:
        self.records.extend(records[: self.limit - len(self.records)])


@otus.hookimpl
def otus_capturers() -> list[otus.CapturerSpec]:
    return [
        otus.CapturerSpec("fakecap", lambda o, _c: FramesCapturer(o), FramesOptions, "Given frames")
    ]


@otus.hookimpl
def otus_processors() -> list[otus.ProcessorSpec]:
    return [otus.ProcessorSpec("fakeport", lambda o, _c: PortFilter(o), PortOptions, "By port")]


@otus.hookimpl
def otus_reporters() -> list[otus.ReporterSpec]:
    return [otus.ReporterSpec("fakelist", lambda o, _c: ListReporter(o), ListOptions, "To a list")]


#: Lifecycle events seen, so tests can check that the registry's hook relay reaches plugins.
EVENTS: list[tuple[str, str]] = []


@otus.hookimpl
def otus_task_started(task_id: str) -> None:
    EVENTS.append(("started", task_id))


@otus.hookimpl
def otus_task_stopped(task_id: str, status: str) -> None:
    EVENTS.append((status, task_id))
