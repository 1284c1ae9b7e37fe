"""Adding up task summaries (counts, lists of ids, nested counts): the event path's loads during a fetch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def add_counts(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two loader summaries added up: numbers summed, lists joined (sorted, once each), mappings added up; any
    other value (``account``) from ``b``."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, bool) or not isinstance(value, int | list | Mapping):
            out[key] = value
        elif isinstance(value, int):
            out[key] = out.get(key, 0) + value
        elif isinstance(value, list):
            out[key] = sorted(set(out.get(key, [])) | set(value))
        else:
            out[key] = add_counts(out.get(key, {}), value)
    return out
