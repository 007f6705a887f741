"""The options of the Kafka reporter (the ``config`` table of a ``kafka`` reporter)."""

from __future__ import annotations

import importlib.util
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from otus import ByteSize, Duration

__all__ = [
    "COMPRESSION_LEVELS",
    "FallbackOptions",
    "KafkaReporterOptions",
    "SaslOptions",
    "TlsOptions",
]

Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]

#: The levels each codec takes (Kafka's ``compression.<codec>.level``, KIP-390); lz4's below 0
#: are its fast-acceleration modes, zstd's below 0 its ``--fast`` ones.
COMPRESSION_LEVELS = {"gzip": (1, 9), "lz4": (-64, 16), "zstd": (-131072, 22)}

#: What Kafka accepts as a topic name; anything else is refused by the broker (or by aiokafka,
#: which logs it and leaves the records waiting until they are dropped).
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_TOPIC_RULE = "a Kafka topic name is 1 to 249 of letters, digits, '.', '_' and '-', not '.' or '..'"
#: Room a prefix leaves for '-{payload_type}' (``sip``, ``rtp``, a third-party type).
_PREFIX_ROOM = 32

#: aiokafka (>= 0.11) compresses snappy, lz4 and zstd with cramjam (extra ``compression``).
_CODECS_NEEDING_CRAMJAM = frozenset({"snappy", "lz4", "zstd"})


class SaslOptions(BaseModel):
    """SASL authentication towards the brokers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        description="SASL mechanism."
    )
    username: str = Field(min_length=1, description="SASL user name.")
    password: SecretStr = Field(description="SASL password.")


class TlsOptions(BaseModel):
    """TLS towards the brokers; present means on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: str | None = Field(None, description="CA bundle; unset: the system store.")
    cert_file: str | None = Field(None, description="Client certificate (mutual TLS).")
    key_file: str | None = Field(None, description="Private key of the client certificate.")
    check_hostname: bool = Field(True, description="Verify the broker's name in its certificate.")

    @model_validator(mode="after")
    def _pair(self) -> TlsOptions:
        if self.key_file and not self.cert_file:
            raise ValueError("key_file needs cert_file")
        return self


class FallbackOptions(BaseModel):
    """Another reporter that receives only what Kafka failed to deliver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Reporter plugin name, e.g. 'console'.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Options of that reporter (validated by its plugin)."
    )


class KafkaReporterOptions(BaseModel):
    """Where records go, how they are batched, and what happens when Kafka is away."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brokers: list[str] = Field(
        default_factory=list,
        description="Bootstrap brokers host:port; empty: the global otus.kafka settings "
        "(brokers, client id, SASL and TLS) are used.",
    )
    topic: str | None = Field(None, min_length=1, description="Every record to this topic.")
    topic_prefix: str | None = Field(
        None, min_length=1, description="Records to '{topic_prefix}-{payload_type}'."
    )
    serialization: Literal["json"] = Field("json", description="Encoding of the message value.")
    client_id: str | None = Field(None, description="Client id; unset: global or 'otus'.")
    acks: Literal[0, 1, "all"] = Field("all", description="Acknowledgements a write waits for.")
    enable_idempotence: bool = Field(
        False,
        description="Broker-side de-duplication of producer retries (needs acks='all' and a "
        "broker with InitProducerId; tansu has none).",
    )
    compression: Compression = Field("none", description="Batch compression codec.")
    compression_level: int | None = Field(
        None,
        description="Level of the codec, as Kafka's compression.<codec>.level: gzip 1 to 9 "
        "(default 9), lz4 -64 to 16 (default 0, lz4's fast mode; below 0 faster and larger, "
        "3 to 16 high compression), zstd -131072 to 22 (default 1, where Kafka's is 3: as small "
        "on SIP records for less CPU; below 0 faster and larger). Not for none or snappy.",
    )
    batch_size: ByteSize = Field(
        1024 * 1024,
        ge=1024,
        description="Largest record batch per partition, as sent: compressed batches hold "
        "up to twice as much before compression, as far as their compression allows.",
    )
    linger: Duration = Field(0.005, le=10, description="Wait this long to fill a batch.")
    max_message_bytes: ByteSize = Field(
        1_000_000, ge=1024, description="Largest message (key, value and headers) sent."
    )
    oversize: Literal["drop", "truncate"] = Field(
        "drop",
        description="Larger messages: drop (counted dropped.oversize) or cut the raw payload "
        "to fit (counted truncated; raw_payload_len keeps the original length).",
    )
    request_timeout: Duration = Field(
        30.0, gt=0, description="How long one delivery attempt of a batch may take."
    )
    retries: int = Field(3, ge=0, description="New attempts for a batch whose delivery failed.")
    retry_backoff: Duration = Field(0.5, gt=0, description="Pause before a new attempt.")
    sasl: SaslOptions | None = Field(None, description="SASL authentication.")
    tls: TlsOptions | None = Field(None, description="TLS settings; present means TLS on.")
    buffer_records: int = Field(
        100_000, ge=1, description="Records held (queued or in flight) before new ones drop."
    )
    buffer_bytes: ByteSize = Field(
        64 * 1024 * 1024, ge=1024, description="Bytes held (queued or in flight) before drops."
    )
    flush_timeout: Duration = Field(
        10.0, ge=0, description="Longest wait to deliver what is buffered at shutdown."
    )
    fallback: FallbackOptions | None = Field(
        None, description="Reporter for records Kafka failed to deliver after all retries."
    )

    @model_validator(mode="after")
    def _check(self) -> KafkaReporterOptions:
        if (self.topic is None) == (self.topic_prefix is None):
            raise ValueError("set exactly one of 'topic' and 'topic_prefix'")
        if self.topic is not None and not _legal_topic(self.topic):
            raise ValueError(f"topic {self.topic!r}: {_TOPIC_RULE}")
        prefix = self.topic_prefix
        if prefix is not None and not _legal_topic(f"{prefix}-{'x' * _PREFIX_ROOM}"):
            raise ValueError(
                f"topic_prefix {prefix!r}: with '-{{payload_type}}' it must make a topic name "
                f"({_TOPIC_RULE}; the prefix at most {249 - 1 - _PREFIX_ROOM} characters)"
            )
        if self.enable_idempotence and self.acks != "all":
            raise ValueError("enable_idempotence needs acks='all' (or set it to false)")
        if (
            self.compression in _CODECS_NEEDING_CRAMJAM
            and importlib.util.find_spec("cramjam") is None
        ):
            raise ValueError(
                f"compression {self.compression!r} needs the 'cramjam' package: "
                "pip install 'otus-reporter-kafka[compression]'"
            )
        if self.compression_level is not None:
            span = COMPRESSION_LEVELS.get(self.compression)
            if span is None:
                raise ValueError(f"compression_level does not apply to {self.compression!r}")
            if not span[0] <= self.compression_level <= span[1]:
                raise ValueError(
                    f"compression_level of {self.compression} is {span[0]} to {span[1]}, "
                    f"not {self.compression_level}"
                )
        if self.fallback is not None and self.fallback.name == "kafka":
            raise ValueError("the fallback must be another kind of reporter than 'kafka'")
        return self


def _legal_topic(name: str) -> bool:
    return _TOPIC.fullmatch(name) is not None and name not in (".", "..")
