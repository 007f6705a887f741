"""The ``kafka`` reporter is found through the ``otus.plugins`` entry point."""

from __future__ import annotations

from otus._plugins.registry import load_registry
from otus_reporter_kafka.options import KafkaReporterOptions


def test_registered_as_kafka_reporter() -> None:
    spec = load_registry().get("reporter", "kafka")
    assert spec.options_model is KafkaReporterOptions
    assert "Kafka" in spec.summary
