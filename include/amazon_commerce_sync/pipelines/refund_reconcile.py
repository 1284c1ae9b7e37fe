"""Money checked three ways: every refund compared to the cent in each system that holds it (issue §5).

Sent to Amazon: for each credit memo whose adjustment Amazon accepted (feed processing report), the memo's own
amounts (kept with the adjustment when it was queued: ``refund_amounts.memo_amounts``), the adjustment Amazon
accepted, and the refund transaction Amazon posted for it (Finances 2024-06-19 ``listTransactions``, recognised
by the refund sync: ``refund_records.posted_amounts``) must agree per item and component (Principal, Tax per
item; Shipping, ShippingTax, Goodwill per order). Mirrored into Commerce: the Amazon refund transaction and the
offline credit memo that mirrors it agree on the total and the shipping (less the marketplace facilitator tax the
mirror left out because the Commerce order never carried it, recorded with the refund as ``excluded_tax``). A
check is ``sent`` until every amount is known, then ``confirmed`` or ``mismatched``; a mismatch is also an open
``mismatches`` row (the Sales Channel page) naming the order, the memo, the component and the three amounts.
Sent credit memos on such orders count the facilitator tax their adjustment adds (``facilitator_tax``) as the
memo's (``refund_amounts.memo_amounts``).

The daily summary (per day, account and currency: refunds sent, mirrored, confirmed, mismatched) goes to the task
log and the page (``store.refund_checks.summary``). No buyer data: ids, item codes and amounts only.
"""

from __future__ import annotations

import collections
import logging
from datetime import datetime, timedelta
from typing import Any

from amazon_commerce_sync import refund_amounts as amounts
from amazon_commerce_sync import refund_records
from amazon_commerce_sync.hooks.commerce import Filter
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import OutboxStatus
from amazon_commerce_sync.store.refund_checks import CONFIRMED, MISMATCHED, SENT

log = logging.getLogger(__name__)

KIND = "refund"  # the refund sync's outbox kind (its payload carries ``memo_amounts`` and ``items``)
MIRROR = "refund_mirror"  # the refund sync's intent-log kind of a mirrored Amazon refund
MISMATCH = "refund_amount"  # mismatches kind prefix: ``refund_amount:<creditmemo id>``
SETTLED_BY_AMAZON = "Amazon refunded this itself"  # an adjustment that stands for Amazon's own refund
SUMMARY_DAYS = 7


def mismatch_kind(creditmemo_id: int) -> str:
    """The ``mismatches`` kind of one credit memo's three-way check."""
    return f"{MISMATCH}:{creditmemo_id}"


class RefundReconcile:
    """One account's three-way check; ``run`` is one task's work."""

    def __init__(self, ctx: Resources, account: AccountSettings) -> None:
        self.ctx = ctx
        self.account = account
        self.store = ctx.store
        self.counts: collections.Counter[str] = collections.Counter()

    def run(self, now: datetime) -> dict[str, Any]:
        """Open the checks of newly accepted adjustments and mirrored refunds, close those whose amounts are all
        known, then log the daily summary. Returns counts and today's summary rows."""
        self.counts.update(checks_opened=0, checks_confirmed=0, checks_mismatched=0, checks_waiting=0)
        account_id = self.account.account_id
        for entry in self.store.refund_checks.unchecked_adjustments(account_id, KIND, OutboxStatus.ACCEPTED):
            self._open_sent(entry)
        for write in self.store.refund_checks.unchecked_mirrors(account_id, MIRROR):
            self._check_mirror(write)
        for check in self.store.refund_checks.waiting(account_id):
            self._check_sent(check)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        rows = self.store.refund_checks.summary(day - timedelta(days=SUMMARY_DAYS - 1), account_id)
        for row in rows:
            if row["day"] == day.date().isoformat():
                log.info(
                    "refund check %s %s %s: %d sent, %d mirrored, %d confirmed, %d mismatched",
                    row["day"],
                    row["account_id"],
                    row["currency"],
                    row["sent"],
                    row["mirrored"],
                    row["confirmed"],
                    row["mismatched"],
                )
        today = [r for r in rows if r["day"] == day.date().isoformat()]
        return {"account": account_id, **dict(sorted(self.counts.items())), "refund_check_today": today}

    # -- sent to Amazon ----------------------------------------------------------------------------
    def _open_sent(self, entry: dict[str, Any]) -> None:
        payload = entry["payload"] or {}
        if "memo_amounts" not in payload or (entry.get("amazon_message") or "").startswith(SETTLED_BY_AMAZON):
            return  # queued before the check existed, or the memo stands for Amazon's own refund
        memo_id = int(payload["creditmemo_id"])
        currency = next((i.get("currency") for i in payload.get("items") or [] if i.get("currency")), "") or ""
        opened = self.store.refund_checks.open(
            f"sent:{memo_id}",
            account_id=self.account.account_id,
            amazon_order_id=entry["amazon_order_id"],
            direction="sent",
            creditmemo_id=memo_id,
            currency=currency,
            memo_amounts=payload["memo_amounts"],
            accepted_amounts=amounts.as_json(amounts.adjustment_amounts(payload.get("items") or [])),
        )
        self.counts["checks_opened"] += int(opened)

    def _check_sent(self, check: dict[str, Any]) -> None:
        if check["direction"] != "sent" or check["status"] != SENT:
            return
        entry = self.store.outbox.get(f"{KIND}:{check['creditmemo_id']}")
        posted = refund_records.posted_amounts(self.store, entry) if entry else None
        if posted is None:
            self.counts["checks_waiting"] += 1
            return
        posted_amounts = amounts.comparable(posted)
        diffs = amounts.differences(
            memo=check["memo_amounts"], accepted=check["accepted_amounts"], posted=posted_amounts
        )
        event = refund_records.seen_in_amazon_refund(self.store, entry)
        self._close(check, diffs, amounts.as_json(posted_amounts), event)

    # -- mirrored into Commerce --------------------------------------------------------------------
    def _check_mirror(self, write: dict[str, Any]) -> None:
        memo_id = int(write["commerce_entity_id"])
        order_id = write["amazon_order_id"]
        event_key = write["natural_key"].removeprefix("mirror:")
        detail = (self.store.writes.get(event_key) or {}).get("detail") or {}
        foreign = detail.get("foreign")
        if not foreign:
            return
        pages = self.ctx.commerce(self.account).search("creditmemos", [[Filter("entity_id", memo_id)]])
        memo = next((m for page in pages for m in page), None)
        if memo is None:
            self.counts["checks_waiting"] += 1
            return
        row = self.store.orders.get(order_id) or {}
        memo_view = amounts.mirror_memo_amounts(memo)
        posted = amounts.transaction_totals(foreign, detail.get("excluded_tax"))  # like with like: tax Commerce lacks
        self.store.refund_checks.open(
            f"mirror:{memo_id}",
            account_id=self.account.account_id,
            amazon_order_id=order_id,
            direction="mirror",
            creditmemo_id=memo_id,
            currency=str(memo.get("order_currency_code") or row.get("currency") or ""),
            memo_amounts=amounts.as_json(memo_view),
        )
        self.counts["checks_opened"] += 1
        check = self.store.refund_checks.get(f"mirror:{memo_id}")
        self._close(check, amounts.differences(memo=memo_view, posted=posted), amounts.as_json(posted), event_key)

    def _close(self, check: dict[str, Any], diffs: list[dict[str, Any]], posted: dict, event: str | None) -> None:
        memo_id, order_id = check["creditmemo_id"], check["amazon_order_id"]
        text = amounts.describe(order_id, memo_id, check["currency"], diffs) if diffs else None
        status = MISMATCHED if diffs else CONFIRMED
        self.store.refund_checks.close(
            check["check_key"], status=status, posted_amounts=posted, transaction_key=event, detail=text
        )
        self.counts[f"checks_{status}"] += 1
        if diffs:
            self.store.ops.report_mismatch(mismatch_kind(memo_id), order_id, text)
            self.store.ops.audit(
                "refund_amounts_mismatched", "amazon_order", order_id, {"creditmemo_id": memo_id, "differences": diffs}
            )
            log.warning("%s: refund amounts disagree: %s", self.account.account_id, text)


def reconcile(ctx: Resources, account: AccountSettings, *, now: datetime) -> dict[str, Any]:
    """Task step: the account's three-way refund check and daily summary; returns counts."""
    return RefundReconcile(ctx, account).run(now)


__all__ = ["RefundReconcile", "mismatch_kind", "reconcile"]
