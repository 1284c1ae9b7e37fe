"""Authentication of the hooks' requests, as ``requests.auth.AuthBase`` objects.

- ``LwaAuth``: Login with Amazon. ``POST <lwa_endpoint>`` with ``grant_type=refresh_token``,
  the refresh token and the client id/secret gives an access token (``expires_in`` seconds,
  3600 by default) sent in ``x-amz-access-token`` on every SP-API request (SP-API's
  "Connecting to the Selling Partner API"; no AWS SigV4 signing since 2023-10-02). Cached until
  60 s before it expires, and fetched again once when Amazon answers 401/403 about the token.
- ``MagentoAdminTokenAuth``: ``POST /V1/integration/admin/token {"username", "password"}``
  gives a token valid 4 h by default (Magento's ``oauth/access_token_lifetime/admin``), sent as
  ``Authorization: Bearer``. One token per store and user for the whole process (hooks in
  parallel threads share it), renewed 5 minutes early, and once when Commerce answers 401.
- ``magento_oauth1``: OAuth 1.0a signatures (HMAC-SHA256) for a Commerce integration's tokens,
  from ``requests-oauthlib``; Magento 2.4.4+ refuses integration tokens used as bearer tokens
  unless the store allows it.
- ``BearerAuth``: a fixed token as ``Authorization: Bearer``.

Renewable credentials implement ``hooks.rest.RefreshableAuth.refused``; ``RestHook`` replays a
refused request once. A token endpoint that fails retriably makes the call fail with
``request_sent=False``; one that refuses the credentials raises ``AuthenticationError`` naming
the connection and what to check. No secret or token is logged or shown in a ``repr``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests.auth import AuthBase
from requests_oauthlib import OAuth1

from amazon_commerce_sync.errors import AuthenticationError, FatalError, IntegrationError
from amazon_commerce_sync.hooks.rest import DEFAULT_HEADERS, RefreshableAuth, dumps, loads, send_checked
from amazon_commerce_sync.retry import DEFAULT_POLICY, NO_RETRY, RetryPolicy, call_with_retry

log = logging.getLogger(__name__)

__all__ = ["BearerAuth", "LwaAuth", "MagentoAdminTokenAuth", "magento_oauth1"]

DEFAULT_LWA_ENDPOINT = "https://api.amazon.com/auth/o2/token"
#: An LWA token is renewed this many seconds before it expires.
TOKEN_REFRESH_MARGIN = 60.0
#: Magento's default admin token lifetime (``oauth/access_token_lifetime/admin``, hours), and how early we renew.
ADMIN_TOKEN_TTL = 4 * 3600.0
ADMIN_TOKEN_MARGIN = 300.0


def _token_request(operation: str, refusal: Callable[[str], str], url: str, **kwargs: Any) -> requests.Response:
    """POST to a token endpoint; a refusal (an HTTP 4xx) becomes ``AuthenticationError(refusal(message))``.

    ``message`` is the endpoint's own error text. Transport failures and retriable answers are
    raised as classified.
    """
    try:
        return send_checked("POST", url, operation=operation, **kwargs)
    except FatalError as error:
        if error.status is None:
            raise
        raise AuthenticationError(
            refusal(error.message), operation=operation, status=error.status, code=error.code
        ) from None


class BearerAuth(AuthBase):
    """``Authorization: Bearer <token>`` with a fixed token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


def magento_oauth1(consumer_key: str, consumer_secret: str, access_token: str, access_token_secret: str) -> OAuth1:
    """OAuth 1.0a HMAC-SHA256 signing with a Commerce integration's four credentials.

    JSON bodies are not part of the signature (OAuth 1.0a signs form bodies only), as Magento expects.
    """
    return OAuth1(
        consumer_key,
        client_secret=consumer_secret,
        resource_owner_key=access_token,
        resource_owner_secret=access_token_secret,
        signature_method=SIGNATURE_HMAC_SHA256,
    )


class LwaAuth(RefreshableAuth):
    """Login with Amazon access tokens for the SP-API (see the module docstring).

    :param endpoint: the LWA token URL.
    :param client_id: / ``client_secret``: the application's LWA credentials.
    :param refresh_token: the seller's authorisation.
    :param timeout: (connect, read) seconds of the token request.
    :param conn_id: the Airflow connection, named in errors.
    :param retry_policy: how ``access_token(retry=True)`` retries LWA's retriable failures.
    """

    operation = "lwaToken"

    def __init__(
        self,
        *,
        endpoint: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        timeout: tuple[float, float],
        conn_id: str,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.timeout = timeout
        self.conn_id = conn_id
        self.retry_policy = retry_policy
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def __repr__(self) -> str:
        return f"LwaAuth(conn_id={self.conn_id!r})"

    def _fetch(self) -> tuple[str, float]:
        """One token request: (access token, monotonic expiry time)."""
        response = _token_request(
            self.operation,
            lambda message: (
                f"LWA rejected the credentials: {message}. Check Airflow connection "
                f"'{self.conn_id}': login (LWA client id), password (LWA client secret) and "
                "extra.refresh_token (re-authorise the application if it was revoked)."
            ),
            self.endpoint,
            data={**self._grant(), "client_id": self.client_id, "client_secret": self._client_secret},
            headers=DEFAULT_HEADERS,
            timeout=self.timeout,
        )
        body = loads(response.text) or {}
        token = body.get("access_token")
        if not token:
            raise AuthenticationError("LWA answered without an access_token", operation=self.operation)
        expires_in = float(body.get("expires_in") or 3600)
        return token, time.monotonic() + expires_in

    def _grant(self) -> dict[str, str]:
        """The grant of the token request (a subclass asks for another: ``client_credentials`` with a scope)."""
        return {"grant_type": "refresh_token", "refresh_token": self._refresh_token}

    def access_token(self, *, force: bool = False, retry: bool = True) -> str:
        """The access token, cached until 60 s before it expires.

        :param force: fetch a new one even if the cached one looks valid.
        :param retry: retry LWA's retriable failures (False inside a call that is itself
            retried, so attempts do not multiply).
        :raises AuthenticationError: LWA refused the credentials.
        :raises RetriableError: LWA could not be reached or was unavailable.
        """
        with self._lock:
            now = time.monotonic()
            if force or self._token is None or now >= self._expires_at - TOKEN_REFRESH_MARGIN:
                policy = self.retry_policy if retry else NO_RETRY
                self._token, self._expires_at = call_with_retry(policy, self._fetch, operation=self.operation)
                log.info("Obtained an LWA access token for connection %s", self.conn_id)
            return self._token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["x-amz-access-token"] = self.access_token(retry=False)
        return request

    def refused(self, response: requests.Response, error: IntegrationError) -> bool:
        """A 401/403 about the token (expired, revoked): forget the token the request carried."""
        if response.status_code not in (401, 403) or not _token_problem(error):
            return False
        used = response.request.headers.get("x-amz-access-token")
        with self._lock:
            if self._token == used:
                self._token = None
        return True


def _token_problem(error: IntegrationError) -> bool:
    """Amazon's 401/403 codes and messages about the access token (not about a missing role)."""
    text = f"{error.code} {error.message}".lower()
    return error.code in ("Unauthorized", "InvalidAccessToken") or "token" in text or "expired" in text


# Admin tokens by (token URL, user, password digest), shared by every hook of the process.
_SHARED_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}
_SHARED_TOKEN_LOCK = threading.Lock()


class MagentoAdminTokenAuth(RefreshableAuth):
    """A Commerce admin user's token, shared per process (see the module docstring).

    :param token_url: ``<host>/rest/<store_code>/V1/integration/admin/token``.
    :param username: / ``password``: the admin user's credentials.
    :param timeout: (connect, read) seconds of the token request.
    :param conn_id: the Airflow connection, named in errors.
    """

    operation = "POST /V1/integration/admin/token"

    def __init__(
        self, *, token_url: str, username: str, password: str, timeout: tuple[float, float], conn_id: str
    ) -> None:
        self.token_url = token_url
        self.username = username
        self._password = password
        self.timeout = timeout
        self.conn_id = conn_id
        self._key = (token_url, username, hashlib.sha256(password.encode()).hexdigest()[:16])

    def __repr__(self) -> str:
        return f"MagentoAdminTokenAuth(conn_id={self.conn_id!r}, username={self.username!r})"

    def _fetch(self) -> str:
        response = _token_request(
            self.operation,
            lambda message: (
                f"Commerce refused the admin credentials: {message}. Check login and password "
                f"of Airflow connection '{self.conn_id}' (and that the user may use the REST API)."
            ),
            self.token_url,
            data=dumps({"username": self.username, "password": self._password}),
            headers={**DEFAULT_HEADERS, "Content-Type": "application/json"},
            timeout=self.timeout,
        )
        token = loads(response.text)
        if not isinstance(token, str) or not token:
            raise AuthenticationError("the admin token endpoint answered without a token", operation=self.operation)
        return token

    def token(self) -> str:
        """The process's token for this store and user, fetched (once, no retries) when missing or old.

        :raises AuthenticationError: Commerce refused the credentials.
        :raises RetriableError: Commerce could not be reached or was unavailable.
        """
        with _SHARED_TOKEN_LOCK:
            now = time.monotonic()
            token, expires_at = _SHARED_TOKENS.get(self._key, (None, 0.0))
            if token is None or now >= expires_at:
                token = self._fetch()
                _SHARED_TOKENS[self._key] = (token, now + ADMIN_TOKEN_TTL - ADMIN_TOKEN_MARGIN)
                log.info("Obtained a Commerce admin token for connection %s", self.conn_id)
            return token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def refused(self, response: requests.Response, error: IntegrationError) -> bool:
        """A 401: forget the token the request carried (unless another thread already replaced it)."""
        if response.status_code != 401:
            return False
        used = (response.request.headers.get("Authorization") or "").removeprefix("Bearer ")
        with _SHARED_TOKEN_LOCK:
            if _SHARED_TOKENS.get(self._key, (None, 0.0))[0] == used:
                del _SHARED_TOKENS[self._key]
        return True
