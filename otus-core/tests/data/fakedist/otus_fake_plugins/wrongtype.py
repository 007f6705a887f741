"""Returns a processor spec from the reporter hook."""

import otus
from otus_fake_plugins.good import PortFilter, PortOptions


@otus.hookimpl
def otus_reporters() -> list[otus.ProcessorSpec]:
    return [otus.ProcessorSpec("misfiled", lambda o, _c: PortFilter(o), PortOptions, "Wrong")]
