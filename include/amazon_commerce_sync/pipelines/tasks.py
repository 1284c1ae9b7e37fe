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
    from amazon_commerce_sync.resources import open_resources

    try:
        return open_resources(actor, settings=settings)
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


def load_orders(account_id: str, run_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    from amazon_commerce_sync.pipelines import order_import
    from amazon_commerce_sync.resources import owner_id

    ctx = _context(f"amazon_order_import/{run_id}/load")
    account = ctx.settings.account(account_id)
    redrive = (params or {}).get("redrive_quarantined")
    redriven: list[str] = []
    if redrive:
        ids = None if redrive == ["all"] else redrive
        redriven = ctx.store.orders.redrive(ids)
        for order_id in redriven:
            ctx.store.ops.audit("order_redriven", "amazon_order", order_id, {"run_id": run_id})
        log.info("re-driving %d quarantined order(s)", len(redriven))
    summary = order_import.load_orders(ctx, account, owner=owner_id(run_id))
    return {**summary, "redriven": len(redriven)} if redrive else summary


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


def environment_schedule(name: str, default: str) -> str | None:
    """A DAG's schedule from a deployment switch (environment variable), read at parse time without I/O.

    ``none`` switches the time schedule off: the DAG then runs only when triggered (REST API, UI, an
    external orchestrator) or, where it has one, on its asset.
    """
    value = os.environ.get(name, default).strip()
    return None if value.lower() == "none" else value


# -- amazon_refund_sync ------------------------------------------------------------------------
def refund_step(step: str, account_id: str, run_id: str) -> dict[str, Any]:
    """One step of the refund sync for one account: settle, mirror, queue or submit."""
    from amazon_commerce_sync.errors import FatalError
    from amazon_commerce_sync.pipelines import refund_sync

    ctx = _context(f"amazon_refund_sync/{run_id}/{step}")
    account = ctx.settings.account(account_id)
    now = datetime.now(UTC)
    steps = {
        "settle": lambda: refund_sync.conclude_feeds(ctx, account),
        "mirror": lambda: refund_sync.mirror_amazon_refunds(ctx, account, now=now),
        "queue": lambda: refund_sync.queue_creditmemos(ctx, account, now=now),
        "submit": lambda: refund_sync.submit_adjustments(ctx, account),
    }
    try:
        summary = steps[step]()
    except FatalError as exc:
        raise AirflowFailException(f"refund sync ({step}, account {account_id}): {exc}") from None
    log.info("%s %s: %s", account_id, step, {k: v for k, v in summary.items() if k != "account"})
    return summary


def refund_summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    from amazon_commerce_sync.pipelines import refund_sync

    total = refund_sync.combine(summaries)
    log.info("refund sync summary: %s", total)
    return total


# -- amazon_order_cancel ---------------------------------------------------------------------------
def _cancel_account(ctx, account_id: str | None):
    if not account_id:
        return ctx.settings.accounts[0]
    try:
        return ctx.settings.account(account_id)
    except SettingsError:
        known = ", ".join(a.account_id for a in ctx.settings.accounts)
        raise AirflowFailException(
            f"param account_id: no account {account_id!r} in the settings (known: {known})"
        ) from None


def cancel_request(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Check the parameters again, classify the orders, record and submit the cancellations."""
    from amazon_commerce_sync.errors import FatalError as _Fatal
    from amazon_commerce_sync.pipelines import order_cancel

    try:
        request = order_cancel.parse_request(params)
    except order_cancel.InvalidRequest as exc:
        raise AirflowFailException(str(exc)) from None
    ctx = _context(f"amazon_order_cancel/{run_id}/request")
    account = _cancel_account(ctx, request.account_id)
    try:
        return order_cancel.request_cancellations(ctx, account, request)
    except _Fatal as exc:
        raise AirflowFailException(f"cancellation feed refused by Amazon: {exc}") from None


def cancel_feeds_finished(requested: dict[str, Any], run_id: str) -> bool:
    from amazon_commerce_sync.pipelines import order_cancel

    feed_ids = requested.get("feed_ids") or []
    if not feed_ids:
        return True
    ctx = _context(f"amazon_order_cancel/{run_id}/wait")
    return order_cancel.feeds_finished(ctx, _cancel_account(ctx, requested["account_id"]), feed_ids)


def cancel_confirm(requested: dict[str, Any], run_id: str) -> dict[str, Any]:
    from amazon_commerce_sync.pipelines import order_cancel
    from amazon_commerce_sync.resources import owner_id

    ctx = _context(f"amazon_order_cancel/{run_id}/confirm")
    account = _cancel_account(ctx, requested["account_id"])
    return order_cancel.confirm_cancellations(ctx, account, requested, owner=owner_id(run_id))


def cancel_summary(requested: dict[str, Any] | None, confirmed: dict[str, Any] | None, publish=None) -> dict[str, Any]:
    """Log one line per order; fail naming every order that could not be cancelled (after all were processed).

    ``publish(summary)`` is called before failing, so the outcomes stay in XCom either way.
    """
    from amazon_commerce_sync.pipelines import order_cancel

    if requested is None:
        raise AirflowFailException("the request step failed before any order was classified: see its log")
    summary, failures = order_cancel.summarize(confirmed or requested)
    if failures:
        if publish is not None:
            publish(summary)
        what = "would not be cancelled" if summary["dry_run"] else "could not be cancelled"
        raise AirflowFailException(
            f"{len(failures)} of {len(summary['orders'])} orders {what}: " + " | ".join(failures)
        )
    return summary


# -- amazon_shipment_sync ----------------------------------------------------------------------
def sync_shipments(account_id: str, run_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Shipments both ways for one account: mirror Amazon's, confirm Commerce's, verify; returns counts."""
    from datetime import timedelta

    from amazon_commerce_sync.errors import FatalError
    from amazon_commerce_sync.pipelines import shipment_sync
    from amazon_commerce_sync.resources import owner_id

    grace = params.get("mismatch_grace_minutes")
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        raise AirflowFailException(f"param mismatch_grace_minutes: {grace!r} must be a whole number >= 0")
    ctx = _context(f"amazon_shipment_sync/{run_id}")
    account = ctx.settings.account(account_id)
    try:
        return shipment_sync.sync_shipments(
            ctx, account, owner=owner_id(run_id), now=datetime.now(UTC),
            mismatch_grace=timedelta(minutes=grace),
        )  # fmt: skip
    except FatalError as exc:
        raise AirflowFailException(f"shipment sync (account {account_id}): {exc}") from None


# -- amazon_pii_retention and sales_channel_monitor --------------------------------------------------
def pii_retention(run_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Erase buyer personal data of orders delivered more than ``pii_retention_days`` ago; returns counts."""
    from amazon_commerce_sync.pipelines import retention

    dry_run = params.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise AirflowFailException(f"param dry_run: {dry_run!r} must be true or false")
    ctx = _context(f"amazon_pii_retention/{run_id}")
    only = params.get("account_id")
    if only:
        try:
            accounts = [ctx.settings.account(only)]
        except SettingsError as exc:
            raise AirflowFailException(f"param account_id: {exc}") from None
    else:
        accounts = list(ctx.settings.accounts)
    summary = retention.run_retention(ctx, accounts, now=datetime.now(UTC), dry_run=dry_run, run_id=run_id)
    if summary["commerce_failed"]:
        raise AirflowFailException(
            f"{summary['commerce_failed']} Commerce order(s) could not be anonymised (see the warnings above; the "
            f"state store was erased, {summary['commerce_anonymised']} Commerce order(s) were anonymised); the next "
            "run tries them again"
        )
    return summary


def monitor(run_id: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check import lag and stuck orders; alert through the configured notifier; returns alert keys."""
    from amazon_commerce_sync import alerts

    ctx = _context(f"sales_channel_monitor/{run_id}")
    return alerts.run_monitor(
        ctx.store, ctx.settings.accounts, now=datetime.now(UTC), deliver=lambda a: alerts.send_alert(a, context)
    )
