"""The ``amazon_order_cancel`` DAG's parameters, checked again at run time (pure: no I/O).

The DAG's form validates them too (``Param`` schemas), but a run may be triggered through the REST API or the
CLI with anything: ``parse_request`` names every problem at once, with the fix. Amazon's rules: order ids are
``3-7-7`` digits; the reason is one of the ``CancelReason`` values of the order acknowledgement feed
(``feeds.CANCEL_REASONS``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from amazon_commerce_sync import constants
from amazon_commerce_sync.feeds import CANCEL_REASONS

AMAZON_ORDER_ID = re.compile(constants.AMAZON_ORDER_ID_PATTERN)
COMMERCE_ORDER_NUMBER = re.compile(constants.COMMERCE_ORDER_NUMBER_PATTERN)
ACCOUNT_ID = re.compile(constants.ACCOUNT_ID_PATTERN)
MAX_ORDERS = constants.CANCEL_MAX_ORDERS
MAX_NOTE = constants.CANCEL_MAX_NOTE
#: The getOrder includedData a cancellation reads (status, cancellation): no buyer or recipient data.
GET_ORDER_DATA = ("FULFILLMENT", "CANCELLATION")


class InvalidRequest(ValueError):
    """The run's parameters are wrong; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class CancelRequest:
    """A checked cancellation request: ids de-duplicated, in the order given."""

    amazon_order_ids: tuple[str, ...]
    commerce_order_numbers: tuple[str, ...]
    reason: str
    note: str | None
    dry_run: bool
    account_id: str | None


def _id_list(name: str, value: Any, pattern: re.Pattern[str], example: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # a CLI user may pass one id or a comma-separated list
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list | tuple):
        problems.append(f"{name}: expected a list of strings, got {type(value).__name__}")
        return ()
    if not value:
        problems.append(f"{name}: the list is empty; give at least one id or leave it out")
        return ()
    if len(value) > MAX_ORDERS:
        problems.append(f"{name}: {len(value)} ids given; at most {MAX_ORDERS} per run")
    bad = [v for v in value if not isinstance(v, str) or not pattern.fullmatch(v.strip())]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5]) + (" ..." if len(bad) > 5 else "")
        problems.append(f"{name}: {shown} {'is' if len(bad) == 1 else 'are'} not valid; expected e.g. {example}")
    out = tuple(dict.fromkeys(v.strip() for v in value if isinstance(v, str)))
    return out


def parse_request(params: Mapping[str, Any]) -> CancelRequest:
    """Check the run's parameters again (the form may be bypassed by the API or CLI); all problems at once."""
    problems: list[str] = []
    amazon_ids = _id_list(
        "amazon_order_ids", params.get("amazon_order_ids"), AMAZON_ORDER_ID, "'123-1234567-1234567'", problems
    )
    numbers = _id_list(
        "commerce_order_numbers", params.get("commerce_order_numbers"), COMMERCE_ORDER_NUMBER, "'000000042'", problems
    )
    if not problems and not amazon_ids and not numbers:
        problems.append("give the orders to cancel: amazon_order_ids or commerce_order_numbers")
    if len(amazon_ids) + len(numbers) > MAX_ORDERS and not any("at most" in p for p in problems):
        problems.append(f"{len(amazon_ids) + len(numbers)} orders given; at most {MAX_ORDERS} per run")
    reason = params.get("reason")
    if reason not in CANCEL_REASONS:
        problems.append(f"reason: {reason!r} is not one of Amazon's CancelReason values: " + ", ".join(CANCEL_REASONS))
    note = params.get("note")
    if note is not None and not isinstance(note, str):
        problems.append("note: must be text")
        note = None
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        problems.append(f"note: {len(note)} characters; at most {MAX_NOTE}")
    dry_run = params.get("dry_run")
    if dry_run is None:  # the form's field is optional (type ["null", "boolean"]): unset means a real run
        dry_run = False
    if not isinstance(dry_run, bool):
        problems.append(f"dry_run: {dry_run!r} must be true or false")
    account_id = params.get("account_id")
    if account_id is not None and (not isinstance(account_id, str) or not ACCOUNT_ID.fullmatch(account_id)):
        problems.append(f"account_id: {account_id!r} is not an account id (1-64 letters, digits, '.', '_', '-')")
    if problems:
        raise InvalidRequest("invalid parameters: " + "; ".join(problems))
    return CancelRequest(
        amazon_order_ids=amazon_ids,
        commerce_order_numbers=numbers,
        reason=str(reason),
        note=note,
        dry_run=bool(dry_run),
        account_id=account_id or None,
    )
