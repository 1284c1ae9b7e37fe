"""``write_once``: one write to a system without idempotency keys, with an effect exactly once.

Magento's REST API takes no idempotency key: sending ``POST /V1/orders`` twice makes two orders.
Amazon's ``createFeed`` is the same. After a timeout, a dropped connection or a 5xx the request may
or may not have taken effect (the commit-then-fail case), so a write is never simply sent again.
Every such write goes through one protocol, keyed by the effect's natural key (``keys``):

1. **Recorded?** The intent log (``store.writes``) has the key DONE (or FAILED): return what it
   recorded; nothing is read or sent.
2. **Look first.** With ``look_first``, or when an earlier attempt left an intent whose outcome is
   unknown, ``look(earlier)`` searches the target system for the effect (the order by
   ``ext_order_id``, the shipment carrying the key, the comment's text...). Found: record it DONE.
3. **Record the intent** (with ``detail``, e.g. a stock plan) before anything is sent, so a crash
   after sending leaves a trace that step 2 of the next attempt follows.
4. **Send.** Answered: record DONE with what was made (with the caller's ``then`` bookkeeping, in one
   transaction: it commits with the outcome or not at all, and costs no commit of its own).
   ``FatalError`` (a 4xx: the system refused it, nothing was written): forget the intent, re-raise.
   ``RetriableError`` (no answer, 5xx, timeout — it may have landed): **look again**; found: DONE;
   not found: re-raise with the intent kept, so the next attempt looks before it sends.

The hooks never retry a non-idempotent write by themselves; this is the only place that decides
whether one may be sent again.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from amazon_commerce_sync.commerce_writes.keys import WriteKey
from amazon_commerce_sync.errors import FatalError, RetriableError
from amazon_commerce_sync.store import WriteLog, WriteRow, WriteStatus

log = logging.getLogger(__name__)

T = TypeVar("T")


class Source(enum.StrEnum):
    """How ``write_once`` knows the write took effect."""

    RECORDED = "recorded"  # the intent log had its outcome: nothing was read or sent
    FOUND = "found"  # found in the target system before sending (an earlier attempt, or someone else, made it)
    SENT = "sent"  # sent now, and answered
    RECOVERED = "recovered"  # sent now, the answer was lost, and the effect was found by looking again


@dataclasses.dataclass(frozen=True)
class Done(Generic[T]):
    """What a send or a look established.

    :param entity_id: the id of what the write made (Commerce order, invoice, shipment, credit memo), logged.
    :param value: what the caller needs next (e.g. the created order with its items); not logged.
    :param detail: replaces the intent's ``detail`` in the log when given (e.g. the outcome of a cancellation).
    """

    entity_id: str | int | None = None
    value: T | None = None
    detail: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class WriteResult(Generic[T]):
    """The outcome of ``write_once``: ``done`` is None only when the log had it (``Source.RECORDED``)."""

    source: Source
    done: Done[T] | None
    row: WriteRow | None = None  # the log's row, for RECORDED

    @property
    def value(self) -> T | None:
        """What the send or look gave the caller (None when the log had the outcome)."""
        return self.done.value if self.done else None

    @property
    def detail(self) -> Mapping[str, Any]:
        """What the log holds (RECORDED) or was just given (otherwise)."""
        if self.done is not None and self.done.detail is not None:
            return self.done.detail
        return (self.row or {}).get("detail") or {}

    @property
    def effected_now(self) -> bool:
        """True when this call made the effect (sent now, answered or recovered)."""
        return self.source in (Source.SENT, Source.RECOVERED)


Look = Callable[[WriteRow | None], Done[T] | None]


def write_once(
    writes: WriteLog,
    key: WriteKey,
    *,
    send: Callable[[], Done[T]],
    look: Look[T],
    look_first: bool = False,
    detail: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None = None,
    then: Callable[[WriteResult[T]], None] | None = None,
) -> WriteResult[T]:
    """Make the effect of ``send`` happen exactly once (see the module docstring).

    :param send: the non-idempotent request; returns what it made.
    :param look: finds the effect in the target system, or None. It is given the intent of the attempt
        whose outcome is unknown (an earlier one, or this one after a lost answer), None when there is none.
    :param look_first: look even when no earlier attempt is recorded (the effect may exist without us:
        made by hand, or by a run that died before recording its intent).
    :param detail: recorded with the intent before sending (a callable is called only then).
    :param then: the caller's bookkeeping of the outcome (state store calls only: it must send nothing), run in
        the same store transaction as the outcome's record (``StateStore.unit``); for ``Source.RECORDED``, in a
        transaction of its own. Not called when the write raises.
    :raises FatalError: the target system refused the write (its intent is forgotten).
    :raises RetriableError: the outcome is unknown and the effect was not found (its intent is kept).
    """
    row = writes.get(key.natural_key)
    if row is not None and row["status"] != WriteStatus.INTENT:
        return _noted(writes, WriteResult(Source.RECORDED, None, row), then)
    if row is not None or look_first:
        found = look(row)
        if found is not None:
            return _noted(writes, WriteResult(Source.FOUND, found), then, lambda: _record_done(writes, key, found))
    writes.record_intent(key.natural_key, key.kind, key.amazon_order_id, _materialise(detail))
    try:
        done = send()
    except FatalError:
        writes.forget(key.natural_key)  # refused: nothing was written, so it may be tried again
        raise
    except RetriableError as exc:
        found = look(writes.get(key.natural_key))
        if found is None:
            log.warning("%s: outcome unknown (%s) and not found; the next attempt looks before sending", key, exc)
            raise
        log.info("%s: the answer was lost (%s) but the write took effect", key, type(exc).__name__)
        return _noted(writes, WriteResult(Source.RECOVERED, found), then, lambda: _complete(writes, key, found))
    return _noted(writes, WriteResult(Source.SENT, done), then, lambda: _complete(writes, key, done))


def _noted(
    writes: WriteLog,
    result: WriteResult[T],
    then: Callable[[WriteResult[T]], None] | None,
    record: Callable[[], None] | None = None,
) -> WriteResult[T]:
    """Record the outcome (``record``) and run the caller's ``then``, in one transaction."""
    if record is None and then is None:
        return result
    with writes.unit():
        if record is not None:
            record()
        if then is not None:
            then(result)
    return result


def _materialise(detail: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None) -> dict | None:
    value = detail() if callable(detail) else detail
    return None if value is None else dict(value)


def _complete(writes: WriteLog, key: WriteKey, done: Done) -> None:
    writes.complete(key.natural_key, done.entity_id, detail=None if done.detail is None else dict(done.detail))


def _record_done(writes: WriteLog, key: WriteKey, done: Done) -> None:
    writes.record(
        key.natural_key,
        key.kind,
        key.amazon_order_id,
        done.entity_id,
        detail=None if done.detail is None else dict(done.detail),
    )
