"""Finances API 2024-06-19 ``listTransactions`` (``GET /finances/2024-06-19/transactions``).

Follows Amazon's model (``reference/sp-api/models/finances_2024-06-19.json``) and use case guide:

- ``postedAfter`` is required unless a related identifier is given ("Start date cannot be null", Amazon's
  400 example); it and ``postedBefore`` (default: two minutes before the request, exclusive) must be more
  than two minutes before the request; ``postedBefore`` must be later than ``postedAfter``; a range of
  more than 180 days gives an empty answer.
- ``relatedIdentifierName``/``relatedIdentifierValue`` filter by ``ORDER_ID`` or ``FINANCIAL_EVENT_GROUP_ID``
  (the only names Amazon can filter by); ``marketplaceId`` by marketplace, except that Amazon leaves
  merchant-fulfilled US orders out when ``marketplaceId`` is given ("If you want to retrieve MFN orders in
  the US store, do not supply the marketplaceId parameter"); ``transactionStatus`` by RELEASED, DEFERRED or
  DEFERRED_RELEASED (all three by default, use case guide).
- Pages of up to 500 transactions (use case guide) with ``nextToken``, to be sent with the same arguments.
- Rate 0.5 requests/s, burst 10 (the model's usage plan; ``ratelimit.RATE_LIMITS``).

Transactions are built from the money events the sandbox models: a ``Shipment`` ("Order Payment") per
shipped package and a ``Refund`` ("Refund Order") per refund, Amazon-side or from a
``POST_PAYMENT_ADJUSTMENT_DATA`` feed.  They carry what Amazon's carry: related identifiers (``ORDER_ID``,
``FINANCIAL_EVENT_GROUP_ID``, ``REFUND_ID``), ``marketplaceDetails``, ``totalAmount`` (net of Amazon's
fees), ``breakdowns`` and per-item ``items`` with an ``ORDER_ADJUSTMENT_ITEM_ID`` (refunds; an Amazon id,
not the order item id), a ``ProductContext`` (ASIN, seller SKU, quantity, MFN/AFN) and, when deferred, a
``DeferredContext``.  Nothing that only the sandbox knows appears: the feed's ``MerchantAdjustmentItemID``
is not echoed, so a refund the integration sent is recognised by order, SKU and exact amounts.

Breakdowns (the sandbox's reading of Amazon's names, as seen in published responses): ``Sales`` /
``Refunded Sales`` with ``ProductCharges`` (``Principal``, ``Tax``), ``Shipping`` (``ShippingCharge``,
``ShippingTax``), ``GiftWrap`` (``GiftWrapCharge``, ``GiftWrapTax``) and ``OtherCharges`` (the adjustment
component's own name, e.g. ``Goodwill``); ``PromoRebates``; ``Expenses`` / ``Refunded Expenses`` with
``AmazonFees`` (``Commission`` 15 % of principal, ``FBAPerUnitFulfillmentFee`` for Amazon-fulfilled units,
``RefundCommission`` 20 % of the commission given back, at most 5 USD or its equivalent).  Charges to the
buyer are positive in a Shipment and negative in a Refund; fees the other way round.

Status: a transaction is deferred (``deferral_rate`` of shipments, decided per transaction from the seed)
until ``deferral_seconds / speed`` after it was posted: DEFERRED until then, DEFERRED_RELEASED after;
others are RELEASED.  A refund posted while its order's payment is still deferred is deferred with it.
Deferral reason ``B2B`` for Amazon Business orders invoiced by Amazon, ``DD7`` otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response

from sandboxes.amazon import domain
from sandboxes.amazon.generator import CURRENCY_FACTOR
from sandboxes.amazon.marketplaces import MARKETPLACES
from sandboxes.amazon.regions import check_marketplaces, request_region, seller_marketplaces_in
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import dumps_with_decimal_numbers, invalid_input, iso, money, now, parse_iso

router = APIRouter()
MIN_AGE = 120
MAX_RANGE = 180 * 86400
STATUSES = ("RELEASED", "DEFERRED", "DEFERRED_RELEASED")
FILTERABLE = ("ORDER_ID", "FINANCIAL_EVENT_GROUP_ID")
US = "ATVPDKIKX0DER"
COMMISSION = Decimal("0.15")
REFUND_COMMISSION = Decimal("0.20")
REFUND_COMMISSION_CAP_USD = Decimal("5.00")
FBA_FEE_USD = Decimal("3.22")
GROUP_PERIOD = 14 * 86400  # settlement periods are two weeks
# refund component / v0 charge type -> (group, leaf)
COMPONENT_GROUPS = {
    "Principal": ("ProductCharges", "Principal"),
    "Tax": ("ProductCharges", "Tax"),
    "Shipping": ("Shipping", "ShippingCharge"),
    "ShippingTax": ("Shipping", "ShippingTax"),
    "GiftWrap": ("GiftWrap", "GiftWrapCharge"),
    "GiftWrapTax": ("GiftWrap", "GiftWrapTax"),
}


# ------------------------------------------------------------------ helpers
def _hash(*parts: Any) -> bytes:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


def _transaction_id(*parts: Any) -> str:
    """An opaque id shaped like Amazon's (43 URL-safe base64 characters)."""
    return base64.urlsafe_b64encode(_hash("transaction", *parts)).decode().rstrip("=")


def _digits(count: int, *parts: Any) -> str:
    return str(int.from_bytes(_hash(*parts)[:8], "big") % 10**count).zfill(count)


def _roll(*parts: Any) -> float:
    return int.from_bytes(_hash("roll", *parts)[:8], "big") / 2**64


def _amount(value: Decimal, currency: str) -> dict[str, Any]:
    return {"currencyCode": currency, "currencyAmount": money(value, currency)}


def _breakdown(
    kind: str, value: Decimal, currency: str, children: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"breakdownType": kind, "breakdownAmount": _amount(value, currency), "breakdowns": children or []}


def _grouped(parts: dict[str, Decimal], currency: str, sign: Decimal) -> list[dict[str, Any]]:
    """``{component: amount}`` -> group breakdowns (ProductCharges, Shipping, GiftWrap, OtherCharges)."""
    groups: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for component, value in parts.items():
        group, leaf = COMPONENT_GROUPS.get(component, ("OtherCharges", component))
        groups[group].append((leaf, sign * value))
    return [
        _breakdown(
            group,
            sum((v for _, v in leaves), Decimal("0")),
            currency,
            [_breakdown(leaf, v, currency) for leaf, v in leaves],
        )
        for group, leaves in groups.items()
    ]


def _fees(fees: dict[str, Decimal], currency: str, name: str) -> list[dict[str, Any]]:
    fees = {k: v for k, v in fees.items() if v}
    if not fees:
        return []
    total = sum(fees.values(), Decimal("0"))
    amazon = _breakdown("AmazonFees", total, currency, [_breakdown(k, v, currency) for k, v in fees.items()])
    return [_breakdown(name, total, currency, [amazon])] if name else [amazon]


def _usd(value: str, currency: str) -> Decimal:
    return money(Decimal(value) * CURRENCY_FACTOR.get(currency, Decimal("1")), currency)


def _group_id(seller_id: str, currency: str, posted_at: float) -> str:
    return (
        base64.urlsafe_b64encode(_hash("group", seller_id, currency, int(posted_at // GROUP_PERIOD)))
        .decode()
        .rstrip("=")
    )


def _deferred_until(state: SandboxState, key: str, posted_at: float) -> float | None:
    config = state.config
    if config.deferral_rate <= 0 or _roll(config.seed, key) >= config.deferral_rate:
        return None
    return posted_at + config.deferral_seconds / config.speed


def _status(deferred_until: float | None, t: float) -> str:
    if deferred_until is None:
        return "RELEASED"
    return "DEFERRED" if t < deferred_until else "DEFERRED_RELEASED"


# ------------------------------------------------------------------ building transactions
class _Builder:
    """Builds the transactions of one seller from the sandbox's events (call under ``state.lock``)."""

    def __init__(self, state: SandboxState, seller_id: str, t: float) -> None:
        self.state = state
        self.seller_id = seller_id
        self.t = t
        self.shipment_deferrals: dict[str, list[float]] = defaultdict(list)

    def _order(self, order_id: str) -> dict[str, Any] | None:
        record = self.state.orders.get(order_id)
        return record["order"] if record else None

    def _base(
        self,
        kind: str,
        description: str,
        key: str,
        order: dict[str, Any],
        posted_at: float,
        currency: str,
        total: Decimal,
        deferred_until: float | None,
        extra_ids: list[dict[str, str]],
    ) -> dict[str, Any]:
        marketplace_id = order["salesChannel"].get("marketplaceId", "")
        transaction: dict[str, Any] = {
            "sellingPartnerMetadata": {
                "sellingPartnerId": self.seller_id,
                "accountType": "PAYABLE",
                "marketplaceId": marketplace_id,
            },
            "relatedIdentifiers": [
                {"relatedIdentifierName": "ORDER_ID", "relatedIdentifierValue": order["orderId"]},
                {
                    "relatedIdentifierName": "FINANCIAL_EVENT_GROUP_ID",
                    "relatedIdentifierValue": _group_id(self.seller_id, currency, posted_at),
                },
                *extra_ids,
            ],
            "transactionType": kind,
            "transactionId": _transaction_id(self.seller_id, key),
            "transactionStatus": _status(deferred_until, self.t),
            "description": description,
            "postedDate": iso(posted_at),
            "totalAmount": _amount(total, currency),
            "marketplaceDetails": {"marketplaceId": marketplace_id, "marketplaceName": domain.marketplace_name(order)},
        }
        if deferred_until is not None:
            business = {"AMAZON_BUSINESS", "INVOICE_BY_AMAZON"} <= set(order.get("programs") or [])
            transaction["contexts"] = [
                {
                    "contextType": "DeferredContext",
                    "deferralReason": "B2B" if business else "DD7",
                    "maturityDate": iso(deferred_until),
                }
            ]
        return transaction

    @staticmethod
    def _product(order: dict[str, Any], order_item_id: str, quantity: int) -> dict[str, Any]:
        item = domain.find_item(order, order_item_id) or {"product": {}}
        network = "AFN" if order.get("fulfillment", {}).get("fulfilledBy") == "AMAZON" else "MFN"
        context = {
            "contextType": "ProductContext",
            "sku": item["product"].get("sellerSku", ""),
            "quantityShipped": quantity,
            "fulfillmentNetwork": network,
        }
        if item["product"].get("asin"):
            context["asin"] = item["product"]["asin"]
        return context

    def shipment(self, index: int, entry: dict[str, Any]) -> dict[str, Any] | None:
        order = self._order(entry["orderId"])
        if order is None:
            return None
        currency = domain.currency_of(order)
        afn = order.get("fulfillment", {}).get("fulfilledBy") == "AMAZON"
        sales: dict[str, Decimal] = defaultdict(Decimal)
        promos = fees_commission = fees_fba = Decimal("0")
        items = []
        for line in entry["event"]["ShipmentItemList"]:
            charges = {
                c["ChargeType"]: Decimal(str(c["ChargeAmount"]["CurrencyAmount"]))
                for c in line.get("ItemChargeList", [])
            }
            promo = sum(
                (Decimal(str(p["PromotionAmount"]["CurrencyAmount"])) for p in line.get("PromotionList", [])),
                Decimal("0"),
            )
            commission = -money((charges.get("Principal", Decimal("0")) + promo) * COMMISSION, currency)
            fba = -_usd(str(FBA_FEE_USD * line["QuantityShipped"]), currency) if afn else Decimal("0")
            breakdowns = _grouped(charges, currency, Decimal("1"))
            if promo:
                breakdowns.append(_breakdown("PromoRebates", promo, currency))
            breakdowns += _fees({"Commission": commission, "FBAPerUnitFulfillmentFee": fba}, currency, "")
            item = domain.find_item(order, line["OrderItemId"]) or {"product": {}}
            items.append(
                {
                    "description": item["product"].get("title", ""),
                    "totalAmount": _amount(sum(charges.values(), Decimal("0")) + promo + commission + fba, currency),
                    "breakdowns": breakdowns,
                    "contexts": [self._product(order, line["OrderItemId"], line["QuantityShipped"])],
                }
            )
            for k, v in charges.items():
                sales[k] += v
            promos += promo
            fees_commission += commission
            fees_fba += fba
        key = f"S{index}"
        deferred_until = _deferred_until(self.state, f"{self.seller_id}:{key}", entry["postedAt"])
        if deferred_until is not None:
            self.shipment_deferrals[order["orderId"]].append(deferred_until)
        gross = sum(sales.values(), Decimal("0"))
        breakdowns = [_breakdown("Sales", gross, currency, _grouped(sales, currency, Decimal("1")))]
        if promos:
            breakdowns.append(_breakdown("PromoRebates", promos, currency))
        breakdowns += _fees({"Commission": fees_commission, "FBAPerUnitFulfillmentFee": fees_fba}, currency, "Expenses")
        transaction = self._base(
            "Shipment",
            "Order Payment",
            key,
            order,
            entry["postedAt"],
            currency,
            gross + promos + fees_commission + fees_fba,
            deferred_until,
            [],
        )
        transaction["items"] = items
        transaction["breakdowns"] = breakdowns
        return transaction

    def refund(self, index: int, refund: dict[str, Any]) -> dict[str, Any] | None:
        order = self._order(refund["orderId"])
        if order is None:
            return None
        currency = refund["currency"]
        cap = _usd(str(REFUND_COMMISSION_CAP_USD), currency)
        sales: dict[str, Decimal] = defaultdict(Decimal)
        fees: dict[str, Decimal] = defaultdict(Decimal)
        items = []
        for n, entry in enumerate(refund["items"]):
            parts = {c["type"]: Decimal(c["amount"]) for c in entry["components"]}
            commission = money(parts.get("Principal", Decimal("0")) * COMMISSION, currency)
            refund_commission = -min(money(commission * REFUND_COMMISSION, currency), cap)
            item_fees = {"Commission": commission, "RefundCommission": refund_commission}
            item = domain.find_item(order, entry["orderItemId"]) or {"product": {}}
            items.append(
                {
                    "description": item["product"].get("title", ""),
                    "totalAmount": _amount(
                        -sum(parts.values(), Decimal("0")) + commission + refund_commission, currency
                    ),
                    "relatedIdentifiers": [
                        {
                            "itemRelatedIdentifierName": "ORDER_ADJUSTMENT_ITEM_ID",
                            "itemRelatedIdentifierValue": _digits(14, refund["refundId"], n),
                        }
                    ],
                    "breakdowns": _grouped(parts, currency, Decimal("-1")) + _fees(item_fees, currency, ""),
                    "contexts": [self._product(order, entry["orderItemId"], int(entry.get("quantity", 1)))],
                }
            )
            for k, v in parts.items():
                sales[k] += v
            for k, v in item_fees.items():
                fees[k] += v
        pending = [d for d in self.shipment_deferrals.get(order["orderId"], []) if d > refund["postedAt"]]
        deferred_until = max(pending) if pending else None
        gross = sum(sales.values(), Decimal("0"))
        transaction = self._base(
            "Refund",
            "Refund Order",
            f"R{index}",
            order,
            refund["postedAt"],
            currency,
            -gross + sum(fees.values(), Decimal("0")),
            deferred_until,
            [
                {
                    "relatedIdentifierName": "REFUND_ID",
                    "relatedIdentifierValue": f"amzn1:crow:{_digits(20, 'refund', refund['refundId'])}",
                }
            ],
        )
        transaction["items"] = items
        transaction["breakdowns"] = [
            _breakdown("Refunded Sales", -gross, currency, _grouped(sales, currency, Decimal("-1"))),
            *_fees(dict(fees), currency, "Refunded Expenses"),
        ]
        return transaction

    def all(self) -> list[tuple[float, dict[str, Any]]]:
        """Every transaction of the seller as ``(postedAt, transaction)`` (shipments first: refunds inherit
        their order's deferral)."""
        out = []
        for i, entry in enumerate(self.state.shipment_events):
            if entry["sellerId"] == self.seller_id and (tx := self.shipment(i, entry)):
                out.append((entry["postedAt"], tx))
        for i, refund in enumerate(self.state.refunds):
            if refund["sellerId"] == self.seller_id and (tx := self.refund(i, refund)):
                out.append((refund["postedAt"], tx))
        return out


# ------------------------------------------------------------------ the route
def _query(request: Request, region: str, seller_marketplaces: list[str], t: float) -> dict[str, Any]:
    q = request.query_params
    name, value = q.get("relatedIdentifierName"), q.get("relatedIdentifierValue")
    if bool(name) != bool(value):
        raise invalid_input("relatedIdentifierName and relatedIdentifierValue must be given together.")
    if name and name not in FILTERABLE:
        raise invalid_input(
            f"Invalid relatedIdentifierName {name}.", f"Only {' and '.join(FILTERABLE)} can be used for filtering."
        )
    if not q.get("postedAfter") and not name:
        raise invalid_input("Start date cannot be null", "Start date cannot be null")
    query: dict[str, Any] = {"name": name, "value": value}
    if q.get("postedAfter"):
        after = parse_iso(q["postedAfter"], "postedAfter")
        before = parse_iso(q["postedBefore"], "postedBefore") if q.get("postedBefore") else t - MIN_AGE
        if after > t - MIN_AGE:
            raise invalid_input("postedAfter must be more than two minutes before the time of the request.")
        if q.get("postedBefore") and before > t - MIN_AGE:
            raise invalid_input("postedBefore must be more than two minutes before the time of the request.")
        if before <= after:
            raise invalid_input("postedBefore must be later than postedAfter.")
        query.update(after=after, before=before)
    elif q.get("postedBefore"):
        raise invalid_input("postedBefore can only be used together with postedAfter.")
    if q.get("marketplaceId"):
        check_marketplaces(region, seller_marketplaces, [q["marketplaceId"]])
        query["marketplaceId"] = q["marketplaceId"]
    status = q.get("transactionStatus")
    if status and status not in STATUSES:
        raise invalid_input(f"Invalid transactionStatus {status}.", f"Possible values: {', '.join(STATUSES)}.")
    query["status"] = status
    return query


def _keep(query: dict[str, Any], region: str, posted_at: float, tx: dict[str, Any], order: dict[str, Any]) -> bool:
    marketplace_id = tx["marketplaceDetails"]["marketplaceId"]
    entry = MARKETPLACES.get(marketplace_id)
    if entry is None or entry.region != region:
        return False
    if "after" in query and not query["after"] <= posted_at < query["before"]:
        return False
    if query["name"] and not any(
        r["relatedIdentifierName"] == query["name"] and r["relatedIdentifierValue"] == query["value"]
        for r in tx["relatedIdentifiers"]
    ):
        return False
    if query.get("marketplaceId"):
        if marketplace_id != query["marketplaceId"]:
            return False
        if marketplace_id == US and order.get("fulfillment", {}).get("fulfilledBy") != "AMAZON":
            return False  # Amazon: MFN orders of the US store are not returned with marketplaceId
    return not query["status"] or tx["transactionStatus"] == query["status"]


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode()


@router.get("/finances/2024-06-19/transactions")
def list_transactions(request: Request) -> Response:
    """listTransactions: ``{"payload": {"transactions": [...], "nextToken"?}}``; amounts are exact JSON numbers."""
    state: SandboxState = request.app.state.sandbox
    seller_id = request.scope["state"]["seller_id"]
    seller = state.config.seller(seller_id)
    region = request_region(request)
    t = now()
    token = request.query_params.get("nextToken")
    if token:
        try:
            data = json.loads(base64.urlsafe_b64decode(token))
            query, offset = data["q"], int(data["o"])
        except (ValueError, KeyError, TypeError) as exc:
            raise invalid_input("Invalid nextToken.") from exc
        if data.get("s") != seller_id or data.get("r") != region or data.get("p") != _params(request):
            raise invalid_input("Invalid nextToken: use it with the same arguments as the call that produced it.")
    else:
        served = seller_marketplaces_in(region, seller.marketplace_ids if seller else [])
        query, offset = _query(request, region, served, t), 0
    found: list[tuple[float, str, dict[str, Any]]] = []
    if "after" not in query or query["before"] - query["after"] <= MAX_RANGE:
        with state.lock:
            for posted_at, tx in _Builder(state, seller_id, t).all():
                order = state.orders[tx["relatedIdentifiers"][0]["relatedIdentifierValue"]]["order"]
                if posted_at <= t and _keep(query, region, posted_at, tx, order):
                    found.append((posted_at, tx["transactionId"], tx))
    found.sort(key=lambda f: (f[0], f[1]))
    size = state.config.finances_page_size
    payload: dict[str, Any] = {"transactions": [f[2] for f in found[offset : offset + size]]}
    if offset + size < len(found):
        payload["nextToken"] = _encode(
            {"q": query, "o": offset + size, "s": seller_id, "r": region, "p": _params(request)}
        )
    return Response(dumps_with_decimal_numbers({"payload": payload}), media_type="application/json")


def _params(request: Request) -> dict[str, str]:
    """The call's arguments other than ``nextToken`` (a token must come back with the same ones)."""
    return {k: v for k, v in sorted(request.query_params.items()) if k != "nextToken"}
