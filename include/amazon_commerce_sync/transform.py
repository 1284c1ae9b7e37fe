"""Pure transformations: an Amazon order (Orders API 2026-01-01) in, Commerce payloads out.

No I/O, no clock: everything the functions need is passed in, so they are
tested table-driven without Airflow or HTTP. Money is ``Decimal`` throughout.

Amazon gives amounts per item as proceeds breakdowns (ITEM, SHIPPING, TAX with
ITEM/SHIPPING detailed breakdowns, DISCOUNT, ...); Commerce wants an order
whose totals add up the Magento way. ``build_order`` maps one onto the other
and refuses (``MalformedOrder``) anything that does not add up to Amazon's
grand total to the cent.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from amazon_commerce_sync import addresses, buyer_data, order_charges, order_programs
from amazon_commerce_sync.currency import StoreCurrency, with_base_amounts
from amazon_commerce_sync.settings import AccountSettings

CENT = Decimal("0.01")
ZERO = Decimal("0")
AMAZON_ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
MAX_TEXT = 255
MAX_QTY = 10_000
MAX_AMOUNT = Decimal("1000000")

# Amazon fulfilment statuses and what the import does with them.
PENDING_STATUSES = ("PENDING", "PENDING_AVAILABILITY")
MERCHANT_IMPORT_STATUSES = ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED")


class MalformedOrder(ValueError):
    """The order cannot be imported as it is; the message says why, for a person."""


@dataclasses.dataclass(frozen=True)
class ItemAmounts:
    order_item_id: str
    seller_sku: str
    title: str
    quantity: int
    quantity_shipped: int
    unit_price: Decimal
    row_total: Decimal
    tax: Decimal
    shipping: Decimal
    shipping_tax: Decimal
    discount: Decimal  # positive: what the item's price was reduced by
    shipping_discount: Decimal
    other: Decimal  # gift wrap, COD fee, other charges
    cancel_requested: bool


@dataclasses.dataclass(frozen=True)
class OrderAmounts:
    """Amazon's amounts of an order (order currency). ``charges`` are the order-level ones no item carries
    (``order_charges``: a delivery tip); they count as other charges, or as shipping & handling once
    ``charges_in_shipping`` (``order_programs.commerce_amounts``)."""

    currency: str
    items: tuple[ItemAmounts, ...]
    grand_total: Decimal
    charges: tuple[order_charges.OrderCharge, ...] = ()
    charges_in_shipping: bool = False

    @property
    def subtotal(self) -> Decimal:
        return sum((i.row_total for i in self.items), ZERO)

    @property
    def shipping(self) -> Decimal:
        extra = order_charges.charged(self.charges) if self.charges_in_shipping else ZERO
        return sum((i.shipping for i in self.items), extra)

    @property
    def shipping_tax(self) -> Decimal:
        return sum((i.shipping_tax for i in self.items), ZERO)

    @property
    def tax(self) -> Decimal:
        return sum((i.tax + i.shipping_tax for i in self.items), ZERO)

    @property
    def discount(self) -> Decimal:
        return sum((i.discount + i.shipping_discount for i in self.items), ZERO)

    @property
    def shipping_discount(self) -> Decimal:
        return sum((i.shipping_discount for i in self.items), ZERO)

    @property
    def other(self) -> Decimal:
        extra = ZERO if self.charges_in_shipping else order_charges.charged(self.charges)
        return sum((i.other for i in self.items), extra)


def money(value: Mapping[str, Any] | None, where: str, currency: str | None = None) -> Decimal:
    if not value:
        return ZERO
    try:
        amount = Decimal(str(value["amount"]))
    except (KeyError, InvalidOperation):
        raise MalformedOrder(f"{where}: amount {value.get('amount')!r} is not a decimal number") from None
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        raise MalformedOrder(f"{where}: amount {value.get('amount')!r} is out of range")
    if currency and value.get("currencyCode") not in (None, currency):
        raise MalformedOrder(f"{where}: currency {value.get('currencyCode')} differs from the order's {currency}")
    return amount


def fulfillment_status(order: Mapping[str, Any]) -> str:
    return ((order.get("fulfillment") or {}).get("fulfillmentStatus")) or "UNKNOWN"


def fulfilled_by(order: Mapping[str, Any]) -> str:
    return ((order.get("fulfillment") or {}).get("fulfilledBy")) or "MERCHANT"


def order_currency(order: Mapping[str, Any]) -> str | None:
    grand = (order.get("proceeds") or {}).get("grandTotal")
    if grand and grand.get("currencyCode"):
        return grand["currencyCode"]
    for item in order.get("orderItems") or []:
        total = (item.get("proceeds") or {}).get("proceedsTotal")
        if total and total.get("currencyCode"):
            return total["currencyCode"]
        unit = ((item.get("product") or {}).get("price") or {}).get("unitPrice")
        if unit and unit.get("currencyCode"):
            return unit["currencyCode"]
    return None


def buyer_cancel_requested(order: Mapping[str, Any]) -> bool:
    return any(buyer_data.item_cancel_requested(item) for item in order.get("orderItems") or [])


def quantity_shipped(item: Mapping[str, Any]) -> int:
    return int((item.get("fulfillment") or {}).get("quantityFulfilled") or 0)


def order_amounts(order: Mapping[str, Any]) -> OrderAmounts:
    """Amazon's amounts per item and the order-level charges (``order_charges``), checked to add up to the
    order's grand total exactly.

    :raises MalformedOrder: an amount is unreadable or out of range, an order-level proceeds type is unknown, or
        the amounts do not add up to Amazon's grand total (the reason names both sums).
    """
    order_id = order.get("orderId", "?")
    items = order.get("orderItems") or []
    if not items:
        raise MalformedOrder("the order has no items")
    currency = order_currency(order)
    if not currency or not re.fullmatch(r"[A-Z]{3}", currency):
        raise MalformedOrder(f"the order has no valid currency code ({currency!r})")
    parsed = []
    seen_ids: set[str] = set()
    for index, item in enumerate(items):
        where = f"orderItems[{index}]"
        item_id = item.get("orderItemId")
        if not item_id or item_id in seen_ids:
            raise MalformedOrder(f"{where}: missing or repeated orderItemId")
        seen_ids.add(item_id)
        product = item.get("product") or {}
        sku = product.get("sellerSku")
        if not sku or not isinstance(sku, str) or len(sku) > 64:
            raise MalformedOrder(f"{where}: seller SKU missing or longer than 64 characters")
        qty = item.get("quantityOrdered")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 0 < qty <= MAX_QTY:
            raise MalformedOrder(f"{where}: quantity {qty!r} is not between 1 and {MAX_QTY}")
        shipped = quantity_shipped(item)
        if not 0 <= shipped <= qty:
            raise MalformedOrder(f"{where}: shipped quantity {shipped} is not between 0 and {qty}")
        title = product.get("title") or sku
        if len(title) > 1000:
            raise MalformedOrder(f"{where}: product title is {len(title)} characters long")
        sums = {"ITEM": ZERO, "SHIPPING": ZERO, "TAX": ZERO, "DISCOUNT": ZERO, "OTHER": ZERO}
        tax_detail = {"ITEM": ZERO, "SHIPPING": ZERO, "OTHER": ZERO}
        discount_detail = {"ITEM": ZERO, "SHIPPING": ZERO, "OTHER": ZERO}
        for b_index, breakdown in enumerate((item.get("proceeds") or {}).get("breakdowns") or []):
            b_where = f"{where}.proceeds.breakdowns[{b_index}]"
            kind = breakdown.get("type")
            amount = money(breakdown.get("subtotal"), b_where, currency)
            key = kind if kind in sums else "OTHER"
            sums[key] += amount
            details = tax_detail if kind == "TAX" else discount_detail if kind == "DISCOUNT" else None
            if details is not None:
                for d_index, detail in enumerate(breakdown.get("detailedBreakdowns") or []):
                    sub = detail.get("subtype")
                    details[sub if sub in details else "OTHER"] += money(
                        detail.get("value"), f"{b_where}.detailedBreakdowns[{d_index}]", currency
                    )
        unit_price = money(((product.get("price") or {}).get("unitPrice")), f"{where}.product.price", currency)
        row_total = sums["ITEM"] if sums["ITEM"] else unit_price * qty
        if row_total < 0 or sums["SHIPPING"] < 0 or sums["TAX"] < 0:
            raise MalformedOrder(f"{where}: negative price, shipping or tax")
        if not unit_price:
            unit_price = (row_total / qty).quantize(CENT)
        # Tax split: detailed breakdowns when given (and consistent), else all on the item.
        if any(tax_detail.values()):
            if sum(tax_detail.values(), ZERO) != sums["TAX"]:
                raise MalformedOrder(f"{where}: tax breakdown does not add up to the item's tax")
            item_tax, shipping_tax = tax_detail["ITEM"] + tax_detail["OTHER"], tax_detail["SHIPPING"]
        else:
            item_tax, shipping_tax = sums["TAX"], ZERO
        discount = abs(sums["DISCOUNT"])
        if any(discount_detail.values()):
            shipping_discount = abs(discount_detail["SHIPPING"])
            if shipping_discount > discount:
                raise MalformedOrder(f"{where}: shipping discount exceeds the item's discount")
            item_discount = discount - shipping_discount
        else:
            item_discount, shipping_discount = discount, ZERO
        if item_discount > row_total or shipping_discount > sums["SHIPPING"]:
            raise MalformedOrder(f"{where}: discount larger than what it discounts")
        parsed.append(
            ItemAmounts(
                order_item_id=item_id,
                seller_sku=sku,
                title=title,
                quantity=qty,
                quantity_shipped=shipped,
                unit_price=unit_price,
                row_total=row_total,
                tax=item_tax,
                shipping=sums["SHIPPING"],
                shipping_tax=shipping_tax,
                discount=item_discount,
                shipping_discount=shipping_discount,
                other=sums["OTHER"],
                cancel_requested=buyer_data.item_cancel_requested(item),
            )
        )
    amounts = OrderAmounts(currency=currency, items=tuple(parsed), grand_total=ZERO)
    items_total = amounts.subtotal + amounts.shipping + amounts.tax + amounts.other - amounts.discount
    charges = order_charges.read_charges(order, currency)
    grand = (order.get("proceeds") or {}).get("grandTotal")
    grand_total = money(grand, "proceeds.grandTotal", currency) if grand else None
    charges = order_charges.settle(charges, items_total, items_total if grand_total is None else grand_total)
    computed = items_total + order_charges.charged(charges)
    if grand_total is not None and computed != grand_total:
        extra = "".join(f", {c.label.lower()} {c.amount}" for c in charges)
        raise MalformedOrder(
            f"amounts do not add up: items, shipping, tax and discounts{extra} give {computed} {currency} "
            f"but Amazon's order total is {grand_total} {currency} (order {order_id})"
        )
    return dataclasses.replace(amounts, grand_total=computed, charges=charges)


def _clean(value: Any, field: str, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    if len(text) > limit:
        raise MalformedOrder(f"{field} is {len(text)} characters long (at most {limit})")
    return text or None


def split_name(name: str | None, company: str | None) -> tuple[str, str]:
    """First and last name for Commerce (``addresses.split_name``)."""
    try:
        return addresses.split_name(name, company)
    except addresses.MalformedAddress as exc:
        raise MalformedOrder(str(exc)) from None


def commerce_address(
    order: Mapping[str, Any],
    address_type: str,
    email: str,
    directory: Mapping[str, addresses.CountryRegions | None] | None = None,
) -> dict[str, Any]:
    """A Commerce order address from Amazon's delivery address (``addresses.commerce_address``).

    :raises MalformedOrder: a text is too long, or the country requires a region the text does not name.
    """
    try:
        return addresses.commerce_address(order, address_type, email, directory)
    except addresses.MalformedAddress as exc:
        raise MalformedOrder(str(exc)) from None


def buyer_email(order: Mapping[str, Any], account: AccountSettings) -> str:
    email = _clean((order.get("buyer") or {}).get("buyerEmail"), "the buyer's email")
    if email and "@" in email:
        return email
    # Amazon withholds the email for some orders (e.g. FBA, restricted roles): use a stable,
    # non-personal placeholder so Commerce, which requires one, accepts the order.
    return f"{order['orderId']}@marketplace.amazon.invalid"


def build_order(
    order: Mapping[str, Any],
    amounts: OrderAmounts,
    account: AccountSettings,
    *,
    products: Mapping[str, Mapping[str, Any]],
    customer: Mapping[str, Any] | None = None,
    original_commerce_order: str | None = None,
    store_currency: StoreCurrency | None = None,
    directory: Mapping[str, addresses.CountryRegions | None] | None = None,
) -> dict[str, Any]:
    """The ``entity`` of ``POST /V1/orders`` for an Amazon order.

    ``products`` maps Commerce SKU → product (id, name); ``customer`` is the
    Commerce customer when accounts are created, ``None`` for a guest order;
    ``store_currency`` the store's base currency and rates (None: the order
    currency is the base currency); ``directory`` the store's directory entries
    of the address's countries (``addresses.region_fields``). The amounts are
    written in the order currency, then ``currency.with_base_amounts`` sets the
    base currency, the rate and every ``base_*`` amount. ``original_commerce_order``
    is the Commerce increment id of a replacement's original. Programs (business,
    facilitator tax, Prime, gifts) follow ``order_programs``.

    :raises MalformedOrder: the address cannot be resolved (see ``commerce_address``).
    :raises currency.NoExchangeRate: Commerce has no rate for the order currency.
    """
    programs = order_programs.read_programs(order, amounts.currency)
    amazon_amounts, amounts = amounts, order_programs.commerce_amounts(amounts, programs, account)
    order_id = order["orderId"]
    email = customer["email"] if customer else buyer_email(order, account)
    shipping_address = commerce_address(order, "shipping", email, directory)
    billing_address = dict(shipping_address, address_type="billing")
    currency = amounts.currency
    service_level = (order.get("fulfillment") or {}).get("fulfillmentServiceLevel")
    items = []
    for item in amounts.items:
        sku = account.commerce_sku(item.seller_sku)
        product = products.get(sku) or {}
        row_incl_tax = item.row_total + item.tax
        tax_percent = ((item.tax / item.row_total) * 100).quantize(Decimal("0.0001")) if item.row_total else ZERO
        entry = {
            "sku": sku,
            "name": product.get("name") or item.title,
            "product_type": "simple",
            "qty_ordered": item.quantity,
            "price": item.unit_price,
            "base_price": item.unit_price,
            "original_price": item.unit_price,
            "base_original_price": item.unit_price,
            "price_incl_tax": (row_incl_tax / item.quantity).quantize(CENT),
            "base_price_incl_tax": (row_incl_tax / item.quantity).quantize(CENT),
            "row_total": item.row_total,
            "base_row_total": item.row_total,
            "row_total_incl_tax": row_incl_tax,
            "base_row_total_incl_tax": row_incl_tax,
            "tax_amount": item.tax,
            "base_tax_amount": item.tax,
            "tax_percent": tax_percent,
            "discount_amount": item.discount,
            "base_discount_amount": item.discount,
            "ext_order_item_id": item.order_item_id,
            "store_id": account.store_id,
            "is_virtual": 0,
        }
        if product.get("id") is not None:
            entry["product_id"] = product["id"]
        items.append(entry)
    grand = amounts.grand_total
    shipping_incl_tax = amounts.shipping + amounts.shipping_tax
    method = account.shipping_method(service_level)
    total_qty = sum(i.quantity for i in amounts.items)
    entity: dict[str, Any] = {
        "ext_order_id": order_id,
        "store_id": account.store_id,
        "status": account.new_order_status,
        "state": "new",
        "base_currency_code": currency,
        "order_currency_code": currency,
        "store_currency_code": currency,
        "global_currency_code": currency,
        "base_to_order_rate": 1,
        "base_to_global_rate": 1,
        "customer_email": email,
        "customer_firstname": billing_address["firstname"],
        "customer_lastname": billing_address["lastname"],
        "customer_is_guest": 0 if customer else 1,
        "customer_group_id": (customer or {}).get("group_id", 0),
        "customer_note_notify": 0,
        "email_sent": 0,
        "subtotal": amounts.subtotal,
        "base_subtotal": amounts.subtotal,
        "subtotal_incl_tax": amounts.subtotal + sum((i.tax for i in amounts.items), ZERO),
        "base_subtotal_incl_tax": amounts.subtotal + sum((i.tax for i in amounts.items), ZERO),
        "shipping_amount": amounts.shipping,
        "base_shipping_amount": amounts.shipping,
        "shipping_tax_amount": amounts.shipping_tax,
        "base_shipping_tax_amount": amounts.shipping_tax,
        "shipping_incl_tax": shipping_incl_tax,
        "base_shipping_incl_tax": shipping_incl_tax,
        "shipping_discount_amount": amounts.shipping_discount,
        "base_shipping_discount_amount": amounts.shipping_discount,
        "shipping_description": f"Amazon {service_level or 'Standard'}",
        "tax_amount": amounts.tax,
        "base_tax_amount": amounts.tax,
        "discount_amount": -amounts.discount,
        "base_discount_amount": -amounts.discount,
        "grand_total": grand,
        "base_grand_total": grand,
        "total_due": grand,
        "base_total_due": grand,
        "total_qty_ordered": total_qty,
        "total_item_count": len(items),
        "weight": 0,
        "items": items,
        "billing_address": billing_address,
        "payment": {
            "method": account.payment_method,
            "amount_ordered": grand,
            "base_amount_ordered": grand,
            "account_status": "",
            "cc_last4": "",
            "additional_information": [
                f"Amazon order {order_id}",
                f"Marketplace {(order.get('salesChannel') or {}).get('marketplaceId', '')}",
                f"Fulfilled by {fulfilled_by(order)}",
            ],
        },
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {
                        "address": shipping_address,
                        "method": method,
                        "total": {
                            "shipping_amount": amounts.shipping,
                            "base_shipping_amount": amounts.shipping,
                            "shipping_tax_amount": amounts.shipping_tax,
                            "shipping_incl_tax": shipping_incl_tax,
                        },
                    },
                    "items": [],
                }
            ]
        },
    }
    if amounts.other:
        entity["adjustment_positive"] = amounts.other
        entity["base_adjustment_positive"] = amounts.other
    if account.order_number_source == "amazon":
        entity["increment_id"] = order_id
    if customer:
        entity["customer_id"] = customer["id"]
    order_programs.apply(entity, programs, amazon_amounts, account, original_commerce_order=original_commerce_order)
    if store_currency is None:
        return with_base_amounts(entity, currency, Decimal(1))
    return with_base_amounts(entity, store_currency.base_currency_code, store_currency.rate_to(currency))
