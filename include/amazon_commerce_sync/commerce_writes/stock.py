"""Stock moves on an MSI source, exactly once: a merchant-fulfilled order takes its quantities, a
cancellation puts them back.

Magento's ``POST /V1/inventory/source-items`` sets *absolute* quantities, so a move cannot be looked
up by a natural key: its effect is judged against a **plan** recorded with the intent before the
write (per SKU, the quantity ``before`` and ``after``). Looking (``write_once``'s ``look``) reads the
current quantities: every SKU at ``after`` means the move took effect. Otherwise each SKU not at its
``after`` gets the move's delta applied to what is there now (someone may have sold meanwhile); a
SKU found at neither ``before`` nor ``after`` is audited as ``stock_uncertain``.

The import moves the stock of a whole page in one read and one write (``PageStockOut``): each
order's ``stock_out:<id>`` intent records its lines, one ``stock_batch:<uuid>`` intent records the
page's plan and each order's intent then names the batch; a run that finds such an order unfinished
finishes the batch (the same look-and-apply) and marks its orders done.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypedDict

from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.protocol import Done, WriteResult, write_once
from amazon_commerce_sync.store import StateStore, WriteRow, WriteStatus

Lines = Mapping[str, int]  # Commerce SKU -> quantity


class Step(TypedDict):
    """One SKU of a plan: quantities as exact decimal strings."""

    before: str
    after: str


Plan = dict[str, Step]

# Read-modify-write of absolute quantities: one move at a time per process (re-entrant: a page's stock write
# holds it from its read to its write, around ``move_once``).
_MOVE_LOCK = threading.RLock()


def sum_lines(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """``[(sku, qty), ...]`` added up per SKU."""
    needed: dict[str, int] = collections.Counter()
    for sku, qty in lines:
        needed[sku] += qty
    return dict(needed)


def plan_move(current: Mapping[str, Decimal], deltas: Mapping[str, int]) -> Plan:
    """The plan of moving each SKU by its signed delta from its current quantity."""
    return {sku: {"before": str(current[sku]), "after": str(current[sku] + delta)} for sku, delta in deltas.items()}


class StockMoves:
    """Stock moves of one account on its MSI source (``source_code``)."""

    def __init__(self, commerce, store: StateStore, source_code: str) -> None:
        self.commerce = commerce
        self.store = store
        self.source_code = source_code

    # -- Magento -------------------------------------------------------------------------------
    def quantities(self, skus: Iterable[str]) -> dict[str, Decimal]:
        """The source's quantity of each SKU (0 when it has no source item); one ``GET`` per 100 SKUs."""
        skus = sorted(set(skus))
        items = self.commerce.get_source_items(skus)
        out = {}
        for sku in skus:
            entry = next((s for s in items.get(sku, []) if s.get("source_code") == self.source_code), None)
            out[sku] = Decimal(str(entry.get("quantity", 0))) if entry else Decimal(0)
        return out

    def write_quantities(self, quantities: Mapping[str, Decimal]) -> None:
        """Set absolute quantities (``POST /V1/inventory/source-items``; out of stock at 0)."""
        self.commerce.save_source_items(
            [
                {"sku": sku, "source_code": self.source_code, "quantity": qty, "status": 1 if qty > 0 else 0}
                for sku, qty in sorted(quantities.items())
            ]
        )

    # -- one move, once ------------------------------------------------------------------------
    def move_once(
        self,
        key: keys.WriteKey,
        deltas: Lines,
        *,
        current: Mapping[str, Decimal] | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Move each SKU by its signed delta, once (the protocol in the module docstring).

        A plan already recorded under ``key`` (an earlier attempt's, or the caller's) is the one applied;
        otherwise the plan is made from the quantities now. ``current``: quantities the caller has just
        read (the first look uses them instead of reading). ``detail`` is recorded with the plan.
        """
        given = [dict(current)] if current is not None else []
        plan: Plan = {}
        recorded: dict[str, Any] = dict(detail or {})
        seen: dict[str, Decimal] = {}

        def finished() -> dict[str, Any]:
            return {**recorded, "plan": plan}

        def look(earlier: WriteRow | None) -> Done | None:
            earlier_detail = (earlier or {}).get("detail") or {}
            if earlier_detail.get("plan"):
                recorded.update(earlier_detail)
                plan.clear()
                plan.update(earlier_detail["plan"])
            seen.clear()
            seen.update(given.pop() if given else self.quantities(plan or deltas))
            if not plan:  # the first attempt: plan from what is there now
                plan.update(plan_move(seen, deltas))
                return None
            return Done(None, detail=finished()) if all(_applied(s, seen[sku]) for sku, s in plan.items()) else None

        def send() -> Done:
            targets = {}
            for sku, step in plan.items():
                if _applied(step, seen[sku]):
                    continue  # applied by an earlier attempt
                before, after = Decimal(step["before"]), Decimal(step["after"])
                if seen[sku] != before:
                    # Someone else moved it too: our delta goes onto what is there (never twice: we saw
                    # neither our before nor our after), and a person can check it.
                    self.store.ops.audit(
                        "stock_uncertain", "sku", sku, {"write": key.natural_key, "found": str(seen[sku])}
                    )
                targets[sku] = seen[sku] + (after - before)
            if targets:
                self.write_quantities(targets)
            return Done(None, detail=finished())

        with _MOVE_LOCK:
            return write_once(self.store.writes, key, send=send, look=look, look_first=True, detail=finished)

    def put_back(self, amazon_order_id: str) -> None:
        """Put back, once, what the order's ``stock_out`` took (nothing if it took nothing)."""
        taken = self.store.writes.get(keys.stock_out(amazon_order_id).natural_key)
        if not taken or taken["status"] != WriteStatus.DONE:
            return
        lines = {sku: int(qty) for sku, qty in ((taken["detail"] or {}).get("lines") or {}).items()}
        if lines:
            self.move_once(keys.stock_in(amazon_order_id), lines)


def _applied(step: Step, quantity: Decimal) -> bool:
    before, after = Decimal(step["before"]), Decimal(step["after"])
    return quantity == after and after != before


class PageStockOut:
    """The stock taken by the merchant-fulfilled orders of one import page: one read and one write."""

    def __init__(self, store: StateStore, moves: Callable[[], StockMoves]) -> None:
        """``moves()`` gives the calling thread's ``StockMoves`` (hooks are not shared between threads)."""
        self.store = store
        self.moves = moves
        self._queue: list[tuple[str, dict[str, int]]] = []
        self._lock = threading.Lock()

    def add(self, amazon_order_id: str, lines: Iterable[tuple[str, int]]) -> None:
        """Record the order's stock move (intent with its lines) and queue it for the page's write.

        An order whose move an earlier run put into a batch gets that batch finished instead.
        """
        batch = self.queue(amazon_order_id, lines)
        if batch:
            self.finish_batch(batch)

    def queue(self, amazon_order_id: str, lines: Iterable[tuple[str, int]]) -> str | None:
        """``add`` without sending anything, so that it can run inside a store ``unit``: an order whose move an
        earlier run put into a batch is not queued, and that batch's natural key is returned for the caller to
        ``finish_batch`` (outside the unit); None otherwise.
        """
        key = keys.stock_out(amazon_order_id)
        write = self.store.writes.get(key.natural_key)
        if write and write["status"] == WriteStatus.DONE:
            return None
        batch = ((write or {}).get("detail") or {}).get("batch")
        if batch:
            return batch
        needed = sum_lines(lines)
        self.store.writes.record_intent(key.natural_key, key.kind, amazon_order_id, {"lines": needed})
        with self._lock:
            self._queue.append((amazon_order_id, needed))
        return None

    def flush(self) -> None:
        """Move the stock of every queued order: one read and one write of source items in all."""
        with self._lock:
            queue, self._queue = self._queue, []
        # Only moves whose intent is recorded (the store unit that queued one may have been rolled back after) and
        # in no batch yet.
        queue = [(order_id, lines) for order_id, lines in queue if self._unbatched(order_id)]
        if not queue:
            return
        totals: dict[str, int] = collections.Counter()
        for _, lines in queue:
            totals.update(lines)
        moves = self.moves()
        orders = [order_id for order_id, _ in queue]
        batch = keys.stock_batch()
        with _MOVE_LOCK:  # no other move between this read and the write
            current = moves.quantities(totals)
            plan = plan_move(current, {sku: -qty for sku, qty in totals.items()})
            # The batch's plan and each order naming it, in one transaction: a run that dies before leaves orders
            # that are queued again (no batch named), never an order naming a batch that was not recorded.
            with self.store.unit():
                self.store.writes.record_intent(batch.natural_key, batch.kind, None, {"plan": plan, "orders": orders})
                for order_id, lines in queue:
                    self.store.writes.amend_intent(
                        keys.stock_out(order_id).natural_key, {"lines": lines, "batch": batch.natural_key}
                    )
            moves.move_once(batch, {}, current=current)
        self._complete(batch.natural_key)

    def _unbatched(self, amazon_order_id: str) -> bool:
        write = self.store.writes.get(keys.stock_out(amazon_order_id).natural_key)
        return write is not None and write["status"] == WriteStatus.INTENT and not (write["detail"] or {}).get("batch")

    def finish_batch(self, batch: str) -> None:
        """Finish a batch an earlier run began: apply what is not applied yet, then mark its orders done."""
        intent = self.store.writes.get(batch)
        if intent is None:
            return
        if intent["status"] != WriteStatus.DONE:
            self.moves().move_once(keys.WriteKey(batch, "stock_batch", None), {})
        self._complete(batch)

    def _complete(self, batch: str) -> None:
        with self.store.unit():  # every order of the batch marked done in one transaction
            detail = (self.store.writes.get(batch) or {}).get("detail") or {}
            for order_id in detail.get("orders", []):
                key = keys.stock_out(order_id).natural_key
                lines = ((self.store.writes.get(key) or {}).get("detail") or {}).get("lines", {})
                self.store.writes.complete(key, None, detail={"lines": lines, "batch": batch})
