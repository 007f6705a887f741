"""Helpers and contract suites for testing Otus plugins (public, for plugin authors too)."""

from __future__ import annotations

from otus.testing.requirements import in_ci, need, need_root, need_tool

__all__ = ["in_ci", "need", "need_root", "need_tool"]
