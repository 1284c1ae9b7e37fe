"""Exceptions raised by the integration's hooks: one small tree, documented here.

Our exception hierarchy::

    IntegrationError                  - base: status, operation, code, the API's own message
    ├── RetriableError                - worth another attempt (retry.py retries only these)
    │   ├── ServiceUnavailableError   - HTTP 5xx, 408
    │   ├── RateLimitedError          - HTTP 429; ``retry_after`` seconds from ``Retry-After``
    │   │                               or Amazon's ``x-amzn-RateLimit-Limit`` (1 / rate)
    │   ├── ConnectionFailedError     - no HTTP answer: refused, reset, dropped, timed out;
    │   │                               ``request_sent`` says whether the server may have it
    │   └── RepeatedPageError         - a listing answered a page it had already answered (an
    │                                   Amazon ``nextToken`` again, a Magento page again): the
    │                                   rest cannot be read, so the task fails and its cursor
    │                                   stays; reading again from the start may succeed
    └── FatalError                    - retrying cannot help: the DAGs' retry policy fails the task at once
        ├── BadRequestError           - HTTP 400, 413, 415, 422 (and other unexpected 4xx)
        ├── AuthenticationError       - HTTP 401, 403, and Login with Amazon (LWA) refusals
        ├── NotFoundError             - HTTP 404
        └── ConflictError             - HTTP 409, or a conflict the caller detects

Apart from the tree, ``StateStoreConfigError``: the state store's location is configured but unusable
(``store.db``); the retry policy fails the task at once on it too.

``hooks.classify.classify(response_or_exception, operation)`` turns a failed HTTP answer or a
transport exception into one of these; nothing else in the package decides what is retriable.
This module imports nothing but the standard library (no ``requests``), so that DAG files can
name these classes at parse time (e.g. ``FatalError`` in a retry policy) cheaply.

``IntegrationError.safe_to_replay`` is True only when the request certainly did not take
effect on the server (connection refused before anything was sent, HTTP 429): the only
failures after which a non-idempotent write (create an order, invoice, ship, refund) may be
sent again without first looking up its natural key.

Messages carry the operation name and the API's own error text (Amazon
``errors[].code/message``; Magento ``message`` with its ``%1`` / ``%name`` placeholders
filled from ``parameters``). They never carry request bodies, credentials or tokens, and
e-mail addresses in server messages are masked (``redact``).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ConnectionFailedError",
    "FatalError",
    "IntegrationError",
    "NotFoundError",
    "RateLimitedError",
    "RepeatedPageError",
    "RetriableError",
    "ServiceUnavailableError",
    "StateStoreConfigError",
    "redact",
]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SECRETISH = re.compile(r"(?i)(bearer\s+|Atza\||Atzr\|)[\w\-.|=+/]+")


def redact(text: str) -> str:
    """Mask e-mail addresses and anything that looks like a token in ``text``."""
    text = _EMAIL.sub("<email>", text)
    return _SECRETISH.sub(lambda m: m.group(1) + "<redacted>", text)


_PHONE = re.compile(r"\+?\d[\d ().-]{5,}\d")


def redact_contact(text: str) -> str:
    """A buyer's free text (e.g. a cancellation reason) without e-mail addresses or phone numbers: ``<email>``,
    ``<number>``."""
    return _PHONE.sub("<number>", _EMAIL.sub("<email>", text))


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


class RepeatedPageError(RetriableError):
    """A paginated listing answered a page it had already answered.

    Amazon gave a ``nextToken`` (``paginationToken``, Finances ``nextToken``) it had given for an
    earlier page, or Magento answered a ``searchCriteria[currentPage]`` with the items of a page
    already read (it answers a page beyond the last one with the last page again, e.g. when
    records left the result while it was paged). Following it would loop, or skip what was
    never read; the listing stops here instead, and the caller must not treat it as read to its
    end (the import's extraction cursor stays where it was). Retriable: the server's answer,
    not our data, is at fault, and a new reading from the first page may well succeed.

    :param pages: how many pages had been read when the repetition showed.
    """

    def __init__(self, message: str, *, pages: int = 0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.pages = pages


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


class StateStoreConfigError(RuntimeError):
    """The state store's location is configured but unusable; retrying cannot help.

    Raised by ``store.db.default_url`` when the ``sales_channel_db`` connection exists but cannot be read
    (malformed ``AIRFLOW_CONN_SALES_CHANNEL_DB``, a secrets backend that fails) or turned into a URL (not a
    Postgres connection, no host, extra that is not a JSON object of libpq parameters), and when the SQLite
    default would be used under a distributed executor. The message names the connection or variable and the
    fix; it never carries a password or the connection's value. Defined here, not in ``store.db``, so that the
    DAGs' retry policy can name it without importing SQLAlchemy at parse time.
    """
