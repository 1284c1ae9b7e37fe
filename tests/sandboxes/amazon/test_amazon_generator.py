"""The generator and live mode: orders of every marketplace, with the shapes real orders come in."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from decimal import Decimal

import pytest
from amazon_helpers import ORDERS_MODEL, make_order

from sandboxes.amazon.generator import generate_orders
from sandboxes.amazon.live import live_step
from sandboxes.amazon.marketplaces import MARKETPLACES, minor_units
from sandboxes.amazon.shapes import COMPAT, IBA_BUYER_NAME, REALISTIC, Realism
from sandboxes.swagger import validate

NOW = 1_780_000_000.0
EVERYWHERE = list(MARKETPLACES)


def sample(realism, seeds=range(40), count=12, **kw) -> list[dict]:
    return [o for seed in seeds for o in generate_orders(seed, count, NOW, realism=realism, **kw)]


@pytest.mark.parametrize("realism", ["compat", "realistic"])
def test_every_marketplace_valid_and_adding_up(realism):
    orders = sample(realism, marketplace_ids=EVERYWHERE)
    assert orders == sample(realism, marketplace_ids=EVERYWHERE)  # deterministic by seed
    seen = set()
    for order in orders:
        validate(ORDERS_MODEL, "Order", order)
        market = MARKETPLACES[order["salesChannel"]["marketplaceId"]]
        seen.add(market.marketplace_id)
        grand = order["proceeds"]["grandTotal"]
        assert grand["currencyCode"] == market.currency
        assert Decimal(grand["amount"]) == sum(
            Decimal(i["proceeds"]["proceedsTotal"]["amount"]) for i in order["orderItems"]
        )
        for item in order["orderItems"]:
            for b in item["proceeds"]["breakdowns"]:
                assert -Decimal(b["subtotal"]["amount"]).as_tuple().exponent == minor_units(market.currency)
            if market.country_code not in ("US", "CA"):
                assert "TAX" not in {b["type"] for b in item["proceeds"]["breakdowns"]}  # VAT included
        address = order.get("recipient", {}).get("deliveryAddress")
        if address:
            assert address["countryCode"] == market.country_code
    assert seen == set(EVERYWHERE)


def test_shapes_do_not_change_the_base_orders_of_a_seed():
    compat, realistic = sample("compat", seeds=range(10)), sample("realistic", seeds=range(10))
    assert [(o["orderId"], o["createdTime"], o["fulfillment"]["fulfilledBy"]) for o in compat] == [
        (o["orderId"], o["createdTime"], o["fulfillment"]["fulfilledBy"]) for o in realistic
    ]


def test_realistic_shapes_at_their_rates():
    orders = sample("realistic", seeds=range(120), marketplace_ids=EVERYWHERE)
    n = len(orders)
    fba = [o for o in orders if o["fulfillment"]["fulfilledBy"] == "AMAZON"]
    assert fba and not any("packages" in o for o in fba)  # Amazon shows no packages for FBA orders
    assert not any("buyerEmail" in o.get("buyer", {}) for o in fba)
    assert 0.3 < sum("buyer" not in o for o in fba) / len(fba) < 0.7
    assert not any("phone" in o["recipient"]["deliveryAddress"] for o in fba)
    partial = [
        o for o in fba if set(o["recipient"]["deliveryAddress"]) <= {"stateOrRegion", "postalCode", "countryCode"}
    ]
    assert len(partial) / len(fba) > 0.5
    shipped_fbm = [
        o
        for o in orders
        if o["fulfillment"]["fulfilledBy"] == "MERCHANT" and o["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    ]
    assert 0 < sum("packages" not in o for o in shipped_fbm) < len(shipped_fbm)  # Seller Central, no packages
    programs = Counter(p for o in orders for p in o.get("programs", []))
    assert {"PRIME", "AMAZON_BUSINESS", "INVOICE_BY_AMAZON", "PREMIUM", "PREORDER"} <= set(programs)
    assert 0.2 < programs["PRIME"] / n < 0.4
    for order in orders:
        if "PREORDER" in order["programs"]:
            assert order["fulfillment"]["fulfillmentStatus"] != "PENDING"
        if "INVOICE_BY_AMAZON" in order["programs"] and order["fulfillment"]["fulfilledBy"] == "MERCHANT":
            domain = MARKETPLACES[order["salesChannel"]["marketplaceId"]].domain
            assert order["buyer"]["buyerName"] == IBA_BUYER_NAME
            assert order["buyer"]["buyerEmail"] == f"no-reply-amazon-iba-buyer@marketplace.{domain}"
            assert order["buyer"]["buyerPurchaseOrderNumber"]
    replacements = [o for o in orders if o.get("associatedOrders")]
    ids = {o["orderId"] for o in orders}
    assert replacements and all(
        o["associatedOrders"][0]["associationType"] == "REPLACEMENT_ORIGINAL_ID"
        and o["associatedOrders"][0]["orderId"] in ids
        and Decimal(o["proceeds"]["grandTotal"]["amount"]) == 0
        for o in replacements
    )
    items = [(o, i) for o in orders for i in o["orderItems"]]
    collections = [c for _, i in items for c in i.get("tax", {}).get("taxCollections", [])]
    assert {c["model"] for c in collections} == {"MARKETPLACE_FACILITATOR"}
    assert "" in {c["responsibleParty"] for c in collections}
    assert {"UOSS", "IOSS"} <= {
        b["reportingScheme"] for _, i in items for b in i.get("tax", {}).get("taxCalculationBreakdowns", [])
    }
    gifts = [i for _, i in items if i.get("fulfillment", {}).get("packing", {}).get("giftOption")]
    assert gifts and any("GIFT_WRAP" in {b["type"] for b in i["proceeds"]["breakdowns"]} for i in gifts)
    registrations = Counter(
        (MARKETPLACES[o["salesChannel"]["marketplaceId"]].country_code, r["taxRegistrationType"])
        for o in orders
        for r in o.get("tax", {}).get("taxRegistrations", [])
    )
    assert registrations[("BR", "CPF")] and registrations[("BR", "CNPJ")]
    assert any(kind == "VAT" and country in ("DE", "GB", "FR", "IT", "ES") for country, kind in registrations)
    assert any(o.get("tax", {}).get("taxInvoicing", {}).get("buyerInvoicePreference") for o in orders)
    addresses = [o["recipient"]["deliveryAddress"] for o in orders if o.get("recipient")]
    north_america = sample("realistic", seeds=range(30), marketplace_ids=["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"])
    states = {a.get("stateOrRegion") for a in addresses} | {
        o["recipient"]["deliveryAddress"].get("stateOrRegion") for o in north_america
    }
    assert {"WA", "PR", "californiA", "Québec", "Nordrhein-Westfalen", "東京都"} <= states
    assert all("city" not in a for a in addresses if a["countryCode"] == "JP")
    assert all("postalCode" not in a for a in addresses if a["countryCode"] == "AE")
    assert all("extendedFields" in a for a in addresses if a["countryCode"] == "BR" and "addressLine1" in a)


def test_rates_are_configurable():
    assert Realism.resolve("compat") is COMPAT and Realism.resolve({"gift": 0.0}).fba_packages == 0.0
    with_packages = Realism.resolve({"preset": "realistic", "fba_packages": 1.0})
    shipped_fba = sample(with_packages, seeds=range(20), status="SHIPPED", fulfilled_by="AMAZON")
    assert all("packages" in o for o in shipped_fba)
    assert not any(
        i.get("fulfillment", {}).get("packing") for o in sample({"gift": 0.0}, seeds=range(20)) for i in o["orderItems"]
    )
    compat = sample("compat", seeds=range(20), status="SHIPPED", fulfilled_by="AMAZON")
    assert not any("packages" in o for o in compat)  # FBA orders without packages, as Amazon shows them
    assert COMPAT.gift_wrap_charge == REALISTIC.gift_wrap_charge  # paid gift wrap: handled, so realistic
    assert not any("buyerEmail" in o.get("buyer", {}) for o in compat)  # the other FBA shapes are Amazon's
    for bad in ({"gift": 2.0}, {"nonsense": 0.1}, "fancy", {"preset": "fancy"}):
        with pytest.raises(ValueError):
            Realism.resolve(bad)
    assert dataclasses.asdict(REALISTIC).keys() == dataclasses.asdict(COMPAT).keys()


def test_generate_route_takes_a_realism(amz):
    r = amz.admin(
        "POST",
        "/orders/generate",
        json={"count": 30, "seed": 5, "fulfilledBy": "AMAZON", "status": "SHIPPED", "realism": "realistic"},
    )
    assert r.status_code == 200, r.text
    orders = amz.admin("GET", "/orders").json()["orders"]
    assert len(orders) == 30 and not any("packages" in o for o in orders)
    assert amz.admin("POST", "/orders/generate", json={"realism": {"gift": 7}}).status_code == 400


def test_live_mode_is_realistic(amz):
    state = amz.state
    state.config.realism = "realistic"
    state.config.live_events = 30
    amz.load(*[make_order(f"113-0000001-000000{n}", fulfilled_by="AMAZON") for n in range(1, 6)])
    rng = random.Random(9)
    for _ in range(5):
        live_step(state, rng)
    fba = [
        r["order"]
        for r in state.orders.values()
        if r["order"]["fulfillment"]["fulfilledBy"] == "AMAZON"
        and r["order"]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    ]
    assert fba and not any(o.get("packages") for o in fba)
    for record in state.orders.values():
        validate(ORDERS_MODEL, "Order", record["order"])
