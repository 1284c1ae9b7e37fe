"""The task defaults every Sales Channel DAG shares: owner, failure alert, retry and timeout contract."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from amazon_commerce_sync.alerts import notify_failure
from amazon_commerce_sync.constants import OWNER


def task_defaults(
    *,
    retries: int,
    execution_timeout: timedelta,
    retry_delay: timedelta = timedelta(minutes=1),
    exponential_backoff: bool = False,
) -> dict[str, Any]:
    """``default_args`` for a DAG: each DAG states its retries and timeout; the rest is common."""
    args: dict[str, Any] = {
        "owner": OWNER,
        "on_failure_callback": notify_failure,
        "retries": retries,
        "retry_delay": retry_delay,
        "execution_timeout": execution_timeout,
    }
    if exponential_backoff:
        args["retry_exponential_backoff"] = True
    return args
