"""Exactly-once writes to systems without idempotency keys, and the order operations built on them.

- ``protocol.write_once``: look up by natural key → record the intent → send → on an ambiguous
  failure look again → complete (the one place that decides whether a write may be sent again);
- ``keys``: the natural keys of the intent log, one typed builder each (persisted strings);
- ``orders``: create, invoice, hold, comment, cancel (unhold, full offline refund), anonymise;
- ``shipments``: Amazon's packages as Commerce shipments;
- ``refunds``: an offline credit memo (a refund made on Amazon's side);
- ``stock``: stock moves on the MSI source, planned before they are written.

The pipelines (import, shipment sync, refund sync, cancellation, retention) call these; no pipeline
calls another pipeline.
"""

from amazon_commerce_sync.commerce_writes.keys import WriteKey
from amazon_commerce_sync.commerce_writes.protocol import Done, Source, WriteResult, write_once

__all__ = ["Done", "Source", "WriteKey", "WriteResult", "write_once"]
