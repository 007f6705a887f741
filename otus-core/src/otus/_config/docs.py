"""Generate ``configs/otus.toml`` and ``docs/configuration.md`` from the configuration models.

Both files are committed; a test fails when they differ from what this module renders, so the
reference can never drift from the code. Regenerate with::

    python -m otus._config.docs --root .
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from otus._config.settings import Settings
from otus._config.task import PluginRef, TaskConfig
from otus._config.types import parse_duration, parse_size

__all__ = ["main", "render_markdown", "render_toml"]

TOML_PATH = "configs/otus.toml"
MARKDOWN_PATH = "docs/configuration.md"

#: Help for fields of models that carry no descriptions themselves (the decoder options).
EXTRA_HELP = {
    "tunnels": "Which tunnels are opened; records carry the inner addresses.",
    "tunnels.vxlan": "Decapsulate VXLAN.",
    "tunnels.vxlan_ports": "UDP ports recognised as VXLAN (at most 8).",
    "tunnels.geneve": "Decapsulate GENEVE.",
    "tunnels.geneve_ports": "UDP ports recognised as GENEVE (at most 8).",
    "tunnels.gre": "Decapsulate GRE.",
    "tunnels.erspan": "Decapsulate ERSPAN (over GRE).",
    "tunnels.ipip": "Decapsulate IP-in-IP (IPv4/IPv6 in IPv4/IPv6).",
    "ip_reassembly.enabled": "Reassemble IPv4 and IPv6 fragments.",
    "ip_reassembly.timeout": "A datagram not complete within this time is dropped (counted).",
    "ip_reassembly.max_datagrams": "Datagrams being reassembled at once.",
    "ip_reassembly.max_fragments_per_datagram": "More fragments than this: the datagram is "
    "dropped.",
    "ip_reassembly.max_datagram_size": "Largest reassembled datagram in bytes.",
    "ip_reassembly.max_memory": "Memory for fragments; beyond, the oldest datagrams are dropped.",
    "tcp_reassembly.enabled": "Reassemble TCP streams for parsers that ask for them.",
    "tcp_reassembly.idle_timeout": "A flow idle for this long is forgotten.",
    "tcp_reassembly.hole_timeout": "Missing bytes not retransmitted within this time (capture "
    "time) are skipped as a gap; what was held behind them is delivered.",
    "tcp_reassembly.max_flows": "Flows tracked at once.",
    "tcp_reassembly.max_out_of_order_bytes_per_flow": "Out-of-order bytes buffered per flow.",
    "tcp_reassembly.max_memory": "Memory for all buffered segments.",
}

_TOML_HEADER = """\
# Otus global configuration: every key with its default value.
#
# Generated from the configuration models by `python -m otus._config.docs`; do not edit by
# hand. Keys marked "computed" depend on the machine; they are commented out here and take the
# value described. Any key can be overridden by an environment variable OTUS_<PATH>, e.g.
# OTUS_LOG_LEVEL=debug or OTUS_METRICS_LISTEN=:9100 (see docs/configuration.md).
"""


def render_toml() -> str:
    """The documented default global configuration, as TOML."""
    out = [_TOML_HEADER]
    _toml_section(Settings, ("otus",), "", out)
    return "\n".join(out).rstrip() + "\n"


def _toml_section(
    model: type[BaseModel], path: tuple[str, ...], help_key: str, out: list[str]
) -> None:
    scalars, subs = _split(model)
    out.append("")
    out.extend(_comment(_doc(model)))
    out.append(f"[{'.'.join(path)}]")
    for name, field in scalars:
        key = f"{help_key}.{name}".lstrip(".")
        text = _help(field, key)
        extra = _allowed(field.annotation)
        out.extend(_comment(" ".join(p for p in (text, extra) if p)))
        computed = _computed(field)
        if computed is not None:
            out.append(f"# {name} = ...  (computed: {computed})")
        elif field.default is None:
            out.append(f"# {name} = ...  (unset)")
        else:
            out.append(f"{name} = {_toml_value(_default(field), field)}")
    for name, field in subs:
        sub = _submodel(field.annotation)
        assert sub is not None
        _toml_section(sub, (*path, name), _sub_key(help_key, name), out)


def render_markdown() -> str:
    """The configuration reference."""
    out = [_MD_HEADER]
    out.append("## Global configuration (root key `otus`)\n")
    out.append(
        "A complete file with every default is [`configs/otus.toml`](../configs/otus.toml).\n"
    )
    _md_section(Settings, ("otus",), "", out)
    out.append(_MD_TASK_INTRO)
    _md_table(TaskConfig, "", out, tables=True)
    out.append("\nEach entry of `capture`, `parsers`, `processors` and `reporters`:\n")
    _md_table(PluginRef, "", out, tables=True)
    out.append(_MD_TASK_EXAMPLE)
    return "\n".join(out).rstrip() + "\n"


def _md_section(
    model: type[BaseModel], path: tuple[str, ...], help_key: str, out: list[str]
) -> None:
    scalars, subs = _split(model)
    out.append(f"### `{'.'.join(path)}`\n")
    doc = _doc(model)
    if doc:
        out.append(doc + "\n")
    if scalars:
        _md_table(model, help_key, out, tables=False)
        out.append("")
    for name, field in subs:
        sub = _submodel(field.annotation)
        assert sub is not None
        _md_section(sub, (*path, name), _sub_key(help_key, name), out)


def _md_table(model: type[BaseModel], help_key: str, out: list[str], *, tables: bool) -> None:
    """One row per key; nested sections get their own table unless ``tables`` lists them."""
    out.append("| Key | Type | Default | Description |")
    out.append("|---|---|---|---|")
    for name, field in model.model_fields.items():
        if _submodel(field.annotation) is not None and not tables:
            continue
        key = f"{help_key}.{name}".lstrip(".")
        computed = _computed(field)
        if computed is not None:
            default = f"computed: {computed}"
        elif field.is_required():
            default = "required"
        elif field.default is None:
            default = "unset"
        elif _submodel(field.annotation) is not None:
            default = "see below" if model is not TaskConfig else "`otus.core.decoder`"
        else:
            default = f"`{_toml_value(_default(field), field)}`"
        description = _help(field, key).replace("|", "/")
        out.append(
            f"| `{name}` | {_type_name(field.annotation, field)} | {default} | {description} |"
        )


# -- helpers -------------------------------------------------------------------------------------


def _sub_key(help_key: str, name: str) -> str:
    """Key into :data:`EXTRA_HELP`: the path below ``core.decoder``."""
    key = f"{help_key}.{name}".lstrip(".")
    return "" if key == "core.decoder" else key.removeprefix("core.decoder.")


Fields = list[tuple[str, FieldInfo]]


def _split(model: type[BaseModel]) -> tuple[Fields, Fields]:
    scalars: Fields = []
    subs: Fields = []
    for name, field in model.model_fields.items():
        (subs if _submodel(field.annotation) is not None else scalars).append((name, field))
    return scalars, subs


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:  # constraints are not the type
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _submodel(annotation: Any) -> type[BaseModel] | None:
    inner = _unwrap(annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").replace("``", "`").split())


def _help(field: FieldInfo, key: str) -> str:
    return " ".join((field.description or EXTRA_HELP.get(key, "")).split())


def _computed(field: FieldInfo) -> str | None:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("computed"), str):
        return str(extra["computed"])
    return None


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def _kind(field: FieldInfo) -> str | None:
    """``duration`` or ``size`` for fields typed with those value types (possibly optional)."""
    metadata = list(field.metadata)
    for arg in typing.get_args(field.annotation):
        metadata += getattr(arg, "__metadata__", ())
    for meta in metadata:
        func = getattr(meta, "func", None)
        if func is parse_duration:
            return "duration"
        if func is parse_size:
            return "size"
    return None


def _allowed(annotation: Any) -> str:
    inner = _unwrap(annotation)
    if typing.get_origin(inner) is Literal:
        return "One of: " + ", ".join(str(a) for a in typing.get_args(inner)) + "."
    return ""


def _type_name(annotation: Any, field: FieldInfo | None = None) -> str:
    kind = _kind(field) if field is not None else None
    if kind is not None:
        return kind
    inner = _unwrap(annotation)
    origin = typing.get_origin(inner)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(inner))
    if origin is list:
        return f"list of {_type_name(typing.get_args(inner)[0])}"
    if origin is dict:
        value = typing.get_args(inner)[1]
        return "table" if value is Any else f"table of {_type_name(value)}"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", SecretStr: "secret"}
    if inner in names:
        return names[inner]
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return "table"
    return getattr(inner, "__name__", str(inner)).replace("AwareDatetime", "datetime")


def _toml_value(value: Any, field: FieldInfo | None = None) -> str:
    kind = _kind(field) if field is not None else None
    if kind == "duration" and isinstance(value, int | float):
        return json.dumps(format_duration(float(value)))
    if kind == "size" and isinstance(value, int):
        return json.dumps(format_size(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {value!r} as TOML")


def format_duration(seconds: float) -> str:
    """``90.0`` → ``"1m30s"``; ``0.25`` → ``"250ms"`` (what :func:`parse_duration` reads)."""
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    rest = int(seconds)
    if rest != seconds:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def format_size(size: int) -> str:
    """``67108864`` → ``"64MiB"`` (what :func:`parse_size` reads)."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, 96)] if text else []


_MD_HEADER = """\
# Configuration reference

<!-- Generated by `python -m otus._config.docs --root .` from the pydantic models; a test
     checks that this file is current. Edit the models (or the texts in docs.py), not this file. -->

Otus reads two kinds of files, both TOML first, with YAML (`.yaml`, `.yml`) and JSON (`.json`)
accepted with the same schema (the format follows the extension, else the content):

- the **global configuration** (root key `otus`), given with `otus --config FILE`, or
  `$OTUS_CONFIG`, or `/etc/otus/otus.toml` when it exists; with none, the defaults below apply;
- **task files**, one task each (`otus task create -f FILE`, `otus run -f FILE`).

`otus validate FILE...` checks either kind without a daemon. Every problem is reported as one
line naming the file, the field path and the problem, e.g.
`task.toml: parsers[0].config.ports[0]: input should be a valid integer, got 'x'`.

Durations are seconds or strings with units (`250ms`, `30s`, `5m`, `1h30m`, `7d`); sizes are
bytes or strings with units (`512KiB`, `64MiB`, `1GB`: `KiB`/`MiB`/`GiB` are powers of 1024,
`KB`/`MB`/`GB` of 1000).

## Environment overrides

An environment variable `OTUS_<PATH>` overrides the key at `otus.<path>`, where `<PATH>` is
the dotted path in upper case with `_` for the dots: `OTUS_LOG_LEVEL=debug`,
`OTUS_METRICS_LISTEN=:9100`, `OTUS_CORE_DECODER_IP_REASSEMBLY_TIMEOUT=10s`.

- Key names contain underscores too, so the name is matched against the field names of the
  models, **longest field name first**, backtracking if the rest does not resolve:
  `OTUS_COMMAND_CHANNEL_HEARTBEAT_INTERVAL` is `command_channel.heartbeat.interval`.
- A double underscore is always a separator and removes any doubt:
  `OTUS_LOG__FILE__MAX_SIZE=1GiB`.
- Below a free-form table the rest of the name is the key, in lower case:
  `OTUS_NODE_TAGS_SITE=lab` sets `node.tags.site`.
- Lists take comma-separated values or JSON: `OTUS_KAFKA_BROKERS=k1:9092,k2:9092`; tables
  take JSON.
- Variables whose first part names no section (`OTUS_CONFIG`, `OTUS_STRICT_PLUGINS`) are not
  configuration keys and are ignored; one that names a section but no key in it is an error.

Other variables: `OTUS_CONFIG` (the global config file), `OTUS_STRICT_PLUGINS=1` (a plugin that
fails to load is an error instead of a warning in `otus plugins list`).
"""

_MD_TASK_INTRO = """
## Task files

A task file holds one task at its top level. Each plugin entry has a `name` (see
`otus plugins list`) and a `config` table validated by that plugin's options (documented in
the plugin's README); an unknown name is an error listing the names that exist. Task ids must
be unique among the files given to one `otus validate` call or one daemon.
"""

_MD_TASK_EXAMPLE = """
Example (`configs/examples/`):

```toml
id = "sip-from-pcap"
workers = 1

[capture]
name = "pcap"
config = { path = "/var/captures/calls.pcap" }

[[parsers]]
name = "sip"

[[reporters]]
name = "console"
config = { format = "json" }
```
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", default=".", help="repository root (default: .)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in ((TOML_PATH, render_toml()), (MARKDOWN_PATH, render_markdown())):
        target = Path(args.root) / rel
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(rel)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
    for rel in stale:
        print(f"{rel} is out of date: run python -m otus._config.docs --root .", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
