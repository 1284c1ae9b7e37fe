"""The Commerce → Amazon half of the shipment sync: Commerce shipments confirmed to Amazon once, then verified.

Part of the ``amazon_shipment_sync`` pipeline (``shipment_sync`` runs it after mirroring Amazon's
packages; ``ShipmentSync`` inherits these steps): not a pipeline of its own.

2. **Collect** (``collect_commerce_shipments``): a cursor (with overlap) over Commerce shipments; each
   shipment of a merchant-fulfilled Amazon order becomes the outbox entry ``shipment:<Commerce shipment id>``
   holding its ``confirmShipment`` package (``shipments.package_detail``). Shipments of other orders are
   ignored, those made from Amazon's packages skipped, those of orders not imported yet held (``waiting``)
   and looked at again every run (``release_waiting``).
3. **Send** (``send_pending``): ``pending → sending`` (compare-and-set, attempt counted) before
   ``confirmShipment``; 204 → ``confirmed``; 4xx → ``rejected`` with Amazon's message; 429 → ``pending``;
   5xx or a lost answer → stays ``sending``, and before it is sent again the order is read from Amazon:
   a package with its ``packageReferenceId`` means the confirmation landed (the outbox status is the
   intent record here: the ``write_once`` protocol for a push to Amazon).
4. **Verify** (``verify_confirmed``): the order is read back; (partly) shipped → ``accepted``. An order
   still unshipped ``mismatch_grace`` after its confirmation is a mismatch (``shipment_not_reflected``),
   resolved by itself once Amazon shows it shipped.

Nothing here logs or stores buyer data: payloads hold item ids, quantities, carrier and tracking only.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from amazon_commerce_sync import transform
from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.errors import AuthenticationError, FatalError, IntegrationError, RetriableError
from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook
from amazon_commerce_sync.hooks.commerce import CommerceHook, Filter
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.shipments import Decision, KnownShipments, amazon_package_refs, decide, shipped_on_amazon
from amazon_commerce_sync.store import OrderRow, OrderSync, OutboxRow, OutboxStatus, StateStore
from amazon_commerce_sync.times import as_utc, parse_time

log = logging.getLogger(__name__)

KIND = "shipment_confirmation"

SHIPPED_STATUSES = ("SHIPPED", "PARTIALLY_SHIPPED")
# Orders whose Commerce shipments are confirmed to Amazon (Amazon has the last word on cancelled ones).
READY_SYNC = (OrderSync.IMPORTED, OrderSync.ON_HOLD, OrderSync.CANCELLED)
VERIFY_DATA = ("FULFILLMENT", "PACKAGES")
MISMATCH_NOT_REFLECTED = "shipment_not_reflected"
MISMATCH_OTHER_ORDER = "shipment_on_other_commerce_order"
MISMATCH_TRACKING = "shipment_tracking_differs"
LEASE_SECONDS = 300
BATCH = 100


def outbox_key(shipment_id: int | str) -> str:
    """The outbox entry of a Commerce shipment's confirmation."""
    return f"shipment:{shipment_id}"


def commerce_cursor(account: AccountSettings) -> str:
    """The cursor over the account's Commerce shipments (``updated_at``)."""
    return f"commerce_shipments:{account.account_id}"


class ConfirmSteps:
    """Steps 2-4 of a shipment sync run for one account (module docstring); ``ShipmentSync`` runs them.

    The run gives: ``ctx`` (Resources), ``store``, ``account``, ``owner`` (lease owner), ``now`` (the run's
    time), ``mismatch_grace``, ``note(key, text, n)`` and the per-account hooks ``amazon`` / ``commerce``.
    """

    ctx: Resources
    store: StateStore
    account: AccountSettings
    owner: str
    now: datetime
    mismatch_grace: timedelta

    @property
    def commerce(self) -> CommerceHook:
        return self.ctx.commerce(self.account)

    @property
    def amazon(self) -> AmazonSpApiHook:
        return self.ctx.amazon(self.account)

    def note(self, key: str, text: str | None = None, n: int = 1) -> None:
        """Count an outcome (and keep its text for the run's log); the run implements it."""
        raise NotImplementedError

    # -- Commerce -> Amazon: collect -----------------------------------------------------------
    def collect_commerce_shipments(self) -> None:
        """Commerce shipments since the cursor become outbox entries (step 2); the cursor moves after."""
        stream = commerce_cursor(self.account)
        cursor = self.store.ops.get_cursor(stream)
        if cursor:
            since = cursor - timedelta(minutes=self.account.overlap_minutes)
        else:
            since = self.account.import_orders_after
        latest: datetime | None = None
        batch: list[dict[str, Any]] = []
        for shipment in self.commerce.iter_shipments(since, page_size=self.account.page_size):
            batch.append(shipment)
            try:
                seen = parse_time(shipment.get("updated_at"))
                latest = seen if latest is None else max(latest, seen)
            except ValueError:
                pass
            if len(batch) >= BATCH:
                self._collect(batch)
                batch = []
        if batch:
            self._collect(batch)
        # Only now that every shipment up to ``latest`` has its outcome may the cursor move.
        if latest is not None:
            self.store.ops.set_cursor(stream, latest)

    def _orders_for(self, shipments: Sequence[Mapping[str, Any]]) -> dict[int, OrderRow | None]:
        """Commerce order id -> the account's staged Amazon order (None: not an Amazon order of this account)."""
        ids = {int(s["order_id"]) for s in shipments if s.get("order_id") is not None}
        found: dict[int, OrderRow | None] = dict(self.store.orders.by_commerce_ids(self.account.account_id, ids))
        unknown = sorted(ids - set(found))
        if unknown:
            # Not mapped (yet): an Amazon order the import has not finished, or not an Amazon order at all.
            ext: dict[int, str] = {}
            for page in self.commerce.search("orders", [[Filter("entity_id", unknown, "in")]], page_size=BATCH):
                for order in page:
                    if order.get("ext_order_id"):
                        ext[int(order["entity_id"])] = str(order["ext_order_id"])
            staged = self.store.orders.get_many(set(ext.values()))
            for commerce_id in unknown:
                row = staged.get(ext.get(commerce_id, ""))
                found[commerce_id] = row if row and row["account_id"] == self.account.account_id else None
        return found

    def _collect(self, shipments: Sequence[Mapping[str, Any]]) -> None:
        orders = self._orders_for(shipments)
        for shipment in shipments:
            shipment_id = int(shipment["entity_id"])
            key = outbox_key(shipment_id)
            if self.store.outbox.get(key) is not None:
                continue  # already collected (held ones are looked at by release_waiting)
            row = orders.get(int(shipment.get("order_id") or 0))
            try:
                decision = self.decide(shipment, row)
            except IntegrationError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad record must not stop the others
                decision = Decision(OutboxStatus.WAITING, f"unexpected {type(exc).__name__}; looked at again next run")
                log.exception("shipment %s: unexpected %s", shipment_id, type(exc).__name__)
            if decision.status is None:
                self.note(decision.reason or "skipped")
                continue
            payload = decision.payload or {
                "commerce_shipment_id": shipment_id,
                "commerce_order_id": int(shipment.get("order_id") or 0),
            }
            added = self.store.outbox.add(
                key,
                KIND,
                self.account.account_id,
                decision.amazon_order_id or "",
                payload,
                decision.status,
                decision.reason,
            )
            if added:
                self._count_decision(decision, shipment_id)

    def _count_decision(self, decision: Decision, shipment_id: int) -> None:
        if decision.status == OutboxStatus.WAITING:
            self.note("held", f"shipment {shipment_id} ({decision.amazon_order_id}) held: {decision.reason}")
        elif decision.status == OutboxStatus.REJECTED:
            self.note("rejected", f"shipment {shipment_id} ({decision.amazon_order_id}) not sent: {decision.reason}")
            self.store.ops.audit(
                "shipment_confirmation_rejected",
                "amazon_order",
                decision.amazon_order_id or "",
                {"commerce_shipment_id": shipment_id, "reason": decision.reason},
            )
        else:
            self.note("queued")

    def decide(self, shipment: Mapping[str, Any], row: OrderRow | None) -> Decision:
        """What to do with one Commerce shipment of (maybe) an Amazon order (``shipments.decide``)."""
        if row is None:
            return Decision(None, "ignored_not_amazon")
        order_id = row["amazon_order_id"]
        known = KnownShipments(
            imported=row["sync_status"] in READY_SYNC and row["commerce_order_id"] is not None,
            mirrored=[
                w
                for w in self.store.writes.for_order(order_id)
                if w["natural_key"].startswith(keys.ship_prefix(order_id))
            ],
            confirmed_refs={
                str((e["payload"].get("package") or {}).get("packageReferenceId"))
                for e in self.store.outbox.for_order(order_id, KIND)
            },
            amazon_items={commerce: amazon for amazon, commerce in self.store.orders.item_ids(order_id).items()},
        )
        decision = decide(shipment, row, known, self.account.carrier_map)
        if decision.mismatch:
            self.store.ops.report_mismatch(MISMATCH_OTHER_ORDER, order_id, decision.mismatch)
            self.note("mismatches", f"{order_id}: {decision.mismatch}")
        return decision

    def release_waiting(self) -> None:
        """Look again at held shipments: the order may be imported, the tracking number added."""
        held = self.store.outbox.entries(kind=KIND, statuses=[OutboxStatus.WAITING], account_id=self.account.account_id)
        for start in range(0, len(held), BATCH):
            chunk = held[start : start + BATCH]
            ids = [int(e["payload"]["commerce_shipment_id"]) for e in chunk]
            shipments = {}
            for page in self.commerce.search("shipments", [[Filter("entity_id", ids, "in")]], page_size=BATCH):
                shipments.update({int(s["entity_id"]): s for s in page})
            orders = self._orders_for(list(shipments.values()))
            for entry in chunk:
                shipment = shipments.get(int(entry["payload"]["commerce_shipment_id"]))
                if shipment is None:
                    self.store.outbox.transition(
                        entry["id"],
                        OutboxStatus.SKIPPED,
                        amazon_message="the Commerce shipment no longer exists",
                        expect=[OutboxStatus.WAITING],
                    )
                    continue
                decision = self.decide(shipment, orders.get(int(shipment.get("order_id") or 0)))
                if decision.status == OutboxStatus.WAITING:
                    self.store.outbox.transition(
                        entry["id"], OutboxStatus.WAITING, amazon_message=decision.reason, expect=[OutboxStatus.WAITING]
                    )
                elif decision.status is None:
                    self.store.outbox.transition(
                        entry["id"],
                        OutboxStatus.SKIPPED,
                        amazon_message=f"not confirmed: {decision.reason}",
                        expect=[OutboxStatus.WAITING],
                    )
                    self.note(decision.reason or "skipped")
                elif self.store.outbox.transition(
                    entry["id"],
                    decision.status,
                    payload=decision.payload or entry["payload"],
                    amazon_message=decision.reason,
                    expect=[OutboxStatus.WAITING],
                ):
                    self._count_decision(decision, int(shipment["entity_id"]))
                    self.note("released")

    # -- Commerce -> Amazon: send --------------------------------------------------------------
    def send_pending(self) -> None:
        """Confirm pending shipments to Amazon, once each, one order under its lease at a time (step 3)."""
        entries = self.store.outbox.entries(
            kind=KIND, statuses=[OutboxStatus.PENDING, OutboxStatus.SENDING], account_id=self.account.account_id
        )
        for order_id, order_entries in _by_order(entries).items():
            lease = f"shipment_confirm:{order_id}"
            if not self.store.ops.acquire_lease(lease, self.owner, LEASE_SECONDS):
                self.note("busy_elsewhere")
                continue
            try:
                self._send_order(order_id, order_entries)
            except AuthenticationError:
                raise  # the credentials or roles are wrong: nothing can be sent; fail the task
            except RetriableError as exc:
                self.note("retry_later", f"{order_id}: Amazon did not answer; retried next run: {exc}")
            except FatalError as exc:
                self.note("failed", f"{order_id}: cannot check the order on Amazon: {exc}")
            finally:
                self.store.ops.release_lease(lease, self.owner)

    def _send_order(self, order_id: str, entries: Iterable[OutboxRow]) -> None:
        entries = list(entries)
        # Amazon's order as it is now, read at most once per order: when an earlier attempt's outcome is
        # unknown, or when the staged copy is older than a Commerce shipment (it may have been shipped on
        # Amazon's side meanwhile, e.g. in Seller Central). The hook's client-side bucket keeps getOrder
        # within Amazon's rate.
        current: dict[str, Any] | None = None
        staged = self.store.orders.get(order_id)
        stale = _predates(staged, entries)
        # Packages this integration may have put on Amazon: entries sent at least once. A package on Amazon with
        # the reference of an entry never sent is someone else's (Seller Central numbers its packages too).
        ours = {
            str((e["payload"].get("package") or {}).get("packageReferenceId"))
            for e in self.store.outbox.for_order(order_id, KIND)
            if e["attempts"] > 0 and e["payload"].get("package")
        }
        for entry in entries:
            package = entry["payload"]["package"]
            ref = str(package["packageReferenceId"])
            if entry["status"] == OutboxStatus.SENDING or stale:
                if current is None:
                    current = self.amazon.get_order(order_id, included_data=VERIFY_DATA)
                amazon_packages = amazon_package_refs(current)
            if entry["status"] == OutboxStatus.SENDING:
                # An earlier attempt's outcome is unknown: look before sending again.
                if ref in amazon_packages:
                    if amazon_packages[ref] == package["trackingNumber"]:
                        self.store.outbox.transition(
                            entry["id"],
                            OutboxStatus.CONFIRMED,
                            amazon_message="found on Amazon after an unanswered attempt",
                            expect=[OutboxStatus.SENDING],
                        )
                        self._confirmed(order_id, entry, recovered=True)
                    else:
                        self._rejected(
                            order_id,
                            entry,
                            f"Amazon already has a different package with packageReferenceId {ref} on this order",
                        )
                    continue
            known = current if current is not None else (staged or {}).get("payload") or {}
            if self._held_by_amazon(order_id, entry, known, ours):
                continue
            if not self.store.outbox.transition(
                entry["id"], OutboxStatus.SENDING, amazon_message=None, expect=[entry["status"]], count_attempt=True
            ):
                continue  # another run took it
            try:
                self.amazon.confirm_shipment(
                    order_id, marketplace_id=entry["payload"]["marketplace_id"], package_detail=package
                )
            except AuthenticationError:
                self.store.outbox.transition(
                    entry["id"], OutboxStatus.PENDING, expect=OutboxStatus.SENDING, amazon_message=None
                )
                raise
            except FatalError as exc:
                self._rejected(order_id, entry, exc.message or str(exc))
            except RetriableError as exc:
                if exc.safe_to_replay:
                    self.store.outbox.transition(
                        entry["id"],
                        OutboxStatus.PENDING,
                        amazon_message=f"will retry: {exc}",
                        expect=[OutboxStatus.SENDING],
                    )
                else:
                    self.store.outbox.transition(
                        entry["id"],
                        OutboxStatus.SENDING,
                        amazon_message=f"outcome unknown, checked before a retry: {exc}",
                        expect=[OutboxStatus.SENDING],
                    )
                    current = None  # something may have changed on Amazon's side
                self.note("retry_later", f"{order_id}: shipment {entry['payload']['commerce_shipment_id']}: {exc}")
            else:
                self.store.outbox.transition(
                    entry["id"], OutboxStatus.CONFIRMED, expect=OutboxStatus.SENDING, amazon_message=None
                )
                self._confirmed(order_id, entry, recovered=False)

    def _held_by_amazon(self, order_id: str, entry: OutboxRow, current: Mapping[str, Any], ours: set[str]) -> bool:
        """Settle an entry whose units Amazon already shows shipped by someone else; True when nothing is to be sent.

        Same tracking number: ``accepted`` (already confirmed). Another tracking number for the same units: one
        ``shipment_tracking_differs`` mismatch naming both numbers, the entry ``skipped``. Either way the entry
        records Amazon's packages (``amazon_packages``), so the Amazon → Commerce half never copies them into a
        second Commerce shipment for the same units.
        """
        package = entry["payload"]["package"]
        found = shipped_on_amazon(package, current, ours)
        if found is None:
            return False
        shipment_id = entry["payload"]["commerce_shipment_id"]
        payload = {**entry["payload"], "amazon_packages": list(found.references)}
        if found.same_tracking:
            message = (
                f"already shipped on Amazon with the same tracking number (Amazon package "
                f"{', '.join(found.references)}): nothing sent"
            )
            if self.store.outbox.transition(
                entry["id"], OutboxStatus.ACCEPTED, expect=[entry["status"]], payload=payload, amazon_message=message
            ):
                self.note("already_on_amazon")
                self.store.ops.audit(
                    "shipment_already_on_amazon",
                    "amazon_order",
                    order_id,
                    {"commerce_shipment_id": shipment_id, "amazon_packages": list(found.references)},
                )
            return True
        detail = (
            f"Commerce shipment {shipment_id} has tracking number {package['trackingNumber']}, but Amazon already "
            f"shows its units shipped with tracking number {', '.join(found.tracking_numbers)} (Amazon package "
            f"{', '.join(found.references)}); not confirmed again. Correct the tracking number where it is wrong"
        )
        self.store.ops.report_mismatch(MISMATCH_TRACKING, order_id, detail)
        if self.store.outbox.transition(
            entry["id"], OutboxStatus.SKIPPED, expect=[entry["status"]], payload=payload, amazon_message=detail[:2000]
        ):
            self.note("mismatches", f"{order_id}: {detail}")
        return True

    def _confirmed(self, order_id: str, entry: OutboxRow, *, recovered: bool) -> None:
        self.note("confirmed")
        if recovered:
            self.note("recovered_after_lost_answer")
        package = entry["payload"]["package"]
        self.store.ops.audit(
            "shipment_confirmed",
            "amazon_order",
            order_id,
            {
                "commerce_shipment_id": entry["payload"]["commerce_shipment_id"],
                "package_reference_id": package["packageReferenceId"],
                "carrier_code": package["carrierCode"],
                "items": len(package["orderItems"]),
                "recovered": recovered,
            },
        )

    def _rejected(self, order_id: str, entry: OutboxRow, message: str) -> None:
        self.store.outbox.transition(
            entry["id"], OutboxStatus.REJECTED, expect=OutboxStatus.SENDING, amazon_message=message[:2000]
        )
        self.note(
            "rejected", f"{order_id}: Amazon rejected shipment {entry['payload']['commerce_shipment_id']}: {message}"
        )
        self.store.ops.audit(
            "shipment_confirmation_rejected",
            "amazon_order",
            order_id,
            {"commerce_shipment_id": entry["payload"]["commerce_shipment_id"], "reason": message[:500]},
        )

    # -- verify ---------------------------------------------------------------------------------
    def verify_confirmed(self) -> None:
        """Read confirmed orders back from Amazon: accepted, or a mismatch after the grace period (step 4)."""
        entries = self.store.outbox.entries(
            kind=KIND, statuses=[OutboxStatus.CONFIRMED], account_id=self.account.account_id
        )
        for order_id, order_entries in _by_order(entries).items():
            try:
                order = self.amazon.get_order(order_id, included_data=VERIFY_DATA)
            except IntegrationError as exc:
                self.note("verify_later", f"{order_id}: cannot read the order back from Amazon yet: {exc}")
                continue
            status = transform.fulfillment_status(order)
            if status in SHIPPED_STATUSES:
                for entry in order_entries:
                    self.store.outbox.transition(
                        entry["id"],
                        OutboxStatus.ACCEPTED,
                        amazon_message=f"verified: Amazon shows the order {status}",
                        expect=[OutboxStatus.CONFIRMED],
                    )
                self.store.ops.resolve_mismatch(MISMATCH_NOT_REFLECTED, order_id)
                self.store.ops.audit("shipment_verified", "amazon_order", order_id, {"amazon_status": status})
                self.note("verified", n=len(order_entries))
                continue
            oldest = min(as_utc(e["updated_at"]) for e in order_entries)
            if self.now - oldest >= self.mismatch_grace:
                detail = (
                    f"Amazon shows the order {status} although shipment(s) "
                    + ", ".join(str(e["payload"]["commerce_shipment_id"]) for e in order_entries)
                    + f" were confirmed (since {oldest.isoformat()})"
                )
                self.store.ops.report_mismatch(MISMATCH_NOT_REFLECTED, order_id, detail)
                self.note("mismatches", f"{order_id}: {detail}")
            else:
                self.note("verifying")


def _predates(staged: OrderRow | None, entries: Sequence[OutboxRow]) -> bool:
    """True when the staged Amazon order was last written before one of the pending Commerce shipments was made
    (or is not staged at all): Amazon's copy must be read before sending."""
    if staged is None:
        return True
    written = as_utc(staged["updated_at"])
    # shipDate is the Commerce shipment's created_at, to the second.
    return any(
        parse_time(e["payload"]["package"]["shipDate"]) + timedelta(seconds=1) > written
        for e in entries
        if e["status"] == OutboxStatus.PENDING
    )


def _by_order(entries: Iterable[OutboxRow]) -> dict[str, list[OutboxRow]]:
    by_order: dict[str, list[OutboxRow]] = collections.defaultdict(list)
    for entry in entries:
        by_order[entry["amazon_order_id"]].append(entry)
    return by_order
