"""Rules that can never match are validation errors, with the field path."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from otus_processor_filter import FilterOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _error(config: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        FilterOptions.model_validate(config)
    err = info.value.errors()[0]
    return ".".join(str(p) for p in err["loc"]), err["msg"]


def _rule(match: dict[str, Any], action: str = "drop") -> dict[str, Any]:
    return {"rules": [{"action": action, "match": match}]}


@pytest.mark.parametrize(
    ("match", "path", "message"),
    [
        ({"field": "src_prot", "equals": 1}, "rules.0.match.field", "did you mean 'src_port'"),
        (
            {"field": "lables.sip.method", "equals": "X"},
            "rules.0.match.field",
            "did you mean 'labels.sip.method'",
        ),
        ({"field": "labels.SIP.Method", "equals": "X"}, "rules.0.match.field", "lower case"),
        ({"field": "labels.method", "equals": "X"}, "rules.0.match.field", "{protocol}.{field}"),
        ({"field": "src_port", "cidr": "10.0.0.0/8"}, "rules.0.match", "'cidr' applies to"),
        ({"field": "src_ip", "range": [1, 2]}, "rules.0.match", "'range' applies to"),
        ({"field": "src_ip", "exists": True}, "rules.0.match", "labels only"),
        ({"field": "dst_port", "equals": "5060"}, "rules.0.match", "is a number"),
        ({"field": "protocol", "equals": "udpp"}, "rules.0.match", "names: icmp"),
        ({"field": "payload_type", "equals": 5}, "rules.0.match", "write '5' in quotes"),
        ({"field": "dst_port", "prefix": "50"}, "rules.0.match", "text fields"),
        ({"field": "dst_port", "range": [5080, 5060]}, "rules.0.match", "low <= high"),
        ({"field": "src_ip", "cidr": "10.0.0.300/8"}, "rules.0.match.cidr", "bad network"),
        ({"field": "labels.sip.method", "regex": "(["}, "rules.0.match.regex", "bad regex"),
        ({"field": "labels.sip.method", "in": []}, "rules.0.match", "at least one value"),
        ({"field": "src_ip", "equals": "a", "prefix": "b"}, "rules.0.match", "exactly one"),
        ({"field": "src_ip"}, "rules.0.match", "exactly one operator"),
        ({"equals": "x"}, "rules.0.match", "needs 'field'"),
        ({"all": []}, "rules.0.match", "at least one condition"),
        ({"all": [{"field": "ip", "equals": "10.0.0.1"}], "field": "ip"}, "rules.0.match", "not ["),
        # Values that can never equal what a record carries (all validated before this).
        ({"field": "src_ip", "equals": "10.0.0.0/8"}, "rules.0.match", "a network: use cidr"),
        ({"field": "ip", "in": ["10.0.0.1", "sbc.example"]}, "rules.0.match", "not an IP address"),
        ({"field": "ip", "equals": "2001:DB8::7"}, "rules.0.match", "write '2001:db8::7'"),
        ({"field": "dst_ip", "prefix": "10.1.0.0/16"}, "rules.0.match", "a network: use cidr"),
        ({"field": "dst_port", "equals": 70000}, "rules.0.match", "0 to 65535"),
        ({"field": "port", "in": [5060, -1]}, "rules.0.match", "0 to 65535"),
        ({"field": "protocol", "equals": 300}, "rules.0.match", "0 to 255"),
        ({"field": "src_port", "equals": True}, "rules.0.match.equals", "true/false"),
        ({"field": "labels.sip.x", "in": ["a", False]}, "rules.0.match.in", "true/false"),
        (
            {"any": [{"not": {"field": "lables.x.y", "exists": True}}]},
            "rules.0.match.any.0.not.field",
            "unknown field",
        ),
        ({"field": "src_ip", "equal": "a"}, "rules.0.match.equal", "Extra inputs"),
    ],
)
def test_impossible_conditions_are_rejected(match: dict[str, Any], path: str, message: str) -> None:
    loc, msg = _error(_rule(match))
    assert loc == path
    assert message in msg


@pytest.mark.parametrize(
    ("rule", "path", "message"),
    [
        ({"action": "label"}, "rules.0", "needs 'labels'"),
        ({"action": "drop", "labels": {"a.b": "c"}}, "rules.0", "only for action 'label'"),
        ({"action": "label", "labels": {"Site": "x"}}, "rules.0.labels", "lower case"),
        (
            {"action": "label", "labels": {"site.name": "${node.tag.x}"}},
            "rules.0.labels",
            "unknown",
        ),
        ({"action": "label", "labels": {"site.name": "5$"}}, "rules.0.labels", "lone '$'"),
        ({"action": "reject"}, "rules.0.action", "Input should be"),
        ({"action": "drop", "name": "has space"}, "rules.0.name", "should match"),
    ],
)
def test_bad_rules_are_rejected(rule: dict[str, Any], path: str, message: str) -> None:
    loc, msg = _error({"rules": [rule]})
    assert loc == path
    assert message in msg


def test_duplicate_rule_names_are_rejected() -> None:
    loc, msg = _error({"rules": [{"action": "drop", "name": "x"}, {"action": "keep", "name": "x"}]})
    assert loc == ""
    assert "used twice" in msg


def test_unknown_top_level_key_and_default() -> None:
    assert _error({"rulez": []})[0] == "rulez"
    assert _error({"default": "label"})[0] == "default"


def test_readme_example_is_valid() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", readme, re.S)
    config = tomllib.loads(block)["processors"][0]
    assert config["name"] == "filter"
    options = FilterOptions.model_validate(config["config"])
    assert [r.name for r in options.rules] == ["drop-options", "carrier", "sip", "scanners"]


def test_a_node_tag_the_node_lacks_fails_validation_where_the_tags_are_known() -> None:
    """The daemon validates with its node's tags (pydantic context ``node_tags``): a label
    rule naming a tag the node does not have is refused, not found by failing workers. The
    whole task's message is checked in tests/test_node_tags.py, where a reporter is installed."""
    config = {"rules": [{"action": "label", "labels": {"net.site": "${node.tags.site}"}}]}
    FilterOptions.model_validate(config)  # tags unknown here: not checked
    FilterOptions.model_validate(config, context={"node_tags": {"site": "lab"}})
    with pytest.raises(ValidationError, match=re.escape(
        "net.site: node tag 'site' is not set on this node (otus.node.tags has: rack)"
    )):  # fmt: skip
        FilterOptions.model_validate(config, context={"node_tags": {"rack": "r1"}})
