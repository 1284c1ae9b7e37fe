"""Keep shipments in step between Commerce and Amazon after an order was imported, exactly once in effect.

One run, per account, in this order:

1. **Amazon → Commerce** (``mirror_amazon_side``): orders Amazon shows shipped (FBA, or shipped in
   Seller Central) get a Commerce shipment per Amazon package Commerce lacks, with Amazon's tracking
   (``commerce_writes.shipments``, the writes the import makes too). Packages this sync confirmed are
   known by their ``packageReferenceId`` and never mirrored back. A cursor over the state store's
   ``updated_at`` keeps the scan to orders that changed.
2. **Commerce → Amazon, collect** (``collect_commerce_shipments``): a cursor (with overlap) over
   Commerce shipments; each shipment of a merchant-fulfilled Amazon order becomes the outbox entry
   ``shipment:<Commerce shipment id>`` holding its ``confirmShipment`` package (``shipments.package_detail``).
   Shipments of other orders are ignored, those made from Amazon's packages skipped, those of orders
   not imported yet held (``waiting``) and looked at again every run.
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
from datetime import UTC, datetime, timedelta
from typing import Any

from amazon_commerce_sync import transform
from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.shipments import mirror_amazon_shipments, mirror_plan
from amazon_commerce_sync.errors import AuthenticationError, FatalError, IntegrationError, RetriableError
from amazon_commerce_sync.hooks.commerce import Filter
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.shipments import Decision, KnownShipments, amazon_package_refs, decide
from amazon_commerce_sync.store import OrderRow, OrderSync, OutboxRow, OutboxStatus
from amazon_commerce_sync.times import as_utc, parse_time, utcnow

log = logging.getLogger(__name__)

KIND = "shipment_confirmation"

SHIPPED_STATUSES = ("SHIPPED", "PARTIALLY_SHIPPED")
# Orders whose Commerce shipments are confirmed to Amazon (Amazon has the last word on cancelled ones).
READY_SYNC = (OrderSync.IMPORTED, OrderSync.ON_HOLD, OrderSync.CANCELLED)
MIRROR_SYNC = (OrderSync.IMPORTED, OrderSync.ON_HOLD)
VERIFY_DATA = ("FULFILLMENT", "PACKAGES")
MISMATCH_NOT_REFLECTED = "shipment_not_reflected"
MISMATCH_NOT_MIRRORED = "amazon_shipment_not_mirrored"
MISMATCH_OTHER_ORDER = "shipment_on_other_commerce_order"
LEASE_SECONDS = 300
BATCH = 100


def outbox_key(shipment_id: int | str) -> str:
    """The outbox entry of a Commerce shipment's confirmation."""
    return f"shipment:{shipment_id}"


def commerce_cursor(account: AccountSettings) -> str:
    """The cursor over the account's Commerce shipments (``updated_at``)."""
    return f"commerce_shipments:{account.account_id}"


def mirror_cursor(account: AccountSettings) -> str:
    """The cursor over the account's staged orders Amazon shows shipped (the store's ``updated_at``)."""
    return f"amazon_shipments:{account.account_id}"


# -- the run -------------------------------------------------------------------------------------
class ShipmentSync:
    """One account's shipment sync run."""

    def __init__(
        self, ctx: Resources, account: AccountSettings, *, owner: str, now: datetime, mismatch_grace: timedelta
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.account = account
        self.owner = owner
        self.now = now
        self.mismatch_grace = mismatch_grace
        self.summary: collections.Counter[str] = collections.Counter()
        self.notes: list[str] = []

    @property
    def commerce(self):
        return self.ctx.commerce(self.account)

    @property
    def amazon(self):
        return self.ctx.amazon(self.account)

    def note(self, key: str, text: str | None = None, n: int = 1) -> None:
        self.summary[key] += n
        if text and len(self.notes) < 50:
            self.notes.append(text)

    def run(self) -> dict[str, Any]:
        """The four steps (module docstring); returns counts by outcome."""
        self.mirror_amazon_side()
        self.collect_commerce_shipments()
        self.release_waiting()
        self.send_pending()
        self.verify_confirmed()
        # ``waiting``: what is held now (new or from earlier runs), not how often it was looked at.
        self.summary["waiting"] = len(
            self.store.outbox.entries(kind=KIND, statuses=[OutboxStatus.WAITING], account_id=self.account.account_id)
        )
        for text in self.notes:
            log.warning("%s", text)
        result: dict[str, Any] = {
            key: self.summary.get(key, 0) for key in ("confirmed", "rejected", "waiting", "mirrored", "mismatches")
        }
        result.update({k: v for k, v in self.summary.items() if k not in result})
        result["account"] = self.account.account_id
        log.info("%s: shipment sync summary %s", self.account.account_id, {k: v for k, v in result.items() if v})
        return result

    # -- Amazon -> Commerce --------------------------------------------------------------------
    def mirror_amazon_side(self) -> None:
        """Amazon's packages Commerce lacks become Commerce shipments (step 1)."""
        stream = mirror_cursor(self.account)
        cursor = self.store.ops.get_cursor(stream)
        since = cursor - timedelta(minutes=self.account.overlap_minutes) if cursor else datetime(1970, 1, 1, tzinfo=UTC)
        started = utcnow()  # the store's own clock: updated_at is written with it
        retry_from: list[datetime] = []
        after = ""
        while True:
            rows = self.store.orders.shipped_changed_since(
                self.account.account_id, since, statuses=list(MIRROR_SYNC), after_id=after, limit=BATCH
            )
            if not rows:
                break
            after = rows[-1]["amazon_order_id"]
            for row in rows:
                if not self._mirror_order(row):
                    retry_from.append(row["updated_at"])
        self.store.ops.set_cursor(stream, min([started, *retry_from]))

    def _mirror_order(self, row: OrderRow) -> bool:
        """Mirror the order's Amazon shipments that Commerce lacks; False when it must be tried again."""
        order_id = row["amazon_order_id"]
        ours = frozenset(
            str((e["payload"].get("package") or {}).get("packageReferenceId"))
            for e in self.store.outbox.for_order(order_id, KIND)
            if e["payload"].get("package")
        )  # confirmed from Commerce by this sync: Commerce has them
        plan = mirror_plan(self.store, order_id, row["payload"], exclude=ours)
        todo = [*plan.ships, *plan.tracks]
        if not (todo or plan.unpackaged) or row["commerce_order_id"] is None:
            return True
        lease = keys.order_lease(order_id)  # the import's lease: one writer per Commerce order
        if not self.store.ops.acquire_lease(lease, self.owner, LEASE_SECONDS):
            self.note("busy_elsewhere")
            return False
        try:
            created = mirror_amazon_shipments(
                self.commerce,
                self.store,
                order_id,
                plan,
                int(row["commerce_order_id"]),
                self.store.orders.item_ids(order_id),
                order=row["payload"],
            )
            self.note("mirrored", n=created)
            if created:
                self.store.ops.resolve_mismatch(MISMATCH_NOT_MIRRORED, order_id)
                self.store.ops.audit(
                    "amazon_shipments_mirrored",
                    "amazon_order",
                    order_id,
                    {
                        "commerce_order_id": int(row["commerce_order_id"]),
                        "packages": [p.reference for p in todo] + (["unpackaged"] if plan.unpackaged else []),
                    },
                )
            return True
        except FatalError as exc:
            self.store.ops.report_mismatch(
                MISMATCH_NOT_MIRRORED, order_id, f"Commerce refused the shipment of Amazon's package(s): {exc}"
            )
            self.note("mismatches", f"{order_id}: Commerce refused Amazon's shipment: {exc}")
            return True  # a person must look; retried when the order changes again
        except RetriableError as exc:
            self.note("failed", f"{order_id}: mirroring Amazon's shipment failed, retried next run: {exc}")
            return False
        finally:
            self.store.ops.release_lease(lease, self.owner)

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
        amazon_packages: dict[str, str] | None = None
        for entry in entries:
            package = entry["payload"]["package"]
            ref = str(package["packageReferenceId"])
            if entry["status"] == OutboxStatus.SENDING:
                # An earlier attempt's outcome is unknown: look before sending again.
                if amazon_packages is None:
                    amazon_packages = amazon_package_refs(self.amazon.get_order(order_id, included_data=VERIFY_DATA))
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
                    amazon_packages = None  # something may have changed on Amazon's side
                self.note("retry_later", f"{order_id}: shipment {entry['payload']['commerce_shipment_id']}: {exc}")
            else:
                self.store.outbox.transition(
                    entry["id"], OutboxStatus.CONFIRMED, expect=OutboxStatus.SENDING, amazon_message=None
                )
                self._confirmed(order_id, entry, recovered=False)

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


def _by_order(entries: Iterable[OutboxRow]) -> dict[str, list[OutboxRow]]:
    by_order: dict[str, list[OutboxRow]] = collections.defaultdict(list)
    for entry in entries:
        by_order[entry["amazon_order_id"]].append(entry)
    return by_order


def sync_shipments(
    ctx: Resources, account: AccountSettings, *, owner: str, now: datetime, mismatch_grace: timedelta
) -> dict[str, Any]:
    """Run the shipment sync for one account; returns the run summary (counts only)."""
    return ShipmentSync(ctx, account, owner=owner, now=now, mismatch_grace=mismatch_grace).run()
