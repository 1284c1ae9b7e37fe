"""Benchmark row: a pan-European seller on 9 marketplaces, 0 and 1,000 orders (`make bench`, part of import_orders).

Amazon's searchOrders limit is per seller and operation (0.0056 requests/s, burst 20), not per marketplace.
Each case starts in the steady state of a 5-minute schedule, where earlier runs have spent the burst (20 calls
are made first), so every call waits for the bucket: a run's least possible time is calls ÷ rate. Two clients:
this integration (one window for all 9 marketplaces of the EU region) and the one-call-per-marketplace
extraction of earlier releases (each marketplace its own listing, same hook and staging). Wall time, calls
(counted by the sandbox), the rate-limit minimum, their ratio, and what one run costs at Amazon's real rate.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime, timedelta

#: Pan-European FBA's marketplaces and the UK: 9 marketplaces of Amazon's EU region.
PAN_EU = [
    "A1PA6795UKMFR9",  # DE
    "A13V1IB3VIYZZH",  # FR
    "APJ6JRA9NG5V4",  # IT
    "A1RKKUPIHCS9HS",  # ES
    "A1805IZSGTT6HS",  # NL
    "A2NODRKZP88ZB9",  # SE
    "A1C3SOZRARQ6R3",  # PL
    "AMEN7PMS3EDWL",  # BE
    "A1F83G8C2ARO7P",  # UK
]
ORDER_COUNTS = (0, 1000)
CLIENTS = ("one window per region", "one call per marketplace (before)")


def _drain(hook, burst: int) -> None:
    """Spend the burst as earlier runs of the schedule would have (empty windows: one call each)."""
    end = datetime.now(UTC) - timedelta(minutes=5)
    for _ in range(burst):
        list(
            hook.search_orders(
                marketplace_ids=PAN_EU[:1], last_updated_after=end - timedelta(minutes=1), last_updated_before=end
            )
        )


def _per_marketplace(ctx, account, now: datetime) -> dict:
    """The earlier releases' extraction: one listing per marketplace (same hook, same staging)."""
    from amazon_commerce_sync.pipelines.order_extract import AMAZON_PUBLICATION_DELAY, INCLUDED_DATA, _stage_page

    hook = ctx.amazon(account)
    summary = {"pages": 0, "fetched": 0, "new": 0, "changed": 0}
    for marketplace in account.marketplace_ids:
        for page in hook.search_orders(
            marketplace_ids=[marketplace],
            last_updated_after=account.import_orders_after,
            last_updated_before=now - AMAZON_PUBLICATION_DELAY,
            included_data=INCLUDED_DATA,
            max_results_per_page=account.page_size,
        ):
            _stage_page(ctx, account, page.orders, summary)
    return summary


def bench_pan_eu(sandboxes, context, speed: float, rate: float, burst: int) -> list[dict]:
    """One row per (orders, client); ``sandboxes``/``context`` are import_orders' helpers."""
    from amazon_commerce_sync.pipelines.order_extract import extract_orders

    rows = []
    for count in ORDER_COUNTS:
        for client in CLIENTS:
            with sandboxes(speed, 0, marketplaces=PAN_EU) as boxes, tempfile.TemporaryDirectory() as tmp:
                if count:
                    boxes.load_orders(count, seed=404, marketplace_ids=PAN_EU)
                os.environ.update(boxes.connections(rate_scale=speed, region="EU"))
                ctx = context(f"sqlite:///{tmp}/state.db", marketplaces=PAN_EU)
                account = ctx.settings.accounts[0]
                _drain(ctx.amazon(account), burst)
                before = boxes.amazon_stats().get("searchOrders", {})
                started = time.monotonic()
                if client == CLIENTS[0]:
                    summary = extract_orders(ctx, account, now=datetime.now(UTC))
                else:
                    summary = _per_marketplace(ctx, account, datetime.now(UTC))
                wall = time.monotonic() - started
                after = boxes.amazon_stats().get("searchOrders", {})
                ctx.store.engine.dispose()
            calls = after.get("requests", 0) - before.get("requests", 0)
            minimum = calls / (rate * speed)
            rows.append(
                {
                    "marketplaces": len(PAN_EU),
                    "orders": count,
                    "client": client,
                    "fetched": summary["fetched"],
                    "search_calls": calls,
                    "wall_s": round(wall, 2),
                    "min_s": round(minimum, 2),
                    "ratio": round(wall / minimum, 3) if minimum else None,
                    "http_429": after.get("throttled", 0) - before.get("throttled", 0),
                    "amazon_run_min": round(calls / rate / 60, 1),
                }
            )
    return rows


def report_pan_eu(rows: list[dict], speed: float) -> list[str]:
    """The report's section for the pan-EU rows (Markdown lines)."""
    return [
        "## Extraction of a pan-European seller (9 marketplaces, burst already spent)",
        "",
        f"Amazon rate limits × {speed:g}. Minimum = searchOrders calls ÷ Amazon's rate (the burst spent by earlier "
        "runs); one run at Amazon's real rate = calls × 179 s.",
        "",
        "| client | orders | searchOrders calls | wall s | minimum s (rate limit) | ratio | 429s "
        "| one run at Amazon's rate (min) |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {r['client']} | {r['orders']} | {r['search_calls']} | {r['wall_s']} | {r['min_s']} | {r['ratio']} "
            f"| {r['http_429']} | {r['amazon_run_min']} |"
            for r in rows
        ],
        "",
        "A run's cost depends on the orders (one call per 100), not on the marketplaces. Amazon refills 1.68 calls "
        "per 5 minutes: a 5-minute schedule keeps up while its runs average at most that.",
        "",
    ]
