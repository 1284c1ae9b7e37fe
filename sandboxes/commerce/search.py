"""Magento ``searchCriteria``: parsing PHP-style query parameters, filtering, sorting and paging.

Filters inside a filter group are OR-ed, groups are AND-ed. Strings compare case-insensitively
(MySQL's ``*_general_ci`` collations), numbers numerically, dates as 'Y-m-d H:i:s' UTC strings.
Like Magento's collections, a ``currentPage`` beyond the last page returns the last page again.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sandboxes.commerce.errors import MSG_INVALID_FIELD_VALUE, MagentoError, required

CONDITIONS = frozenset(
    {
        "eq",
        "neq",
        "gt",
        "gteq",
        "lt",
        "lteq",
        "moreq",
        "like",
        "nlike",
        "in",
        "nin",
        "null",
        "notnull",
        "from",
        "to",
        "finset",
        "nfinset",
    }
)
_ALIASES = {
    "filterGroups": "filter_groups",
    "conditionType": "condition_type",
    "sortOrders": "sort_orders",
    "pageSize": "page_size",
    "currentPage": "current_page",
}
_KEY_RE = re.compile(r"\[([^\]]*)\]")
_MYSQL_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class Filter:
    field: str
    value: str
    condition_type: str = "eq"


@dataclass
class SearchCriteria:
    filter_groups: list[list[Filter]] = field(default_factory=list)
    sort_orders: list[tuple[str, str]] = field(default_factory=list)
    page_size: int | None = None
    current_page: int | None = None

    def echo(self) -> dict[str, Any]:
        """The ``search_criteria`` block of a search result."""
        out: dict[str, Any] = {
            "filter_groups": [
                {"filters": [{"field": f.field, "value": f.value, "condition_type": f.condition_type} for f in group]}
                for group in self.filter_groups
            ]
        }
        if self.sort_orders:
            out["sort_orders"] = [{"field": f, "direction": d} for f, d in self.sort_orders]
        if self.page_size is not None:
            out["page_size"] = self.page_size
        if self.current_page is not None:
            out["current_page"] = self.current_page
        return out


def _nested(items: Iterable[tuple[str, str]], root: str) -> tuple[bool, dict[str, Any]]:
    """``searchCriteria[a][0][b]=v`` pairs → nested dicts (indices stay string keys)."""
    present = False
    tree: dict[str, Any] = {}
    for key, value in items:
        if not key.startswith(root):
            continue
        rest = key[len(root) :]
        present = True
        parts = [_ALIASES.get(p, p) for p in _KEY_RE.findall(rest)]
        if not parts:
            continue
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        last = parts[-1] or str(len(node))  # "[value][]=a&[value][]=b" appends
        node[last] = value
    return present, tree


def _ordered(node: Any) -> list[Any]:
    if not isinstance(node, dict):
        return []

    def sort_key(k: str) -> tuple[int, str]:
        return (int(k), "") if k.isdigit() else (1 << 30, k)

    return [node[k] for k in sorted(node, key=sort_key)]


def _as_int(value: Any, name: str) -> int:
    try:
        return int(str(value))
    except ValueError as exc:
        raise MagentoError(400, MSG_INVALID_FIELD_VALUE, {"value": str(value), "fieldName": name}) from exc


def parse_search_criteria(
    items: Iterable[tuple[str, str]], *, required_param: bool = True, max_page_size: int = 0
) -> SearchCriteria:
    """Parse ``searchCriteria`` from query items; absent and required → Magento's 400."""
    present, tree = _nested(list(items), "searchCriteria")
    if not present:
        if required_param:
            raise required("searchCriteria")
        return SearchCriteria()
    criteria = SearchCriteria()
    for group in _ordered(tree.get("filter_groups")):
        filters: list[Filter] = []
        for raw in _ordered(group.get("filters") if isinstance(group, dict) else None):
            if not isinstance(raw, dict) or not raw.get("field"):
                raise required("field")
            value = raw.get("value", "")
            if isinstance(value, dict):
                value = ",".join(str(v) for v in _ordered(value))
            condition = (raw.get("condition_type") or "eq").lower()
            if condition not in CONDITIONS:
                raise MagentoError(400, 'Invalid condition type "%1" provided.', [condition])
            filters.append(Filter(str(raw["field"]), str(value), condition))
        if filters:
            criteria.filter_groups.append(filters)
    for raw in _ordered(tree.get("sort_orders")):
        if isinstance(raw, dict) and raw.get("field"):
            direction = str(raw.get("direction") or "ASC").upper()
            criteria.sort_orders.append((str(raw["field"]), "DESC" if direction == "DESC" else "ASC"))
    if tree.get("page_size") not in (None, ""):
        criteria.page_size = _as_int(tree["page_size"], "pageSize")
        if max_page_size and criteria.page_size > max_page_size:
            raise MagentoError(400, "Maximum SearchCriteria pageSize is %max", {"max": max_page_size})
    if tree.get("current_page") not in (None, ""):
        criteria.current_page = _as_int(tree["current_page"], "currentPage")
    return criteria


# --- comparison -------------------------------------------------------------------------------


def _normalise_ts(text: str) -> str:
    text = text.strip()
    if _DATE_ONLY.match(text):
        return text + " 00:00:00"
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def _coerce(record_value: Any, text: str) -> tuple[Any, Any]:
    """Make a record value and a filter string comparable (numbers, dates, case-folded strings)."""
    if isinstance(record_value, (int, Decimal)) and not isinstance(record_value, bool):
        try:
            return Decimal(record_value), Decimal(text.strip())
        except InvalidOperation:
            return str(record_value).casefold(), text.casefold()
    if isinstance(record_value, bool):
        return int(record_value), _int_or_text(text)
    value = str(record_value)
    if _MYSQL_TS.match(value):
        return value, _normalise_ts(text)
    return value.casefold(), text.casefold()


def _int_or_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def _like(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip() != ""]


def matches(record_value: Any, flt: Filter) -> bool:  # noqa: C901 - one branch per Magento condition
    cond = flt.condition_type
    if cond == "null":
        return record_value is None or record_value == ""
    if cond == "notnull":
        return record_value is not None and record_value != ""
    if record_value is None:
        return False  # SQL: NULL never satisfies a comparison
    if isinstance(record_value, list):
        return any(matches(v, flt) for v in record_value)
    if cond in ("in", "nin"):
        found = any(a == b for a, b in (_coerce(record_value, v) for v in _split(flt.value)))
        return found if cond == "in" else not found
    if cond in ("like", "nlike"):
        hit = bool(_like(flt.value).match(str(record_value)))
        return hit if cond == "like" else not hit
    if cond in ("finset", "nfinset"):
        members = [m.strip().casefold() for m in str(record_value).split(",")]
        hit = flt.value.strip().casefold() in members
        return hit if cond == "finset" else not hit
    left, right = _coerce(record_value, flt.value)
    if type(left) is not type(right):
        left, right = str(left), str(right)
    if cond == "eq":
        return left == right
    if cond == "neq":
        return left != right
    if cond == "gt":
        return left > right
    if cond in ("gteq", "moreq", "from"):
        return left >= right
    if cond == "lt":
        return left < right
    if cond in ("lteq", "to"):
        return left <= right
    return False


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)  # MySQL sorts NULL first ascending
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return (1, Decimal(value))
    return (2, str(value).casefold())


def apply(
    records: Iterable[dict[str, Any]],
    criteria: SearchCriteria,
    allowed_fields: Iterable[str],
    getter: Callable[[dict[str, Any], str], Any] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Filter, sort and page ``records``; returns (page, total_count)."""
    allowed = set(allowed_fields)
    get = getter or (lambda record, name: record.get(name))
    for group in criteria.filter_groups:
        for flt in group:
            if flt.field not in allowed:
                raise MagentoError(400, MSG_INVALID_FIELD_VALUE, {"value": flt.field, "fieldName": "field"})
    for name, _direction in criteria.sort_orders:
        if name not in allowed:
            raise MagentoError(400, MSG_INVALID_FIELD_VALUE, {"value": name, "fieldName": "sortOrders"})
    selected = [
        r for r in records if all(any(matches(get(r, f.field), f) for f in group) for group in criteria.filter_groups)
    ]
    for name, direction in reversed(criteria.sort_orders):
        selected.sort(key=lambda r, n=name: _sort_key(get(r, n)), reverse=direction == "DESC")
    total = len(selected)
    size = criteria.page_size
    if size and size > 0:
        last_page = max(1, -(-total // size))
        page = min(max(criteria.current_page or 1, 1), last_page)
        selected = selected[(page - 1) * size : page * size]
    return selected, total
