"""The auth objects (hooks/auth.py) against the sandboxes' real token endpoints and signature checks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from amazon_commerce_sync.errors import AuthenticationError, ConnectionFailedError, RetriableError
from amazon_commerce_sync.hooks.auth import BearerAuth, LwaAuth, MagentoAdminTokenAuth, magento_oauth1
from amazon_commerce_sync.hooks.classify import classify
from amazon_commerce_sync.hooks.commerce import CommerceHook
from amazon_commerce_sync.hooks.search_criteria import Filter, search_criteria
from amazon_commerce_sync.retry import RetryPolicy
from tests.hooks.test_amazon_hook import CLIENT_SECRET, REFRESH_TOKEN, generate, stats
from tests.hooks.test_amazon_hook import admin as amazon_admin
from tests.hooks.test_commerce_hook import ADMIN_PASSWORD, OAUTH, calls, set_conn
from tests.hooks.test_commerce_hook import admin as commerce_admin

TIMEOUT = (5.0, 10.0)
TOKEN_ROUTE = "POST /V1/integration/admin/token"


def lwa(base_url: str, **kw) -> LwaAuth:
    return LwaAuth(
        endpoint=f"{base_url}/auth/o2/token",
        client_id="sandbox-client-id",
        client_secret=kw.pop("client_secret", CLIENT_SECRET),
        refresh_token=kw.pop("refresh_token", REFRESH_TOKEN),
        timeout=TIMEOUT,
        conn_id="amazon_test",
        **kw,
    )


# -- Login with Amazon -------------------------------------------------------------------------
def test_lwa_auth_sets_the_access_token_and_renews_it_once_refused(amazon_sandbox):
    base_url, app = amazon_sandbox
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    auth = lwa(base_url)
    url = f"{base_url}/orders/2026-01-01/orders/{order_id}"
    for _ in range(2):
        assert requests.get(url, auth=auth, timeout=TIMEOUT).json()["order"]["orderId"] == order_id
    assert stats(base_url, "lwaToken")["requests"] == 1  # cached
    with app.state.sandbox.lock:  # revoked on Amazon's side
        app.state.sandbox.tokens.clear()
    refused = requests.get(url, auth=auth, timeout=TIMEOUT)
    error = classify(refused, "getOrder")
    assert refused.status_code == 403 and error.code == "Unauthorized"
    assert auth.refused(refused, error) is True
    assert requests.get(url, auth=auth, timeout=TIMEOUT).ok  # a new token, fetched when the replay is signed
    assert stats(base_url, "lwaToken")["requests"] == 2
    # a refusal carrying an older token than the current one does not throw the current one away
    assert auth.refused(refused, error) is True and requests.get(url, auth=auth, timeout=TIMEOUT).ok
    assert stats(base_url, "lwaToken")["requests"] == 2


def test_lwa_auth_does_not_renew_for_a_refusal_about_something_else(amazon_sandbox):
    base_url, _ = amazon_sandbox
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    auth = lwa(base_url)
    found = requests.get(f"{base_url}/orders/2026-01-01/orders/{order_id}", auth=auth, timeout=TIMEOUT)
    missing = requests.get(f"{base_url}/orders/2026-01-01/orders/111-0000000-0000000", auth=auth, timeout=TIMEOUT)
    assert missing.status_code == 404
    assert auth.refused(missing, classify(missing, "getOrder")) is False
    forbidden = requests.Response()  # a 403 about a missing role, not about the token
    forbidden.status_code, forbidden.request = 403, found.request
    forbidden._content = b'{"errors": [{"code": "AccessDenied", "message": "Access to requested resource is denied."}]}'
    assert auth.refused(forbidden, classify(forbidden, "getOrder")) is False
    assert requests.get(found.url, auth=auth, timeout=TIMEOUT).ok
    assert stats(base_url, "lwaToken")["requests"] == 1


def test_lwa_auth_failures_are_sorted_and_secrets_never_shown(amazon_sandbox):
    base_url, _ = amazon_sandbox
    auth = lwa(base_url, client_secret="not-the-secret-xyz")
    with pytest.raises(AuthenticationError) as info:
        auth.access_token()
    assert "LWA rejected the credentials: invalid_client" in str(info.value) and "amazon_test" in str(info.value)
    assert "not-the-secret-xyz" not in repr(auth) and REFRESH_TOKEN not in repr(auth)
    amazon_admin(base_url, "POST", "/faults", {"error_rate": 1.0, "operations": ["lwaToken"]})
    down = lwa(base_url, retry_policy=RetryPolicy(attempts=2))
    with pytest.raises(RetriableError):
        down.access_token()
    assert stats(base_url, "lwaToken")["requests"] == 1 + 2  # retried under the policy
    with pytest.raises(RetriableError):
        requests.get(f"{base_url}/orders/2026-01-01/orders/x", auth=down, timeout=TIMEOUT)
    assert stats(base_url, "lwaToken")["requests"] == 1 + 2 + 1  # signing a request: one attempt only


# -- Magento admin token -----------------------------------------------------------------------
@pytest.fixture
def shop(commerce_sandbox, monkeypatch):
    base_url, app = commerce_sandbox
    set_conn(monkeypatch, base_url, login="admin", password=ADMIN_PASSWORD, extra={"auth": "admin"})
    return base_url, app


def test_admin_token_is_shared_by_every_hook_of_the_process(shop):
    base_url, app = shop

    def read_currencies(_):
        return CommerceHook().get_allowed_currencies()  # a hook per thread, as the pipelines use them

    with ThreadPoolExecutor(4) as pool:
        assert all("USD" in codes for codes in pool.map(read_currencies, range(8)))
    assert calls(base_url, TOKEN_ROUTE) == 1
    first, second = CommerceHook(), CommerceHook()
    first.get_allowed_currencies()
    second.get_allowed_currencies()
    with app.state.sandbox.lock:  # revoked in Commerce
        app.state.sandbox.admin_tokens.clear()
    first.get_allowed_currencies()  # 401, a new token, the replay
    second.get_allowed_currencies()  # uses the new token at once
    assert calls(base_url, TOKEN_ROUTE) == 2


def test_admin_token_refused_by_two_threads_is_renewed_once(shop):
    base_url, app = shop
    auth = MagentoAdminTokenAuth(
        token_url=f"{base_url}/rest/default/V1/integration/admin/token",
        username="admin",
        password=ADMIN_PASSWORD,
        timeout=TIMEOUT,
        conn_id="commerce",
    )
    url = f"{base_url}/rest/default/V1/directory/currency"
    assert requests.get(url, auth=auth, timeout=TIMEOUT).ok
    with app.state.sandbox.lock:
        app.state.sandbox.admin_tokens.clear()
    barrier = threading.Barrier(2)

    def refused_then_replayed(_):
        response = requests.get(url, auth=auth, timeout=TIMEOUT)  # both carry the revoked token
        barrier.wait()
        assert response.status_code == 401 and auth.refused(response, classify(response, "GET /V1/directory/currency"))
        return requests.get(url, auth=auth, timeout=TIMEOUT).ok

    with ThreadPoolExecutor(2) as pool:
        assert all(pool.map(refused_then_replayed, range(2)))
    assert calls(base_url, TOKEN_ROUTE) == 2  # the second refusal found the token already renewed
    assert ADMIN_PASSWORD not in repr(auth)


def test_admin_token_endpoint_down_means_the_call_was_not_sent(shop):
    base_url, _ = shop
    token_down = {"route": TOKEN_ROUTE, "kind": "error", "count": 1, "status": 503}
    commerce_admin(base_url, "POST", "/faults", {"fail_next": [token_down]})
    hook = CommerceHook(retry_policy=RetryPolicy(attempts=1))
    with pytest.raises(ConnectionFailedError) as info:
        hook.create_order({"ext_order_id": "x"})
    assert not info.value.request_sent and info.value.safe_to_replay
    assert "could not authenticate before sending" in str(info.value)
    assert calls(base_url, "POST /V1/orders") == 0


# -- OAuth 1.0a and bearer ---------------------------------------------------------------------
def test_oauth1_hmac_sha256_signature_accepted_and_bound_to_the_request(shop):
    base_url, _ = shop
    auth = magento_oauth1(**OAUTH)
    url = f"{base_url}/rest/default/V1/products"
    params = search_criteria([[Filter("sku", "%", "like")]], page_size=5, current_page=1)
    response = requests.get(url, params=params, auth=auth, timeout=TIMEOUT)
    header = response.request.headers["Authorization"]
    header = header.decode() if isinstance(header, bytes) else header
    assert response.ok and 'oauth_signature_method="HMAC-SHA256"' in header
    # The signature covers the query: the same (unused elsewhere) signature on another query is refused.
    other = search_criteria([[Filter("sku", "SKU-%", "like")]], page_size=5, current_page=1)
    refused = requests.get(url, params=other, headers={"Authorization": header}, timeout=TIMEOUT)
    assert refused.status_code == 401 and "signature is invalid" in refused.json()["message"]
    wrong = magento_oauth1(**{**OAUTH, "consumer_secret": "wrong"})
    assert requests.get(url, params=params, auth=wrong, timeout=TIMEOUT).status_code == 401


def test_bearer_auth_sends_the_token_and_hides_it(shop):
    base_url, _ = shop
    token = requests.post(
        f"{base_url}/rest/default/V1/integration/admin/token",
        json={"username": "admin", "password": ADMIN_PASSWORD},
        timeout=TIMEOUT,
    ).json()
    auth = BearerAuth(token)
    assert requests.get(f"{base_url}/rest/default/V1/directory/currency", auth=auth, timeout=TIMEOUT).ok
    assert token not in repr(auth)
    assert (
        requests.get(
            f"{base_url}/rest/default/V1/directory/currency", auth=BearerAuth("x"), timeout=TIMEOUT
        ).status_code
        == 401
    )
