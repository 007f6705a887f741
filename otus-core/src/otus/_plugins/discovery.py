"""Find and import the modules of the ``otus.plugins`` entry-point group, each in isolation.

stevedore imports every entry point and reports failures through a callback instead of
aborting, so one broken plugin never hides the others. Entry points are read fresh from
``importlib.metadata`` on every call (no stevedore cache), which also gives each one its
distribution name and version.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from stevedore import ExtensionManager

GROUP = "otus.plugins"


@dataclass(frozen=True)
class EntryPointOrigin:
    """Where an entry point comes from: its name, target and distribution."""

    name: str
    value: str
    distribution: str
    version: str

    @property
    def label(self) -> str:
        """``distribution:entry-point``, unique per installed entry point."""
        return f"{self.distribution}:{self.name}"


@dataclass(frozen=True)
class LoadedModule:
    origin: EntryPointOrigin
    module: ModuleType


@dataclass(frozen=True)
class LoadFailure:
    origin: EntryPointOrigin
    error: str


def describe_error(err: BaseException) -> str:
    """``ExceptionType: message`` — one line, enough to act on."""
    text = " ".join(str(err).split())
    if isinstance(err, SystemExit):
        return f"SystemExit({text or None}): the module exited the process while being imported"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def provider_of(obj: object) -> str:
    """The distribution (else the module) an object such as a spec's factory comes from, for
    error messages that must say which installed plugin is at fault; slow, so never per packet."""
    module = str(getattr(obj, "__module__", "") or "")
    top = module.partition(".")[0]
    if not top:
        return "unknown module"
    dists = importlib.metadata.packages_distributions().get(top, [])
    return f"{' or '.join(sorted(set(dists)))} (module {module})" if dists else f"module {module}"


def origin_of(ep: importlib.metadata.EntryPoint) -> EntryPointOrigin:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return EntryPointOrigin(ep.name, ep.value, "unknown", "unknown")
    return EntryPointOrigin(ep.name, ep.value, dist.metadata["Name"] or "unknown", dist.version)


class _ImportAbortedError(Exception):
    """Carries what a plugin's import raised that stevedore would let through (SystemExit,
    AssertionError) to the failure callback, so one such plugin cannot end the process."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class _FreshManager(ExtensionManager[Any]):
    """An ExtensionManager reading entry points from importlib.metadata on each construction.

    stevedore keeps a process-wide entry-point cache; plugins installed after the first load
    (or a test distribution put on ``sys.path``) would then stay invisible.
    """

    def _load_one_plugin(self, ep: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._load_one_plugin(ep, *args, **kwargs)
        except (SystemExit, AssertionError) as err:  # stevedore re-raises these: end of otus
            raise _ImportAbortedError(err) from err

    def list_entry_points(self) -> list[importlib.metadata.EntryPoint]:
        eps = importlib.metadata.entry_points(group=self.namespace)
        # Core's built-in plugins first, then by distribution and name: a stable order.
        return sorted(eps, key=lambda ep: _sort_key(origin_of(ep)))


def _sort_key(origin: EntryPointOrigin) -> tuple[int, str, str]:
    return (0 if origin.distribution == "otus-core" else 1, origin.distribution, origin.name)


def discover(group: str = GROUP) -> tuple[list[LoadedModule], list[LoadFailure]]:
    """Import every entry point of ``group``; return the modules and the failures."""
    failures: list[LoadFailure] = []

    def on_failure(_manager: Any, ep: importlib.metadata.EntryPoint, err: BaseException) -> None:
        if isinstance(err, _ImportAbortedError):
            err = err.original
        failures.append(LoadFailure(origin_of(ep), describe_error(err)))

    manager = _FreshManager(group, on_load_failure_callback=on_failure)
    loaded: list[LoadedModule] = []
    for ext in manager.extensions:
        origin = origin_of(ext.entry_point)
        plugin: object = ext.plugin
        if not isinstance(plugin, ModuleType):
            failures.append(LoadFailure(origin, f"entry point must name a module, not {plugin!r}"))
            continue
        loaded.append(LoadedModule(origin, plugin))
    failures.sort(key=lambda f: _sort_key(f.origin))
    return loaded, failures
