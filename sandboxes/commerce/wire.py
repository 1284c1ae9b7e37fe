"""JSON on the wire: numbers parsed as Decimal, Decimals emitted as JSON numbers without float loss.

Magento sends money and quantities as JSON numbers; the sandbox keeps them as ``Decimal`` and
writes them with 2 to 4 decimals (``10.00``, ``1.2345``), never through ``float``.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from starlette.responses import Response

FOUR = Decimal("0.0001")
TWO = Decimal("0.01")


def D(value: Any) -> Decimal:
    """Coerce a wire value (Decimal, int, numeric string, None) to Decimal; None is 0."""
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def money(value: Decimal) -> Decimal:
    """Round to cents the way Magento rounds amounts (half up)."""
    return value.quantize(TWO, rounding=ROUND_HALF_UP)


def format_decimal(value: Decimal) -> str:
    """Decimal → JSON number text with 2..4 decimals."""
    text = format(value.quantize(FOUR, rounding=ROUND_HALF_UP), "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    frac = frac + "0" * (2 - len(frac)) if len(frac) < 2 else frac
    if whole in ("-0",) and set(frac) == {"0"}:
        whole = "0"
    return f"{whole}.{frac}"


def dumps(obj: Any) -> str:
    """Serialise ``obj`` to JSON, writing Decimals as numbers."""
    parts: list[str] = []
    _encode(obj, parts)
    return "".join(parts)


def _encode(obj: Any, out: list[str]) -> None:
    if isinstance(obj, Decimal):
        out.append(format_decimal(obj))
    elif isinstance(obj, dict):
        out.append("{")
        first = True
        for key, value in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key)))
            out.append(":")
            _encode(value, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _encode(value, out)
        out.append("]")
    else:
        out.append(json.dumps(obj))


def loads(text: str | bytes) -> Any:
    """Parse request JSON with every non-integer number as Decimal."""
    return json.loads(text, parse_float=Decimal)


class MagentoJSONResponse(Response):
    """A JSON response that keeps Decimals exact."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


# --- persistence: Decimals tagged so they survive a restart exactly ---------------------------


def _tag(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return {"$decimal": str(obj)}
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$decimal" in obj:
        return Decimal(obj["$decimal"])
    return obj


def dumps_state(obj: Any) -> str:
    return json.dumps(obj, default=_tag, indent=None, separators=(",", ":"))


def loads_state(text: str) -> Any:
    return json.loads(text, object_hook=_untag)


def ok(content: Any, status_code: int = 200) -> MagentoJSONResponse:
    """A 200 Magento JSON response (bypasses FastAPI's float-converting encoder)."""
    return MagentoJSONResponse(content, status_code=status_code)
