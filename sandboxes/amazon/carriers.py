"""Amazon's carrier codes, kept as data in ``carrier_codes.json`` (sources and date inside the file).

Amazon accepts a shipment confirmation only with a ``carrierCode`` from its list, matched exactly
("The CarrierCode value must match the options listed in Seller Central exactly", Amazon's 2021
announcement); ``Other`` is for carriers not on the list and then needs ``carrierName`` (the v0 model's
``PackageDetail.carrierName``: "Required when carrierCode is Other"; same rule for ``CarrierName`` in
``POST_ORDER_FULFILLMENT_DATA``).  Product code can compare its own carrier map against
:data:`CARRIER_CODES` in a test.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA_FILE = Path(__file__).with_name("carrier_codes.json")
CARRIER_CODES: frozenset[str] = frozenset(json.loads(DATA_FILE.read_text(encoding="utf-8"))["carrierCodes"])
OTHER = "Other"


def carrier_problem(
    carrier_code: str | None,
    carrier_name: str | None,
    *,
    code_field: str = "carrierCode",
    name_field: str = "carrierName",
) -> str | None:
    """Why Amazon refuses this carrier (a sentence naming the fields), or None when it is acceptable.

    ``carrier_code`` must be one of :data:`CARRIER_CODES`; with ``Other``, ``carrier_name`` must be given.
    """
    if not carrier_code:
        return f"{code_field} is required."
    if carrier_code not in CARRIER_CODES:
        return (
            f"{code_field} {carrier_code!r} is not one of Amazon's carrier codes: use the exact listed value, or "
            f"{OTHER} with {name_field} for a carrier that is not listed."
        )
    if carrier_code == OTHER and not (carrier_name or "").strip():
        return f"{name_field} is required when {code_field} is {OTHER}."
    return None


def shown_carrier(carrier_code: str, carrier_name: str | None) -> str:
    """The carrier an order's package shows: the carrier name for ``Other``, the code otherwise."""
    return (carrier_name or carrier_code) if carrier_code == OTHER else carrier_code
