"""Checks both systems and the state store through the same hooks the DAGs use."""

from __future__ import annotations

import logging
from datetime import date, datetime
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


def check_pii_keys(ctx, max_age_days: int, *, now: datetime | None = None) -> dict[str, Any]:
    """The buyer-data keys (``store/pii_crypto.py``): the newest key's id and age, and what still uses the others.

    The age counts from when the integration first saw the key encrypting (``pii_keys``, recorded here and by the
    retention DAG's ``rotate_keys``). Older than ``max_age_days`` (setting ``pii_key_max_age_days``): a warning in
    the task log, naming the rotation steps; not a failure (the key still works).

    :raises AirflowFailException: no key (or a malformed one) is configured: every task with buyer data would fail;
        or kept buyer data is encrypted with a key that is not configured (replaced instead of rotated, or dropped
        too early): the orders holding it can be neither imported nor rotated.
    """
    from amazon_commerce_sync.store import pii_crypto

    try:
        crypt = pii_crypto.cipher()
    except pii_crypto.PiiKeyError as exc:
        raise AirflowFailException(f"buyer-data encryption key: {exc}") from None
    now = now or utcnow()
    kid = crypt.current_key_id
    first_seen = ctx.store.retention.note_key(kid, now)
    age_days = (now - first_seen).days
    usage = ctx.store.retention.key_usage(kid)
    missing = {
        k: n
        for k, n in usage["values"].items()
        if k not in crypt.key_ids and k not in (pii_crypto.CLEAR, pii_crypto.LEGACY)
    }
    if missing:
        needed = ", ".join(f"key id {k} ({n} values)" for k, n in sorted(missing.items()))
        raise AirflowFailException(
            f"buyer-data encryption key: kept buyer data is encrypted with {needed}, which is not configured in "
            f"{pii_crypto.KEYS_ENV} / connection {pii_crypto.KEYS_CONN_ID!r} (configured: {', '.join(crypt.key_ids)})"
            ": put that key back after the newest, let amazon_pii_retention's rotate_keys re-encrypt, then drop it"
        )
    result = {
        "key_id": kid,
        "first_seen_at": first_seen.isoformat(),
        "age_days": age_days,
        "max_age_days": max_age_days,
        "older_key_ids": list(crypt.key_ids[1:]),
        "orders_not_on_newest_key": usage["stale_rows"],
        "values_by_key": usage["values"],
    }
    if age_days > max_age_days:
        log.warning(
            "buyer-data key %s has encrypted since %s (%d days; pii_key_max_age_days is %d): rotate it - put a new "
            "key first in %s / connection %r, let amazon_pii_retention's rotate_keys re-encrypt, then drop the old "
            "key (README 'Amazon Data Protection Policy')",
            kid,
            first_seen.date().isoformat(),
            age_days,
            max_age_days,
            pii_crypto.KEYS_ENV,
            pii_crypto.KEYS_CONN_ID,
        )
        result["warning"] = f"key {kid} is {age_days} days old (more than {max_age_days})"
    unused = [k for k in crypt.key_ids[1:] if not usage["values"].get(k)]
    if unused:
        log.info("buyer-data key(s) %s encrypt no stored value any more: they may be dropped", ", ".join(unused))
    log.info(
        "buyer-data keys OK: key %s encrypting since %s (%d of %d days), %d older key(s), %d order(s) not on it yet",
        kid,
        first_seen.date().isoformat(),
        age_days,
        max_age_days,
        len(result["older_key_ids"]),
        result["orders_not_on_newest_key"],
    )
    return result
