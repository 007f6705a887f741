"""Fixtures for live AF_PACKET tests (root: network namespaces, raw sockets)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otus.testing import need_root

from afp_netns import VethPair, veth_pair


@pytest.fixture
def veth() -> Iterator[VethPair]:
    need_root()
    with veth_pair() as pair:
        yield pair
