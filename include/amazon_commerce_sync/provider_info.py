"""The package as an Airflow provider: its two connection types, with their own labels in the connection form.

Airflow finds providers through the ``apache_airflow_provider`` entry point (``pyproject.toml``), which names
:func:`get_provider_info`; its ``connection-types`` are read by ``ProvidersManager`` without importing the hooks
(Airflow 3.3 ``providers_manager._load_ui_metadata``) and served to the UI's connection form by the API server's
``/ui/connections/hook_meta``:

- ``ui-field-behaviour``: standard fields hidden, relabelled and with placeholders (``host``, ``login``, ...;
  the form shows placeholders for standard fields only, so the extra fields say their format in the description);
- ``conn-fields``: the extra fields, each a JSON-schema field (``label`` becomes its title); a field with
  ``"format": "password"`` is masked (sensitive). The form saves them as top-level keys of the connection's extra,
  the keys the hooks read (``hooks/amazon.py``, ``hooks/commerce.py`` module docstrings).

These declarations replace the hooks' ``get_connection_form_widgets`` / ``get_ui_field_behaviour``, deprecated
since Airflow 3.2 (``AirflowProviderDeprecationWarning``). This module imports nothing: Airflow calls it in every
component at start-up.

Connections of type ``http`` keep working (the hooks do not check the type); they show HTTP's form.
"""

from __future__ import annotations

from typing import Any

#: The distribution name in ``pyproject.toml``; Airflow refuses a provider whose ``package-name`` differs.
PACKAGE_NAME = "amazon-commerce-sync"
AMAZON_CONN_TYPE = "amazon_sp_api"
COMMERCE_CONN_TYPE = "adobe_commerce"

_TEXT = {"type": ["string", "null"]}
_SECRET = {"type": ["string", "null"], "format": "password"}


def _field(label: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": dict(schema)}


def _connection_type(
    hook: str, name: str, conn_type: str, labels: dict[str, str], placeholders: dict[str, str], fields: dict[str, Any]
) -> dict[str, Any]:
    """One ``connection-types`` entry: the hook class, the standard fields relabelled (``schema`` and ``port``
    hidden: neither hook reads them), their placeholders, and the extra fields."""
    return {
        "hook-class-name": f"amazon_commerce_sync.hooks.{hook}",
        "hook-name": name,
        "connection-type": conn_type,
        "ui-field-behaviour": {"hidden-fields": ["schema", "port"], "relabeling": labels, "placeholders": placeholders},
        "conn-fields": fields,
    }


AMAZON_CONNECTION = _connection_type(
    "amazon.AmazonSpApiHook",
    "Amazon Selling Partner API",
    AMAZON_CONN_TYPE,
    {"host": "SP-API endpoint", "login": "LWA client id", "password": "LWA client secret"},
    {
        "host": "https://sellingpartnerapi-na.amazon.com",
        "login": "amzn1.application-oa2-client.…",
        "password": "the LWA client secret of your app",
    },
    {
        "refresh_token": _field(
            "LWA refresh token",
            "The seller's Login with Amazon refresh token (Atzr|..., from authorising your app in Seller Central).",
            _SECRET,
        ),
        "lwa_endpoint": _field(
            "LWA token endpoint", "Where access tokens come from (default https://api.amazon.com/auth/o2/token).", _TEXT
        ),
        "rate_scale": _field(
            "Rate-limit scale",
            "Multiplies Amazon's default rate limits (a seller granted higher limits); default 1.",
            {"type": ["number", "null"], "exclusiveMinimum": 0},
        ),
    },
)

COMMERCE_CONNECTION = _connection_type(
    "commerce.CommerceHook",
    "Adobe Commerce",
    COMMERCE_CONN_TYPE,
    {
        "host": "Store base URL",
        "login": "Admin user (auth mode admin)",
        "password": "Password (admin) or token (bearer)",
    },
    {"host": "https://shop.example.com", "login": "an admin user with the Sales and Catalog resources"},
    {
        "store_code": _field("Store code", "The store view in /rest/<store code>/V1/... (default: default).", _TEXT),
        "auth": _field(
            "Auth mode",
            "admin: the admin user and password above; bearer: a token in the password field; oauth1: the "
            "integration's four OAuth values below (default: admin).",
            {"type": ["string", "null"], "enum": ["admin", "bearer", "oauth1"]},
        ),
        "consumer_key": _field("Consumer key (oauth1)", "From System ▸ Integrations ▸ your integration.", _SECRET),
        "consumer_secret": _field("Consumer secret (oauth1)", "From the same integration.", _SECRET),
        "access_token": _field("Access token (oauth1)", "From the same integration.", _SECRET),
        "access_token_secret": _field("Access token secret (oauth1)", "From the same integration.", _SECRET),
    },
)


def get_provider_info() -> dict[str, Any]:
    """The provider description Airflow reads through the ``apache_airflow_provider`` entry point.

    :returns: a dict valid against Airflow's ``provider_info.schema.json``: ``package-name`` (the distribution),
        ``name``, ``description`` and ``connection-types`` (:data:`AMAZON_CONNECTION`, :data:`COMMERCE_CONNECTION`).
    """
    return {
        "package-name": PACKAGE_NAME,
        "name": "Amazon Seller Central and Adobe Commerce sales channel",
        "description": "Connection types of the Amazon SP-API and Adobe Commerce hooks.",
        "connection-types": [AMAZON_CONNECTION, COMMERCE_CONNECTION],
    }
