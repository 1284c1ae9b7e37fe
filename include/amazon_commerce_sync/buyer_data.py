"""Which parts of an Amazon order are the buyer's personal data, and how the staged order keeps them apart.

The state store keeps an order twice over: its payload without personal data (``strip_pii``: ``amazon_orders``)
and the personal data alone (``extract_pii``: ``order_pii``, encrypted at rest). Personal data, following Amazon's
Data Protection Policy and the Orders API 2026-01-01 model: ``buyer`` (name, e-mail, company, purchase order
number), ``recipient`` (the delivery address), the buyer's tax registrations, the items' gift messages
(``fulfillment.packing.giftOption.giftMessage``); the buyer's own words in a cancellation request keep no e-mail
address or phone number. ``with_pii`` puts them back in memory for the Commerce order.

Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amazon_commerce_sync import order_programs
from amazon_commerce_sync.errors import redact_contact

PII_SECTIONS = ("buyer", "recipient")


def item_cancel_requested(item: Mapping[str, Any]) -> bool:
    """The item carries a cancellation request from the buyer (``cancellation.cancellationRequest.requester``)."""
    request = (item.get("cancellation") or {}).get("cancellationRequest") or {}
    return request.get("requester") == "BUYER"


def strip_pii(order: Mapping[str, Any]) -> dict[str, Any]:
    """The order without buyer and recipient data (what the state store keeps outside ``order_pii``).

    The buyer's tax registrations (``tax.taxRegistrations`` of entityType BUYER: a CPF is a person's) go with the
    buyer; the buyer's own words (an item's ``cancellationRequest.cancelReason``) keep no e-mail or phone number.
    """
    out = {k: v for k, v in order.items() if k not in PII_SECTIONS}
    if "tax" in order:
        out["tax"] = order_programs.split_tax_registrations(order)[0]
    if any(item_cancel_requested(item) or gift_message(item) for item in order.get("orderItems") or []):
        out["orderItems"] = [_withoutgift_message(_masked_request(item)) for item in order["orderItems"]]
    return out


def gift_message(item: Mapping[str, Any]) -> str | None:
    """The item's ``fulfillment.packing.giftOption.giftMessage`` (personal data: Amazon's DPP)."""
    return (((item.get("fulfillment") or {}).get("packing") or {}).get("giftOption") or {}).get("giftMessage")


def _withoutgift_message(item: Mapping[str, Any]) -> dict[str, Any]:
    if gift_message(item) is None:
        return dict(item)
    fulfillment = dict(item["fulfillment"])
    packing = dict(fulfillment["packing"])
    packing["giftOption"] = {k: v for k, v in packing["giftOption"].items() if k != "giftMessage"}
    return {**item, "fulfillment": {**fulfillment, "packing": packing}}


def with_gift_messages(order: dict[str, Any], messages: Mapping[str, str] | None) -> dict[str, Any]:
    """``order`` (staged) with the items' gift messages put back (``extract_pii``'s ``gift_messages``)."""
    if not messages:
        return order
    items = []
    for item in order.get("orderItems") or []:
        message = messages.get(str(item.get("orderItemId")))
        if message is not None:
            fulfillment = dict(item.get("fulfillment") or {})
            packing = dict(fulfillment.get("packing") or {})
            packing["giftOption"] = {**(packing.get("giftOption") or {}), "giftMessage": message}
            item = {**item, "fulfillment": {**fulfillment, "packing": packing}}
        items.append(item)
    return {**order, "orderItems": items}


def _masked_request(item: Mapping[str, Any]) -> dict[str, Any]:
    request = (item.get("cancellation") or {}).get("cancellationRequest") or {}
    if not isinstance(request.get("cancelReason"), str):
        return dict(item)
    masked = {**request, "cancelReason": redact_contact(request["cancelReason"])}
    return {**item, "cancellation": {**item["cancellation"], "cancellationRequest": masked}}


def extract_pii(order: Mapping[str, Any]) -> dict[str, Any]:
    buyer = order.get("buyer") or {}
    address = (order.get("recipient") or {}).get("deliveryAddress")
    return {
        "buyer_name": buyer.get("buyerName"),
        "buyer_email": buyer.get("buyerEmail"),
        "buyer_company": buyer.get("buyerCompanyName"),
        "shipping_address": address,
        "buyer_purchase_order": buyer.get("buyerPurchaseOrderNumber"),
        "buyer_tax_registrations": order_programs.split_tax_registrations(order)[1],
        "gift_messages": {
            str(item.get("orderItemId")): message
            for item in order.get("orderItems") or []
            if (message := gift_message(item)) is not None
        }
        or None,
    }


def with_pii(payload: Mapping[str, Any], pii: Mapping[str, Any] | None) -> dict[str, Any]:
    """The staged ``payload`` (``strip_pii``) with the personal data ``extract_pii`` took from it put back (in
    memory only, for the Commerce order): ``buyer``, ``recipient.deliveryAddress``, the buyer's tax registrations
    and the items' gift messages. ``pii`` None (erased by retention, or never held) gives the payload alone."""
    order = dict(payload)
    pii = pii or {}
    buyer = {
        "buyerName": pii.get("buyer_name"),
        "buyerEmail": pii.get("buyer_email"),
        "buyerCompanyName": pii.get("buyer_company"),
        "buyerPurchaseOrderNumber": pii.get("buyer_purchase_order"),
    }
    order["buyer"] = {k: v for k, v in buyer.items() if v}
    if pii.get("shipping_address"):
        order["recipient"] = {"deliveryAddress": pii["shipping_address"]}
    if pii.get("buyer_tax_registrations"):
        tax = dict(order.get("tax") or {})
        tax["taxRegistrations"] = [*(tax.get("taxRegistrations") or []), *pii["buyer_tax_registrations"]]
        order["tax"] = tax
    return with_gift_messages(order, pii.get("gift_messages"))
