"""Stock moves a run recorded but did not finish: taken up at the start of the next load.

An order's ``stock_out:<id>`` intent is recorded with its create's outcome, and its page's one source-items write
(``PageStockOut.flush``) comes after every order of the page has been written and marked imported. A worker
killed in between (up to two pages of orders with the pipelined loader) leaves imported orders that no run takes
up again, their moves INTENT: some in no batch yet, some in a batch that was or was not written to Commerce
(``POST /V1/inventory/source-items`` sets absolute quantities, so whether it landed is judged against the batch's
recorded plan: ``commerce_writes.stock``). ``finish_unwritten`` finishes them, each exactly once, under the orders'
leases: a move of an order a live worker holds is that worker's to write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.stock import PageStockOut, StockMoves
from amazon_commerce_sync.errors import IntegrationError
from amazon_commerce_sync.store import StateStore, WriteRow

log = logging.getLogger(__name__)


def finish_unwritten(
    store: StateStore, moves: Callable[[], StockMoves], account_id: str, owner: str, lease_seconds: float
) -> int:
    """Finish every ``stock_out`` move of the account's orders still INTENT whose order lease ``owner`` can take.

    A move in a batch gets the batch finished (``PageStockOut.finish_batch``: the plan's SKUs not at their
    ``after`` get the move applied, then every order of the batch is marked done), only when every order of the
    batch is leased here; the moves in no batch are written together, in one new batch (``PageStockOut.flush``).
    A move whose batch Commerce refused (a 4xx: ``write_once`` forgot the batch, nothing was written) goes into the
    new batch. The leases taken are given back at the end. A Commerce error (``IntegrationError``) is logged, not
    raised: the load goes on and the moves stay INTENT for the next run.

    :param moves: the calling thread's ``StockMoves`` on the account's MSI source.
    :param owner: the run's lease owner (``resources.owner_id``); an order leased by another owner is left to it
        (a live worker writes its own page's moves; a killed worker's leases expire after their ``lease_seconds``).
    :returns: the number of orders whose move was taken up.
    """
    intents = {
        keys.order_lease(row["amazon_order_id"]): row
        for row in store.writes.intents_of_account("stock_out", account_id)
    }
    if not intents:
        return 0
    leased = store.ops.acquire_leases(list(intents), owner, lease_seconds)
    try:
        taken = _finish(store, PageStockOut(store, moves), [intents[lease] for lease in sorted(leased)], leased)
    except IntegrationError as exc:  # Commerce down or refusing: the moves stay owed, the load goes on
        log.warning("%s: stock moves left by a run that died not finished yet (%s)", account_id, exc)
        return 0
    finally:
        store.ops.release_leases(leased, owner)
    if taken:
        log.info("%s: stock moves of %d imported orders finished after a run that died", account_id, taken)
    return taken


def _finish(store: StateStore, page: PageStockOut, intents: list[WriteRow], leased: set[str]) -> int:
    taken = 0
    batches: set[str] = set()
    for row in intents:
        order_id, lines = row["amazon_order_id"], ((row["detail"] or {}).get("lines") or {})
        units = [(sku, int(qty)) for sku, qty in lines.items()]
        batch = page.queue(order_id, units)
        if batch and store.writes.get(batch) is None:
            # Its batch was refused (a 4xx: forgotten, nothing written): the move goes into a new one.
            store.writes.amend_intent(keys.stock_out(order_id).natural_key, {"lines": lines})
            batch = page.queue(order_id, units)
        if batch:
            batches.add(batch)
        else:
            taken += 1
    for batch in sorted(batches):
        orders = ((store.writes.get(batch) or {}).get("detail") or {}).get("orders", [])
        if all(keys.order_lease(order_id) in leased for order_id in orders):
            page.finish_batch(batch)
            taken += len(orders)
    page.flush()
    return taken
