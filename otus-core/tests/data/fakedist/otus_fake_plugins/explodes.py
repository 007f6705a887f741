"""Imports fine, but its registration hook raises."""

import otus


@otus.hookimpl
def otus_reporters() -> list[otus.ReporterSpec]:
    raise RuntimeError("boom while registering")
