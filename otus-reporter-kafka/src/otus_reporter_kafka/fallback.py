"""The fallback reporter: built through the plugin registry like any configured reporter."""

from __future__ import annotations

from pydantic import ValidationError

from otus import ConfigError, PluginContext, PluginError, Reporter
from otus_reporter_kafka.options import FallbackOptions

__all__ = ["build_fallback"]


def build_fallback(options: FallbackOptions, context: PluginContext) -> Reporter:
    """Look the reporter up by name, validate its options with its model, and build it."""
    from otus._plugins.registry import load_registry

    try:
        spec = load_registry().get("reporter", options.name)
    except PluginError as err:
        raise ConfigError(str(err), path="fallback.name") from err
    try:
        validated = spec.options_model.model_validate(options.config)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            first["msg"], path=f"fallback.config.{where}" if where else "fallback.config"
        ) from err
    return spec.factory(validated, context)
