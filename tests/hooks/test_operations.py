"""The deprecation watch: every SP-API operation the hook calls is in hooks/operations.py, true to Amazon's
published models, and not past Amazon's removal date; the hook refuses what the table does not have."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from amazon_commerce_sync.hooks import operations
from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook
from amazon_commerce_sync.hooks.operations import OPERATIONS, UnknownOperationError, called_operations
from amazon_commerce_sync.ratelimit import LocalLimiter

MODELS = Path(__file__).resolve().parents[2] / "reference" / "sp-api" / "models"


def published_operations() -> dict[tuple[str, str], tuple[str, float, int]]:
    """(operationId, path) -> (method, rate, burst) from the usage plans in Amazon's models."""
    out = {}
    for model in MODELS.glob("*.json"):
        for path, methods in json.loads(model.read_text())["paths"].items():
            for method, op in methods.items():
                if not isinstance(op, dict) or "operationId" not in op:
                    continue
                plan = re.search(r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|", op.get("description", ""))
                assert plan, f"{op['operationId']}: no usage plan in {model.name}"
                out[(op["operationId"], path)] = (method.upper(), float(plan[1]), int(plan[2]))
    return out


def test_the_scan_finds_the_hooks_calls():
    found = called_operations()
    # A few the hook certainly calls; a scan that found nothing would make the next two tests pass vacuously.
    assert {"searchOrders", "getOrder", "confirmShipment", "createFeed", "getFeedDocument"} <= found
    assert "uploadFeedDocument" not in found  # a pre-signed URL, not an SP-API operation


def test_the_scan_reads_keyword_and_positional_operations():
    source = """
def f(self):
    self._call("GET", "/orders/v0/orders/1/orderItems", operation="getOrderItems", params={})
    self._token_pages("/finances/2024-06-19/transactions", "listTransactions", {}, "nextToken", next_token)
    self._request_url("GET", url, operation="downloadFeedDocument")
    self._token_pages(path, operation, params, "nextToken", next_token)
    other.call(operation="notTheHook")
"""
    assert operations.operations_in_source(source) == {"getOrderItems", "listTransactions"}


def test_every_called_operation_is_in_the_table():
    missing = sorted(called_operations() - set(OPERATIONS))
    assert not missing, f"add these to hooks/operations.py OPERATIONS: {missing}"


def test_every_row_is_amazons_published_operation():
    published = published_operations()
    for op in OPERATIONS.values():
        assert (op.name, op.path) in published, f"{op.name} {op.path} is not in reference/sp-api/models"
        method, rate, burst = published[(op.name, op.path)]
        assert (op.method, op.rate, op.burst) == (method, rate, burst), op.name
        assert op.version in op.path
        if op.removal is not None:
            assert op.deprecated and op.deprecated < op.removal and op.replacement and op.source


def test_finances_v0_has_the_earlier_of_amazons_removal_dates():
    for name in ("listFinancialEvents", "listFinancialEventsByOrderId"):
        op = OPERATIONS[name]
        assert (op.deprecated, op.removal) == (date(2025, 7, 21), date(2026, 8, 28))
        assert op.replacement.startswith("listTransactions")
    assert OPERATIONS["listTransactions"].removal is None


def test_no_called_operation_is_past_its_removal_date():
    gone = operations.removed(called_operations(), date.today())
    assert not gone, "calls Amazon has removed: " + "; ".join(
        operations.deprecation_warnings([op.name for op in gone], date.today())
    )


def test_removed_is_by_date():
    assert [op.name for op in operations.removed(["listFinancialEvents", "getOrder"], date(2026, 8, 28))] == [
        "listFinancialEvents"
    ]
    assert operations.removed(["listFinancialEvents"], date(2026, 8, 27)) == []


def test_warnings_name_operation_date_and_replacement_n_days_ahead(monkeypatch):
    today = date(2027, 1, 1)
    row = dataclasses.replace(
        OPERATIONS["getOrder"],
        deprecated=today - timedelta(days=200),
        removal=today + timedelta(days=90),
        replacement="getOrder (Orders API 2027-01-01)",
        source="https://example.invalid/notice",
    )
    monkeypatch.setitem(OPERATIONS, "getOrder", row)
    assert operations.deprecation_warnings(["getOrder"], today, 89) == []
    [warning] = operations.deprecation_warnings(["getOrder", "searchOrders", "notInTheTable"], today, 90)
    assert warning.startswith("getOrder (Orders 2026-01-01) is removed by Amazon on 2027-04-01 (in 90 days)")
    assert "move to getOrder (Orders API 2027-01-01)" in warning and "https://example.invalid/notice" in warning
    [late] = operations.deprecation_warnings(["getOrder"], today + timedelta(days=95), 0)
    assert "was removed by Amazon on 2027-04-01 (5 days ago)" in late


def test_paths_match_their_templates():
    op = OPERATIONS["getOrder"]
    assert op.matches("get", "/orders/2026-01-01/orders/123-4567890-1234567")
    assert not op.matches("GET", "/orders/v0/orders/123-4567890-1234567")
    assert not op.matches("GET", "/orders/2026-01-01/orders/123/items")
    assert not op.matches("POST", "/orders/2026-01-01/orders/123")


def requests_seen(base_url: str) -> int:
    answer = httpx.get(f"{base_url}/_sandbox/stats", timeout=10).json()["operations"]
    return sum(counts.get("requests", 0) for counts in answer.values())


def test_the_hook_refuses_an_operation_not_in_the_table_without_sending(amazon_sandbox, monkeypatch):
    base_url, _ = amazon_sandbox
    conn = {
        "conn_type": "http",
        "host": base_url,
        "login": "sandbox-client-id",
        "password": "sandbox-client-secret",
        "extra": {"refresh_token": "sandbox-refresh-token", "lwa_endpoint": f"{base_url}/auth/o2/token"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_SP_API", json.dumps(conn))
    hook = AmazonSpApiHook(limiter=LocalLimiter())
    hook.access_token()
    before = requests_seen(base_url)
    with pytest.raises(UnknownOperationError, match="getOrderItems.*not in hooks/operations.py"):
        hook._call("GET", "/orders/v0/orders/123-4567890-1234567/orderItems", operation="getOrderItems")
    # A known name under another API's path is refused too (Orders v0 getOrder is removed on 2027-03-27).
    with pytest.raises(UnknownOperationError, match=r"getOrder.*Orders 2026-01-01.*not GET /orders/v0/orders/1"):
        hook._call("GET", "/orders/v0/orders/1", operation="getOrder")
    assert requests_seen(base_url) == before  # nothing reached Amazon
