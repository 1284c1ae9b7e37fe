"""Load staged Amazon orders into Commerce (create, update), exactly once in effect.

Extraction (``order_extract``) stages the orders; loading works from the staged orders a page of 100 at a time
(``import_pages``: the pool never drains between pages): the page's leases (one writer per order across workers),
a batched look-up of its Commerce orders (``ext_order_id``), products and stock, its orders with at most
``concurrency`` Commerce requests in flight, and one stock write for the page. Every write to Commerce goes through
``commerce_writes`` (look up its natural key, record the intent, send, look again after a lost answer), so a
retry, rerun, killed worker or a lost answer never produces a second order, invoice, shipment or stock move; what
the write leaves to note is committed with its outcome (``write_once(then=...)``): four commits per new order.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from amazon_commerce_sync import addresses, buyer_data, currency, import_pages, order_programs, summaries, transform
from amazon_commerce_sync.commerce_writes import keys, orders, stock_recovery
from amazon_commerce_sync.commerce_writes.protocol import Source, WriteResult
from amazon_commerce_sync.commerce_writes.shipments import mirror_amazon_shipments, mirror_plan
from amazon_commerce_sync.commerce_writes.stock import PageStockOut, StockMoves
from amazon_commerce_sync.errors import FatalError, RetriableError
from amazon_commerce_sync.import_pages import Page
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
        self._directory_lock = threading.Lock()
        self.availability = import_pages.Availability()
        self._gate = threading.BoundedSemaphore(max(1, account.concurrency))

    @property
    def commerce(self):
        """The Commerce hook of the calling thread, at most ``concurrency`` requests in flight across threads."""
        hook = self.ctx.commerce(self.account)
        hook.gate = self._gate
        return hook

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
        with self._directory_lock:  # once per run, also when several orders need it at the same time
            if country_id not in self._countries:
                info = None
                if re.fullmatch(r"[A-Z]{2}", country_id):
                    info = self.commerce.get_country(country_id, self.store_currency().store_code)
                self._countries[country_id] = addresses.CountryRegions.from_rest(info) if info else None
            return self._countries[country_id]

    def run(self) -> dict[str, Any]:
        """Every order of the account with Amazon changes not applied yet, page by page; returns the summary."""
        if self.account.manage_stock:  # first the moves of orders a run that died imported but did not write
            stock_recovery.finish_unwritten(self.store, self.stock, self.account.account_id, self.owner, LEASE_SECONDS)
        import_pages.run_pages(
            self._pages(),
            workers=import_pages.spare_workers(self.account.concurrency),
            prepare=self.prepare_page,
            process=self.process,
            finish=self.finish_page,
        )
        result: dict[str, Any] = dict(self.summary)
        result["account"] = self.account.account_id
        result["on_hold_for_buyer_cancellation"] = sorted(self.on_hold)
        if self.not_eligible:
            result["not_eligible_reasons"] = dict(self.not_eligible)
        return result

    def _pages(self) -> Iterator[list[OrderRow]]:
        after = ""
        while batch := self.store.orders.to_process(self.account.account_id, after_id=after, limit=100):
            after = batch[-1]["amazon_order_id"]
            yield batch

    def prepare_page(self, rows: list[OrderRow]) -> Page:
        """A page's leases (one transaction) and batched look-ups: the Commerce orders carrying its Amazon order
        ids, its products and their stock. A failed look-up gives the leases back before it is raised."""
        leases = {keys.order_lease(r["amazon_order_id"]): r for r in rows}
        leased = self.store.ops.acquire_leases(list(leases), self.owner, LEASE_SECONDS)
        with import_pages.given_back_on_failure(lambda: self.store.ops.release_leases(leased, self.owner)):
            to_create = [
                r for k, r in leases.items() if k in leased and r["commerce_order_id"] is None and self._eligible(r)
            ]
            skus = import_pages.ordered_skus(to_create, self.account.commerce_sku)
            ids = [r["amazon_order_id"] for r in to_create]
            if ids:
                self.store_currency()  # once per run, before the workers need it
            existing = self.commerce.find_orders_by_ext_order_ids(ids) if ids else {}
            products = self.commerce.get_products_by_skus(skus) if skus else {}
            if products and self.account.manage_stock:
                with self.availability.io_lock:  # not between another page's stock read and write
                    items = self.commerce.get_source_items(sorted(products))
                    self.availability.refresh(import_pages.source_quantities(items, self.account.source_code))
            return Page(rows, existing, products, PageStockOut(self.store, self.stock), leased)

    def finish_page(self, page: Page) -> None:
        """After the page's last order: its one stock write, then its leases given back (one transaction), also
        when the write fails (its moves stay recorded: ``stock_recovery`` writes them on the next run)."""
        try:
            with self.availability.io_lock:
                page.stock_out.flush()
                self.availability.written(page)
        finally:
            self.store.ops.release_leases(page.leased, self.owner)

    def _eligible(self, row: OrderRow) -> bool:
        status, fulfilled = row["amazon_status"], row["fulfilled_by"]
        if row["amazon_created_at"] < self.account.import_orders_after:
            return False
        if fulfilled == "AMAZON":
            return status == "SHIPPED"
        return status in transform.MERCHANT_IMPORT_STATUSES

    # -- one order ---------------------------------------------------------------------------------
    def process(self, page: Page, row: OrderRow) -> None:
        """Apply one order under its lease (taken for the page); a failure is recorded on the order and the
        page goes on."""
        order_id = row["amazon_order_id"]
        if keys.order_lease(order_id) not in page.leased:
            self.count("busy_elsewhere")
            return
        try:
            if row["commerce_order_id"] is None:
                self._import(row, page)
            else:
                self._update(row, page)
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

    def _import(self, row: OrderRow, page: Page) -> None:
        order_id = row["amazon_order_id"]
        products = page.products
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
            missing = self._product_problems(amounts, page, fulfilled)
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
            with self.store.unit():
                self.store.ops.quarantine("amazon_order", order_id, reason)
                self.store.orders.set_sync(
                    order_id, OrderSync.QUARANTINED, reason=reason, synced_amazon_updated_at=updated
                )
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

        stock_lines = (
            [(i["sku"], int(i["qty_ordered"])) for i in entity["items"]]
            if fulfilled == "MERCHANT" and self.account.manage_stock
            else []
        )
        unfinished: list[str | None] = []

        def note_created(result: WriteResult[dict[str, Any]]) -> None:  # committed with the create's outcome
            if result.value is not None:
                unfinished.append(self._note_created(order_id, result.value, page, stock_lines))

        created = orders.create_order(
            self.commerce, self.store, order_id, entity, page.existing.get(order_id, []), then=note_created
        )
        if created.source is Source.FOUND:
            self.count("adopted_existing")
        elif created.source is Source.RECOVERED:
            self.count("recovered_after_lost_answer")
        commerce_order = created.value
        if commerce_order is None:  # recorded by a run that died before noting it on the order
            commerce_order = self.commerce.get_order(int(created.row["commerce_entity_id"]))
            with self.store.unit():
                unfinished.append(self._note_created(order_id, commerce_order, page, stock_lines))
        commerce_id = int(commerce_order["entity_id"])
        if unfinished[0]:
            page.stock_out.finish_batch(unfinished[0])
        audit = {
            "commerce_order_id": commerce_id,
            "grand_total": str(entity["grand_total"]),
            **order_programs.audit_detail(order_programs.read_programs(order, amounts.currency), amounts, self.account),
        }

        def note_imported(_result: WriteResult | None = None) -> None:  # imported, out of quarantine, audited
            self.store.ops.resolve_quarantine("amazon_order", order_id)
            self.store.orders.set_sync(order_id, OrderSync.IMPORTED, synced_amazon_updated_at=updated)
            self.store.ops.audit("order_created", "amazon_order", order_id, audit)

        shipped = status in ("SHIPPED", "PARTIALLY_SHIPPED")
        invoiced = self.account.invoice_on_import or fulfilled == "AMAZON"
        if invoiced:
            # An order created by this very write cannot have an invoice yet: it is not read first. The last step
            # of an unshipped order: its import is noted with the invoice's outcome, in one commit.
            then = None if shipped else note_imported
            orders.invoice(self.commerce, self.store, order_id, commerce_id, fresh=created.effected_now, then=then)
        if shipped:
            self._ship_amazon_packages(order_id, order, commerce_id, commerce_order)
        if shipped or not invoiced:
            with self.store.unit():
                note_imported()
        self.count("created")
        if row["buyer_cancel_requested"] and status == "UNSHIPPED":
            self._hold_for_buyer_cancellation(order_id, commerce_id)

    def _note_created(
        self, order_id: str, commerce_order: Mapping[str, Any], page: Page, stock_lines: list[tuple[str, int]]
    ) -> str | None:
        """Note the Commerce order on the staged one (ids, items: status WAITING until the follow-ups are done) and
        queue its stock move; store calls only. Returns the batch an earlier run put the move into, to finish."""
        self._map_items(commerce_order)
        self.store.orders.set_sync(
            order_id,
            OrderSync.WAITING,
            commerce_order_id=int(commerce_order["entity_id"]),
            commerce_increment_id=str(commerce_order.get("increment_id") or ""),
        )
        return page.stock_out.queue(order_id, stock_lines) if stock_lines else None

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
        return buyer_data.with_pii(row["payload"], self.store.orders.pii(row["amazon_order_id"]))

    def _product_problems(self, amounts, page: Page, fulfilled: str) -> list[str]:
        """Why the order cannot be created yet (empty when it can); reserves its stock (``Availability``)."""
        problems = []
        needed: dict[str, int] = collections.Counter()
        for item in amounts.items:
            needed[self.account.commerce_sku(item.seller_sku)] += item.quantity
        for sku in sorted(needed):
            product = page.products.get(sku)
            if product is None:
                problems.append(f"SKU {sku} is not in the Commerce catalog")
            elif int(product.get("status", 1)) != 1:
                problems.append(f"SKU {sku} is disabled in Commerce")
        if problems or fulfilled != "MERCHANT" or not self.account.manage_stock:
            return problems
        return self.availability.reserve(page, needed)

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
    def _update(self, row: OrderRow, page: Page) -> None:
        order_id = row["amazon_order_id"]
        commerce_id = int(row["commerce_order_id"])
        status = row["amazon_status"]
        if row["sync_status"] == OrderSync.WAITING:
            # Created but the follow-up writes did not finish: finish them now.
            self._finish_import(row, commerce_id, page)
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

    def _finish_import(self, row: OrderRow, commerce_id: int, page: Page) -> None:
        order_id = row["amazon_order_id"]
        commerce_order = self.commerce.get_order(commerce_id)
        self._map_items(commerce_order)
        if row["fulfilled_by"] == "MERCHANT" and self.account.manage_stock:
            lines = [(i["sku"], int(Decimal(str(i["qty_ordered"])))) for i in commerce_order.get("items") or []]
            page.stock_out.add(order_id, lines)
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
