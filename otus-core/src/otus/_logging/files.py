"""A rotating log file by size and age, with gzip-compressed backups."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path


class RotatingFile(RotatingFileHandler):
    """Rotates at ``max_bytes``; keeps ``backups`` files younger than ``max_age`` seconds."""

    def __init__(
        self,
        path: str,
        *,
        max_bytes: int,
        backups: int,
        max_age: float | None = None,
        compress: bool = True,
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.max_age = max_age
        if compress:
            self.namer = lambda name: name + ".gz"
            self.rotator = _gzip_rotate

    def doRollover(self) -> None:  # noqa: N802 - stdlib name
        super().doRollover()
        if self.max_age is None:
            return
        cutoff = time.time() - self.max_age
        for old in Path(self.baseFilename).parent.glob(Path(self.baseFilename).name + ".*"):
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < cutoff:
                    old.unlink()


def _gzip_rotate(source: str, dest: str) -> None:
    with open(source, "rb") as src, gzip.open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.remove(source)
