"""Amazon's carrier list in the package, and matching Commerce tracks to it (carriers.match_carrier)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amazon_commerce_sync.carriers import OTHER, carrier_codes, match_carrier, normalise
from amazon_commerce_sync.settings import DEFAULT_CARRIER_MAP, SettingsError, parse_settings

SANDBOX_LIST = Path(__file__).resolve().parents[2] / "sandboxes" / "amazon" / "carrier_codes.json"


def test_the_package_has_its_own_copy_of_amazons_list_equal_to_the_sandboxes():
    import amazon_commerce_sync.carriers as carriers

    assert "sandboxes" not in Path(carriers.__file__).read_text()  # its own copy, not the sandbox's
    assert list(carrier_codes()) == json.loads(SANDBOX_LIST.read_text())["carrierCodes"]
    assert {"UPS", "USPS", "FedEx", "DHL", "Royal Mail", "Canada Post", "Other"} <= set(carrier_codes())
    assert set(DEFAULT_CARRIER_MAP.values()) <= set(carrier_codes())


@pytest.mark.parametrize(
    ("code", "title", "expected"),
    [
        # Issue 13 §3 / §4: on Amazon's list under the title, with the service as shippingMethod.
        ("custom", "Royal Mail Tracked 24", ("Royal Mail", None, "Tracked 24")),
        ("custom", "UPS Ground", ("UPS", None, "Ground")),
        ("custom", "  royal   MAIL  tracked 48 ", ("Royal Mail", None, "tracked 48")),  # case and spacing
        ("custom", "Royal Mail Special Delivery Guaranteed", ("Royal Mail", None, "Special Delivery Guaranteed")),
        ("custom", "DHL Express", ("DHL Express", None, None)),  # the longest listed name
        ("custom", "DHL Express Worldwide", ("DHL Express", None, "Worldwide")),
        ("ups", "UPS Next Day Air", ("UPS", None, "Next Day Air")),  # by code, the service from the title
        ("usps", "United States Postal Service", ("USPS", None, None)),  # Magento's own carrier codes
        ("fedex", "Federal Express", ("FedEx", None, None)),
        ("dhl", "DHL", ("DHL", None, None)),
        ("custom", "yodel", ("Yodel", None, None)),
        ("custom", "royal_mail", ("Royal Mail", None, None)),  # the first of names equal but for case/spacing
        # Nothing on the list: Other with the title as carrierName.
        ("custom", "Parcel Hopper 48", (OTHER, "Parcel Hopper 48", None)),
        ("custom", "Sending via a local courier", (OTHER, "Sending via a local courier", None)),  # not a service
        ("custom", "Other", (OTHER, "Other", None)),
        ("tablerate", "", (OTHER, "tablerate", None)),
        ("", "", (OTHER, OTHER, None)),
    ],
)
def test_match_carrier(code, title, expected):
    match = match_carrier(code, title, DEFAULT_CARRIER_MAP)
    assert (match.carrier_code, match.carrier_name, match.shipping_method) == expected
    assert match.carrier_code in carrier_codes()


def test_carrier_map_overrides_the_list():
    # The account says its "Royal Mail ..." tracks go with Parcelforce, and "Hopper" is a carrier it cannot name.
    overrides = {**DEFAULT_CARRIER_MAP, "royal mail tracked 24": "Parcelforce", "parcel hopper 48": OTHER}
    match = match_carrier("custom", "Royal Mail Tracked 24", overrides)
    assert (match.carrier_code, match.carrier_name) == ("Parcelforce", None)
    match = match_carrier("custom", "Parcel Hopper 48", overrides)
    assert (match.carrier_code, match.carrier_name) == (OTHER, "Parcel Hopper 48")
    match = match_carrier("hopper", "Hopper Express", {"hopper": "Yodel"})
    assert (match.carrier_code, match.carrier_name, match.shipping_method) == ("Yodel", None, None)


VALID = {"account_id": "us-main", "marketplace_ids": ["ATVPDKIKX0DER"], "import_orders_after": "2026-01-01T00:00:00Z"}


def test_settings_refuse_a_carrier_map_value_amazon_does_not_list():
    with pytest.raises(SettingsError, match=r"accounts\[0\]\.carrier_map: \['Speedy Express'\] not on Amazon's"):
        parse_settings({"accounts": [{**VALID, "carrier_map": {"Speedy": "Speedy Express"}}]})
    account = parse_settings({"accounts": [{**VALID, "carrier_map": {"Parcel  Hopper": "Other", "UPS": "UPS"}}]})
    assert account.accounts[0].carrier_map["parcel hopper"] == OTHER
    assert normalise(" Royal_Mail  Tracked ") == "royal mail tracked"
