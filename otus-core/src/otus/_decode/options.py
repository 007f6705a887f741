"""Decoder options of a task (``[decoder]`` in a task file, defaults in ``otus.core.decoder``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from otus._config.types import ByteSize, Duration

#: Tunnel ports per kind the C decoder holds (``OTUS_MAX_TUNNEL_PORTS`` in ``decode.h``).
MAX_TUNNEL_PORTS = 8

_Port = Annotated[int, Field(ge=1, le=65535)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TunnelOptions(_Strict):
    """Which tunnels are opened; records then carry the inner addresses (outer ones as labels)."""

    vxlan: bool = True
    vxlan_ports: list[_Port] = Field(default_factory=lambda: [4789], max_length=MAX_TUNNEL_PORTS)
    geneve: bool = True
    geneve_ports: list[_Port] = Field(default_factory=lambda: [6081], max_length=MAX_TUNNEL_PORTS)
    gre: bool = True
    erspan: bool = True
    ipip: bool = True


class IpReassemblyOptions(_Strict):
    """Bounds of IPv4/IPv6 fragment reassembly."""

    enabled: bool = True
    timeout: Duration = 30.0
    max_datagrams: int = Field(4096, ge=1)
    max_fragments_per_datagram: int = Field(64, ge=2, le=8192)
    max_datagram_size: int = Field(65535, ge=576, le=65535)
    max_memory: ByteSize = 32 * 1024 * 1024


class TcpReassemblyOptions(_Strict):
    """Bounds of TCP stream reassembly (only for parsers that ask for streams)."""

    enabled: bool = True
    idle_timeout: Duration = 120.0
    hole_timeout: Duration = Field(10.0, gt=0)
    max_flows: int = Field(65536, ge=1)
    max_out_of_order_bytes_per_flow: ByteSize = 256 * 1024
    max_memory: ByteSize = 64 * 1024 * 1024


class DecoderOptions(_Strict):
    """Everything the decoder of one task can be told."""

    tunnels: TunnelOptions = Field(default_factory=TunnelOptions)
    ip_reassembly: IpReassemblyOptions = Field(default_factory=IpReassemblyOptions)
    tcp_reassembly: TcpReassemblyOptions = Field(default_factory=TcpReassemblyOptions)
