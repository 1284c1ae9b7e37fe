"""Exceptions raised by the integration's hooks, and the one place failures are sorted.

Our exception hierarchy::

    IntegrationError                  - base: status, operation, code, the API's own message
    ├── RetriableError                - worth another attempt (retry.py retries only these)
    │   ├── ServiceUnavailableError   - HTTP 5xx, 408
    │   ├── RateLimitedError          - HTTP 429; ``retry_after`` seconds from ``Retry-After``
    │   │                               or Amazon's ``x-amzn-RateLimit-Limit`` (1 / rate)
    │   └── ConnectionFailedError     - no HTTP answer: refused, reset, dropped, timed out;
    │                                   ``request_sent`` says whether the server may have it
    └── FatalError                    - retrying cannot help; the DAGs' retry policy fails the task
        ├── BadRequestError           - HTTP 400, 413, 415, 422 (and other unexpected 4xx)
        ├── AuthenticationError       - HTTP 401, 403, and Login with Amazon (LWA) refusals
        ├── NotFoundError             - HTTP 404
        └── ConflictError             - HTTP 409, or a conflict the caller detects

``classify(response_or_exception, operation)`` turns a ``requests.Response`` with an
error status, or a ``requests`` exception, into one of these. Nothing else in the package
decides what is retriable.

``IntegrationError.safe_to_replay`` is True only when the request certainly did not take
effect on the server (connection refused before anything was sent, HTTP 429): the only
failures after which a non-idempotent write (create an order, invoice, ship, refund) may be
sent again without first looking up its natural key.

Messages carry the operation name and the API's own error text (Amazon
``errors[].code/message``; Magento ``message`` with its ``%1`` / ``%name`` placeholders
filled from ``parameters``). They never carry request bodies, credentials or tokens, and
e-mail addresses in server messages are masked.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: DAG files name FatalError in their retry policy at parse time
    import requests

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ConnectionFailedError",
    "FatalError",
    "IntegrationError",
    "NotFoundError",
    "RateLimitedError",
    "RetriableError",
    "ServiceUnavailableError",
    "classify",
    "install_log_redaction",
    "redact",
]

_MAX_MESSAGE = 500
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SECRETISH = re.compile(r"(?i)(bearer\s+|Atza\||Atzr\|)[\w\-.|=+/]+")


def redact(text: str) -> str:
    """Mask e-mail addresses and anything that looks like a token in ``text``."""
    text = _EMAIL.sub("<email>", text)
    return _SECRETISH.sub(lambda m: m.group(1) + "<redacted>", text)


class _QueryRedactingFilter(logging.Filter):
    """Drop query strings from urllib3's DEBUG request lines.

    Query strings can hold PII (a customer search by e-mail) and pre-signed URLs hold
    signatures; urllib3 logs the full request target at DEBUG.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                a.split("?", 1)[0] + "?<redacted>" if isinstance(a, str) and "?" in a else a for a in record.args
            )
        return True


_REDACTION_INSTALLED = False


#: Libraries whose DEBUG output holds credentials or PII: oauthlib and requests-oauthlib log
#: the signed parameters (query values such as e-mails), the access token and the
#: Authorization header.
_CHATTY_LOGGERS = ("oauthlib", "requests_oauthlib")


def install_log_redaction() -> None:
    """Keep credentials and PII out of third-party DEBUG logs (idempotent, once per process).

    Drops query strings from urllib3's request lines and raises oauthlib's and
    requests-oauthlib's loggers to INFO, so that a task log at DEBUG stays clean.
    """
    global _REDACTION_INSTALLED
    if not _REDACTION_INSTALLED:
        logging.getLogger("urllib3.connectionpool").addFilter(_QueryRedactingFilter())
        for name in _CHATTY_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET or logger.level < logging.INFO:
                logger.setLevel(logging.INFO)
        _REDACTION_INSTALLED = True


class IntegrationError(Exception):
    """Base of every failure a hook raises.

    :param message: what went wrong, in the API's words, free of secrets and PII.
    :param operation: the API operation (``searchOrders``, ``POST /V1/orders``...).
    :param status: the HTTP status, or None when no answer came back.
    :param code: the API's error code (Amazon ``errors[0].code``, LWA ``error``), if any.
    """

    retriable: bool = False

    def __init__(
        self, message: str, *, operation: str = "", status: int | None = None, code: str | None = None
    ) -> None:
        self.message = message
        self.operation = operation
        self.status = status
        self.code = code
        super().__init__(message)

    @property
    def safe_to_replay(self) -> bool:
        """True when the server certainly did not act on the request."""
        return False

    def __str__(self) -> str:
        where = self.operation or "request"
        status = f" HTTP {self.status}" if self.status is not None else ""
        code = f" [{self.code}]" if self.code else ""
        return f"{where} failed{status}{code}: {self.message}"


class RetriableError(IntegrationError):
    """A failure that may go away on its own; retry.py retries these (and only these)."""

    retriable = True


class ServiceUnavailableError(RetriableError):
    """The server answered 5xx (or 408). The request may or may not have taken effect."""


class RateLimitedError(RetriableError):
    """The server answered 429. The request was not processed.

    :param retry_after: seconds to wait before the next attempt, when the server said so.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after

    @property
    def safe_to_replay(self) -> bool:
        return True


class ConnectionFailedError(RetriableError):
    """No HTTP answer: connection refused or reset, dropped mid-response, or a timeout.

    :param request_sent: False only when the connection failed before any byte was sent
        (refused, DNS failure, connect timeout); then the server certainly has nothing.
    """

    def __init__(self, message: str, *, request_sent: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.request_sent = request_sent

    @property
    def safe_to_replay(self) -> bool:
        return not self.request_sent


class FatalError(IntegrationError):
    """Retrying will not help; something must be fixed (data, configuration, credentials)."""


class BadRequestError(FatalError):
    """The API rejected the request as invalid (400, 413, 415, 422)."""


class AuthenticationError(FatalError):
    """Credentials are missing, wrong, expired beyond refresh, or lack the needed role."""


class NotFoundError(FatalError):
    """The addressed resource does not exist (404)."""


class ConflictError(FatalError):
    """The request conflicts with the resource's current state (409)."""


# --------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------


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
    import requests

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
    import requests

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
