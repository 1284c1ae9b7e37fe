"""The one place HTTP failures are sorted into the exception tree of ``errors.py``.

``classify(response_or_exception, operation)`` turns a ``requests.Response`` with an error
status, or a ``requests`` exception, into an ``IntegrationError``:

- no answer (refused, reset, dropped, timed out) -> ``ConnectionFailedError``, with
  ``request_sent`` False only when urllib3 never opened the connection;
- 429 -> ``RateLimitedError`` (``retry_after`` from ``Retry-After`` or Amazon's
  ``x-amzn-RateLimit-Limit``), 5xx and 408 -> ``ServiceUnavailableError``;
- other 4xx -> the ``FatalError`` of that status.

The message is the API's own (Amazon ``errors[]``, Login with Amazon ``error`` /
``error_description``, Magento ``message`` with its placeholders filled), with e-mail
addresses and tokens masked and cut to 500 characters; URLs (whose query strings can hold an
e-mail) never appear. It lives next to the hooks because it needs ``requests``, which
``errors.py`` must not import (DAG files import that at parse time).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any

import requests

from amazon_commerce_sync.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectionFailedError,
    FatalError,
    IntegrationError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    redact,
)

__all__ = ["classify"]

_MAX_MESSAGE = 500


def _fill_placeholders(message: str, parameters: Any) -> str:
    """Fill Magento's ``%1``/``%name`` placeholders from ``parameters`` (list or dict)."""
    if isinstance(parameters, list):
        values = {str(i): v for i, v in enumerate(parameters, start=1)}
    elif isinstance(parameters, dict):
        values = {str(k): v for k, v in parameters.items()}
    else:
        return message

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(values[key]) if key in values else match.group(0)

    return re.sub(r"%(\w+)", sub, message)


def _parse_body(response: requests.Response) -> Any:
    try:
        return json.loads(response.text) if response.content else None
    except ValueError:
        return None


def _api_message(body: Any, response: requests.Response) -> tuple[str, str | None]:
    """The API's own message and error code from an error body (Amazon, Magento or LWA)."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict) and "code" in errors[0]:
            # Amazon SP-API: {"errors": [{"code", "message", "details"}]}
            parts = [f"{e.get('code')}: {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)]
            return "; ".join(parts), str(errors[0].get("code"))
        if "error" in body and isinstance(body.get("error"), str):
            # OAuth 2 (Login with Amazon): {"error", "error_description"}
            desc = body.get("error_description") or ""
            return (f"{body['error']}: {desc}" if desc else body["error"]), body["error"]
        if isinstance(body.get("message"), str):
            # Magento: {"message": "... %1 ...", "parameters": [...], "errors": [...]}
            text = _fill_placeholders(body["message"], body.get("parameters"))
            if isinstance(errors, list):
                extra = [
                    _fill_placeholders(e.get("message", ""), e.get("parameters"))
                    for e in errors
                    if isinstance(e, dict) and e.get("message")
                ]
                if extra:
                    text = f"{text} ({'; '.join(extra)})"
            code = body.get("code")
            return text, (str(code) if code is not None else None)
    if isinstance(body, str):
        return body, None
    return (response.reason or "no message"), None


def _retry_after(response: requests.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``x-amzn-RateLimit-Limit``."""
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    rate = response.headers.get("x-amzn-RateLimit-Limit")
    if rate:
        try:
            r = float(rate)
        except ValueError:
            return None
        if r > 0:
            return 1.0 / r
    return None


def _from_response(response: requests.Response, operation: str) -> IntegrationError:
    status = response.status_code
    message, code = _api_message(_parse_body(response), response)
    message = redact(message)[:_MAX_MESSAGE]
    kw: dict[str, Any] = {"operation": operation, "status": status, "code": code}
    if status == 429:
        return RateLimitedError(message, retry_after=_retry_after(response), **kw)
    if status >= 500 or status == 408:
        return ServiceUnavailableError(message, **kw)
    if status in (401, 403):
        return AuthenticationError(message, **kw)
    if status == 404:
        return NotFoundError(message, **kw)
    if status == 409:
        return ConflictError(message, **kw)
    if 400 <= status < 500:
        return BadRequestError(message, **kw)
    return FatalError(f"unexpected HTTP status {status}: {message}", **kw)


def _from_exception(exc: BaseException, operation: str) -> IntegrationError:
    name = type(exc).__name__
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectionFailedError(f"connect timeout ({name})", operation=operation, request_sent=False)
    if isinstance(exc, requests.exceptions.Timeout):
        return ConnectionFailedError(f"read timeout ({name})", operation=operation, request_sent=True)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ConnectionFailedError(
            f"connection failed ({_connection_reason(exc)})",
            operation=operation,
            request_sent=not _failed_before_sending(exc),
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return ConnectionFailedError(f"response cut short ({name})", operation=operation, request_sent=True)
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return BadRequestError(f"invalid URL ({name})", operation=operation)
    return FatalError(f"unexpected failure ({name})", operation=operation)


def _failed_before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """True when urllib3 could not open the connection at all (refused, DNS, unreachable)."""
    from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | NameResolutionError)


def _connection_reason(exc: requests.exceptions.ConnectionError) -> str:
    """A short reason without the URL (URLs can carry query strings with PII)."""
    from urllib3.exceptions import MaxRetryError, ProtocolError

    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if isinstance(reason, ProtocolError) and len(reason.args) > 1:
        inner = reason.args[1]
        return f"{type(inner).__name__}: {inner}" if not isinstance(inner, str) else inner
    if reason is None:
        return type(exc).__name__
    return type(reason).__name__


def classify(response_or_exception: requests.Response | BaseException, operation: str) -> IntegrationError:
    """Sort a failed response or a transport exception into the exception tree.

    An ``IntegrationError`` is returned unchanged. A 2xx/3xx response is a caller bug
    and gives a ``FatalError``.
    """
    if isinstance(response_or_exception, IntegrationError):
        return response_or_exception
    if isinstance(response_or_exception, requests.Response):
        if response_or_exception.status_code < 400:
            return FatalError(
                f"not a failure: HTTP {response_or_exception.status_code}",
                operation=operation,
                status=response_or_exception.status_code,
            )
        return _from_response(response_or_exception, operation)
    return _from_exception(response_or_exception, operation)
