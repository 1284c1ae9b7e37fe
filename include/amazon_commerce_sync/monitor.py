"""The monitor (DAG ``sales_channel_monitor``): alerts on the integration's health even when no task failed.

When the import lags (the run's time minus the extraction cursor, per account and Amazon region) more than
``alert_import_lag_minutes`` after the import has had that long to run (see ``watched_since``), and when orders wait
for a product or stay quarantined longer than ``alert_stuck_hours``. A firing alert is repeated at most every
``alert_repeat_minutes`` (each sending is audited as ``alert_sent``); the monitor is quiet otherwise. Alerts go
through ``alerts.send_alert`` (the configured notifier).

Ship-by deadlines: an unshipped merchant-fulfilled order within ``alert_ship_by_hours`` of Amazon's ship-by date
(``fulfillment.shipByWindow.latestDateTime``; Amazon counts a later confirmation as a late shipment) and not shipped
in Commerce is alerted on ONCE per order (``amazon_orders.ship_by_alerted_at``, set after delivery), one alert per
account listing the orders (ids and deadlines only, no buyer data); see ``store.ship_by``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from amazon_commerce_sync.alerts import ALERT_SENT, MAX_LISTED, Alert, safe_text, send_alert
from amazon_commerce_sync.marketplaces import by_region
from amazon_commerce_sync.settings import SettingsError

log = logging.getLogger(__name__)


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


IMPORT_AWAITED = "import_awaited"  # audit action: the monitor began watching an account/region's import
WATCHING = "monitor:watching:"  # + alert key: cursor, when the monitor began watching it (run time)
CHECKED = "monitor:checked:"  # + alert key: cursor, the monitor's last lag check of it (run time)


def watch_gap(threshold: timedelta) -> timedelta:
    """A pause of the monitor longer than this means the deployment was down (or is new): twice the lag
    threshold, at least 2 h, so that a monitor scheduled less often than the threshold is no pause."""
    return 2 * max(threshold, timedelta(hours=1))


def watched_since(store, key: str, region: str, now: datetime, threshold: timedelta) -> datetime:
    """Since when the import of ``key`` (``import_lag:<account>:<region>``) has had time to run, as of ``now``.

    That is when the monitor began watching it: its first check of the account/region (new account, new
    deployment), or its first check after a pause longer than ``watch_gap`` (the deployment was stopped, as
    ``make run`` is between sessions, and the import had no chance to catch up yet). Both instants are run
    times kept as cursors (``monitor:watching:<key>``, ``monitor:checked:<key>``; they never go back, so a
    rerun of an earlier run changes nothing); each start is audited as ``import_awaited``.
    """
    watching = store.ops.get_cursor(WATCHING + key)
    checked = store.ops.get_cursor(CHECKED + key)
    if watching is None or checked is None or now - checked > watch_gap(threshold):
        store.ops.set_cursor(WATCHING + key, now)
        store.ops.audit(IMPORT_AWAITED, "import", key, {"region": region, "since": now.isoformat()})
        watching = max(watching or now, now)
    store.ops.set_cursor(CHECKED + key, now)
    return watching


def check_import_lag(store, accounts: Iterable, now: datetime) -> list[Alert]:
    """One alert per (account, Amazon region) whose extraction cursor (``orders:<account>:<region>``, one
    window for all its marketplaces there; before its first run, the oldest per-marketplace cursor of earlier
    releases) is older than the threshold, once the import has had the threshold's time to run since the
    monitor began watching (``watched_since``: no alert before the first import of a new account or a
    restarted deployment could run). Invalid marketplaces: no lag alert (the extract task fails)."""
    alerts = []
    for account in accounts:
        if not account.import_enabled:
            continue
        threshold = timedelta(minutes=account.alert_import_lag_minutes)
        try:
            regions = by_region(account.marketplace_ids)
        except SettingsError:
            continue
        for region, ids in regions.items():
            cursor = store.ops.get_cursor(account.orders_cursor(region))
            if cursor is None:
                legacy = [store.ops.get_cursor(account.marketplace_cursor(m)) for m in ids]
                cursor = min((c for c in legacy if c is not None), default=None)
            where = f"{account.account_id} / {region} ({', '.join(ids)})"
            key = f"import_lag:{account.account_id}:{region}"
            action = (
                "Check the latest amazon_order_import runs (failing? paused? not scheduled?), run "
                "sales_channel_healthcheck to test the Amazon connection and look for QuotaExceeded (429) in "
                "the extract task's log. Once the import runs again it catches up from its cursor by itself."
            )
            since = watched_since(store, key, region, now, threshold)
            if now - since <= threshold:
                continue  # the import has not had its time to run yet
            if cursor is None:  # never imported
                alerts.append(
                    Alert(
                        kind="import_lag",
                        key=key,
                        account_id=account.account_id,
                        subject=f"no Amazon order import has completed for region {region}",
                        what=f"there is no extraction cursor for {where}: no order of these marketplaces "
                        f"has reached Commerce since {since:%Y-%m-%d %H:%M} UTC (when the monitor began "
                        "watching them).",
                        action=action,
                    )
                )
                continue
            lag = now - cursor
            if lag > threshold:
                alerts.append(
                    Alert(
                        kind="import_lag",
                        key=key,
                        account_id=account.account_id,
                        subject=f"Amazon order import is {_age(lag)} behind for region {region}",
                        what=f"the last extracted window of {where} ends at "
                        f"{cursor.isoformat(timespec='seconds')} ({_age(lag)} ago; the threshold is "
                        f"{account.alert_import_lag_minutes} min): Amazon orders placed or changed since then "
                        "have not reached Commerce.",
                        action=action,
                    )
                )
    return alerts


def _listing(rows: list[dict[str, Any]], now: datetime) -> str:
    shown = [
        f"{r['amazon_order_id']} ({_age(now - r['since'])}: {safe_text(r['reason'] or 'no reason recorded', 120)})"
        for r in rows[:MAX_LISTED]
    ]
    more = f"; and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
    return "; ".join(shown) + more


STUCK = {
    "orders_waiting": (
        "waiting for a product",
        "they cannot be created in Commerce because a product is missing, disabled or out of stock",
        "Create or enable the products in Commerce, add stock, or map the Amazon seller SKUs to Commerce SKUs "
        "with the account's sku_map setting; waiting orders are retried on every import run.",
    ),
    "orders_quarantined": (
        "quarantined",
        "they could not be imported as they are and need a person",
        "Read each reason, fix the data or the settings, then re-drive the orders: trigger amazon_order_import "
        'with redrive_quarantined set to their ids (or ["all"]).',
    ),
}


def check_stuck_orders(store, accounts: Iterable, now: datetime) -> list[Alert]:
    """One alert per account and kind for orders waiting for a product or quarantined too long."""
    from amazon_commerce_sync.store import OrderSync

    accounts = list(accounts)
    hours = {a.account_id: a.alert_stuck_hours for a in accounts}
    shortest = min(hours.values(), default=24)
    cutoff = now - timedelta(hours=shortest)
    found = {
        "orders_waiting": store.orders.stuck_since(OrderSync.WAITING_PRODUCT, cutoff),
        "orders_quarantined": store.ops.quarantined_orders_since(cutoff),
    }
    alerts = []
    for kind, rows in found.items():
        by_account: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            account_id = row["account_id"] or "unknown account"
            if now - row["since"] > timedelta(hours=hours.get(account_id, shortest)):
                by_account.setdefault(account_id, []).append(row)
        state, why, action = STUCK[kind]
        for account_id, stuck in sorted(by_account.items()):
            limit = hours.get(account_id, shortest)
            alerts.append(
                Alert(
                    kind=kind,
                    key=f"{kind}:{account_id}",
                    account_id=account_id,
                    subject=f"{len(stuck)} Amazon order(s) {state} for more than {limit} h",
                    what=f"{why}: {_listing(stuck, now)}.",
                    action=action,
                )
            )
    return alerts


SHIP_BY_ACTION = (
    "Ship these orders in Commerce (a shipment with its tracking number) before their ship-by time: the shipment "
    "sync confirms them to Amazon. Amazon counts an order confirmed after its ship-by date as a late shipment "
    "against the account's performance. An order on hold for the buyer's cancellation request is decided first: "
    "Cancel or Keep in its amazon_buyer_cancel_decision run. This alert is sent once per order."
)


def check_ship_by(store, accounts: Iterable, now: datetime) -> list[tuple[Alert, list[str]]]:
    """One alert per account listing its orders at risk of missing their ship-by deadline (within the account's
    ``alert_ship_by_hours``, or past it) not alerted on yet, soonest first, with the order ids it covers."""
    accounts = [a for a in accounts if a.import_enabled]
    hours = {a.account_id: a.alert_ship_by_hours for a in accounts}
    if not hours:
        return []
    rows = store.ship_by.at_risk(now + timedelta(hours=max(hours.values())), not_alerted=True)
    by_account: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        limit = hours.get(row["account_id"])
        if limit is not None and row["ship_by"] <= now + timedelta(hours=limit):
            by_account.setdefault(row["account_id"], []).append(row)
    out = []
    for account_id, due in sorted(by_account.items()):
        shown = []
        for r in due[:MAX_LISTED]:
            left = r["ship_by"] - now
            when = f"{_age(left)} left" if left > timedelta(0) else f"{_age(-left)} late"
            held = (
                "; on hold: the buyer asked to cancel" if r.get("sync_status") == "on_hold" else ""
            )  # OrderSync.ON_HOLD
            shown.append(f"{r['amazon_order_id']} (ship by {r['ship_by']:%Y-%m-%d %H:%M} UTC, {when}{held})")
        more = f"; and {len(due) - MAX_LISTED} more (see the Sales Channel page)" if len(due) > MAX_LISTED else ""
        alert = Alert(
            kind="ship_by",
            key=f"ship_by:{account_id}",
            account_id=account_id,
            subject=f"{len(due)} merchant-fulfilled order(s) due to ship within {hours[account_id]} h",
            what=f"these orders are unshipped in Commerce and near or past Amazon's ship-by date: {'; '.join(shown)}"
            f"{more}.",
            action=SHIP_BY_ACTION,
        )
        out.append((alert, [r["amazon_order_id"] for r in due]))
    return out


def run_monitor(
    store, accounts: Iterable, *, now: datetime, deliver: Callable[[Alert], None] | None = None
) -> dict[str, Any]:
    """Check every condition, send what fires (at most once per ``alert_repeat_minutes``); returns keys."""
    accounts = list(accounts)
    deliver = deliver or send_alert
    repeat = {a.account_id: timedelta(minutes=a.alert_repeat_minutes) for a in accounts}
    default_repeat = min(repeat.values(), default=timedelta(hours=1))
    summary: dict[str, Any] = {"firing": [], "sent": [], "repeat_suppressed": []}
    for alert in check_import_lag(store, accounts, now) + check_stuck_orders(store, accounts, now):
        summary["firing"].append(alert.key)
        every = repeat.get(alert.account_id, default_repeat)
        last = store.ops.last_audit_at(ALERT_SENT, alert.key) if every else None
        if last is not None and now - last < every:
            summary["repeat_suppressed"].append(alert.key)
            continue
        deliver(alert)
        store.ops.audit(ALERT_SENT, "alert", alert.key, {"kind": alert.kind, "account_id": alert.account_id})
        summary["sent"].append(alert.key)
    # Once per order, not repeated: delivered first, then remembered (a failed delivery is tried on the next run).
    for alert, order_ids in check_ship_by(store, accounts, now):
        summary["firing"].append(alert.key)
        deliver(alert)
        store.ship_by.mark_alerted(order_ids, now)
        store.ops.audit(
            ALERT_SENT, "alert", alert.key, {"kind": alert.kind, "account_id": alert.account_id, "orders": order_ids}
        )
        summary["sent"].append(alert.key)
    if not summary["firing"]:
        log.info("all quiet: no import lag, no order waiting or quarantined too long, no ship-by deadline near")
    return summary
