"""The task model: what one capture task runs (a task file, or ``task_create`` over RPC).

Each plugin entry names a plugin and carries its own ``config`` table, which is validated
against that plugin's options model in :mod:`otus._config.validate`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from otus._config.types import Duration
from otus._decode.options import DecoderOptions

__all__ = ["TASK_ID_PATTERN", "PluginRef", "TaskConfig"]

#: A task id is also a file name under the data directory, so it can never escape it.
TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_TASK_ID = re.compile(TASK_ID_PATTERN)


class PluginRef(BaseModel):
    """One plugin of a task: its name and its options."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Name of an installed plugin of this kind (otus plugins list).")
    config: dict[str, Any] = Field(
        default_factory=dict, description="The plugin's options (see the plugin's README)."
    )


class TaskConfig(BaseModel):
    """A capture task: one capturer, the decoder, parsers, processors and reporters."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        description="Unique task id: a letter or digit, then up to 63 of letters, digits, "
        "'_', '.', '-'."
    )
    workers: int = Field(
        1, ge=1, le=1024,
        description="Pipelines (worker processes) to run; the pcap capturer runs one (each "
        "worker would read the whole file), afpacket spreads an interface over any number.",
    )  # fmt: skip
    capture: PluginRef = Field(description="The capturer, e.g. {name = 'afpacket', config = {…}}.")
    decoder: DecoderOptions = Field(
        default_factory=DecoderOptions,
        description="Decoder options, merged over otus.core.decoder of the global config.",
    )
    parsers: list[PluginRef] = Field(
        default_factory=list, description="Parsers, tried in order on each payload."
    )
    processors: list[PluginRef] = Field(
        default_factory=list, description="Processors, applied in order to each record batch."
    )
    reporters: list[PluginRef] = Field(
        min_length=1, description="Reporters; every record batch goes to each of them."
    )
    expires_at: AwareDatetime | None = Field(
        None, description="Stop the task at this time (with a time zone, e.g. ...Z)."
    )
    duration: Duration | None = Field(
        None, gt=0, description="Stop the task this long after it started."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every record of this task."
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _TASK_ID.match(value):
            raise ValueError(
                f"bad task id {value!r}: start with a letter or digit, then at most 63 "
                "letters, digits, '_', '.' or '-'"
            )
        return value

    @model_validator(mode="after")
    def _one_deadline(self) -> TaskConfig:
        if self.expires_at is not None and self.duration is not None:
            raise ValueError("set expires_at or duration, not both")
        return self
