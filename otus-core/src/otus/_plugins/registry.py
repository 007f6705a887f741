"""The plugin registry: every loaded spec by kind and name, the plugins' metric specs, plus what
failed and why.

:func:`load_registry` imports the entry points (:mod:`otus._plugins.discovery`), registers each
module with a pluggy ``PluginManager`` and calls its registration hooks one plugin at a time, so a
hook that raises or a name that two plugins claim is recorded against the plugins concerned and
everything else still loads. Metric specs (``otus_metrics()``) whose series would collide with a
core metric's or another plugin's are rejected the same way. Nothing is cached: callers keep the
registry they loaded.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, overload

import pluggy

from otus import hookspecs
from otus._metrics.catalog import METRICS
from otus._plugins.discovery import EntryPointOrigin, LoadedModule, describe_error, discover
from otus.errors import PluginError
from otus.metrics import MetricSpec, series_names
from otus.specs import CapturerSpec, ParserSpec, PluginSpec, ProcessorSpec, ReporterSpec

__all__ = ["KINDS", "PluginInfo", "PluginRegistry", "load_registry", "strict_from_env"]

Kind = Literal["capturer", "parser", "processor", "reporter"]

#: kind → (registration hook, spec class), in pipeline order.
KINDS: dict[str, tuple[str, type[PluginSpec[Any]]]] = {
    "capturer": ("otus_capturers", CapturerSpec),
    "parser": ("otus_parsers", ParserSpec),
    "processor": ("otus_processors", ProcessorSpec),
    "reporter": ("otus_reporters", ReporterSpec),
}

#: The registration hook of metric specs; failures of those are recorded with this kind.
METRIC_HOOK = "otus_metrics"
METRIC_KIND = "metric"

STRICT_ENV = "OTUS_STRICT_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """One line of ``otus plugins list``: a spec that loaded, or something that failed.

    ``kind`` is ``None`` for an entry point that failed before its kind could be known (its
    module did not import); ``name`` is then the entry-point name.
    """

    name: str
    kind: str | None
    distribution: str
    version: str
    summary: str
    status: Literal["loaded", "failed"]
    error: str | None = None
    entry_point: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Provided:
    spec: PluginSpec[Any]
    origin: EntryPointOrigin


@dataclass(frozen=True)
class _ProvidedMetric:
    spec: MetricSpec
    origin: EntryPointOrigin


class PluginRegistry:
    """Loaded specs by kind and name; the failures; the pluggy hook relay for lifecycle hooks."""

    def __init__(
        self,
        manager: pluggy.PluginManager,
        specs: dict[str, dict[str, _Provided]],
        failures: list[PluginInfo],
        metrics: list[_ProvidedMetric] | None = None,
    ) -> None:
        self.manager = manager
        self._specs = specs
        self._metrics = sorted(metrics or [], key=lambda p: p.spec.name)
        self.failures: list[PluginInfo] = failures
        self._failed_by_name = {(f.kind, f.name): f for f in failures if f.kind is not None}

    @property
    def hook(self) -> Any:
        """``registry.hook.otus_task_started(task_id=..., config=...)`` calls every plugin."""
        return self.manager.hook

    @overload
    def get(self, kind: Literal["capturer"], name: str) -> CapturerSpec: ...
    @overload
    def get(self, kind: Literal["parser"], name: str) -> ParserSpec: ...
    @overload
    def get(self, kind: Literal["processor"], name: str) -> ProcessorSpec: ...
    @overload
    def get(self, kind: Literal["reporter"], name: str) -> ReporterSpec: ...
    @overload
    def get(self, kind: str, name: str) -> PluginSpec[Any]: ...

    def get(self, kind: str, name: str) -> PluginSpec[Any]:
        """The spec of ``kind`` called ``name``; :class:`PluginError` saying what exists if none."""
        provided = self._kind(kind).get(name)
        if provided is not None:
            return provided.spec
        failed = self._failed_by_name.get((kind, name))
        if failed is not None:
            raise PluginError(f"{kind} {name!r} failed to load: {failed.error}")
        available = ", ".join(self.names(kind)) or "none installed"
        unknown = [f for f in self.failures if f.kind is None]
        hint = ""
        if unknown:
            # A plugin whose module did not import may be the one meant: say so, with why.
            broken = "; ".join(f"{_who_failed(f)}: {f.error}" for f in unknown)
            hint = f"; plugins that failed to import, which may provide it: {broken}"
        raise PluginError(f"unknown {kind} {name!r}; available: {available}{hint}")

    def names(self, kind: str) -> list[str]:
        """Sorted names of the loaded plugins of ``kind``."""
        return sorted(self._kind(kind))

    def metrics(self) -> list[MetricSpec]:
        """The metric specs that loaded, by name (the daemon's ``/metrics`` serves them)."""
        return [p.spec for p in self._metrics]

    def metrics_by_distribution(self) -> dict[str, list[MetricSpec]]:
        """The metric specs that loaded, grouped by the distribution providing them."""
        out: dict[str, list[MetricSpec]] = {}
        for p in self._metrics:
            out.setdefault(p.origin.distribution, []).append(p.spec)
        return dict(sorted(out.items()))

    def entries(self) -> list[PluginInfo]:
        """Every loaded spec and every failure, ordered by kind then name."""
        loaded = [
            PluginInfo(
                name=p.spec.name,
                kind=kind,
                distribution=p.origin.distribution,
                version=p.origin.version,
                summary=p.spec.summary,
                status="loaded",
                entry_point=p.origin.name,
            )
            for kind, by_name in self._specs.items()
            for p in by_name.values()
        ]
        order = {kind: i for i, kind in enumerate(KINDS)}
        return sorted(
            loaded + self.failures,
            key=lambda i: (order.get(i.kind or "", len(order)), i.name, i.distribution),
        )

    def _kind(self, kind: str) -> dict[str, _Provided]:
        if kind not in self._specs:
            raise PluginError(f"unknown plugin kind {kind!r}; use one of {', '.join(KINDS)}")
        return self._specs[kind]


def strict_from_env() -> bool:
    """``OTUS_STRICT_PLUGINS=1`` (or ``true``/``yes``) makes every plugin failure an error."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def load_registry(strict: bool | None = None) -> PluginRegistry:
    """Load every installed plugin; with ``strict`` (default from the environment) any failure
    raises :class:`PluginError` instead of being recorded.

    What a plugin prints while it is imported or registered goes to stderr: stdout carries
    ``otus plugins list --json`` and ``otus run``'s JSON lines, which one stray line breaks.
    """
    with contextlib.redirect_stdout(sys.stderr):
        return _load(strict_from_env() if strict is None else strict)


def _load(strict: bool) -> PluginRegistry:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)

    loaded, load_failures = discover()
    failures = [_failure(f.origin, None, f.error) for f in load_failures]
    origins: dict[str, EntryPointOrigin] = {}
    for item in loaded:
        error = _register(manager, item)
        if error is None:
            origins[item.origin.label] = item.origin
        else:
            failures.append(_failure(item.origin, None, error))

    candidates: dict[tuple[str, str], list[_Provided]] = {}
    for kind, (hook_name, spec_class) in KINDS.items():
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            origin = origins[impl.plugin_name]
            try:
                specs = _collect(impl.function(), spec_class, hook_name)
            except Exception as err:  # a plugin's bug must not stop the others loading
                failures.append(_failure(origin, kind, f"{hook_name}(): {describe_error(err)}"))
                continue
            for spec in specs:
                candidates.setdefault((kind, spec.name), []).append(_Provided(spec, origin))

    specs_by_kind: dict[str, dict[str, _Provided]] = {kind: {} for kind in KINDS}
    for (kind, name), provided in candidates.items():
        if len(provided) == 1:
            specs_by_kind[kind][name] = provided[0]
            continue
        who = " and ".join(
            f"{p.origin.distribution} (entry point {p.origin.name!r})" for p in provided
        )
        error = f"name clash: {kind} {name!r} is provided by {who}; uninstall one of them"
        failures.extend(_failure(p.origin, kind, error, p.spec) for p in provided)

    metrics = _load_metrics(manager, origins, failures)
    if strict and failures:
        details = "; ".join(f"{f.kind or 'plugin'} {f.name!r}: {f.error}" for f in failures)
        raise PluginError(f"plugins failed to load ({STRICT_ENV}=1): {details}")
    return PluginRegistry(manager, specs_by_kind, failures, metrics)


def _load_metrics(
    manager: pluggy.PluginManager, origins: dict[str, EntryPointOrigin], failures: list[PluginInfo]
) -> list[_ProvidedMetric]:
    """Every plugin's metric specs, less those colliding with a core metric or each other
    (both sides of a plugin/plugin collision are rejected, as for plugin names)."""
    candidates: list[_ProvidedMetric] = []
    for impl in getattr(manager.hook, METRIC_HOOK).get_hookimpls():
        origin = origins[impl.plugin_name]
        try:
            specs = _collect(impl.function(), MetricSpec, METRIC_HOOK)
        except Exception as err:  # a plugin's bug must not stop the others loading
            failures.append(
                _failure(origin, METRIC_KIND, f"{METRIC_HOOK}(): {describe_error(err)}")
            )
            continue
        candidates.extend(_ProvidedMetric(spec, origin) for spec in specs)

    core = {s: name for name, (kind, _, _) in METRICS.items() for s in series_names(name, kind)}
    by_series: dict[str, list[_ProvidedMetric]] = {}
    for p in candidates:
        for s in series_names(p.spec.name, p.spec.kind):
            by_series.setdefault(s, []).append(p)

    accepted: list[_ProvidedMetric] = []
    for p in candidates:
        exposed = series_names(p.spec.name, p.spec.kind)
        core_hits = sorted({core[s] for s in exposed if s in core})
        others = [o for s in sorted(exposed) for o in by_series[s] if o is not p]
        if core_hits:
            error = (
                f"name clash: metric {p.spec.name!r} collides with the core metric "
                f"{core_hits[0]!r}; name plugin metrics otus_<plugin>_…"
            )
        elif others:
            who = " and ".join(sorted({f"{o.spec.name!r} of {_who(o.origin)}" for o in others}))
            error = (
                f"name clash: metric {p.spec.name!r} of {_who(p.origin)} collides with {who}; "
                "uninstall one of them"
            )
        else:
            accepted.append(p)
            continue
        failures.append(
            _failure(p.origin, METRIC_KIND, error, name=p.spec.name, summary=p.spec.help)
        )
    return accepted


def _who_failed(info: PluginInfo) -> str:
    return f"{info.distribution} (entry point {info.entry_point!r})"


def _who(origin: EntryPointOrigin) -> str:
    return f"{origin.distribution} (entry point {origin.name!r})"


def _register(manager: pluggy.PluginManager, item: LoadedModule) -> str | None:
    """Register one module; ``None`` on success, else why it was rejected."""
    try:
        manager.register(item.module, name=item.origin.label)
    except Exception as err:  # pluggy.PluginValidationError, or a duplicate module
        return describe_error(err)
    unknown = [
        caller.name
        for caller in manager.get_hookcallers(item.module) or []
        if caller.spec is None
        and any(
            not impl.optionalhook
            for impl in caller.get_hookimpls()
            if impl.plugin_name == item.origin.label
        )
    ]
    if unknown:
        manager.unregister(item.module)
        return f"implements unknown hook(s) {', '.join(sorted(unknown))} (newer otus-core needed?)"
    return None


def _collect(result: Iterable[Any] | None, spec_class: type[Any], hook_name: str) -> list[Any]:
    expected = spec_class.__name__
    if isinstance(result, (spec_class, str, bytes)) or not isinstance(result, Iterable | None):
        # One spec instead of a list, or a name: iterating it would say nothing useful.
        what = getattr(result, "name", result)  # a spec by its name, not its long repr
        got = f"{type(result).__name__} {what!r}"
        raise TypeError(f"{hook_name}() must return a list of {expected} objects, got {got}")
    specs = list(result or ())
    for spec in specs:
        if not isinstance(spec, spec_class):
            raise TypeError(f"{hook_name}() must return {expected} objects, got {spec!r}")
    return specs


def _failure(
    origin: EntryPointOrigin,
    kind: str | None,
    error: str,
    spec: PluginSpec[Any] | None = None,
    *,
    name: str | None = None,
    summary: str = "",
) -> PluginInfo:
    if spec is not None:
        name, summary = spec.name, spec.summary
    return PluginInfo(
        name=name or origin.name,
        kind=kind,
        distribution=origin.distribution,
        version=origin.version,
        summary=summary,
        status="failed",
        error=error,
        entry_point=origin.name,
    )
