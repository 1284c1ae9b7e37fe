"""Live mode: every interval (divided by speed) new orders arrive and Amazon-side events
happen to existing ones (payment authorised, buyer cancellation request, Amazon
cancellation, FBA shipment, a shipment the seller confirms in Seller Central, Amazon-issued
refund).  New orders and shipments take the shapes of ``config.realism`` (default: what Amazon
sends, ``shapes.REALISTIC``): FBA shipments without package data, Seller Central shipments with
or without it, replacements of earlier orders, ...  Deterministic from the seed."""

from __future__ import annotations

import asyncio
import logging
import random

from sandboxes.amazon import domain
from sandboxes.amazon.admin import apply_event
from sandboxes.amazon.generator import generate_order
from sandboxes.amazon.shapes import Realism
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import now

log = logging.getLogger(__name__)


def live_step(state: SandboxState, rng: random.Random) -> list[str]:
    """One tick; returns a short description of what happened (ids and event types only)."""
    config = state.config
    realism = Realism.resolve(config.realism)
    happened: list[str] = []
    with state.lock:
        for _ in range(config.live_new_orders):
            seller = rng.choice(config.sellers)
            t = now()
            earlier = sorted(oid for oid, r in state.orders.items() if r["sellerId"] == seller.seller_id)
            order = generate_order(
                rng,
                t,
                marketplace_ids=seller.marketplace_ids,
                created_time=t,
                status=rng.choice(["PENDING", "PENDING", "UNSHIPPED"]),
                realism=realism,
                earlier_ids=earlier[-50:],
            )
            if order["orderId"] in state.orders:
                continue
            order["lastUpdatedTime"] = order["createdTime"]
            state.put_order(seller.seller_id, order)
            happened.append(f"new {order['orderId']}")
        records = sorted(state.orders.values(), key=lambda r: r["order"]["orderId"])
        for _ in range(config.live_events):
            if not records:
                break
            record = rng.choice(records)
            order = record["order"]
            status = domain.status_of(order)
            by = order["fulfillment"].get("fulfilledBy")
            if status in domain.PENDING_STATUSES:
                event = {"type": "authorize_payment"}
                if rng.random() < 0.15:
                    event = {"type": "cancel", "by": "AMAZON", "reason": "RiskAssessmentInformationNotValid"}
            elif status == "UNSHIPPED" and by == "AMAZON":
                event = {"type": "ship", "packageData": rng.random() < realism.fba_packages}
            elif status == "UNSHIPPED":
                roll = rng.random()
                if roll < realism.live_seller_central:  # the seller confirms it in Seller Central
                    event = {"type": "ship", "packageData": rng.random() >= realism.seller_central_no_package}
                elif roll < 0.5:
                    event = {"type": "request_cancellation", "reason": "BuyerCanceled"}
                elif roll < 0.6:
                    event = {"type": "cancel", "by": "AMAZON", "reason": "GeneralAdjustment"}
                else:
                    continue
            elif status in ("SHIPPED", "PARTIALLY_SHIPPED") and rng.random() < 0.3:
                event = {"type": "refund"}
            else:
                continue
            try:
                apply_event(state, record, event)
                happened.append(f"{event['type']} {order['orderId']}")
            except domain.RuleError as exc:
                log.debug("live event skipped: %s", exc.message)
        if happened:
            state.save()
    return happened


async def run_live(state: SandboxState) -> None:
    rng = random.Random(state.config.seed + 1)
    while True:
        await asyncio.sleep(state.config.live_interval_seconds / state.config.speed)
        try:
            happened = live_step(state, rng)
            log.info("live tick: %s changes", len(happened))
        except Exception:
            log.exception("live tick failed")
