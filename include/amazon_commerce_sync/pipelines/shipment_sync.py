"""Keep shipments in step between Commerce and Amazon after an order was imported, exactly once in effect.

One run, per account, in this order:

1. **Amazon → Commerce** (``mirror_amazon_side``): staged orders that Amazon shows shipped
   (FBA, or shipped by the merchant in Seller Central) get a Commerce shipment per Amazon
   package that Commerce does not have yet, with Amazon's tracking. Packages that this sync
   itself confirmed are recognised by their ``packageReferenceId`` and never mirrored back.
   Each package is an intent-log write ``ship:<amazon order id>:<package ref>`` (shared with
   the import, ``order_import.mirror_amazon_shipments``). A persisted cursor over the state
   store's ``updated_at`` keeps the scan to orders that changed.
2. **Commerce → Amazon, collect** (``collect_commerce_shipments``): a persisted cursor (with
   overlap) over Commerce shipments; each shipment of a merchant-fulfilled Amazon order becomes
   one outbox entry keyed ``shipment:<Commerce shipment id>`` holding the ``confirmShipment``
   package: the shipment's items mapped to Amazon order items, its tracking number and the
   carrier mapped through ``carrier_map``. Shipments of non-Amazon orders are ignored; those
   the sync or the import created from Amazon's packages are skipped; those of orders not
   imported yet (waiting, quarantined) are held (``waiting``) and looked at again every run.
3. **Send** (``send_pending``): ``pending → sending`` (compare-and-set, attempt counted) before
   ``confirmShipment``; 204 → ``confirmed``; 4xx → ``rejected`` with Amazon's message; 429
   (never processed) → ``pending``; 5xx or a lost answer → stays ``sending`` (outcome
   unknown). Before an entry in ``sending`` is sent again, the order is read from Amazon:
   if a package with its ``packageReferenceId`` exists the confirmation landed and is not
   sent twice.
4. **Verify** (``verify_confirmed``): the order is read back; ``PARTIALLY_SHIPPED`` /
   ``SHIPPED`` → ``accepted`` (noted on the entry and in the audit log). An order still
   unshipped ``mismatch_grace`` after its confirmation is reported as a mismatch
   (``shipment_not_reflected``), resolved by itself once Amazon shows it shipped.

Outbox statuses of kind ``shipment_confirmation``: waiting, pending, sending, confirmed,
accepted, rejected, skipped. Nothing here logs or stores buyer data: payloads hold item ids,
quantities, carrier and tracking number only.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from amazon_commerce_sync import transform
from amazon_commerce_sync.errors import AuthenticationError, FatalError, IntegrationError, RetriableError
from amazon_commerce_sync.hooks.commerce import Filter
from amazon_commerce_sync.pipelines.context import Context
from amazon_commerce_sync.pipelines.order_import import mirror_amazon_shipments
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import OrderSync, OutboxStatus, WriteStatus

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
    return f"shipment:{shipment_id}"


def commerce_cursor(account: AccountSettings) -> str:
    return f"commerce_shipments:{account.account_id}"


def mirror_cursor(account: AccountSettings) -> str:
    return f"amazon_shipments:{account.account_id}"


# -- pure parts ----------------------------------------------------------------------------------
class Hold(Exception):
    """The shipment cannot be confirmed yet; looked at again on every run."""


class Refuse(Exception):
    """The shipment can never be confirmed as it is; recorded as rejected with this reason."""


def parse_commerce_time(value: Any) -> datetime:
    """Magento's ``Y-m-d H:i:s`` (UTC) or ISO 8601, as an aware UTC datetime."""
    text = str(value).strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def amazon_carrier(track: Mapping[str, Any], carrier_map: Mapping[str, str]) -> tuple[str, str | None]:
    """Amazon ``(carrierCode, carrierName)`` for a Commerce track.

    The Commerce carrier code is looked up first, then the title (both lower-case). An
    unknown carrier goes as ``"Other"`` with its title (or code) as ``carrierName``.
    """
    code = str(track.get("carrier_code") or "").strip()
    title = str(track.get("title") or "").strip()
    for key in (code.lower(), title.lower()):
        if key and key != "custom" and key in carrier_map:
            return carrier_map[key], None
    return "Other", (title or code or "Other")[:100]


def _qty(value: Any) -> int:
    try:
        qty = Decimal(str(value or 0))
    except InvalidOperation:
        raise Refuse(f"quantity {value!r} is not a number") from None
    if qty != qty.to_integral_value():
        raise Refuse(f"quantity {qty} is not a whole number")
    return int(qty)


def package_detail(
    shipment: Mapping[str, Any], amazon_items: Mapping[int, str], carrier_map: Mapping[str, str]
) -> dict[str, Any]:
    """The ``confirmShipment`` ``packageDetail`` for one Commerce shipment.

    :param amazon_items: Commerce order item id -> Amazon orderItemId of the order.
    :raises Hold: no tracking number yet (Commerce lets one be added later).
    :raises Refuse: an item that is not an Amazon order item, or nothing to confirm.
    """
    tracks = [t for t in shipment.get("tracks") or [] if str(t.get("track_number") or "").strip()]
    if not tracks:
        raise Hold("the Commerce shipment has no tracking number yet (Amazon requires one)")
    quantities: dict[str, int] = collections.Counter()
    for item in shipment.get("items") or []:
        qty = _qty(item.get("qty"))
        if qty <= 0:
            continue
        commerce_item = int(item.get("order_item_id") or 0)
        amazon_item = amazon_items.get(commerce_item)
        if amazon_item is None:
            raise Refuse(f"Commerce order item {commerce_item} ({item.get('sku')}) is not an item of the Amazon order")
        quantities[amazon_item] += qty
    if not quantities:
        raise Refuse("the Commerce shipment ships no quantity")
    track = tracks[0]
    carrier_code, carrier_name = amazon_carrier(track, carrier_map)
    detail: dict[str, Any] = {
        "packageReferenceId": str(int(shipment["entity_id"])),
        "carrierCode": carrier_code,
        "trackingNumber": str(track["track_number"]).strip(),
        "shipDate": parse_commerce_time(shipment.get("created_at")).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "orderItems": [{"orderItemId": item_id, "quantity": qty} for item_id, qty in sorted(quantities.items())],
    }
    if carrier_name:
        detail["carrierName"] = carrier_name
    return detail


def amazon_package_refs(order: Mapping[str, Any]) -> dict[str, str]:
    """``{packageReferenceId: trackingNumber}`` of the packages on an Amazon order."""
    return {
        str(p.get("packageReferenceId")): str(p.get("trackingNumber") or "")
        for p in order.get("packages") or []
        if (p.get("packageStatus") or {}).get("status") != "CANCELLED"
    }


# -- the run -------------------------------------------------------------------------------------
@dataclasses.dataclass
class Decision:
    status: str  # pending, waiting, rejected, skip (no entry), ignore (no entry)
    reason: str | None = None
    payload: dict[str, Any] | None = None
    amazon_order_id: str | None = None


class ShipmentSync:
    """One account's shipment sync run."""

    def __init__(
        self, ctx: Context, account: AccountSettings, *, owner: str, now: datetime, mismatch_grace: timedelta
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
        stream = mirror_cursor(self.account)
        cursor = self.store.ops.get_cursor(stream)
        since = cursor - timedelta(minutes=self.account.overlap_minutes) if cursor else datetime(1970, 1, 1, tzinfo=UTC)
        started = datetime.now(UTC)  # the store's own clock: updated_at is written with it
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

    def _mirror_order(self, row: Mapping[str, Any]) -> bool:
        """Mirror the order's Amazon packages that Commerce lacks; False when it must be tried again."""
        order_id = row["amazon_order_id"]
        ours = {
            str((e["payload"].get("package") or {}).get("packageReferenceId"))
            for e in self.store.outbox.for_order(order_id, KIND)
            if e["payload"].get("package")
        }
        todo = []
        for package in transform.amazon_packages(row["payload"]):
            if package.reference in ours:
                continue  # confirmed from Commerce by this sync: Commerce has it
            done = self.store.writes.get(f"ship:{order_id}:{package.reference}")
            if not (done and done["status"] == WriteStatus.DONE):
                todo.append(package)
        if not todo or row["commerce_order_id"] is None:
            return True
        lease = f"order:{order_id}"  # the import's lease: one writer per Commerce order
        if not self.store.ops.acquire_lease(lease, self.owner, LEASE_SECONDS):
            self.note("busy_elsewhere")
            return False
        try:
            item_ids = {
                i["amazon_order_item_id"]: i["commerce_order_item_id"]
                for i in self.store.orders.items(order_id)
                if i["commerce_order_item_id"] is not None
            }
            created = mirror_amazon_shipments(
                self.commerce, self.store, order_id, todo, int(row["commerce_order_id"]), item_ids
            )
            self.note("mirrored", n=created)
            if created:
                self.store.ops.resolve_mismatch(MISMATCH_NOT_MIRRORED, order_id)
                self.store.ops.audit(
                    "amazon_shipments_mirrored", "amazon_order", order_id,
                    {"commerce_order_id": int(row["commerce_order_id"]), "packages": [p.reference for p in todo]},
                )  # fmt: skip
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
                seen = parse_commerce_time(shipment.get("updated_at"))
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

    def _orders_for(self, shipments: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, Any] | None]:
        """Commerce order id -> the account's staged Amazon order (None: not an Amazon order of this account)."""
        ids = {int(s["order_id"]) for s in shipments if s.get("order_id") is not None}
        found: dict[int, dict[str, Any] | None] = dict(self.store.orders.by_commerce_ids(self.account.account_id, ids))
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
                decision = Decision("waiting", f"unexpected {type(exc).__name__}; looked at again next run")
                log.exception("shipment %s: unexpected %s", shipment_id, type(exc).__name__)
            if decision.status in ("ignore", "skip"):
                self.note(decision.reason or decision.status)
                continue
            payload = decision.payload or {
                "commerce_shipment_id": shipment_id,
                "commerce_order_id": int(shipment.get("order_id") or 0),
            }
            added = self.store.outbox.add(
                key, KIND, self.account.account_id, decision.amazon_order_id or "", payload,
                decision.status, decision.reason,
            )  # fmt: skip
            if added:
                self._count_decision(decision, shipment_id)

    def _count_decision(self, decision: Decision, shipment_id: int) -> None:
        if decision.status == OutboxStatus.WAITING:
            self.note("held", f"shipment {shipment_id} ({decision.amazon_order_id}) held: {decision.reason}")
        elif decision.status == OutboxStatus.REJECTED:
            self.note("rejected", f"shipment {shipment_id} ({decision.amazon_order_id}) not sent: {decision.reason}")
            self.store.ops.audit(
                "shipment_confirmation_rejected", "amazon_order", decision.amazon_order_id or "",
                {"commerce_shipment_id": shipment_id, "reason": decision.reason},
            )  # fmt: skip
        else:
            self.note("queued")

    def decide(self, shipment: Mapping[str, Any], row: Mapping[str, Any] | None) -> Decision:
        """What to do with one Commerce shipment of (maybe) an Amazon order."""
        if row is None:
            return Decision("ignore", "ignored_not_amazon")
        order_id = row["amazon_order_id"]
        shipment_id = int(shipment["entity_id"])
        if row["sync_status"] not in READY_SYNC or row["commerce_order_id"] is None:
            reason = f"the Amazon order is not imported yet ({row['sync_status']})"
            return Decision(OutboxStatus.WAITING, reason, None, order_id)
        if int(row["commerce_order_id"]) != int(shipment.get("order_id") or 0):
            detail = (
                f"Commerce shipment {shipment_id} is on Commerce order {shipment.get('order_id')}, "
                f"not on the order imported for this Amazon order ({row['commerce_order_id']})"
            )
            self.store.ops.report_mismatch(MISMATCH_OTHER_ORDER, order_id, detail)
            self.note("mismatches", f"{order_id}: {detail}")
            return Decision("ignore", "ignored_other_commerce_order")
        mirrored = [
            w for w in self.store.writes.for_order(order_id) if w["natural_key"].startswith(f"ship:{order_id}:")
        ]
        if any(w["commerce_entity_id"] == str(shipment_id) for w in mirrored):
            return Decision("skip", "from_amazon")  # the import or this sync made it from Amazon's package
        ours = {
            str((e["payload"].get("package") or {}).get("packageReferenceId"))
            for e in self.store.outbox.for_order(order_id, KIND)
        }
        amazon_tracking = {
            p.tracking_number
            for p in transform.amazon_packages(row["payload"])
            if p.reference not in ours and p.tracking_number
        }
        tracking = {str(t.get("track_number") or "").strip() for t in shipment.get("tracks") or []}
        if tracking & amazon_tracking:
            return Decision("skip", "from_amazon")  # carries the tracking of a package Amazon already has
        if any(w["status"] == WriteStatus.INTENT for w in mirrored):
            return Decision(
                OutboxStatus.WAITING, "an Amazon-side shipment of this order is being copied to Commerce", None,
                order_id,
            )
        if row["fulfilled_by"] == "AMAZON":
            return Decision("skip", "skipped_amazon_fulfilled")  # Amazon ships FBA orders; nothing to confirm
        amazon_items = {
            int(i["commerce_order_item_id"]): i["amazon_order_item_id"]
            for i in self.store.orders.items(order_id)
            if i["commerce_order_item_id"] is not None
        }
        try:
            package = package_detail(shipment, amazon_items, self.account.carrier_map)
        except Hold as exc:
            return Decision(OutboxStatus.WAITING, str(exc), None, order_id)
        except Refuse as exc:
            return Decision(OutboxStatus.REJECTED, f"not sent to Amazon: {exc}", None, order_id)
        payload = {
            "commerce_shipment_id": shipment_id,
            "commerce_order_id": int(shipment["order_id"]),
            "marketplace_id": row["marketplace_id"],
            "package": package,
        }
        return Decision(OutboxStatus.PENDING, None, payload, order_id)

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
                        entry["id"], OutboxStatus.SKIPPED, amazon_message="the Commerce shipment no longer exists",
                        expect=[OutboxStatus.WAITING],
                    )  # fmt: skip
                    continue
                decision = self.decide(shipment, orders.get(int(shipment.get("order_id") or 0)))
                if decision.status == OutboxStatus.WAITING:
                    self.store.outbox.transition(
                        entry["id"], OutboxStatus.WAITING, amazon_message=decision.reason, expect=[OutboxStatus.WAITING]
                    )
                elif decision.status in ("ignore", "skip"):
                    self.store.outbox.transition(
                        entry["id"], OutboxStatus.SKIPPED, amazon_message=f"not confirmed: {decision.reason}",
                        expect=[OutboxStatus.WAITING],
                    )  # fmt: skip
                    self.note(decision.reason or "skipped")
                elif self.store.outbox.transition(
                    entry["id"], decision.status, payload=decision.payload or entry["payload"],
                    amazon_message=decision.reason, expect=[OutboxStatus.WAITING],
                ):  # fmt: skip
                    self._count_decision(decision, int(shipment["entity_id"]))
                    self.note("released")

    # -- Commerce -> Amazon: send --------------------------------------------------------------
    def send_pending(self) -> None:
        entries = self.store.outbox.entries(
            kind=KIND, statuses=[OutboxStatus.PENDING, OutboxStatus.SENDING], account_id=self.account.account_id
        )
        by_order: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for entry in entries:
            by_order[entry["amazon_order_id"]].append(entry)
        for order_id, order_entries in by_order.items():
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

    def _send_order(self, order_id: str, entries: Iterable[dict[str, Any]]) -> None:
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
                            entry["id"], OutboxStatus.CONFIRMED,
                            amazon_message="found on Amazon after an unanswered attempt",
                            expect=[OutboxStatus.SENDING],
                        )  # fmt: skip
                        self._confirmed(order_id, entry, recovered=True)
                    else:
                        self._rejected(
                            order_id, entry,
                            f"Amazon already has a different package with packageReferenceId {ref} on this order",
                        )  # fmt: skip
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
                        entry["id"], OutboxStatus.PENDING, amazon_message=f"will retry: {exc}",
                        expect=[OutboxStatus.SENDING],
                    )
                else:
                    self.store.outbox.transition(
                        entry["id"], OutboxStatus.SENDING,
                        amazon_message=f"outcome unknown, checked before a retry: {exc}",
                        expect=[OutboxStatus.SENDING],
                    )  # fmt: skip
                    amazon_packages = None  # something may have changed on Amazon's side
                self.note("retry_later", f"{order_id}: shipment {entry['payload']['commerce_shipment_id']}: {exc}")
            else:
                self.store.outbox.transition(
                    entry["id"], OutboxStatus.CONFIRMED, expect=OutboxStatus.SENDING, amazon_message=None
                )
                self._confirmed(order_id, entry, recovered=False)

    def _confirmed(self, order_id: str, entry: Mapping[str, Any], *, recovered: bool) -> None:
        self.note("confirmed")
        if recovered:
            self.note("recovered_after_lost_answer")
        package = entry["payload"]["package"]
        self.store.ops.audit(
            "shipment_confirmed", "amazon_order", order_id,
            {"commerce_shipment_id": entry["payload"]["commerce_shipment_id"],
             "package_reference_id": package["packageReferenceId"], "carrier_code": package["carrierCode"],
             "items": len(package["orderItems"]), "recovered": recovered},
        )  # fmt: skip

    def _rejected(self, order_id: str, entry: Mapping[str, Any], message: str) -> None:
        self.store.outbox.transition(
            entry["id"], OutboxStatus.REJECTED, expect=OutboxStatus.SENDING, amazon_message=message[:2000]
        )
        self.note(
            "rejected", f"{order_id}: Amazon rejected shipment {entry['payload']['commerce_shipment_id']}: {message}"
        )
        self.store.ops.audit(
            "shipment_confirmation_rejected", "amazon_order", order_id,
            {"commerce_shipment_id": entry["payload"]["commerce_shipment_id"], "reason": message[:500]},
        )  # fmt: skip

    # -- verify ---------------------------------------------------------------------------------
    def verify_confirmed(self) -> None:
        entries = self.store.outbox.entries(
            kind=KIND, statuses=[OutboxStatus.CONFIRMED], account_id=self.account.account_id
        )
        by_order: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for entry in entries:
            by_order[entry["amazon_order_id"]].append(entry)
        for order_id, order_entries in by_order.items():
            try:
                order = self.amazon.get_order(order_id, included_data=VERIFY_DATA)
            except IntegrationError as exc:
                self.note("verify_later", f"{order_id}: cannot read the order back from Amazon yet: {exc}")
                continue
            status = transform.fulfillment_status(order)
            if status in SHIPPED_STATUSES:
                for entry in order_entries:
                    self.store.outbox.transition(
                        entry["id"], OutboxStatus.ACCEPTED, amazon_message=f"verified: Amazon shows the order {status}",
                        expect=[OutboxStatus.CONFIRMED],
                    )  # fmt: skip
                self.store.ops.resolve_mismatch(MISMATCH_NOT_REFLECTED, order_id)
                self.store.ops.audit("shipment_verified", "amazon_order", order_id, {"amazon_status": status})
                self.note("verified", n=len(order_entries))
                continue
            oldest = min(_aware(e["updated_at"]) for e in order_entries)
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


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def sync_shipments(
    ctx: Context, account: AccountSettings, *, owner: str, now: datetime, mismatch_grace: timedelta
) -> dict[str, Any]:
    """Run the shipment sync for one account; returns the run summary (counts only)."""
    return ShipmentSync(ctx, account, owner=owner, now=now, mismatch_grace=mismatch_grace).run()
