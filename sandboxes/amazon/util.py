"""Small shared helpers: the SP-API error type, timestamps and money arithmetic."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import jsonschema
from fastapi.responses import JSONResponse

from sandboxes.amazon.marketplaces import minor_units
from sandboxes.swagger import validate


class SpApiError(Exception):
    """An error answered in SP-API's shape ``{"errors": [{"code", "message", "details"}]}``."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"errors": [error]}


def invalid_input(message: str, details: str = "") -> SpApiError:
    return SpApiError(400, "InvalidInput", message, details)


def not_found(message: str) -> SpApiError:
    return SpApiError(404, "NotFound", message)


def model_body(raw: bytes, model: str, definition: str) -> dict[str, Any]:
    """A JSON request body valid as ``definition`` of the official ``model``; else 400 InvalidInput."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise invalid_input("The request body is not valid JSON.") from exc
    try:
        validate(model, definition, body)
    except jsonschema.ValidationError as exc:
        raise invalid_input(f"Invalid {definition}.", str(exc.message)) from exc
    return body


def error_response(status: int, code: str, message: str, details: str = "") -> JSONResponse:
    return JSONResponse(SpApiError(status, code, message, details).body(), status_code=status)


def now() -> float:
    return time.time()


def iso(ts: float) -> str:
    """Epoch seconds -> ``2026-01-02T03:04:05Z`` (second precision, as Amazon answers)."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str, name: str = "date") -> float:
    """ISO 8601 -> epoch seconds; naive values are UTC; anything else is InvalidInput."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except (ValueError, AttributeError) as exc:
        raise invalid_input(f"Invalid {name}: '{value}' is not an ISO 8601 date-time.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def money(value: Decimal | str | int, currency: str | None = None) -> Decimal:
    """``value`` rounded half-up to the minor units of ``currency`` (2 decimals without one; JPY has 0)."""
    places = 2 if currency is None else minor_units(currency)
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places) if places else Decimal(1), rounding=ROUND_HALF_UP)


def money_obj(amount: Decimal | str, currency: str) -> dict[str, str]:
    """An Orders 2026-01-01 ``Money``: the amount as a decimal string in the currency's minor units
    (``"19.99"`` USD, ``"19940"`` JPY, as in Amazon's examples)."""
    return {"amount": str(money(amount, currency)), "currencyCode": currency}


_DEC_MARK = re.compile(r'"__decimal__(-?[0-9]+(?:\.[0-9]+)?)__"')


def dumps_with_decimal_numbers(data: Any) -> bytes:
    """JSON where ``Decimal`` values are written as exact JSON numbers (Finances' BigDecimal)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return f"__decimal__{obj}__"
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

    text = json.dumps(data, default=default, ensure_ascii=False)
    return _DEC_MARK.sub(r"\1", text).encode("utf-8")
