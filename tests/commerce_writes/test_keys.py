"""The intent log's natural keys are persisted in users' state stores: their strings never change."""

from __future__ import annotations

import re

import pytest

from amazon_commerce_sync.commerce_writes import keys

ORDER = "111-0000001-0000001"


@pytest.mark.parametrize(
    ("key", "natural_key", "kind"),
    [
        (keys.create_order(ORDER), f"create_order:{ORDER}", "create_order"),
        (keys.invoice(ORDER), f"invoice:{ORDER}", "invoice"),
        (keys.ship(ORDER, "PKG-1"), f"ship:{ORDER}:PKG-1", "ship"),
        (keys.hold(ORDER), f"hold:{ORDER}", "hold"),
        (keys.comment("buyer_cancel", ORDER), f"comment:buyer_cancel:{ORDER}", "comment"),
        (keys.comment("cancel", ORDER), f"comment:cancel:{ORDER}", "comment"),
        (keys.cancel(ORDER), f"cancel:{ORDER}", "cancel"),
        (keys.stock_out(ORDER), f"stock_out:{ORDER}", "stock_out"),
        (keys.stock_in(ORDER), f"stock_in:{ORDER}", "stock_in"),
        (keys.refund_mirror(f"amzrefund:{ORDER}:T:d", ORDER), f"mirror:amzrefund:{ORDER}:T:d", "refund_mirror"),
        (
            keys.refund_mirror_comment(f"amzrefund:{ORDER}:T:d", ORDER),
            f"mirror:amzrefund:{ORDER}:T:d:comment",
            "comment",
        ),
        (keys.own_refund_item("cm7-1", ORDER), "refund_own:cm7-1", "refund_own"),
        (keys.anonymise(ORDER), f"anonymise:{ORDER}", "anonymise"),
    ],
)
def test_keys_keep_their_persisted_strings(key, natural_key, kind):
    assert (key.natural_key, key.kind, str(key)) == (natural_key, kind, natural_key)
    assert key.amazon_order_id == ORDER


def test_batches_are_unique_and_belong_to_no_order():
    first, second = keys.stock_batch(), keys.stock_batch()
    assert first != second and re.fullmatch(r"stock_batch:[0-9a-f]{32}", str(first)) and first.amazon_order_id is None
    assert re.fullmatch(r"batch:[0-9a-f]{32}", str(keys.feed_batch())) and keys.feed_batch().kind == "feed"
    assert keys.ship_prefix(ORDER) == f"ship:{ORDER}:" and keys.order_lease(ORDER) == f"order:{ORDER}"
