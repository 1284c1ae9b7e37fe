"""Load staged Amazon orders into Commerce (create, update), exactly once in effect.

Extraction (``order_extract``) stages the orders; loading works from the staged orders, a page of 100 at a time:
one batched look-up of the page's Commerce orders (``ext_order_id``), products and stock, then the orders with
bounded concurrency, each under a lease (one writer per order across workers), and one stock write for the page.
Every write to Commerce goes through ``commerce_writes`` (look up its natural key, record the intent, send, look
again after a lost answer), so a retry, rerun, killed worker or an answer lost after Commerce committed never
produces a second order, invoice, shipment or stock move.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from amazon_commerce_sync import addresses, buyer_data, currency, order_programs, summaries, transform
from amazon_commerce_sync.commerce_writes import keys, orders
from amazon_commerce_sync.commerce_writes.protocol import Source
from amazon_commerce_sync.commerce_writes.shipments import mirror_amazon_shipments, mirror_plan
from amazon_commerce_sync.commerce_writes.stock import PageStockOut, StockMoves
from amazon_commerce_sync.errors import FatalError, RetriableError
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import OrderRow, OrderSync

log = logging.getLogger(__name__)

LEASE_SECONDS = 300


# -- loading -------------------------------------------------------------------------------------
BUYER_CANCEL_COMMENT = (
    "The buyer asked Amazon to cancel this order. It is on hold: do not ship it; "
    "decide in Airflow (amazon_buyer_cancel_decision): Cancel or Keep."
)


class OrderWaiting(Exception):
    """The order cannot be created yet (product missing, disabled, out of stock); retried next run."""


class Loader:
    """Applies staged Amazon orders to Commerce for one account."""

    def __init__(self, ctx: Resources, account: AccountSettings, *, owner: str) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.account = account
        self.owner = owner
        self.summary: collections.Counter[str] = collections.Counter()
        self.on_hold: list[str] = []
        self.not_eligible: collections.Counter[str] = collections.Counter()  # why, for the summary sentence
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._store_currency: currency.StoreCurrency | None = None
        self._countries: dict[str, addresses.CountryRegions | None] = {}
        self._available: dict[str, Decimal] = {}
        self._stock_out: PageStockOut | None = None

    @property
    def commerce(self):
        """The Commerce hook of the calling thread."""
        return self.ctx.commerce(self.account)

    def stock(self) -> StockMoves:
        """The calling thread's stock moves on the account's source."""
        return StockMoves(self.commerce, self.store, self.account.source_code)

    def count(self, key: str, amazon_order_id: str | None = None, note: str | None = None) -> None:
        with self._lock:
            self.summary[key] += 1
            if key == "on_hold" and amazon_order_id:
                self.on_hold.append(amazon_order_id)
            if note and len(self.problems) < 50:
                self.problems.append(note)

    def store_currency(self) -> currency.StoreCurrency:
        """The account's store view's base currency, accepted currencies and rates (read once per run)."""
        if self._store_currency is None:
            self._store_currency = self.commerce.store_currency(self.account.store_id)
        return self._store_currency

    def allowed_currencies(self) -> set[str]:
        return set(self.store_currency().available)

    def directory(self, order: Mapping[str, Any]) -> dict[str, addresses.CountryRegions | None]:
        """The store's directory entries the order's address needs (each country read once per run)."""
        address = (order.get("recipient") or {}).get("deliveryAddress") or {}
        wanted = [addresses.amazon_country(address)]
        if self._country(wanted[0]) is None:
            wanted.append(addresses.FALLBACK_COUNTRY)  # a US territory Magento keeps as a US region (PR)
        return {c: self._country(c) for c in wanted}

    def _country(self, country_id: str) -> addresses.CountryRegions | None:
        with self._lock:
            if country_id in self._countries:
                return self._countries[country_id]
        info = None
        if re.fullmatch(r"[A-Z]{2}", country_id):
            info = self.commerce.get_country(country_id, self.store_currency().store_code)
        found = addresses.CountryRegions.from_rest(info) if info else None
        with self._lock:
            self._countries[country_id] = found
        return found

    def run(self) -> dict[str, Any]:
        """Every order of the account with Amazon changes not applied yet, page by page; returns the summary."""
        after = ""
        while True:
            batch = self.store.orders.to_process(self.account.account_id, after_id=after, limit=100)
            if not batch:
                break
            after = batch[-1]["amazon_order_id"]
            self.load_page(batch)
        result: dict[str, Any] = dict(self.summary)
        result["account"] = self.account.account_id
        result["on_hold_for_buyer_cancellation"] = sorted(self.on_hold)
        if self.not_eligible:
            result["not_eligible_reasons"] = dict(self.not_eligible)
        return result

    def load_page(self, rows: list[OrderRow]) -> None:
        """One page: batched look-ups of Commerce orders, products and stock, the orders with bounded
        concurrency, then the page's one stock write."""
        to_create = [r for r in rows if r["commerce_order_id"] is None and self._eligible(r)]
        skus = {
            self.account.commerce_sku((item.get("product") or {}).get("sellerSku") or "")
            for r in to_create
            for item in r["payload"].get("orderItems") or []
        }
        skus.discard("")
        ids = [r["amazon_order_id"] for r in to_create]
        if ids:
            self.store_currency()  # once per run, before the workers need it
        existing = self.commerce.find_orders_by_ext_order_ids(ids) if ids else {}
        products = self.commerce.get_products_by_skus(sorted(skus)) if skus else {}
        stock = self.commerce.get_source_items(sorted(products)) if products and self.account.manage_stock else {}
        source = self.account.source_code
        self._available = {
            sku: sum(
                (
                    Decimal(str(s.get("quantity", 0)))
                    for s in items
                    if int(s.get("status", 1)) == 1 and s.get("source_code", source) == source
                ),
                Decimal(0),
            )
            for sku, items in stock.items()
        }
        self._stock_out = PageStockOut(self.store, self.stock)

        def work(row: OrderRow) -> None:
            self.process(row, existing.get(row["amazon_order_id"], []), products)

        if self.account.concurrency > 1 and len(rows) > 1:
            with ThreadPoolExecutor(max_workers=self.account.concurrency, thread_name_prefix="order") as pool:
                list(pool.map(work, rows))
        else:
            for row in rows:
                work(row)
        self._stock_out.flush()

    def _eligible(self, row: OrderRow) -> bool:
        status, fulfilled = row["amazon_status"], row["fulfilled_by"]
        if row["amazon_created_at"] < self.account.import_orders_after:
            return False
        if fulfilled == "AMAZON":
            return status == "SHIPPED"
        return status in transform.MERCHANT_IMPORT_STATUSES

    # -- one order ---------------------------------------------------------------------------------
    def process(self, row: OrderRow, found: list[dict[str, Any]], products: Mapping[str, Mapping[str, Any]]) -> None:
        """Apply one order under its lease; a failure is recorded on the order and the page goes on."""
        order_id = row["amazon_order_id"]
        lease = keys.order_lease(order_id)
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
                order_id,
                OrderSync.QUARANTINED,
                reason=reason,
                count_attempt=True,
                synced_amazon_updated_at=row["amazon_updated_at"],
            )
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

    def _import(self, row: OrderRow, found: list[dict[str, Any]], products: Mapping[str, Mapping[str, Any]]) -> None:
        order_id = row["amazon_order_id"]
        updated = row["amazon_updated_at"]
        status, fulfilled = row["amazon_status"], row["fulfilled_by"]
        if row["amazon_created_at"] < self.account.import_orders_after:
            self._not_eligible(row, "placed before import_orders_after")
            return
        if not self.account.import_enabled:
            self._not_eligible(row, "import is disabled for this account", "import disabled")
            return
        if status in transform.PENDING_STATUSES:
            self._mark(row, OrderSync.PENDING_PAYMENT, "pending on Amazon: no payment yet", "pending")
            return
        if status in ("CANCELLED", "UNFULFILLABLE"):
            self._not_eligible(row, f"{status.lower()} on Amazon before import", f"{status.lower()} before import")
            return
        if fulfilled == "AMAZON" and status != "SHIPPED":
            self._not_eligible(row, "Amazon-fulfilled: imported once shipped", "Amazon-fulfilled, not shipped yet")
            return
        associated = order_programs.association(row["payload"])
        if associated and not self.account.import_replacement_orders:
            kind = order_programs.ASSOCIATIONS[associated[0]]
            reason = f"{kind} of Amazon order {associated[1]}: not imported (import_replacement_orders is false)"
            self._mark(row, OrderSync.NOT_ELIGIBLE, reason, f"skipped_{kind}")
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
            store_currency = self.store_currency()
            store_currency.rate_to(amounts.currency)  # no rate: wait before anything is written
            directory = self.directory(order)
            customer = self._customer(order, directory) if self.account.customer_creation == "create_account" else None
            original = self.store.orders.get(associated[1]) if associated else None
            entity = transform.build_order(
                order,
                amounts,
                self.account,
                products=products,
                customer=customer,
                original_commerce_order=(original or {}).get("commerce_increment_id") or None,
                store_currency=store_currency,
                directory=directory,
            )
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
        except currency.NoExchangeRate as exc:
            # Retried every run (as a missing product is) until the merchant sets the rate.
            self.store.orders.set_sync(order_id, OrderSync.WAITING_PRODUCT, reason=str(exc), count_attempt=True)
            self.count("waiting_for_exchange_rate", note=f"{order_id}: {exc}")
            return

        created = orders.create_order(self.commerce, self.store, order_id, entity, found)
        if created.source is Source.FOUND:
            self.count("adopted_existing")
        elif created.source is Source.RECOVERED:
            self.count("recovered_after_lost_answer")
        commerce_order = (
            created.value
            if created.value is not None
            else self.commerce.get_order(
                int(created.row["commerce_entity_id"])  # recorded by a run that died before noting it on the order
            )
        )
        commerce_id = int(commerce_order["entity_id"])
        self._map_items(commerce_order)
        self.store.orders.set_sync(
            order_id,
            OrderSync.WAITING,
            commerce_order_id=commerce_id,
            commerce_increment_id=str(commerce_order.get("increment_id") or ""),
        )
        if fulfilled == "MERCHANT" and self.account.manage_stock:
            self._stock_out.add(order_id, [(i["sku"], int(i["qty_ordered"])) for i in entity["items"]])
        if self.account.invoice_on_import or fulfilled == "AMAZON":
            # An order created by this very write cannot have an invoice yet: it is not read first.
            orders.invoice(self.commerce, self.store, order_id, commerce_id, fresh=created.effected_now)
        if status in ("SHIPPED", "PARTIALLY_SHIPPED"):
            self._ship_amazon_packages(order_id, order, commerce_id, commerce_order)
        self.store.ops.resolve_quarantine("amazon_order", order_id)
        self._mark(row, OrderSync.IMPORTED, None, "created")
        self.store.ops.audit(
            "order_created",
            "amazon_order",
            order_id,
            {
                "commerce_order_id": commerce_id,
                "grand_total": str(entity["grand_total"]),
                **order_programs.audit_detail(
                    order_programs.read_programs(order, amounts.currency), amounts, self.account
                ),
            },
        )
        if row["buyer_cancel_requested"] and status == "UNSHIPPED":
            self._hold_for_buyer_cancellation(order_id, commerce_id)

    def _mark(self, row: OrderRow, status: OrderSync, reason: str | None, counter: str) -> None:
        """Record where the order now stands, for the Amazon version read, and count it."""
        self.store.orders.set_sync(
            row["amazon_order_id"], status, reason=reason, synced_amazon_updated_at=row["amazon_updated_at"]
        )
        self.count(counter)

    def _not_eligible(self, row: OrderRow, reason: str, short: str | None = None) -> None:
        """Mark the order not eligible for ``reason``; count it under ``short`` (the summary sentence's bracket)."""
        with self._lock:
            self.not_eligible[short or reason] += 1
        self._mark(row, OrderSync.NOT_ELIGIBLE, reason, "not_eligible")

    def _full_order(self, row: OrderRow) -> dict[str, Any]:
        """The staged order with its personal data put back (in memory only, for the Commerce payload)."""
        order = dict(row["payload"])
        pii = self.store.orders.pii(row["amazon_order_id"]) or {}
        buyer = {
            "buyerName": pii.get("buyer_name"),
            "buyerEmail": pii.get("buyer_email"),
            "buyerCompanyName": pii.get("buyer_company"),
            "buyerPurchaseOrderNumber": pii.get("buyer_purchase_order"),
        }
        order["buyer"] = {k: v for k, v in buyer.items() if v}
        if pii.get("shipping_address"):
            order["recipient"] = {"deliveryAddress": pii["shipping_address"]}
        if pii.get("buyer_tax_registrations"):
            tax = dict(order.get("tax") or {})
            tax["taxRegistrations"] = [*(tax.get("taxRegistrations") or []), *pii["buyer_tax_registrations"]]
            order["tax"] = tax
        return buyer_data.with_gift_messages(order, pii.get("gift_messages"))

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

    def _customer(self, order: Mapping[str, Any], directory: Mapping[str, Any]) -> dict[str, Any] | None:
        """The buyer's Commerce customer (``customer_creation: create_account``); None for a guest order."""
        email = transform.buyer_email(order, self.account)
        if email.endswith(".invalid") or order_programs.placeholder_buyer(order):
            return None  # no real email, or Amazon's stand-in shared by many business buyers: a guest order
        address = transform.commerce_address(order, "billing", email, directory)
        return orders.customer(
            self.commerce,
            email,
            address["firstname"],
            address["lastname"],
            store_id=self.account.store_id,
            address=addresses.customer_address(address),
        )

    def _map_items(self, commerce_order: Mapping[str, Any]) -> None:
        by_amazon = {
            str(i.get("ext_order_item_id")): (i.get("sku"), int(i["item_id"]))
            for i in commerce_order.get("items") or []
            if i.get("ext_order_item_id") and i.get("item_id") is not None
        }
        self.store.orders.map_items(by_amazon)

    def _ship_amazon_packages(
        self,
        order_id: str,
        order: Mapping[str, Any],
        commerce_id: int,
        commerce_order: Mapping[str, Any] | None = None,
    ) -> None:
        """What Amazon already shipped (FBA or Seller Central) becomes Commerce shipments: one per package with its
        tracking, and one without a track for the units Amazon shows shipped without package data, so the order
        completes (``commerce_writes.shipments.mirror_amazon_shipments``)."""
        mirror_amazon_shipments(
            self.commerce,
            self.store,
            order_id,
            mirror_plan(self.store, order_id, order),
            commerce_id,
            self.store.orders.item_ids(order_id),
            order=order,
            commerce_order=commerce_order,
        )

    # -- changes after import ----------------------------------------------------------------------
    def _update(self, row: OrderRow) -> None:
        order_id = row["amazon_order_id"]
        commerce_id = int(row["commerce_order_id"])
        status = row["amazon_status"]
        if row["sync_status"] == OrderSync.WAITING:
            # Created but the follow-up writes did not finish: finish them now.
            self._finish_import(row, commerce_id)
            return
        if status == "CANCELLED":
            put_back = self.stock().put_back if self.account.manage_stock else None
            orders.cancel_in_commerce(
                self.commerce, self.store, order_id, commerce_id, "Cancelled on Amazon.", put_back_stock=put_back
            )
            self.store.orders.set_sync(order_id, OrderSync.CANCELLED, synced_amazon_updated_at=row["amazon_updated_at"])
            self.count("cancelled")
            return
        asked = row["buyer_cancel_requested"] and status == "UNSHIPPED" and row["sync_status"] != OrderSync.ON_HOLD
        if asked and not self.store.writes.get(keys.unhold(order_id).natural_key):  # not once a person chose Keep
            self._hold_for_buyer_cancellation(order_id, commerce_id)
            self.store.orders.set_sync(order_id, OrderSync.ON_HOLD, synced_amazon_updated_at=row["amazon_updated_at"])
            return
        # Shipments made on Amazon's side after import are the shipment sync's job.
        self.store.orders.set_sync(order_id, row["sync_status"], synced_amazon_updated_at=row["amazon_updated_at"])
        self.count("updated")

    def _finish_import(self, row: OrderRow, commerce_id: int) -> None:
        order_id = row["amazon_order_id"]
        commerce_order = self.commerce.get_order(commerce_id)
        self._map_items(commerce_order)
        if row["fulfilled_by"] == "MERCHANT" and self.account.manage_stock:
            lines = [(i["sku"], int(Decimal(str(i["qty_ordered"])))) for i in commerce_order.get("items") or []]
            self._stock_out.add(order_id, lines)
        if self.account.invoice_on_import or row["fulfilled_by"] == "AMAZON":
            orders.invoice(self.commerce, self.store, order_id, commerce_id, fresh=False)
        if row["amazon_status"] in ("SHIPPED", "PARTIALLY_SHIPPED"):
            self._ship_amazon_packages(order_id, self._full_order(row), commerce_id, commerce_order)
        self._mark(row, OrderSync.IMPORTED, None, "created")
        if row["buyer_cancel_requested"] and row["amazon_status"] == "UNSHIPPED":
            self._hold_for_buyer_cancellation(order_id, commerce_id)

    def _hold_for_buyer_cancellation(self, order_id: str, commerce_id: int) -> None:
        held = orders.hold(self.commerce, self.store, order_id, commerce_id)
        noted = orders.comment(
            self.commerce, self.store, keys.comment("buyer_cancel", order_id), commerce_id, BUYER_CANCEL_COMMENT
        )
        if held.source is Source.RECORDED and noted.source is Source.RECORDED:
            return  # held and noted by an earlier run
        self.store.orders.set_sync(order_id, OrderSync.ON_HOLD)
        self.store.ops.audit(
            "order_held_for_buyer_cancellation", "amazon_order", order_id, {"commerce_order_id": commerce_id}
        )
        self.count("on_hold", order_id)


def load_orders(ctx: Resources, account: AccountSettings, *, owner: str) -> dict[str, Any]:
    """Apply every staged change of the account to Commerce; returns the run summary (counts, order ids)."""
    loader = Loader(ctx, account, owner=owner)
    summary = loader.run()
    for note in loader.problems:
        log.warning("%s", note)
    log.info("%s: %s", account.account_id, summaries.import_sentence(summary))
    return summary
