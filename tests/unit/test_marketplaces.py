"""Amazon's marketplaces and their selling regions, as the extraction groups them."""

from __future__ import annotations

import pytest

from amazon_commerce_sync.marketplaces import MARKETPLACE_REGIONS, REGIONS, account_region, by_region
from amazon_commerce_sync.settings import SettingsError

US, CA, DE, FR, JP = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "A1VC38T7YXB528"


def test_the_table_is_amazons_as_the_sandbox_serves_it():
    from sandboxes.amazon.marketplaces import MARKETPLACES
    from sandboxes.amazon.marketplaces import REGIONS as SANDBOX_REGIONS

    assert MARKETPLACE_REGIONS == {m.marketplace_id: m.region for m in MARKETPLACES.values()}
    assert set(REGIONS) == set(SANDBOX_REGIONS)


@pytest.mark.parametrize(
    ("ids", "groups"),
    [
        ([US, CA], {"NA": (US, CA)}),
        ([DE, US, FR, DE], {"EU": (DE, FR), "NA": (US,)}),  # order kept, repeats dropped
        ([JP], {"FE": (JP,)}),
    ],
)
def test_marketplaces_grouped_by_region(ids, groups):
    assert by_region(ids) == groups


def test_an_account_has_one_region():
    assert account_region("us-main", [US, CA]) == ("NA", (US, CA))
    with pytest.raises(SettingsError) as info:
        account_region("mixed", [US, DE])
    assert str(info.value) == (
        f"accounts[mixed].marketplace_ids: marketplaces of more than one Amazon region (NA: {US}; EU: {DE}). "
        "Amazon serves each region on its own endpoint and authorises a seller per region: give each region its "
        "own account with its own amazon_conn_id"
    )


def test_an_id_that_is_no_marketplace_is_named():
    with pytest.raises(SettingsError) as info:
        by_region([US, "AXXXXXXXXXXX"])
    assert "'AXXXXXXXXXXX' is not an Amazon marketplace id" in str(info.value)
