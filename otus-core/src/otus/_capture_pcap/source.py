"""Where the bytes of a capture file come from: a path or stdin, plain or gzip-compressed."""

from __future__ import annotations

import errno
import gzip
import io
import os
import sys
import zlib
from typing import BinaryIO

from otus.errors import CaptureError

_GZIP_MAGIC = b"\x1f\x8b"
#: Why a file cannot be opened that retrying does not change (the path or its rights are wrong).
_NEVER_OPENS = frozenset({
    errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.ELOOP,
    errno.ENAMETOOLONG, errno.ENXIO,
})  # fmt: skip


class Source:
    """A readable capture file. ``position()`` and ``size`` count bytes of the file as stored.

    For a gzip file they count compressed bytes, so a progress bar still moves evenly.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else os.path.basename(path)
        self.size: int | None = None
        #: The compressed stream ended before its end marker (a truncated or growing file).
        self.cut_short = False
        raw: BinaryIO
        try:
            if path == "-":
                raw = sys.stdin.buffer
            else:
                raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
                self.size = os.fstat(raw.fileno()).st_size
        except OSError as err:
            raise CaptureError(
                f"{path}: cannot open capture file: {err.strerror}",
                permanent=err.errno in _NEVER_OPENS,
            ) from err
        self._raw = raw
        try:
            head = raw.read(2) or b""
        except OSError as err:
            raise CaptureError(f"{self.name}: cannot read: {err.strerror}") from err
        self._counted = _Counted(head, raw)
        self.compressed = head == _GZIP_MAGIC
        self._stream: io.RawIOBase | gzip.GzipFile = (
            gzip.GzipFile(fileobj=self._counted, mode="rb") if self.compressed else self._counted
        )
        # One decompression step a read: a gzip stream cut short then loses only its last
        # piece, after everything before it went through (readinto would drop the whole read).
        self._readinto = (
            self._stream.readinto1
            if isinstance(self._stream, gzip.GzipFile)
            else self._stream.readinto
        )

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` as far as one read goes; 0 at the end of the file."""
        try:
            return self._readinto(view) or 0
        except EOFError:  # a gzip stream cut short: the end of the data, which the reader
            self.cut_short = True  # then reports as a truncated file
            return 0
        except (OSError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            raise CaptureError(f"{self.name}: cannot read: {err}") from err

    def position(self) -> int:
        """Bytes of the stored file (compressed, for gzip) read so far."""
        return self._counted.count

    def close(self) -> None:
        if self._stream is not self._counted:
            self._stream.close()
        if self.path != "-":
            self._raw.close()


class _Counted(io.RawIOBase):
    """``inner`` as a raw stream that first returns the bytes already peeked, counting reads."""

    def __init__(self, prefix: bytes, inner: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._inner = inner
        self._read1 = getattr(inner, "readinto1", None) or inner.readinto  # type: ignore[attr-defined]
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            self.count += n
            return n
        got: int = self._read1(b) or 0
        self.count += got
        return got

    def close(self) -> None:
        # the inner stream belongs to the Source; stdin must stay open
        super().close()
