"""The bodies of the DAGs' tasks: thin wrappers that turn pipeline results into small XCom summaries.

DAG files import this module inside their tasks only (nothing happens at parse time).

Failures: a ``FatalError`` (Amazon or Commerce refused the request) or a ``SettingsError`` propagates as it
is, and the DAGs' retry policy (``dag_defaults.RETRY_POLICY``) fails the task on that try; the task adds a
note naming the step, the account and the fix (:func:`_naming`). ``AirflowFailException`` is kept for an
invalid run parameter or a failed guard. Anything else follows the task's ``retries``.

Time: what a run covers is decided by the run's logical time, ``run_after`` (the ``dag_run`` of the task
context), never by the clock when the task happens to start: a retry or a cleared and rerun task covers
the same window as the first try.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from amazon_commerce_sync.errors import AuthenticationError, FatalError
from amazon_commerce_sync.settings import AccountSettings, SettingsError

log = logging.getLogger(__name__)


def _context(actor: str):
    from amazon_commerce_sync.resources import open_resources

    return open_resources(actor)


def run_time(run_after: datetime) -> datetime:
    """The instant a run covers up to: its ``run_after`` (UTC), never later than this machine's clock.

    A rerun of the same run gets the same value, so it covers the same window. Capping at the clock keeps
    Amazon's rule that ``lastUpdatedBefore`` / ``PostedBefore`` are at least 2 minutes in the past even if
    the scheduler's clock runs ahead of the worker's.

    :param run_after: the ``run_after`` of the task's ``dag_run`` (tz-aware).
    :raises ValueError: for a naive ``run_after``.
    """
    if run_after.tzinfo is None:
        raise ValueError("run_after must be time-zone aware")
    return min(run_after.astimezone(UTC), datetime.now(UTC))


@contextlib.contextmanager
def _naming(step: str, account: AccountSettings) -> Iterator[None]:
    """Add to a ``FatalError`` a note (PEP 678) naming the step, the account and the fix, and let it propagate.

    The note shows in the task log's traceback and in the failure alert; the retry policy then fails the
    task without retrying.
    """
    try:
        yield
    except FatalError as exc:
        where = f"{step} for account {account.account_id}"
        if isinstance(exc, AuthenticationError):
            fix = (
                f"Amazon or Commerce refused the credentials: check the connections {account.amazon_conn_id!r} "
                f"(Amazon) and {account.commerce_conn_id!r} (Commerce), run sales_channel_healthcheck, "
                "then clear the task."
            )
        else:
            fix = "the request was refused as it is: fix what the message names, then clear the task."
        exc.add_note(f"{where} stopped without retrying; {fix}")
        raise


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
    """The ids of the accounts a run maps over: every account with ``import_enabled``, or just ``only``.

    :raises AirflowFailException: ``only`` is not an account of the settings.
    """
    ctx = _context("list_accounts")
    ids = [a.account_id for a in ctx.settings.accounts if a.import_enabled]
    if only:
        if only not in [a.account_id for a in ctx.settings.accounts]:
            raise AirflowFailException(f"param account_id: no account {only!r} in the settings")
        ids = [only]
    return ids


def extract_orders(account_id: str, run_id: str, params: dict[str, Any], *, run_after: datetime) -> dict[str, Any]:
    """Stage the account's Amazon orders changed up to ``run_after`` minus 2 minutes; returns counts.

    :raises AirflowFailException: invalid ``backfill_from`` / ``backfill_to``.
    """
    from amazon_commerce_sync.pipelines import order_extract

    ctx = _context(f"amazon_order_import/{run_id}/extract")
    account = ctx.settings.account(account_id)
    start = _parse_param_time("backfill_from", params.get("backfill_from"))
    end = _parse_param_time("backfill_to", params.get("backfill_to"))
    if end and not start:
        raise AirflowFailException("param backfill_to needs backfill_from")
    if start and end and end <= start:
        raise AirflowFailException("param backfill_to must be after backfill_from")
    with _naming("amazon_order_import extract", account):
        return order_extract.extract_orders(ctx, account, now=run_time(run_after), backfill_from=start, backfill_to=end)


def load_orders(account_id: str, run_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply the account's staged orders to Commerce (after re-driving ``redrive_quarantined``); returns counts."""
    from amazon_commerce_sync.pipelines import order_import
    from amazon_commerce_sync.resources import owner_id

    ctx = _context(f"amazon_order_import/{run_id}/load")
    account = ctx.settings.account(account_id)
    redrive = (params or {}).get("redrive_quarantined")
    redriven: list[str] = []
    if redrive:
        ids = None if redrive == ["all"] else redrive
        redriven = ctx.store.orders.redrive(ids, account_id=account.account_id)
        for order_id in redriven:
            ctx.store.ops.audit("order_redriven", "amazon_order", order_id, {"run_id": run_id})
        log.info("re-driving %d quarantined order(s)", len(redriven))
    with _naming("amazon_order_import load", account):
        summary = order_import.load_orders(ctx, account, owner=owner_id(run_id))
    return {**summary, "redriven": len(redriven)} if redrive else summary


def order_events_stage(triggering_asset_events: Any, run_id: str, later_events: Any = ()) -> dict[str, Any]:
    """``amazon_order_events.stage``: the messages of the run's asset events (a mapping of asset to events with
    ``extra``, Airflow's ``triggering_asset_events``) and of ``later_events`` (``order_events.later_events``)
    staged; counts (``pipelines/order_events.py``)."""
    from amazon_commerce_sync.pipelines import order_events

    ctx = _context(f"amazon_order_events/{run_id}/stage")
    extras = [event.extra for events in (triggering_asset_events or {}).values() for event in events]
    return order_events.stage_events(ctx, extras + [event.extra for event in later_events])


def order_events_fetch_load(account_id: str, run_id: str, newer_events: Any = None) -> dict[str, Any]:
    """``amazon_order_events.account.fetch_load``: the staged ids, and those ``newer_events`` (``events``) gives
    meanwhile, by ``order_events.fetch_orders``, staged by the import's page staging, then the import's loader;
    counts (``fetched``, ``searched_pages``, ``covered_by_search``..., ``staged``, ``load``)."""
    from amazon_commerce_sync.counts import add_counts
    from amazon_commerce_sync.pipelines import order_events, order_extract, order_import
    from amazon_commerce_sync.resources import owner_id

    ctx = _context(f"amazon_order_events/{run_id}/fetch_load")
    account = ctx.settings.account(account_id)
    owner = owner_id(run_id)
    staging: dict[str, Any] = {"pages": 0, "fetched": 0, "new": 0, "changed": 0}
    with _naming("amazon_order_events fetch_load", account):
        fetched = order_events.fetch_orders(
            ctx,
            account,
            owner=owner,
            included_data=order_extract.INCLUDED_DATA,
            stage_page=lambda orders: order_extract._stage_page(ctx, account, orders, staging),
            load=lambda: order_import.load_orders(ctx, account, owner=owner),
            more=newer_events,
        )
        load = add_counts(fetched.pop("loaded_during_fetch"), order_import.load_orders(ctx, account, owner=owner))
    return {**fetched, "staged": staging, "load": {k: v for k, v in load.items() if k != "account"}}


def commerce_orders_changed(summaries: list[dict[str, Any]] | dict[str, Any]) -> int:
    """How many Commerce orders the run's loads created, updated, cancelled or put on hold.

    :param summaries: the ``account.load`` results (``fetch_load``'s: under ``load``), one per account. Airflow
        3.3.2 hands a mapped task group's output to a task outside the group as the bare value when it expanded
        once (one account) instead of a one-element list (apache/airflow#69036, fixed by #69075); both accepted.
        With several accounts it is Airflow's ``LazyXComSequence``: read here in one slice, because
        iterating it asks for one item past the end, which the Task SDK logs as an ERROR ("XCom not
        found ... offset=N", ``airflow.sdk.api.client.get_sequence_item``) in every run.
    """
    if isinstance(summaries, dict):
        summaries = [summaries]
    else:
        summaries = list(summaries[:])
    changed = sum(s.get("load", s).get(k, 0) for s in summaries for k in ("created", "updated", "cancelled", "on_hold"))
    log.info("Commerce orders created or changed: %d", changed)
    return changed


def healthcheck(run_id: str) -> dict[str, Any]:
    """Check the state store, the buyer-data keys and every account's two connections; fails naming every failed
    check (a buyer-data key older than ``pii_key_max_age_days`` is a warning).

    :raises AirflowFailException: one or more checks failed (a health check is not retried).
    """
    from amazon_commerce_sync.pipelines import healthcheck as checks

    ctx = _context(f"sales_channel_healthcheck/{run_id}")
    report: dict[str, Any] = {"state_store": checks.check_store(ctx), "accounts": {}}
    failures = []
    try:
        report["pii_keys"] = checks.check_pii_keys(ctx, ctx.settings.pii_key_max_age_days)
    except AirflowFailException as exc:
        report["pii_keys"] = {"ok": False, "error": str(exc)}
        failures.append(str(exc))
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


# -- amazon_refund_sync ------------------------------------------------------------------------
def refund_step(step: str, account_id: str, run_id: str, *, run_after: datetime) -> dict[str, Any]:
    """One step of the refund sync for one account: settle, mirror, queue, submit or reconcile; returns its counts.

    ``mirror`` reads Amazon's refunds posted up to ``run_after`` (less Amazon's publication lag).
    """
    from amazon_commerce_sync import summaries
    from amazon_commerce_sync.pipelines import refund_reconcile, refund_sync

    ctx = _context(f"amazon_refund_sync/{run_id}/{step}")
    account = ctx.settings.account(account_id)
    now = run_time(run_after)
    steps = {
        "settle": lambda: refund_sync.conclude_feeds(ctx, account),
        "mirror": lambda: refund_sync.mirror_amazon_refunds(ctx, account, now=now),
        "queue": lambda: refund_sync.queue_creditmemos(ctx, account, now=now),
        "submit": lambda: refund_sync.submit_adjustments(ctx, account),
        "reconcile": lambda: refund_reconcile.reconcile(ctx, account, now=now),
    }
    with _naming(f"amazon_refund_sync {step}", account):
        summary = steps[step]()
    log.info("%s %s: %s", account_id, step, summaries.refund_sentence(summary))
    return summary


def refund_summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's counts over every account and step (``refund_sync.combine``)."""
    from amazon_commerce_sync import summaries as sentences
    from amazon_commerce_sync.pipelines import refund_sync

    total = refund_sync.combine(summaries)
    log.info("refund sync, every account: %s", sentences.refund_sentence(total))
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
    """Check the parameters again, classify the orders, record and submit the cancellations.

    :raises AirflowFailException: invalid parameters (all problems named at once) or an unknown account.
    """
    from amazon_commerce_sync import cancel_request as rules
    from amazon_commerce_sync.pipelines import order_cancel

    try:
        request = rules.parse_request(params)
    except rules.InvalidRequest as exc:
        raise AirflowFailException(str(exc)) from None
    ctx = _context(f"amazon_order_cancel/{run_id}/request")
    account = _cancel_account(ctx, request.account_id)
    with _naming("amazon_order_cancel request", account):
        return order_cancel.request_cancellations(ctx, account, request)


def cancel_feeds_finished(requested: dict[str, Any], run_id: str) -> bool:
    """The sensor's poke: True once Amazon finished processing every cancellation feed of the request."""
    from amazon_commerce_sync.pipelines import order_cancel

    feed_ids = requested.get("feed_ids") or []
    if not feed_ids:
        return True
    ctx = _context(f"amazon_order_cancel/{run_id}/wait")
    account = _cancel_account(ctx, requested["account_id"])
    with _naming("amazon_order_cancel wait_for_feeds", account):
        return order_cancel.feeds_finished(ctx, account, feed_ids)


def cancel_confirm(requested: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Read the processing reports, confirm each order on Amazon, then cancel it in Commerce; returns outcomes."""
    from amazon_commerce_sync.pipelines import order_cancel
    from amazon_commerce_sync.resources import owner_id

    ctx = _context(f"amazon_order_cancel/{run_id}/confirm")
    account = _cancel_account(ctx, requested["account_id"])
    with _naming("amazon_order_cancel confirm", account):
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
def sync_shipments(account_id: str, run_id: str, params: dict[str, Any], *, run_after: datetime) -> dict[str, Any]:
    """Shipments both ways for one account: mirror Amazon's, confirm Commerce's, verify; returns counts.

    A confirmation is reported as not reflected when Amazon still shows the order unshipped
    ``mismatch_grace_minutes`` before ``run_after``.

    :raises AirflowFailException: invalid ``mismatch_grace_minutes``.
    """
    from amazon_commerce_sync.pipelines import shipment_sync
    from amazon_commerce_sync.resources import owner_id

    grace = params.get("mismatch_grace_minutes")
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        raise AirflowFailException(f"param mismatch_grace_minutes: {grace!r} must be a whole number >= 0")
    ctx = _context(f"amazon_shipment_sync/{run_id}")
    account = ctx.settings.account(account_id)
    with _naming("amazon_shipment_sync", account):
        return shipment_sync.sync_shipments(
            ctx,
            account,
            owner=owner_id(run_id),
            now=run_time(run_after),
            mismatch_grace=timedelta(minutes=grace),
        )


# -- amazon_pii_retention and sales_channel_monitor --------------------------------------------------
def _retention_dry_run(params: dict[str, Any]) -> bool:
    """``amazon_pii_retention``'s ``dry_run``, the same for both its tasks: optional in the form (type
    ["null", "boolean"]), so unset or null means a real run. Raises AirflowFailException for anything else."""
    dry_run = params.get("dry_run")
    if dry_run is None:
        return False
    if not isinstance(dry_run, bool):
        raise AirflowFailException(f"param dry_run: {dry_run!r} must be true or false")
    return dry_run


def pii_retention(run_id: str, params: dict[str, Any], *, run_after: datetime) -> dict[str, Any]:
    """Erase buyer personal data of orders delivered more than ``pii_retention_days`` before ``run_after``.

    Returns counts only.

    :raises AirflowFailException: invalid ``dry_run`` / ``account_id``, or Commerce orders that could not be
        anonymised (the state store was erased; the next run tries them again).
    """
    from amazon_commerce_sync.pipelines import retention

    dry_run = _retention_dry_run(params)
    ctx = _context(f"amazon_pii_retention/{run_id}")
    only = params.get("account_id")
    if only:
        try:
            accounts = [ctx.settings.account(only)]
        except SettingsError as exc:
            raise AirflowFailException(f"param account_id: {exc}") from None
    else:
        accounts = list(ctx.settings.accounts)
    summary = retention.run_retention(ctx, accounts, now=run_time(run_after), dry_run=dry_run, run_id=run_id)
    if summary["commerce_failed"]:
        raise AirflowFailException(
            f"{summary['commerce_failed']} Commerce order(s) could not be anonymised (see the warnings above; the "
            f"state store was erased, {summary['commerce_anonymised']} Commerce order(s) were anonymised); the next "
            "run tries them again"
        )
    return summary


def pii_key_rotation(run_id: str, params: dict[str, Any], *, run_after: datetime) -> dict[str, Any]:
    """Re-encrypt the buyer data not on the newest key (``retention.rotate_keys``); returns counts only.

    :raises AirflowFailException: invalid ``dry_run``.
    :raises PiiKeyError: no key configured, or a stored value's key is missing (the message names its id).
    """
    from amazon_commerce_sync.pipelines import retention

    dry_run = _retention_dry_run(params)
    from amazon_commerce_sync.store import StateStore
    from amazon_commerce_sync.store.db import default_url, get_engine, migrate

    engine = get_engine(default_url())  # no settings needed: invalid ones do not stop the rotation
    migrate(engine)
    store = StateStore(engine, actor=f"amazon_pii_retention/{run_id}/rotate_keys")
    return retention.rotate_keys(store, now=run_time(run_after), dry_run=dry_run)


def monitor(run_id: str, context: dict[str, Any] | None = None, *, run_after: datetime) -> dict[str, Any]:
    """Check import lag and stuck orders as of ``run_after``; alert through the configured notifier.

    Returns the alert keys (firing, sent, repeat-suppressed). A rerun of the same run judges the same
    instant, and finds its alerts already sent.
    """
    from amazon_commerce_sync import alerts, monitor, summaries

    ctx = _context(f"sales_channel_monitor/{run_id}")
    result = monitor.run_monitor(
        ctx.store, ctx.settings.accounts, now=run_time(run_after), deliver=lambda a: alerts.send_alert(a, context)
    )
    log.info("monitor: %s", summaries.monitor_sentence(result))
    return result


# -- amazon_buyer_cancel_decision ------------------------------------------------------------------------
def decision_requests(account_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The buyer cancellation requests still without a decision run (``cancel_decision.pending_requests``), as
    ``TriggerDagRunOperator`` keyword arguments (``trigger_run_id``, ``conf``); the import maps over them."""
    from amazon_commerce_sync.pipelines import cancel_decision

    ctx = _context("amazon_order_import/decision_requests")
    ids = account_ids if account_ids is not None else [a.account_id for a in ctx.settings.accounts]
    requests = cancel_decision.pending_requests(ctx.store, ids)
    log.info("buyer cancellation requests waiting for a decision run: %d", len(requests))
    return requests


def _decision_account(ctx, params: dict[str, Any]):
    from amazon_commerce_sync import cancel_request as rules

    order_id = params.get("amazon_order_id")
    if not isinstance(order_id, str) or not rules.AMAZON_ORDER_ID.fullmatch(order_id):
        raise AirflowFailException(
            f"param amazon_order_id: {order_id!r} is not an Amazon order id (123-1234567-1234567)"
        )
    return _cancel_account(ctx, params.get("account_id")), order_id


def decision_prepare(params: dict[str, Any], run_id: str, *, run_after: datetime) -> dict[str, Any]:
    """Re-read the order and describe the decision (``cancel_decision.prepare``); no personal data.

    :raises AirflowFailException: invalid ``amazon_order_id`` / ``account_id`` or ``default_hours``.
    """
    from amazon_commerce_sync.pipelines import cancel_decision

    hours = params.get("default_hours")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
        raise AirflowFailException(f"param default_hours: {hours!r} must be a number of hours > 0")
    ctx = _context(f"amazon_buyer_cancel_decision/{run_id}/prepare")
    account, order_id = _decision_account(ctx, params)
    with _naming("amazon_buyer_cancel_decision prepare", account):
        return cancel_decision.prepare(ctx, account, order_id, now=run_time(run_after), default_hours=float(hours))


def decision_apply(prepared: dict[str, Any], decision: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
    """Act on the answer after re-reading the order (``cancel_decision.apply_decision``)."""
    from amazon_commerce_sync.pipelines import cancel_decision, order_cancel

    ctx = _context(f"amazon_buyer_cancel_decision/{run_id}/apply")
    account = _cancel_account(ctx, prepared["account_id"])
    with _naming("amazon_buyer_cancel_decision apply_decision", account):
        return cancel_decision.apply_decision(ctx, account, prepared, decision, order_cancel.request_cancellations)


def decision_summary(applied: dict[str, Any] | None, confirmed: dict[str, Any] | None, publish=None) -> dict[str, Any]:
    """One line for the decision; fail naming what could not be done (``publish`` the summary first)."""
    from amazon_commerce_sync.pipelines import cancel_decision, order_cancel

    if applied is None:
        raise AirflowFailException("the decision was not applied: see the apply_decision task's log")
    summary, failures = cancel_decision.summarize(applied, confirmed, order_cancel.summarize)
    if failures:
        if publish is not None:
            publish(summary)
        raise AirflowFailException("the order could not be cancelled: " + " | ".join(failures))
    return summary
