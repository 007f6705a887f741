"""``otus.tls``: client contexts whose failures name the file."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from otus.tls import TlsFilesError, client_context


def test_the_system_store_and_the_hostname_check_by_default() -> None:
    context = client_context(None)
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not client_context(None, check_hostname=False).check_hostname


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(TlsFilesError) as err:
        client_context(str(missing))
    assert str(err.value) == (
        f"cannot load the TLS files (ca_file {missing}): No such file or directory"
    )


def test_a_certificate_that_is_not_pem_names_every_file_given(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    with pytest.raises(TlsFilesError, match=rf"\(cert_file {cert}, key_file {key}\): "):
        client_context(None, str(cert), str(key))
