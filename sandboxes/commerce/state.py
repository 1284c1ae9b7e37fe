"""In-memory state of the sandbox, its id counters and increment-id sequences, and JSON persistence.

Writes are atomic (temporary file + ``os.replace``) and happen after every change when a
``state_file`` is configured, so a restart with the same file keeps everything.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandboxes.commerce.config import CommerceSandboxConfig
from sandboxes.commerce.wire import dumps_state, loads_state

log = logging.getLogger(__name__)

ENTITY_TABLES = ("customers", "orders", "invoices", "shipments", "creditmemos")
RATE_PLACES = Decimal("0.000000000001")  # directory_currency_rate.rate is decimal(24,12)


def configured_rates(config: CommerceSandboxConfig) -> dict[str, dict[str, Decimal]]:
    """The configured Stores > Currency Rates ``{from: {to: rate}}`` as exact decimals of 12 places."""
    return {
        base.upper(): {to.upper(): Decimal(str(rate)).quantize(RATE_PLACES) for to, rate in rates.items()}
        for base, rates in config.currency_rates.items()
    }


def format_ts(epoch: float) -> str:
    """Magento's 'Y-m-d H:i:s' UTC timestamp."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


class SandboxState:
    """Everything the sandbox knows; guarded by ``lock`` (an RLock)."""

    def __init__(self, config: CommerceSandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.time
        self.products: dict[str, dict[str, Any]] = {}
        self.source_items: dict[str, dict[str, Any]] = {}
        self.customers: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.invoices: dict[int, dict[str, Any]] = {}
        self.shipments: dict[int, dict[str, Any]] = {}
        self.creditmemos: dict[int, dict[str, Any]] = {}
        self.counters: dict[str, int] = {}
        self.sequences: dict[str, int] = {}
        self.admin_tokens: dict[str, dict[str, Any]] = {}
        self.nonces: dict[str, float] = {}
        self.stats: collections.Counter[str] = collections.Counter()
        # Magento's directory_currency_rate: one global table of rates, not per store.
        self.currency_rates: dict[str, dict[str, Decimal]] = configured_rates(config)
        self.faults: Any = None  # set by the app (faults.FaultSettings)
        if config.state_file and Path(config.state_file).exists():
            self._load(Path(config.state_file))

    # --- clock and ids ------------------------------------------------------------------------
    def now(self) -> str:
        return format_ts(self.clock())

    def next_id(self, kind: str) -> int:
        value = self.counters.get(kind, 0) + 1
        self.counters[kind] = value
        return value

    def next_increment_id(self, entity: str, store_id: int) -> str:
        """Magento's sales sequence: 9 digits, prefixed by the store id except for store 1."""
        key = f"{entity}:{store_id}"
        value = self.sequences.get(key, 0) + 1
        self.sequences[key] = value
        prefix = "" if int(store_id) == 1 else str(store_id)
        return f"{prefix}{value:09d}"

    # --- lifecycle ----------------------------------------------------------------------------
    def reset(self, catalog: bool = False) -> None:
        with self.lock:
            for table in ENTITY_TABLES:
                getattr(self, table).clear()
            keep = {"product"} if not catalog else set()
            self.counters = {k: v for k, v in self.counters.items() if k in keep}
            self.sequences.clear()
            self.stats.clear()
            if catalog:
                self.products.clear()
                self.source_items.clear()
            self.save()

    # --- persistence --------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "version": 1,
            "products": list(self.products.values()),
            "source_items": list(self.source_items.values()),
            **{table: list(getattr(self, table).values()) for table in ENTITY_TABLES},
            "counters": self.counters,
            "sequences": self.sequences,
            "admin_tokens": self.admin_tokens,
            "nonces": self.nonces,
            "currency_rates": self.currency_rates,
        }

    def save(self) -> None:
        """Atomically write the state file (no-op without ``state_file``)."""
        path = self.config.state_file
        if not path:
            return
        with self.lock:
            text = dumps_state(self.snapshot())
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def _load(self, path: Path) -> None:
        data = loads_state(path.read_text(encoding="utf-8"))
        self.products = {p["sku"]: p for p in data.get("products", [])}
        self.source_items = {s["sku"]: s for s in data.get("source_items", [])}
        key = {"customers": "id"}
        for table in ENTITY_TABLES:
            id_field = key.get(table, "entity_id")
            setattr(self, table, {int(row[id_field]): row for row in data.get(table, [])})
        self.counters = dict(data.get("counters", {}))
        self.sequences = dict(data.get("sequences", {}))
        self.admin_tokens = dict(data.get("admin_tokens", {}))
        self.nonces = dict(data.get("nonces", {}))
        if "currency_rates" in data:
            self.currency_rates = {base: dict(rates) for base, rates in data["currency_rates"].items()}
        log.info("commerce sandbox state loaded from %s (%s orders)", path, len(self.orders))
