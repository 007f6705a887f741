"""Root integration tests: their helper modules (``e2e_netns``) sit next to them."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib does not put the test folder on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
