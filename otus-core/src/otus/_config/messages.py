"""Turn a pydantic ``ValidationError`` into one :class:`ConfigError` line a user can act on.

The line names the file, the field path as written in the file (``parsers[0].config.ports``)
and the problem; for an unknown key it suggests the closest known key.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from otus.errors import ConfigError

__all__ = ["config_error", "format_path"]

Loc = tuple[int | str, ...]


def format_path(loc: Sequence[int | str]) -> str:
    """``("parsers", 0, "config", "ports")`` → ``parsers[0].config.ports``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def config_error(
    err: ValidationError,
    *,
    source: str,
    model: type[BaseModel] | None = None,
    prefix: Loc = (),
    sources: Mapping[Loc, str] | None = None,
) -> ConfigError:
    """The first error of ``err`` as a ConfigError; ``prefix`` is prepended to its field path.

    ``model`` (the validated model) lets an unknown key get a "did you mean" hint; ``sources``
    maps a field path to where its value came from when that is not ``source`` (an
    environment variable).
    """
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = _clean_loc(first["loc"])
    problem = _problem(first, model, loc)
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    origin = source
    if sources:
        for key, where in sources.items():
            if loc[: len(key)] == key:
                origin = f"{source} (from {where})" if source else where
                break
    return ConfigError(problem, source=origin, path=format_path(prefix + loc) or None)


def _clean_loc(loc: Sequence[int | str]) -> Loc:
    # Union members and validators appear in pydantic's loc as "function-after[...]", "int"…
    return tuple(p for p in loc if isinstance(p, int) or not any(c in p for c in "[](),"))


def _problem(error: ErrorDetails, model: type[BaseModel] | None, loc: Loc) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        hint = ""
        known = _known_keys(model, loc[:-1]) if model is not None else None
        if known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    message = error["msg"]
    for noise in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(noise)
    if message[1:2].islower():  # "Input should…" → "input should…", but keep "SASL…"
        message = message[:1].lower() + message[1:]
    value = error.get("input")
    if kind not in ("value_error", "assertion_error") and isinstance(value, str | int | float):
        shown = repr(value)
        if len(shown) <= 60:
            message += f", got {shown}"
    return message


def _known_keys(model: type[BaseModel], loc: Loc) -> list[str] | None:
    """The field names of the (sub)model at ``loc``, or None when it is not a model."""
    target: Any = model
    for part in loc:
        target = _unwrap(target)
        if isinstance(part, int):
            args = typing.get_args(target)
            if not args:
                return None
            target = args[0]
        elif isinstance(target, type) and issubclass(target, BaseModel):
            field = _fields_as_spelled(target).get(part)
            if field is None:
                return None
            target = field.annotation
        else:
            return None
    target = _unwrap(target)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return sorted(_fields_as_spelled(target))
    return None


def _fields_as_spelled(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the key a file uses: the alias where there is one (``in`` for
    ``in_``), as pydantic's error locations have them."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
