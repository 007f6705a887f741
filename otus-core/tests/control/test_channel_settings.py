"""The command channel's Kafka client settings: what cannot be loaded is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from otus._config.settings import load_settings
from otus._control.kafka_channel import client_kwargs
from otus.errors import OtusError


def test_tls_files_that_cannot_be_loaded_are_one_error_naming_them(tmp_path: Path) -> None:
    """Before, otus daemon ended in a FileNotFoundError traceback from the ssl module."""
    missing = tmp_path / "ca.pem"
    settings = load_settings(
        None,
        environ={"OTUS_KAFKA_TLS_ENABLED": "true", "OTUS_KAFKA_TLS_CA_FILE": str(missing)},
    )
    with pytest.raises(OtusError) as caught:
        client_kwargs(settings.kafka)
    assert str(caught.value) == (
        f"otus.kafka.tls: cannot load the TLS files (ca_file {missing}): No such file or directory"
    )
