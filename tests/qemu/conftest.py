"""Fixtures for tests that boot the reference guests (tests/qemu/guest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from guest_fixtures import guest_or_skip  # noqa: E402


@pytest.fixture(scope="session")
def x86_64_guest():
    return guest_or_skip("x86_64")


@pytest.fixture(scope="session")
def aarch64_guest():
    return guest_or_skip("aarch64")
