"""The sentences task logs end with (summaries.py): counts as a person reads them, never a Python dict."""

from __future__ import annotations

from amazon_commerce_sync import summaries


def test_import_sentence_names_the_not_eligible_reasons():
    load = {
        "account": "acct-us",
        "created": 13,
        "not_eligible": 4,
        "not_eligible_reasons": {"placed before import_orders_after": 1, "cancelled before import": 3},
        "on_hold": 1,
        "quarantined": 0,
        "on_hold_for_buyer_cancellation": ["111-0000001-0000001"],
    }
    assert summaries.import_sentence(load) == (
        "13 created, 4 not eligible (3 cancelled before import, 1 placed before import_orders_after), "
        "1 on hold for a buyer's cancellation request"
    )


def test_unknown_counters_are_named_and_nothing_reads_nothing_to_do():
    assert summaries.import_sentence({"created": 2, "busy_elsewhere": 1, "skipped_replacement": 1}) == (
        "2 created, 1 busy in another run, 1 skipped replacement"
    )
    assert summaries.import_sentence({"account": "a", "created": 0, "on_hold_for_buyer_cancellation": []}) == (
        "nothing to do"
    )
    assert summaries.sentence({"dry_run": True, "n": 1}) == "1 n"  # booleans are not counts


def test_shipment_and_refund_sentences():
    assert summaries.shipment_sentence(
        {"account": "a", "confirmed": 3, "rejected": 1, "waiting": 2, "mirrored": 0, "mismatches": 0}
    ) == ("3 confirmed on Amazon, 1 rejected, 2 waiting for their order")
    assert summaries.refund_sentence({"sent": 4, "feed": 1, "accepted": 0, "refund_check_today": {"x": 1}}) == (
        "4 adjustments sent to Amazon, 1 feed submitted"
    )
    assert summaries.refund_sentence({"sent": 1, "feeds_open": 2}) == (
        "1 adjustment sent to Amazon, 2 feeds still processing"
    )


def test_cancel_and_monitor_sentences():
    assert summaries.cancel_sentence({"cancelled": 1, "shipped": 1}) == (
        "2 orders: 1 cancelled on both sides, 1 shipped (issue a refund instead)"
    )
    assert summaries.cancel_sentence({"would_cancel": 1}, dry_run=True) == (
        "1 order (dry run): 1 would be cancelled (dry run)"
    )
    # What the cancellation's classify step logs per account before Amazon confirms (no Python dict).
    assert summaries.cancel_sentence({"requested": 2, "shipped": 1}) == (
        "3 orders: 2 sent to Amazon (not confirmed yet), 1 shipped (issue a refund instead)"
    )
    assert summaries.monitor_sentence({"firing": [], "sent": [], "repeat_suppressed": []}) == (
        "all quiet: no alert firing"
    )
    assert summaries.monitor_sentence({"firing": ["a", "b"], "sent": ["a"], "repeat_suppressed": ["b"]}) == (
        "2 alerts firing: 1 sent, 1 already sent within alert_repeat_minutes"
    )


def test_rate_limit_table_rounds_and_aligns():
    table = summaries.rate_limit_table(
        {
            "searchOrders": {"server_rate": 0.016666666666, "client_rate": 0.0166666, "burst": 20.0},
            "confirmShipment": {"server_rate": None, "client_rate": 2.0, "burst": 10.0},
        }
    )
    lines = table.splitlines()
    assert lines[0].split() == ["operation", "Amazon", "/s", "ours", "/s", "burst"]
    assert lines[1].split() == ["confirmShipment", "-", "2", "10"]
    assert lines[2].split() == ["searchOrders", "0.0167", "0.0167", "20"]
    assert len({len(line) for line in lines}) == 1  # columns line up
    assert "{" not in table and "0.01666" not in table
