"""Buyer personal data encrypted at rest: the ``order_pii`` columns as Fernet tokens tagged with their key's id.

``order_pii`` (buyer name, e-mail, company, shipping address with phone, purchase order number, tax registrations)
is the only place the state store keeps personal data; its columns are SQLAlchemy types that encrypt on write and
decrypt on read, so no query, backup or replica of the state store shows the data in clear. The cipher is
``cryptography``'s Fernet (AES-128-CBC with HMAC-SHA256, authenticated; the scheme Airflow itself uses for
connections and variables), which meets Amazon's Data Protection Policy "AES-128 or stronger" for data at rest.

A stored value is ``fernet:<key id>:<token>``. The key id is 8 hex digits of HMAC-SHA256(key, "...key id") - a
fingerprint that names the key without revealing anything that leads back to it - so a value is decrypted by the
one key that made it, the rows still on an old key are counted in SQL by prefix (``key_id_pattern``), and a missing
key is named in the error. Rotation: put a new key first (it encrypts; the others only decrypt), let the retention
DAG's ``rotate_keys`` task re-encrypt the rows, then drop the old key once no row uses it.

Keys (URL-safe base64 Fernet keys, comma-separated, newest first) come from, in order:
1. the environment variable ``SALES_CHANNEL_PII_KEYS``;
2. the Airflow connection ``sales_channel_pii`` (its password), i.e. the deployment's secrets backend.
They never live in the state store or the code (the store keeps only key ids and when each was first seen,
table ``pii_keys``).

Fails closed: without a key, reading or writing personal data raises ``PiiKeyError`` (no retries: the retry policy
treats it as configuration) and nothing is stored in clear; a value whose key is not configured, or that fails
authentication (a wrong key, a tampered token), raises ``PiiKeyError`` too, never returns the ciphertext as data.
Generate a key with ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.

Values written by earlier versions still read: clear text (before encryption) and ``fernet:<token>`` (before key
ids; decrypted by trying every key). ``rotate_keys`` rewrites both in the current form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

from amazon_commerce_sync.errors import StateStoreConfigError

KEYS_ENV = "SALES_CHANNEL_PII_KEYS"
KEYS_CONN_ID = "sales_channel_pii"
PREFIX = "fernet:"
# What a stored value is, besides the id of the key that encrypted it (``PiiCipher.classify``).
CLEAR = "clear"  # written before encryption was introduced
LEGACY = "legacy"  # ``fernet:<token>``, written before key ids
_KEY_ID_LABEL = b"amazon_commerce_sync order_pii key id"
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_HOW = f"{KEYS_ENV} or the password of the Airflow connection {KEYS_CONN_ID!r}"


class PiiKeyError(StateStoreConfigError):
    """No usable encryption key for buyer data (missing, malformed, or unable to decrypt a stored value)."""


def key_id(key: str) -> str:
    """The non-secret id of a Fernet key: the first 8 hex digits of HMAC-SHA256(key bytes, a fixed label).

    One-way (the key is 256 random bits; the id is 32 bits of a MAC under it), so it may be stored and logged.
    Raises ``PiiKeyError`` on a malformed key."""
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
        Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise PiiKeyError(
            f"{_HOW} holds a malformed Fernet key: each key is 32 bytes of URL-safe base64 (Fernet.generate_key())"
        ) from exc
    return hmac.new(raw, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:8]


def key_id_pattern(kid: str) -> str:
    """The SQL ``LIKE`` pattern of the values encrypted with key ``kid`` (hex digits: no wildcard to escape)."""
    return f"{PREFIX}{kid}:%"


class PiiCipher:
    """Encrypts and decrypts ``order_pii`` values.

    ``keys``: Fernet keys, newest (the one that encrypts) first; blanks are ignored. Raises ``PiiKeyError`` on an
    empty or malformed list, or on two keys with the same id (the same key twice).
    """

    def __init__(self, keys: list[str]) -> None:
        keys = [k.strip() for k in keys if k and k.strip()]
        if not keys:
            raise PiiKeyError(
                f"no encryption key for buyer data: set {_HOW} to one or more Fernet keys (comma-separated, "
                'newest first); make one with python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            )
        self._keys: dict[str, Fernet] = {}
        for key in keys:
            kid = key_id(key)
            if kid in self._keys:
                raise PiiKeyError(f"{_HOW} lists the key with id {kid} twice")
            self._keys[kid] = Fernet(key.encode("ascii"))
        self._all = MultiFernet(list(self._keys.values()))
        self.key_ids: tuple[str, ...] = tuple(self._keys)
        self.current_key_id: str = self.key_ids[0]

    def encrypt(self, plaintext: str) -> str:
        """``plaintext`` -> ``"fernet:<newest key id>:<token>"``."""
        token = self._keys[self.current_key_id].encrypt(plaintext.encode("utf-8")).decode("ascii")
        return f"{PREFIX}{self.current_key_id}:{token}"

    @staticmethod
    def classify(stored: str) -> str:
        """What a stored value is: ``CLEAR``, ``LEGACY`` or the id of the key that encrypted it."""
        if not stored.startswith(PREFIX):
            return CLEAR
        kid, sep, _ = stored[len(PREFIX) :].partition(":")
        return kid if sep and _KEY_ID.fullmatch(kid) else LEGACY

    def decrypt(self, stored: str) -> str:
        """A stored value -> its text; clear text (written before encryption) is returned as it is.

        Raises ``PiiKeyError`` naming the key id when that key is not configured, and when the value fails
        authentication (a wrong key, a damaged or altered token): never the ciphertext as if it were data."""
        kind = self.classify(stored)
        if kind == CLEAR:
            return stored
        if kind == LEGACY:
            fernet: Fernet | MultiFernet = self._all
            token = stored[len(PREFIX) :]
        else:
            if kind not in self._keys:
                raise PiiKeyError(
                    f"buyer data encrypted with key id {kind} cannot be read: that key is not in {_HOW} "
                    f"(configured key ids: {', '.join(self.key_ids)}). Put the key back (after the newest), let the "
                    "retention DAG's rotate_keys task re-encrypt the rows, then drop it"
                )
            fernet, token = self._keys[kind], stored[len(PREFIX) + len(kind) + 1 :]
        try:
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError) as exc:
            which = "any configured key" if kind == LEGACY else f"key id {kind}"
            raise PiiKeyError(
                f"buyer data cannot be decrypted with {which} from {_HOW}: a key still in use was removed or "
                "replaced, or the stored value was altered (put the key back, let the retention DAG's rotate_keys "
                "task re-encrypt, then drop it)"
            ) from exc

    def needs_rotation(self, stored: str) -> bool:
        """True when ``stored`` is clear text, a value without key id, or encrypted with an older key."""
        return self.classify(stored) != self.current_key_id

    def rotate(self, stored: str) -> str:
        """``stored`` (clear, or encrypted with any configured key) re-encrypted with the newest key."""
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
    """A ``Text`` column holding ``"fernet:<key id>:<token>"``; Python side ``str | None``."""

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
