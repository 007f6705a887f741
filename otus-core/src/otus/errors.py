"""The error tree of Otus: every error a user can see is an :class:`OtusError`.

Each error carries a message a user can act on. Code that catches errors at a boundary (the CLI,
the control plane, a worker) catches ``OtusError`` and shows ``str(err)``; anything else is a bug.
"""

from __future__ import annotations


class OtusError(Exception):
    """Base of every error Otus raises on purpose.

    ``permanent`` says whether trying again can help. A permanent error means the configuration
    or the environment is wrong (a file missing or unreadable, an interface that does not exist,
    permission denied, a plugin option refused): the daemon fails a task whose worker raises
    one while it starts, instead of restarting the worker in a loop. The
    class sets the default (:class:`ConfigError` and :class:`PluginError` are permanent); a
    raiser can decide per error: ``CaptureError("...", permanent=True)``.
    """

    permanent: bool = False

    def __init__(self, *args: object, permanent: bool | None = None) -> None:
        super().__init__(*args)
        if permanent is not None:
            self.permanent = permanent


class ConfigError(OtusError):
    """A configuration or task file is invalid.

    ``source`` is the file (or ``"<env>"``, ``"<rpc>"``), ``path`` the dotted field path, so the
    message reads ``task.toml: parsers[0].config.ports: value is not a valid integer``.
    """

    permanent = True

    def __init__(self, problem: str, *, source: str | None = None, path: str | None = None) -> None:
        self.problem = problem
        self.source = source
        self.path = path
        where = ": ".join(p for p in (source, path) if p)
        super().__init__(f"{where}: {problem}" if where else problem)


class PluginError(OtusError):
    """A plugin failed to load, clashes with another, or does not exist."""

    permanent = True


class CaptureError(OtusError):
    """A capturer could not open or read its source (file broken, interface missing, no rights).

    Transient by default; ``open()`` raises it with ``permanent=True`` when the source can never
    be opened as configured (no such file or interface, permission denied).
    """


class PipelineError(OtusError):
    """A pipeline could not be built or stopped unexpectedly."""


class ControlError(OtusError):
    """A control-plane request failed (daemon not running, permission denied, bad request)."""
