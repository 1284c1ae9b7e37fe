"""Base-currency amounts of a Commerce order: the store's base currency and Commerce's configured rate.

Magento keeps every order amount twice: in the order currency (``grand_total``...) and in the store's base
currency (``base_grand_total``...). ``base_to_order_rate`` says how many order-currency units one base unit is
(``Magento\\Quote\\Model\\Quote\\Address\\Total\\*`` compute the base amount first and
``PriceCurrency::convert`` multiplies it by ``Currency::getRate``), so an order amount gives its base amount as
``amount / rate``, rounded to the cent half away from zero (``PriceCurrency::round`` is PHP's ``round($x, 2)``).
Totals are sums of the rounded base parts (Magento's total collectors add the base amounts they have already
rounded), never a converted order total: EUR 24.90 + EUR 4.73 tax at USD→EUR 0.92 gives
27.07 + 5.14 = USD 32.21.

Pure functions: the rate and base currency come from Commerce (``CommerceHook.store_currency``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0")

# Item amounts with a base twin (sales_order_item); converted one by one.
ITEM_AMOUNTS = (
    "price",
    "original_price",
    "price_incl_tax",
    "row_total",
    "row_total_incl_tax",
    "tax_amount",
    "discount_amount",
)
# Order amounts converted one by one; the totals below are sums of converted parts instead.
ORDER_AMOUNTS = ("shipping_amount", "shipping_tax_amount", "shipping_discount_amount", "adjustment_positive")
# The parts of grand_total, with their sign as sales_order stores them (discount_amount is negative).
GRAND_TOTAL_PARTS = ("subtotal", "shipping_amount", "tax_amount", "discount_amount", "adjustment_positive")


class NoExchangeRate(LookupError):
    """Commerce has no rate from the store's base currency to the order currency; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class StoreCurrency:
    """The currency setup of one Commerce store view.

    ``base_currency_code`` is the store's base currency (``GET /V1/store/storeConfigs``); ``rates`` maps each
    currency Commerce has a rate for to the rate from the base currency (``GET /V1/directory/currency``
    ``exchange_rates``; Magento answers 0 where no rate is configured, which is left out here);
    ``available`` are the currencies the store view accepts; ``store_code`` the store view's code.
    """

    store_id: int
    base_currency_code: str
    rates: Mapping[str, Decimal]
    available: frozenset[str]
    store_code: str = "default"

    @classmethod
    def from_rest(cls, config: Mapping[str, Any], info: Mapping[str, Any]) -> StoreCurrency:
        """From the store view's ``storeConfig`` (``GET /V1/store/storeConfigs``: ``id``, ``code``,
        ``base_currency_code``) and its ``GET /V1/directory/currency`` answer (``available_currency_codes``,
        ``exchange_rates`` of ``{currency_to, rate}``; a rate of 0 means none is configured)."""
        base = str(config.get("base_currency_code") or info.get("base_currency_code"))
        rates = {
            str(r["currency_to"]): Decimal(str(r["rate"]))
            for r in info.get("exchange_rates") or []
            if r.get("currency_to") and Decimal(str(r.get("rate") or 0)) > 0
        }
        available = frozenset({*(info.get("available_currency_codes") or []), base})
        return cls(int(config["id"]), base, rates, available, store_code=str(config["code"]))

    def rate_to(self, order_currency: str) -> Decimal:
        """``base_to_order_rate`` for an order in ``order_currency`` (1 for the base currency).

        :raises NoExchangeRate: Commerce has no (or a zero) rate for the pair.
        """
        if order_currency == self.base_currency_code:
            return Decimal(1)
        rate = self.rates.get(order_currency)
        if not rate or rate <= 0:
            raise NoExchangeRate(
                f"no {self.base_currency_code}→{order_currency} rate in Commerce: Stores ▸ Currency Rates "
                f"(the order is created by the first run after the rate is set)"
            )
        return rate


def to_base(amount: Any, rate: Decimal) -> Decimal:
    """One order-currency amount in the base currency: ``amount / rate`` rounded half up to the cent."""
    return (Decimal(str(amount)) / rate).quantize(CENT, rounding=ROUND_HALF_UP)


def with_base_amounts(entity: dict[str, Any], base_currency_code: str, rate: Decimal) -> dict[str, Any]:
    """The ``POST /V1/orders`` entity with its currency codes, rates and every ``base_*`` amount set.

    ``entity`` holds the order-currency amounts (``order_currency_code`` set); it is changed in place and
    returned. Items and single amounts are converted one by one; ``base_subtotal``, ``base_tax_amount``,
    ``base_*_incl_tax`` and ``base_grand_total`` are sums of converted parts, as Magento's totals are.

    :raises ValueError: the order-currency parts do not add up to ``grand_total`` (a part this module does
        not know of: add it to ``GRAND_TOTAL_PARTS``).
    """
    order_parts = sum((Decimal(str(entity.get(p) or 0)) for p in GRAND_TOTAL_PARTS), ZERO)
    if order_parts != Decimal(str(entity["grand_total"])):
        raise ValueError(f"order parts add up to {order_parts}, not to grand_total {entity['grand_total']}")
    entity.update(
        base_currency_code=base_currency_code,
        global_currency_code=base_currency_code,
        store_currency_code=base_currency_code,
        base_to_order_rate=rate,
        store_to_order_rate=rate,
        base_to_global_rate=Decimal(1),
        store_to_base_rate=Decimal(1),
    )
    base_item_tax = ZERO
    for item in entity.get("items") or []:
        for name in ITEM_AMOUNTS:
            if name in item:
                item[f"base_{name}"] = to_base(item[name], rate)
        if "row_total" in item:
            item["base_row_total_incl_tax"] = item["base_row_total"] + item.get("base_tax_amount", ZERO)
        base_item_tax += item.get("base_tax_amount", ZERO)
    for name in ORDER_AMOUNTS:
        if name in entity:
            entity[f"base_{name}"] = to_base(entity[name], rate)
    items = entity.get("items") or []
    base_subtotal = sum((i.get("base_row_total", ZERO) for i in items), ZERO)
    base_discount = -sum((i.get("base_discount_amount", ZERO) for i in items), ZERO)
    base_shipping_discount = entity.get("base_shipping_discount_amount", ZERO)
    base_shipping = entity.get("base_shipping_amount", ZERO)
    base_shipping_tax = entity.get("base_shipping_tax_amount", ZERO)
    base_tax = base_item_tax + base_shipping_tax
    base_grand = (
        base_subtotal
        + base_shipping
        + base_tax
        + base_discount
        - base_shipping_discount
        + entity.get("base_adjustment_positive", ZERO)
    )
    entity.update(
        base_subtotal=base_subtotal,
        base_subtotal_incl_tax=base_subtotal + base_item_tax,
        base_tax_amount=base_tax,
        base_shipping_incl_tax=base_shipping + base_shipping_tax,
        base_discount_amount=base_discount - base_shipping_discount,
        base_grand_total=base_grand,
        base_total_due=base_grand,
    )
    payment = entity.get("payment")
    if isinstance(payment, dict):
        payment["base_amount_ordered"] = base_grand
    for assignment in (entity.get("extension_attributes") or {}).get("shipping_assignments") or []:
        total = (assignment.get("shipping") or {}).get("total")
        if isinstance(total, dict):
            total["base_shipping_amount"] = base_shipping
            if "shipping_tax_amount" in total:
                total["base_shipping_tax_amount"] = base_shipping_tax
            if "shipping_incl_tax" in total:
                total["base_shipping_incl_tax"] = base_shipping + base_shipping_tax
    return entity


def order_rate(order: Mapping[str, Any]) -> Decimal:
    """The order's ``base_to_order_rate`` (1 when Commerce has none: an order in its store's base currency)."""
    rate = Decimal(str(order.get("base_to_order_rate") or 0))
    return rate if rate > 0 else Decimal(1)


def creditmemo_arguments(
    order: Mapping[str, Any],
    *,
    shipping_amount: Decimal | None = None,
    adjustment_positive: Decimal = ZERO,
    adjustment_negative: Decimal = ZERO,
) -> dict[str, Decimal]:
    """The credit memo arguments of ``POST /V1/order/{id}/refund`` in the store's BASE currency, from amounts in
    the order currency.

    Magento reads ``shipping_amount``, ``adjustment_positive`` and ``adjustment_negative`` as base amounts
    (``CreditmemoFactory::initData`` calls ``setBaseShippingAmount``; ``Creditmemo::setAdjustmentPositive``
    stores the amount as ``base_adjustment_positive`` and ``round(amount x base_to_order_rate)`` as
    ``adjustment_positive``). All the shipping left to refund (``shipping_amount - shipping_refunded``) is sent as
    the base shipping left, which ``Creditmemo\\Total\\Shipping::collect`` maps to exactly the order-currency
    shipping left; any other amount is ``amount / base_to_order_rate`` rounded half up to the cent (``to_base``).
    Returns ``{"shipping_amount"?, "adjustment_positive", "adjustment_negative"}``; ``shipping_amount`` is left
    out when None (Magento then refunds all the shipping left).
    """
    rate = order_rate(order)
    out = {
        "adjustment_positive": to_base(adjustment_positive, rate),
        "adjustment_negative": to_base(adjustment_negative, rate),
    }
    if shipping_amount is not None:
        left = Decimal(str(order.get("shipping_amount") or 0)) - Decimal(str(order.get("shipping_refunded") or 0))
        base_left = Decimal(str(order.get("base_shipping_amount") or 0)) - Decimal(
            str(order.get("base_shipping_refunded") or 0)
        )
        full = Decimal(str(shipping_amount)) == left and order.get("base_shipping_amount") is not None
        out["shipping_amount"] = base_left if full else to_base(shipping_amount, rate)
    return out
