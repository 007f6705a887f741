"""A task is validated with the node's tags where they are known (the daemon): plugin options
that name a tag the node lacks are refused with the whole field path."""

from __future__ import annotations

import pytest

from otus.testing import need


def test_a_node_tag_the_node_lacks_fails_validation_where_the_tags_are_known() -> None:
    """The daemon validates a task with its node's tags: a label rule naming a tag the node
    does not have is refused at task create, not found by workers failing one after another."""
    from otus import ConfigError
    from otus._config.validate import validate_task
    from otus._plugins.registry import load_registry

    task = {
        "id": "t",
        "capture": {"name": "pcap", "config": {"path": "/dev/null"}},
        "processors": [{"name": "filter", "config": {"rules": [
            {"action": "label", "labels": {"net.site": "${node.tags.site}"}},
        ]}}],
        "reporters": [{"name": "console"}],
    }  # fmt: skip
    registry = load_registry(strict=False)
    need("filter" in registry.names("processor"), "otus-processor-filter is not installed")
    need("console" in registry.names("reporter"), "otus-reporter-console is not installed")
    validate_task(task, source="t.toml", registry=registry)  # tags unknown here: not checked
    validate_task(task, source="t.toml", registry=registry, node_tags={"site": "lab"})
    with pytest.raises(ConfigError) as caught:
        validate_task(task, source="t.toml", registry=registry, node_tags={"rack": "r1"})
    assert str(caught.value) == (
        "t.toml: processors[0].config.rules[0].labels: net.site: node tag 'site' is not set"
        " on this node (otus.node.tags has: rack)"
    )
