"""The bodies of the DAGs' tasks: thin wrappers that turn pipeline results into small XCom summaries.

DAG files import this module inside their tasks only (nothing happens at parse time).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from amazon_commerce_sync.settings import SettingsError

log = logging.getLogger(__name__)


def _context(actor: str, *, settings=None):
    from amazon_commerce_sync.pipelines.context import build_context

    try:
        return build_context(actor, settings=settings)
    except SettingsError as exc:
        raise AirflowFailException(f"Invalid Sales Channel settings: {exc}") from None


def _parse_param_time(name: str, value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise AirflowFailException(f"param {name}: {value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def list_accounts(only: str | None = None) -> list[str]:
    ctx = _context("list_accounts")
    ids = [a.account_id for a in ctx.settings.accounts if a.import_enabled]
    if only:
        if only not in [a.account_id for a in ctx.settings.accounts]:
            raise AirflowFailException(f"param account_id: no account {only!r} in the settings")
        ids = [only]
    return ids


def extract_orders(account_id: str, run_id: str, params: dict[str, Any]) -> dict[str, Any]:
    from amazon_commerce_sync.pipelines import order_import

    ctx = _context(f"amazon_order_import/{run_id}/extract")
    account = ctx.settings.account(account_id)
    start = _parse_param_time("backfill_from", params.get("backfill_from"))
    end = _parse_param_time("backfill_to", params.get("backfill_to"))
    if end and not start:
        raise AirflowFailException("param backfill_to needs backfill_from")
    if start and end and end <= start:
        raise AirflowFailException("param backfill_to must be after backfill_from")
    return order_import.extract_orders(ctx, account, now=datetime.now(UTC), backfill_from=start, backfill_to=end)


def load_orders(account_id: str, run_id: str) -> dict[str, Any]:
    from amazon_commerce_sync.pipelines import order_import

    ctx = _context(f"amazon_order_import/{run_id}/load")
    account = ctx.settings.account(account_id)
    return order_import.load_orders(ctx, account, owner=order_import.owner_id(run_id))


def healthcheck(run_id: str) -> dict[str, Any]:
    from amazon_commerce_sync.pipelines import healthcheck as checks

    ctx = _context(f"sales_channel_healthcheck/{run_id}")
    report: dict[str, Any] = {"state_store": checks.check_store(ctx), "accounts": {}}
    failures = []
    for account in ctx.settings.accounts:
        entry: dict[str, Any] = {}
        for name, check in (("amazon", checks.check_amazon), ("commerce", checks.check_commerce)):
            try:
                entry[name] = check(ctx, account)
            except AirflowFailException as exc:
                entry[name] = {"ok": False, "error": str(exc)}
                failures.append(str(exc))
        report["accounts"][account.account_id] = entry
    if failures:
        raise AirflowFailException(" | ".join(failures))
    return report


def environment_schedule(name: str, default: str) -> str:
    """A DAG's schedule from a deployment switch (environment variable), read at parse time without I/O."""
    return os.environ.get(name, default)
