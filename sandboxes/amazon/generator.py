"""Deterministic generator of realistic Orders API 2026-01-01 ``Order`` documents.

``CATALOG`` is the fixed list of seller SKUs every generated order draws from, so the
Commerce sandbox can be seeded with the same products.  The same seed, count, clock and
``realism`` give the same orders.  Every order validates against the official ``Order`` model.

Orders are placed in the given marketplaces, in their currency (amounts in its minor units) and
country; the shapes real orders come in are added at the rates of a ``shapes.Realism`` (default: the
``compat`` preset; ``realistic`` is what Amazon sends, see ``shapes.py``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sandboxes.amazon import shapes
from sandboxes.amazon.config import DEFAULT_MARKETPLACES
from sandboxes.amazon.marketplaces import MARKETPLACES
from sandboxes.amazon.shapes import ADDRESSES, Realism
from sandboxes.amazon.util import iso, money, money_obj

CATALOG: list[dict[str, Any]] = [
    {"sku": "ACS-TSHIRT-BLK-M", "name": "Organic Cotton T-Shirt, Black, M", "price": Decimal("19.99")},
    {"sku": "ACS-TSHIRT-WHT-L", "name": "Organic Cotton T-Shirt, White, L", "price": Decimal("19.99")},
    {"sku": "ACS-HOODIE-GRY-XL", "name": "Fleece Hoodie, Grey, XL", "price": Decimal("49.50")},
    {"sku": "ACS-MUG-CERAMIC-350", "name": "Ceramic Mug 350 ml", "price": Decimal("12.00")},
    {"sku": "ACS-BOTTLE-STEEL-750", "name": "Insulated Steel Bottle 750 ml", "price": Decimal("27.95")},
    {"sku": "ACS-BACKPACK-20L", "name": "Daypack 20 L", "price": Decimal("64.00")},
    {"sku": "ACS-CABLE-USBC-2M", "name": "USB-C Cable 2 m", "price": Decimal("9.99")},
    {"sku": "ACS-CHARGER-65W", "name": "GaN Charger 65 W", "price": Decimal("39.99")},
    {"sku": "ACS-HEADPHONES-BT", "name": "Bluetooth Headphones", "price": Decimal("89.00")},
    {"sku": "ACS-NOTEBOOK-A5", "name": "Dotted Notebook A5", "price": Decimal("8.49")},
    {"sku": "ACS-PEN-GEL-10PK", "name": "Gel Pens, pack of 10", "price": Decimal("6.75")},
    {"sku": "ACS-LAMP-DESK-LED", "name": "LED Desk Lamp", "price": Decimal("34.90")},
    {"sku": "ACS-YOGA-MAT-6MM", "name": "Yoga Mat 6 mm", "price": Decimal("29.00")},
    {"sku": "ACS-CANDLE-SOY-VAN", "name": "Soy Candle, Vanilla", "price": Decimal("15.25")},
    {"sku": "ACS-TEA-MATCHA-100G", "name": "Matcha Tea 100 g (抹茶)", "price": Decimal("22.40")},
    {"sku": "ACS-SOCKS-WOOL-3PK", "name": "Merino Socks, 3 pairs", "price": Decimal("24.99")},
    {"sku": "ACS-UMBRELLA-CMPCT", "name": "Compact Umbrella", "price": Decimal("18.60")},
    {"sku": "ACS-PUZZLE-1000", "name": "Jigsaw Puzzle 1000 pieces", "price": Decimal("21.00")},
]

_ASINS = {item["sku"]: f"B0{i:02d}SANDBX" for i, item in enumerate(CATALOG)}

NAMES = [
    "José Müller",
    "Zoë Ørsted",
    "山田 太郎",
    "Γιώργος Παπαδόπουλος",
    "Cher",
    "Madonna",
    "François L'Écuyer",
    "Siobhán O'Brien",
    "Łukasz Żółć",
    "Ana María García-López",
    "John Smith",
    "Mary Johnson",
    "Nguyễn Văn An",
    "Ævar Þórsson",
    "Chloé Dubois",
    "Priya Raghunathan",
    "Олег Иванов",
    "Søren Kierkegård",
]
COMPANIES = ["Acme Tools LLC", "Société Générale de Café", "Müller & Söhne GmbH", "北海道商事株式会社"]
SERVICE_LEVELS = ["STANDARD", "STANDARD", "STANDARD", "EXPEDITED", "NEXT_DAY", "SECOND_DAY", "SCHEDULED"]
# carrier codes from Amazon's list (carrier_codes.json) and a service, per delivery country
CARRIERS = [
    ("UPS", "UPS Ground"),
    ("USPS", "Priority Mail"),
    ("FedEx", "FedEx Home Delivery"),
    ("Canada Post", "Expedited Parcel"),
]
LOCAL_CARRIERS = {
    "MX": [("Estafeta", "Dia Siguiente"), ("DHL", "Express")],
    "BR": [("Correios", "SEDEX"), ("Total Express", "")],
    "GB": [("Royal Mail", "Tracked 48"), ("DPD", "Next Day")],
    "DE": [("DHL", "Paket"), ("Hermes", "Standard")],
    "FR": [("Colissimo", "Domicile"), ("Chronopost", "13")],
    "IT": [("BRT", "Express"), ("Poste Italiane", "")],
    "ES": [("Correos", "Paq 24"), ("Seur", "24")],
    "TR": [("Aras Kargo", ""), ("MNG Kargo", "")],
    "IN": [("India Post", "Speed Post"), ("Delhivery", "Surface")],
    "AE": [("Emirates Post", ""), ("Aramex", "")],
    "JP": [("YAMATO", "宅急便"), ("Japan Post", "ゆうパック")],
    "AU": [("Australia Post", "Parcel Post")],
}
# Sales tax added on top in the US and Canada; elsewhere prices include VAT/GST (no TAX breakdown).
TAX_RATES = {
    "US": [Decimal("0"), Decimal("0.0625"), Decimal("0.08875"), Decimal("0.0725")],
    "CA": [Decimal("0.05"), Decimal("0.13"), Decimal("0.14975")],
}
INCLUDED_TAX = [Decimal("0")]
# Catalog prices are USD; each marketplace sells at a rounded local equivalent.
CURRENCY_FACTOR = {
    "USD": Decimal("1"),
    "CAD": Decimal("1.36"),
    "MXN": Decimal("17.1"),
    "BRL": Decimal("5.05"),
    "GBP": Decimal("0.79"),
    "EUR": Decimal("0.92"),
    "SEK": Decimal("10.6"),
    "PLN": Decimal("4.0"),
    "TRY": Decimal("32.5"),
    "EGP": Decimal("48.2"),
    "SAR": Decimal("3.75"),
    "AED": Decimal("3.67"),
    "INR": Decimal("83.3"),
    "ZAR": Decimal("18.6"),
    "SGD": Decimal("1.35"),
    "AUD": Decimal("1.52"),
    "JPY": Decimal("150"),
}

STATUS_WEIGHTS = [("UNSHIPPED", 70), ("PENDING", 10), ("SHIPPED", 12), ("CANCELLED", 8)]


def order_id(rng: random.Random, marketplace_id: str) -> str:
    prefix = {
        "ATVPDKIKX0DER": rng.choice(["111", "112", "113", "114"]),
        "A2EUQ1WTGCTBG2": rng.choice(["701", "702"]),
    }.get(marketplace_id, "250")
    return f"{prefix}-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}"


def _item_breakdowns(
    unit: Decimal, qty: int, shipping: Decimal, discount: Decimal, rate: Decimal, currency: str
) -> list[dict[str, Any]]:
    item_total = money(unit * qty, currency)
    item_tax = money((item_total - discount) * rate, currency)
    ship_tax = money(shipping * rate, currency)
    breakdowns: list[dict[str, Any]] = [{"type": "ITEM", "subtotal": money_obj(item_total, currency)}]
    if shipping:
        breakdowns.append({"type": "SHIPPING", "subtotal": money_obj(shipping, currency)})
    if item_tax or ship_tax:
        details = [{"subtype": "ITEM", "value": money_obj(item_tax, currency)}]
        if shipping:
            details.append({"subtype": "SHIPPING", "value": money_obj(ship_tax, currency)})
        breakdowns.append(
            {"type": "TAX", "subtotal": money_obj(item_tax + ship_tax, currency), "detailedBreakdowns": details}
        )
    if discount:
        breakdowns.append(
            {
                "type": "DISCOUNT",
                "subtotal": money_obj(-discount, currency),
                "detailedBreakdowns": [{"subtype": "ITEM", "value": money_obj(-discount, currency)}],
            }
        )
    return breakdowns


def recompute_proceeds(order: dict[str, Any]) -> None:
    """Set every item's ``proceedsTotal`` and the order's ``proceeds`` from item breakdowns."""
    currency = None
    per_type: dict[str, Decimal] = defaultdict(Decimal)
    grand = Decimal("0")
    for item in order["orderItems"]:
        proceeds = item.get("proceeds")
        if not proceeds:
            continue
        total = Decimal("0")
        for b in proceeds.get("breakdowns", []):
            amount = Decimal(b["subtotal"]["amount"])
            currency = b["subtotal"]["currencyCode"]
            total += amount
            per_type[b["type"]] += amount
        if currency:
            proceeds["proceedsTotal"] = money_obj(total, currency)
        grand += total
    if currency:
        order["proceeds"] = {
            "grandTotal": money_obj(grand, currency),
            "breakdowns": [{"type": t, "subtotal": money_obj(v, currency)} for t, v in per_type.items()],
        }


def _address(rng: random.Random, country: str, name: str, *, fba: bool) -> dict[str, Any]:
    line1, line2, city, state, postal = rng.choice(ADDRESSES[country])
    address: dict[str, Any] = {k: v for k, v in (("city", city), ("stateOrRegion", state), ("postalCode", postal)) if v}
    address["countryCode"] = country
    roll = rng.random()
    if fba and roll < 0.5:
        return address  # FBA orders often carry no name or street lines
    if roll < 0.1:
        address["companyName"] = rng.choice(COMPANIES)  # company-only address, no person
        address["addressType"] = "COMMERCIAL"
    else:
        address["name"] = name
        address["addressType"] = "RESIDENTIAL"
    address["addressLine1"] = line1
    if line2:
        address["addressLine2"] = line2
    address["phone"] = shapes.phone(rng, country)
    return address


def generate_order(
    rng: random.Random,
    now: float,
    *,
    marketplace_ids: list[str] | tuple[str, ...] = DEFAULT_MARKETPLACES,
    status: str | None = None,
    fulfilled_by: str | None = None,
    created_time: float | None = None,
    realism: Realism | str | dict[str, float] | None = None,
    earlier_ids: list[str] | None = None,
) -> dict[str, Any]:
    """One order in one of ``marketplace_ids`` (``status`` and ``fulfilled_by`` may be forced), with the
    shapes of ``realism`` (``shapes.Realism``, a preset name or rates; default ``compat``);
    ``earlier_ids`` are orders a replacement may point to."""
    marketplace_id = rng.choice(list(marketplace_ids))
    market = MARKETPLACES[marketplace_id]
    market_name, country, currency = market.name, market.country_code, market.currency
    status = status or rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
    fulfilled_by = fulfilled_by or ("AMAZON" if rng.random() < 0.2 else "MERCHANT")
    created = created_time if created_time is not None else now - rng.uniform(600, 3 * 86400)
    updated = min(
        now, created + (rng.uniform(60, 86400) if status in ("SHIPPED", "CANCELLED") else rng.uniform(0, 300))
    )
    programs = []
    if rng.random() < 0.3:
        programs.append("PRIME")
    business = rng.random() < 0.1
    if business:
        programs.append("AMAZON_BUSINESS")
    rate = rng.choice(TAX_RATES.get(country, INCLUDED_TAX))
    factor = CURRENCY_FACTOR[currency]
    promotion_id = f"PROMO-{rng.randrange(10**6):06d}" if rng.random() < 0.25 else None
    order: dict[str, Any] = {
        "orderId": order_id(rng, marketplace_id),
        "createdTime": iso(created),
        "lastUpdatedTime": iso(updated),
        "programs": programs,
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": marketplace_id, "marketplaceName": market_name},
        "fulfillment": {
            "fulfillmentStatus": status,
            "fulfilledBy": fulfilled_by,
            "fulfillmentServiceLevel": rng.choice(SERVICE_LEVELS),
            "shipByWindow": {"earliestDateTime": iso(created), "latestDateTime": iso(created + 2 * 86400)},
            "deliverByWindow": {
                "earliestDateTime": iso(created + 3 * 86400),
                "latestDateTime": iso(created + 7 * 86400),
            },
        },
        "orderItems": [],
    }
    name = rng.choice(NAMES)
    # buyer data exists from the start; it is hidden on output while the order is PENDING
    buyer: dict[str, Any] = {
        "buyerName": name,
        "buyerEmail": f"{rng.randrange(16**12):012x}@marketplace.{market.domain}",
    }
    if business:
        buyer["buyerCompanyName"] = rng.choice(COMPANIES)
        buyer["buyerPurchaseOrderNumber"] = f"PO-{rng.randrange(10**5):05d}"
    order["buyer"] = buyer
    order["recipient"] = {"deliveryAddress": _address(rng, country, name, fba=fulfilled_by == "AMAZON")}
    skus = rng.sample(CATALOG, rng.choice([1, 1, 1, 2, 2, 3, 4]))
    free_shipping = "PRIME" in programs or fulfilled_by == "AMAZON"
    for product in skus:
        qty = rng.choice([1, 1, 1, 2, 3])
        unit = money(product["price"] * factor, currency)
        shipping = Decimal("0") if free_shipping else money(Decimal("4.99") * factor, currency)
        discount = money(unit * qty * Decimal("0.10"), currency) if promotion_id else Decimal("0")
        item: dict[str, Any] = {
            "orderItemId": f"{rng.randrange(10**13, 10**14)}",
            "quantityOrdered": qty,
            "product": {
                "asin": _ASINS[product["sku"]],
                "title": product["name"],
                "sellerSku": product["sku"],
                "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                "price": {"unitPrice": money_obj(unit, currency)},
            },
            "proceeds": {"breakdowns": _item_breakdowns(unit, qty, shipping, discount, rate, currency)},
            "fulfillment": {"quantityFulfilled": 0, "quantityUnfulfilled": qty},
        }
        if business:
            item["product"]["price"]["priceDesignation"] = "BUSINESS_PRICE"
        if promotion_id:
            item["promotion"] = {"breakdowns": [{"promotionId": promotion_id}]}
        order["orderItems"].append(item)
    recompute_proceeds(order)
    if status == "SHIPPED":
        carrier, service = rng.choice(LOCAL_CARRIERS.get(country, CARRIERS))
        for item in order["orderItems"]:
            item["fulfillment"] = {"quantityFulfilled": item["quantityOrdered"], "quantityUnfulfilled": 0}
        order["packages"] = [
            {
                "packageReferenceId": "1",
                "createdTime": iso(updated),
                "packageStatus": {"status": "SHIPPED"},
                "carrier": carrier,
                "shipTime": iso(updated),
                **({"shippingService": service} if service else {}),
                "trackingNumber": f"1Z{rng.randrange(16**14):014X}",
                "packageItems": [
                    {"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]} for i in order["orderItems"]
                ],
            }
        ]
    elif status == "CANCELLED":
        reason = rng.choice(["BuyerCanceled", "NoInventory", "CustomerExchange"])
        by = "BUYER" if reason == "BuyerCanceled" else rng.choice(["MERCHANT", "AMAZON"])
        for item in order["orderItems"]:
            item["cancellation"] = {"cancellationExecution": {"cancelledBy": by, "cancelReason": reason}}
    if shapes.apply(
        order,
        Realism.resolve(realism),
        shapes.shape_rng(order["orderId"]),
        market,
        business=business,
        gift_wrap_price=money(Decimal("3.99") * factor, currency),
        earlier_ids=earlier_ids,
    ):
        recompute_proceeds(order)
    return order


def generate_orders(seed: int, count: int, now: float, **kwargs: Any) -> list[dict[str, Any]]:
    """``count`` orders from ``seed`` (ids unique within the batch; a replacement points to an earlier
    order of the batch). ``kwargs``: those of :func:`generate_order` except ``earlier_ids``."""
    rng = random.Random(seed)
    orders: dict[str, dict[str, Any]] = {}
    while len(orders) < count:
        order = generate_order(rng, now, earlier_ids=list(orders), **kwargs)
        orders.setdefault(order["orderId"], order)
    return list(orders.values())
