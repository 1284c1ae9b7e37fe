"""Feed XML we build is what Amazon's parser (the sandbox's) reads; reports we parse are Amazon's shape."""

from __future__ import annotations

from decimal import Decimal

import pytest

from amazon_commerce_sync import feeds
from sandboxes.amazon.feedxml import parse_feed, processing_report


def test_cancellation_feed_round_trips():
    content = feeds.envelope(
        "OrderAcknowledgement",
        "A2SANDBOXSELLER1",
        [feeds.cancellation_message(1, "113-1234567-1234567", ["111", "222"], "NoInventory", "000000042")],
    )
    merchant, messages = parse_feed(content, feeds.ORDER_ACKNOWLEDGEMENT)
    assert merchant == "A2SANDBOXSELLER1"
    [message] = messages
    assert str(message)  # parsed into a structure
    text = content.decode()
    assert "<StatusCode>Failure</StatusCode>" in text and text.count("<CancelReason>NoInventory") == 2
    with pytest.raises(ValueError, match="CancelReason"):
        feeds.cancellation_message(1, "113-1234567-1234567", ["1"], "Because")


def test_adjustment_feed_amounts_are_exact():
    item = feeds.AdjustedItem(
        "111", "cm-7-1", "CustomerReturn", {"Principal": Decimal("10.1"), "Tax": Decimal("0.8")}, "USD", 1
    )
    content = feeds.envelope("OrderAdjustment", "M", [feeds.adjustment_message(3, "113-1234567-1234567", [item])])
    _, [message] = parse_feed(content, feeds.PAYMENT_ADJUSTMENT)
    text = content.decode()
    assert '<Amount currency="USD">10.10</Amount>' in text and '<Amount currency="USD">0.80</Amount>' in text
    assert "<MerchantAdjustmentItemID>cm-7-1</MerchantAdjustmentItemID>" in text
    assert message


def test_processing_report_errors_per_message():
    report = processing_report(
        "F1",
        "M",
        [
            {
                "messageId": 2,
                "resultCode": "Error",
                "resultMessageCode": "18000",
                "description": "Order is shipped",
                "amazonOrderId": "113-1234567-1234567",
            }
        ],
        processed=3,
    )
    parsed = feeds.parse_processing_report(report)
    assert parsed.processed == 3
    assert list(parsed.errors_by_message()) == [2]
    assert parsed.errors_by_message()[2][0].amazon_order_id == "113-1234567-1234567"
    with pytest.raises(ValueError):
        feeds.parse_processing_report(b"<Other/>")
