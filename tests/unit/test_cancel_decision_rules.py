"""The decision's pure rules: how long it waits, what counts as an answer, what the buyer said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from amazon_commerce_sync.pipelines import cancel_decision

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        ("2026-06-02T12:00:00+00:00", timedelta(days=1)),
        ("2026-06-01T14:30:00Z", timedelta(hours=2, minutes=30)),
        ("2026-05-31T12:00:00+00:00", timedelta(seconds=1)),  # past: times out at once (0 would mean "no timeout")
        (None, timedelta(seconds=1)),
    ],
)
def test_the_wait_ends_at_the_deadline(deadline, expected):
    assert cancel_decision.response_timeout({"deadline": deadline}, NOW) == expected


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        ({"chosen_options": ["Cancel"]}, "Cancel"),
        ({"chosen_options": ["Keep"]}, "Keep"),
        ({"chosen_options": [], "timed_out": True}, None),
        ({"chosen_options": ["Cancel", "Keep"]}, None),
        ({"chosen_options": ["Approve"]}, None),
        (None, None),
    ],
)
def test_only_one_known_option_is_an_answer(decision, expected):
    assert cancel_decision.chosen(decision) == expected


def test_what_the_buyer_said_is_shown_without_personal_data():
    order = {
        "orderItems": [
            {"cancellation": {}},
            {
                "cancellation": {
                    "cancellationRequest": {
                        "requester": "BUYER",
                        "cancelReason": "Found it cheaper, write to jane.doe@example.com " + "x" * 300,
                    }
                }
            },
        ]
    }
    said = cancel_decision._buyer_reason(order)
    assert said.startswith("Found it cheaper")
    assert "jane.doe@example.com" not in said
    assert len(said) <= cancel_decision.MAX_REASON + 3
    assert cancel_decision._buyer_reason({"orderItems": [{}]}) is None
