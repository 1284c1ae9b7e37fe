"""Fixtures of the Amazon sandbox tests (helpers live in ``amazon_helpers``)."""

from __future__ import annotations

import pytest
from amazon_helpers import Amz


@pytest.fixture
def amz(amazon_sandbox) -> Amz:
    """An SP-API client logged in as the default seller of a fresh sandbox (speed 100)."""
    base, app = amazon_sandbox
    return Amz(base, app)
