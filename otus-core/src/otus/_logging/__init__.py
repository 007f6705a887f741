"""Logging: structlog configured once, rendered as JSON or for people, to stderr, a rotating
file and Loki (design §7)."""

from otus._logging.setup import configure_logging, set_level

__all__ = ["configure_logging", "set_level"]
