"""Every Amazon marketplace, and the three selling regions each served on its own base URL."""

from __future__ import annotations

import pytest
import requests
from amazon_helpers import FEEDS_MODEL, LONG_AGO, ORDERS_MODEL, ORDERS_V0, Amz, make_order, serve
from test_amazon_feeds import ack, envelope

from sandboxes.amazon.__main__ import parse_args
from sandboxes.amazon.config import AmazonSandboxConfig
from sandboxes.amazon.marketplaces import MARKETPLACES, in_region, minor_units, region_of
from sandboxes.swagger import validate

US, BR, DE, TR, IN, AE, JP = (
    "ATVPDKIKX0DER",
    "A2Q3Y263D00KWC",
    "A1PA6795UKMFR9",
    "A33AVAJ2PDY3EV",
    "A21TJRUUN4KGV",
    "A2VIGQ35RCS4UG",
    "A1VC38T7YXB528",
)
WORLD = [US, BR, DE, TR, IN, AE, JP]
ORDERS = {
    US: "113-0000001-0000001",
    BR: "701-0000001-0000002",
    DE: "302-0000001-0000003",
    TR: "402-0000001-0000004",
    IN: "404-0000001-0000005",
    AE: "406-0000001-0000006",
    JP: "503-0000001-0000007",
}


def test_amazon_marketplace_table():
    assert len(MARKETPLACES) == 23
    assert {r: len(in_region(r)) for r in ("NA", "EU", "FE")} == {"NA": 4, "EU": 16, "FE": 3}
    assert (region_of(BR), region_of(TR), region_of(IN), region_of(AE), region_of(JP)) == ("NA", "EU", "EU", "EU", "FE")
    gb = MARKETPLACES["A1F83G8C2ARO7P"]
    assert (gb.country_code, gb.amazon_country_code, gb.currency, gb.name) == ("GB", "UK", "GBP", "Amazon.co.uk")
    assert {MARKETPLACES[m].currency for m in WORLD} == {"USD", "BRL", "EUR", "TRY", "INR", "AED", "JPY"}
    assert (minor_units("JPY"), minor_units("BRL")) == (0, 2)
    assert region_of("NOTAMARKETPLACE") is None


def test_config_refuses_unknown_region_and_marketplace():
    with pytest.raises(ValueError, match="region"):
        AmazonSandboxConfig(region="ASIA")
    with pytest.raises(ValueError, match="unknown marketplace"):
        AmazonSandboxConfig(sellers=[{"seller_id": "S", "refresh_token": "t", "marketplace_ids": ["XX"]}])
    assert AmazonSandboxConfig(region="eu").region == "EU"


@pytest.fixture
def world():
    """A seller in seven marketplaces of the three regions, one order in each."""
    config = AmazonSandboxConfig(
        speed=100,
        sellers=[{"seller_id": "A2SANDBOXSELLER1", "refresh_token": "sandbox-refresh-token", "marketplace_ids": WORLD}],
    )
    with serve(config) as (base, app):
        amz = Amz(base, app)
        amz.load(*[make_order(oid, marketplace=m) for m, oid in ORDERS.items()])
        yield amz


def _ids(response) -> set[str]:
    assert response.status_code == 200, response.text
    validate(ORDERS_MODEL, "SearchOrdersResponse", response.json())
    return {o["orderId"] for o in response.json()["orders"]}


def test_each_region_serves_its_own_marketplaces(world):
    amz = world
    assert _ids(amz.search(lastUpdatedAfter=LONG_AGO)) == {ORDERS[US], ORDERS[BR]}  # root = NA by default
    assert _ids(amz.get("/na/orders/2026-01-01/orders", params={"lastUpdatedAfter": LONG_AGO})) == {
        ORDERS[US],
        ORDERS[BR],
    }
    # one searchOrders call for all of a region's marketplaces (marketplaceIds takes a list)
    eu = amz.get(
        "/eu/orders/2026-01-01/orders", params={"lastUpdatedAfter": LONG_AGO, "marketplaceIds": f"{DE},{TR},{IN},{AE}"}
    )
    assert _ids(eu) == {ORDERS[m] for m in (DE, TR, IN, AE)}
    assert _ids(amz.get("/fe/orders/2026-01-01/orders", params={"lastUpdatedAfter": LONG_AGO})) == {ORDERS[JP]}
    assert amz.get(f"/eu/orders/2026-01-01/orders/{ORDERS[DE]}").status_code == 200
    assert amz.get(f"/orders/2026-01-01/orders/{ORDERS[DE]}").status_code == 404  # not on the NA endpoint
    assert amz.get(f"/fe/orders/2026-01-01/orders/{ORDERS[US]}").status_code == 404


def test_marketplace_of_another_region_is_refused_as_amazon_does(world):
    amz = world
    r = amz.search(lastUpdatedAfter=LONG_AGO, marketplaceIds=f"{US},{DE}")
    assert r.status_code == 403
    validate(ORDERS_MODEL, "ErrorList", r.json())
    assert r.json()["errors"][0] == {
        "code": "Unauthorized",
        "message": "Access to requested resource is denied.",
        "details": "The marketplaces you provided are not valid for region.",
    }
    unknown = amz.search(lastUpdatedAfter=LONG_AGO, marketplaceIds="NOTAMARKETPLACE")
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["code"] == "InvalidInput"
    # confirmShipment naming a European marketplace on the NA endpoint
    item = amz.admin("GET", f"/orders/{ORDERS[US]}").json()["order"]["orderItems"][0]["orderItemId"]
    body = {
        "marketplaceId": DE,
        "packageDetail": {
            "packageReferenceId": "1",
            "carrierCode": "UPS",
            "trackingNumber": "1Z1",
            "shipDate": "2026-01-02T10:00:00Z",
            "orderItems": [{"orderItemId": item, "quantity": 1}],
        },
    }
    refused = amz.post(f"/orders/v0/orders/{ORDERS[US]}/shipmentConfirmation", json=body)
    assert refused.status_code == 403
    validate(ORDERS_V0, "ConfirmShipmentErrorResponse", refused.json())
    # createFeed naming a marketplace of another region
    doc = amz.post("/feeds/2021-06-30/documents", json={"contentType": "text/xml"}).json()
    feed = amz.post(
        "/feeds/2021-06-30/feeds",
        json={
            "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
            "marketplaceIds": [JP],
            "inputFeedDocumentId": doc["feedDocumentId"],
        },
    )
    assert feed.status_code == 403
    validate(FEEDS_MODEL, "ErrorList", feed.json())


def test_feeds_belong_to_the_region_they_were_created_in(world):
    amz = world
    content = envelope("OrderAcknowledgement", ack(ORDERS[DE], "Success"), ack(ORDERS[US], "Success"))
    doc = amz.post("/eu/feeds/2021-06-30/documents", json={"contentType": "text/xml"}).json()
    assert requests.put(doc["url"], data=content, headers={"Content-Type": "text/xml"}, timeout=5).ok
    created = amz.post(
        "/eu/feeds/2021-06-30/feeds",
        json={
            "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
            "marketplaceIds": [DE],
            "inputFeedDocumentId": doc["feedDocumentId"],
        },
    )
    assert created.status_code == 202, created.text
    feed_id = created.json()["feedId"]
    assert amz.get(f"/feeds/2021-06-30/feeds/{feed_id}").status_code == 404  # not an NA feed
    amz.admin("POST", f"/feeds/{feed_id}/complete")
    feed = amz.get(f"/eu/feeds/2021-06-30/feeds/{feed_id}").json()
    assert feed["processingStatus"] == "DONE"
    [result] = amz.admin("GET", "/feeds").json()["feeds"][0]["results"]
    assert result["messageId"] == "2" and "not found" in result["description"]  # the US order is not in the EU


def test_rate_limit_buckets_are_per_region(world):
    amz = world
    codes = [amz.search(lastUpdatedAfter=LONG_AGO).status_code for _ in range(21)]
    assert codes[:20] == [200] * 20 and codes[20] == 429
    assert amz.get("/eu/orders/2026-01-01/orders", params={"lastUpdatedAfter": LONG_AGO}).status_code == 200


def test_finances_v0_events_per_region(world):
    amz = world
    for m in (US, DE):
        assert amz.admin("POST", f"/orders/{ORDERS[m]}/events", json={"type": "ship"}).ok
    na = amz.get(f"/finances/v0/orders/{ORDERS[DE]}/financialEvents").json()["payload"]["FinancialEvents"]
    eu = amz.get(f"/eu/finances/v0/orders/{ORDERS[DE]}/financialEvents").json()["payload"]["FinancialEvents"]
    assert na["ShipmentEventList"] == [] and len(eu["ShipmentEventList"]) == 1
    assert eu["ShipmentEventList"][0]["MarketplaceName"] == "Amazon.de"


def test_unknown_route_answers_as_amazons_gateway(amz):
    r = amz.get("/orders/v1/nothing")
    assert r.status_code == 404
    assert r.json() == {"errors": [{"code": "ResourceNotFound", "message": "Cannot find resource by the given URI"}]}


def test_sellers_route_adds_marketplaces_of_any_region(amz):
    r = amz.admin("POST", "/sellers", json={"sellerId": "A2SANDBOXSELLER1", "marketplaceIds": [US, BR, TR, IN, AE]})
    assert r.status_code == 200, r.text
    amz.load(make_order(ORDERS[TR], marketplace=TR))
    assert _ids(amz.get("/eu/orders/2026-01-01/orders", params={"lastUpdatedAfter": LONG_AGO})) == {ORDERS[TR]}
    assert (
        amz.admin("POST", "/sellers", json={"sellerId": "A2SANDBOXSELLER1", "marketplaceIds": ["XX"]}).status_code
        == 400
    )
    assert amz.admin("POST", "/sellers", json={"sellerId": "NEW", "marketplaceIds": [US]}).status_code == 400


def test_cli_marketplaces_and_region(monkeypatch):
    monkeypatch.setenv("AMAZON_SANDBOX_MARKETPLACES", f"{BR},{TR}")
    args = parse_args(["--region", "eu", "--finances-v0-removed"])
    assert (args.marketplaces, args.region, args.finances_v0_removed) == (f"{BR},{TR}", "EU", True)
