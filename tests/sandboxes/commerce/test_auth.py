"""Admin tokens, OAuth 1.0a signatures (HMAC-SHA256/SHA1), nonce replay, bearer integration tokens."""

from __future__ import annotations

import requests
from commerce_helpers import validate
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1

from sandboxes.commerce.config import CommerceSandboxConfig

CREDS = CommerceSandboxConfig().integration
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."


def oauth(method=SIGNATURE_HMAC_SHA256, consumer_secret=None, token_secret=None) -> OAuth1:
    return OAuth1(
        CREDS["consumer_key"],
        consumer_secret or CREDS["consumer_secret"],
        CREDS["access_token"],
        token_secret or CREDS["access_token_secret"],
        signature_method=method,
    )


def test_admin_token_good_bad_and_expired(commerce_sandbox):
    base, app = commerce_sandbox
    url = f"{base}/rest/default/V1/integration/admin/token"
    body = {"username": "admin", "password": "sandbox-admin-password"}
    validate("error-response", {"message": "x"})  # sanity of the helper
    good = requests.post(url, json=body, timeout=5)
    assert good.status_code == 200
    token = good.json()
    assert isinstance(token, str) and len(token) >= 32

    bad = requests.post(url, json={**body, "password": "wrong"}, timeout=5)
    assert bad.status_code == 401
    assert bad.json() == {
        "message": "The account sign-in was incorrect or your account is disabled temporarily. "
        "Please wait and try again later."
    }
    validate("error-response", bad.json())

    orders = f"{base}/rest/default/V1/orders"
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(orders, params={"searchCriteria": ""}, headers=headers, timeout=5).status_code == 200
    state = app.state.sandbox
    real_clock = state.clock
    state.clock = lambda: real_clock() + 4 * 3600 + 1  # past the 4 h lifetime
    expired = requests.get(orders, params={"searchCriteria": ""}, headers=headers, timeout=5)
    assert expired.status_code == 401
    assert expired.json() == {"message": NOT_AUTHORIZED, "parameters": {"resources": "Magento_Sales::actions_view"}}


def test_no_or_garbage_credentials_are_rejected(client):
    url = client.url("/V1/orders")
    assert requests.get(url, params={"searchCriteria": ""}, timeout=5).status_code == 401
    resp = requests.get(url, params={"searchCriteria": ""}, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert resp.status_code == 401 and resp.json()["message"] == NOT_AUTHORIZED


def test_oauth1_hmac_sha256_and_sha1_signed_requests_are_accepted(client):
    params = {
        "searchCriteria[filter_groups][0][filters][0][field]": "sku",
        "searchCriteria[filter_groups][0][filters][0][value]": "SKU-1,SKU-2",
        "searchCriteria[filter_groups][0][filters][0][condition_type]": "in",
    }
    for method in (SIGNATURE_HMAC_SHA256, SIGNATURE_HMAC_SHA1):
        resp = requests.get(client.url("/V1/products"), params=params, auth=oauth(method), timeout=5)
        assert resp.status_code == 200, resp.text
        assert resp.json()["total_count"] == 2
    created = requests.post(
        client.url("/V1/customers"),
        auth=oauth(),
        json={"customer": {"email": "o@example.com", "firstname": "O", "lastname": "Auth"}},
        timeout=5,
    )
    assert created.status_code == 200, created.text


def test_oauth1_wrong_secret_is_rejected(client):
    for kwargs in ({"consumer_secret": "wrong"}, {"token_secret": "wrong"}):
        resp = requests.get(client.url("/V1/products/SKU-1"), auth=oauth(**kwargs), timeout=5)
        assert resp.status_code == 401
        assert resp.json()["message"] == "The signature is invalid. Verify and try again."


def test_oauth1_signature_covers_the_query(client):
    prepared = requests.Request("GET", client.url("/V1/products/SKU-1"), auth=oauth()).prepare()
    prepared.url = prepared.url.replace("SKU-1", "SKU-2")  # tampered after signing
    resp = requests.Session().send(prepared, timeout=5)
    assert resp.status_code == 401


def test_oauth1_replayed_nonce_is_rejected(client):
    prepared = requests.Request("GET", client.url("/V1/products/SKU-1"), auth=oauth()).prepare()
    session = requests.Session()
    assert session.send(prepared, timeout=5).status_code == 200
    replay = session.send(prepared, timeout=5)
    assert replay.status_code == 401
    assert "nonce is already being used" in replay.json()["message"]


def test_oauth1_stale_timestamp_is_rejected(client):
    state = client.app.state.sandbox
    real_clock = state.clock
    state.clock = lambda: real_clock() + 3600
    resp = requests.get(client.url("/V1/products/SKU-1"), auth=oauth(), timeout=5)
    assert resp.status_code == 401


def test_integration_token_as_bearer_only_when_allowed(client):
    headers = {"Authorization": f"Bearer {CREDS['access_token']}"}
    url = client.url("/V1/products/SKU-1")
    assert requests.get(url, headers=headers, timeout=5).status_code == 401
    assert client.admin("/settings", {"allow_oauth_tokens_as_bearer": True}).status_code == 200
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
