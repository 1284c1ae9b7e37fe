"""The refund checks aggregate: the three-way check of refund amounts (table ``refund_checks``).

A check is opened when Amazon accepts one of our adjustments (``sent:<creditmemo id>``: the memo's amounts
and the accepted adjustment's) or when an Amazon-side refund is mirrored into Commerce (``mirror:<creditmemo
id>``: the offline memo's amounts and the refund transaction's). It is closed, ``confirmed`` or
``mismatched``, once every amount is known. Amounts are ``{item code or "*": {component: decimal string}}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import func, select, update

from amazon_commerce_sync.store.base import Aggregate, aware, insert
from amazon_commerce_sync.store.schema import amazon_orders, commerce_writes, outbox, refund_checks
from amazon_commerce_sync.times import utcnow

SENT, CONFIRMED, MISMATCHED = "sent", "confirmed", "mismatched"


class RefundCheckRow(TypedDict):
    """One ``refund_checks`` row."""

    check_key: str
    account_id: str
    amazon_order_id: str
    direction: str
    creditmemo_id: int
    currency: str
    memo_amounts: dict[str, dict[str, str]]
    accepted_amounts: dict[str, dict[str, str]] | None
    posted_amounts: dict[str, dict[str, str]] | None
    transaction_key: str | None
    status: str
    detail: str | None
    opened_at: datetime
    checked_at: datetime | None


class RefundChecks(Aggregate):
    """Open, close and count the three-way checks of refund amounts."""

    def open(
        self,
        check_key: str,
        *,
        account_id: str,
        amazon_order_id: str,
        direction: str,
        creditmemo_id: int,
        currency: str,
        memo_amounts: dict,
        accepted_amounts: dict | None = None,
    ) -> bool:
        """Open a check once (a rerun changes nothing); True when it was opened now."""
        with self._writing() as conn:
            stmt = insert(conn, refund_checks).values(
                check_key=check_key,
                account_id=account_id,
                amazon_order_id=amazon_order_id,
                direction=direction,
                creditmemo_id=creditmemo_id,
                currency=currency,
                memo_amounts=memo_amounts,
                accepted_amounts=accepted_amounts,
                status=SENT,
                opened_at=utcnow(),
            )
            return conn.execute(stmt.on_conflict_do_nothing(index_elements=["check_key"])).rowcount == 1

    def close(
        self, check_key: str, *, status: str, posted_amounts: dict, transaction_key: str | None, detail: str | None
    ) -> None:
        """Close a check ``confirmed`` or ``mismatched`` with what Amazon posted."""
        with self._writing() as conn:
            conn.execute(
                update(refund_checks)
                .where(refund_checks.c.check_key == check_key)
                .values(
                    status=status,
                    posted_amounts=posted_amounts,
                    transaction_key=transaction_key,
                    detail=detail,
                    checked_at=utcnow(),
                )
            )

    def get(self, check_key: str) -> RefundCheckRow | None:
        """One check, or None."""
        return self._first(select(refund_checks).where(refund_checks.c.check_key == check_key))

    def waiting(self, account_id: str) -> list[RefundCheckRow]:
        """The account's checks still waiting for Amazon's refund transaction, oldest first."""
        c = refund_checks.c
        return self._all(
            select(refund_checks).where(c.account_id == account_id, c.status == SENT).order_by(c.opened_at)
        )

    def unchecked_adjustments(self, account_id: str, kind: str, status: str) -> list[dict[str, Any]]:
        """The account's outbox entries of ``kind`` in ``status`` (accepted adjustments) that have no check yet."""
        o, c = outbox.c, refund_checks.c
        checked = select(c.check_key).where(c.account_id == account_id, c.direction == "sent")
        keys = "sent:" + func.substr(o.natural_key, len(kind) + 2)
        stmt = (
            select(outbox)
            .where(o.account_id == account_id, o.kind == kind, o.status == status, keys.not_in(checked))
            .order_by(o.id)
        )
        return self._all(stmt)

    def unchecked_mirrors(self, account_id: str, kind: str) -> list[dict[str, Any]]:
        """The account's done intent-log writes of ``kind`` (offline credit memos mirroring Amazon refunds)
        that have no check yet."""
        w, o, c = commerce_writes.c, amazon_orders.c, refund_checks.c
        checked = select(c.check_key).where(c.account_id == account_id, c.direction == "mirror")
        stmt = (
            select(commerce_writes)
            .join(amazon_orders, o.amazon_order_id == w.amazon_order_id)
            .where(
                o.account_id == account_id,
                w.kind == kind,
                w.status == "done",
                w.commerce_entity_id.is_not(None),
                ("mirror:" + w.commerce_entity_id).not_in(checked),
            )
            .order_by(w.id)
        )
        return self._all(stmt)

    def summary(self, since: datetime, account_id: str | None = None) -> list[dict[str, Any]]:
        """Per day (UTC, of opening), account and currency, newest first: ``sent`` (our credit memos checked),
        ``mirrored`` (Amazon-side refunds checked), ``confirmed`` and ``mismatched`` (both directions)."""
        c = refund_checks.c
        where = [c.opened_at >= since] + ([c.account_id == account_id] if account_id else [])
        stmt = select(c.opened_at, c.account_id, c.currency, c.direction, c.status).where(*where)
        out: dict[tuple[str, str, str], dict[str, Any]] = {}
        for row in self._all(stmt):
            day = aware(row["opened_at"]).date().isoformat()
            entry = out.setdefault(
                (day, row["account_id"], row["currency"]),
                {
                    "day": day,
                    "account_id": row["account_id"],
                    "currency": row["currency"],
                    "sent": 0,
                    "mirrored": 0,
                    "confirmed": 0,
                    "mismatched": 0,
                },
            )
            entry["sent" if row["direction"] == "sent" else "mirrored"] += 1
            if row["status"] in (CONFIRMED, MISMATCHED):
                entry[row["status"]] += 1
        return [out[k] for k in sorted(out, key=lambda k: (k[0], k[1], k[2]), reverse=True)]


__all__ = ["CONFIRMED", "MISMATCHED", "SENT", "RefundCheckRow", "RefundChecks"]
