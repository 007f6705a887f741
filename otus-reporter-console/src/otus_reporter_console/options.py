"""The options of the console reporter (the ``config`` table of a ``console`` reporter)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConsoleOptions"]


class ConsoleOptions(BaseModel):
    """Where and how records are written; the buffer bounds what a slow terminal can hold up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="json: one JSON object per line (the Kafka value shape); text: one readable "
        "line per record; auto: text on a terminal, json otherwise.",
    )
    output: str = Field(
        "-",
        min_length=1,
        description="'-' or 'stdout', 'stderr', or a file path (appended to, created if missing).",
    )
    include_raw: bool = Field(
        False, description="Add the raw payload (base64, key raw_payload) to JSON lines."
    )
    buffer_records: int = Field(
        10_000, ge=1, description="At most this many records wait for the writer; then drop."
    )
    buffer_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="At most this many formatted bytes wait for the writer; then drop.",
    )
