"""One REST base for both hooks: session, base URL, timeouts, the retry loop and error sorting.

``RestHook`` builds on Airflow's ``HttpHook`` the way the dbt Cloud provider's ``DbtCloudHook``
does: the connection is validated once (a hook's ``settings``, a cached property), requests are
authenticated by a ``requests.auth.AuthBase`` object (``hooks/auth.py``; given with each request,
so the session ``get_conn`` returns carries no credentials), and every domain method goes
through one ``_call``:

- the URL is the connection's base URL + the path (``url_for``);
- every request has a timeout (connect 10 s / read 60 s unless the connection's ``timeout``
  extra says otherwise);
- the one retry policy of ``retry.py`` (waits off with ``ACS_RETRY_NO_WAIT=1``) retries only
  ``RetriableError``; a non-idempotent call only when the request certainly had no effect
  (``IntegrationError.safe_to_replay``);
- failures are sorted by ``hooks.classify.classify``; an auth object that can renew its
  credentials (``RefreshableAuth``) gets one replay when the server refused them, and a
  retriable failure to obtain credentials is a ``ConnectionFailedError`` with
  ``request_sent=False`` (nothing reached the API, so even a write may be sent again);
- JSON numbers are read as ``Decimal`` (``loads``); ``dumps`` writes ``Decimal`` as exact numbers.

``HttpHook.run`` is not used: it would send the connection's login/password as HTTP Basic
auth and every connection extra (an LWA refresh token, OAuth secrets) as an HTTP header, and
it logs response bodies on errors. Nothing here logs a URL's query string, a body or a
credential: ``install_log_redaction`` keeps them out of urllib3's and oauthlib's DEBUG output.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import threading
from decimal import Decimal
from typing import Any, Protocol

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase

from amazon_commerce_sync.errors import ConnectionFailedError, IntegrationError, RetriableError
from amazon_commerce_sync.hooks.classify import classify
from amazon_commerce_sync.retry import DEFAULT_POLICY, RetryPolicy, call_with_retry

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_TIMEOUT",
    "RefreshableAuth",
    "RestHook",
    "connection_base_url",
    "dumps",
    "install_log_redaction",
    "loads",
    "parse_timeout",
    "send_checked",
]

#: (connect, read) seconds of every request unless the connection's ``timeout`` extra says otherwise.
DEFAULT_TIMEOUT = (10.0, 60.0)
DEFAULT_HEADERS = {"Accept": "application/json", "User-Agent": "amazon-commerce-sync/0.1"}
_ID_IN_PATH = re.compile(r"/\d+")


# ---------------------------------------------------------------------- connection values


def parse_timeout(value: Any, default: tuple[float, float] = DEFAULT_TIMEOUT) -> tuple[float, float]:
    """A connection's ``timeout`` extra: a number (read timeout, seconds) or ``[connect, read]``.

    :raises TypeError, ValueError: when it is neither.
    """
    if value is None or value == "":
        return default
    if isinstance(value, list | tuple) and len(value) == 2:
        return float(value[0]), float(value[1])
    return default[0], float(value)


def connection_base_url(conn: Any) -> str:
    """``scheme://host[:port]`` of an Airflow connection (``https`` unless ``host`` or ``schema`` says)."""
    host = conn.host if "://" in conn.host else f"{conn.schema or 'https'}://{conn.host}"
    if conn.port:
        host = f"{host}:{conn.port}"
    return host.rstrip("/")


# ---------------------------------------------------------------------- JSON with Decimal


def loads(text: str) -> Any:
    """Parse JSON with floats as ``Decimal`` (None for an empty body)."""
    return json.loads(text, parse_float=Decimal) if text else None


_MARK = "\x00decimal:"
_MARKED = re.compile(r'"\\u0000decimal:([^"]*)"')


def _mark(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"cannot send {obj} as a JSON number")
        return _MARK + str(obj)
    if isinstance(obj, dict):
        return {k: _mark(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_mark(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Serialise to JSON, writing ``Decimal`` as an exact number (``Decimal("12.50")`` -> ``12.50``).

    :raises ValueError: for a NaN or infinite ``Decimal``.
    """
    return _MARKED.sub(lambda m: m.group(1), json.dumps(_mark(obj), default=str))


# ---------------------------------------------------------------------- requests outside a hook's session


def send_checked(
    method: str, url: str, *, operation: str, timeout: tuple[float, float], **kwargs: Any
) -> requests.Response:
    """One request without a hook's session (token endpoints, pre-signed URLs); no retries here.

    :param timeout: (connect, read) seconds, required.
    :param kwargs: passed to ``requests.request`` (``data``, ``headers``...).
    :raises IntegrationError: the classified failure (transport error or HTTP status >= 400).
    """
    try:
        response = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise classify(exc, operation) from None  # the exception's text holds the URL
    if response.status_code >= 400:
        raise classify(response, operation)
    return response


# ---------------------------------------------------------------------- the base hook


class RefreshableAuth(AuthBase):
    """An auth object whose credentials expire and can be obtained again (LWA, Magento admin token)."""

    def refused(self, response: requests.Response, error: IntegrationError) -> bool:
        """The server refused ``response.request``: drop the credentials it carried if they are the cause.

        :returns: True when new credentials will be used, so the request is worth one replay.
        """
        return False


def _read_environment_once(session: requests.Session, base_url: str) -> None:
    """Give ``session`` what ``requests`` would read from the environment for every request to ``base_url``
    (proxies with ``NO_PROXY``, ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, ``.netrc`` credentials), read once.

    With ``trust_env`` on, ``requests`` scans the whole environment on each request
    (``Session.merge_environment_settings``): in a worker with Airflow's many variables, milliseconds of CPU per
    call. Every request of the session goes to ``base_url``'s host, so one reading is the same reading.
    """
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.auth = requests.utils.get_netrc_auth(base_url)  # used only by a request without auth of its own
    session.trust_env = False


class ConnectionSettings(Protocol):
    """What the base needs of a hook's validated connection."""

    conn_id: str
    base_url: str
    timeout: tuple[float, float]


class RestHook(HttpHook):
    """The transport of a REST hook; subclasses speak the domain.

    A subclass provides ``settings`` (its validated connection, a cached property) and ``auth``
    (a cached ``AuthBase`` or None), and may override ``url_for``, ``encode_body`` and
    ``_observe``.

    :param conn_id: the Airflow connection.
    :param retry_policy: the retry policy of every call.
    """

    conn_type = "http"
    #: Bounds the requests in flight across the hooks that share it (one hook per thread): a run with more threads
    #: than its Commerce concurrency sends at most that many at once (``pipelines.order_import``). None: unbounded.
    gate: threading.Semaphore | None = None

    def __init__(self, conn_id: str, *, retry_policy: RetryPolicy = DEFAULT_POLICY) -> None:
        super().__init__(method="GET", http_conn_id=conn_id)
        install_log_redaction()
        self.retry_policy = retry_policy

    @property
    def settings(self) -> ConnectionSettings:
        raise NotImplementedError

    @property
    def auth(self) -> AuthBase | None:
        raise NotImplementedError

    def url_for(self, path: str) -> str:
        """The URL of an API path (``/orders/...``)."""
        return self.settings.base_url + path

    def encode_body(self, body: Any) -> str:
        """A request body as JSON text."""
        return dumps(body)

    def _observe(self, operation: str, response: requests.Response) -> None:
        """Look at every answer (e.g. rate-limit headers); nothing by default."""

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: Any = None) -> requests.Session:
        """A keep-alive session without credentials (no Basic auth, no connection extras as headers).

        ``_attempt`` adds the hook's ``auth`` to each request it sends.
        """
        session = requests.Session()
        _read_environment_once(session, self.settings.base_url)
        if self.keep_alive_adapter is not None:
            session.mount("http://", self.keep_alive_adapter)
            session.mount("https://", self.keep_alive_adapter)
        session.headers.update(DEFAULT_HEADERS)
        if headers:
            session.headers.update(headers)
        self.base_url = self.settings.base_url
        self._base_url_initialized = True
        return session

    @functools.cached_property
    def session(self) -> requests.Session:
        """This hook's session (one per hook; hooks are not shared between threads)."""
        return self.get_conn()

    def _attempt(self, method: str, path: str, operation: str, params: Any, body: Any) -> requests.Response:
        """Send once (replayed once if the auth renewed refused credentials); raise the classified failure."""
        url = self.url_for(path)
        data = self.encode_body(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        auth, timeout = self.auth, self.settings.timeout
        replayed = False
        while True:
            try:
                with self.gate or contextlib.nullcontext():
                    response = self.session.request(
                        method, url, params=params, data=data, headers=headers, auth=auth, timeout=timeout
                    )
            except requests.RequestException as exc:
                # ``from None``: the transport exception's text holds the URL and its query.
                raise classify(exc, operation) from None
            except RetriableError as exc:
                # Raised by the auth object, before anything was sent (e.g. the token endpoint is down).
                raise ConnectionFailedError(
                    f"could not authenticate before sending ({exc})", operation=operation, request_sent=False
                ) from exc
            self._observe(operation, response)
            if response.status_code < 400:
                return response
            error = classify(response, operation)
            if not replayed and isinstance(auth, RefreshableAuth) and auth.refused(response, error):
                log.info("%s: credentials refused (%s); replaying with new ones", operation, error.code or error.status)
                replayed = True
                continue
            raise error

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str | None = None,
        params: Any = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        """One API call with retries and classification; returns the parsed JSON (None if empty).

        :param operation: the name in errors and logs (default ``METHOD /path`` with ids as ``{id}``).
        :param idempotent: False for writes that are retried only when the server certainly did
            not act (``safe_to_replay``); after an ambiguous failure the caller looks up the
            natural key before trying again.
        :raises IntegrationError: the classified failure once the policy gives up.
        """
        operation = operation or f"{method} {_ID_IN_PATH.sub('/{id}', path)}"
        response = call_with_retry(
            self.retry_policy,
            self._attempt,
            method,
            path,
            operation,
            params,
            body,
            operation=operation,
            retry_if=None if idempotent else (lambda exc: exc.safe_to_replay),
        )
        return loads(response.text)

    def _request_url(self, method: str, url: str, *, operation: str, **kwargs: Any) -> requests.Response:
        """A request to a URL outside the API (a pre-signed document URL): no credentials, no session.

        With the connection's timeout and the retry policy; the URL (it holds a signature) is never logged.

        :raises IntegrationError: the classified failure once the policy gives up.
        """
        return call_with_retry(
            self.retry_policy,
            lambda: send_checked(method, url, operation=operation, timeout=self.settings.timeout, **kwargs),
            operation=operation,
        )

    def check_health(self) -> dict[str, Any]:
        """Authenticate and make one cheap authorised call; a dict with ``ok`` and timings."""
        raise NotImplementedError

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's connection test: ``check_health`` with its error as the message."""
        try:
            self.check_health()
        except IntegrationError as exc:
            return False, str(exc)
        return True, "Connection successfully tested"


# ---------------------------------------------------------------------- log hygiene


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
