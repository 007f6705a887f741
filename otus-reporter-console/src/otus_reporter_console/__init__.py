"""Otus reporter: records to the console or a file as JSON lines or text.

The plugin registers as ``console`` through :mod:`otus_reporter_console.plugin`.
"""

from otus_reporter_console.options import ConsoleOptions
from otus_reporter_console.reporter import ConsoleReporter

__all__ = ["ConsoleOptions", "ConsoleReporter"]
