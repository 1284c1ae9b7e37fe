"""Personal-data retention: erase buyer data from the state store 30 days (a setting) after delivery.

Amazon's Data Protection Policy allows keeping buyer personal data for no longer than 30 days
after the order is delivered. Buyer names, emails, companies and addresses (phone included, it is
part of the address) live only in the ``order_pii`` table; this module erases them there.

**The retention clock** (``amazon_orders.delivered_at``) is set once per order, from the staged
order (Orders API 2026-01-01 carries no delivery timestamp), by the first rule that applies:

1. *Delivered*: the order is SHIPPED and every package that is not CANCELLED has
   ``packageStatus.status`` DELIVERED: the order's ``lastUpdatedTime`` (Amazon updates the order
   when the carrier reports the delivery; it is the first moment the delivery is known).
2. *Shipped, delivery not reported* (Amazon-fulfilled orders carry no packages; carriers do not
   always report): the promised delivery, the end of ``fulfillment.deliverByWindow``, but never
   before the last package's ``shipTime``; without a window the last package's ``shipTime``;
   without either, the order's ``lastUpdatedTime``.
3. *Cancelled*: nothing will be delivered: the cancellation (``lastUpdatedTime``).

Open orders (pending, unshipped, partially shipped) have no clock and keep their data. A clock
that would lie in the future (the promised delivery has not come yet) is left unset and tried
again on the next run. Once set, the clock never moves, so later updates (a refund) do not
postpone the erasure.

**Erasure** NULLs the personal columns (the ciphertext, not only a key reference: on SQLite the freed bytes are
zeroed and the write-ahead log checkpointed and truncated after the run's erasures) and sets ``erased_at``; the
row stays as a tombstone so that a re-staged order (a backfill) never stores the data again. PostgreSQL keeps
dead row versions (ciphertext) until autovacuum reclaims them. Each erasure is recorded in the audit trail
(``pii_erased``) with the order id, the clock and the rule, never the erased values. Reruns find nothing left to
erase: the task is idempotent.

**The Commerce order** keeps its own copy of the name and addresses. With the account setting
``anonymise_commerce_orders`` (off by default: the order is the merchant's business record, and
erasing it there is the merchant's decision) the same run also overwrites, on every due order,
the billing and shipping addresses through ``PUT /V1/orders/{parent_id}`` (Magento's order
address repository): names, street, phone, company, e-mail, fax and VAT id become placeholders;
city, region, postcode and country stay for tax and accounting. Done orders are recorded as the
write ``anonymise:<amazon order id>`` (and in the audit trail), so reruns skip them; a failure
leaves the order for the next run and fails the task after all others were processed. The
order header's ``customer_email`` and ``customer_firstname``/``lastname`` are not writable
through Magento's REST API: use Commerce's own data-erasure tools for those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from amazon_commerce_sync.commerce_writes import keys, orders
from amazon_commerce_sync.errors import IntegrationError
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import PII_FIELDS, StateStore
from amazon_commerce_sync.times import parse_time

log = logging.getLogger(__name__)

BATCH = 500
CLOCK_STATUSES = ("SHIPPED", "CANCELLED")


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        return None


def delivery_time(
    payload: Mapping[str, Any], amazon_status: str, amazon_updated_at: datetime
) -> tuple[datetime | None, str]:
    """When an order's retention clock starts, and by which rule (see the module docstring)."""
    if amazon_status == "CANCELLED":
        return amazon_updated_at, "cancelled"
    if amazon_status != "SHIPPED":
        return None, "open"
    packages = [
        p
        for p in payload.get("packages") or []
        if ((p.get("packageStatus") or {}).get("status") or "").upper() != "CANCELLED"
    ]
    statuses = {((p.get("packageStatus") or {}).get("status") or "").upper() for p in packages}
    if packages and statuses == {"DELIVERED"}:
        return amazon_updated_at, "delivered"
    ship_times = [t for t in (_time(p.get("shipTime")) for p in packages) if t is not None]
    last_shipped = max(ship_times) if ship_times else None
    window = ((payload.get("fulfillment") or {}).get("deliverByWindow") or {}).get("latestDateTime")
    promised = _time(window)
    if promised is not None:
        return (max(promised, last_shipped) if last_shipped else promised), "promised_delivery"
    if last_shipped is not None:
        return last_shipped, "last_ship_time"
    return amazon_updated_at, "last_update"


def start_clocks(ctx: Resources, *, now: datetime, account_ids: set[str] | None = None) -> dict[str, int]:
    """Set ``delivered_at`` on shipped and cancelled orders that have none yet; returns counts by rule."""
    counts: dict[str, int] = {}
    for rows in batches(lambda after: ctx.store.retention.without_clock(CLOCK_STATUSES, after_id=after, limit=BATCH)):
        for row in rows:
            if account_ids is not None and row["account_id"] not in account_ids:
                continue
            when, rule = delivery_time(row["payload"] or {}, row["amazon_status"], row["amazon_updated_at"])
            if when is None or when > now:
                counts["not_yet"] = counts.get("not_yet", 0) + 1
                continue
            if ctx.store.retention.start_clock(row["amazon_order_id"], when):
                counts[rule] = counts.get(rule, 0) + 1
    return counts


def batches(fetch: Callable[[str], list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """Keyset pages of orders: ``fetch(after_id)`` until it returns none."""
    after = ""
    while rows := fetch(after):
        after = rows[-1]["amazon_order_id"]
        yield rows


def erase_account(ctx: Resources, account: AccountSettings, *, now: datetime, dry_run: bool, run_id: str) -> dict:
    """Erase the personal data of the account's orders delivered more than ``pii_retention_days`` ago."""
    cutoff = now - timedelta(days=account.pii_retention_days)
    summary = {"account": account.account_id, "retention_days": account.pii_retention_days, "due": 0, "erased": 0}
    for due in batches(
        lambda after: ctx.store.retention.due_for_erasure(account.account_id, cutoff, after_id=after, limit=BATCH)
    ):
        summary["due"] += len(due)
        if dry_run:
            continue
        for row in due:
            detail = {
                "delivered_at": row["delivered_at"].isoformat(),
                "retention_days": account.pii_retention_days,
                "fields": list(PII_FIELDS),
                "run_id": run_id,
            }
            if ctx.store.retention.erase(row["amazon_order_id"], detail):
                summary["erased"] += 1
    log.info(
        "%s: %d order(s) delivered before %s due for erasure, %d erased%s",
        account.account_id,
        summary["due"],
        cutoff.isoformat(),
        summary["erased"],
        " (dry run)" if dry_run else "",
    )
    return summary


def anonymise_account(ctx: Resources, account: AccountSettings, *, now: datetime, dry_run: bool, run_id: str) -> dict:
    """Anonymise the addresses of the Commerce orders of the account's orders past the retention window."""
    summary = {"due": 0, "anonymised": 0, "gone": 0, "failed": 0}
    if not account.anonymise_commerce_orders:
        return summary
    cutoff = now - timedelta(days=account.pii_retention_days)
    hook = ctx.commerce(account)

    def due_orders(after: str):
        return ctx.store.retention.commerce_orders_to_anonymise(
            account.account_id, cutoff, key_prefix=keys.ANONYMISE_PREFIX, after_id=after, limit=BATCH
        )

    for due in batches(due_orders):
        summary["due"] += len(due)
        for row in [] if dry_run else due:
            oid, commerce_id = row["amazon_order_id"], int(row["commerce_order_id"])
            try:
                result = orders.anonymise(hook, ctx.store, oid, commerce_id, run_id=run_id)
            except IntegrationError as exc:
                summary["failed"] += 1
                log.warning(
                    "%s: Commerce order %s (Amazon order %s) not anonymised yet: %s",
                    account.account_id,
                    commerce_id,
                    oid,
                    type(exc).__name__,
                )
                continue
            if result.detail.get("outcome") == "order_gone":
                summary["gone"] += 1
                continue
            detail = {"commerce_order_id": commerce_id, "addresses": result.detail.get("addresses"), "run_id": run_id}
            ctx.store.ops.audit("commerce_order_anonymised", "amazon_order", oid, detail)
            summary["anonymised"] += 1
    log.info(
        "%s: %d Commerce order(s) due for anonymisation, %d anonymised, %d gone, %d failed%s",
        account.account_id,
        summary["due"],
        summary["anonymised"],
        summary["gone"],
        summary["failed"],
        " (dry run)" if dry_run else "",
    )
    return summary


def run_retention(
    ctx: Resources, accounts: list[AccountSettings], *, now: datetime, dry_run: bool, run_id: str
) -> dict[str, Any]:
    """Start the retention clocks, then erase what is due, per account; returns counts only (key rotation is a
    task of its own: ``rotate_keys``)."""
    clocks = start_clocks(ctx, now=now, account_ids={a.account_id for a in accounts})
    log.info("retention clocks started: %s", clocks)
    results = [erase_account(ctx, a, now=now, dry_run=dry_run, run_id=run_id) for a in accounts]
    if any(r["erased"] for r in results) and not ctx.store.retention.purge_erased():
        log.warning("the SQLite state store's write-ahead log was busy: erased values leave it on the next run")
    commerce = {a.account_id: anonymise_account(ctx, a, now=now, dry_run=dry_run, run_id=run_id) for a in accounts}
    return {
        "dry_run": dry_run,
        "clocks_started": clocks,
        "accounts": results,
        "erased": sum(r["erased"] for r in results),
        "due": sum(r["due"] for r in results),
        "commerce_anonymised": sum(r["anonymised"] for r in commerce.values()),
        "commerce_failed": sum(r["failed"] for r in commerce.values()),
    }


def rotate_keys(store: StateStore, *, now: datetime, dry_run: bool = False) -> dict[str, Any]:
    """Key rotation: re-encrypt with the newest key, ``BATCH`` orders per transaction, the buyer data still in
    clear (stored before encryption), without key id (before key ids) or under an older key (``store.pii_crypto``).

    Needs no settings (the keys and the state store are the deployment's), so invalid settings do not stop it.
    Resumable: every batch commits, and a rerun (or the next day's run) picks up what is left; a kill loses at
    most the open batch. Records the newest key's id in ``pii_keys`` (the healthcheck's key age). Returns counts
    only: ``reencrypted`` orders, ``remaining`` orders not on the newest key afterwards, ``values`` by key id
    (plus ``legacy`` and ``clear``), ``key_id`` the newest key's id. Raises ``PiiKeyError`` when no key is
    configured or a value's key is missing.
    """
    from amazon_commerce_sync.store import pii_crypto

    kid = pii_crypto.cipher().current_key_id
    store.retention.note_key(kid, now)
    reencrypted, after = 0, ""
    while not dry_run:
        changed, last = store.retention.reencrypt_batch(after_id=after, limit=BATCH)
        if last is None:
            break
        reencrypted, after = reencrypted + changed, last
        log.info("key rotation: %d order(s) re-encrypted so far (up to order %s)", reencrypted, last)
    if not dry_run and not store.retention.purge_erased():  # also what an earlier, busy run left
        log.warning("the SQLite state store's write-ahead log was busy: replaced values leave it on the next run")
    usage = store.retention.key_usage(kid)
    old = {k: n for k, n in usage["values"].items() if k != kid}
    log.info(
        "buyer data key rotation%s: %d order(s) re-encrypted with key %s; %d order(s) remain on an older key or in "
        "clear (values by key: %s)",
        " (dry run)" if dry_run else "",
        reencrypted,
        kid,
        usage["stale_rows"],
        old or "none",
    )
    return {
        "dry_run": dry_run,
        "key_id": kid,
        "reencrypted": reencrypted,
        "remaining": usage["stale_rows"],
        "values": usage["values"],
    }
