"""Fixtures of the Amazon sandbox tests (helpers live in ``amazon_helpers``)."""

from __future__ import annotations

import pytest
from amazon_helpers import Amz


@pytest.fixture
def amz(amazon_sandbox) -> Amz:
    """An SP-API client logged in as the default seller of a fresh sandbox (speed 100).

    The sandbox's own tests run with Finances v0 still answering (the product's tests run it removed, as after
    Amazon's removal date): they check the sandbox models both states."""
    base, app = amazon_sandbox
    client = Amz(base, app)
    client.settings(finances_v0_removed=False)
    return client
