"""The shared order operations on a Commerce order, each exactly once through ``write_once``.

Create (and find or create its customer), invoice, hold, unhold, comment, cancel (with unhold and, for an
invoiced order, a full offline refund) and anonymise the addresses. The import, the cancellation DAG
and the retention call these; ``shipments`` (ship), ``refunds`` (refund) and ``stock`` (stock moves)
are the others.

Each function takes the Commerce hook of the calling thread (hooks hold a ``requests`` session,
which is not shared between threads) and the state store; Magento's REST routes are named on each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.protocol import Done, Source, WriteResult, write_once
from amazon_commerce_sync.currency import order_rate, to_base
from amazon_commerce_sync.errors import FatalError, IntegrationError, NotFoundError
from amazon_commerce_sync.store import StateStore

# Magento order states (sales_order.state), as Magento\Sales\Model\Order::STATE_* spells them.
STATE_HOLDED = "holded"
STATE_CANCELED = "canceled"
STATE_CLOSED = "closed"


def _amount(value: Any) -> Decimal:
    return Decimal(str(value or 0))


# -- create ------------------------------------------------------------------------------------------
def create_order(
    commerce,
    store: StateStore,
    amazon_order_id: str,
    entity: Mapping[str, Any],
    found_on_page: Sequence[Mapping[str, Any]],
    *,
    then: Callable[[WriteResult[dict[str, Any]]], None] | None = None,
) -> WriteResult[dict[str, Any]]:
    """The Commerce order of an Amazon order, created once (``POST /V1/orders``); ``value`` is the order.
    ``then``: bookkeeping committed with the outcome (``write_once``).

    The natural key is the Amazon order id in ``ext_order_id``. ``found_on_page`` is what the page's
    batched look-up (``find_orders_by_ext_order_ids``) found for it; after an earlier attempt or a lost
    answer the order is looked up again. ``ext_order_id`` is not unique in Commerce: when several orders
    carry it, the oldest is adopted and a ``duplicate_commerce_orders`` mismatch is reported.
    """

    def adopt(found: Sequence[Mapping[str, Any]]) -> Done[dict[str, Any]] | None:
        if not found:
            return None
        ordered = sorted(found, key=lambda o: int(o["entity_id"]))
        if len(ordered) > 1:
            store.ops.report_mismatch(
                "duplicate_commerce_orders",
                amazon_order_id,
                f"{len(ordered)} Commerce orders carry this Amazon order id: "
                + ", ".join(str(o["entity_id"]) for o in ordered),
            )
        return Done(ordered[0]["entity_id"], dict(ordered[0]), {"adopted": True})

    def look(earlier) -> Done[dict[str, Any]] | None:
        if earlier is None:
            return adopt(found_on_page)
        return adopt(commerce.find_orders_by_ext_order_ids([amazon_order_id]).get(amazon_order_id, []))

    def send() -> Done[dict[str, Any]]:
        created = commerce.create_order(dict(entity))
        return Done(created["entity_id"], created)

    return write_once(
        store.writes, keys.create_order(amazon_order_id), send=send, look=look, look_first=True, then=then
    )


# -- customer --------------------------------------------------------------------------------------
def customer(
    commerce, email: str, firstname: str, lastname: str, *, store_id: int, address: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Commerce customer with this e-mail, created when there is none (``POST /V1/customers``), with
    ``address`` (a customer address, ``addresses.customer_address``) as its default addresses when given.

    Not an intent-log write: Magento keeps a customer's e-mail unique per website, so a second create
    is refused, and after any failure the look-up by e-mail is the truth (a natural key made of an
    e-mail would put personal data into the log).

    :raises IntegrationError: the customer could not be created and does not exist.
    """
    found = commerce.find_customer_by_email(email)
    if found:
        return found
    try:
        new = {"email": email, "firstname": firstname, "lastname": lastname, "store_id": store_id}
        if address is not None:
            new["addresses"] = [dict(address)]
        return commerce.create_customer(new)
    except IntegrationError:
        # created meanwhile (or the answer was lost): the look-up is the truth
        found = commerce.find_customer_by_email(email)
        if found:
            return found
        raise


# -- invoice -----------------------------------------------------------------------------------------
def invoiced_in_full(order: Mapping[str, Any]) -> bool:
    """Magento's ``total_invoiced`` has reached the ``grand_total``."""
    return order.get("total_invoiced") is not None and _amount(order["total_invoiced"]) >= _amount(
        order.get("grand_total")
    )


def invoice(
    commerce,
    store: StateStore,
    amazon_order_id: str,
    commerce_id: int,
    *,
    fresh: bool,
    then: Callable[[WriteResult], None] | None = None,
) -> WriteResult:
    """Invoice the whole order once, without capture (``POST /V1/order/{id}/invoice``; offline payment).

    ``fresh``: the order was created by this very call chain, so it cannot have an invoice yet and
    is not read first. Otherwise an order Commerce shows invoiced in full is adopted. ``then``: bookkeeping
    committed with the outcome (``write_once``).
    """

    def look(earlier) -> Done | None:
        order = commerce.get_order(commerce_id)
        return Done(None, detail={"adopted": True}) if invoiced_in_full(order) else None

    def send() -> Done:
        return Done(commerce.invoice_order(commerce_id, capture=False))

    key = keys.invoice(amazon_order_id)
    return write_once(store.writes, key, send=send, look=look, look_first=not fresh, then=then)


# -- hold and comment --------------------------------------------------------------------------------
def hold(commerce, store: StateStore, amazon_order_id: str, commerce_id: int) -> WriteResult:
    """Put the order on hold once (``POST /V1/orders/{id}/hold``); an order already on hold counts."""

    def look(earlier) -> Done | None:
        return Done(commerce_id) if commerce.get_order(commerce_id).get("state") == STATE_HOLDED else None

    def send() -> Done:
        commerce.hold_order(commerce_id)
        return Done(commerce_id)

    return write_once(store.writes, keys.hold(amazon_order_id), send=send, look=look, look_first=True)


def unhold(commerce, store: StateStore, amazon_order_id: str, commerce_id: int) -> WriteResult:
    """Release the order's hold once (``POST /V1/orders/{id}/unhold``); an order no longer on hold counts.

    Magento releases only a ``holded`` order (``Order::canUnhold``); the hook reads the state when it refuses.
    """

    def look(earlier) -> Done | None:
        return Done(commerce_id) if commerce.get_order(commerce_id).get("state") != STATE_HOLDED else None

    def send() -> Done:
        commerce.unhold_order(commerce_id)
        return Done(commerce_id)

    return write_once(store.writes, keys.unhold(amazon_order_id), send=send, look=look, look_first=True)


def comment(commerce, store: StateStore, key: keys.WriteKey, commerce_id: int, text: str) -> WriteResult:
    """Add an order comment once (``POST /V1/orders/{id}/comments``).

    The comment's text is its own look-up key (``GET /V1/orders/{id}/comments``), so it must be
    deterministic; comments are read only after an earlier attempt or a lost answer.
    """

    def look(earlier) -> Done | None:
        texts = (c.get("comment") for c in commerce.get_order_comments(commerce_id))
        return Done(commerce_id) if text in texts else None

    def send() -> Done:
        commerce.add_order_comment(commerce_id, text)
        return Done(commerce_id)

    return write_once(store.writes, key, send=send, look=look)


# -- cancel ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Cancellation:
    """What ``cancel_in_commerce`` did: ``action`` as written in the order comment."""

    action: str  # canceled | refunded offline in full | already canceled | already closed
    creditmemo_id: int | None = None


def _full_refund(order: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Decimal]:
    """Every invoiced, not yet refunded quantity of the order, and its invoiced shipping not yet refunded in the
    store's BASE currency (``base_shipping_invoiced - base_shipping_refunded``): Magento reads the credit memo's
    ``shipping_amount`` as a base amount (``CreditmemoFactory::initData``), see ``currency.creditmemo_arguments``.
    """
    items = [
        {"order_item_id": int(i["item_id"]), "qty": _amount(i.get("qty_invoiced")) - _amount(i.get("qty_refunded"))}
        for i in order.get("items") or []
    ]
    if order.get("base_shipping_invoiced") is not None:
        shipping = _amount(order.get("base_shipping_invoiced")) - _amount(order.get("base_shipping_refunded"))
    else:  # a Commerce answer without base amounts: the order-currency amount converted
        left = _amount(order.get("shipping_invoiced")) - _amount(order.get("shipping_refunded"))
        shipping = to_base(left, order_rate(order))
    return [i for i in items if i["qty"] > 0], shipping


def cancel(commerce, store: StateStore, amazon_order_id: str, commerce_id: int) -> WriteResult:
    """Cancel the Commerce order once, or refund it offline in full when it was invoiced.

    An order on hold is released first (``/unhold``). Not invoiced: ``POST /V1/orders/{id}/cancel``
    (Magento answers ``false`` when it cannot: then the state is read). Invoiced: ``POST
    /V1/order/{id}/refund`` of every invoiced quantity and the shipping (in the base currency), without
    returning stock (stock is put back by ``stock.put_back``). An order already canceled or closed is left as it is.
    The outcome (``Cancellation`` fields) is the write's detail.
    """
    order_read: dict[str, Any] = {}
    attempted: dict[str, Any] = {}

    def look(earlier) -> Done | None:
        order = order_read["order"] = commerce.get_order(commerce_id)
        state = order.get("state")
        if state not in (STATE_CANCELED, STATE_CLOSED):
            return None
        if attempted:  # this call's own request, answer lost
            return Done(commerce_id, detail=attempted)
        return Done(commerce_id, detail={"action": f"already {state}"})

    def send() -> Done:
        order = order_read.pop("order")
        if order.get("state") == STATE_HOLDED:
            commerce.unhold_order(commerce_id)
            order = commerce.get_order(commerce_id)
        state = order.get("state")
        if state in (STATE_CANCELED, STATE_CLOSED):
            return Done(commerce_id, detail={"action": f"already {state}"})
        if _amount(order.get("total_invoiced")) > 0:
            items, shipping = _full_refund(order)
            attempted.update(action="refunded offline in full", creditmemo_id=None)
            memo = commerce.refund_order(commerce_id, items, shipping_amount=shipping, return_to_stock_items=[])
            return Done(commerce_id, detail={"action": "refunded offline in full", "creditmemo_id": memo})
        attempted.update(action=STATE_CANCELED)
        if not commerce.cancel_order(commerce_id):
            state = commerce.get_order(commerce_id).get("state")
            if state != STATE_CANCELED:
                raise FatalError(
                    f"Commerce refused to cancel order {commerce_id} (state {state})", operation="cancel_order"
                )
        return Done(commerce_id, detail={"action": STATE_CANCELED})

    return write_once(store.writes, keys.cancel(amazon_order_id), send=send, look=look, look_first=True)


def cancel_in_commerce(
    commerce,
    store: StateStore,
    amazon_order_id: str,
    commerce_id: int,
    comment_text: str,
    *,
    put_back_stock: Callable[[str], None] | None,
) -> Cancellation:
    """Cancel (or refund in full) the Commerce order, put its stock back, and say so in a comment; once.

    Shared by the import (an Amazon-side cancellation) and the cancellation DAG. ``put_back_stock``
    (``stock.StockMoves.put_back``, or None when the account does not manage stock) puts back what the
    order took. The comment is ``"<comment_text> Commerce: <action>."``.
    """
    result = cancel(commerce, store, amazon_order_id, commerce_id)
    outcome = dict(result.detail)
    if put_back_stock is not None:
        put_back_stock(amazon_order_id)
    text = f"{comment_text} Commerce: {outcome.get('action', STATE_CANCELED)}."
    comment(commerce, store, keys.comment("cancel", amazon_order_id), commerce_id, text)
    store.ops.audit(
        "order_cancelled_in_commerce", "amazon_order", amazon_order_id, {"commerce_order_id": commerce_id, **outcome}
    )
    return Cancellation(str(outcome.get("action", STATE_CANCELED)), outcome.get("creditmemo_id"))


# -- anonymise ---------------------------------------------------------------------------------------
ERASED = "Erased"
ERASED_FIELDS = {
    "firstname": ERASED,
    "lastname": ERASED,
    "middlename": "",
    "prefix": "",
    "suffix": "",
    "company": "",
    "street": [ERASED],
    "telephone": "0000000000",
    "fax": "",
    "email": "erased@example.invalid",
    "vat_id": "",
}


def anonymised_address(address: Mapping[str, Any]) -> dict[str, Any]:
    """The address with the buyer's identity replaced; place fields (city, region, postcode, country) stay."""
    out = dict(address)
    for field, placeholder in ERASED_FIELDS.items():
        if field in ("firstname", "lastname", "street", "telephone") or out.get(field):
            out[field] = placeholder
    return out


def order_addresses(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The billing address and every shipping assignment's address of a Commerce order."""
    found = [order["billing_address"]] if order.get("billing_address") else []
    for assignment in (order.get("extension_attributes") or {}).get("shipping_assignments") or []:
        address = (assignment.get("shipping") or {}).get("address")
        if address and address.get("entity_id") not in {a.get("entity_id") for a in found}:
            found.append(address)
    return found


def anonymise(commerce, store: StateStore, amazon_order_id: str, commerce_id: int, *, run_id: str) -> WriteResult:
    """Overwrite the buyer's identity in the Commerce order's addresses once (``PUT /V1/orders/{parent_id}``).

    The PUT is idempotent, so nothing is looked up: a repeat writes the same placeholders. An order
    Commerce no longer has is recorded as done (``outcome: order_gone``); other failures raise and
    leave the order for the next run. ``detail`` names the run and how many addresses were written.
    """
    key = keys.anonymise(amazon_order_id)

    def send() -> Done:
        addresses = order_addresses(commerce.get_order(commerce_id))
        for address in addresses:
            commerce.save_order_address(commerce_id, anonymised_address(address))
        return Done(commerce_id, detail={"run_id": run_id, "addresses": len(addresses)})

    try:
        return write_once(store.writes, key, send=send, look=lambda earlier: None, detail={"run_id": run_id})
    except NotFoundError:
        gone = Done(commerce_id, detail={"run_id": run_id, "outcome": "order_gone"})
        store.writes.record(key.natural_key, key.kind, amazon_order_id, commerce_id, detail=dict(gone.detail))
        return WriteResult(Source.FOUND, gone)
