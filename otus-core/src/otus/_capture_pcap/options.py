"""Options of the ``pcap`` capturer (``[capture]`` of a task with ``type = "pcap"``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from otus._config.types import ByteSize


class PcapOptions(BaseModel):
    """Which file to read and how fast; see docs/pcap.md."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description='pcap, pcapng or gzip-compressed file; "-" reads stdin')
    speed: float | None = Field(
        None,
        gt=0,
        le=1e6,  # beyond, a batch's span overflows; leave speed unset for "as fast as possible"
        allow_inf_nan=False,
        description="None: as fast as possible; 1.0: real time; 2.0: twice as fast (at most 1e6)",
    )
    loop: int = Field(0, ge=-1, description="extra passes over the file; -1 loops forever")
    batch_packets: int = Field(4096, ge=1, le=1 << 20, description="packets per batch at most")
    batch_bytes: ByteSize = Field(
        4 * 1024 * 1024, ge=65536, description="captured bytes per batch at most"
    )

    @model_validator(mode="after")
    def _loop_needs_a_file(self) -> PcapOptions:
        if self.loop != 0 and self.path == "-":
            raise ValueError("loop needs a file: stdin cannot be read twice")
        return self
