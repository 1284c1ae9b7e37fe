"""Import Amazon orders into Commerce: extract (stage) and load (create, update), exactly once in effect.

Extraction stages every order updated in ``[cursor - overlap, now - 2 min]`` page by
page and moves the per-marketplace cursor only when the whole window is staged.
Loading works from the staged orders: each order is processed under a lease (one
writer per order across workers), and every write to Commerce is preceded by a
look-up of its natural key and recorded in the intent log (``commerce_writes``)
before it is sent, so a retry, rerun, killed worker or an answer lost after
Commerce committed never produces a second order, invoice, shipment or stock move.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from amazon_commerce_sync import transform
from amazon_commerce_sync.errors import FatalError, IntegrationError, RetriableError
from amazon_commerce_sync.hooks.commerce import Filter
from amazon_commerce_sync.pipelines.context import Context
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import OrderSync, StagedOrder, WriteStatus

log = logging.getLogger(__name__)

INCLUDED_DATA = ("BUYER", "RECIPIENT", "PROCEEDS", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES")
AMAZON_PUBLICATION_DELAY = timedelta(minutes=2)
LEASE_SECONDS = 300


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- extraction ----------------------------------------------------------------------------------
def staged_order(order: Mapping[str, Any], account_id: str) -> StagedOrder:
    """The state-store record of an Amazon order (personal data kept apart in ``pii``)."""
    currency = transform.order_currency(order)
    grand = (order.get("proceeds") or {}).get("grandTotal")
    total = None
    if grand and grand.get("amount") is not None:
        try:
            total = Decimal(str(grand["amount"]))
        except ArithmeticError:
            total = None
    items = []
    for item in order.get("orderItems") or []:
        items.append(
            {
                "amazon_order_item_id": str(item.get("orderItemId")),
                "seller_sku": str(((item.get("product") or {}).get("sellerSku")) or ""),
                "quantity_ordered": int(item.get("quantityOrdered") or 0),
                "quantity_shipped": transform.quantity_shipped(item),
            }
        )
    return StagedOrder(
        amazon_order_id=order["orderId"],
        account_id=account_id,
        marketplace_id=(order.get("salesChannel") or {}).get("marketplaceId") or "",
        fulfilled_by=transform.fulfilled_by(order),
        amazon_status=transform.fulfillment_status(order),
        amazon_created_at=transform.parse_time(order["createdTime"]),
        amazon_updated_at=transform.parse_time(order["lastUpdatedTime"]),
        currency=currency,
        order_total=total,
        buyer_cancel_requested=transform.buyer_cancel_requested(order),
        payload=transform.strip_pii(order),
        items=items,
        pii=transform.extract_pii(order),
    )


def extract_orders(
    ctx: Context,
    account: AccountSettings,
    *,
    now: datetime,
    backfill_from: datetime | None = None,
    backfill_to: datetime | None = None,
) -> dict[str, Any]:
    """Stage every order updated in the window, per marketplace; returns counts (no personal data)."""
    summary: dict[str, Any] = {"account": account.account_id, "pages": 0, "fetched": 0, "new": 0, "changed": 0}
    hook = ctx.amazon(account)
    latest_end = now - AMAZON_PUBLICATION_DELAY
    for marketplace in account.marketplace_ids:
        stream = account.cursor_stream(marketplace)
        if backfill_from is not None:
            start = max(backfill_from, account.import_orders_after)
            end = min(backfill_to or latest_end, latest_end)
        else:
            cursor = ctx.store.ops.get_cursor(stream)
            start = (cursor - timedelta(minutes=account.overlap_minutes)) if cursor else account.import_orders_after
            start = max(start, account.import_orders_after)
            end = latest_end
        if end <= start:
            log.info("%s %s: window [%s, %s] is empty; nothing to fetch", account.account_id, marketplace, start, end)
            continue
        log.info("%s %s: fetching orders updated in [%s, %s]", account.account_id, marketplace, start, end)
        pages = hook.search_orders(
            marketplace_ids=[marketplace],
            last_updated_after=start,
            last_updated_before=end,
            included_data=INCLUDED_DATA,
            max_results_per_page=account.page_size,
        )
        for number, page in enumerate(pages, start=1):
            records = []
            for order in page.orders:
                try:
                    records.append(staged_order(order, account.account_id))
                except (KeyError, TypeError, ValueError) as exc:
                    order_id = str(order.get("orderId") or "?")
                    ctx.store.ops.quarantine("amazon_order", order_id, f"cannot stage the order: {type(exc).__name__}")
                    summary["quarantined"] = summary.get("quarantined", 0) + 1
            counts = ctx.store.orders.stage(records)
            summary["pages"] += 1
            summary["fetched"] += len(page.orders)
            summary["new"] += counts["new"]
            summary["changed"] += counts["changed"]
            log.info(
                "%s %s: page %d staged: %d orders (%d new, %d changed)",
                account.account_id, marketplace, number, len(page.orders), counts["new"], counts["changed"],
            )  # fmt: skip
        # Only now that the whole window is staged may the cursor move.
        ctx.store.ops.set_cursor(stream, end)
    return summary


# -- loading -------------------------------------------------------------------------------------
class OrderWaiting(Exception):
    """The order cannot be created yet (product missing, disabled, out of stock); retried next run."""


class Loader:
    """Applies staged Amazon orders to Commerce for one account."""

    def __init__(self, ctx: Context, account: AccountSettings, *, owner: str) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.account = account
        self.owner = owner
        self.summary: collections.Counter[str] = collections.Counter()
        self.on_hold: list[str] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._currencies: set[str] | None = None

    @property
    def commerce(self):
        return self.ctx.commerce(self.account)

    def count(self, key: str, amazon_order_id: str | None = None, note: str | None = None) -> None:
        with self._lock:
            self.summary[key] += 1
            if key == "on_hold" and amazon_order_id:
                self.on_hold.append(amazon_order_id)
            if note and len(self.problems) < 50:
                self.problems.append(note)

    def allowed_currencies(self) -> set[str]:
        if self._currencies is None:
            self._currencies = self.commerce.get_allowed_currencies()
        return self._currencies

    def run(self) -> dict[str, Any]:
        after = ""
        while True:
            batch = self.store.orders.to_process(self.account.account_id, after_id=after, limit=100)
            if not batch:
                break
            after = batch[-1]["amazon_order_id"]
            self.load_page(batch)
        result = dict(self.summary)
        result["account"] = self.account.account_id
        result["on_hold_for_buyer_cancellation"] = sorted(self.on_hold)
        return result

    def load_page(self, rows: list[dict[str, Any]]) -> None:
        """One page: batched look-ups of Commerce orders and products, then the orders with bounded concurrency."""
        to_create = [r for r in rows if r["commerce_order_id"] is None and self._eligible(r)]
        skus = {
            self.account.commerce_sku((item.get("product") or {}).get("sellerSku") or "")
            for r in to_create
            for item in r["payload"].get("orderItems") or []
        }
        skus.discard("")
        ids = [r["amazon_order_id"] for r in to_create]
        if ids:
            self.allowed_currencies()  # once per run, before the workers need it
        existing = self.commerce.find_orders_by_ext_order_ids(ids) if ids else {}
        products = self.commerce.get_products_by_skus(sorted(skus)) if skus else {}
        stock = self.commerce.get_source_items(sorted(products)) if products and self.account.manage_stock else {}
        self._available = {
            sku: sum(
                (Decimal(str(s.get("quantity", 0))) for s in items if int(s.get("status", 1)) == 1
                 and s.get("source_code", self.account.source_code) == self.account.source_code),
                Decimal(0),
            )
            for sku, items in stock.items()
        }  # fmt: skip
        self._stock_queue: list[tuple[str, dict[str, int]]] = []

        def work(row: dict[str, Any]) -> None:
            self.process(row, existing.get(row["amazon_order_id"], []), products)

        if self.account.concurrency > 1 and len(rows) > 1:
            with ThreadPoolExecutor(max_workers=self.account.concurrency, thread_name_prefix="order") as pool:
                list(pool.map(work, rows))
        else:
            for row in rows:
                work(row)
        self._flush_stock()

    def _eligible(self, row: Mapping[str, Any]) -> bool:
        status, fulfilled = row["amazon_status"], row["fulfilled_by"]
        if row["amazon_created_at"] < self.account.import_orders_after:
            return False
        if fulfilled == "AMAZON":
            return status == "SHIPPED"
        return status in transform.MERCHANT_IMPORT_STATUSES

    # -- one order ---------------------------------------------------------------------------------
    def process(
        self,
        row: dict[str, Any],
        found: list[dict[str, Any]],
        products: Mapping[str, Mapping[str, Any]],
    ) -> None:
        order_id = row["amazon_order_id"]
        lease = f"order:{order_id}"
        if not self.store.ops.acquire_lease(lease, self.owner, LEASE_SECONDS):
            self.count("busy_elsewhere")
            return
        try:
            if row["commerce_order_id"] is None:
                self._import(row, found, products)
            else:
                self._update(row)
        except FatalError as exc:
            # Commerce refused this order (a 4xx): keep it visible, go on with the others.
            reason = f"Commerce rejected the order: {exc}"
            self.store.ops.quarantine("amazon_order", order_id, reason)
            self.store.orders.set_sync(
                order_id, OrderSync.QUARANTINED, reason=reason, count_attempt=True,
                synced_amazon_updated_at=row["amazon_updated_at"],
            )  # fmt: skip
            self.count("quarantined", note=f"{order_id}: {reason}")
        except RetriableError as exc:
            # The status as it is now, not as it was read: a create that went through set it to WAITING, so that
            # the next run finishes the follow-ups (invoice, shipments) instead of taking the order as imported.
            current = (self.store.orders.get(order_id) or row)["sync_status"]
            self.store.orders.set_sync(order_id, current, reason=f"will retry: {exc}", count_attempt=True)
            self.count("failed", note=f"{order_id}: {exc}")
            log.warning("order %s: %s; it is retried on the next run", order_id, exc)
        except Exception as exc:  # noqa: BLE001 - one order's bug must not stop the others
            self.count("failed", note=f"{order_id}: unexpected {type(exc).__name__}")
            log.exception("order %s: unexpected %s; it is retried on the next run", order_id, type(exc).__name__)
        finally:
            self.store.ops.release_lease(lease, self.owner)

    def _import(self, row, found, products) -> None:
        order_id = row["amazon_order_id"]
        updated = row["amazon_updated_at"]
        status, fulfilled = row["amazon_status"], row["fulfilled_by"]
        if row["amazon_created_at"] < self.account.import_orders_after:
            self._settle(row, OrderSync.NOT_ELIGIBLE, "placed before import_orders_after", "not_eligible")
            return
        if not self.account.import_enabled:
            self._settle(row, OrderSync.NOT_ELIGIBLE, "import is disabled for this account", "not_eligible")
            return
        if status in transform.PENDING_STATUSES:
            self._settle(row, OrderSync.PENDING_PAYMENT, "pending on Amazon: no payment yet", "pending")
            return
        if status in ("CANCELLED", "UNFULFILLABLE"):
            self._settle(row, OrderSync.NOT_ELIGIBLE, f"{status.lower()} on Amazon before import", "not_eligible")
            return
        if fulfilled == "AMAZON" and status != "SHIPPED":
            self._settle(row, OrderSync.NOT_ELIGIBLE, "Amazon-fulfilled: imported once shipped", "not_eligible")
            return
        order = self._full_order(row)
        try:
            amounts = transform.order_amounts(order)
            if amounts.currency not in self.allowed_currencies():
                raise transform.MalformedOrder(
                    f"currency {amounts.currency} is not accepted by the Commerce store "
                    f"(allowed: {', '.join(sorted(self.allowed_currencies()))})"
                )
            missing = self._product_problems(amounts, products, fulfilled)
            if missing:
                raise OrderWaiting("; ".join(missing))
            customer = self._customer(order) if self.account.customer_creation == "create_account" else None
            entity = transform.build_order(order, amounts, self.account, products=products, customer=customer)
        except transform.MalformedOrder as exc:
            reason = str(exc)
            self.store.ops.quarantine("amazon_order", order_id, reason)
            self.store.orders.set_sync(order_id, OrderSync.QUARANTINED, reason=reason, synced_amazon_updated_at=updated)
            self.store.ops.audit("order_quarantined", "amazon_order", order_id, {"reason": reason})
            self.count("quarantined", note=f"{order_id}: {reason}")
            return
        except OrderWaiting as exc:
            self.store.orders.set_sync(order_id, OrderSync.WAITING_PRODUCT, reason=str(exc), count_attempt=True)
            self.count("waiting_for_product", note=f"{order_id}: {exc}")
            return

        commerce_order = self._create_once(order_id, entity, found)
        self._map_items(order_id, commerce_order)
        self.store.orders.set_sync(
            order_id, OrderSync.WAITING, commerce_order_id=int(commerce_order["entity_id"]),
            commerce_increment_id=str(commerce_order.get("increment_id") or ""),
        )  # fmt: skip
        if fulfilled == "MERCHANT" and self.account.manage_stock:
            self._queue_stock_out(order_id, [(i["sku"], int(i["qty_ordered"])) for i in entity["items"]])
        if self.account.invoice_on_import or fulfilled == "AMAZON":
            self._invoice_once(order_id, commerce_order, fresh=not self.summary_has_adopted(order_id))
        if status in ("SHIPPED", "PARTIALLY_SHIPPED"):
            self._mirror_amazon_shipments(order_id, order, commerce_order)
        self.store.ops.resolve_quarantine("amazon_order", order_id)
        self._settle(row, OrderSync.IMPORTED, None, "created")
        self.store.ops.audit(
            "order_created", "amazon_order", order_id,
            {"commerce_order_id": int(commerce_order["entity_id"]), "grand_total": str(amounts.grand_total)},
        )  # fmt: skip
        if row["buyer_cancel_requested"] and status == "UNSHIPPED":
            self._hold_for_buyer_cancellation(order_id, int(commerce_order["entity_id"]))

    def _settle(self, row, status: OrderSync, reason: str | None, counter: str) -> None:
        self.store.orders.set_sync(
            row["amazon_order_id"], status, reason=reason, synced_amazon_updated_at=row["amazon_updated_at"]
        )
        self.count(counter)

    def _full_order(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The staged order with its personal data put back (in memory only, for the Commerce payload)."""
        order = dict(row["payload"])
        pii = self.store.orders.pii(row["amazon_order_id"]) or {}
        buyer = {
            "buyerName": pii.get("buyer_name"),
            "buyerEmail": pii.get("buyer_email"),
            "buyerCompanyName": pii.get("buyer_company"),
        }
        order["buyer"] = {k: v for k, v in buyer.items() if v}
        if pii.get("shipping_address"):
            order["recipient"] = {"deliveryAddress": pii["shipping_address"]}
        return order

    def _product_problems(self, amounts, products, fulfilled: str) -> list[str]:
        """Why the order cannot be created yet (empty when it can); reserves its stock within the page."""
        problems = []
        needed: dict[str, int] = collections.Counter()
        for item in amounts.items:
            needed[self.account.commerce_sku(item.seller_sku)] += item.quantity
        for sku in sorted(needed):
            product = products.get(sku)
            if product is None:
                problems.append(f"SKU {sku} is not in the Commerce catalog")
            elif int(product.get("status", 1)) != 1:
                problems.append(f"SKU {sku} is disabled in Commerce")
        if problems or fulfilled != "MERCHANT" or not self.account.manage_stock:
            return problems
        with self._lock:  # two orders of one page must not both take the last unit
            short = [
                f"SKU {sku} is out of stock in Commerce ({self._available.get(sku, Decimal(0))} left, {qty} needed)"
                for sku, qty in sorted(needed.items())
                if self._available.get(sku, Decimal(0)) < qty
            ]
            if not short:
                for sku, qty in needed.items():
                    self._available[sku] -= qty
        return short

    def _customer(self, order: Mapping[str, Any]) -> dict[str, Any] | None:
        email = transform.buyer_email(order, self.account)
        if email.endswith(".invalid"):
            return None  # no real email: a guest order
        customer = self.commerce.find_customer_by_email(email)
        if customer:
            return customer
        address = transform.commerce_address(order, "billing", email)
        try:
            return self.commerce.create_customer(
                {"email": email, "firstname": address["firstname"], "lastname": address["lastname"],
                 "store_id": self.account.store_id}
            )  # fmt: skip
        except IntegrationError:
            # created meanwhile (or the answer was lost): the look-up is the truth
            customer = self.commerce.find_customer_by_email(email)
            if customer:
                return customer
            raise

    # -- exactly-once writes --------------------------------------------------------------------
    def _create_once(self, order_id: str, entity: dict[str, Any], found: list[dict[str, Any]]) -> dict[str, Any]:
        key = f"create_order:{order_id}"
        intent = self.store.writes.get(key)
        if intent and intent["status"] == WriteStatus.INTENT:
            # A previous attempt may have landed: the page look-up predates nothing, but look again.
            found = self.commerce.find_orders_by_ext_order_ids([order_id]).get(order_id, [])
        if found:
            adopted = self._adopt(order_id, found)
            self.store.writes.record_intent(key, "create_order", order_id)
            self.store.writes.complete(key, adopted["entity_id"], detail={"adopted": True})
            self.count("adopted_existing")
            return adopted
        self.store.writes.record_intent(key, "create_order", order_id)
        try:
            created = self.commerce.create_order(entity)
        except IntegrationError as exc:
            if isinstance(exc, FatalError):
                self.store.writes.forget(key)
                raise
            # Ambiguous: Commerce may have committed before the answer was lost.
            found = self.commerce.find_orders_by_ext_order_ids([order_id]).get(order_id, [])
            if not found:
                raise
            created = self._adopt(order_id, found)
            self.count("recovered_after_lost_answer")
        self.store.writes.complete(key, created["entity_id"])
        return created

    def _adopt(self, order_id: str, found: list[dict[str, Any]]) -> dict[str, Any]:
        found = sorted(found, key=lambda o: int(o["entity_id"]))
        if len(found) > 1:
            # ext_order_id is not unique in Commerce: report, never create a third.
            self.store.ops.report_mismatch(
                "duplicate_commerce_orders", order_id,
                f"{len(found)} Commerce orders carry this Amazon order id: "
                + ", ".join(str(o["entity_id"]) for o in found),
            )  # fmt: skip
        return found[0]

    def _map_items(self, order_id: str, commerce_order: Mapping[str, Any]) -> None:
        by_amazon = {
            str(i.get("ext_order_item_id")): (i.get("sku"), int(i["item_id"]))
            for i in commerce_order.get("items") or []
            if i.get("ext_order_item_id") and i.get("item_id") is not None
        }
        self.store.orders.map_items(by_amazon)

    def _item_ids(self, order_id: str) -> dict[str, int]:
        return {
            i["amazon_order_item_id"]: i["commerce_order_item_id"]
            for i in self.store.orders.items(order_id)
            if i["commerce_order_item_id"] is not None
        }

    def summary_has_adopted(self, order_id: str) -> bool:
        write = self.store.writes.get(f"create_order:{order_id}") or {}
        return bool((write.get("detail") or {}).get("adopted"))

    def _queue_stock_out(self, order_id: str, lines: Iterable[tuple[str, int]]) -> None:
        """Record the order's stock move (intent) and queue it for the page's one batched write."""
        key = f"stock_out:{order_id}"
        write = self.store.writes.get(key)
        if write and write["status"] == WriteStatus.DONE:
            return
        detail = (write or {}).get("detail") or {}
        if detail.get("batch"):
            self._settle_stock_batch(detail["batch"])  # an earlier run wrote (or began to write) it
            return
        needed: dict[str, int] = collections.Counter()
        for sku, qty in lines:
            needed[sku] += qty
        self.store.writes.record_intent(key, "stock_out", order_id, {"lines": dict(needed)})
        with self._lock:
            self._stock_queue.append((order_id, dict(needed)))

    def _flush_stock(self) -> None:
        """One read and one write of source items for all orders created in the page (Magento sets absolutes)."""
        if not self._stock_queue:
            return
        queue, self._stock_queue = self._stock_queue, []
        totals: dict[str, int] = collections.Counter()
        for _, lines in queue:
            totals.update(lines)
        current = self._source_quantities(totals)
        plan = {sku: {"before": str(current[sku]), "after": str(current[sku] - qty)} for sku, qty in totals.items()}
        batch = f"stock_batch:{uuid.uuid4().hex}"
        self.store.writes.record_intent(batch, "stock_batch", None, {"plan": plan, "orders": [o for o, _ in queue]})
        for order_id, lines in queue:
            self.store.writes.complete(
                f"stock_out:{order_id}", None, status=WriteStatus.INTENT, detail={"lines": lines, "batch": batch}
            )
        self._write_quantities({sku: Decimal(step["after"]) for sku, step in plan.items()})
        self._complete_stock_batch(batch, plan, [o for o, _ in queue])

    def _settle_stock_batch(self, batch: str) -> None:
        """Finish a batch an earlier run began: apply what is not applied yet, then mark its orders done."""
        intent = self.store.writes.get(batch)
        if intent is None:
            return
        detail = intent.get("detail") or {}
        if intent["status"] != WriteStatus.DONE:
            plan = detail.get("plan", {})
            current = self._source_quantities(plan)
            writes = {}
            for sku, step in plan.items():
                before, after = Decimal(step["before"]), Decimal(step["after"])
                if current[sku] == after:
                    continue  # applied
                if current[sku] != before:
                    # Someone else moved it too: apply our delta to what is there (never twice: we saw
                    # neither our before nor our after), and say so.
                    self.store.ops.audit("stock_uncertain", "sku", sku, {"batch": batch, "found": str(current[sku])})
                writes[sku] = current[sku] + (after - before)
            if writes:
                self._write_quantities(writes)
        self._complete_stock_batch(batch, detail.get("plan", {}), detail.get("orders", []))

    def _complete_stock_batch(self, batch: str, plan: Mapping[str, Any], orders: Iterable[str]) -> None:
        self.store.writes.complete(batch, None, detail={"plan": dict(plan), "orders": list(orders)})
        for order_id in orders:
            write = self.store.writes.get(f"stock_out:{order_id}") or {}
            lines = (write.get("detail") or {}).get("lines", {})
            self.store.writes.complete(f"stock_out:{order_id}", None, detail={"lines": lines, "batch": batch})

    def _source_quantities(self, skus: Iterable[str]) -> dict[str, Decimal]:
        items = self.commerce.get_source_items(sorted(skus))
        out = {}
        for sku in skus:
            entry = next((s for s in items.get(sku, []) if s.get("source_code") == self.account.source_code), None)
            out[sku] = Decimal(str(entry.get("quantity", 0))) if entry else Decimal(0)
        return out

    def _write_quantities(self, quantities: Mapping[str, Decimal]) -> None:
        self.commerce.save_source_items(
            [{"sku": sku, "source_code": self.account.source_code, "quantity": qty, "status": 1 if qty > 0 else 0}
             for sku, qty in sorted(quantities.items())]
        )  # fmt: skip

    _stock_lock = threading.Lock()  # read-modify-write of absolute quantities: one at a time per process

    def _stock_once(self, order_id: str, kind: str, lines: Iterable[tuple[str, int]]) -> None:
        """Move Commerce stock once for one order (used to put stock back on cancellation)."""
        with self._stock_lock:
            self._stock_once_locked(order_id, kind, lines)

    def _stock_once_locked(self, order_id: str, kind: str, lines: Iterable[tuple[str, int]]) -> None:
        key = f"{kind}:{order_id}"
        intent = self.store.writes.get(key)
        if intent and intent["status"] == WriteStatus.DONE:
            return
        needed: dict[str, int] = collections.Counter()
        for sku, qty in lines:
            needed[sku] += qty
        sign = -1 if kind == "stock_out" else 1
        current = self.commerce.get_source_items(sorted(needed))
        plan: dict[str, dict[str, str]] = {}
        if intent and intent.get("detail"):
            plan = intent["detail"]["plan"]
        else:
            for sku, qty in needed.items():
                item = next((s for s in current.get(sku, []) if s.get("source_code") == self.account.source_code), None)
                before = Decimal(str(item.get("quantity", 0))) if item else Decimal(0)
                plan[sku] = {"before": str(before), "after": str(before + sign * qty)}
            self.store.writes.record_intent(key, kind, order_id, {"plan": plan})
            self.store.writes.complete(key, None, status=WriteStatus.INTENT, detail={"plan": plan})
        writes = []
        for sku, step in plan.items():
            item = next((s for s in current.get(sku, []) if s.get("source_code") == self.account.source_code), None)
            now_qty = Decimal(str(item.get("quantity", 0))) if item else Decimal(0)
            if now_qty == Decimal(step["after"]) and Decimal(step["after"]) != Decimal(step["before"]):
                continue  # already applied by an earlier attempt
            # Apply the delta to whatever is there now (someone else may have sold meanwhile).
            target = now_qty + (Decimal(step["after"]) - Decimal(step["before"]))
            writes.append(
                {"sku": sku, "source_code": self.account.source_code, "quantity": target,
                 "status": 1 if target > 0 else 0}
            )  # fmt: skip
        if writes:
            self.commerce.save_source_items(writes)
        self.store.writes.complete(key, None, detail={"plan": plan})

    def _invoice_once(self, order_id: str, commerce_order: Mapping[str, Any], *, fresh: bool = False) -> None:
        """Invoice the order once. ``fresh``: created by this very run, so it cannot have an invoice yet."""
        key = f"invoice:{order_id}"
        done = self.store.writes.get(key)
        if done and done["status"] == WriteStatus.DONE:
            return
        order = commerce_order if fresh and done is None else self.commerce.get_order(int(commerce_order["entity_id"]))
        if (
            Decimal(str(order.get("total_invoiced") or 0)) >= Decimal(str(order.get("grand_total") or 0))
            and order.get("total_invoiced") is not None
        ):
            self.store.writes.record_intent(key, "invoice", order_id)
            self.store.writes.complete(key, None, detail={"adopted": True})
            return
        self.store.writes.record_intent(key, "invoice", order_id)
        try:
            invoice_id = self.commerce.invoice_order(int(commerce_order["entity_id"]), capture=False)
        except RetriableError:
            order = self.commerce.get_order(int(commerce_order["entity_id"]))
            if not order.get("total_invoiced"):
                raise
            invoice_id = None
        self.store.writes.complete(key, invoice_id)

    def _mirror_amazon_shipments(self, order_id: str, order: Mapping[str, Any], commerce_order) -> None:
        """Shipments Amazon already knows of (FBA or Seller Central) become Commerce shipments with tracking."""
        mirror_amazon_shipments(
            self.commerce, self.store, order_id, transform.amazon_packages(order),
            int(commerce_order["entity_id"]), self._item_ids(order_id),
        )  # fmt: skip

    # -- changes after import ----------------------------------------------------------------------
    def _update(self, row: dict[str, Any]) -> None:
        order_id = row["amazon_order_id"]
        commerce_id = int(row["commerce_order_id"])
        status = row["amazon_status"]
        if row["sync_status"] == OrderSync.WAITING:
            # Created but the follow-up writes did not finish: finish them now.
            self._import_followups(row, commerce_id)
            return
        if status == "CANCELLED":
            self._cancel_in_commerce(order_id, commerce_id, "Cancelled on Amazon.")
            self.store.orders.set_sync(order_id, OrderSync.CANCELLED, synced_amazon_updated_at=row["amazon_updated_at"])
            self.count("cancelled")
            return
        if row["buyer_cancel_requested"] and status == "UNSHIPPED" and row["sync_status"] != OrderSync.ON_HOLD:
            self._hold_for_buyer_cancellation(order_id, commerce_id)
            self.store.orders.set_sync(order_id, OrderSync.ON_HOLD, synced_amazon_updated_at=row["amazon_updated_at"])
            return
        # Shipments made on Amazon's side after import are the shipment sync's job.
        self.store.orders.set_sync(order_id, row["sync_status"], synced_amazon_updated_at=row["amazon_updated_at"])
        self.count("updated")

    def _import_followups(self, row: dict[str, Any], commerce_id: int) -> None:
        order_id = row["amazon_order_id"]
        commerce_order = self.commerce.get_order(commerce_id)
        self._map_items(order_id, commerce_order)
        if row["fulfilled_by"] == "MERCHANT" and self.account.manage_stock:
            lines = [(i["sku"], int(Decimal(str(i["qty_ordered"])))) for i in commerce_order.get("items") or []]
            self._queue_stock_out(order_id, lines)
        if self.account.invoice_on_import or row["fulfilled_by"] == "AMAZON":
            self._invoice_once(order_id, commerce_order)
        if row["amazon_status"] in ("SHIPPED", "PARTIALLY_SHIPPED"):
            self._mirror_amazon_shipments(order_id, self._full_order(row), commerce_order)
        self._settle(row, OrderSync.IMPORTED, None, "created")
        if row["buyer_cancel_requested"] and row["amazon_status"] == "UNSHIPPED":
            self._hold_for_buyer_cancellation(order_id, commerce_id)

    def _hold_for_buyer_cancellation(self, order_id: str, commerce_id: int) -> None:
        key = f"hold:{order_id}"
        if (self.store.writes.get(key) or {}).get("status") == WriteStatus.DONE:
            return
        self.store.writes.record_intent(key, "hold", order_id)
        order = self.commerce.get_order(commerce_id)
        if order.get("state") != "holded":
            self.commerce.hold_order(commerce_id)
        self._comment_once(
            order_id, commerce_id, "buyer_cancel",
            "The buyer asked Amazon to cancel this order. It is on hold: do not ship it; "
            "cancel it from the amazon_order_cancel DAG (reason BuyerCanceled).",
        )  # fmt: skip
        self.store.writes.complete(key, commerce_id)
        self.store.orders.set_sync(order_id, OrderSync.ON_HOLD)
        self.store.ops.audit(
            "order_held_for_buyer_cancellation", "amazon_order", order_id, {"commerce_order_id": commerce_id}
        )
        self.count("on_hold", order_id)

    def _comment_once(self, order_id: str, commerce_id: int, tag: str, comment: str) -> None:
        key = f"comment:{tag}:{order_id}"
        write = self.store.writes.get(key)
        if write and write["status"] == WriteStatus.DONE:
            return
        if write:  # an earlier attempt may have landed: look before writing again
            if any(comment == c.get("comment") for c in self.commerce.get_order_comments(commerce_id)):
                self.store.writes.complete(key, commerce_id)
                return
        self.store.writes.record_intent(key, "comment", order_id)
        self.commerce.add_order_comment(commerce_id, comment)
        self.store.writes.complete(key, commerce_id)

    def _cancel_in_commerce(self, order_id: str, commerce_id: int, comment: str) -> None:
        """Cancel the Commerce order, or refund it offline in full if it was invoiced; stock goes back."""
        cancel_in_commerce(self.commerce, self.store, order_id, commerce_id, comment, self.account, self._stock_once)


UNSHIPPABLE = ("closed", "canceled")  # Magento states that allow no new shipment


def mirror_amazon_shipments(
    commerce, store, order_id: str, packages: Iterable[transform.Package], commerce_id: int,
    item_ids: Mapping[str, int],
) -> int:  # fmt: skip
    """Amazon's shipped packages become Commerce shipments with tracking, once each; returns how many were created.

    Shared by the import (packages known at import) and the shipment sync (packages shipped on
    Amazon's side after import). Each package is a write keyed ``ship:<amazon order id>:<package
    ref>`` in the intent log, whose ``commerce_entity_id`` is the Commerce shipment id: the
    shipment sync reads it to tell these shipments from the merchant's own. Each shipment carries
    that key in a comment: a Commerce shipment that already has it (a create whose answer was lost)
    or that carries the package's tracking number is adopted instead of creating another. The
    comment matters for packages without a tracking number (Amazon does not always give one).
    """
    created = 0
    for package, items in transform.ship_items_from_packages(list(packages), item_ids):
        key = f"ship:{order_id}:{package.reference}"
        done = store.writes.get(key)
        if done and done["status"] == WriteStatus.DONE:
            continue
        existing = commerce_shipment_for_package(commerce, commerce_id, key, package.tracking_number)
        store.writes.record_intent(key, "ship", order_id)
        if existing is None:
            tracks = []
            if package.tracking_number:
                tracks = [{"track_number": package.tracking_number, "title": package.carrier,
                           "carrier_code": "custom"}]  # fmt: skip
            try:
                comment = f"Shipped on Amazon's side: package {package.reference} [{key}]"
                existing = commerce.ship_order(commerce_id, items, tracks, comment=comment)
            except FatalError:
                state = commerce.get_order(commerce_id).get("state")
                if state in UNSHIPPABLE:  # e.g. refunded in full (an Amazon refund mirrored) before this package
                    store.writes.complete(key, None, detail={"not_mirrored": f"the Commerce order is {state}"})
                    store.ops.audit("amazon_shipment_not_mirrored", "amazon_order", order_id,
                                {"package": package.reference, "commerce_state": state})  # fmt: skip
                    log.warning("%s: Amazon package %s not mirrored: Magento cannot ship a %s order",
                                order_id, package.reference, state)  # fmt: skip
                    continue
                store.writes.forget(key)  # Commerce refused it: nothing was written
                raise
            except RetriableError:
                # Ambiguous: Commerce may have committed before the answer was lost.
                existing = commerce_shipment_for_package(commerce, commerce_id, key, package.tracking_number)
                if existing is None:
                    raise
            created += 1
        store.writes.complete(key, existing)
    return created


def commerce_shipment_for_package(commerce, commerce_order_id: int, key: str, tracking: str) -> int | None:
    """The id of the order's Commerce shipment of this Amazon package: the one whose comment names the
    package's key, or (made before the comments, or by hand) the one carrying its tracking number."""
    marker = f"[{key}]"
    for page in commerce.search("shipments", [[Filter("order_id", commerce_order_id)]]):
        for shipment in page:
            if any(marker in str(c.get("comment") or "") for c in shipment.get("comments") or []):
                return int(shipment["entity_id"])
            if tracking and any(t.get("track_number") == tracking for t in shipment.get("tracks") or []):
                return int(shipment["entity_id"])
    return None


def cancel_in_commerce(
    commerce, store, order_id: str, commerce_id: int, comment: str, account: AccountSettings,
    stock_once: Callable[[str, str, Iterable[tuple[str, int]]], None] | None,
) -> str:  # fmt: skip
    """Shared by the import (Amazon-side cancellation) and the cancellation DAG; returns what was done."""
    key = f"cancel:{order_id}"
    done = store.writes.get(key)
    outcome = (done or {}).get("detail", {}) or {}
    if not (done and done["status"] == WriteStatus.DONE):
        store.writes.record_intent(key, "cancel", order_id)
        order = commerce.get_order(commerce_id)
        state = order.get("state")
        if state == "holded":
            commerce.unhold_order(commerce_id)
            order = commerce.get_order(commerce_id)
            state = order.get("state")
        if state in ("canceled", "closed"):
            outcome = {"action": f"already {state}"}
        elif Decimal(str(order.get("total_invoiced") or 0)) > 0:
            items = [
                {"order_item_id": int(i["item_id"]),
                 "qty": Decimal(str(i.get("qty_invoiced") or 0)) - Decimal(str(i.get("qty_refunded") or 0))}
                for i in order.get("items") or []
            ]  # fmt: skip
            items = [i for i in items if i["qty"] > 0]
            shipping = Decimal(str(order.get("shipping_invoiced") or 0)) - Decimal(
                str(order.get("shipping_refunded") or 0)
            )
            try:
                memo = commerce.refund_order(commerce_id, items, shipping_amount=shipping, return_to_stock_items=[])
            except RetriableError:
                order = commerce.get_order(commerce_id)
                if order.get("state") != "closed":
                    raise
                memo = None
            outcome = {"action": "refunded offline in full", "creditmemo_id": memo}
        else:
            if not commerce.cancel_order(commerce_id):
                order = commerce.get_order(commerce_id)
                if order.get("state") != "canceled":
                    raise FatalError(
                        f"Commerce refused to cancel order {commerce_id} (state {order.get('state')})",
                        operation="cancel_order",
                    )
            outcome = {"action": "canceled"}
        store.writes.complete(key, commerce_id, detail=outcome)
    if stock_once is not None and account.manage_stock:
        stock_out = store.writes.get(f"stock_out:{order_id}")
        if stock_out and stock_out["status"] == WriteStatus.DONE:
            lines = [(sku, int(qty)) for sku, qty in (stock_out["detail"] or {}).get("lines", {}).items()]
            stock_once(order_id, "stock_in", lines)
    comment_key = f"comment:cancel:{order_id}"
    if (store.writes.get(comment_key) or {}).get("status") != WriteStatus.DONE:
        text = f"{comment} Commerce: {outcome.get('action', 'canceled')}."
        existing = store.writes.get(comment_key)
        if not (existing and any(text == c.get("comment") for c in commerce.get_order_comments(commerce_id))):
            store.writes.record_intent(comment_key, "comment", order_id)
            commerce.add_order_comment(commerce_id, text)
        store.writes.complete(comment_key, commerce_id)
    store.ops.audit(
        "order_cancelled_in_commerce", "amazon_order", order_id, {"commerce_order_id": commerce_id, **outcome}
    )
    return str(outcome.get("action", "canceled"))


def load_orders(ctx: Context, account: AccountSettings, *, owner: str) -> dict[str, Any]:
    """Apply every staged change of the account to Commerce; returns the run summary."""
    loader = Loader(ctx, account, owner=owner)
    summary = loader.run()
    if loader.problems:
        for note in loader.problems:
            log.warning("%s", note)
    log.info("%s: load summary %s", account.account_id, {k: v for k, v in summary.items() if k != "account"})
    return summary


def owner_id(run_id: str) -> str:
    return f"{run_id}:{os.getpid()}:{threading.get_ident()}"
