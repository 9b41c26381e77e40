"""Shared fixtures.  The plain helpers they are built on live in support.py (tests/ is on sys.path: pytest's
rootdir-relative imports put it there, and the child processes of test_distributed.py add it themselves)."""
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support import fake_splits, tiny_config  # noqa: E402


@pytest.fixture
def splits():
    """A tiny in-memory data set (``support.fake_splits()``): 4 coloured classes, 64 training and 41 validation
    images stored at 36 px for 32 px crops."""
    return fake_splits()


@pytest.fixture
def tiny(tmp_path):
    """``support.tiny_config`` in this test's tmp_path: ``tiny(epochs=1, ...)`` gives the scaled AlexNet's config."""
    return lambda **changes: tiny_config(tmp_path, **changes)
