"""A buyer's cancellation request decided by a person in Airflow (the ``amazon_buyer_cancel_decision`` DAG).

When a buyer asks Amazon to cancel an unshipped merchant-fulfilled order, the import puts the Commerce order on
hold (``order_import``) and then asks for a decision: one run of this DAG per request, run id
``constants.cancel_decision_run_id`` (``pending_requests`` lists the requests without one). A run:

1. ``prepare``: re-reads the order from Amazon (getOrder 2026-01-01, no buyer data) and says whether there is
   still something to decide (UNSHIPPED, merchant-fulfilled, held in Commerce); builds what the person sees:
   Amazon order id, Commerce order number, items (seller SKU x quantity), amount and currency, what the buyer said
   (``cancellationRequest.cancelReason``) and the ship-by date (``fulfillment.shipByWindow.latestDateTime``) - no
   personal data. The answer is due at the ship-by date, or ``default_hours`` after the request when Amazon
   gives none.
2. ``decide``: Airflow's human-in-the-loop step (``amazon_commerce_sync.decision_operator``): **Cancel** or **Keep**.
3. ``apply_decision`` re-reads the order from Amazon before acting, so a decision taken after the order changed
   (shipped, cancelled) does nothing and says why:

   - Cancel: the order is cancelled on both sides with reason ``BuyerCanceled`` through ``amazon_order_cancel``'s
     own steps (``order_cancel.request_cancellations``, then the DAG's wait and confirm tasks).
   - Keep: the Commerce hold is released (``POST /V1/orders/{id}/unhold``) and one comment says so, each exactly
     once (``commerce_writes``).
   - No answer by the deadline: nothing is cancelled, the order stays on hold, and an alert goes through the
     configured notifier (``alerts.send_alert``) saying the request was not decided before ship-by.

Deciding again (a cleared task, a second run) repeats nothing: the cancellation is in the outbox and every
Commerce write in the intent log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, exists, select

from amazon_commerce_sync import constants, transform
from amazon_commerce_sync.alerts import Alert, safe_text, send_alert
from amazon_commerce_sync.cancel_request import GET_ORDER_DATA, CancelRequest
from amazon_commerce_sync.commerce_writes import keys, orders
from amazon_commerce_sync.commerce_writes.orders import STATE_HOLDED
from amazon_commerce_sync.commerce_writes.protocol import Source
from amazon_commerce_sync.decision_operator import CANCEL, KEEP, OPTIONS
from amazon_commerce_sync.errors import NotFoundError, redact_contact
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import OrderSync
from amazon_commerce_sync.store.orders import ship_by_of
from amazon_commerce_sync.store.schema import amazon_orders, audit_log

log = logging.getLogger(__name__)

REASON = "BuyerCanceled"  # Amazon's CancelReason for a cancellation the buyer asked for
OPENED = "cancel_decision_opened"  # audit action: the decision run read the request (one run per request)
DECIDED = "cancel_decision_applied"  # audit action: what was decided and done
UNDECIDED_ALERT = "buyer_cancel_undecided"
MAX_REASON = 200  # characters of the buyer's reason shown
KEEP_COMMENT = (
    "The buyer's cancellation request was declined in Airflow (amazon_buyer_cancel_decision): "
    "the order is kept and released from hold. Ship it as usual."
)


# -- who needs a decision -------------------------------------------------------------------------------
def pending_requests(store, account_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The buyer cancellation requests no decision run has opened yet, as ``TriggerDagRunOperator`` arguments.

    An order qualifies while it is on hold for its buyer's request (``sync_status`` ``on_hold``) and still
    UNSHIPPED on Amazon as last imported: an order shipped meanwhile never gets a decision. Listed again until
    its run's ``prepare`` step records ``cancel_decision_opened``; the fixed run id makes a repeat a no-op.

    :returns: ``[{"trigger_run_id": str, "conf": {"account_id": str, "amazon_order_id": str}}]``, by order id.
    """
    opened = exists().where(
        and_(audit_log.c.action == OPENED, audit_log.c.entity_id == amazon_orders.c.amazon_order_id)
    )
    query = (
        select(amazon_orders.c.account_id, amazon_orders.c.amazon_order_id)
        .where(
            amazon_orders.c.account_id.in_(list(account_ids)),
            amazon_orders.c.sync_status == str(OrderSync.ON_HOLD),
            amazon_orders.c.amazon_status == "UNSHIPPED",
            amazon_orders.c.fulfilled_by == "MERCHANT",
            ~opened,
        )
        .order_by(amazon_orders.c.amazon_order_id)
    )
    with store.reading() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "trigger_run_id": constants.cancel_decision_run_id(account_id, order_id),
            "conf": {"account_id": account_id, "amazon_order_id": order_id},
        }
        for account_id, order_id in rows
    ]


# -- step 1: what the person sees -----------------------------------------------------------------------
def _buyer_reason(order: Mapping[str, Any]) -> str | None:
    for item in order.get("orderItems") or []:
        request = (item.get("cancellation") or {}).get("cancellationRequest") or {}
        if request.get("requester") == "BUYER" and request.get("cancelReason"):
            return safe_text(redact_contact(str(request["cancelReason"])), MAX_REASON)
    return None


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _still_open(row: Mapping[str, Any] | None, order: Mapping[str, Any], account: AccountSettings) -> str | None:
    """Why there is nothing to decide, or None when the request is still open."""
    if row is None or row.get("commerce_order_id") is None:
        return "the order was never imported into Commerce: there is no hold to decide on"
    if row["account_id"] != account.account_id:
        return f"the order belongs to account {row['account_id']}, not {account.account_id}"
    status = transform.fulfillment_status(order)
    if status in ("SHIPPED", "PARTIALLY_SHIPPED"):
        return f"{status} on Amazon: nothing to cancel any more (a refund is the way now)"
    if status == "CANCELLED":
        return "already cancelled on Amazon: the import cancels the Commerce order"
    if status != "UNSHIPPED":
        return f"{status} on Amazon: only UNSHIPPED orders are cancelled"
    if transform.fulfilled_by(order) != "MERCHANT":
        return "fulfilled by Amazon: Amazon handles the buyer's request"
    if not transform.buyer_cancel_requested(order):
        return "Amazon no longer shows a cancellation request from the buyer"
    return None


def prepare(ctx: Resources, account: AccountSettings, order_id: str, *, now: datetime, default_hours: float):
    """Re-read the order and describe the decision (no personal data); ``open`` False when nothing is left to decide.

    :param now: when the request was taken up (the run's ``run_after``): the deadline without a ship-by counts
        from it, so a rerun keeps the same deadline.
    :returns: ``{"account_id", "amazon_order_id", "open", "why", "subject", "body", "deadline"}``; ``deadline`` is
        ISO 8601 UTC: Amazon's ship-by, or ``now + default_hours`` when the order has none.
    """
    row = ctx.store.orders.get(order_id)
    result: dict[str, Any] = {"account_id": account.account_id, "amazon_order_id": order_id, "open": False}
    try:
        order = ctx.amazon(account).get_order(order_id, included_data=GET_ORDER_DATA)
    except NotFoundError:
        return {**result, "why": f"Amazon does not know this order for account {account.account_id} (404)"}
    if ctx.store.ops.last_audit_at(OPENED, order_id) is None:
        ctx.store.ops.audit(OPENED, "amazon_order", order_id, {"account_id": account.account_id})
    why = _still_open(row, order, account)
    if why:
        log.info("order %s: no decision needed: %s", order_id, why)
        return {**result, "why": why}
    staged = row["payload"] or {}
    ship_by = ship_by_of(staged) or ship_by_of(order)  # fulfillment.shipByWindow.latestDateTime, staged or fresh
    deadline = ship_by or now + timedelta(hours=default_hours)
    items = [
        f"{(i.get('product') or {}).get('sellerSku') or '?'} x {i.get('quantityOrdered') or '?'}"
        for i in staged.get("orderItems") or order.get("orderItems") or []
    ]
    total = Decimal(str(row["order_total"])) if row.get("order_total") is not None else None
    amount = f"{total:.2f} {row.get('currency') or ''}".strip() if total is not None else "unknown"
    number = row.get("commerce_increment_id") or f"entity {row['commerce_order_id']}"
    reason = _buyer_reason(order) or "no reason given"
    lines = [
        f"The buyer asked Amazon to cancel order **{order_id}** (Commerce order **{number}**). "
        "The Commerce order is on hold until you decide.",
        "",
        f"- Items: {', '.join(items) or 'none listed'}",
        f"- Amount: {amount}",
        f"- The buyer said: {reason}",
        f"- Ship by: {ship_by.isoformat(timespec='minutes') if ship_by else 'not given by Amazon'}",
        f"- Answer by: {deadline.astimezone(UTC).isoformat(timespec='minutes')}",
        "",
        f"**{CANCEL}**: cancel it on Amazon (reason {REASON}) and in Commerce. "
        f"**{KEEP}**: decline the request, release the hold and ship it.",
        "Without an answer by then nothing is cancelled, the order stays on hold and an alert is sent.",
    ]
    return {
        **result,
        "open": True,
        "why": None,
        "subject": f"Buyer asks to cancel Amazon order {order_id} (Commerce {number})",
        "body": "\n".join(lines),
        "deadline": deadline.astimezone(UTC).isoformat(),
    }


def response_timeout(prepared: Mapping[str, Any], now: datetime) -> timedelta:
    """How long the decision waits: until the deadline, at least one second (a past deadline times out at once)."""
    deadline = _parse_time(prepared.get("deadline"))
    left = (deadline - now) if deadline else timedelta(0)
    return max(left, timedelta(seconds=1))


# -- step 3: act on the answer --------------------------------------------------------------------------
def chosen(decision: Mapping[str, Any] | None) -> str | None:
    """The option the person chose (``Cancel``/``Keep``), or None (timed out, or nothing was asked)."""
    options = list((decision or {}).get("chosen_options") or [])
    return options[0] if len(options) == 1 and options[0] in OPTIONS else None


def apply_decision(
    ctx: Resources,
    account: AccountSettings,
    prepared: Mapping[str, Any],
    decision: Mapping[str, Any] | None,
    request_cancellations: Callable[[Resources, AccountSettings, CancelRequest], dict[str, Any]],
) -> dict[str, Any]:
    """Do what was decided, after re-reading the order from Amazon.

    ``request_cancellations`` is ``amazon_order_cancel``'s own first step (``order_cancel.request_cancellations``,
    passed in by the task: pipelines never import each other), so Cancel takes exactly that path.

    :returns: the ``amazon_order_cancel`` request record (``order_cancel.request_cancellations``: ``account_id``,
        ``orders``, ``feed_ids``...), so the DAG's wait and confirm steps finish a cancellation, plus ``decision``
        (``Cancel``/``Keep``/None) and ``outcome`` / ``detail`` for Keep, a timeout or nothing to do.
    """
    order_id = prepared["amazon_order_id"]
    choice = chosen(decision)
    base: dict[str, Any] = {"account_id": account.account_id, "dry_run": False, "reason": REASON}
    result = {**base, "orders": [], "feed_ids": [], "decision": choice, "amazon_order_id": order_id}
    if not prepared.get("open"):
        return {**result, "outcome": "nothing_to_decide", "detail": prepared.get("why")}
    if choice is None:
        return {**result, **_undecided(ctx, account, prepared, decision)}
    row = ctx.store.orders.get(order_id)
    order = ctx.amazon(account).get_order(order_id, included_data=GET_ORDER_DATA)
    status = transform.fulfillment_status(order)
    if status in ("SHIPPED", "PARTIALLY_SHIPPED"):
        detail = f"{choice} decided, but the order is {status} on Amazon since the request: nothing was done"
        return {**result, **_nothing_done(ctx, order_id, choice, "shipped", detail)}
    if choice == CANCEL:
        request = CancelRequest((order_id,), (), REASON, None, False, account.account_id)
        requested = request_cancellations(ctx, account, request)
        ctx.store.ops.audit(DECIDED, "amazon_order", order_id, {"decision": choice, "amazon_status": status})
        return {**result, **requested, "decision": choice, "outcome": "cancel_requested", "detail": None}
    if status != "UNSHIPPED":
        detail = f"{KEEP} decided, but the order is {status} on Amazon now: the hold was left as it is"
        return {**result, **_nothing_done(ctx, order_id, choice, "changed", detail)}
    return {**result, **_keep(ctx, account, order_id, int(row["commerce_order_id"]))}


def _nothing_done(ctx: Resources, order_id: str, choice: str, outcome: str, detail: str) -> dict[str, Any]:
    """A decision the order's change made moot: audited, nothing written."""
    log.warning("order %s: %s", order_id, detail)
    ctx.store.ops.audit(DECIDED, "amazon_order", order_id, {"decision": choice, "outcome": outcome})
    return {"outcome": outcome, "detail": detail}


def _keep(ctx: Resources, account: AccountSettings, order_id: str, commerce_id: int) -> dict[str, Any]:
    commerce = ctx.commerce(account)
    state = commerce.get_order(commerce_id).get("state")
    if state != STATE_HOLDED and ctx.store.writes.get(keys.unhold(order_id).natural_key) is None:
        detail = f"{KEEP} decided, but the Commerce order is {state}, not on hold: nothing was changed"
        return _nothing_done(ctx, order_id, KEEP, "changed", detail)
    released = orders.unhold(commerce, ctx.store, order_id, commerce_id)
    noted = orders.comment(commerce, ctx.store, keys.comment("buyer_keep", order_id), commerce_id, KEEP_COMMENT)
    if released.source is Source.RECORDED and noted.source is Source.RECORDED:
        return {"outcome": "kept", "detail": "already kept and released by an earlier decision: nothing repeated"}
    ctx.store.orders.set_sync(order_id, OrderSync.IMPORTED)
    ctx.store.ops.audit(DECIDED, "amazon_order", order_id, {"decision": KEEP, "commerce_order_id": commerce_id})
    return {"outcome": "kept", "detail": f"released from hold in Commerce (order {commerce_id}) with a comment"}


def _undecided(ctx: Resources, account: AccountSettings, prepared: Mapping[str, Any], decision) -> dict[str, Any]:
    order_id = prepared["amazon_order_id"]
    deadline = prepared.get("deadline")
    key = f"{UNDECIDED_ALERT}:{order_id}"
    if ctx.store.ops.last_audit_at("alert_sent", key) is None:
        send_alert(
            Alert(
                kind=UNDECIDED_ALERT,
                key=key,
                account_id=account.account_id,
                subject=f"buyer cancellation request for Amazon order {order_id} not decided before ship-by",
                what=f"the buyer asked to cancel {order_id}; nobody chose Cancel or Keep by {deadline} (the "
                "order's ship-by date). Nothing was cancelled; the Commerce order is still on hold.",
                action="Cancel it with the amazon_order_cancel DAG (reason BuyerCanceled), or release the hold "
                "in Commerce and ship it; Amazon counts a late shipment against the seller.",
            )
        )
        ctx.store.ops.audit("alert_sent", "alert", key, {"kind": UNDECIDED_ALERT, "account_id": account.account_id})
    ctx.store.ops.audit(DECIDED, "amazon_order", order_id, {"decision": None, "outcome": "not_decided"})
    detail = f"not decided by {deadline}: nothing cancelled, the order stays on hold; alert sent"
    return {"outcome": "not_decided", "detail": detail}


def summarize(
    applied: Mapping[str, Any],
    confirmed: Mapping[str, Any] | None,
    cancel_summary: Callable[[Mapping[str, Any]], tuple[dict[str, Any], list[str]]],
) -> tuple[dict[str, Any], list[str]]:
    """The run's outcome: the cancellation's summary (``cancel_summary``: ``order_cancel.summarize``, passed in by
    the task) for Cancel, else one line.

    :returns: ``(summary, failures)``; failures name what could not be done (the run then fails).
    """
    if applied.get("decision") == CANCEL and applied.get("orders"):
        summary, failures = cancel_summary(confirmed or applied)
        return {**summary, "decision": CANCEL, "amazon_order_id": applied["amazon_order_id"]}, failures
    line = f"{applied['amazon_order_id']}: {applied.get('decision') or 'no decision'}: {applied.get('detail')}"
    log.info("%s", line)
    keys_ = ("account_id", "amazon_order_id", "decision", "outcome", "detail")
    return {k: applied.get(k) for k in keys_}, []
