"""The frozen spec objects that registration hooks return (design §2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from otus.capture import Capturer
from otus.context import PluginContext
from otus.parsing import Parser
from otus.processing import Processor
from otus.reporting import Reporter

__all__ = ["CapturerSpec", "ParserSpec", "PluginSpec", "ProcessorSpec", "ReporterSpec"]

T = TypeVar("T")


@dataclass(frozen=True)
class PluginSpec(Generic[T]):
    """A named, documented factory for one kind of plugin.

    ``factory(options, context)`` receives an instance of ``options_model`` (a pydantic model
    with ``extra="forbid"``) already validated, and the :class:`PluginContext`. Keep heavy
    imports (cffi extensions) inside the factory so that listing plugins stays cheap.
    """

    kind: ClassVar[str] = ""
    name: str
    factory: Callable[[Any, PluginContext], T]
    options_model: type[BaseModel]
    summary: str

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"plugin name {self.name!r} must be alphanumeric with - or _")
        if self.options_model.model_config.get("extra") != "forbid":
            raise ValueError(
                f"{self.kind} {self.name!r}: options_model must set extra='forbid' so typos fail"
            )


@dataclass(frozen=True)
class CapturerSpec(PluginSpec[Capturer]):
    """``max_workers``: most pipelines (``workers``) a task may run with this capturer; ``None``
    for no limit. A source that every worker would read whole (a file) says 1."""

    kind: ClassVar[str] = "capturer"
    max_workers: int | None = None


@dataclass(frozen=True)
class ParserSpec(PluginSpec[Parser]):
    kind: ClassVar[str] = "parser"


@dataclass(frozen=True)
class ProcessorSpec(PluginSpec[Processor]):
    kind: ClassVar[str] = "processor"


@dataclass(frozen=True)
class ReporterSpec(PluginSpec[Reporter]):
    kind: ClassVar[str] = "reporter"
