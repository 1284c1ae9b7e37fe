"""The integration's one retry policy (after hynek/stamina), built on tenacity.

- Only ``RetriableError`` is retried (see ``errors.py``); everything else propagates at once.
  A caller can narrow that further with ``retry_if`` (e.g. non-idempotent writes retry only
  when ``exc.safe_to_replay``).
- Exponential backoff with full jitter: the n-th wait is uniform in
  ``[0, min(max_wait, initial * 2**(n-1))]``.
- A ``RateLimitedError`` carrying ``retry_after`` waits at least that long.
- Bounded twice: at most ``attempts`` attempts, and no retry whose wait would end beyond
  ``total_timeout`` seconds after the first attempt started.
- ``ACS_RETRY_NO_WAIT=1`` (set by the test suite) switches the sleeping off; the attempts
  still happen, so tests exercise the same paths without the delays.

Each retry is logged at WARNING with the operation, the attempt and the reason (the
exception's class and message, which never holds a request body or a secret).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import tenacity

from amazon_commerce_sync.errors import RateLimitedError, RetriableError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

NO_WAIT_ENV = "ACS_RETRY_NO_WAIT"


def waiting_disabled() -> bool:
    """True when ``ACS_RETRY_NO_WAIT`` is set to a true value (tests)."""
    return os.environ.get(NO_WAIT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    :param attempts: total attempts including the first (1 disables retries).
    :param initial: the backoff cap of the first retry, in seconds.
    :param max_wait: the largest backoff between two attempts, in seconds
        (a server's ``retry_after`` may ask for longer and is honoured).
    :param total_timeout: no retry is started whose wait would end later than this many
        seconds after the first attempt.
    :param sleep: the sleeping function; None means ``time.sleep``, or no sleeping at all
        when ``ACS_RETRY_NO_WAIT=1``.
    """

    attempts: int = 6
    initial: float = 1.0
    max_wait: float = 60.0
    total_timeout: float = 300.0
    sleep: Callable[[float], None] | None = field(default=None, compare=False)

    def backoff(self, retry_number: int) -> float:
        """Full-jitter exponential backoff for the ``retry_number``-th retry (1-based)."""
        cap = min(self.max_wait, self.initial * (2 ** max(0, retry_number - 1)))
        return random.uniform(0.0, cap)

    def wait_for(self, retry_number: int, exc: BaseException | None) -> float:
        """Seconds to wait before the next attempt after ``exc``."""
        wait = self.backoff(retry_number)
        if isinstance(exc, RateLimitedError) and exc.retry_after:
            wait = max(wait, exc.retry_after)
        return wait

    def _sleeper(self) -> Callable[[float], None]:
        if self.sleep is not None:
            return self.sleep
        if waiting_disabled():
            return lambda _seconds: None
        return time.sleep


DEFAULT_POLICY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)


def call_with_retry(
    policy: RetryPolicy,
    fn: Callable[P, T],
    *args: P.args,
    operation: str,
    retry_if: Callable[[RetriableError], bool] | None = None,
    **kwargs: P.kwargs,
) -> T:
    """Call ``fn(*args, **kwargs)``, retrying ``RetriableError`` under ``policy``.

    :param operation: the name logged with each retry.
    :param retry_if: an extra condition a retriable error must meet to be retried.
    :raises: the last exception when attempts or time run out, or the first non-retriable one.
    """

    def should_retry(exc: BaseException) -> bool:
        if not isinstance(exc, RetriableError):
            return False
        return retry_if is None or retry_if(exc)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return policy.wait_for(state.attempt_number, exc)

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.attempts:
            return True
        return state.seconds_since_start + state.upcoming_sleep > policy.total_timeout

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: attempt %s of %s failed (%s: %s); retrying in %.1f s",
            operation,
            state.attempt_number,
            policy.attempts,
            type(exc).__name__,
            exc,
            state.upcoming_sleep,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(should_retry),
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        sleep=policy._sleeper(),
        reraise=True,
    )
    return retrying(fn, *args, **kwargs)


def retried(
    policy: RetryPolicy = DEFAULT_POLICY, *, operation: str | None = None
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator form of :func:`call_with_retry`; ``operation`` defaults to the function name."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        name = operation or fn.__name__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            return call_with_retry(policy, fn, *args, operation=name, **kwargs)

        return wrapper

    return decorate
