"""The aiokafka producer settings derived from the options (one place, unit-tested)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from otus import ConfigError, PluginContext
from otus.tls import client_context
from otus_reporter_kafka.options import KafkaReporterOptions, SaslOptions, TlsOptions

__all__ = ["ClusterSettings", "build_ssl_context", "producer_kwargs", "resolve_cluster"]

#: Room for the record-batch and record framing around one message.
FRAMING_BYTES = 128


@dataclass(frozen=True)
class ClusterSettings:
    """Where and as whom to connect: the reporter's own, or the global ``otus.kafka``."""

    brokers: list[str]
    client_id: str
    sasl: SaslOptions | None
    tls: TlsOptions | None


def resolve_cluster(options: KafkaReporterOptions, context: PluginContext) -> ClusterSettings:
    """The reporter's brokers, or (when empty) the global ``kafka`` settings with their client
    id, SASL and TLS unless the reporter sets its own."""
    glob: dict[str, Any] = dict(context.settings.get("kafka") or {})
    brokers = list(options.brokers)
    sasl, tls = options.sasl, options.tls
    client_id = options.client_id
    if not brokers:
        brokers = list(glob.get("brokers") or [])
        if not brokers:
            raise ConfigError(
                "no brokers: set 'brokers' or the global otus.kafka.brokers", path="brokers"
            )
        client_id = client_id or glob.get("client_id")
        if sasl is None:
            sasl = _global_sasl(glob.get("sasl"))
        if tls is None:
            tls = _global_tls(glob.get("tls"))
    return ClusterSettings(brokers, client_id or "otus", sasl, tls)


def _global_sasl(raw: Any) -> SaslOptions | None:
    if not isinstance(raw, dict) or not raw.get("mechanism"):
        return None
    password: Any = raw.get("password")
    if isinstance(password, SecretStr):
        password = password.get_secret_value()
    return SaslOptions(mechanism=raw["mechanism"], username=raw["username"], password=password)


def _global_tls(raw: Any) -> TlsOptions | None:
    if not isinstance(raw, dict) or not raw.get("enabled"):
        return None
    return TlsOptions(**{k: v for k, v in raw.items() if k != "enabled"})


def build_ssl_context(tls: TlsOptions) -> ssl.SSLContext:
    """A client TLS context: CA (or the system store), optional client cert, hostname check
    (``otus.tls.TlsFilesError`` names the files that fail)."""
    return client_context(
        tls.ca_file, tls.cert_file, tls.key_file, check_hostname=tls.check_hostname
    )


def producer_kwargs(options: KafkaReporterOptions, cluster: ClusterSettings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``: every option that touches the client."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": cluster.brokers,
        "client_id": cluster.client_id,
        "acks": options.acks,
        "enable_idempotence": options.enable_idempotence,
        "compression_type": None if options.compression == "none" else options.compression,
        "max_batch_size": options.batch_size,
        "max_request_size": max(options.batch_size, options.max_message_bytes) + FRAMING_BYTES,
        "linger_ms": round(options.linger * 1000),
        "request_timeout_ms": round(options.request_timeout * 1000),
        "retry_backoff_ms": round(options.retry_backoff * 1000),
    }
    if cluster.tls is not None:
        kwargs["ssl_context"] = build_ssl_context(cluster.tls)
    if cluster.sasl is not None:
        kwargs["security_protocol"] = "SASL_SSL" if cluster.tls else "SASL_PLAINTEXT"
        kwargs["sasl_mechanism"] = cluster.sasl.mechanism
        kwargs["sasl_plain_username"] = cluster.sasl.username
        kwargs["sasl_plain_password"] = cluster.sasl.password.get_secret_value()
    else:
        kwargs["security_protocol"] = "SSL" if cluster.tls else "PLAINTEXT"
    return kwargs
