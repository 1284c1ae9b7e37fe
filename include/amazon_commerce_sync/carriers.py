"""Amazon's carrier list, and matching a Commerce track to it (Commerce → Amazon shipment confirmations).

Amazon accepts a shipment confirmation (``confirmShipment`` ``packageDetail.carrierCode``; the
``POST_ORDER_FULFILLMENT_DATA`` feed's ``CarrierCode``) only with a value from its own list, matched exactly
("The CarrierCode value must match the options listed in Seller Central exactly": Amazon's 2021 announcement
"Amazon only accepts shipment confirmation that includes a CarrierCode value", and the 2022 one for the BR, MX,
CA, SG, AU, IN and JP marketplaces). ``Other`` is for a carrier that is not on the list and needs ``carrierName``
(Orders v0 model, ``PackageDetail.carrierName``: "Required when carrierCode is Other"); Amazon treats such a
package as untracked, so it is the last resort.

``carrier_codes.json`` (:func:`carrier_codes`) is the package's own copy of Amazon's list (the sandbox keeps
its own, as a witness; ``tests/unit/test_carriers.py`` keeps the two equal). Sources, retrieved 2026-11-30:

- the enumeration of the ``CarrierCode`` element in Amazon's feed base schema ``amzn-base._TTH_.xsd``,
  release_1_9 (images-na.ssl-images-amazon.com/images/G/01/rainier/help/xsd/release_1_9/amzn-base._TTH_.xsd),
  in its order, duplicates once;
- values added to the same schema by January 2026, as quoted from it by a fulfilment provider's help page
  ("Amazon Accepted Carrier Names", support.getdropstream.com).

Matching (:func:`match_carrier`), in this order: the account's ``carrier_map`` (Commerce carrier code or track
title, lower-case → Amazon ``carrierCode``; it overrides everything); the Commerce carrier code on Amazon's list;
the track title on Amazon's list, ignoring case, spacing and a trailing service name ("Royal Mail Tracked 24" →
``Royal Mail`` with ``shippingMethod`` "Tracked 24", "UPS Ground" → ``UPS``, "Ground"); else ``Other`` with the
title (or code) as ``carrierName``. A service name is made of the words in :data:`SERVICE_WORDS` and numbers, so
"Parcel Hopper 48" does not become a listed carrier by a chance first word.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path

OTHER = "Other"

#: The data file: Amazon's list with its sources (module docstring), shipped with the package.
DATA_FILE = Path(__file__).with_name("carrier_codes.json")


@functools.cache
def carrier_codes() -> tuple[str, ...]:
    """Amazon's CarrierCode values, in the schema's order (read once from :data:`DATA_FILE`)."""
    return tuple(json.loads(DATA_FILE.read_text(encoding="utf-8"))["carrierCodes"])


#: Words a trailing service name is made of (besides numbers such as 24, 48, 2nd): "Tracked 24", "Ground",
#: "Next Day Air", "Special Delivery Guaranteed", "Priority Mail Express", "Express Saver".
SERVICE_WORDS = frozenset(
    """
    tracked signed for special delivery guaranteed by ground home air next day days second 2nd 1st first class
    saver express priority standard economy international intl overnight early am pm noon mail parcel parcels
    packet large letter small freight service services shipping shipment worldwide domestic smartpost surepost
    select plus premium sameday same business returns return ltl 2day 3day
    """.split()
)

# Commerce carrier codes that name no carrier (Magento's offline methods and its "Custom Value").
_NOT_CARRIERS = frozenset({"custom", "flatrate", "tablerate", "freeshipping", "other", ""})


@dataclasses.dataclass(frozen=True)
class CarrierMatch:
    """What a Commerce track becomes in ``packageDetail``.

    :param carrier_code: Amazon's ``carrierCode`` (one of :func:`carrier_codes`).
    :param carrier_name: ``carrierName``, only with ``Other``.
    :param shipping_method: ``shippingMethod`` (the service named after the carrier in the title), or None.
    """

    carrier_code: str
    carrier_name: str | None = None
    shipping_method: str | None = None


def normalise(text: str) -> str:
    """Lower case, underscores as spaces, runs of spaces as one: the form names are compared in."""
    return re.sub(r"[\s_]+", " ", text).strip().lower()


@functools.cache
def _by_name() -> dict[str, str]:
    """Normalised name -> Amazon's exact value; for names differing only in case or spacing, the first listed."""
    names: dict[str, str] = {}
    for code in carrier_codes():
        if code != OTHER:
            names.setdefault(normalise(code), code)
    return names


def _service(rest: str) -> bool:
    words = rest.split()
    return bool(words) and all(w in SERVICE_WORDS or re.fullmatch(r"\d+\w{0,2}", w) for w in words)


def _title_match(title: str) -> tuple[str, str | None] | None:
    """(carrierCode, shippingMethod) when ``title`` is a listed carrier, maybe followed by a service name."""
    words = title.split()
    normal = [normalise(w) for w in words]
    for cut in range(len(words), 0, -1):  # the longest listed name first: "DHL Express" before "DHL"
        code = _by_name().get(" ".join(normal[:cut]))
        if code is None:
            continue
        rest = " ".join(words[cut:])
        if not rest:
            return code, None
        if _service(normalise(rest)):
            return code, rest[:250]
    return None


def match_carrier(carrier_code: str | None, title: str | None, carrier_map: Mapping[str, str]) -> CarrierMatch:
    """Amazon's carrier for a Commerce track (Magento ``sales_shipment_track``: ``carrier_code``, ``title``).

    :param carrier_map: lower-case Commerce carrier code or title -> Amazon ``carrierCode`` (``Other`` sends the
        title as ``carrierName``); the account's setting, which overrides the list.
    :returns: the match (module docstring for the order of the rules); never raises.
    """
    code = (carrier_code or "").strip()
    title = " ".join((title or "").split())
    fallback = (title or code or OTHER)[:100]
    from_title = _title_match(title) if title else None
    for key in (normalise(code), normalise(title)):
        if key and key != "custom" and key in carrier_map:
            mapped = carrier_map[key]
            if mapped == OTHER:
                return CarrierMatch(OTHER, fallback)
            method = from_title[1] if from_title and from_title[0] == mapped else None
            return CarrierMatch(mapped, None, method)
    if normalise(code) not in _NOT_CARRIERS and normalise(code) in _by_name():
        listed = _by_name()[normalise(code)]
        method = from_title[1] if from_title and from_title[0] == listed else None
        return CarrierMatch(listed, None, method)
    if from_title is not None:
        return CarrierMatch(from_title[0], None, from_title[1])
    return CarrierMatch(OTHER, fallback)


def unknown_codes(values: Mapping[str, str]) -> list[str]:
    """The keys of ``values`` whose value is not one of Amazon's carrier codes (for settings validation)."""
    listed = set(carrier_codes())
    return [key for key, value in values.items() if value not in listed]
