"""Buyer personal data encrypted at rest: the ``order_pii`` columns as Fernet tokens.

``order_pii`` (buyer name, e-mail, company, shipping address) is the only place the state store keeps personal
data; its columns are SQLAlchemy types that encrypt on write and decrypt on read, so no query, backup or replica
of the state store shows the data in clear. The cipher is ``cryptography``'s ``MultiFernet`` (AES-128-CBC with
HMAC-SHA256, the scheme Airflow itself uses for connections and variables): the first key encrypts, every key
decrypts, so a key is rotated by putting the new key first, then re-encrypting (``rotate``; the retention DAG does
it daily) and finally dropping the old key.

Keys (URL-safe base64 Fernet keys, comma-separated, newest first) come from, in order:
1. the environment variable ``SALES_CHANNEL_PII_KEYS``;
2. the Airflow connection ``sales_channel_pii`` (its password), i.e. the deployment's secrets backend.

Without a key, reading or writing personal data fails with ``PiiKeyError`` (no retries: the retry policy treats
it as configuration), never stores it in clear. Generate a key with
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.

Values written before encryption was introduced (plain text, or JSON for the address) are read as they are and
re-encrypted by ``rotate``; a stored token is recognised by its ``fernet:`` prefix.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

from amazon_commerce_sync.errors import StateStoreConfigError

KEYS_ENV = "SALES_CHANNEL_PII_KEYS"
KEYS_CONN_ID = "sales_channel_pii"
PREFIX = "fernet:"


class PiiKeyError(StateStoreConfigError):
    """No usable encryption key for buyer data (missing, malformed, or unable to decrypt a stored value)."""


class PiiCipher:
    """Encrypts and decrypts ``order_pii`` values with ``MultiFernet``.

    ``keys``: Fernet keys, newest (the one that encrypts) first. Raises ``PiiKeyError`` on an empty or malformed
    key list.
    """

    def __init__(self, keys: list[str]) -> None:
        keys = [k.strip() for k in keys if k and k.strip()]
        if not keys:
            raise PiiKeyError(
                f"no encryption key for buyer data: set {KEYS_ENV} or the password of the Airflow connection "
                f"{KEYS_CONN_ID!r} to one or more Fernet keys (comma-separated, newest first)"
            )
        try:
            self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in keys])
        except (ValueError, UnicodeEncodeError) as exc:
            raise PiiKeyError(
                f"{KEYS_ENV} / connection {KEYS_CONN_ID!r} holds a malformed Fernet key: each key is 32 bytes of "
                "URL-safe base64 (Fernet.generate_key())"
            ) from exc
        self._current = Fernet(keys[0].encode("ascii"))

    def encrypt(self, plaintext: str) -> str:
        """``plaintext`` → ``"fernet:<token>"`` (with the newest key)."""
        return PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """A stored value → its text; a value without the prefix (written before encryption) is returned as is.

        Raises ``PiiKeyError`` when no key decrypts it (a key was dropped before its rows were rotated)."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise PiiKeyError(
                f"buyer data cannot be decrypted with the keys in {KEYS_ENV} / connection {KEYS_CONN_ID!r}: "
                "a key still in use was removed (put it back, run the retention DAG to re-encrypt, then drop it)"
            ) from exc

    def needs_rotation(self, stored: str) -> bool:
        """True when ``stored`` is clear text or was not encrypted with the newest key."""
        if not stored.startswith(PREFIX):
            return True
        try:
            self._current.decrypt(stored[len(PREFIX) :].encode("ascii"))
        except InvalidToken:
            return True
        return False

    def rotate(self, stored: str) -> str:
        """``stored`` (clear, or encrypted with any key) re-encrypted with the newest key."""
        return self.encrypt(self.decrypt(stored))


_lock = threading.Lock()
_cipher: PiiCipher | None = None
_cipher_source: str | None = None


def _connection_keys() -> str:
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # outside Airflow (tools, sandboxes)
        return ""
    try:
        return (BaseHook.get_connection(KEYS_CONN_ID).password or "").strip()
    except Exception:  # noqa: BLE001 - an undefined connection raises Airflow's own "not found" error
        return ""


def cipher() -> PiiCipher:
    """The process's cipher: from ``SALES_CHANNEL_PII_KEYS`` (re-read when it changes), else from the
    ``sales_channel_pii`` connection, looked up once per process (an Airflow task is a process of its own, so a
    rotated key reaches the next task).

    Raises ``PiiKeyError`` when no key is configured."""
    global _cipher, _cipher_source
    keys = os.environ.get(KEYS_ENV, "").strip()
    with _lock:
        if keys and keys == _cipher_source and _cipher is not None:
            return _cipher
        if not keys and _cipher is not None and _cipher_source == KEYS_CONN_ID:
            return _cipher
        if keys:
            _cipher, _cipher_source = PiiCipher(keys.split(",")), keys
        else:
            _cipher, _cipher_source = PiiCipher(_connection_keys().split(",")), KEYS_CONN_ID
        return _cipher


class EncryptedText(TypeDecorator):
    """A ``Text`` column holding ``"fernet:<token>"``; Python side ``str | None``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else cipher().encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else cipher().decrypt(value)


class EncryptedJSON(EncryptedText):
    """A ``Text`` column holding an encrypted JSON document; Python side a JSON value or ``None``."""

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else cipher().encrypt(json.dumps(value, ensure_ascii=False, sort_keys=True))

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):  # a JSON column read before migration 0002 changed its type
            return value
        return json.loads(cipher().decrypt(value))
