"""The ``commerce`` connection of ``CommerceHook``, read and validated (see ``hooks/commerce.py`` for its fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from amazon_commerce_sync.errors import AuthenticationError
from amazon_commerce_sync.hooks.rest import DEFAULT_TIMEOUT, connection_base_url, parse_timeout

AuthMode = Literal["admin", "bearer", "oauth1"]


@dataclass(frozen=True)
class CommerceSettings:
    """The validated connection. Secrets are kept out of ``repr``."""

    conn_id: str
    base_url: str
    store_code: str
    auth: AuthMode
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    oauth: dict[str, str] | None = field(default=None, repr=False)
    timeout: tuple[float, float] = DEFAULT_TIMEOUT


def parse_connection(conn: Any, conn_id: str) -> CommerceSettings:
    """``conn`` (an Airflow connection) → ``CommerceSettings``.

    :raises AuthenticationError: a field is missing or malformed; the message names the connection and each field.
    """
    extra = conn.extra_dejson or {}
    where = f"Airflow connection '{conn_id}'"
    if not conn.host:
        raise AuthenticationError(f"{where} is missing host (the store's base URL)", operation="connection")
    auth = (extra.get("auth") or "admin").lower()
    missing: list[str] = []
    oauth: dict[str, str] | None = None
    token = None
    if auth == "admin":
        if not conn.login:
            missing.append("login (admin user name)")
        if not conn.password:
            missing.append("password (admin password)")
    elif auth == "bearer":
        token = extra.get("token") or conn.password
        if not token:
            missing.append("password or extra.token (the bearer token)")
    elif auth == "oauth1":
        names = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
        missing += [f"extra.{n}" for n in names if not extra.get(n)]
        oauth = {n: str(extra.get(n)) for n in names}
    else:
        raise AuthenticationError(
            f"{where}: extra.auth must be admin, bearer or oauth1, not {auth!r}", operation="connection"
        )
    if missing:
        raise AuthenticationError(f"{where} (auth={auth}) is missing: {'; '.join(missing)}", operation="connection")
    try:
        timeout = parse_timeout(extra.get("timeout"))
    except (TypeError, ValueError) as exc:
        raise AuthenticationError(f"{where}: extra.timeout must be a number", operation="connection") from exc
    return CommerceSettings(
        conn_id=conn_id,
        base_url=connection_base_url(conn),
        store_code=str(extra.get("store_code") or "default"),
        auth=auth,  # type: ignore[arg-type]
        username=conn.login,
        password=conn.password,
        token=token,
        oauth=oauth,
        timeout=timeout,
    )
