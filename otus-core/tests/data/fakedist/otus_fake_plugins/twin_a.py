"""Provides processor 'twin', like its sibling twin_b: a name clash."""

import otus
from otus_fake_plugins.good import PortFilter, PortOptions


@otus.hookimpl
def otus_processors() -> list[otus.ProcessorSpec]:
    return [otus.ProcessorSpec("twin", lambda o, _c: PortFilter(o), PortOptions, "Twin a")]
