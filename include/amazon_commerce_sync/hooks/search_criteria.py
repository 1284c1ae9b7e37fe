"""Magento's ``searchCriteria`` query parameters, for every ``GET /V1/<resource>`` search.

``GET /V1/orders?searchCriteria[filter_groups][0][filters][0][field]=ext_order_id&...[value]=...
&...[condition_type]=eq`` (Magento's ``Magento\\Framework\\Api\\SearchCriteria`` in PHP-style
query parameters): filters inside a group are OR-ed, groups are AND-ed; ``sortOrders``,
``pageSize`` and ``currentPage`` (1-based) follow. Timestamps are compared as Magento stores
them: ``YYYY-MM-DD HH:MM:SS`` in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Filter", "magento_datetime", "search_criteria"]


@dataclass(frozen=True)
class Filter:
    """One searchCriteria filter. ``value`` may be a list for ``in`` / ``nin`` (comma-joined)."""

    field: str
    value: Any
    condition_type: str = "eq"


def _value(value: Any) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)
    if isinstance(value, datetime):
        return magento_datetime(value)
    return str(value)


def search_criteria(
    filter_groups: Sequence[Sequence[Filter]],
    *,
    sort: Sequence[tuple[str, str]] | None = None,
    page_size: int | None = None,
    current_page: int | None = None,
) -> list[tuple[str, str]]:
    """Magento's PHP-style searchCriteria query parameters.

    Filters inside a group are OR-ed; groups are AND-ed. ``sort`` is ``[(field, "ASC"|"DESC")]``.
    """
    params: list[tuple[str, str]] = []
    for g, group in enumerate(filter_groups):
        for f, flt in enumerate(group):
            prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            params.append((f"{prefix}[field]", flt.field))
            params.append((f"{prefix}[value]", _value(flt.value)))
            params.append((f"{prefix}[condition_type]", flt.condition_type))
    for s, (sort_field, direction) in enumerate(sort or ()):
        direction = direction.upper()
        if direction not in ("ASC", "DESC"):
            raise ValueError(f"sort direction must be ASC or DESC, not {direction!r}")
        params.append((f"searchCriteria[sortOrders][{s}][field]", sort_field))
        params.append((f"searchCriteria[sortOrders][{s}][direction]", direction))
    if page_size is not None:
        params.append(("searchCriteria[pageSize]", str(page_size)))
    if current_page is not None:
        params.append(("searchCriteria[currentPage]", str(current_page)))
    return params


def magento_datetime(value: datetime) -> str:
    """An aware datetime as Magento stores it: ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware datetimes")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
