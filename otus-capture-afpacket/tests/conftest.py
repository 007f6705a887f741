"""Fixtures for live AF_PACKET tests (root: network namespaces, raw sockets)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from otus.testing import need_root

# The suite runs with --import-mode=importlib: make the helper modules beside the tests
# (afp_helpers; prefixed so they cannot shadow another distribution's) importable.
sys.path.insert(0, str(Path(__file__).parent))

from otus.testing.netns import VethPair, veth_pair


@pytest.fixture
def veth() -> Iterator[VethPair]:
    """Namespaces A and B joined by a veth pair; capture in A, send from B."""
    need_root()
    with veth_pair() as pair:
        yield pair
