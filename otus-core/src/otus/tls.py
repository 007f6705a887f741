"""Client TLS contexts for plugins and the daemon (Kafka clusters, the command channel).

One place builds them and names the files in its error, so an operator reads which of
``ca_file``, ``cert_file`` and ``key_file`` could not be loaded, and why.
"""

from __future__ import annotations

import ssl

from otus.errors import OtusError

__all__ = ["TlsFilesError", "client_context"]


class TlsFilesError(OtusError):
    """A CA, certificate or key file could not be loaded (missing, unreadable, not PEM)."""


def client_context(
    ca_file: str | None,
    cert_file: str | None = None,
    key_file: str | None = None,
    *,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client context: the CA file (or the system store), an optional client certificate
    and key, the hostname check; :class:`TlsFilesError` names the files when one fails."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
        context.check_hostname = check_hostname
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(
            f"{name} {path}"
            for name, path in (
                ("ca_file", ca_file),
                ("cert_file", cert_file),
                ("key_file", key_file),
            )
            if path
        )
        raise TlsFilesError(
            f"cannot load the TLS files ({files}): {getattr(exc, 'strerror', None) or exc}"
        ) from None
    return context
