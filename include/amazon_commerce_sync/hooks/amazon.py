"""Amazon Selling Partner API hook: orders, shipment confirmations, feeds and finances.

Connection (``amazon_sp_api``, type ``amazon_sp_api``, or ``http``):

- ``host``: the SP-API endpoint, e.g. ``https://sellingpartnerapi-na.amazon.com``
  (or a sandbox such as ``http://127.0.0.1:8701``);
- ``login`` / ``password``: the Login with Amazon (LWA) client id and client secret;
- extra ``refresh_token`` (required): the seller's LWA refresh token;
- extra ``lwa_endpoint``: default ``https://api.amazon.com/auth/o2/token``;
- extra ``rate_scale``: multiplies Amazon's default rate limits (a sandbox at speed S,
  or a seller granted higher limits), default 1;
- extra ``timeout``: seconds, a number (read) or ``[connect, read]``; default 10 / 60.

Every call acquires a token from a client-side bucket per seller and operation
(``ratelimit.py``), then goes through the REST base (``hooks/rest.py``: session, timeouts,
the one retry policy, ``hooks.classify``). Authentication is ``hooks.auth.LwaAuth``: the LWA
access token is cached until 60 s before it expires, and fetched again once if a call answers
401/403 about the token. Listings follow Amazon's next-page tokens with
``hooks.pagination.NextTokenPaginator`` and raise ``RepeatedPageError`` if one comes back.
Nothing here logs a token, a secret, a pre-signed URL or buyer data.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import requests

from amazon_commerce_sync.constants import AMAZON_CONN_ID
from amazon_commerce_sync.errors import AuthenticationError, RateLimitedError
from amazon_commerce_sync.hooks.auth import DEFAULT_LWA_ENDPOINT, LwaAuth
from amazon_commerce_sync.hooks.operations import RATE_LIMITS, operation_for, removed
from amazon_commerce_sync.hooks.pagination import NextTokenPaginator
from amazon_commerce_sync.hooks.rest import DEFAULT_TIMEOUT, RestHook, connection_base_url, parse_timeout
from amazon_commerce_sync.ratelimit import Limiter, LocalLimiter
from amazon_commerce_sync.retry import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger(__name__)

#: Our buckets run slightly slower than Amazon's, so clock skew and network jitter do not
#: turn into 429s when we call at full speed.
RATE_SAFETY = 0.97
#: ... and hold one token of Amazon's burst back: Amazon counts a request when it arrives, we when we send it, so
#: a request that travels faster than the one before would otherwise find Amazon's bucket still empty (seen on a
#: loaded machine). One token absorbs 1/rate seconds of such jitter and costs that much once per bucket.
BURST_HEADROOM = 1

DEFAULT_INCLUDED_DATA: tuple[str, ...] = (
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
)

#: One limiter per process unless the caller passes one (e.g. a SqlLimiter on the state store).
_PROCESS_LIMITER = LocalLimiter()


@dataclass(frozen=True)
class OrdersPage:
    """One page of searchOrders."""

    orders: list[dict[str, Any]]
    next_token: str | None
    last_updated_before: str | None
    created_before: str | None


class PackageItem(TypedDict):
    orderItemId: str
    quantity: int


class PackageDetail(TypedDict, total=False):
    """confirmShipment's ``packageDetail`` (``carrierCode`` is required in every marketplace)."""

    packageReferenceId: str
    carrierCode: str
    carrierName: str
    shippingMethod: str
    trackingNumber: str
    shipDate: str
    orderItems: list[PackageItem]


@dataclass(frozen=True)
class SpApiSettings:
    """The validated connection. Secrets are kept out of ``repr``."""

    conn_id: str
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    lwa_endpoint: str = DEFAULT_LWA_ENDPOINT
    rate_scale: float = 1.0
    timeout: tuple[float, float] = DEFAULT_TIMEOUT

    @property
    def seller_key(self) -> str:
        """Identifies the seller authorisation without revealing the refresh token."""
        digest = hashlib.sha256(self.refresh_token.encode()).hexdigest()[:16]
        return f"{self.base_url}|{digest}"


def iso_utc(value: datetime) -> str:
    """An aware datetime as ISO 8601 UTC with ``Z`` (milliseconds kept when present)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware datetimes")
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _csv(values: Iterable[str]) -> str:
    return ",".join(values)


def _orders_next_token(body: dict[str, Any]) -> str | None:
    """Orders 2026-01-01: ``pagination.nextToken``, sent back as ``paginationToken``."""
    return (body.get("pagination") or {}).get("nextToken") or None


def _transactions_next_token(body: dict[str, Any]) -> str | None:
    """Finances 2024-06-19: ``payload.nextToken``, sent back as ``nextToken``."""
    return (body.get("payload") or {}).get("nextToken") or None


class AmazonSpApiHook(RestHook):
    """Speak the Selling Partner API in domain terms.

    :param amazon_conn_id: the Airflow connection (see the module docstring).
    :param limiter: token buckets shared by the callers (default: one per process).
    :param retry_policy: the retry policy of every call.
    :param max_rate_wait: the longest a call may wait for a client-side token, in seconds.
    """

    conn_name_attr = "amazon_conn_id"
    default_conn_name = AMAZON_CONN_ID
    conn_type = "amazon_sp_api"  # its form: provider_info.AMAZON_CONNECTION (type http works too)
    hook_name = "Amazon Selling Partner API"

    def __init__(
        self,
        amazon_conn_id: str = default_conn_name,
        *,
        limiter: Limiter | None = None,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        max_rate_wait: float | None = 600.0,
    ) -> None:
        super().__init__(amazon_conn_id, retry_policy=retry_policy)
        self.amazon_conn_id = amazon_conn_id
        self.limiter: Limiter = limiter or _PROCESS_LIMITER
        self.max_rate_wait = max_rate_wait
        self._last_rate_limit: dict[str, float] = {}

    # ------------------------------------------------------------------ connection

    @functools.cached_property
    def settings(self) -> SpApiSettings:
        """The connection, validated once; a clear error names any missing field."""
        conn = self.get_connection(self.amazon_conn_id)
        extra = conn.extra_dejson or {}
        where = f"Airflow connection '{self.amazon_conn_id}'"
        missing = []
        if not conn.host:
            missing.append("host (the SP-API endpoint, e.g. https://sellingpartnerapi-na.amazon.com)")
        if not conn.login:
            missing.append("login (the LWA client id)")
        if not conn.password:
            missing.append("password (the LWA client secret)")
        if not extra.get("refresh_token"):
            missing.append("extra.refresh_token (the seller's LWA refresh token)")
        if missing:
            raise AuthenticationError(f"{where} is missing: {'; '.join(missing)}", operation="connection")
        try:
            rate_scale = float(extra.get("rate_scale", 1) or 1)
            timeout = parse_timeout(extra.get("timeout"))
        except (TypeError, ValueError) as exc:
            raise AuthenticationError(
                f"{where}: extra.rate_scale and extra.timeout must be numbers", operation="connection"
            ) from exc
        if rate_scale <= 0:
            raise AuthenticationError(f"{where}: extra.rate_scale must be positive", operation="connection")
        return SpApiSettings(
            conn_id=self.amazon_conn_id,
            base_url=connection_base_url(conn),
            client_id=conn.login,
            client_secret=conn.password,
            refresh_token=extra["refresh_token"],
            lwa_endpoint=extra.get("lwa_endpoint") or DEFAULT_LWA_ENDPOINT,
            rate_scale=rate_scale,
            timeout=timeout,
        )

    @functools.cached_property
    def auth(self) -> LwaAuth:
        """Login with Amazon: ``x-amz-access-token`` on every request."""
        s = self.settings
        return LwaAuth(
            endpoint=s.lwa_endpoint,
            client_id=s.client_id,
            client_secret=s.client_secret,
            refresh_token=s.refresh_token,
            timeout=s.timeout,
            conn_id=s.conn_id,
            retry_policy=self.retry_policy,
        )

    def access_token(self, *, force: bool = False, retry: bool = True) -> str:
        """The LWA access token, cached until 60 s before it expires (see ``LwaAuth.access_token``)."""
        return self.auth.access_token(force=force, retry=retry)

    def encode_body(self, body: Any) -> str:
        return json.dumps(body, default=str)

    # ------------------------------------------------------------------ rate limits

    def _bucket(self, operation: str) -> tuple[str, float, int]:
        rate, burst = RATE_LIMITS[operation]
        return (
            f"sp-api|{self.settings.seller_key}|{operation}",
            rate * self.settings.rate_scale * RATE_SAFETY,
            max(1, burst - BURST_HEADROOM),
        )

    def bucket_tokens(self, operation: str) -> tuple[float, float]:
        """(tokens now, tokens per second) of the operation's client-side bucket, the one every caller of it for
        this seller shares (``Limiter.tokens``; nothing is taken). Rate: Amazon's (``hooks/operations.py``) scaled."""
        key, rate, burst = self._bucket(operation)
        return self.limiter.tokens(key, rate, burst), rate

    def _attempt(self, method: str, path: str, operation: str, params: Any, body: Any) -> requests.Response:
        """One attempt, after a token from the operation's bucket; a 429 drains the bucket for everyone.

        :raises UnknownOperationError: the operation (or its path) is not in ``hooks/operations.py``: nothing is sent.
        """
        operation_for(operation, method, path)
        key, rate, burst = self._bucket(operation)
        waited = self.limiter.acquire(key, rate, burst, timeout=self.max_rate_wait)
        if waited > 1:
            log.info("%s: waited %.1f s for the client-side rate limit", operation, waited)
        try:
            return super()._attempt(method, path, operation, params, body)
        except RateLimitedError:
            self.limiter.penalize(key)
            raise

    def _observe(self, operation: str, response: requests.Response) -> None:
        """Remember the rate Amazon applied (``x-amzn-RateLimit-Limit``), for ``rate_limit_headroom``."""
        limit = response.headers.get("x-amzn-RateLimit-Limit")
        if limit:
            try:
                self._last_rate_limit[operation] = float(limit)
            except ValueError:
                pass

    # ------------------------------------------------------------------ orders

    def search_orders(
        self,
        *,
        marketplace_ids: Sequence[str],
        last_updated_after: datetime | None = None,
        created_after: datetime | None = None,
        last_updated_before: datetime | None = None,
        created_before: datetime | None = None,
        fulfillment_statuses: Sequence[str] | None = None,
        fulfilled_by: Sequence[str] | None = None,
        included_data: Sequence[str] = DEFAULT_INCLUDED_DATA,
        max_results_per_page: int = 100,
    ) -> Iterator[OrdersPage]:
        """Pages of searchOrders (Orders API 2026-01-01), following ``pagination.nextToken``.

        Exactly one of ``last_updated_after`` / ``created_after`` is required. Ends with the
        page that has no next token. ``marketplace_ids``: up to 50, all of the connection's region
        (another region's get 403); each page costs one token of the seller's searchOrders bucket,
        whatever the number of marketplaces, so ask for all of them at once.

        :raises RepeatedPageError: when Amazon hands out a token it had already given: the
            pages yielded so far are not the whole window (a server bug must neither loop
            forever nor pass for the end of the listing).
        """
        if (last_updated_after is None) == (created_after is None):
            raise ValueError("pass exactly one of last_updated_after and created_after")
        if not marketplace_ids or len(marketplace_ids) > 50:
            raise ValueError("marketplace_ids must name 1 to 50 marketplaces")
        if not 1 <= max_results_per_page <= 100:
            raise ValueError("max_results_per_page must be between 1 and 100")
        params: dict[str, Any] = {"marketplaceIds": _csv(marketplace_ids), "maxResultsPerPage": max_results_per_page}
        for name, value in (
            ("lastUpdatedAfter", last_updated_after),
            ("createdAfter", created_after),
            ("lastUpdatedBefore", last_updated_before),
            ("createdBefore", created_before),
        ):
            if value is not None:
                params[name] = iso_utc(value)
        if fulfillment_statuses:
            params["fulfillmentStatuses"] = _csv(fulfillment_statuses)
        if fulfilled_by:
            params["fulfilledBy"] = _csv(fulfilled_by)
        if included_data:
            params["includedData"] = _csv(included_data)
        path = "/orders/2026-01-01/orders"
        for body in self._token_pages(path, "searchOrders", params, "paginationToken", _orders_next_token):
            yield OrdersPage(
                orders=body.get("orders") or [],
                next_token=_orders_next_token(body),
                last_updated_before=body.get("lastUpdatedBefore"),
                created_before=body.get("createdBefore"),
            )

    def get_order(self, order_id: str, included_data: Sequence[str] = DEFAULT_INCLUDED_DATA) -> dict[str, Any]:
        """One order (Orders API 2026-01-01); ``NotFoundError`` when Amazon has no such order."""
        params = {"includedData": _csv(included_data)} if included_data else None
        body = self._call("GET", f"/orders/2026-01-01/orders/{order_id}", operation="getOrder", params=params)
        return (body or {}).get("order") or {}

    def confirm_shipment(
        self, order_id: str, *, marketplace_id: str, package_detail: PackageDetail | dict[str, Any]
    ) -> None:
        """Confirm a shipped package (Orders API v0); answers 204.

        Not idempotent: retried only when the request certainly did not reach Amazon.
        """
        if not package_detail.get("carrierCode"):
            raise ValueError("package_detail.carrierCode is required in every marketplace")
        self._call(
            "POST",
            f"/orders/v0/orders/{order_id}/shipmentConfirmation",
            operation="confirmShipment",
            body={"marketplaceId": marketplace_id, "packageDetail": package_detail},
            idempotent=False,
        )

    # ------------------------------------------------------------------ feeds

    def create_feed_document(self, content_type: str) -> tuple[str, str]:
        """Create a feed document; returns (feedDocumentId, pre-signed upload URL)."""
        body = self._call(
            "POST", "/feeds/2021-06-30/documents", operation="createFeedDocument", body={"contentType": content_type}
        )
        return body["feedDocumentId"], body["url"]

    def upload_feed_document(self, url: str, content: bytes, content_type: str) -> None:
        """PUT the content to the pre-signed URL (no SP-API headers; the URL is never logged)."""
        headers = {"Content-Type": content_type}
        self._request_url("PUT", url, operation="uploadFeedDocument", data=content, headers=headers)

    def create_feed(self, feed_type: str, marketplace_ids: Sequence[str], document_id: str) -> str:
        """Submit an uploaded document for processing; returns the feedId. Not idempotent."""
        body = self._call(
            "POST",
            "/feeds/2021-06-30/feeds",
            operation="createFeed",
            body={"feedType": feed_type, "marketplaceIds": list(marketplace_ids), "inputFeedDocumentId": document_id},
            idempotent=False,
        )
        return body["feedId"]

    def submit_feed(
        self,
        feed_type: str,
        marketplace_ids: Sequence[str],
        content: bytes,
        content_type: str = "text/xml; charset=UTF-8",
    ) -> str:
        """Create a document, upload ``content`` and create the feed; returns the feedId."""
        document_id, url = self.create_feed_document(content_type)
        self.upload_feed_document(url, content, content_type)
        feed_id = self.create_feed(feed_type, marketplace_ids, document_id)
        log.info("Submitted feed %s (%s, %s bytes)", feed_id, feed_type, len(content))
        return feed_id

    def get_feed(self, feed_id: str) -> dict[str, Any]:
        """The feed's status (``processingStatus``, ``resultFeedDocumentId`` when DONE)."""
        return self._call("GET", f"/feeds/2021-06-30/feeds/{feed_id}", operation="getFeed") or {}

    def list_feeds(self, feed_types: Sequence[str], *, created_since: datetime | None = None) -> list[dict[str, Any]]:
        """Recent feeds of these types (newest first, one page of up to 100), optionally created since a time."""
        params: dict[str, Any] = {"feedTypes": _csv(feed_types), "pageSize": 100}
        if created_since is not None:
            params["createdSince"] = iso_utc(created_since)
        body = self._call("GET", "/feeds/2021-06-30/feeds", operation="getFeeds", params=params) or {}
        return list(body.get("feeds") or [])

    def get_feed_document(self, document_id: str) -> dict[str, Any]:
        """``{"feedDocumentId", "url", "compressionAlgorithm"?}`` of a (result) document."""
        return self._call("GET", f"/feeds/2021-06-30/documents/{document_id}", operation="getFeedDocument") or {}

    def download_feed_document(self, document_id: str) -> bytes:
        """The document's content, gunzipped when ``compressionAlgorithm`` is GZIP."""
        document = self.get_feed_document(document_id)
        content = self._request_url("GET", document["url"], operation="downloadFeedDocument").content
        if (document.get("compressionAlgorithm") or "").upper() == "GZIP":
            content = gzip.decompress(content)
        return content

    # ------------------------------------------------------------------ finances

    def list_transactions(
        self,
        *,
        posted_after: datetime,
        posted_before: datetime | None = None,
        marketplace_id: str | None = None,
        transaction_status: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``Transaction`` objects (Finances 2024-06-19 ``listTransactions``) posted in
        ``[posted_after, posted_before)``, following ``nextToken`` with the same arguments. Pages may be empty.

        Both times must be more than two minutes before the request (Amazon's rule); a range over 180 days
        answers nothing. Leave ``marketplace_id`` out to see US merchant-fulfilled orders (Amazon leaves them
        out when it is given).

        :raises RepeatedPageError: when Amazon hands out a ``nextToken`` it had already given.
        """
        params: dict[str, Any] = {"postedAfter": iso_utc(posted_after)}
        if posted_before is not None:
            params["postedBefore"] = iso_utc(posted_before)
        if marketplace_id:
            params["marketplaceId"] = marketplace_id
        if transaction_status:
            params["transactionStatus"] = transaction_status
        path, operation = "/finances/2024-06-19/transactions", "listTransactions"
        for body in self._token_pages(path, operation, params, "nextToken", _transactions_next_token):
            yield (body.get("payload") or {}).get("transactions") or []

    def _token_pages(
        self,
        path: str,
        operation: str,
        params: dict[str, Any],
        next_param: str,
        next_token: Callable[[dict[str, Any]], str | None],
    ) -> NextTokenPaginator[dict[str, Any]]:
        """The pages of a GET listing: each next one asked for with ``next_param`` = the previous page's token."""

        def fetch(token: str | None) -> dict[str, Any]:
            page_params = params if token is None else {**params, next_param: token}
            return self._call("GET", path, operation=operation, params=page_params) or {}

        return NextTokenPaginator(fetch, next_token, operation=operation)

    # ------------------------------------------------------------------ health

    def rate_limit_headroom(self) -> dict[str, dict[str, float | None]]:
        """Per operation still served (not past Amazon's removal date): the rate Amazon applied last
        (``x-amzn-RateLimit-Limit``) and ours."""
        out: dict[str, dict[str, float | None]] = {}
        gone = {op.name for op in removed(RATE_LIMITS, datetime.now(UTC).date())}
        for operation in sorted((set(RATE_LIMITS) | set(self._last_rate_limit)) - gone):
            _, rate, burst = self._bucket(operation)
            out[operation] = {
                "server_rate": self._last_rate_limit.get(operation),
                "client_rate": rate,
                "burst": float(burst),
            }
        return out

    def check_health(self, *, now: datetime | None = None) -> dict[str, Any]:
        """Obtain a token and make one cheap authorised call (``listTransactions``, Finances 2024-06-19, last hour).

        Not a Finances v0 call: those are deprecated and past their removal date (``hooks/operations.py``).
        """
        now = now or datetime.now(UTC)
        started = time.monotonic()
        self.access_token()
        token_ms = round((time.monotonic() - started) * 1000)
        started = time.monotonic()
        params = {
            "postedAfter": iso_utc(now - timedelta(hours=1)),
            "postedBefore": iso_utc(now - timedelta(minutes=3)),  # Amazon: more than two minutes before now
        }
        self._call("GET", "/finances/2024-06-19/transactions", operation="listTransactions", params=params)
        return {
            "ok": True,
            "base_url": self.settings.base_url,
            "token_ms": token_ms,
            "call": "listTransactions",
            "call_ms": round((time.monotonic() - started) * 1000),
            "rate_limits": self.rate_limit_headroom(),
        }
