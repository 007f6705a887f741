"""Validation of task files and of any file ``otus validate`` is given.

A task is valid when its own model is, every plugin it names is installed and loaded, and every
plugin's ``config`` table passes that plugin's options model. The result keeps each spec with its
validated options so the pipeline builder never validates twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from otus._config.loader import load_document
from otus._config.messages import config_error
from otus._config.settings import Settings, load_settings
from otus._config.task import TaskConfig
from otus._decode.options import DecoderOptions
from otus._plugins.discovery import describe_error
from otus._plugins.registry import PluginRegistry
from otus.errors import ConfigError, PluginError
from otus.specs import CapturerSpec, ParserSpec, PluginSpec, ProcessorSpec, ReporterSpec

__all__ = [
    "ValidatedFile",
    "ValidatedTask",
    "check_unique_ids",
    "load_task_file",
    "validate_file",
    "validate_task",
]


@dataclass(frozen=True)
class ValidatedTask:
    """A task whose every part has been checked, with each plugin's spec and options."""

    config: TaskConfig
    capture: tuple[CapturerSpec, BaseModel]
    parsers: list[tuple[ParserSpec, BaseModel]] = field(default_factory=list)
    processors: list[tuple[ProcessorSpec, BaseModel]] = field(default_factory=list)
    reporters: list[tuple[ReporterSpec, BaseModel]] = field(default_factory=list)
    source: str = ""

    @property
    def id(self) -> str:
        return self.config.id


@dataclass(frozen=True)
class ValidatedFile:
    """What ``otus validate`` found in one file."""

    source: str
    kind: Literal["config", "task"]
    settings: Settings | None = None
    task: ValidatedTask | None = None

    def describe(self) -> str:
        if self.task is not None:
            t = self.task
            parts = [f"capture {t.capture[0].name}"]
            parts += [f"{len(items)} {name}" for name, items in _stages(t) if items]
            return f"task {t.id!r} ({', '.join(parts)})"
        return "global config"


def _stages(task: ValidatedTask) -> list[tuple[str, Sequence[Any]]]:
    return [("parser(s)", task.parsers), ("processor(s)", task.processors),
            ("reporter(s)", task.reporters)]  # fmt: skip


def validate_task(
    data: Mapping[str, Any],
    *,
    source: str,
    registry: PluginRegistry,
    decoder_defaults: DecoderOptions | None = None,
    node_tags: Mapping[str, str] | None = None,
) -> ValidatedTask:
    """Validate a task given as plain data; :class:`ConfigError` on the first problem.

    ``decoder_defaults`` (``otus.core.decoder`` of the global config) is what the task's
    ``[decoder]`` table is merged over. ``node_tags``, where the node running the task is
    known (the daemon), reach the plugins' option validators as the pydantic validation
    context ``{"node_tags": {...}}``, so that an option naming a tag the node lacks fails here.
    """
    if not data:
        raise ConfigError(
            "empty task: a task needs at least id, capture and reporters", source=source
        )
    merged = dict(data)
    if decoder_defaults is not None and isinstance(merged.get("decoder", {}), Mapping):
        merged["decoder"] = _deep_merge(decoder_defaults.model_dump(), merged.get("decoder", {}))
    try:
        config = TaskConfig.model_validate(merged)
    except ValidationError as err:
        raise config_error(err, source=source, model=TaskConfig) from None

    context = None if node_tags is None else {"node_tags": dict(node_tags)}
    capture = _plugin(registry, "capturer", config.capture.name, config.capture.config,
                      source, ("capture",), context)  # fmt: skip
    capturer = _as(CapturerSpec, capture[0])
    if capturer.max_workers is not None and config.workers > capturer.max_workers:
        raise ConfigError(
            f"the {capturer.name} capturer runs {_pipelines(capturer.max_workers)} a task, got "
            f"{config.workers} (each worker would read the same source and report it again)",
            source=source,
            path="workers",
        )
    return ValidatedTask(
        config=config,
        capture=(capturer, capture[1]),
        parsers=[
            (_as(ParserSpec, s), o)
            for s, o in _plugins(registry, "parser", config, source, context)
        ],
        processors=[
            (_as(ProcessorSpec, s), o)
            for s, o in _plugins(registry, "processor", config, source, context)
        ],
        reporters=[
            (_as(ReporterSpec, s), o)
            for s, o in _plugins(registry, "reporter", config, source, context)
        ],
        source=source,
    )


def _pipelines(n: int) -> str:
    return "one pipeline" if n == 1 else f"at most {n} pipelines"


def load_task_file(
    path: str | os.PathLike[str],
    registry: PluginRegistry,
    *,
    decoder_defaults: DecoderOptions | None = None,
) -> ValidatedTask:
    """Read and validate one task file."""
    source = os.fspath(path)
    data = load_document(path)
    if "otus" in data:
        raise ConfigError(
            "this is a global config file (root key 'otus'), not a task", source=source
        )
    return validate_task(data, source=source, registry=registry, decoder_defaults=decoder_defaults)


def check_unique_ids(tasks: Iterable[ValidatedTask]) -> None:
    """:class:`ConfigError` when two tasks of one set share an id."""
    seen: dict[str, ValidatedTask] = {}
    for task in tasks:
        first = seen.setdefault(task.id, task)
        if first is not task:
            raise ConfigError(
                f"duplicate task id {task.id!r} (also in {first.source})",
                source=task.source,
                path="id",
            )


def validate_file(path: str | os.PathLike[str], registry: PluginRegistry) -> ValidatedFile:
    """Validate a global config (root key ``otus``) or a task file, whichever ``path`` is."""
    source = os.fspath(path)
    data = load_document(path)
    if "otus" in data:
        return ValidatedFile(source, "config", settings=load_settings(path, environ={}))
    task = validate_task(data, source=source, registry=registry)
    return ValidatedFile(source, "task", task=task)


def _plugins(
    registry: PluginRegistry,
    kind: str,
    config: TaskConfig,
    source: str,
    context: dict[str, Any] | None = None,
) -> list[tuple[PluginSpec[Any], BaseModel]]:
    refs = getattr(config, f"{kind}s")
    return [
        _plugin(registry, kind, ref.name, ref.config, source, (f"{kind}s", i), context)
        for i, ref in enumerate(refs)
    ]


def _plugin(
    registry: PluginRegistry,
    kind: str,
    name: str,
    options: Mapping[str, Any],
    source: str,
    where: tuple[int | str, ...],
    context: dict[str, Any] | None = None,
) -> tuple[PluginSpec[Any], BaseModel]:
    try:
        spec = registry.get(kind, name)
    except PluginError as err:
        raise ConfigError(str(err), source=source, path=_dotted((*where, "name"))) from None
    try:
        return spec, spec.options_model.model_validate(dict(options), context=context)
    except ValidationError as err:
        raise config_error(
            err, source=source, model=spec.options_model, prefix=(*where, "config")
        ) from None
    except Exception as err:  # a bug in the plugin's validators: still one line, no traceback
        raise ConfigError(
            f"{kind} {name!r} could not check its options: {describe_error(err)}",
            source=source,
            path=_dotted((*where, "config")),
        ) from None


def _as(cls: type[Any], spec: PluginSpec[Any]) -> Any:
    if not isinstance(spec, cls):  # registry guarantees it; keep mypy and readers sure
        raise PluginError(f"{spec.name!r} is not a {cls.__name__}")
    return spec


def _dotted(loc: tuple[int | str, ...]) -> str:
    from otus._config.messages import format_path

    return format_path(loc)


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
