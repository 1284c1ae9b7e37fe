"""Adaptive volume's decision (pipelines/order_events.getorder_capacity): how many getOrder calls fit before
searchOrders' next token, from the shared buckets' current tokens."""

from __future__ import annotations

import pytest

from amazon_commerce_sync.pipelines.order_events import getorder_capacity

GET_RATE, SEARCH_RATE = 0.5, 0.0056  # Amazon's documented rates (hooks/operations.py)


def test_a_search_token_now_leaves_only_getorders_tokens_now():
    assert getorder_capacity(29.0, GET_RATE, 19.0, SEARCH_RATE) == 29.0
    assert getorder_capacity(3.5, GET_RATE, 1.0, SEARCH_RATE) == 3.5


def test_an_empty_search_bucket_adds_getorders_refill_until_its_next_token():
    # searchOrders empty: its next token in 1 / 0.0056 = 178.6 s, in which getOrder refills 89.3 tokens
    assert getorder_capacity(29.0, GET_RATE, 0.0, SEARCH_RATE) == pytest.approx(29.0 + 0.5 / 0.0056)
    # half a token (the import just took one): half the wait
    assert getorder_capacity(0.0, GET_RATE, 0.5, SEARCH_RATE) == pytest.approx(0.5 * 0.5 / 0.0056)


def test_callers_already_queued_on_getorder_count_against_it():
    assert getorder_capacity(-10.0, GET_RATE, 5.0, SEARCH_RATE) == 0.0
    assert getorder_capacity(-10.0, GET_RATE, 0.0, SEARCH_RATE) == pytest.approx(0.5 / 0.0056 - 10.0)


def test_scaled_rates_give_the_same_decision():
    """A sandbox at speed S (rate_scale S) scales both rates: the number of getOrder calls is unchanged."""
    assert getorder_capacity(29.0, GET_RATE * 100, 0.0, SEARCH_RATE * 100) == pytest.approx(
        getorder_capacity(29.0, GET_RATE, 0.0, SEARCH_RATE)
    )
