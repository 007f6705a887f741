"""The module named by the entry point: options, spec and the registration hook.

Otus imports this module to list plugins, so it stays cheap: the parser module is imported only
inside the factory, when a pipeline is actually built.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

import otus


class SyslogOptions(BaseModel):
    """The ``config`` table of a ``syslog`` parser in a task file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default=[514], min_length=1, description="UDP ports that carry syslog."
    )
    include_message: bool = Field(
        default=True, description="Put the message text into the record's payload."
    )


def make_parser(options: SyslogOptions, context: otus.PluginContext) -> otus.Parser:
    from otus_parser_example.parser import SyslogParser

    return SyslogParser(options)


SPEC = otus.ParserSpec(
    name="syslog",
    factory=make_parser,
    options_model=SyslogOptions,
    summary="Syslog over UDP (RFC 5424 and RFC 3164): facility, severity, host, app",
)


@otus.hookimpl
def otus_parsers() -> Iterable[otus.ParserSpec]:
    return [SPEC]
