"""Cancel unshipped Amazon orders on request (the ``amazon_order_cancel`` DAG), exactly once on both sides.

A run goes through four steps, each a task:

1. ``request_cancellations``: check the parameters, read every order from Amazon
   (getOrder 2026-01-01) and the state store, and give each one an outcome. Only
   merchant-fulfilled UNSHIPPED orders are cancelled; shipped, pending, unknown and other
   accounts' orders get a specific outcome and the rest go on. A cancellation is recorded in
   the outbox under ``cancel:<amazon order id>`` before anything is sent, then every pending
   cancellation of the marketplace goes into one ``POST_ORDER_ACKNOWLEDGEMENT_DATA`` feed
   (``feeds.submit_outbox``). A second request for an order already in flight adds nothing
   and follows the feed already sent.
2. ``feeds_finished``: the (rescheduling) sensor's poke: are the feeds done?
3. ``confirm_cancellations``: read each feed's processing report (``feeds.conclude_feed``),
   re-read each order from Amazon and, once Amazon shows it CANCELLED, cancel the Commerce
   order (or refund it offline when invoiced; ``commerce_writes.orders.cancel_in_commerce``,
   once per order through the intent log), put its stock back and add a comment naming the
   reason, the note and the feed.
4. ``summarize``: one line per order; the names of those that could not be cancelled.

Per-order records carry ids, statuses and short texts only (no buyer data): they are the
XCom between the steps.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from amazon_commerce_sync import feeds, summaries, transform
from amazon_commerce_sync.cancel_request import GET_ORDER_DATA, CancelRequest
from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.orders import cancel_in_commerce
from amazon_commerce_sync.commerce_writes.stock import StockMoves
from amazon_commerce_sync.errors import IntegrationError, NotFoundError, RetriableError
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import OrderSync, OutboxStatus

log = logging.getLogger(__name__)

OUTBOX_KIND = "cancel"
COMMERCE_ATTEMPTS = 3
LEASE_SECONDS = 120
LEASE_WAIT_SECONDS = 30.0


class Outcome(enum.StrEnum):
    CANCELLED = "cancelled"  # cancelled on Amazon (confirmed) and in Commerce
    ALREADY_CANCELLED = "already_cancelled"  # nothing to do on Amazon
    WOULD_CANCEL = "would_cancel"  # dry run
    REQUESTED = "requested"  # internal: sent (or in flight), waiting for confirmation
    SHIPPED = "shipped"  # cannot be cancelled: issue a refund
    NOT_CANCELLABLE = "not_cancellable"  # pending, unfulfillable, fulfilled by Amazon
    NOT_FOUND = "not_found"  # unknown to Amazon / unknown Commerce order number
    OTHER_ACCOUNT = "other_account"
    REJECTED = "rejected"  # Amazon's processing report refused the message
    NOT_CONFIRMED = "not_confirmed"  # Amazon does not show it cancelled
    ERROR = "error"


SUCCESSFUL = frozenset({Outcome.CANCELLED, Outcome.ALREADY_CANCELLED, Outcome.WOULD_CANCEL})


def outbox_key(amazon_order_id: str) -> str:
    return f"{OUTBOX_KIND}:{amazon_order_id}"


def outbox_kind(marketplace_id: str) -> str:
    """One feed per marketplace: the outbox kind carries the marketplace."""
    return f"{OUTBOX_KIND}:{marketplace_id}"


def cancel_comment(reason: str, note: str | None, feed_id: str | None) -> str:
    """The Commerce order comment; deterministic, so a retried comment can be recognised."""
    text = f"Cancelled on Amazon at the seller's request (amazon_order_cancel). Reason: {reason}."
    if note:
        text += f" Note: {note}"
        text += "" if note.endswith(".") else "."
    if feed_id:
        text += f" Amazon feed: {feed_id}."
    return text


def _record(requested: str, amazon_order_id: str | None, outcome: Outcome, detail: str, **kw: Any) -> dict[str, Any]:
    return {
        "requested": requested,
        "amazon_order_id": amazon_order_id,
        "outcome": str(outcome),
        "detail": detail,
        "amazon_status": kw.get("amazon_status"),
        "marketplace_id": kw.get("marketplace_id"),
        "feed_id": kw.get("feed_id"),
    }


# -- step 1: classify, record, submit ------------------------------------------------------------
def request_cancellations(ctx: Resources, account: AccountSettings, request: CancelRequest) -> dict[str, Any]:
    """Classify every requested order, record the cancellations and submit them (one feed per marketplace)."""
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    wanted: list[tuple[str, str]] = [(i, i) for i in request.amazon_order_ids]
    for number in request.commerce_order_numbers:
        row = ctx.store.orders.by_increment_id(number)
        if row is None:
            records.append(
                _record(number, None, Outcome.NOT_FOUND, f"no Amazon order is mapped to Commerce order number {number}")
            )
            continue
        wanted.append((number, row["amazon_order_id"]))
    for requested, order_id in wanted:
        if order_id in seen:
            continue  # the same order named twice (by both numbers): once
        seen.add(order_id)
        try:
            records.append(_classify(ctx, account, request, requested, order_id))
        except IntegrationError as exc:
            records.append(_record(requested, order_id, Outcome.ERROR, f"could not read the order: {exc}"))
            log.warning("order %s: could not be classified: %s", order_id, exc)
    to_send = [r for r in records if r["outcome"] == Outcome.REQUESTED]
    if to_send and not request.dry_run:
        for marketplace in sorted({r["marketplace_id"] for r in to_send}):
            feed_id = feeds.submit_outbox(
                ctx.store,
                ctx.amazon(account),
                account_id=account.account_id,
                kind=outbox_kind(marketplace),
                feed_type=feeds.ORDER_ACKNOWLEDGEMENT,
                message_type="OrderAcknowledgement",
                merchant_id=account.merchant_identifier,
                marketplace_ids=[marketplace],
                build_message=_message,
            )
            if feed_id:
                log.info("%s: cancellations submitted in feed %s", marketplace, feed_id)
        for record in to_send:
            entry = ctx.store.outbox.get(outbox_key(record["amazon_order_id"])) or {}
            if entry.get("status") in (OutboxStatus.SUBMITTED, OutboxStatus.ACCEPTED, OutboxStatus.REJECTED):
                record["feed_id"] = entry.get("feed_id")
    feed_ids = sorted({r["feed_id"] for r in to_send if r.get("feed_id")})
    summary = {
        "account_id": account.account_id,
        "dry_run": request.dry_run,
        "reason": request.reason,
        "orders": records,
        "feed_ids": feed_ids,
    }
    counts: dict[str, int] = {}
    for r in records:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    log.info(
        "%s: %s; feeds to wait for: %s",
        account.account_id,
        summaries.cancel_sentence(counts, dry_run=request.dry_run),
        ", ".join(feed_ids) or "none",
    )
    return summary


def _message(message_id: int, payload: dict[str, Any]):
    return feeds.cancellation_message(message_id, payload["amazon_order_id"], payload["item_codes"], payload["reason"])


def _classify(
    ctx: Resources, account: AccountSettings, request: CancelRequest, requested: str, order_id: str
) -> dict[str, Any]:
    row = ctx.store.orders.get(order_id)
    if row is not None and row["account_id"] != account.account_id:
        return _record(
            requested,
            order_id,
            Outcome.OTHER_ACCOUNT,
            f"belongs to account {row['account_id']}, not {account.account_id}; trigger again with that account_id",
        )
    try:
        order = ctx.amazon(account).get_order(order_id, included_data=GET_ORDER_DATA)
    except NotFoundError:
        return _record(
            requested,
            order_id,
            Outcome.NOT_FOUND,
            f"Amazon does not know this order for account {account.account_id} (404)",
        )
    status = transform.fulfillment_status(order)
    marketplace = (order.get("salesChannel") or {}).get("marketplaceId") or (row or {}).get("marketplace_id") or ""
    base = {"amazon_status": status, "marketplace_id": marketplace}
    if marketplace not in account.marketplace_ids:
        return _record(
            requested,
            order_id,
            Outcome.OTHER_ACCOUNT,
            f"placed in marketplace {marketplace or '?'}, which account {account.account_id} does not sell in",
            **base,
        )
    if status == "CANCELLED":
        return _record(requested, order_id, Outcome.ALREADY_CANCELLED, "already cancelled on Amazon", **base)
    if status in ("SHIPPED", "PARTIALLY_SHIPPED"):
        return _record(
            requested,
            order_id,
            Outcome.SHIPPED,
            f"{status} on Amazon: cannot be cancelled; issue a refund instead",
            **base,
        )
    if status != "UNSHIPPED":
        return _record(
            requested,
            order_id,
            Outcome.NOT_CANCELLABLE,
            f"{status} on Amazon: only UNSHIPPED orders can be cancelled",
            **base,
        )
    if transform.fulfilled_by(order) == "AMAZON":
        return _record(
            requested,
            order_id,
            Outcome.NOT_CANCELLABLE,
            "fulfilled by Amazon (FBA): cancel it in Seller Central",
            **base,
        )
    item_codes = [str(i["orderItemId"]) for i in order.get("orderItems") or [] if i.get("orderItemId")]
    if not item_codes:
        return _record(requested, order_id, Outcome.ERROR, "Amazon returned the order without items", **base)
    key = outbox_key(order_id)
    entry = ctx.store.outbox.get(key)
    if request.dry_run:
        detail = "would be cancelled (dry run: nothing was sent)"
        if entry and entry["status"] in (OutboxStatus.PENDING, OutboxStatus.SUBMITTING, OutboxStatus.SUBMITTED):
            detail += f"; a cancellation is already in flight (feed {entry.get('feed_id') or 'not yet sent'})"
        return _record(requested, order_id, Outcome.WOULD_CANCEL, detail, **base)
    payload = {
        "amazon_order_id": order_id,
        "item_codes": item_codes,
        "reason": request.reason,
        "note": request.note,
        "marketplace_id": marketplace,
    }
    if entry is None:
        if ctx.store.outbox.add(key, outbox_kind(marketplace), account.account_id, order_id, payload):
            ctx.store.ops.audit(
                "cancellation_requested",
                "amazon_order",
                order_id,
                {"reason": request.reason, "marketplace_id": marketplace},
            )
            return _record(requested, order_id, Outcome.REQUESTED, "cancellation recorded", **base)
        entry = ctx.store.outbox.get(key) or {}
    if entry.get("status") == OutboxStatus.REJECTED and ctx.store.outbox.transition(
        key,
        OutboxStatus.PENDING,
        expect=OutboxStatus.REJECTED,
        payload=payload,
        feed_id=None,
        message_id=None,
        amazon_message=None,
    ):
        log.info("order %s: Amazon rejected an earlier cancellation; it is UNSHIPPED, so sending again", order_id)
        return _record(requested, order_id, Outcome.REQUESTED, "recorded again after an earlier rejection", **base)
    feed_id = entry.get("feed_id") if entry.get("status") != OutboxStatus.SUBMITTING else None
    return _record(
        requested,
        order_id,
        Outcome.REQUESTED,
        f"a cancellation is already in flight ({entry.get('status')}); following it",
        feed_id=feed_id,
        **base,
    )


# -- step 2: wait ------------------------------------------------------------------------------
def feeds_finished(ctx: Resources, account: AccountSettings, feed_ids: Iterable[str]) -> bool:
    """True when Amazon has finished every feed (or was concluded already); never raises on a busy Amazon."""
    waiting = []
    for feed_id in feed_ids:
        known = ctx.store.outbox.get_feed(feed_id)
        if known and known.get("completed_at"):
            continue
        try:
            status = ctx.amazon(account).get_feed(feed_id).get("processingStatus", "UNKNOWN")
        except RetriableError as exc:
            log.warning("feed %s: status unknown for now (%s)", feed_id, exc)
            waiting.append(feed_id)
            continue
        if status not in feeds.FINAL_STATUSES:
            waiting.append(f"{feed_id} ({status})")
    if waiting:
        log.info("still processing on Amazon: %s", ", ".join(waiting))
    return not waiting


# -- step 3: conclude, confirm, cancel in Commerce ---------------------------------------------
def confirm_cancellations(ctx: Resources, account: AccountSettings, requested: Mapping[str, Any], *, owner: str):
    """Read the reports, confirm each order's cancellation on Amazon and cancel it in Commerce."""
    records = [dict(r) for r in requested.get("orders") or []]
    if requested.get("dry_run"):
        return {**requested, "orders": records}
    amazon = ctx.amazon(account)
    for feed_id in requested.get("feed_ids") or []:
        known = ctx.store.outbox.get_feed(feed_id)
        if known and known.get("completed_at"):
            continue
        result = feeds.conclude_feed(ctx.store, amazon, feed_id)
        log.info("feed %s: %s", feed_id, result)
    for record in records:
        if record["outcome"] not in (Outcome.REQUESTED, Outcome.ALREADY_CANCELLED):
            continue
        try:
            _confirm_one(ctx, account, record, owner)
        except IntegrationError as exc:
            record["outcome"] = str(Outcome.ERROR)
            record["detail"] = f"{record['detail']}; then failed: {exc} (trigger again to finish; nothing is repeated)"
            log.warning("order %s: %s", record["amazon_order_id"], exc)
    return {**requested, "orders": records}


def _confirm_one(ctx: Resources, account: AccountSettings, record: dict[str, Any], owner: str) -> None:
    order_id = record["amazon_order_id"]
    entry = ctx.store.outbox.get(outbox_key(order_id))
    ours = record["outcome"] == Outcome.REQUESTED
    if ours and entry:
        in_batch = entry["status"] == OutboxStatus.SUBMITTING  # its feed_id names the batch, not a feed
        record["feed_id"] = record.get("feed_id") if in_batch else entry.get("feed_id")
    order = ctx.amazon(account).get_order(order_id, included_data=GET_ORDER_DATA)
    status = transform.fulfillment_status(order)
    record["amazon_status"] = status
    if status != "CANCELLED":
        if not ours:
            record["outcome"], record["detail"] = str(Outcome.NOT_CONFIRMED), f"Amazon now shows it {status}"
        elif entry and entry["status"] == OutboxStatus.REJECTED:
            record["outcome"] = str(Outcome.REJECTED)
            record["detail"] = f"Amazon rejected the cancellation in feed {entry.get('feed_id')}: " + (
                entry.get("amazon_message") or "no message"
            )
        elif entry and entry["status"] == OutboxStatus.ACCEPTED:
            record["outcome"] = str(Outcome.NOT_CONFIRMED)
            record["detail"] = f"Amazon accepted feed {entry.get('feed_id')} but still shows the order {status}"
        else:
            state = (entry or {}).get("status", "missing")
            record["outcome"] = str(Outcome.NOT_CONFIRMED)
            record["detail"] = (
                f"the cancellation is not processed yet (outbox {state}"
                + (f", feed {entry.get('feed_id')}" if entry and entry.get("feed_id") else "")
                + "); trigger again later to finish"
            )
        return
    # An entry still submitted (Amazon shows the order cancelled before its report was read) is fine:
    # the run that reads the report concludes it.
    comment = (
        cancel_comment(entry["payload"]["reason"], entry["payload"].get("note"), entry.get("feed_id"))
        if entry
        else "Cancelled on Amazon."
    )
    done = _cancel_commerce(ctx, account, order_id, comment, owner)
    if ours:
        record["outcome"] = str(Outcome.CANCELLED)
        record["detail"] = f"cancelled on Amazon (feed {record.get('feed_id')}); Commerce: {done}"
    else:
        record["detail"] = f"already cancelled on Amazon; Commerce: {done}"


def _cancel_commerce(ctx: Resources, account: AccountSettings, order_id: str, comment: str, owner: str) -> str:
    row = ctx.store.orders.get(order_id)
    commerce = ctx.commerce(account)
    commerce_id = row["commerce_order_id"] if row else None
    number = row.get("commerce_increment_id") if row else None  # the order number the merchant knows
    if commerce_id is None:
        found = commerce.find_orders_by_ext_order_ids([order_id]).get(order_id) or []
        if not found:
            return "no Commerce order (the order was never imported)"
        first = sorted(found, key=lambda o: int(o["entity_id"]))[0]
        commerce_id, number = int(first["entity_id"]), first.get("increment_id")
    lease = keys.order_lease(order_id)
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    while not ctx.store.ops.acquire_lease(lease, owner, LEASE_SECONDS):
        if time.monotonic() > deadline:
            raise RetriableError(f"Commerce order {commerce_id} is being written by another task", operation="lease")
        time.sleep(1.0)
    try:
        for attempt in range(1, COMMERCE_ATTEMPTS + 1):
            try:
                stock = StockMoves(commerce, ctx.store, account.source_code)
                done = cancel_in_commerce(
                    commerce,
                    ctx.store,
                    order_id,
                    int(commerce_id),
                    comment,
                    put_back_stock=stock.put_back if account.manage_stock else None,
                )
                break
            except RetriableError as exc:
                # Every write in cancel_in_commerce is looked up before it is sent again.
                if attempt == COMMERCE_ATTEMPTS:
                    raise
                log.warning("order %s: Commerce cancellation attempt %d failed (%s); again", order_id, attempt, exc)
    finally:
        ctx.store.ops.release_lease(lease, owner)
    if row is not None:
        ctx.store.orders.set_sync(order_id, OrderSync.CANCELLED, synced_amazon_updated_at=row["amazon_updated_at"])
    if not number:  # a state-store row from before the number was kept: Commerce has it
        number = commerce.get_order(int(commerce_id)).get("increment_id")
    return f"{done.action} (order #{number})" if number else f"{done.action} (order entity {commerce_id})"


# -- step 4: summary ---------------------------------------------------------------------------
def summarize(result: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The per-order summary and the list of failures (``"<order>: <why>"``)."""
    orders = []
    failures = []
    counts: dict[str, int] = {}
    for record in result.get("orders") or []:
        if record["outcome"] == Outcome.REQUESTED:  # the confirmation step never ran
            record = {
                **record,
                "outcome": str(Outcome.NOT_CONFIRMED),
                "detail": record["detail"] + "; not confirmed: the wait or confirmation step failed",
            }
        orders.append(record)
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
        name = record["requested"]
        if record.get("amazon_order_id") and record["amazon_order_id"] != name:
            name = f"{name} (Amazon {record['amazon_order_id']})"
        line = f"{name}: {record['outcome']}: {record['detail']}"
        log.info("%s", line)
        if record["outcome"] not in SUCCESSFUL:
            failures.append(f"{name}: {record['detail']}")
    log.info("cancellation: %s", summaries.cancel_sentence(counts, dry_run=bool(result.get("dry_run"))))
    summary = {
        "account_id": result.get("account_id"),
        "dry_run": bool(result.get("dry_run")),
        "feed_ids": list(result.get("feed_ids") or []),
        "counts": counts,
        "orders": [
            {k: r.get(k) for k in ("requested", "amazon_order_id", "outcome", "detail", "feed_id")} for r in orders
        ],
    }
    return summary, failures
