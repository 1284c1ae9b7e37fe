"""Paginators, one per token style: generators of pages that refuse to read a page twice.

- ``NextTokenPaginator``: Amazon's opaque next-page tokens (Orders 2026-01-01
  ``pagination.nextToken`` sent back as ``paginationToken``; Finances 2024-06-19 ``payload.nextToken``
  sent back as ``nextToken``). The listing ends when a page carries no token.
- ``CurrentPagePaginator``: Magento's ``searchCriteria[currentPage]`` (1-based) and
  ``pageSize``, ended by ``total_count``. Magento answers a ``currentPage`` beyond the last
  page with the last page again (``Magento\\Framework\\Data\\Collection::getCurPage``), never
  with an empty page, so the count (or a short page) is the only reliable end.

Both raise ``RepeatedPageError`` instead of going on when the server repeats itself: a token
already answered (following it would loop, or skip what it never served), or a Magento page
holding exactly the items of a page already read (the result shifted under the offsets, so
items were skipped). Raising makes the task fail, so a cursor that advances only after a whole
listing was read stays where it was (after singer-sdk's ``BaseAPIPaginator``, which stops on a
repeated token, but raising a named, retriable error from this package's tree).

Both only follow pages: the caller's ``fetch`` makes each request (with its rate limit, retry
policy and classification) and returns the parsed body; pages are yielded one at a time, so
nobody holds a whole result set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from amazon_commerce_sync.errors import RepeatedPageError

log = logging.getLogger(__name__)

__all__ = ["CurrentPagePaginator", "NextTokenPaginator", "magento_item_identity"]

Page = TypeVar("Page")

#: Fields that identify a record of a Magento search result: ``entity_id`` (orders, invoices,
#: shipments, credit memos), ``id`` (products, customers), ``sku`` + ``source_code`` (MSI source items).
IDENTITY_FIELDS = ("entity_id", "id", "sku", "source_code")


class _Paginator:
    """What both paginators keep: the operation, the pages read, and what they have already seen."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.pages_read = 0
        #: True while the page just yielded is the last one (a caller may then skip its own restart).
        self.finished = False
        self._seen: set[Hashable] = set()

    def _start(self) -> None:
        self.pages_read, self.finished, self._seen = 0, False, set()

    def _remember(self, key: Hashable, repeated: str) -> None:
        """Note ``key`` (a token, a page's items); ``RepeatedPageError`` saying ``repeated`` if it came before."""
        if key in self._seen:
            raise RepeatedPageError(
                f"{repeated}; the listing cannot be read to its end", operation=self.operation, pages=self.pages_read
            )
        self._seen.add(key)


class NextTokenPaginator(_Paginator, Generic[Page]):
    """Pages of a listing that hands out a next-page token (Amazon SP-API).

    :param fetch: ``fetch(token)`` requests one page (``token`` None for the first) and returns
        its parsed body; it raises the hook's classified errors.
    :param next_token: the next page's token in a body, or None / ``""`` at the end.
    :param operation: the API operation, named in the error.
    :raises RepeatedPageError: (while iterating) when a body carries a token an earlier body
        carried; the page holding it has been yielded, nothing after it is read.
    """

    def __init__(
        self, fetch: Callable[[str | None], Page], next_token: Callable[[Page], str | None], *, operation: str
    ) -> None:
        super().__init__(operation)
        self.fetch = fetch
        self.next_token = next_token

    def __iter__(self) -> Iterator[Page]:
        self._start()
        token: str | None = None
        while True:
            body = self.fetch(token)
            self.pages_read += 1
            token = self.next_token(body) or None
            self.finished = token is None
            yield body
            if token is None:
                return
            self._remember(token, f"page {self.pages_read} carried the next-page token of an earlier page")


def magento_item_identity(item: Mapping[str, Any]) -> Hashable:
    """What identifies one record of a Magento search result (see ``IDENTITY_FIELDS``).

    A record without any of those fields is identified by its whole content.
    """
    identity = tuple(item.get(name) for name in IDENTITY_FIELDS)
    if any(value is not None for value in identity):
        return identity
    return json.dumps(item, sort_keys=True, default=str)


class CurrentPagePaginator(_Paginator):
    """Pages of a Magento search (``{items, total_count, search_criteria}`` bodies).

    :param fetch: ``fetch(current_page)`` requests page ``current_page`` (1-based) with
        ``page_size`` items per page and returns the parsed body.
    :param page_size: the ``searchCriteria[pageSize]`` every request uses.
    :param operation: the API operation, named in the error.
    :param identity: what identifies an item (default ``magento_item_identity``).

    The listing ends after a short page or once ``page * page_size`` reaches ``total_count``.
    :raises RepeatedPageError: (while iterating) before yielding a non-empty page whose items
        are exactly those of a page already yielded.
    """

    def __init__(
        self,
        fetch: Callable[[int], Mapping[str, Any]],
        *,
        page_size: int,
        operation: str,
        identity: Callable[[Mapping[str, Any]], Hashable] = magento_item_identity,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        super().__init__(operation)
        self.fetch = fetch
        self.page_size = page_size
        self.identity = identity

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        self._start()
        page = 1
        while True:
            body = self.fetch(page)
            self.pages_read += 1
            items = body.get("items") or []
            if items:
                self._remember(
                    tuple(self.identity(item) for item in items),
                    f"currentPage {page} answered the items of an earlier page again (the result changed while paged)",
                )
            total = int(body.get("total_count") or 0)
            self.finished = len(items) < self.page_size or page * self.page_size >= total
            yield body
            if self.finished:
                return
            page += 1
