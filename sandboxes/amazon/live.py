"""Live mode: every interval (divided by speed) new orders arrive and Amazon-side events
happen to existing ones (payment authorised, buyer cancellation request, Amazon
cancellation, FBA shipment, Amazon-issued refund).  Deterministic from the seed."""

from __future__ import annotations

import asyncio
import logging
import random

from sandboxes.amazon import domain
from sandboxes.amazon.admin import apply_event
from sandboxes.amazon.generator import generate_order
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import now

log = logging.getLogger(__name__)


def live_step(state: SandboxState, rng: random.Random) -> list[str]:
    """One tick; returns a short description of what happened (ids and event types only)."""
    config = state.config
    happened: list[str] = []
    with state.lock:
        for _ in range(config.live_new_orders):
            seller = rng.choice(config.sellers)
            t = now()
            order = generate_order(rng, t, marketplace_ids=seller.marketplace_ids, created_time=t,
                                   status=rng.choice(["PENDING", "PENDING", "UNSHIPPED"]))
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
                event = {"type": "ship"}
            elif status == "UNSHIPPED":
                roll = rng.random()
                if roll < 0.5:
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
