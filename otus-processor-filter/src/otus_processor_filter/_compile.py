"""Compiling validated conditions into plain closures, once, when the processor is built.

The hot loop then calls one ``Callable[[Record], bool]`` per rule: no model objects, no dict
look-ups of operator names, no regex or network parsing per record.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from otus import ConfigError, PluginContext, Record
from otus_processor_filter.options import EITHER_FIELDS, INT_FIELDS, PROTOCOL_NAMES, Condition

__all__ = ["Predicate", "compile_condition", "resolve_labels"]

Predicate = Callable[[Record], bool]
ValueTest = Callable[[Any], bool]

#: Address → verdict cache per ``cidr`` test; cleared when it grows past this many entries.
_CIDR_CACHE_MAX = 65_536


def _as_value(field: str, value: str | int) -> str | int:
    """The typed value a test compares with: protocol names become numbers, labels are text."""
    if field == "protocol" and isinstance(value, str):
        return PROTOCOL_NAMES[value.lower()]
    if field in INT_FIELDS:
        return value
    return str(value)


def _cidr_test(networks: str | list[str]) -> ValueTest:
    nets = [
        ipaddress.ip_network(n, strict=False)
        for n in ([networks] if isinstance(networks, str) else networks)
    ]
    cache: dict[str, bool] = {}

    def test(address: str) -> bool:
        verdict = cache.get(address)
        if verdict is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                verdict = False
            else:
                verdict = any(ip in n for n in nets)  # mixed families compare False
            if len(cache) >= _CIDR_CACHE_MAX:
                cache.clear()
            cache[address] = verdict
        return verdict

    return test


def _value_test(cond: Condition, field: str) -> ValueTest:
    """The test on one field value (``None`` for a missing label)."""
    if cond.equals is not None:
        target = _as_value(field, cond.equals)
        return lambda v: bool(v == target)
    if cond.in_ is not None:
        targets = frozenset(_as_value(field, v) for v in cond.in_)
        return lambda v: v in targets
    if cond.prefix is not None:
        prefixes = (cond.prefix,) if isinstance(cond.prefix, str) else tuple(cond.prefix)
        return lambda v: v is not None and bool(v.startswith(prefixes))
    if cond.regex is not None:
        search = re.compile(cond.regex).search
        return lambda v: v is not None and search(v) is not None
    if cond.exists is not None:
        want = cond.exists
        return lambda v: (v is not None) is want
    if cond.cidr is not None:
        return _cidr_test(cond.cidr)
    if cond.range_ is not None:
        low, high = cond.range_
        return lambda v: bool(low <= v <= high)
    raise AssertionError(f"validated condition without an operator: {cond!r}")


def compile_condition(cond: Condition | None) -> Predicate:
    """One closure for a validated condition (``None``: always true)."""
    if cond is None:
        return lambda r: True
    if cond.all_ is not None:
        parts = tuple(compile_condition(c) for c in cond.all_)
        if len(parts) == 1:
            return parts[0]

        def all_of(r: Record) -> bool:
            for p in parts:  # noqa: SIM110 - no generator object per record
                if not p(r):
                    return False
            return True

        return all_of
    if cond.any_ is not None:
        parts = tuple(compile_condition(c) for c in cond.any_)
        if len(parts) == 1:
            return parts[0]

        def any_of(r: Record) -> bool:
            for p in parts:  # noqa: SIM110 - no generator object per record
                if p(r):
                    return True
            return False

        return any_of
    if cond.not_ is not None:
        inner = compile_condition(cond.not_)
        return lambda r: not inner(r)
    field = cond.field
    assert field is not None
    if field.startswith("labels."):
        name = field[len("labels.") :]
        label_test = _value_test(cond, field)
        return lambda r: label_test(r.label(name))  # no decoding of serialised labels
    test = _value_test(cond, field)
    if field in EITHER_FIELDS:
        get_a, get_b = (attrgetter(f) for f in EITHER_FIELDS[field])
        return lambda r: test(get_a(r)) or test(get_b(r))
    get = attrgetter(field)
    return lambda r: test(get(r))


_REF = re.compile(r"\$\$|\$\{([^}]*)\}")


def resolve_labels(labels: dict[str, str], context: PluginContext, where: str) -> dict[str, str]:
    """Label values with ``${node.tags.NAME}``, ``${node.agent_id}``, ``${task.id}`` filled in."""

    def fill(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref is None:
            return "$"
        if ref == "node.agent_id":
            return context.agent_id
        if ref == "task.id":
            return context.task_id
        tag = ref[len("node.tags.") :]
        if tag not in context.node_tags:
            have = ", ".join(sorted(context.node_tags)) or "none"
            raise ConfigError(f"node tag {tag!r} is not set (node.tags has: {have})", path=where)
        return context.node_tags[tag]

    return {k: _REF.sub(fill, v) for k, v in labels.items()}
