"""Fixtures of the SIP parser tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from otus_parser_sip import SipOptions
from otus_parser_sip.parser import SipParser

# The builders module sits next to the tests; make it importable whatever the invocation dir.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def parser() -> SipParser:
    return SipParser(SipOptions())
