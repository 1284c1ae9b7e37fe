"""What the state store records of refunds seen coming back from Amazon, shared by the refund sync and the
three-way check (``pipelines.refund_sync``, ``pipelines.refund_reconcile``).

Each of our adjusted items (``MerchantAdjustmentItemID``, ``madj``) recognised in one of Amazon's refund
transactions is the intent-log record ``refund_own:<madj>`` (``commerce_writes.keys.own_refund_item``) with the
transaction's key and the amounts Amazon posted for it; an Amazon refund that could not be mirrored is a FAILED
``refund_event`` write (``refunds.EVENT``) with its lines. No buyer data: ids, item codes and amounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.refunds import EVENT, same_charges
from amazon_commerce_sync.store import StateStore, WriteStatus


def recognise_own(
    store: StateStore,
    order_id: str,
    key: str,
    madjs: Iterable[str],
    posted: Mapping[str, Mapping[str, Decimal]] | None = None,
) -> None:
    """Our adjusted items seen coming back in Amazon's refund ``key`` (never matched to another), with the
    amounts Amazon posted for each (``posted``: madj → components) for the three-way check."""
    for madj in madjs:
        own = keys.own_refund_item(madj, order_id)
        detail: dict[str, Any] = {"event": key}
        if posted and madj in posted:
            detail["posted"] = {k: str(v) for k, v in posted[madj].items()}
        store.writes.record(own.natural_key, own.kind, order_id, None, detail=detail)


def seen_in_amazon_refund(store: StateStore, entry: Mapping[str, Any]) -> str | None:
    """The Amazon refund every item of this adjustment (an outbox entry) was recognised in, if one."""
    events = set()
    for item in entry["payload"].get("items") or []:
        write = store.writes.get(keys.own_refund_item(item["madj"], entry["amazon_order_id"]).natural_key)
        if not write or write["status"] != WriteStatus.DONE:
            return None
        events.add((write.get("detail") or {}).get("event"))
    return next(iter(events)) if len(events) == 1 and None not in events else None


def posted_amounts(store: StateStore, entry: Mapping[str, Any]) -> dict[str, dict[str, Decimal]] | None:
    """What Amazon posted for each item of this adjustment, ``{item code: {component: amount}}``; None until
    every item was seen in a refund transaction with its amounts."""
    out: dict[str, dict[str, Decimal]] = {}
    for item in entry["payload"].get("items") or []:
        write = store.writes.get(keys.own_refund_item(item["madj"], entry["amazon_order_id"]).natural_key)
        posted = ((write or {}).get("detail") or {}).get("posted")
        if not write or write["status"] != WriteStatus.DONE or posted is None:
            return None
        bucket = out.setdefault(item["code"], {})
        for kind, value in posted.items():
            bucket[kind] = bucket.get(kind, Decimal("0")) + Decimal(value)
    return out


def unmirrored_amazon_refund(store: StateStore, entry: Mapping[str, Any]) -> str | None:
    """An Amazon refund on the order that could not be mirrored (Commerce had nothing left to refund: this
    memo had taken it) and whose lines are exactly this adjustment's items: it becomes ours, and leaves the
    quarantine. Returns its key."""
    items = entry["payload"].get("items") or []
    wanted = {i["code"]: {k: Decimal(v) for k, v in i["components"].items() if Decimal(v) != 0} for i in items}
    for write in store.writes.for_order(entry["amazon_order_id"]):
        detail = write.get("detail") or {}
        if write["kind"] != EVENT or write["status"] != WriteStatus.FAILED or detail.get("own"):
            continue
        foreign = detail.get("foreign") or {}
        if set(foreign) != set(wanted) or len(wanted) != len(items):
            continue
        if all(same_charges(foreign[code], charges) for code, charges in wanted.items()):
            key = write["natural_key"]
            madjs = [i["madj"] for i in items]
            recognise_own(store, entry["amazon_order_id"], key, madjs)
            store.writes.complete(key, None, detail={"own": madjs, "foreign": {}})
            store.ops.resolve_quarantine("amazon_refund", key[-64:])
            return key
    return None


def legacy_event(store: StateStore, order_id: str, lines: Iterable[Any]) -> str | None:
    """The refund this transaction is, if it was handled when refunds were read from Finances v0.

    Until the move to Finances 2024-06-19, a refund was recorded under a v0 event key
    (``amzrefund:<order>:<PostedDate>:<digest>``); the first reads of ``listTransactions`` (its overlap) see
    the same refunds again under their transaction key. A v0 record of the order not yet claimed by a
    transaction, whose amounts per component (its foreign lines plus our items it recognised) are the
    transaction's ``lines``' (``refunds.RefundLine``), is that refund. Returns its key.
    """
    want: dict[str, Decimal] = {}
    for line in lines:
        for kind, value in line.charges.items():
            want[kind] = want.get(kind, Decimal("0")) + value
    writes = store.writes.for_order(order_id)
    claimed = {(w.get("detail") or {}).get("legacy") for w in writes if w["kind"] == EVENT}
    ours = {i["madj"]: i for e in store.outbox.for_order(order_id) for i in (e["payload"] or {}).get("items") or []}
    for write in writes:
        key = write["natural_key"]
        legacy = key.count(":") > 2  # a transaction's key is amzrefund:<order>:<id>, a v0 event's has its date too
        if write["kind"] != EVENT or not legacy or key in claimed or write["status"] == WriteStatus.INTENT:
            continue
        detail = write.get("detail") or {}
        got: dict[str, Decimal] = {}
        components = list((detail.get("foreign") or {}).values())
        components += [ours[m]["components"] for m in detail.get("own") or [] if m in ours]
        for comps in components:
            for kind, value in comps.items():
                got[kind] = got.get(kind, Decimal("0")) + Decimal(value)
        if {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}:
            return key
    return None
