"""Checks both systems and the state store through the same hooks the DAGs use."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from amazon_commerce_sync import summaries
from amazon_commerce_sync.errors import IntegrationError
from amazon_commerce_sync.hooks import operations
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.times import utcnow

log = logging.getLogger(__name__)


def deprecations(account: AccountSettings, today: date) -> list[str]:
    """Amazon removals within ``deprecation_warning_days`` of ``today`` among the operations the hook calls.

    One sentence each, naming the operation, the removal date and the replacement (``hooks/operations.py``).
    """
    return operations.deprecation_warnings(operations.called_operations(), today, account.deprecation_warning_days)


def check_amazon(ctx, account: AccountSettings, *, today: date | None = None) -> dict[str, Any]:
    """The Amazon connection answers (``check_health``); the result lists coming removals as ``deprecations``.

    A coming removal is a warning in the task log, not a failure: the calls still work until the date.

    :raises AirflowFailException: the connection or the call failed, naming the connection and the fix.
    """
    try:
        result = ctx.amazon(account).check_health()
    except (IntegrationError, ValueError) as exc:
        raise AirflowFailException(
            f"Amazon SP-API check failed for account {account.account_id} (connection {account.amazon_conn_id!r}): "
            f"{exc}. Check the connection's host, LWA client id/secret and refresh token."
        ) from None
    result = {**result, "deprecations": deprecations(account, today or utcnow().date())}
    for warning in result["deprecations"]:
        log.warning("SP-API deprecation (account %s): %s", account.account_id, warning)
    log.info(
        "Amazon SP-API OK for %s (%s): token in %d ms, %s in %d ms. Rate limits (requests per second):\n%s",
        account.account_id,
        account.amazon_conn_id,
        result["token_ms"],
        result["call"],
        result["call_ms"],
        summaries.rate_limit_table(result["rate_limits"]),
    )
    return result


def check_commerce(ctx, account: AccountSettings) -> dict[str, Any]:
    try:
        result = ctx.commerce(account).check_health()
        currencies = sorted(ctx.commerce(account).get_allowed_currencies())
    except (IntegrationError, ValueError) as exc:
        raise AirflowFailException(
            f"Commerce check failed for account {account.account_id} (connection {account.commerce_conn_id!r}): "
            f"{exc}. Check the connection's host, store code and credentials."
        ) from None
    result = {**result, "allowed_currencies": currencies}
    log.info(
        "Commerce OK for %s (%s): store %s, %s authentication, %s in %d ms; currencies %s",
        account.account_id,
        account.commerce_conn_id,
        result.get("store_code"),
        result.get("auth"),
        result.get("call"),
        result.get("call_ms", 0),
        ", ".join(currencies) or "none",
    )
    return result


def check_store(ctx) -> dict[str, Any]:
    from amazon_commerce_sync.store.db import current_revision, head_revision

    revision = current_revision(ctx.store.engine)
    if revision != head_revision():
        raise AirflowFailException(f"state store is at revision {revision}, expected {head_revision()}")
    return {
        "dialect": ctx.store.engine.dialect.name,
        "revision": revision,
        "orders": ctx.store.orders.count_by_status(),
    }
