"""retry.py: only retriable errors, bounded attempts and time, server hints honoured."""

from __future__ import annotations

import logging

import pytest

from amazon_commerce_sync.errors import (
    BadRequestError,
    ConnectionFailedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from amazon_commerce_sync.retry import RetryPolicy, call_with_retry, retried, waiting_disabled


class Flaky:
    def __init__(self, *errors: Exception, result="ok"):
        self.errors = list(errors)
        self.calls = 0
        self.result = result

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return (self.result, args, kwargs)


def test_waiting_is_off_in_tests():
    assert waiting_disabled()


def test_retries_retriable_until_success_and_passes_arguments():
    sleeps: list[float] = []
    fn = Flaky(ServiceUnavailableError("busy", status=503), ConnectionFailedError("reset"))
    result = call_with_retry(RetryPolicy(sleep=sleeps.append), fn, 1, operation="op", x=2)
    assert result == ("ok", (1,), {"x": 2})
    assert fn.calls == 3
    assert len(sleeps) == 2


def test_fatal_error_is_not_retried():
    fn = Flaky(BadRequestError("bad", status=400))
    with pytest.raises(BadRequestError):
        call_with_retry(RetryPolicy(sleep=lambda s: None), fn, operation="op")
    assert fn.calls == 1


def test_attempts_are_capped_and_last_error_raised():
    fn = Flaky(*[ServiceUnavailableError(f"busy {i}") for i in range(10)])
    with pytest.raises(ServiceUnavailableError, match="busy 3"):
        call_with_retry(RetryPolicy(attempts=4, sleep=lambda s: None), fn, operation="op")
    assert fn.calls == 4


def test_attempts_happen_without_waiting_when_env_set(monkeypatch):
    monkeypatch.setenv("ACS_RETRY_NO_WAIT", "1")
    fn = Flaky(*[ServiceUnavailableError("busy") for _ in range(5)])
    # a 1000 s backoff would hang the test if waiting were on
    assert call_with_retry(RetryPolicy(initial=1000, max_wait=1000, total_timeout=10**6), fn, operation="op")[0] == "ok"
    assert fn.calls == 6


def test_backoff_is_full_jitter_exponential_and_capped():
    policy = RetryPolicy(initial=1.0, max_wait=10.0)
    for n, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 10.0), (9, 10.0)]:
        samples = [policy.backoff(n) for _ in range(200)]
        assert all(0.0 <= s <= cap for s in samples)
        assert max(samples) > cap * 0.5  # uses the range, not a constant


def test_retry_after_is_a_minimum_wait():
    sleeps: list[float] = []
    fn = Flaky(RateLimitedError("slow down", retry_after=42.0, status=429))
    call_with_retry(RetryPolicy(initial=1.0, sleep=sleeps.append), fn, operation="op")
    assert sleeps and sleeps[0] >= 42.0


def test_total_time_budget_stops_before_a_too_long_wait():
    fn = Flaky(RateLimitedError("slow down", retry_after=500.0), RateLimitedError("again"))
    with pytest.raises(RateLimitedError, match="slow down"):
        call_with_retry(RetryPolicy(total_timeout=300, sleep=lambda s: None), fn, operation="op")
    assert fn.calls == 1


def test_retry_if_narrows_what_is_retried():
    ambiguous = Flaky(ConnectionFailedError("timeout", request_sent=True))
    with pytest.raises(ConnectionFailedError):
        call_with_retry(
            RetryPolicy(sleep=lambda s: None), ambiguous, operation="create", retry_if=lambda e: e.safe_to_replay
        )
    assert ambiguous.calls == 1
    refused = Flaky(ConnectionFailedError("refused", request_sent=False))
    call_with_retry(RetryPolicy(sleep=lambda s: None), refused, operation="create", retry_if=lambda e: e.safe_to_replay)
    assert refused.calls == 2


def test_each_retry_logged_at_warning_with_operation_attempt_reason(caplog):
    fn = Flaky(ServiceUnavailableError("busy", status=503))
    with caplog.at_level(logging.WARNING, logger="amazon_commerce_sync.retry"):
        call_with_retry(RetryPolicy(sleep=lambda s: None), fn, operation="searchOrders")
    [record] = [r for r in caplog.records if r.name == "amazon_commerce_sync.retry"]
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert "searchOrders" in text and "attempt 1 of 6" in text and "ServiceUnavailableError" in text


def test_decorator_form():
    fn = Flaky(ServiceUnavailableError("busy"))

    @retried(RetryPolicy(sleep=lambda s: None))
    def wrapped():
        return fn()

    assert wrapped()[0] == "ok" and fn.calls == 2
