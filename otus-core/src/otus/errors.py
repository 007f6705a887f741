"""The error tree of Otus: every error a user can see is an :class:`OtusError`.

Each error carries a message a user can act on. Code that catches errors at a boundary (the CLI,
the control plane, a worker) catches ``OtusError`` and shows ``str(err)``; anything else is a bug.
"""

from __future__ import annotations


class OtusError(Exception):
    """Base of every error Otus raises on purpose."""


class ConfigError(OtusError):
    """A configuration or task file is invalid.

    ``source`` is the file (or ``"<env>"``, ``"<rpc>"``), ``path`` the dotted field path, so the
    message reads ``task.toml: parsers[0].config.ports: value is not a valid integer``.
    """

    def __init__(self, problem: str, *, source: str | None = None, path: str | None = None) -> None:
        self.problem = problem
        self.source = source
        self.path = path
        where = ": ".join(p for p in (source, path) if p)
        super().__init__(f"{where}: {problem}" if where else problem)


class PluginError(OtusError):
    """A plugin failed to load, clashes with another, or does not exist."""


class CaptureError(OtusError):
    """A capturer could not open or read its source (file broken, interface missing, no rights)."""


class PipelineError(OtusError):
    """A pipeline could not be built or stopped unexpectedly."""


class ControlError(OtusError):
    """A control-plane request failed (daemon not running, permission denied, bad request)."""
