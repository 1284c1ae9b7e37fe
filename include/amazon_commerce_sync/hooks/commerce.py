"""Adobe Commerce (Magento 2.4) REST hook: orders, invoices, shipments, refunds, stock, customers.

Connection (``commerce``, type ``adobe_commerce``, or ``http``):

- ``host``: the store's base URL, e.g. ``https://shop.example.com`` (or ``http://127.0.0.1:8702``);
- extra ``store_code``: the store view in ``/rest/<store_code>/V1/...`` (default ``default``);
- extra ``auth``, one of:

  - ``admin``: ``login`` / ``password`` of an admin user; the admin token from
    ``POST /V1/integration/admin/token`` is cached for 4 h minus a margin and fetched
    again once when a call answers 401;
  - ``bearer``: a token in ``password`` or extra ``token``;
  - ``oauth1``: extra ``consumer_key``, ``consumer_secret``, ``access_token``,
    ``access_token_secret`` of an integration; requests are OAuth 1.0a signed with
    HMAC-SHA256, as Magento 2.4.4+ requires for integration tokens;
- extra ``timeout``: seconds, a number (read) or ``[connect, read]``; default 10 / 60.

JSON numbers are parsed as ``Decimal``, and ``Decimal`` values are written as exact JSON
numbers. Every call goes through the REST base (``hooks/rest.py``: session, timeouts, the one
retry policy, ``hooks.classify``) with the auth object of ``hooks/auth.py`` the connection
names; searches follow ``currentPage`` with ``hooks.pagination.CurrentPagePaginator``.

Writes that are not idempotent (``create_order``, ``invoice_order``, ``ship_order``,
``add_shipment_track``, ``refund_order``, ``create_customer``, ``add_order_comment``) are retried only when the
request certainly never reached the server (connection refused, HTTP 429). After an
ambiguous failure (timeout, dropped connection, 5xx) they raise, and the caller must look
up the natural key (``find_orders_by_ext_order_ids``, the order's invoices...) before
trying again: Magento has no idempotency key, a blind retry can duplicate an order.

URLs are never logged (a customer search carries an e-mail in its query string).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from requests.auth import AuthBase

from amazon_commerce_sync.constants import COMMERCE_CONN_ID
from amazon_commerce_sync.currency import StoreCurrency
from amazon_commerce_sync.errors import BadRequestError, FatalError, NotFoundError
from amazon_commerce_sync.hooks.auth import BearerAuth, MagentoAdminTokenAuth, magento_oauth1
from amazon_commerce_sync.hooks.commerce_connection import CommerceSettings, parse_connection
from amazon_commerce_sync.hooks.pagination import CurrentPagePaginator
from amazon_commerce_sync.hooks.rest import RestHook
from amazon_commerce_sync.hooks.search_criteria import Filter, magento_datetime, search_criteria
from amazon_commerce_sync.retry import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger(__name__)

BATCH = 100


def _chunks(values: Iterable[str], size: int = BATCH) -> Iterator[list[str]]:
    chunk: list[str] = []
    for value in dict.fromkeys(values):  # de-duplicated, order kept
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class CommerceHook(RestHook):
    """Speak Adobe Commerce's REST API in domain terms.

    :param commerce_conn_id: the Airflow connection (see the module docstring).
    :param retry_policy: the retry policy of every call.
    """

    conn_name_attr = "commerce_conn_id"
    default_conn_name = COMMERCE_CONN_ID
    conn_type = "adobe_commerce"  # its form: provider_info.COMMERCE_CONNECTION (type http works too)
    hook_name = "Adobe Commerce"

    def __init__(self, commerce_conn_id: str = default_conn_name, *, retry_policy: RetryPolicy = DEFAULT_POLICY):
        super().__init__(commerce_conn_id, retry_policy=retry_policy)
        self.commerce_conn_id = commerce_conn_id

    # ------------------------------------------------------------------ connection

    @functools.cached_property
    def settings(self) -> CommerceSettings:
        """The connection, validated once; a clear error names any missing field (``AuthenticationError``)."""
        return parse_connection(self.get_connection(self.commerce_conn_id), self.commerce_conn_id)

    @functools.cached_property
    def auth(self) -> AuthBase:
        """The auth object the connection's ``auth`` extra names (see the module docstring)."""
        s = self.settings
        if s.auth == "oauth1" and s.oauth:
            return magento_oauth1(**s.oauth)
        if s.auth == "bearer":
            return BearerAuth(s.token or "")
        return MagentoAdminTokenAuth(
            token_url=self.rest_url("/V1/integration/admin/token"),
            username=s.username or "",
            password=s.password or "",
            timeout=s.timeout,
            conn_id=s.conn_id,
        )

    def rest_url(self, path: str) -> str:
        """``<host>/rest/<store_code>/V1/...`` for ``path`` = ``/V1/...``."""
        return f"{self.settings.base_url}/rest/{self.settings.store_code}{path}"

    def url_for(self, path: str) -> str:
        """``rest_url(path)``; a path already naming its store view (``/rest/<code>/V1/...``) is kept."""
        return f"{self.settings.base_url}{path}" if path.startswith("/rest/") else self.rest_url(path)

    # ------------------------------------------------------------------ search

    def search_page(
        self,
        resource: str,
        filter_groups: Sequence[Sequence[Filter]],
        *,
        page_size: int = 100,
        current_page: int = 1,
        sort: Sequence[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        """One page of ``GET /V1/<resource>?searchCriteria...``: ``{items, total_count, ...}``."""
        params = search_criteria(filter_groups, sort=sort, page_size=page_size, current_page=current_page)
        return self._call("GET", f"/V1/{resource}", params=params, operation=f"GET /V1/{resource}") or {}

    def search_pages(
        self,
        resource: str,
        filter_groups: Sequence[Sequence[Filter]],
        *,
        page_size: int = 100,
        sort: Sequence[tuple[str, str]] | None = (("entity_id", "ASC"),),
    ) -> CurrentPagePaginator:
        """The pages (whole bodies: ``items``, ``total_count``) of a search, following ``currentPage``.

        Ends by ``total_count`` or with a short page: Magento answers a page beyond the end with
        the last page again, so an empty page never comes. Iterating raises ``RepeatedPageError``
        when a page brings exactly the items of one already read (the result shrank while it was
        paged, so some items were skipped).
        """
        return CurrentPagePaginator(
            lambda page: self.search_page(resource, filter_groups, page_size=page_size, current_page=page, sort=sort),
            page_size=page_size,
            operation=f"GET /V1/{resource}",
        )

    def search(
        self,
        resource: str,
        filter_groups: Sequence[Sequence[Filter]],
        page_size: int = 100,
        sort: Sequence[tuple[str, str]] | None = (("entity_id", "ASC"),),
    ) -> Iterator[list[dict[str, Any]]]:
        """The non-empty pages of items of a search (see ``search_pages``).

        :raises RepeatedPageError: when Magento answers a page already read.
        """
        for body in self.search_pages(resource, filter_groups, page_size=page_size, sort=sort):
            items = body.get("items") or []
            if items:
                yield items

    # ------------------------------------------------------------------ orders

    def find_orders_by_ext_order_ids(self, ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Every order per external (Amazon) order id: one ``in`` search per 100 ids.

        ``ext_order_id`` is not unique in Magento: all matches are returned; ids without an
        order map to an empty list.
        """
        found: dict[str, list[dict[str, Any]]] = {}
        for chunk in _chunks(ids):
            found.update({i: [] for i in chunk})
            for items in self.search("orders", [[Filter("ext_order_id", chunk, "in")]], page_size=BATCH):
                for order in items:
                    found.setdefault(str(order.get("ext_order_id")), []).append(order)
        return found

    def find_order_by_increment_id(self, increment_id: str, store_id: int | None = None) -> dict[str, Any] | None:
        """The order with this increment id (unique per store), or None."""
        groups = [[Filter("increment_id", increment_id)]]
        if store_id is not None:
            groups.append([Filter("store_id", store_id)])
        for items in self.search("orders", groups, page_size=10):
            return items[0]
        return None

    def get_order(self, entity_id: int) -> dict[str, Any]:
        """``GET /V1/orders/{id}``; ``NotFoundError`` when missing."""
        return self._call("GET", f"/V1/orders/{int(entity_id)}")

    def save_order_address(self, order_id: int, address: dict[str, Any]) -> dict[str, Any]:
        """``PUT /V1/orders/{parent_id}`` (the order address repository): update one of the order's addresses,
        identified by its ``entity_id``. Idempotent: the same body twice leaves the same address."""
        return self._call("PUT", f"/V1/orders/{int(order_id)}", body={"entity": address})

    def create_order(self, entity: dict[str, Any]) -> dict[str, Any]:
        """``POST /V1/orders`` with the order entity; returns the saved order.

        Not retried after an ambiguous failure: the caller must look the order up by its
        natural key (``ext_order_id``, ``increment_id``) before trying again.
        """
        return self._call("POST", "/V1/orders", body={"entity": entity}, idempotent=False)

    def invoice_order(
        self, order_id: int, items: list[dict[str, Any]] | None = None, capture: bool = False, notify: bool = False
    ) -> int:
        """``POST /V1/order/{id}/invoice``; returns the invoice id. Not idempotent."""
        body: dict[str, Any] = {"capture": capture, "notify": notify}
        if items:
            body["items"] = items
        return int(self._call("POST", f"/V1/order/{int(order_id)}/invoice", body=body, idempotent=False))

    def ship_order(
        self,
        order_id: int,
        items: list[dict[str, Any]],
        tracks: list[dict[str, Any]],
        notify: bool = False,
        comment: str | None = None,
    ) -> int:
        """``POST /V1/order/{id}/ship`` with items and tracks; returns the shipment id. Not idempotent."""
        body: dict[str, Any] = {"items": items, "tracks": tracks, "notify": notify}
        if comment:
            body["comment"] = {"comment": comment, "is_visible_on_front": 0}
            body["appendComment"] = True
        return int(self._call("POST", f"/V1/order/{int(order_id)}/ship", body=body, idempotent=False))

    def get_shipment(self, shipment_id: int) -> dict[str, Any]:
        """``GET /V1/shipment/{id}`` with its items, tracks and comments; ``NotFoundError`` when missing."""
        return self._call("GET", f"/V1/shipment/{int(shipment_id)}")

    def add_shipment_track(
        self, order_id: int, shipment_id: int, track_number: str, title: str, carrier_code: str = "custom"
    ) -> int:
        """``POST /V1/shipment/track`` (Magento's ``ShipmentTrackRepositoryInterface::save``): a track on an
        existing shipment of the order; returns the track id. Magento answers 400 ("Could not save the shipment
        tracking.") when the shipment is not the order's. Not idempotent: the same body twice makes two tracks."""
        entity = {
            "order_id": int(order_id),
            "parent_id": int(shipment_id),
            "track_number": track_number,
            "title": title,
            "carrier_code": carrier_code,
        }
        answer = self._call("POST", "/V1/shipment/track", body={"entity": entity}, idempotent=False)
        return int(answer["entity_id"])

    def refund_order(
        self,
        order_id: int,
        items: list[dict[str, Any]],
        *,
        shipping_amount: Decimal | None = None,
        adjustment_positive: Decimal | None = None,
        adjustment_negative: Decimal | None = None,
        return_to_stock_items: list[int] | None = None,
        notify: bool = False,
    ) -> int:
        """``POST /V1/order/{id}/refund`` (offline); returns the credit memo id. Not idempotent. Shipping and
        adjustments are BASE-currency amounts (``CreditmemoFactory::initData``; ``currency.creditmemo_arguments``)."""
        arguments: dict[str, Any] = {}
        if shipping_amount is not None:
            arguments["shipping_amount"] = Decimal(shipping_amount)
        if adjustment_positive is not None:
            arguments["adjustment_positive"] = Decimal(adjustment_positive)
        if adjustment_negative is not None:
            arguments["adjustment_negative"] = Decimal(adjustment_negative)
        if return_to_stock_items:
            arguments["extension_attributes"] = {"return_to_stock_items": list(return_to_stock_items)}
        body: dict[str, Any] = {"items": items, "notify": notify}
        if arguments:
            body["arguments"] = arguments
        return int(self._call("POST", f"/V1/order/{int(order_id)}/refund", body=body, idempotent=False))

    def cancel_order(self, order_id: int) -> bool:
        """``POST /V1/orders/{id}/cancel``: False when Magento cannot cancel it (shipped, on hold...)."""
        return bool(self._call("POST", f"/V1/orders/{int(order_id)}/cancel"))

    def hold_order(self, order_id: int) -> bool:
        """``POST /V1/orders/{id}/hold``; an order already on hold is a success."""
        return self._hold_transition(order_id, "hold", lambda state: state == "holded")

    def unhold_order(self, order_id: int) -> bool:
        """``POST /V1/orders/{id}/unhold``; an order no longer on hold is a success."""
        return self._hold_transition(order_id, "unhold", lambda state: state != "holded")

    def _hold_transition(self, order_id: int, action: str, reached: Callable[[str | None], bool]) -> bool:
        # Retried after a lost answer, the action may already have landed: Magento then refuses the replay with
        # 400 "A hold action is not available". The order's state says whether the goal is reached.
        try:
            return bool(self._call("POST", f"/V1/orders/{int(order_id)}/{action}"))
        except BadRequestError:
            if reached(self.get_order(order_id).get("state")):
                return True
            raise

    def add_order_comment(
        self, order_id: int, comment: str, *, status: str | None = None, notify: bool = False
    ) -> None:
        """Add a status-history comment. Not idempotent (a replay would duplicate the comment)."""
        history: dict[str, Any] = {
            "comment": comment,
            "is_customer_notified": 1 if notify else 0,
            "is_visible_on_front": 0,
            "parent_id": int(order_id),
        }
        if status:
            history["status"] = status
        self._call("POST", f"/V1/orders/{int(order_id)}/comments", body={"statusHistory": history}, idempotent=False)

    def get_order_comments(self, order_id: int) -> list[dict[str, Any]]:
        body = self._call("GET", f"/V1/orders/{int(order_id)}/comments") or {}
        return body.get("items") or []

    def iter_shipments(self, updated_since: datetime, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Shipments with ``updated_at >= updated_since``, in (updated_at, entity_id) order."""
        return self._iter_updated("shipments", updated_since, page_size)

    def iter_creditmemos(self, updated_since: datetime, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Credit memos with ``updated_at >= updated_since``, in (updated_at, entity_id) order."""
        return self._iter_updated("creditmemos", updated_since, page_size)

    def _iter_updated(self, resource: str, since: datetime, page_size: int) -> Iterator[dict[str, Any]]:
        # Keyset paging on updated_at: each query starts at the last timestamp seen, so a
        # record updated while we page moves behind the cursor instead of shifting the
        # offsets (which would skip another record). Ids already yielded are skipped.
        cursor = magento_datetime(since)
        sort = (("updated_at", "ASC"), ("entity_id", "ASC"))
        last: tuple[str, int] | None = None
        while True:
            since_cursor = [[Filter("updated_at", cursor, "gteq")]]
            pages = self.search_pages(resource, since_cursor, page_size=page_size, sort=sort)
            for body in pages:
                items = body.get("items") or []
                new = [i for i in items if last is None or (str(i.get("updated_at")), int(i["entity_id"])) > last]
                yield from new
                if new:
                    last = (str(new[-1].get("updated_at")), int(new[-1]["entity_id"]))
                if not pages.finished and last is not None and last[0] != cursor:
                    cursor = last[0]
                    break  # start again from page 1 of the new cursor
            else:
                return

    # ------------------------------------------------------------------ catalog & stock

    def get_products_by_skus(self, skus: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Products by SKU (one ``in`` search per 100 SKUs); missing SKUs are absent."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(skus):
            for items in self.search("products", [[Filter("sku", chunk, "in")]], page_size=BATCH, sort=None):
                found.update({p["sku"]: p for p in items})
        return found

    def get_salable_quantity(self, sku: str, stock_id: int = 1) -> Decimal:
        """MSI salable quantity of ``sku`` in ``stock_id``."""
        from urllib.parse import quote

        value = self._call(
            "GET",
            f"/V1/inventory/get-product-salable-quantity/{quote(sku, safe='')}/{int(stock_id)}",
            operation="GET /V1/inventory/get-product-salable-quantity",
        )
        return Decimal(str(value))

    def get_source_items(self, skus: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """MSI source items per SKU (one ``in`` search per 100 SKUs)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for chunk in _chunks(skus):
            for items in self.search(
                "inventory/source-items", [[Filter("sku", chunk, "in")]], page_size=BATCH, sort=None
            ):
                for item in items:
                    found.setdefault(item["sku"], []).append(item)
        return found

    def save_source_items(self, items: list[dict[str, Any]]) -> None:
        """``POST /V1/inventory/source-items``: sets quantities (idempotent, retried)."""
        self._call("POST", "/V1/inventory/source-items", body={"sourceItems": items})

    # ------------------------------------------------------------------ customers

    def find_customer_by_email(self, email: str, website_id: int | None = None) -> dict[str, Any] | None:
        """The customer with this e-mail, or None. The e-mail is never logged."""
        groups = [[Filter("email", email)]]
        if website_id is not None:
            groups.append([Filter("website_id", website_id)])
        body = self.search_page("customers/search", groups, page_size=1)
        items = body.get("items") or []
        return items[0] if items else None

    def create_customer(self, customer: dict[str, Any]) -> dict[str, Any]:
        """``POST /V1/customers``. Not idempotent: look the e-mail up before trying again."""
        return self._call("POST", "/V1/customers", body={"customer": customer}, idempotent=False)

    # ------------------------------------------------------------------ store

    def get_allowed_currencies(self) -> set[str]:
        """Currency codes the store view accepts (base currency included)."""
        body = self._call("GET", "/V1/directory/currency") or {}
        codes = set(body.get("available_currency_codes") or [])
        if body.get("base_currency_code"):
            codes.add(body["base_currency_code"])
        return codes

    def get_store_config(self, store_id: int) -> dict[str, Any] | None:
        """The store view's ``storeConfig`` (``GET /V1/store/storeConfigs``: ``code``, ``base_currency_code``...)."""
        configs = self._call("GET", "/V1/store/storeConfigs") or []
        return next((c for c in configs if int(c.get("id", -1)) == int(store_id)), None)

    def get_currency_information(self, store_code: str) -> dict[str, Any]:
        """``GET /V1/directory/currency`` of a store view: base currency, available codes, ``exchange_rates``."""
        path = f"/rest/{store_code}/V1/directory/currency"
        return self._call("GET", path, operation="GET /V1/directory/currency") or {}

    def store_currency(self, store_id: int) -> StoreCurrency:
        """The store view's currencies: its ``storeConfig`` and ``GET /V1/directory/currency`` of it.

        :raises FatalError: Commerce has no store view with this ``store_id``.
        """
        config = self.get_store_config(store_id)
        if config is None:
            raise FatalError(f"Commerce has no store view with id {store_id} (the account's store_id)")
        return StoreCurrency.from_rest(config, self.get_currency_information(str(config["code"])))

    def get_country(self, country_id: str, store_code: str) -> dict[str, Any] | None:
        """``GET /V1/directory/countries/{id}`` of a store view (its ``available_regions``); None when the store
        has no such country (Magento answers 404 "The country isn't available.")."""
        path = f"/rest/{store_code}/V1/directory/countries/{country_id}"
        try:
            return self._call("GET", path, operation="GET /V1/directory/countries/{id}")
        except NotFoundError:
            return None

    def check_health(self) -> dict[str, Any]:
        """Authenticate and make one cheap authorised call."""
        started = time.monotonic()
        self._call("GET", "/V1/directory/currency")
        return {
            "ok": True,
            "base_url": self.settings.base_url,
            "store_code": self.settings.store_code,
            "auth": self.settings.auth,
            "call": "GET /V1/directory/currency",
            "call_ms": round((time.monotonic() - started) * 1000),
        }
