"""Options validation and the aiokafka client they configure (SASL, TLS, batching, codecs)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from otus import ConfigError, PluginContext
from otus.testing import need_tool
from otus_reporter_kafka.client import producer_kwargs, resolve_cluster
from otus_reporter_kafka.options import KafkaReporterOptions


def opts(**values: object) -> KafkaReporterOptions:
    return KafkaReporterOptions.model_validate({"brokers": ["k1:9092"], "topic": "t", **values})


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"topic": None}, "exactly one of 'topic' and 'topic_prefix'"),
        ({"topic_prefix": "otus"}, "exactly one of 'topic' and 'topic_prefix'"),
        ({"enable_idempotence": True, "acks": 1}, "enable_idempotence needs acks='all'"),
        ({"compression": "brotli"}, "Input should be 'none', 'gzip', 'snappy', 'lz4' or 'zstd'"),
        ({"acks": 2}, "Input should be 0, 1 or 'all'"),
        ({"compression_level": 3}, "compression_level does not apply to 'none'"),
        (
            {"compression": "snappy", "compression_level": 1},
            "compression_level does not apply to 'snappy'",
        ),
        ({"compression": "gzip", "compression_level": 0}, "gzip is 1 to 9, not 0"),
        ({"compression": "lz4", "compression_level": 17}, "lz4 is -64 to 16, not 17"),
        ({"compression": "zstd", "compression_level": 23}, "zstd is -131072 to 22, not 23"),
        ({"linger_ms": 5}, "Extra inputs are not permitted"),
        ({"sasl": {"mechanism": "GSSAPI", "username": "u", "password": "p"}}, "PLAIN"),
        ({"tls": {"key_file": "k.pem"}}, "key_file needs cert_file"),
        ({"fallback": {"name": "kafka"}}, "another kind of reporter"),
        ({"buffer_bytes": "lots"}, "bad size"),
        # Kafka topic names: [a-zA-Z0-9._-], at most 249 characters, not '.' or '..'
        ({"topic": "sip calls"}, "topic 'sip calls': a Kafka topic name is 1 to 249 of"),
        ({"topic": "a/b"}, "topic 'a/b': a Kafka topic name is 1 to 249 of"),
        ({"topic": "x" * 250}, "a Kafka topic name is 1 to 249 of"),
        ({"topic": ".."}, "topic '..': a Kafka topic name is 1 to 249 of"),
        ({"topic": None, "topic_prefix": "otus edge"}, "topic_prefix 'otus edge'"),
        ({"topic": None, "topic_prefix": "p" * 240}, "topic_prefix"),
    ],
)
def test_bad_options_are_rejected_with_the_reason(values: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        opts(**values)


def test_legal_topic_names_are_taken() -> None:
    assert opts(topic="otus.sip_calls-v2").topic == "otus.sip_calls-v2"
    assert opts(topic=None, topic_prefix="edge.otus").topic_prefix == "edge.otus"


def test_units_in_sizes_and_durations() -> None:
    o = opts(batch_size="512KiB", linger="20ms", request_timeout="1m", buffer_bytes="1GiB")
    assert (o.batch_size, o.linger, o.request_timeout) == (512 * 1024, 0.02, 60.0)
    assert o.buffer_bytes == 1024**3


def test_every_client_option_reaches_the_producer() -> None:
    o = opts(
        client_id="edge-7",
        acks="all",
        enable_idempotence=True,
        compression="zstd",
        batch_size="256KiB",
        linger="10ms",
        max_message_bytes="2MB",
        request_timeout=12,
        retry_backoff=0.25,
    )
    kwargs = producer_kwargs(o, resolve_cluster(o, PluginContext()))
    assert kwargs == {
        "bootstrap_servers": ["k1:9092"],
        "client_id": "edge-7",
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": "zstd",
        "max_batch_size": 256 * 1024,
        "max_request_size": 2_000_000 + 128,
        "linger_ms": 10,
        "request_timeout_ms": 12_000,
        "retry_backoff_ms": 250,
        "security_protocol": "PLAINTEXT",
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_is_applied_to_the_aiokafka_client(mechanism: str) -> None:
    o = opts(sasl={"mechanism": mechanism, "username": "otus", "password": "s3cret"})
    kwargs = producer_kwargs(o, resolve_cluster(o, PluginContext()))
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"

    async def client_settings() -> tuple[str, str, str, str]:
        producer = AIOKafkaProducer(**kwargs)
        client = producer.client
        return (
            client._security_protocol,
            client._sasl_mechanism,
            client._sasl_plain_username,
            client._sasl_plain_password,
        )

    import asyncio

    assert asyncio.run(client_settings()) == ("SASL_PLAINTEXT", mechanism, "otus", "s3cret")


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    openssl = need_tool("openssl")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=otus-test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_builds_a_verifying_context_with_client_cert(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    o = opts(
        tls={"ca_file": str(cert), "cert_file": str(cert), "key_file": str(key)},
        sasl={"mechanism": "SCRAM-SHA-512", "username": "u", "password": "p"},
    )
    kwargs = producer_kwargs(o, resolve_cluster(o, PluginContext()))
    assert kwargs["security_protocol"] == "SASL_SSL"
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "otus-test"),),)]

    no_check = opts(tls={"ca_file": str(cert), "check_hostname": False})
    kwargs = producer_kwargs(no_check, resolve_cluster(no_check, PluginContext()))
    assert kwargs["security_protocol"] == "SSL"
    assert kwargs["ssl_context"].check_hostname is False


def test_tls_with_a_missing_file_fails_clearly(tmp_path: Path) -> None:
    from otus.tls import TlsFilesError

    missing = tmp_path / "nope.pem"
    o = opts(tls={"ca_file": str(missing)})
    with pytest.raises(TlsFilesError, match=f"ca_file {missing}\\): No such file"):
        producer_kwargs(o, resolve_cluster(o, PluginContext()))


def test_tls_files_that_cannot_be_loaded_stop_the_start(tmp_path: Path) -> None:
    """Before, start() succeeded, the sender thread died on the FileNotFoundError (a traceback
    in the log) and every record of the run was dropped."""
    from otus import PluginError
    from otus_reporter_kafka.reporter import KafkaReporter

    missing = tmp_path / "nope.pem"
    reporter = KafkaReporter(opts(tls={"ca_file": str(missing)}), PluginContext())
    with pytest.raises(PluginError) as caught:
        reporter.start()
    assert str(caught.value) == (
        f"kafka reporter: cannot load the TLS files (ca_file {missing}): No such file or directory"
    )
    reporter.close(1.0)


def test_empty_brokers_inherit_the_global_kafka_settings() -> None:
    o = KafkaReporterOptions.model_validate({"topic": "t"})
    settings = {
        "kafka": {
            "brokers": ["g1:9093", "g2:9093"],
            "client_id": "fleet",
            "sasl": {"mechanism": "PLAIN", "username": "g", "password": "pw"},
            "tls": {"enabled": False},
        }
    }
    cluster = resolve_cluster(o, PluginContext(settings=settings))
    assert cluster.brokers == ["g1:9093", "g2:9093"]
    assert cluster.client_id == "fleet"
    assert cluster.sasl is not None
    assert cluster.sasl.username == "g"
    assert cluster.tls is None
    # the reporter's own brokers win, and then nothing global is mixed in
    own = resolve_cluster(opts(), PluginContext(settings=settings))
    assert (own.brokers, own.client_id, own.sasl) == (["k1:9092"], "otus", None)


def test_no_brokers_anywhere_is_a_config_error() -> None:
    o = KafkaReporterOptions.model_validate({"topic": "t"})
    with pytest.raises(ConfigError, match="brokers"):
        resolve_cluster(o, PluginContext())
