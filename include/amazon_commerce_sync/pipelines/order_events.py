"""The event-driven import (``amazon_order_events``): stage the order ids ORDER_CHANGE named, fetch, load.

1. :func:`stage_events` (fast, no SP-API call): every message of the run's asset events (the watcher's reduced
   batches, ``events.reduce_payload``) gets one outcome, and none stops the run:

   - quarantined (not JSON, not an ORDER_CHANGE 1.0): ``quarantine`` entry ``order_change_message`` with the
     reason, counted;
   - another seller (``SellerId`` is no account's ``merchant_id``) or a marketplace the account does not
     import: ignored, counted;
   - else staged in ``order_events`` (``store.order_events``): a duplicate or an older ``TimeOfOrderChange``
     never overwrites a newer staged one.

2. :func:`fetch_orders`, per account: claims the staged ids under a lease, ``getOrder`` (Orders 2026-01-01,
   0.5/s burst 30) through the same hook and shared rate limiter as the import, hands each batch to
   ``stage_page`` and marks the ids done. The task layer (``pipelines/tasks.py``, the one place that composes
   pipelines) passes the import's own page staging (``order_extract``, quarantine included) and then runs the
   import's loader (``order_import.load_orders``: same rules, same exactly-once writes).
   A 404 is counted and retried in later runs, then left to the polling sweep (``unknown``); an order Amazon
   still shows older than the notification is deferred (Amazon's replicas lag). A run killed anywhere leaves
   ``new`` rows (or rows whose lease expires) that the next run takes; what was staged for the loader is also
   loaded by the polling import.

Outcomes are counts in the task's XCom (ids and counts only, never buyer data).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from amazon_commerce_sync.errors import NotFoundError
from amazon_commerce_sync.events import reduce_payload
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings, Settings
from amazon_commerce_sync.store.order_events import (
    MESSAGES_ACTION,
    MESSAGES_ENTITY,
    QUARANTINE_ENTITY,
    OrderEvent,
    OrderEvents,
)
from amazon_commerce_sync.times import parse_time

log = logging.getLogger(__name__)

LEASE_SECONDS = 300
CLAIM_BATCH = 100
#: How long an order Amazon still shows older than its notification waits before it is asked for again.
STALE_RETRY_SECONDS = 60
#: ``lastUpdatedTime`` has whole seconds and may be taken a moment before the notification's change time.
CLOCK_ALLOWANCE = timedelta(seconds=1)


def messages_of(extras: Iterable[Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    """The reduced messages of asset events' ``extra`` (``{"from_trigger": True, "payload": {"message_batch"}}``).

    An extra without a batch (an asset event from elsewhere, e.g. a manual one) gives nothing.
    """
    out: list[dict[str, Any]] = []
    for extra in extras:
        payload = (extra or {}).get("payload")
        if isinstance(payload, Mapping):
            out.extend(reduce_payload(payload)["message_batch"])
    return out


def _account_for(settings: Settings, message: Mapping[str, Any]) -> tuple[AccountSettings | None, str]:
    """The import-enabled account the message is for, or ``(None, why)``: ``other_seller`` / ``other_marketplace``."""
    sellers = [a for a in settings.accounts if a.import_enabled and a.merchant_identifier == message["sellerId"]]
    if not sellers:
        return None, "other_seller"
    for account in sellers:
        if not message.get("marketplaceId") or message["marketplaceId"] in account.marketplace_ids:
            return account, ""
    return None, "other_marketplace"


def stage_events(ctx: Resources, extras: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Stage every message of the run's asset events; returns counts ``received``, ``staged``, ``newer``,
    ``older_or_duplicate``, ``quarantined``, ``ignored_other_seller``, ``ignored_other_marketplace``. A run with
    messages also records these counts in the audit trail (``MESSAGES_ACTION``; the Sales Channel page's
    notifications per hour), after staging."""
    summary: collections.Counter[str] = collections.Counter()
    staged: list[OrderEvent] = []
    messages = messages_of(extras)
    for message in messages:
        summary["received"] += 1
        if "quarantine" in message:
            ctx.store.ops.quarantine(QUARANTINE_ENTITY, message["messageId"], message["quarantine"])
            summary["quarantined"] += 1
            continue
        account, why = _account_for(ctx.settings, message)
        if account is None:
            summary[f"ignored_{why}"] += 1
            continue
        staged.append(
            {
                "account_id": account.account_id,
                "amazon_order_id": message["amazonOrderId"],
                "change_time": parse_time(message["changeTime"]),
                "notification_id": message["notificationId"],
                "change_type": message["orderChangeType"],
            }
        )
    summary.update(OrderEvents(ctx.store.engine, ctx.actor).stage(staged))
    if messages:
        ctx.store.ops.audit(MESSAGES_ACTION, MESSAGES_ENTITY, messages[0]["messageId"][:64], dict(summary))
    log.info("ORDER_CHANGE messages: %s", dict(summary))
    return dict(summary)


def _older(updated: datetime | None, change_time: datetime) -> bool:
    """Amazon still shows a version from before the notified change: ``lastUpdatedTime`` (whole seconds) more
    than :data:`CLOCK_ALLOWANCE` before ``TimeOfOrderChange`` (milliseconds)."""
    return updated is None or updated.replace(microsecond=0) + CLOCK_ALLOWANCE < change_time.replace(microsecond=0)


def fetch_orders(
    ctx: Resources,
    account: AccountSettings,
    *,
    owner: str,
    included_data: Sequence[str],
    stage_page: Callable[[list[dict[str, Any]]], None],
) -> dict[str, Any]:
    """getOrder for the account's staged ids, batch by batch; each batch of orders goes to ``stage_page``, then
    its ids are marked done. Returns counts ``fetched``, ``not_found``, ``unknown``, ``deferred``,
    ``superseded`` (a newer notification came during the fetch: fetched again next run).

    :param included_data: getOrder's ``includedData`` (the import's, so the staged order is the same).
    :param stage_page: stages a list of Amazon orders for the import's loader (raises to stop the run).
    """
    events = OrderEvents(ctx.store.engine, ctx.actor)
    summary: collections.Counter[str] = collections.Counter()
    deferred: set[str] = set()
    try:
        _fetch(ctx, account, events, owner, summary, deferred, included_data, stage_page)
    finally:
        # A failed try leaves its ids to the next run at once; deferred ones wait STALE_RETRY_SECONDS.
        events.release(account.account_id, owner, keep=deferred)
    return {"account": account.account_id, **summary}


def _fetch(
    ctx: Resources,
    account: AccountSettings,
    events: OrderEvents,
    owner: str,
    summary: collections.Counter[str],
    deferred: set[str],
    included_data: Sequence[str],
    stage_page: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Claim, getOrder and stage the account's staged ids (see :func:`fetch_orders`)."""
    hook = ctx.amazon(account)
    seen: set[str] = set()  # asked once per run: a 404 or a deferred order waits for the next run
    while True:
        claimed = events.claim(account.account_id, owner, limit=CLAIM_BATCH, lease_seconds=LEASE_SECONDS, exclude=seen)
        if not claimed:
            break
        seen.update(row["amazon_order_id"] for row in claimed)
        orders, fetched_rows = [], []
        for row in claimed:
            try:
                order = hook.get_order(row["amazon_order_id"], included_data=included_data)
            except NotFoundError:
                order = {}
            if not order:
                state = events.not_found(row, owner)
                summary["unknown" if state == "unknown" else "not_found"] += 1
                continue
            updated = parse_time(order["lastUpdatedTime"]) if order.get("lastUpdatedTime") else None
            if _older(updated, row["change_time"]):
                events.defer(row, owner, STALE_RETRY_SECONDS)
                deferred.add(row["amazon_order_id"])
                summary["deferred"] += 1
                continue
            orders.append(order)
            fetched_rows.append((row, updated))
        if orders:
            stage_page(orders)
        for row, updated in fetched_rows:
            summary["fetched"] += 1
            if not events.finish(row, owner, loaded_updated_at=updated):
                summary["superseded"] += 1  # a newer notification came meanwhile: fetched again next run
