"""What a plugin instance knows about where it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PluginContext"]


@dataclass(frozen=True)
class PluginContext:
    """Handed to every plugin factory together with its validated options.

    ``shared`` is one dict per pipeline, shared by all plugins of that pipeline (the SIP parser
    publishes its media-flow registry there under ``"media_flows"``). Keys are namespaced by the
    plugin that owns them.
    """

    task_id: str = "run"
    agent_id: str = ""
    pipeline_id: int = 0
    workers: int = 1
    node_tags: dict[str, str] = field(default_factory=dict)
    data_dir: str = ""
    #: The global configuration (root key ``otus``) as plain data, e.g. ``settings["kafka"]``.
    settings: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
