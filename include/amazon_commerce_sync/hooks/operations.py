"""Every SP-API operation the Amazon hook calls: API and version, path, rate limit and Amazon's deprecation dates.

One table (:data:`OPERATIONS`) is the only place an operation's facts live: the hook takes its client-side
rate limit from it and refuses an operation that is not in it, or a path that is not the row's
(:func:`operation_for`); the healthcheck warns ``deprecation_warning_days`` ahead of a removal
(:func:`deprecation_warnings`); ``tests/hooks/test_operations.py`` fails when an operation the hook calls is
missing here or past its removal date. This turns Amazon's next removal into a warning months early.

Sources (retrieved 2026-11-30):

- Rates and bursts: the "Usage Plan" table in each operation's description in Amazon's published models
  (``reference/sp-api/models/*.json``).
- Deprecation and removal dates: Amazon's "SP-API Deprecation Schedule" page (developer-docs.amazon.com/sp-api,
  "Selling Partner API deprecations") and the changelog notices it summarises:
  - Finances v0: "Deprecation of Finances v0 operations", July 21, 2025
    (https://developer-docs.amazon.com/sp-api/changelog/deprecation-of-finances-v0-operations) gives the
    removal as August 28, 2026; a copy of the same notice
    (https://developer-docs.amazon.com/sp-api/lang-it_IT/changelog/deprecation-of-finances-v0-operations)
    gives August 27, 2027. The earlier date is kept: a warning too early costs nothing, one too late an
    outage. Replacement: ``listTransactions`` (Finances API 2024-06-19).
  - Orders v0: "New: Introducing the Orders API v2026-01-01"
    (https://developer-docs.amazon.com/sp-api/changelog/new-introducing-the-orders-api-v2026-01-01): getOrders,
    getOrder, getOrderBuyerInfo, getOrderAddress, getOrderItems, getOrderItemsBuyerInfo are removed on
    March 27, 2027. The hook reads orders with 2026-01-01 already; ``confirmShipment`` (Orders v0) is not in
    that list and has no announced deprecation.
  - Feeds API 2021-06-30 and Finances API 2024-06-19: no deprecation announced.
  - Notifications API v1 (``reference/sp-api/models/notifications.json``; every operation 1 request/s, burst 5):
    no deprecation announced. Destinations and the by-id subscription operations are grantless (LWA
    ``client_credentials``, scope ``sellingpartnerapi::notifications``); the others take the seller's token.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from amazon_commerce_sync.errors import FatalError

FINANCES_V0_NOTICE = "https://developer-docs.amazon.com/sp-api/changelog/deprecation-of-finances-v0-operations"
DEFAULT_WARNING_DAYS = 90


@dataclasses.dataclass(frozen=True)
class Operation:
    """One SP-API operation as the hook calls it.

    :param name: Amazon's ``operationId`` (also the hook's rate-limit bucket).
    :param api: the API's name in Amazon's docs, e.g. ``Orders``.
    :param version: the API version in the path (``v0``, ``2026-01-01``).
    :param method: the HTTP method.
    :param path: the path template, parameters in braces as in the model.
    :param rate: Amazon's default rate, requests per second.
    :param burst: Amazon's default burst.
    :param deprecated: the day Amazon deprecated it, None when not announced.
    :param removal: the day calls start failing, None when not announced.
    :param replacement: what to call instead, when deprecated.
    :param source: the notice giving the dates.
    """

    name: str
    api: str
    version: str
    method: str
    path: str
    rate: float
    burst: int
    deprecated: date | None = None
    removal: date | None = None
    replacement: str | None = None
    source: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """True when ``method path`` (a concrete path, ids filled in) is this operation's."""
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(self.path))
        return method.upper() == self.method and re.fullmatch(pattern, path.split("?", 1)[0]) is not None


_FINANCES_V0 = {
    "deprecated": date(2025, 7, 21),
    "removal": date(2026, 8, 28),  # the earlier of the two dates Amazon published (module docstring)
    "replacement": "listTransactions (Finances API 2024-06-19)",
    "source": FINANCES_V0_NOTICE,
}

#: name -> :class:`Operation`, for every operation the Amazon hook calls (or is about to: ``listTransactions``).
OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("searchOrders", "Orders", "2026-01-01", "GET", "/orders/2026-01-01/orders", 0.0056, 20),
        Operation("getOrder", "Orders", "2026-01-01", "GET", "/orders/2026-01-01/orders/{orderId}", 0.5, 30),
        Operation(
            "confirmShipment", "Orders", "v0", "POST", "/orders/v0/orders/{orderId}/shipmentConfirmation", 2.0, 10
        ),
        Operation("createFeedDocument", "Feeds", "2021-06-30", "POST", "/feeds/2021-06-30/documents", 0.5, 15),
        Operation("createFeed", "Feeds", "2021-06-30", "POST", "/feeds/2021-06-30/feeds", 0.0083, 15),
        Operation("getFeed", "Feeds", "2021-06-30", "GET", "/feeds/2021-06-30/feeds/{feedId}", 2.0, 15),
        Operation("getFeeds", "Feeds", "2021-06-30", "GET", "/feeds/2021-06-30/feeds", 0.0222, 10),
        Operation(
            "getFeedDocument", "Feeds", "2021-06-30", "GET", "/feeds/2021-06-30/documents/{feedDocumentId}", 0.0222, 10
        ),
        Operation("listTransactions", "Finances", "2024-06-19", "GET", "/finances/2024-06-19/transactions", 0.5, 10),
        Operation(
            "listFinancialEvents", "Finances", "v0", "GET", "/finances/v0/financialEvents", 0.5, 30, **_FINANCES_V0
        ),
        Operation("getDestinations", "Notifications", "v1", "GET", "/notifications/v1/destinations", 1.0, 5),
        Operation("createDestination", "Notifications", "v1", "POST", "/notifications/v1/destinations", 1.0, 5),
        Operation(
            "getSubscription",
            "Notifications",
            "v1",
            "GET",
            "/notifications/v1/subscriptions/{notificationType}",
            1.0,
            5,
        ),
        Operation(
            "createSubscription",
            "Notifications",
            "v1",
            "POST",
            "/notifications/v1/subscriptions/{notificationType}",
            1.0,
            5,
        ),
        Operation(
            "deleteSubscriptionById",
            "Notifications",
            "v1",
            "DELETE",
            "/notifications/v1/subscriptions/{notificationType}/{subscriptionId}",
            1.0,
            5,
        ),
        Operation(
            "listFinancialEventsByOrderId",
            "Finances",
            "v0",
            "GET",
            "/finances/v0/orders/{orderId}/financialEvents",
            0.5,
            30,
            **_FINANCES_V0,
        ),
    )
}

#: Amazon's documented default (rate per second, burst) per operation, from :data:`OPERATIONS`.
RATE_LIMITS: dict[str, tuple[float, int]] = {name: (op.rate, op.burst) for name, op in OPERATIONS.items()}


class UnknownOperationError(FatalError):
    """The hook was asked to call an operation the table does not have (or under another path): add its row."""


def operation_for(name: str, method: str, path: str) -> Operation:
    """The table's row for a call the hook is about to make.

    :raises UnknownOperationError: ``name`` is not in :data:`OPERATIONS`, or ``method path`` is not its path
        (e.g. an Orders v0 path under the 2026-01-01 ``getOrder``).
    """
    op = OPERATIONS.get(name)
    if op is None:
        raise UnknownOperationError(
            f"SP-API operation {name!r} is not in hooks/operations.py OPERATIONS: add its row (API, version, path, "
            "rate, burst, Amazon's deprecation dates) before calling it",
            operation=name,
        )
    if not op.matches(method, path):
        raise UnknownOperationError(
            f"SP-API operation {name!r} is {op.method} {op.path} ({op.api} {op.version}) in hooks/operations.py, "
            f"not {method.upper()} {path.split('?', 1)[0]}",
            operation=name,
        )
    return op


def removed(names: Iterable[str], today: date) -> list[Operation]:
    """The operations among ``names`` whose removal date is ``today`` or earlier (calls to them fail)."""
    return [OPERATIONS[n] for n in sorted(set(names)) if n in OPERATIONS and _past(OPERATIONS[n], today)]


def _past(op: Operation, today: date) -> bool:
    return op.removal is not None and op.removal <= today


def deprecation_warnings(names: Iterable[str], today: date, days: int = DEFAULT_WARNING_DAYS) -> list[str]:
    """One sentence per operation among ``names`` removed within ``days`` days of ``today`` (or already).

    Each names the operation, its API and version, the removal date and the replacement, e.g.
    ``listFinancialEvents (Finances v0) is removed by Amazon on 2026-08-28 (in 30 days): move to
    listTransactions (Finances API 2024-06-19); see <notice>``. Operations not in the table are ignored
    (the hook refuses them).
    """
    out = []
    for name in sorted(set(names)):
        op = OPERATIONS.get(name)
        if op is None or op.removal is None:
            continue
        left = (op.removal - today).days
        if left > days:
            continue
        when = f"was removed by Amazon on {op.removal.isoformat()} ({-left} days ago)"
        if left > 0:
            when = f"is removed by Amazon on {op.removal.isoformat()} (in {left} days)"
        out.append(
            f"{op.name} ({op.api} {op.version}) {when}: move to {op.replacement or 'its replacement'}; "
            f"see {op.source or 'the SP-API Deprecation Schedule'}"
        )
    return out


@functools.cache
def called_operations() -> frozenset[str]:
    """The operation names the Amazon hook's source passes to its calls (``_call(..., operation="x")`` and the
    listing helpers' ``operation`` argument), read from ``hooks/amazon.py`` (:func:`operations_in_source`).

    What the deprecation test and the healthcheck look at: an operation that is still in the table but no
    longer called does not warn.
    """
    from amazon_commerce_sync.hooks import amazon

    return operations_in_source(Path(inspect.getfile(amazon)).read_text(encoding="utf-8"))


def operations_in_source(source: str) -> frozenset[str]:
    """String literals given as the ``operation`` parameter of ``AmazonSpApiHook`` methods in ``source``.

    By keyword, or by position for a method whose signature has ``operation`` (``_token_pages(path,
    "listTransactions", ...)``); ``_request_url`` (pre-signed document URLs, not SP-API operations) is left out.
    """
    from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook

    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = getattr(AmazonSpApiHook, node.func.attr, None)
        if node.func.attr == "_request_url" or method is None or not callable(method):
            continue
        try:
            params = list(inspect.signature(method).parameters)
        except (TypeError, ValueError):
            continue
        if "operation" not in params:
            continue
        values = [k.value for k in node.keywords if k.arg == "operation"]
        position = params.index("operation") - 1  # without self
        if not values and 0 <= position < len(node.args):
            values = [node.args[position]]
        for value in values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(value.value)
    return frozenset(found)
