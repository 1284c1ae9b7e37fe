"""Refund reconciliation between Adobe Commerce and Amazon, both directions (the rules: ``refunds``).

Commerce → Amazon: credit memos (cursor over ``GET /V1/creditmemos`` by ``updated_at``, with overlap) on imported
Amazon orders become ``OrderAdjustment`` messages of a ``POST_PAYMENT_ADJUSTMENT_DATA`` feed
(``refunds.plan_adjustment``), one outbox entry ``refund:<creditmemo id>`` each. A memo that refunds more than
Amazon can still refund for an item, names an unknown item, or is in another currency than the order is recorded
*rejected* with the reason (and quarantined), never sent. All pending adjustments of an account go in ONE feed per
run (createFeed allows 0.0083 requests/s); feeds of earlier runs are concluded first, no waiting.

Amazon → Commerce: refund transactions (Finances 2024-06-19 ``listTransactions``, ``transactionType`` Refund, any
``transactionStatus``; cursor by ``postedDate`` with a 48-hour overlap, ``postedBefore`` = now − 3 min; keyed by
``transactionId``, so a deferred refund released later is the same one) of imported orders are matched line by
line against our own adjustments (``refunds.match_own``: order item and exact amounts; an accepted adjustment
posted with other amounts is ours too, for the three-way check). The rest become one offline credit memo per
transaction (``refunds.plan_mirror``), with an order comment. Gift wrap and facilitator tax: ``refund_charges``.

Exactly once: outbox entries are keyed by the credit memo id, a mirrored refund is the write ``mirror:<transaction
key>`` (``commerce_writes.refunds``: after an ambiguous failure the order's memos are looked at first); memos we
created, or of Amazon-side cancellations, are never sent. No buyer data here: only ids, SKUs and amounts.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from amazon_commerce_sync import feeds, refund_records, transform
from amazon_commerce_sync.commerce_writes import keys, orders
from amazon_commerce_sync.commerce_writes.protocol import Source
from amazon_commerce_sync.commerce_writes.refunds import OfflineRefund, refund_offline
from amazon_commerce_sync.errors import FatalError
from amazon_commerce_sync.feeds import PAYMENT_ADJUSTMENT, AdjustedItem, conclude_feed, submit_outbox
from amazon_commerce_sync.refund_amounts import as_json, memo_amounts, near_own
from amazon_commerce_sync.refund_charges import commerce_lines, excluded_detail, excluded_note, tax_not_in_commerce
from amazon_commerce_sync.refunds import (
    EVENT,
    ZERO,
    RefundLine,
    RefundProblem,
    adjustment_payload,
    amazon_paid_by_item,
    dec,
    is_refund,
    match_own,
    plan_adjustment,
    plan_mirror,
    refund_lines,
    refunded_by_item,
    related,
    skus_of,
    transaction_key,
)
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import OrderRow, OrderSync, OutboxRow, OutboxStatus, WriteStatus
from amazon_commerce_sync.times import parse_time

log = logging.getLogger(__name__)

KIND = "refund"  # outbox kind of payment adjustments
MIRROR = "refund_mirror"  # intent log kind: a credit memo we create for an Amazon-side refund
OWN = "refund_own"  # intent log kind: one of our adjusted items seen coming back through Finances
PUBLICATION_LAG = timedelta(minutes=3)  # Finances: PostedBefore must be >= 2 minutes before now
FINANCES_OVERLAP = timedelta(hours=48)  # Amazon: events "might not include orders from the last 48 hours"
OWN_STATUSES = (OutboxStatus.SUBMITTING, OutboxStatus.SUBMITTED, OutboxStatus.ACCEPTED)
WAITING_ORDERS = (OrderSync.WAITING, OrderSync.WAITING_PRODUCT, OrderSync.PENDING_PAYMENT)


def outbox_key(creditmemo_id: int) -> str:
    """The outbox entry of a Commerce credit memo's adjustment."""
    return f"refund:{creditmemo_id}"


def memo_stream(account: AccountSettings) -> str:
    """The cursor over the account's Commerce credit memos."""
    return f"refunds:commerce:{account.account_id}"


def finances_stream(account: AccountSettings) -> str:
    """The cursor over the account's Finances refund transactions (``postedDate``)."""
    return f"refunds:amazon:{account.account_id}"


class RefundSync:
    """One account's refund reconciliation; each public method is one task's transaction."""

    def __init__(self, ctx: Resources, account: AccountSettings) -> None:
        self.ctx = ctx
        self.account = account
        self.store = ctx.store
        self.counts: collections.Counter[str] = collections.Counter()

    @property
    def amazon(self):
        return self.ctx.amazon(self.account)

    @property
    def commerce(self):
        return self.ctx.commerce(self.account)

    def summary(self) -> dict[str, Any]:
        return {"account": self.account.account_id, **dict(sorted(self.counts.items()))}

    # -- feeds ---------------------------------------------------------------------------------
    def conclude_open_feeds(self) -> dict[str, Any]:
        """Conclude the feeds earlier runs submitted whose processing finished; never waits."""
        self.counts.update(accepted=0, rejected=0, feeds_open=0)
        for feed in self.store.outbox.open_feeds(PAYMENT_ADJUSTMENT, account_id=self.account.account_id):
            result = conclude_feed(self.store, self.amazon, feed["feed_id"])
            if result.get("status") not in ("DONE", "CANCELLED", "FATAL"):
                self.counts["feeds_open"] += 1
                continue
            self.counts["accepted"] += result.get("accepted", 0)
            self.counts["rejected"] += result.get("rejected", 0)
            for entry in self.store.outbox.entries(kind=KIND, feed_id=feed["feed_id"]):
                payload = entry["payload"]
                event = None
                if entry["status"] == OutboxStatus.REJECTED:  # because Amazon refunded the same items itself?
                    event = refund_records.seen_in_amazon_refund(
                        self.store, entry
                    ) or refund_records.unmirrored_amazon_refund(self.store, entry)
                if event:
                    self._refunded_by_amazon(entry, event)
                    continue
                if entry["status"] == OutboxStatus.REJECTED:
                    self.store.ops.quarantine(
                        "creditmemo",
                        str(payload.get("creditmemo_id")),
                        f"Amazon rejected the refund: {entry.get('amazon_message')}",
                        {"amazon_order_id": entry["amazon_order_id"], "feed_id": feed["feed_id"]},
                    )
                self.store.ops.audit(
                    f"refund_{entry['status']}",
                    "creditmemo",
                    str(payload.get("creditmemo_id")),
                    {
                        "amazon_order_id": entry["amazon_order_id"],
                        "feed_id": feed["feed_id"],
                        "total": payload["total"],
                    },
                )
            log.info("%s: feed %s %s", self.account.account_id, feed["feed_id"], result)
        return self.summary()

    def submit(self) -> dict[str, Any]:
        """All pending adjustments of the account in one feed, then one look at it (no waiting)."""
        pending = self.store.outbox.entries(
            kind=KIND, statuses=[OutboxStatus.PENDING], account_id=self.account.account_id
        )
        feed_id = submit_outbox(
            self.store,
            self.amazon,
            account_id=self.account.account_id,
            kind=KIND,
            feed_type=PAYMENT_ADJUSTMENT,
            message_type="OrderAdjustment",
            merchant_id=self.account.merchant_identifier,
            marketplace_ids=self.account.marketplace_ids,
            build_message=feeds.build_adjustment_message,
        )
        self.counts["sent"] = len(self.store.outbox.entries(feed_id=feed_id)) if feed_id else 0
        if feed_id and not pending:
            self.counts["recovered_feed"] += 1
        self.counts["feed"] = 1 if feed_id else 0
        self.conclude_open_feeds()
        return self.summary()

    # -- Commerce → Amazon ---------------------------------------------------------------------
    def queue_creditmemos(self, now: datetime) -> dict[str, Any]:
        """New credit memos since the cursor become outbox entries (or rejections with a reason)."""
        self.counts.update(queued=0, rejected=0, skipped=0, held=0)
        stream = memo_stream(self.account)
        cursor = self.store.ops.get_cursor(stream) or self.account.import_orders_after
        since = cursor - timedelta(minutes=self.account.overlap_minutes)
        newest: datetime | None = None
        held: datetime | None = None
        for memo in self.commerce.iter_creditmemos(since, page_size=self.account.page_size):
            updated = parse_time(memo["updated_at"]) if memo.get("updated_at") else now
            outcome = self._queue_memo(memo)
            self.counts[outcome] += 1
            if outcome == "held":
                held = updated if held is None else min(held, updated)
            newest = updated if newest is None else max(newest, updated)
        if newest is not None:
            self.store.ops.set_cursor(stream, min(newest, held) if held else newest)
        return self.summary()

    def _queue_memo(self, memo: Mapping[str, Any]) -> str:
        memo_id = int(memo["entity_id"])
        key = outbox_key(memo_id)
        if self.store.outbox.get(key):
            return "known"
        row = self.store.orders.by_commerce_id(int(memo.get("order_id") or 0))
        if row is None or row["account_id"] != self.account.account_id:
            return "skipped"  # not an Amazon order (of this account)
        order_id = row["amazon_order_id"]
        if self.store.writes.by_entity(MIRROR, memo_id):
            return "mirror_of_amazon_refund"
        writes = self.store.writes.for_order(order_id)
        if any(w["kind"] == MIRROR and w["status"] == WriteStatus.INTENT for w in writes):
            return "held"  # a mirrored refund's outcome is unknown: this memo might be it
        if any(w["natural_key"] == keys.cancel(order_id).natural_key for w in writes):
            return "cancellation"  # the Amazon order was cancelled: the memo is not a refund
        entries = self.store.outbox.for_order(order_id, KIND)
        item_codes = {commerce: amazon for amazon, commerce in self.store.orders.item_ids(order_id).items()}
        paid, facilitator = amazon_paid_by_item(row["payload"]), tax_not_in_commerce(row["payload"], self.account)
        collected: dict = {}  # the facilitator tax the adjustment adds to the memo's amounts

        def plan(counted_writes: list[Mapping[str, Any]]) -> list[AdjustedItem]:
            return plan_adjustment(
                memo,
                currency=row["currency"] or "",
                item_codes=item_codes,
                paid=paid,
                refunded=refunded_by_item(entries, counted_writes),
                reason=self.account.refund_reason,
                facilitator=facilitator,
                collected=collected,
            )

        try:
            items = plan(writes)
        except (RefundProblem, transform.MalformedOrder) as exc:
            # Over-refunded because Amazon refunded the same items itself and this memo took its mirror's place?
            unmirrored = [w for w in writes if w["kind"] == EVENT and w["status"] == WriteStatus.FAILED]
            try:
                alone = plan([w for w in writes if w not in unmirrored]) if unmirrored else None
            except (RefundProblem, transform.MalformedOrder):
                alone = None
            if alone:
                payload = adjustment_payload(order_id, memo, alone)
                event = refund_records.unmirrored_amazon_refund(
                    self.store, {"amazon_order_id": order_id, "payload": payload}
                )
                if event and self.store.outbox.add(key, KIND, self.account.account_id, order_id, payload):
                    self._refunded_by_amazon(self.store.outbox.get(key), event)
                    return "settled_by_amazon"  # the summary counter users know
            reason = str(exc)
            payload = {
                "amazon_order_id": order_id,
                "creditmemo_id": memo_id,
                "commerce_order_id": row["commerce_order_id"],
                "total": str(dec(memo.get("grand_total"))),
                "items": [],
                "problem": reason,
            }
            self.store.outbox.add(
                key,
                KIND,
                self.account.account_id,
                order_id,
                payload,
                OutboxStatus.REJECTED,
                f"not sent: {reason}"[:2000],
            )
            self.store.ops.quarantine("creditmemo", str(memo_id), reason, {"amazon_order_id": order_id})
            self.store.ops.audit(
                "refund_not_sent", "creditmemo", str(memo_id), {"amazon_order_id": order_id, "reason": reason}
            )
            log.warning("%s: credit memo %s not sent to Amazon: %s", self.account.account_id, memo_id, reason)
            return "rejected"
        payload = adjustment_payload(order_id, memo, items, collected)
        payload["memo_amounts"] = as_json(memo_amounts(memo, item_codes, collected))  # for the three-way check
        if self.store.outbox.add(key, KIND, self.account.account_id, order_id, payload):
            self.store.ops.audit(
                "refund_queued", "creditmemo", str(memo_id), {"amazon_order_id": order_id, "total": payload["total"]}
            )
        return "queued"

    # -- Amazon → Commerce ---------------------------------------------------------------------
    def mirror_amazon_refunds(self, now: datetime) -> dict[str, Any]:
        """Refund events posted on Amazon's side become offline credit memos in Commerce, once."""
        self.counts.update(mirrored=0, recognised_own=0, skipped=0, held=0, rejected=0)
        stream = finances_stream(self.account)
        cursor = self.store.ops.get_cursor(stream) or self.account.import_orders_after
        after = max(cursor - FINANCES_OVERLAP, self.account.import_orders_after - timedelta(days=1))
        limit = now - PUBLICATION_LAG
        held: datetime | None = None
        while after < limit:  # windows of at most max_window_days, oldest first
            before = min(limit, after + timedelta(days=self.account.max_window_days))
            for page in self.amazon.list_transactions(posted_after=after, posted_before=before):
                for transaction in page:
                    if not is_refund(transaction):
                        continue
                    outcome = self._handle_event(transaction)
                    self.counts[outcome] += 1
                    if outcome == "held":
                        posted = parse_time(transaction["postedDate"])
                        held = posted if held is None else min(held, posted)
            if held is None:
                self.store.ops.set_cursor(stream, before)
            after = before
        if held is not None:
            self.store.ops.set_cursor(stream, held)  # never moves back: the held refund is read again next run
        return self.summary()

    def _handle_event(self, event: Mapping[str, Any]) -> str:
        """One refund transaction (any ``transactionStatus``): ours recognised, the rest mirrored, once."""
        order_id = str(related(event, "ORDER_ID") or "")
        row = self.store.orders.get(order_id)
        if row is None or row["account_id"] != self.account.account_id:
            return "skipped"  # an order the import never staged (e.g. placed before the start date)
        if not row["commerce_order_id"]:
            return "held" if row["sync_status"] in WAITING_ORDERS else "skipped"
        try:
            key = transaction_key(event)
        except RefundProblem:
            return "skipped"
        seen = self.store.writes.get(key)
        if seen and seen["status"] in (WriteStatus.DONE, WriteStatus.FAILED):
            return "known"  # handled (FAILED: reported in the quarantine, for a person)
        try:
            lines = refund_lines(event, skus_of(row["payload"]))
        except RefundProblem as exc:
            return self._reject_event(key, order_id, str(exc))
        if legacy := refund_records.legacy_event(self.store, order_id, lines):  # handled when read from v0
            self.store.writes.record(key, EVENT, order_id, None, detail={"own": [], "foreign": {}, "legacy": legacy})
            return "known"
        own_writes = [w for w in self.store.writes.for_order(order_id) if w["kind"] == OWN]
        taken = {w["natural_key"].split(":", 1)[1] for w in own_writes if (w.get("detail") or {}).get("event") != key}
        candidates = [
            item
            for entry in self.store.outbox.for_order(order_id, KIND)
            if entry["status"] in OWN_STATUSES
            for item in entry["payload"].get("items") or []
            if item["madj"] not in taken
        ]
        own, foreign = match_own(lines, candidates)
        if foreign:
            adopted, foreign = self._adopt_rejected(order_id, key, foreign, taken)
            own += adopted
        if foreign:  # one of our accepted adjustments, posted with other amounts: the three-way check says so
            accepted = [
                [i for i in entry["payload"].get("items") or [] if i["madj"] not in taken]
                for entry in self.store.outbox.for_order(order_id, KIND)
                if entry["status"] == OutboxStatus.ACCEPTED
            ]
            near, foreign = near_own(foreign, accepted)
            own += near
        refund_records.recognise_own(
            self.store, order_id, key, [madj for _line, madj in own], {madj: ln.charges for ln, madj in own}
        )
        if not foreign:
            self.store.writes.record(key, EVENT, order_id, None, detail={"own": [m for _, m in own], "foreign": {}})
            return "recognised_own"
        foreign_amounts: dict[str, dict[str, str]] = {}
        for line in foreign:
            for kind, amount in line.charges.items():
                current = Decimal(foreign_amounts.setdefault(line.code, {}).get(kind, "0"))
                foreign_amounts[line.code][kind] = str(current + amount)
        kept, excluded = commerce_lines(foreign, tax_not_in_commerce(row["payload"], self.account))
        detail = {"own": [m for _, m in own], "foreign": foreign_amounts, **excluded_detail(excluded)}
        if not kept:  # only tax Amazon collected and the Commerce order never carried: nothing to mirror
            self.store.writes.record(key, EVENT, order_id, None, detail=detail)
            return "facilitator_tax_only"
        self.store.writes.record_intent(key, EVENT, order_id, detail)
        currency = row["currency"] or ""
        wrong = sorted({line.currency for line in foreign if line.currency and line.currency != currency})
        if wrong:
            return self._reject_event(key, order_id, f"refund in {', '.join(wrong)} but the order is in {currency}")
        try:
            memo_id = self._mirror_once(key, row, kept, event)
        except FatalError as exc:
            return self._reject_event(key, order_id, f"Commerce refused the credit memo: {exc}")
        self.store.writes.complete(key, memo_id, detail=detail)
        self.store.ops.audit(
            "amazon_refund_mirrored",
            "amazon_order",
            order_id,
            {"creditmemo_id": memo_id, "event": key, "total": str(sum((ln.total for ln in foreign), ZERO))},
        )
        return "mirrored"

    def _adopt_rejected(
        self, order_id: str, key: str, foreign: list[RefundLine], taken: set[str]
    ) -> tuple[list[tuple[RefundLine, str]], list[RefundLine]]:
        """A credit memo Amazon refused because Amazon refunded the same items itself (the merchant and Amazon
        refunded at the same time, e.g. on a return): when every item of the refused adjustment matches this
        Amazon refund exactly, the memo already stands for it in Commerce. The adjustment counts as done by
        Amazon's refund (no second credit memo, the memo leaves the quarantine) instead of a conflict."""
        adopted: list[tuple[RefundLine, str]] = []
        for entry in self.store.outbox.for_order(order_id, KIND):
            items = [i for i in entry["payload"].get("items") or [] if i["madj"] not in taken]
            if entry["status"] != OutboxStatus.REJECTED or not items:
                continue
            matched, rest = match_own(foreign, items)
            if len(matched) != len(items):
                continue
            foreign = rest
            adopted += matched
            self._refunded_by_amazon(entry, key)
        return adopted, foreign

    def _refunded_by_amazon(self, entry: OutboxRow, key: str) -> None:
        """Our adjustment ``entry`` stands for Amazon's own refund event ``key``: accepted, out of quarantine."""
        memo_id = entry["natural_key"].split(":", 1)[1]
        refused = f" Amazon had refused the adjustment: {entry['amazon_message']}" if entry["amazon_message"] else ""
        message = f"Amazon refunded this itself ({key}); credit memo {memo_id} stands for that refund.{refused}"
        self.store.outbox.transition(entry["id"], OutboxStatus.ACCEPTED, expect=entry["status"], amazon_message=message)
        self.store.ops.resolve_quarantine("creditmemo", memo_id)
        # The audit action and the counter keep their first names: users' audit trails and dashboards have them.
        self.store.ops.audit(
            "refund_settled_by_amazon",
            "amazon_order",
            entry["amazon_order_id"],
            {"creditmemo_id": memo_id, "event": key},
        )
        self.counts["settled_by_amazon"] += 1
        log.info("%s: credit memo %s refunded by Amazon itself (%s)", self.account.account_id, memo_id, key)

    def _reject_event(self, key: str, order_id: str, reason: str) -> str:
        self.store.ops.quarantine("amazon_refund", key[-64:], reason, {"amazon_order_id": order_id, "event": key})
        self.store.ops.audit("amazon_refund_not_mirrored", "amazon_order", order_id, {"event": key, "reason": reason})
        write = self.store.writes.get(key)
        detail = (write or {}).get("detail") or {}
        self.store.writes.record(
            key, EVENT, order_id, None, status=WriteStatus.FAILED, detail={**detail, "problem": reason}
        )
        log.warning("%s: Amazon refund on order %s not mirrored: %s", self.account.account_id, order_id, reason)
        return "rejected"

    def _mirror_once(self, key: str, row: OrderRow, lines: Sequence[RefundLine], event: Mapping[str, Any]) -> int:
        """The offline credit memo of Amazon's refund event ``key``, and its order comment; once each."""
        order_id = row["amazon_order_id"]
        commerce_id = int(row["commerce_order_id"])

        def plan() -> OfflineRefund:
            order = self.commerce.get_order(commerce_id)
            planned = plan_mirror(order, lines, self.store.orders.item_ids(order_id))
            planned.pop("uncollected")
            return OfflineRefund.for_order(order, **planned)

        def claimed(memo_id: int) -> bool:
            return bool(self.store.writes.by_entity(MIRROR, memo_id) or self.store.outbox.get(outbox_key(memo_id)))

        result = refund_offline(
            self.commerce, self.store, keys.refund_mirror(key, order_id), commerce_id, plan=plan, claimed=claimed
        )
        if result.source is Source.RECOVERED:
            self.counts["recovered_after_lost_answer"] += 1
        memo_id = int(result.done.entity_id if result.done else result.row["commerce_entity_id"])
        total, items = sum((line.total for line in lines), ZERO), ", ".join(sorted({line.code for line in lines}))
        text = (
            f"Amazon refund of {total} {lines[0].currency or row['currency']} posted {event.get('postedDate')} "
            f"(Amazon order {order_id}, items {items}) recorded as offline credit memo {memo_id}. [{key}]"
        )
        mirror = self.store.writes.get(keys.refund_mirror(key, order_id).natural_key) or {}
        uncollected = total - Decimal((mirror.get("detail") or {}).get("total") or total)
        if uncollected > 0:  # the recorded plan's, so the text (the comment's look-up key) is the same every time
            text += f" {uncollected} of it was never paid in Commerce (not invoiced) and is not in the memo."
        text += excluded_note((self.store.writes.get(key) or {}).get("detail"), row["currency"])  # recorded: same
        orders.comment(self.commerce, self.store, keys.refund_mirror_comment(key, order_id), commerce_id, text)
        return memo_id


# -- task entry points ---------------------------------------------------------------------------
def conclude_feeds(ctx: Resources, account: AccountSettings) -> dict[str, Any]:
    """Task step: conclude the account's adjustment feeds that Amazon finished processing."""
    return RefundSync(ctx, account).conclude_open_feeds()


def mirror_amazon_refunds(ctx: Resources, account: AccountSettings, *, now: datetime) -> dict[str, Any]:
    """Task step: Amazon-side refunds become offline credit memos in Commerce; returns counts."""
    return RefundSync(ctx, account).mirror_amazon_refunds(now)


def queue_creditmemos(ctx: Resources, account: AccountSettings, *, now: datetime) -> dict[str, Any]:
    """Task step: new Commerce credit memos become outbox adjustments (or rejections); returns counts."""
    return RefundSync(ctx, account).queue_creditmemos(now)


def submit_adjustments(ctx: Resources, account: AccountSettings) -> dict[str, Any]:
    """Task step: every pending adjustment of the account in one feed; returns counts."""
    return RefundSync(ctx, account).submit()


def combine(summaries: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The run's summary over every task and account: sent, accepted, rejected, mirrored, skipped..."""
    total: collections.Counter[str] = collections.Counter()
    for summary in summaries:
        for key, value in (summary or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[key] += value
    base = {k: 0 for k in ("sent", "accepted", "rejected", "mirrored", "skipped")}
    return {**base, **dict(sorted(total.items()))}


__all__ = [
    "RefundSync",
    "combine",
    "conclude_feeds",
    "mirror_amazon_refunds",
    "queue_creditmemos",
    "submit_adjustments",
]
