"""Fixtures of the real-consumer tests (helpers are in _helpers.py)."""

from __future__ import annotations

from typing import Callable

import pytest


@pytest.fixture
def report(capsys) -> Callable[[str], None]:
    """Print what a check verified, visible without -s."""

    def emit(message: str) -> None:
        with capsys.disabled():
            print(f"\n  verified: {message}", end="")

    return emit
