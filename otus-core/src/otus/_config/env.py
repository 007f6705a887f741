"""``OTUS_<PATH>`` environment variables override global configuration values.

The name after ``OTUS_`` is the dotted path below the root key ``otus`` with ``_`` in place of
the dots: ``OTUS_LOG_LEVEL=debug`` sets ``otus.log.level``. Key names contain underscores too, so
the name is matched against the model's field names, **longest field name first**, backtracking
when the rest does not resolve: ``OTUS_COMMAND_CHANNEL_HEARTBEAT_INTERVAL`` is
``command_channel.heartbeat.interval``. A double underscore is always a path separator and removes
any doubt (``OTUS_LOG__FILE__MAX_SIZE``). Below a free-form table (``node.tags``) the rest of the
name is the key, lower-cased. Lists take comma-separated values or JSON (``[...]``); tables take
JSON.

Variables whose first part names no section (``OTUS_STRICT_PLUGINS``, ``OTUS_CONFIG``) are not
configuration and are ignored; one that names a section but no key in it is an error, so a typo
never goes unnoticed.
"""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from otus.errors import ConfigError

__all__ = ["PREFIX", "apply_env", "resolve_name"]

PREFIX = "OTUS_"
ROOT = "otus"

Path = tuple[str, ...]


def apply_env(
    data: Mapping[str, Any], file_model: type[BaseModel], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[tuple[int | str, ...], str]]:
    """``data`` with the overrides of ``environ`` applied, and which path came from which
    variable. ``file_model`` is the model of the whole file (root key ``otus``)."""
    root = _model_of(file_model.model_fields[ROOT].annotation)
    assert root is not None
    merged = copy.deepcopy(dict(data))
    origins: dict[tuple[int | str, ...], str] = {}
    for var in sorted(environ):
        if not var.startswith(PREFIX) or len(var) == len(PREFIX):
            continue
        resolved = resolve_name(var[len(PREFIX) :], root)
        if resolved is None:
            continue
        path, annotation = resolved
        value = _coerce(environ[var], annotation, var)
        target = merged.setdefault(ROOT, {})
        for key in path[:-1]:
            child = target.get(key) if isinstance(target, dict) else None
            if not isinstance(child, dict):
                child = {}
                target[key] = child
            target = child
        target[path[-1]] = value
        full_path = (ROOT, *path)
        origins[full_path] = f"environment variable {var}"
    return merged, origins


def resolve_name(name: str, model: type[BaseModel]) -> tuple[Path, Any] | None:
    """The field path and annotation that ``name`` (without prefix) designates below ``model``.

    ``None`` when the first part names no field of ``model`` (not a config variable);
    :class:`ConfigError` when it names a section but not a key in it.
    """
    lowered = name.lower()
    if "__" in lowered:
        groups = [g.split("_") for g in lowered.split("__")]
        tokens = [t for g in groups for t in g]
        cuts = {sum(len(g) for g in groups[: i + 1]) for i in range(len(groups))}
    else:
        tokens = lowered.split("_")
        cuts = set(range(1, len(tokens) + 1))
    if not any(_joined(tokens, 0, j) in model.model_fields for j in range(1, len(tokens) + 1)):
        return None
    found = _resolve(model, tokens, 0, cuts)
    if found is None:
        raise ConfigError(
            "names no configuration key (see docs/configuration.md)",
            source=f"environment variable {PREFIX}{name}",
        )
    return found


def _resolve(
    model: type[BaseModel], tokens: list[str], start: int, cuts: set[int]
) -> tuple[Path, Any] | None:
    for end in range(len(tokens), start, -1):  # longest field name first
        if end not in cuts:
            continue
        key = _joined(tokens, start, end)
        field = model.model_fields.get(key)
        if field is None:
            continue
        annotation = field.annotation
        if end == len(tokens):
            return (key,), annotation
        sub = _model_of(annotation)
        if sub is not None:
            rest = _resolve(sub, tokens, end, cuts)
            if rest is not None:
                return (key, *rest[0]), rest[1]
        elif typing.get_origin(_unwrap(annotation)) is dict:
            value_type = typing.get_args(_unwrap(annotation))[1]
            return (key, _joined(tokens, end, len(tokens))), value_type
    return None


def _joined(tokens: list[str], start: int, end: int) -> str:
    return "_".join(tokens[start:end])


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    inner = _unwrap(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return inner
    return None


def _coerce(raw: str, annotation: Any, var: str) -> Any:
    """Strings stay strings (pydantic converts numbers and booleans); lists and tables parse."""
    inner = _unwrap(annotation)
    origin = typing.get_origin(inner)
    is_table = origin is dict or _model_of(inner) is not None
    if origin is list or is_table:
        text = raw.strip()
        if text.startswith(("[", "{")):
            try:
                return json.loads(text)
            except json.JSONDecodeError as err:
                raise ConfigError(
                    f"invalid JSON: {err.msg} (column {err.colno})",
                    source=f"environment variable {var}",
                ) from None
        if is_table:
            raise ConfigError("expects a JSON object", source=f"environment variable {var}")
        return [item.strip() for item in text.split(",") if item.strip()]
    return raw
