"""Read a configuration or task file into plain data: TOML first, YAML and JSON accepted.

The format follows the extension (``.toml``, ``.yaml``/``.yml``, ``.json``); any other name is
recognised by its content. A syntax error becomes one :class:`ConfigError` line with the file and
line number.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from otus.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["detect_format", "load_document", "parse_document"]

_EXTENSIONS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)|\s*\(at end of document\)")


def detect_format(path: str | os.PathLike[str], text: str) -> str:
    """``toml``, ``yaml`` or ``json``: by extension, else by the first significant character."""
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is not None:
        return fmt
    stripped = text.lstrip()
    if stripped.startswith(("{", "[{")):
        return "json"
    if stripped.startswith("---") or re.match(r"^[\w.-]+:(\s|$)", stripped):
        return "yaml"
    return "toml"


def load_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's top-level mapping; :class:`ConfigError` when unreadable or malformed."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is dropped
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text (byte {err.start})", source=source) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}", source=source) from None
    return parse_document(text, source=source, fmt=detect_format(path, text))


def parse_document(text: str, *, source: str, fmt: str) -> dict[str, Any]:
    """Parse ``text`` as ``fmt``; the top level must be a table/mapping."""
    if fmt == "toml":
        data: object = _parse_toml(text, source)
    elif fmt == "yaml":
        data = _parse_yaml(text, source)
    elif fmt == "json":
        data = _parse_json(text, source)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"the top level must be a table of keys, not a {type(data).__name__}", source=source
        )
    return data


def _parse_toml(text: str, source: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        m = _TOML_POSITION.search(message)
        problem = _TOML_POSITION.sub("", message)
        if m and m.group(1):
            where = f"{source}:{m.group(1)}"
            problem = f"{problem} (column {m.group(2)})"
        else:
            where = source
        raise ConfigError(f"TOML syntax error: {_lower_first(problem)}", source=where) from None


def _parse_yaml(text: str, source: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        where = f"{source}:{err.problem_mark.line + 1}" if err.problem_mark else source
        problem = " ".join(str(err.problem or err.context or "invalid YAML").split())
        raise ConfigError(f"YAML syntax error: {problem}", source=where) from None
    except yaml.YAMLError as err:
        raise ConfigError(
            f"YAML syntax error: {' '.join(str(err).split())}", source=source
        ) from None


def _parse_json(text: str, source: str) -> object:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as err:
        problem = f"{_lower_first(err.msg)} (column {err.colno})"
        raise ConfigError(
            f"JSON syntax error: {problem}", source=f"{source}:{err.lineno}"
        ) from None
    except ValueError as err:
        raise ConfigError(f"JSON error: {err}", source=source) from None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
