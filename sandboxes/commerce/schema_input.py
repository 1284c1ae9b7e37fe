"""Input coercion like Magento's ServiceInputProcessor, driven by the official Adobe schema.

Unknown properties are rejected (Magento 2.4: 'Property "%1" does not have accessor method ...'),
``number`` fields become Decimal, ``integer`` fields int; a value of the wrong type gets Magento's
type error.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sandboxes.commerce.errors import MagentoError
from sandboxes.swagger import load_model

MODEL = "commerce/adobe-commerce-admin-openapi-2.4.9.json"
MSG_TYPE = (
    'Error occurred during "%field_name" processing. The "%value" value\'s type is invalid. '
    'The "%type" type was expected. Verify and try again.'
)


def definitions() -> dict[str, Any]:
    return load_model(MODEL)["definitions"]


def properties(definition: str) -> dict[str, Any]:
    return definitions()[definition].get("properties", {})


def _class_name(definition: str) -> str:
    module, _, rest = definition.partition("-data-")
    parts = module.split("-")
    camel = "".join(p.capitalize() for p in rest.split("-"))
    return f"Magento\\{''.join(p.capitalize() for p in parts)}\\Api\\Data\\{camel}"


def _type_error(name: str, value: Any, expected: str) -> MagentoError:
    return MagentoError(400, MSG_TYPE, {"field_name": name, "value": str(value), "type": expected})


def coerce(definition: str, instance: Any, name: str = "entity") -> Any:
    """Return a coerced copy of ``instance`` (an object of ``definition``) or raise a Magento 400."""
    if not isinstance(instance, dict):
        raise _type_error(name, instance, definition)
    props = properties(definition)
    out: dict[str, Any] = {}
    for key, value in instance.items():
        if key not in props:
            getter = "get" + "".join(p.capitalize() for p in key.split("_"))
            raise MagentoError(
                400,
                'Property "%1" does not have accessor method "%2" in class "%3".',
                [key, getter, _class_name(definition)],
            )
        out[key] = _coerce_value(props[key], value, key)
    return out


def _coerce_value(schema: dict[str, Any], value: Any, name: str) -> Any:
    if value is None:
        return None
    if "$ref" in schema:
        return coerce(schema["$ref"].rsplit("/", 1)[-1], value, name)
    kind = schema.get("type")
    if kind == "array":
        if not isinstance(value, list):
            raise _type_error(name, value, "array")
        return [_coerce_value(schema.get("items", {}), v, name) for v in value]
    if kind == "number":
        if isinstance(value, bool):
            raise _type_error(name, value, "float")
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise _type_error(name, value, "float") from exc
    if kind == "integer":
        if isinstance(value, bool):
            return int(value)
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise _type_error(name, value, "int") from exc
        if number != number.to_integral_value():
            raise _type_error(name, value, "int")
        return int(number)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if value in (0, 1, "0", "1", "true", "false"):
            return value in (1, "1", "true")
        raise _type_error(name, value, "bool")
    if kind == "string":
        if isinstance(value, (dict, list)):
            raise _type_error(name, value, "string")
        if isinstance(value, bool):
            return "1" if value else ""
        return value if isinstance(value, str) else str(value)
    return value
