"""Options of the ``sip`` parser (validated when a task is created)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SipOptions"]


class SipOptions(BaseModel):
    """What the SIP parser reads, how much it keeps, and what it adds to records."""

    model_config = ConfigDict(extra="forbid")

    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=lambda: [5060, 5061],
        description="Port hint; SIP on other ports is still found by its start line.",
    )
    max_message_size: int = Field(65535, ge=256, le=1 << 24, description="Largest message (bytes).")
    max_headers: int = Field(256, ge=8, le=10000, description="Most header lines per message.")
    max_header_line: int = Field(8192, ge=64, le=1 << 20, description="Longest header line.")
    tcp_buffer_limit: int = Field(
        262144, ge=1024, le=1 << 26, description="Bytes buffered per TCP direction."
    )
    max_tcp_flows: int = Field(65536, ge=1, description="TCP directions tracked at once.")
    max_dialogs: int = Field(100000, ge=1, description="Dialogs tracked at once (oldest evicted).")
    dialog_timeout_s: float = Field(7200.0, gt=0, description="Idle timeout of a confirmed call.")
    early_timeout_s: float = Field(300.0, gt=0, description="Idle timeout before the answer.")
    dialog_linger_s: float = Field(32.0, ge=0, description="Kept after the call ended.")
    include_dialog_labels: bool = Field(True, description="Add sip.call_state etc. to records.")
    parse_sdp: bool = Field(True, description="Parse SDP bodies (needed for media flows).")
    media_registry: bool = Field(True, description="Publish RTP/RTCP flows in shared state.")
    max_media_flows: int = Field(200000, ge=1, description="Media flows tracked at once.")
    media_timeout_s: float = Field(7200.0, gt=0, description="Expiry of a media flow.")
    websocket: bool = Field(True, description="Follow SIP over WebSocket (RFC 7118) on TCP.")
    report_errors: bool = Field(
        False, description="Also emit a record (label sip.error) for rejected messages."
    )
