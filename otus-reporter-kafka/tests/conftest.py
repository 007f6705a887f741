"""The Kafka reporter tests: a tansu broker fixture and importable helpers (``kafka_helpers``;
pytest runs in importlib mode, so this directory is put on ``sys.path`` for them)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["otus.testing.kafka_fixtures"]
