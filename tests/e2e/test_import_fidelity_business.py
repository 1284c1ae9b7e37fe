"""Amazon programs end to end (dag.test() against both sandboxes): Amazon Business orders invoiced by Amazon,
marketplace facilitator tax, Prime deadlines, gift wrap, replacement orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sandboxes.amazon.generator import recompute_proceeds
from sandboxes.amazon.shapes import IBA_BUYER_NAME
from tests.store_queries import audit_entries

pytestmark = pytest.mark.e2e

US = "ATVPDKIKX0DER"
DE = "A1PA6795UKMFR9"
IBA_EMAIL = "no-reply-amazon-iba-buyer@marketplace.amazon.de"


def D(value) -> Decimal:  # noqa: N802 - the Commerce sandbox answers JSON numbers
    return Decimal(str(value))


def assert_success(states):
    failed = {k: v for k, v in states.items() if v not in ("success", "skipped")}
    assert not failed, failed


def comments(commerce_order) -> list[str]:
    return [h["comment"] for h in commerce_order.get("status_histories") or []]


def customers(channel) -> list[dict]:
    state = channel.commerce("GET", "/_sandbox/state")
    found = state.get("customers") or {}
    return list(found.values()) if isinstance(found, dict) else list(found)


def iba_order(order, index: int) -> dict:
    """An Amazon Business order invoiced by Amazon: Amazon's placeholder buyer, the real company in the address."""
    company = f"Muster GmbH {index}"
    order["programs"] = ["AMAZON_BUSINESS", "INVOICE_BY_AMAZON"]
    order["buyer"] = {
        "buyerName": IBA_BUYER_NAME,
        "buyerEmail": IBA_EMAIL,
        "buyerCompanyName": company,
        "buyerPurchaseOrderNumber": f"PO-77{index}",
    }
    address = order["recipient"]["deliveryAddress"]
    address.update(name=f"Erika Muster{index}", companyName=company, addressLine1=f"Hauptstraße {index}")
    order["tax"] = {
        "taxRegistrations": [
            {
                "entityType": "BUYER",
                "taxRegistrationType": "VAT",
                "legalName": company,
                "taxRegistrationNumber": f"DE12345678{index}",
            }
        ]
    }
    return order


@pytest.fixture
def amazon_de(channel, monkeypatch):
    """The channel selling on Amazon.de: the sandbox seller there too, through the EU endpoint (own connection)."""
    import json

    from airflow.sdk import BaseHook

    from sandboxes.amazon.config import DEFAULT_SELLER_ID

    channel.amazon("POST", "/_sandbox/sellers", json={"sellerId": DEFAULT_SELLER_ID, "marketplaceIds": [US, DE]})
    amazon = json.loads(BaseHook.get_connection("amazon_sp_api").as_json())
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_SP_API_EU", json.dumps({**amazon, "host": amazon["host"] + "/eu"}))
    channel.configure(marketplace_ids=[DE], amazon_conn_id="amazon_sp_api_eu", customer_creation="create_account")
    return channel


def test_business_orders_invoiced_by_amazon_become_guest_orders(amazon_de):
    channel = amazon_de
    orders = channel.generated_orders(3, seed=51, status="UNSHIPPED", fulfilled_by="MERCHANT", marketplace_ids=[DE])
    first, second, ordinary = iba_order(orders[0], 1), iba_order(orders[1], 2), orders[2]
    channel.load_amazon_orders(orders)
    assert_success(channel.run_dag("amazon_order_import"))

    by_id = channel.commerce_orders_by_amazon_id()
    for index, order in ((1, first), (2, second)):
        [commerce] = by_id[order["orderId"]]
        assert commerce["customer_is_guest"] == 1 and not commerce.get("customer_id")
        assert (commerce["customer_firstname"], commerce["customer_lastname"]) == ("Erika", f"Muster{index}")
        assert commerce["billing_address"]["company"] == f"Muster GmbH {index}"
        assert commerce["billing_address"]["vat_id"] == commerce["customer_taxvat"] == f"DE12345678{index}"
        assert commerce["payment"]["po_number"] == f"PO-77{index}"
        [note] = [c for c in comments(commerce) if c.startswith("Amazon Business order.")]
        assert f"Purchase order number: PO-77{index}." in note and "Invoiced by Amazon" in note
    # the placeholder e-mail never became a customer; an ordinary buyer still does
    emails = {c["email"] for c in customers(channel)}
    assert IBA_EMAIL not in emails
    assert ordinary["buyer"]["buyerEmail"] in emails
    [commerce] = by_id[ordinary["orderId"]]
    assert commerce["customer_is_guest"] == 0 and commerce["customer_id"]


def taxed_us_order(channel, seed: int) -> dict:
    """A merchant-fulfilled US order with sales tax, Prime, Amazon collecting the tax, a paid gift wrap."""
    candidates = channel.generated_orders(
        8, seed=seed, status="UNSHIPPED", fulfilled_by="MERCHANT", marketplace_ids=[US]
    )
    order = next(
        o
        for o in candidates
        if all(any(b["type"] == "TAX" for b in i["proceeds"]["breakdowns"]) for i in o["orderItems"])
    )
    order["programs"] = ["PRIME"]
    for item in order["orderItems"]:
        item["tax"] = {"taxCollections": [{"model": "MARKETPLACE_FACILITATOR", "responsibleParty": ""}]}
    first = order["orderItems"][0]
    first["fulfillment"]["packing"] = {"giftOption": {"giftMessage": "Alles Gute!", "giftWrapLevel": "PREMIUM"}}
    breakdowns = first["proceeds"]["breakdowns"]
    breakdowns.append({"type": "GIFT_WRAP", "subtotal": {"amount": "3.99", "currencyCode": "USD"}})
    [tax] = [b for b in breakdowns if b["type"] == "TAX"]
    tax["detailedBreakdowns"].append({"subtype": "GIFT_WRAP", "value": {"amount": "0.29", "currencyCode": "USD"}})
    tax["subtotal"]["amount"] = str(D(tax["subtotal"]["amount"]) + D("0.29"))
    recompute_proceeds(order)
    return order


def amazon_tax(order) -> Decimal:
    return sum(
        (
            D(b["subtotal"]["amount"])
            for i in order["orderItems"]
            for b in i["proceeds"]["breakdowns"]
            if b["type"] == "TAX"
        ),
        D(0),
    )


@pytest.mark.parametrize("facilitator_tax", ["include", "exclude"])
def test_facilitator_tax_prime_gift_wrap_and_replacement(channel, facilitator_tax):
    channel.configure(marketplace_ids=[US], marketplace_facilitator_tax=facilitator_tax)
    order = taxed_us_order(channel, seed=61)
    amazon_total, tax = D(order["proceeds"]["grandTotal"]["amount"]), amazon_tax(order)
    assert tax > 0
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))

    [commerce] = channel.commerce_orders_by_amazon_id()[order["orderId"]]
    expected = amazon_total - tax if facilitator_tax == "exclude" else amazon_total
    assert D(commerce["grand_total"]) == expected
    assert D(commerce["tax_amount"]) == (0 if facilitator_tax == "exclude" else tax)
    # invoiced on import: the invoice (Magento's collectors: items, shipping, tax) is the whole order
    assert D(commerce["total_paid"]) == expected and D(commerce["total_due"]) == 0
    assert D(commerce["adjustment_positive"]) == 0  # gift wrap is shipping & handling, not an adjustment
    assert commerce["shipping_description"].endswith("+ gift wrap")
    notes = " ".join(comments(commerce))
    assert "Alles Gute!" in notes and "gift wrap PREMIUM" in notes
    assert "Prime; Ship by " + order["fulfillment"]["shipByWindow"]["latestDateTime"] in notes
    info = commerce["payment"]["additional_information"]
    assert "Programs PRIME" in info and f"Ship by {order['fulfillment']['shipByWindow']['latestDateTime']}" in info
    [created] = audit_entries(channel.store, order["orderId"], "order_created")
    if facilitator_tax == "exclude":
        assert f"Tax of {tax:.2f} USD collected and remitted by Amazon" in notes
        assert D(created["detail"]["marketplace_facilitator_tax_excluded"]) == tax
    else:
        assert f"Tax of {tax:.2f} USD on this order was collected by Amazon" in notes
        assert "marketplace_facilitator_tax_excluded" not in created["detail"]

    # a zero-priced replacement of it, later: created, linked to the original in both systems
    [replacement] = channel.generated_orders(
        1, seed=62, status="UNSHIPPED", fulfilled_by="MERCHANT", marketplace_ids=[US]
    )
    replacement["associatedOrders"] = [{"orderId": order["orderId"], "associationType": "REPLACEMENT_ORIGINAL_ID"}]
    for item in replacement["orderItems"]:
        item["proceeds"]["breakdowns"] = [{"type": "ITEM", "subtotal": {"amount": "0.00", "currencyCode": "USD"}}]
        item["product"]["price"]["unitPrice"]["amount"] = "0.00"
        item.pop("promotion", None)
    recompute_proceeds(replacement)
    # placed after the first run's window: past Amazon's 2-minute rule, inside the next run's
    replacement["lastUpdatedTime"] = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    channel.load_amazon_orders([replacement])
    assert_success(channel.run_dag("amazon_order_import"))
    [copy] = channel.commerce_orders_by_amazon_id()[replacement["orderId"]]
    assert D(copy["grand_total"]) == 0
    assert (
        f"Amazon replacement order for Amazon order {order['orderId']} (Commerce order #{commerce['increment_id']})."
        in comments(copy)
    )


def test_replacements_are_skipped_when_not_imported(channel):
    channel.configure(marketplace_ids=[US], import_replacement_orders=False)
    [order] = channel.generated_orders(1, seed=71, status="UNSHIPPED", fulfilled_by="MERCHANT", marketplace_ids=[US])
    order["associatedOrders"] = [{"orderId": "111-0000000-0000001", "associationType": "EXCHANGE_ORIGINAL_ID"}]
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))
    assert order["orderId"] not in channel.commerce_orders_by_amazon_id()
    row = channel.store.orders.get(order["orderId"])
    assert row["sync_status"] == "not_eligible"
    assert row["sync_reason"] == (
        "exchange of Amazon order 111-0000000-0000001: not imported (import_replacement_orders is false)"
    )
