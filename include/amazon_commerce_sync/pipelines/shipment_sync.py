"""Keep shipments in step between Commerce and Amazon after an order was imported, exactly once in effect.

One run, per account, in this order:

1. **Amazon → Commerce** (``mirror_amazon_side``): orders Amazon shows shipped (FBA, or shipped in
   Seller Central) get a Commerce shipment per Amazon package Commerce lacks, with Amazon's tracking
   (``commerce_writes.shipments``, the writes the import makes too). Packages this sync confirmed are
   known by their ``packageReferenceId`` and never mirrored back. A cursor over the state store's
   ``updated_at`` keeps the scan to orders that changed.
2.-4. **Commerce → Amazon** (``shipment_confirm``, whose ``ConfirmSteps`` this run inherits):
   Commerce shipments collected into the outbox, sent with ``confirmShipment`` once each, read back.

Nothing here logs or stores buyer data: payloads hold item ids, quantities, carrier and tracking only.
"""

from __future__ import annotations

import collections
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from amazon_commerce_sync import summaries
from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.shipments import mirror_amazon_shipments, mirror_plan
from amazon_commerce_sync.errors import FatalError, RetriableError
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.shipment_confirm import KIND, ConfirmSteps
from amazon_commerce_sync.store import OrderRow, OrderSync, OutboxStatus
from amazon_commerce_sync.times import utcnow

log = logging.getLogger(__name__)

MIRROR_SYNC = (OrderSync.IMPORTED, OrderSync.ON_HOLD)
MISMATCH_NOT_MIRRORED = "amazon_shipment_not_mirrored"
LEASE_SECONDS = 300
BATCH = 100


def mirror_cursor(account: AccountSettings) -> str:
    """The cursor over the account's staged orders Amazon shows shipped (the store's ``updated_at``)."""
    return f"amazon_shipments:{account.account_id}"


# -- the run -------------------------------------------------------------------------------------
class ShipmentSync(ConfirmSteps):
    """One account's shipment sync run: step 1 here, steps 2-4 from ``ConfirmSteps``."""

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
        log.info("%s: %s", self.account.account_id, summaries.shipment_sentence(result))
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
        ours = set()  # packages this sync confirmed, and Amazon's packages a Commerce shipment already stands for
        for e in self.store.outbox.for_order(order_id, KIND):
            if e["payload"].get("package"):
                ours.add(str(e["payload"]["package"].get("packageReferenceId")))
            ours.update(str(ref) for ref in e["payload"].get("amazon_packages") or [])
        plan = mirror_plan(self.store, order_id, row["payload"], exclude=frozenset(ours))
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


def sync_shipments(
    ctx: Resources, account: AccountSettings, *, owner: str, now: datetime, mismatch_grace: timedelta
) -> dict[str, Any]:
    """Run the shipment sync for one account; returns the run summary (counts only)."""
    return ShipmentSync(ctx, account, owner=owner, now=now, mismatch_grace=mismatch_grace).run()
