"""The options of the filter processor: rules, conditions and the default action.

Everything that could make a rule silently never match (an unknown field such as ``lables.x`` or
``src_prot``, a label name that is not ``{protocol}.{field}`` in lower case, ``cidr`` on a port, a
bad regex or network) is a validation error here, so it is reported with its field path when the
task is created, never discovered as an empty result later.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import socket
from typing import Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "EITHER_FIELDS",
    "INT_FIELDS",
    "IP_FIELDS",
    "LABEL_NAME",
    "PROTOCOL_NAMES",
    "STR_FIELDS",
    "Condition",
    "FilterOptions",
    "Rule",
]

#: ``{protocol}.{field}`` in lower case: ``sip.method``, ``sip.call_id``, ``site.name``.
LABEL_NAME = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$")
#: Record fields holding strings and ints; ``ip`` and ``port`` match either end of the flow.
IP_FIELDS = frozenset({"src_ip", "dst_ip", "ip"})
STR_FIELDS = IP_FIELDS | {"payload_type"}
INT_FIELDS = frozenset({"src_port", "dst_port", "port", "protocol"})
EITHER_FIELDS = {"ip": ("src_ip", "dst_ip"), "port": ("src_port", "dst_port")}
PROTOCOL_NAMES = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132}
_FIELDS = sorted(STR_FIELDS | INT_FIELDS)
_OPERATORS = ("equals", "in_", "prefix", "regex", "exists", "cidr", "range_")
_TEMPLATE = re.compile(r"\$\$|\$\{([^}]*)\}|\$")
_TEMPLATE_REF = re.compile(r"^(?:node\.tags\.[A-Za-z0-9_.-]+|node\.agent_id|task\.id)$")

Scalar = Union[str, int]  # noqa: UP007 - pydantic evaluates this at runtime on 3.10


def _op_name(attr: str) -> str:
    return attr.rstrip("_")


class Condition(BaseModel):
    """Either a test of one ``field`` with one operator, or ``all``/``any``/``not`` of conditions.

    Operators: ``equals``, ``in`` (a list), ``prefix`` (a string or list), ``regex`` (searched
    anywhere in the value), ``exists`` (labels only), ``cidr`` (addresses; a network or list of
    them, IPv4 and IPv6), ``range`` (ints, ``[low, high]`` inclusive).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    field: str | None = Field(None, description="src_ip, dst_ip, ip, src_port, dst_port, port, "
                              "protocol, payload_type or labels.<protocol>.<field>")  # fmt: skip
    equals: Scalar | None = Field(None, description="The value equals this.")
    in_: list[Scalar] | None = Field(None, alias="in", description="The value is one of these.")
    prefix: str | list[str] | None = Field(None, description="The value starts with this.")
    regex: str | None = Field(None, description="The regex matches somewhere in the value.")
    exists: bool | None = Field(None, description="The label is (true) or is not (false) set.")
    cidr: str | list[str] | None = Field(None, description="The address is in these networks.")
    range_: tuple[int, int] | None = Field(None, alias="range", description="low <= value <= high")
    all_: list[Condition] | None = Field(None, alias="all", description="Every one matches.")
    any_: list[Condition] | None = Field(None, alias="any", description="At least one matches.")
    not_: Condition | None = Field(None, alias="not", description="This one does not match.")

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str | None) -> str | None:
        if value is None or value in STR_FIELDS or value in INT_FIELDS:
            return value
        if value.startswith("labels."):
            name = value[len("labels.") :]
            if LABEL_NAME.match(name):
                return value
            raise ValueError(
                f"label name {name!r} is not '{{protocol}}.{{field}}' in lower case "
                "(e.g. labels.sip.method): no record can carry it"
            )
        head, _, rest = value.partition(".")
        if rest and difflib.get_close_matches(head, ["labels"], n=1):
            hint = f" (did you mean 'labels.{rest}'?)"
        else:
            close = difflib.get_close_matches(value, _FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown field {value!r}{hint}; use one of {', '.join(_FIELDS)} "
            "or labels.<protocol>.<field>"
        )

    @field_validator("equals", "in_", mode="before")
    @classmethod
    def _no_bools(cls, value: object) -> object:
        # pydantic would take true as 1: a port or label never equals it as written.
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) for v in values):
            raise ValueError("true/false is not a value a field holds; write a number or text")
        return value

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regex {value!r}: {exc}") from exc
        return value

    @field_validator("cidr")
    @classmethod
    def _valid_networks(cls, value: str | list[str] | None) -> str | list[str] | None:
        for net in [value] if isinstance(value, str) else value or []:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"bad network {net!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _one_shape(self) -> Condition:
        groups = [n for n in ("all_", "any_", "not_") if getattr(self, n) is not None]
        ops = [n for n in _OPERATORS if getattr(self, n) is not None]
        if groups:
            if len(groups) > 1 or ops or self.field is not None:
                used = [_op_name(n) for n in groups + ops] + (["field"] * (self.field is not None))
                raise ValueError(f"a condition is one of all/any/not or a field test, not {used}")
            if groups[0] != "not_" and not getattr(self, groups[0]):
                raise ValueError(f"'{_op_name(groups[0])}' needs at least one condition")
            return self
        if self.field is None:
            raise ValueError("a condition needs 'field' and an operator, or all/any/not")
        if len(ops) != 1:
            raise ValueError(
                f"field {self.field!r} needs exactly one operator of "
                f"{', '.join(_op_name(o) for o in _OPERATORS)}; got {[_op_name(o) for o in ops]}"
            )
        self._check_operator(self.field, ops[0])
        return self

    def _check_operator(self, field: str, op: str) -> None:
        is_label = field.startswith("labels.")
        is_int = field in INT_FIELDS
        name = _op_name(op)
        if op == "exists" and not is_label:
            raise ValueError(f"'exists' applies to labels only; {field!r} is always present")
        if op == "cidr" and field not in IP_FIELDS:
            raise ValueError(f"'cidr' applies to {sorted(IP_FIELDS)}, not {field!r}")
        if op == "range_":
            if not is_int:
                raise ValueError(f"'range' applies to {sorted(INT_FIELDS)}, not {field!r}")
            low, high = self.range_ or (0, 0)
            if not 0 <= low <= high <= 65535:
                raise ValueError(f"range [{low}, {high}] must satisfy 0 <= low <= high <= 65535")
        if op in ("prefix", "regex") and is_int:
            raise ValueError(f"'{name}' applies to text fields, not {field!r}")
        if op == "prefix" and field in IP_FIELDS:
            prefixes = [self.prefix] if isinstance(self.prefix, str) else list(self.prefix or [])
            for p in prefixes:
                if "/" in p:
                    raise ValueError(f"{p!r} is a network: use cidr = {p!r} for {field!r}")
        if op in ("equals", "in_"):
            values = [self.equals] if op == "equals" else list(self.in_ or [])
            for value in values:
                if (
                    is_int
                    and isinstance(value, str)
                    and not (field == "protocol" and value.lower() in PROTOCOL_NAMES)
                ):
                    raise ValueError(
                        f"{field!r} is a number; {value!r} can never equal it"
                        + (f" (names: {', '.join(PROTOCOL_NAMES)})" if field == "protocol" else "")
                    )
                if field in STR_FIELDS and isinstance(value, int):
                    raise ValueError(f"{field!r} is text; write {str(value)!r} in quotes")
                if is_int and isinstance(value, int):
                    high = 255 if field == "protocol" else 65535
                    if not 0 <= value <= high:
                        raise ValueError(f"{field!r} is 0 to {high}; {value} can never equal it")
                if field in IP_FIELDS and isinstance(value, str):
                    _check_address(field, value)
            if op == "in_" and not values:
                raise ValueError("'in' needs at least one value")


def _check_address(field: str, value: str) -> None:
    """``value`` as records show addresses (``inet_ntop``), else a ``ValueError`` saying why."""
    if "/" in value:
        raise ValueError(f"{value!r} is a network: use cidr = {value!r} for {field!r}")
    family = socket.AF_INET6 if ":" in value else socket.AF_INET
    try:
        shown = socket.inet_ntop(family, socket.inet_pton(family, value))
    except OSError:
        raise ValueError(
            f"{value!r} is not an IP address; {field!r} holds addresses such as 10.0.0.1 or"
            " 2001:db8::1 (networks: cidr)"
        ) from None
    if shown != value:
        raise ValueError(
            f"records show this address as {shown!r}: write {shown!r} (or cidr = {value!r})"
        )


class Rule(BaseModel):
    """When ``match`` holds (or always, without ``match``), apply ``action``.

    ``keep`` and ``drop`` end the evaluation of a record; ``label`` sets ``labels`` and goes on
    with the next rule. Label values may use ``${node.tags.NAME}``, ``${node.agent_id}`` and
    ``${task.id}`` (``$$`` is a literal ``$``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Names the rule in statistics (dropped.<name>); default: its index.",
    )
    match: Condition | None = Field(None, description="The condition; omitted: every record.")
    action: Literal["keep", "drop", "label"] = Field(description="keep, drop or label.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="For action 'label': the labels to add or overwrite."
    )

    @field_validator("labels")
    @classmethod
    def _label_names_and_templates(
        cls, labels: dict[str, str], info: ValidationInfo
    ) -> dict[str, str]:
        # Where the node is known (the daemon's task create), its tags come as the context.
        node_tags = (info.context or {}).get("node_tags")
        for name, value in labels.items():
            if not LABEL_NAME.match(name):
                raise ValueError(f"label name {name!r} is not '{{protocol}}.{{field}}' lower case")
            for m in _TEMPLATE.finditer(value):
                if m.group(0) == "$":
                    raise ValueError(f"{name}: lone '$' in {value!r}; write '$$' for a dollar")
                ref = m.group(1)
                if ref is not None and not _TEMPLATE_REF.match(ref):
                    raise ValueError(
                        f"{name}: unknown reference ${{{ref}}}; use ${{node.tags.NAME}}, "
                        "${node.agent_id} or ${task.id}"
                    )
                tag = ref[len("node.tags.") :] if ref and ref.startswith("node.tags.") else None
                if tag is not None and node_tags is not None and tag not in node_tags:
                    have = ", ".join(sorted(node_tags)) or "none"
                    raise ValueError(
                        f"{name}: node tag {tag!r} is not set on this node "
                        f"(otus.node.tags has: {have})"
                    )
        return labels

    @model_validator(mode="after")
    def _labels_iff_label(self) -> Rule:
        if self.action == "label" and not self.labels:
            raise ValueError(
                "action 'label' needs 'labels', e.g. labels = { \"site.name\" = \"x\" }"
            )
        if self.action != "label" and self.labels:
            raise ValueError(f"'labels' is only for action 'label', not {self.action!r}")
        return self


class FilterOptions(BaseModel):
    """Rules evaluated in order per record; ``default`` applies when none kept or dropped it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list, description="The rules, in order.")
    default: Literal["keep", "drop"] = Field(
        "keep", description="What happens to a record no keep/drop rule matched."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> FilterOptions:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            key = rule.name if rule.name is not None else str(i)
            if key in seen or key == "default":
                raise ValueError(f"rules[{i}]: rule name {key!r} is used twice (or is 'default')")
            seen.add(key)
        return self
