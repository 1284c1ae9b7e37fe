"""hooks.classify: every HTTP failure sorted in one place, messages without secrets or PII."""

from __future__ import annotations

import json
import logging

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from amazon_commerce_sync.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectionFailedError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    ServiceUnavailableError,
    redact,
)
from amazon_commerce_sync.hooks.classify import classify
from amazon_commerce_sync.hooks.rest import install_log_redaction


def response(status: int, body=None, headers: dict[str, str] | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(body).encode() if body is not None else b""
    r.headers.update(headers or {})
    r.reason = "Reason"
    return r


def amazon(code: str, message: str) -> dict:
    return {"errors": [{"code": code, "message": message, "details": ""}]}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (422, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitedError),
        (500, ServiceUnavailableError),
        (503, ServiceUnavailableError),
        (408, ServiceUnavailableError),
    ],
)
def test_status_sorted_into_tree(status, cls):
    error = classify(response(status, amazon("X", "m")), "getOrder")
    assert type(error) is cls
    assert error.status == status
    assert error.operation == "getOrder"
    assert isinstance(error, RetriableError) == (status in (408, 429, 500, 503))
    assert isinstance(error, FatalError) != isinstance(error, RetriableError)


def test_amazon_errors_code_and_message():
    error = classify(response(400, amazon("InvalidInput", "createdBefore must be 2 minutes ago")), "searchOrders")
    assert error.code == "InvalidInput"
    assert "createdBefore must be 2 minutes ago" in str(error)
    assert str(error).startswith("searchOrders failed HTTP 400 [InvalidInput]")


def test_magento_placeholders_filled_from_list_and_dict():
    e1 = classify(
        response(
            404,
            {
                "message": "No such entity with %fieldName = %fieldValue",
                "parameters": {"fieldName": "orderId", "fieldValue": "77"},
            },
        ),
        "GET /V1/orders/{id}",
    )
    assert e1.message == "No such entity with orderId = 77"
    e2 = classify(response(400, {"message": "The %1 of %2 is invalid", "parameters": ["qty", "SKU-1"]}), "op")
    assert e2.message == "The qty of SKU-1 is invalid"


def test_rate_limited_retry_after_from_header_or_amazon_rate():
    assert classify(response(429, amazon("QuotaExceeded", "x"), {"Retry-After": "7"}), "op").retry_after == 7.0
    error = classify(response(429, amazon("QuotaExceeded", "x"), {"x-amzn-RateLimit-Limit": "0.5"}), "op")
    assert error.retry_after == pytest.approx(2.0)
    assert error.safe_to_replay
    assert classify(response(429, None), "op").retry_after is None


def test_lwa_oauth_error_body():
    error = classify(
        response(401, {"error": "invalid_client", "error_description": "Client authentication failed"}), "lwaToken"
    )
    assert isinstance(error, AuthenticationError)
    assert error.code == "invalid_client"
    assert "Client authentication failed" in error.message


def test_emails_and_tokens_masked_in_messages():
    body = {"message": "A customer with %1 exists; token Bearer abc.def", "parameters": ["jane.doe@example.com"]}
    error = classify(response(400, body), "POST /V1/customers")
    assert "jane.doe@example.com" not in str(error)
    assert "abc.def" not in str(error)
    assert redact("Atza|IwEBIA-secret and x@y.org") == "Atza|<redacted> and <email>"


def test_connection_refused_is_retriable_and_not_sent():
    reason = NewConnectionError(None, "Connection refused")
    exc = requests.exceptions.ConnectionError(MaxRetryError(None, "/rest/default/V1/customers/search?q=a@b.c", reason))
    error = classify(exc, "op")
    assert isinstance(error, ConnectionFailedError)
    assert error.request_sent is False and error.safe_to_replay
    assert "a@b.c" not in str(error) and "customers/search" not in str(error)


def test_dropped_connection_and_timeouts():
    dropped = requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    )
    error = classify(dropped, "op")
    assert isinstance(error, ConnectionFailedError) and error.request_sent and not error.safe_to_replay
    read = classify(requests.exceptions.ReadTimeout("read timed out"), "op")
    assert isinstance(read, ConnectionFailedError) and read.request_sent
    connect = classify(requests.exceptions.ConnectTimeout("connect timed out"), "op")
    assert isinstance(connect, ConnectionFailedError) and not connect.request_sent


def test_ambiguous_failures_are_not_safe_to_replay():
    assert not classify(response(503, None), "op").safe_to_replay
    assert not classify(response(400, None), "op").safe_to_replay


def test_integration_error_passes_through_and_success_is_not_a_failure():
    original = NotFoundError("x", operation="op")
    assert classify(original, "other") is original
    assert type(classify(response(200, {}), "op")) is FatalError


def test_urllib3_request_lines_lose_their_query_string(caplog):
    install_log_redaction()
    logger = logging.getLogger("urllib3.connectionpool")
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logger.debug(
            '%s://%s:%s "%s %s %s" %s %s',
            "https",
            "shop",
            443,
            "GET",
            "/rest/default/V1/customers/search?searchCriteria[x]=jane%40example.com",
            "HTTP/1.1",
            200,
            10,
        )
    text = caplog.text
    assert "/rest/default/V1/customers/search?<redacted>" in text and "jane" not in text
