"""Address validation where Magento validates addresses: order addresses on save, customer addresses on save.

- Order addresses (``Magento\\Sales\\Model\\ResourceModel\\Order\\Address::_beforeSave`` runs
  ``Magento\\Sales\\Model\\Order\\Address\\Validator::validate``): the required fields must be *present*
  (``hasData``: a key sent empty passes), the e-mail must have ``FILTER_VALIDATE_EMAIL``'s format and the type
  must be billing or shipping. Regions are not checked. Failure: ``LocalizedException("We can't save the
  address:\\n%1")`` → HTTP 400, the warnings joined by newlines as the one parameter.
- Customer addresses (``AddressRepository::save`` runs ``Customer\\Model\\Address::validate``, the composite of
  ``Address\\Validator\\General`` and ``Address\\Validator\\Country``): names, street line 1, city, telephone
  (and company/fax when required) and the postcode (unless the country is in
  ``general/country/optional_zip_countries``) must be non-empty; the country must be allowed; a country in
  ``general/region/state_required`` needs a ``region_id`` of its own when it has regions in the directory, and a
  region text otherwise; a ``region_id`` must belong to the country. Failure: ``InputException`` → HTTP 400 with
  the one error as message, or "One or more input exceptions have occurred." and ``errors``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandboxes.commerce import directory
from sandboxes.commerce.config import CommerceSandboxConfig
from sandboxes.commerce.errors import MSG_INVALID_FIELD_VALUE, MSG_REQUIRED, MagentoError

MSG_CANT_SAVE_ADDRESS = "We can't save the address:\n%1"
MSG_INPUT_EXCEPTIONS = "One or more input exceptions have occurred."
ADDRESS_TYPES = ("billing", "shipping")

# Validator::$required, in its order; telephone, company and fax follow when the store makes them required.
ORDER_ADDRESS_REQUIRED = {
    "parent_id": "Parent Order Id",
    "postcode": "Zip code",
    "lastname": "Last name",
    "street": "Street",
    "city": "City",
    "email": "Email",
    "country_id": "Country",
    "firstname": "First Name",
    "address_type": "Address Type",
}
OPTIONAL_REQUIRED = (("telephone", "Phone Number"), ("company", "Company"), ("fax", "Fax"))

# --- FILTER_VALIDATE_EMAIL ----------------------------------------------------------------------
# PHP's rules (ext/filter, without FILTER_FLAG_EMAIL_UNICODE): ASCII only; the local part is dot-separated
# atoms of RFC 5322 atext or quoted strings, at most 64 characters; the address at most 254 (and 320 bytes); the
# domain is an IP literal or at least two labels of letters/digits with inner hyphens (an optional "xn--" prefix),
# each under 64 characters, the last starting with a letter (or "xn--").
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
_QUOTED = re.compile(r'"(?:[\x01-\x08\x0b\x0c\x0e-\x1f!#-\[\]-\x7f]|\\[\x00-\x7f])*"')
_LABEL = re.compile(r"(?:xn--)?[a-z0-9]+(?:-+[a-z0-9]+)*", re.IGNORECASE)
_TOP_LABEL = re.compile(r"(?:[a-z][a-z0-9]*|xn--[a-z0-9]+)(?:-+[a-z0-9]+)*", re.IGNORECASE)
_IPV4 = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4_LITERAL = re.compile(rf"{_IPV4}(?:\.{_IPV4}){{3}}")


def _local_part_length(local: str) -> int | None:
    """Characters of a valid local part (a quoted pair counts once), or None when it is not valid."""
    length, pos = 0, 0
    while True:
        word = _QUOTED.match(local, pos) if local.startswith('"', pos) else _ATOM.match(local, pos)
        if word is None:
            return None
        length += len(word.group()) - word.group().count("\\")
        pos = word.end()
        if pos == len(local):
            return length
        if local[pos] != ".":
            return None
        length += 1
        pos += 1


def _valid_domain(domain: str) -> bool:
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        if literal[:5].lower() == "ipv6:":
            try:
                return isinstance(ipaddress.ip_address(literal[5:]), ipaddress.IPv6Address)
            except ValueError:
                return False
        return _IPV4_LITERAL.fullmatch(literal) is not None
    labels = domain.split(".")
    if len(labels) < 2 or any(len(label) >= 64 for label in labels):
        return False
    return all(_LABEL.fullmatch(label) for label in labels[:-1]) and bool(_TOP_LABEL.fullmatch(labels[-1]))


def is_valid_email(value: Any) -> bool:
    """``filter_var($value, FILTER_VALIDATE_EMAIL)`` is truthy (rules above; None and non-strings fail)."""
    if not isinstance(value, str) or not value.isascii() or len(value) > 320 or "@" not in value:
        return False
    local, _, domain = value.rpartition("@")
    length = _local_part_length(local)
    return length is not None and length <= 64 and length + 1 + len(domain) <= 254 and _valid_domain(domain)


# --- order addresses ----------------------------------------------------------------------------


def order_address_warnings(address: Mapping[str, Any], config: CommerceSandboxConfig) -> list[str]:
    """``Order\\Address\\Validator::validate``: the warnings for a stored order address (empty: valid).

    ``address`` is the address as it is saved (``parent_id`` and ``address_type`` already set by the order).
    """
    required = dict(ORDER_ADDRESS_REQUIRED)
    switches = {"telephone": config.telephone_required, "company": config.company_required, "fax": config.fax_required}
    required.update((code, label) for code, label in OPTIONAL_REQUIRED if switches[code])
    warnings = [f"{label} is a required field" for code, label in required.items() if code not in address]
    if not is_valid_email(address.get("email")):
        warnings.append("Email has a wrong format")
    if address.get("address_type") not in ADDRESS_TYPES:
        warnings.append("Address type doesn't match required options")
    return warnings


def check_order_address(address: Mapping[str, Any], config: CommerceSandboxConfig) -> None:
    """Raise Magento's 400 "We can't save the address" when the order address validator has warnings."""
    warnings = order_address_warnings(address, config)
    if warnings:
        raise MagentoError(400, MSG_CANT_SAVE_ADDRESS, ["\n".join(warnings)])


# --- customer addresses -------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressError:
    """One error of an address validator: Magento's phrase and its named parameters."""

    message: str
    parameters: dict[str, str]


def _empty(value: Any) -> bool:
    """Laminas ``NotEmpty`` (default types): None, "", whitespace-only text, False and [] are empty; 0 is not."""
    if value is None or value is False or value == []:
        return True
    return isinstance(value, str) and value.strip() == ""


def _required(field: str) -> AddressError:
    return AddressError(MSG_REQUIRED, {"fieldName": field})


def region_text(address: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(region name, region code) sent in a customer address's ``region`` object (``updateData``)."""
    region = address.get("region")
    if isinstance(region, Mapping):
        return region.get("region"), region.get("region_code")
    return (region if isinstance(region, str) else None), None


def resolve_region_id(address: Mapping[str, Any], config: CommerceSandboxConfig) -> int | None:
    """``AbstractAddress::getRegionId``: ``region_id`` when set, else a numeric region text, else the region
    loaded by ``getRegionCode()`` and country — where a region *text* overrides the code (``getRegionCode``
    returns the text when there is no id), so {"region": "Washington", "region_code": "WA"} finds nothing.
    """
    region_id = address.get("region_id")
    if region_id not in (None, "", 0, "0"):
        return int(region_id)
    name, code = region_text(address)
    if isinstance(name, str) and name.strip().isdigit():
        return int(name)
    if isinstance(name, str) and name:
        code = name
    if not code or not address.get("country_id"):
        return None
    found = directory.directory_of(config).region_by_code(str(address["country_id"]), str(code))
    return found.id if found else None


def customer_address_errors(
    address: Mapping[str, Any], config: CommerceSandboxConfig, store: Mapping[str, Any]
) -> list[AddressError]:
    """``General`` then ``Country`` validator errors for a customer address (empty: valid)."""
    street = address.get("street")
    errors = [
        _required(field)
        for field, value in (
            ("firstname", address.get("firstname")),
            ("lastname", address.get("lastname")),
            ("street", street[0] if isinstance(street, list) and street else street),
            ("city", address.get("city")),
        )
        if _empty(value)
    ]
    switches = (
        ("telephone", config.telephone_required),
        ("fax", config.fax_required),
        ("company", config.company_required),
    )
    errors += [_required(field) for field, on in switches if on and _empty(address.get(field))]
    country_id = address.get("country_id")
    if country_id not in directory.optional_zip_countries(config) and _empty(address.get("postcode")):
        errors.append(_required("postcode"))
    if _empty(country_id):
        return [*errors, _required("countryId")]
    if country_id not in directory.allowed_countries(config, dict(store)):
        return [*errors, AddressError(MSG_INVALID_FIELD_VALUE, {"fieldName": "countryId", "value": str(country_id)})]
    return errors + _region_errors(address, config)


def _region_errors(address: Mapping[str, Any], config: CommerceSandboxConfig) -> list[AddressError]:
    country_id = str(address["country_id"])
    allowed = {str(r.id) for r in directory.directory_of(config).country_regions(country_id)}
    required = directory.is_region_required(config, country_id)
    region_id = resolve_region_id(address, config)
    name, _ = region_text(address)
    if required and not allowed and _empty(name):
        return [_required("region")]
    if allowed and region_id is None and required:
        return [_required("regionId")]
    if allowed and region_id is not None and str(region_id) not in allowed:
        return [AddressError(MSG_INVALID_FIELD_VALUE, {"fieldName": "regionId", "value": str(region_id)})]
    return []


def input_exception(errors: list[AddressError]) -> MagentoError:
    """``InputException`` as the REST layer answers it: one error is the message; more are listed."""
    if len(errors) == 1:
        return MagentoError(400, errors[0].message, errors[0].parameters)
    return MagentoError(
        400, MSG_INPUT_EXCEPTIONS, errors=[{"message": e.message, "parameters": e.parameters} for e in errors]
    )
