"""The sentences a task log ends with: a run's counts as a person reads them, not a Python dict (pure, no I/O).

Each DAG's task returns its counts as a dict (XCom, the Sales Channel page); these functions turn the same dict
into one line per account, e.g. ``13 created, 4 not eligible (3 cancelled before import, 1 placed before
import_orders_after), 1 on hold``. Zero counts are left out; a count without a phrase of its own is named by its
key (``busy_elsewhere`` reads ``1 busy elsewhere``), so a new counter is never dropped. Nothing counted reads
``nothing to do``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: An order import's counters (``pipelines/order_import.py``), in the order a person wants them.
IMPORT_PHRASES: Sequence[tuple[str, str]] = (
    ("created", "created"),
    ("updated", "updated"),
    ("cancelled", "cancelled"),
    ("not_eligible", "not eligible"),
    ("on_hold", "on hold for a buyer's cancellation request"),
    ("pending", "pending payment on Amazon"),
    ("waiting_for_product", "waiting for a product"),
    ("waiting_for_exchange_rate", "waiting for an exchange rate"),
    ("quarantined", "quarantined"),
    ("failed", "failed (retried next run)"),
    ("adopted_existing", "found already in Commerce"),
    ("recovered_after_lost_answer", "recovered after a lost answer"),
    ("busy_elsewhere", "busy in another run"),
    ("redriven", "re-driven from quarantine"),
)

#: A shipment sync's counters (``pipelines/shipment_sync.py``, ``shipment_confirm.py``).
SHIPMENT_PHRASES: Sequence[tuple[str, str]] = (
    ("confirmed", "confirmed on Amazon"),
    ("mirrored", "mirrored from Amazon"),
    ("rejected", "rejected"),
    ("waiting", "waiting for their order"),
    ("mismatches", "not reflected on Amazon"),
    ("queued", "queued"),
    ("held", "held"),
    ("released", "released"),
    ("already_on_amazon", "already on Amazon"),
    ("verified", "verified on Amazon"),
    ("verifying", "still being verified"),
    ("verify_later", "to verify later"),
    ("retry_later", "to retry later"),
    ("failed", "failed"),
)

#: A refund sync step's counters (``pipelines/refund_sync.py``, ``refund_reconcile.py``), also the run's totals.
REFUND_PHRASES: Sequence[tuple[str, str]] = (
    ("sent", "adjustment{s} sent to Amazon"),
    ("feed", "feed{s} submitted"),
    ("accepted", "accepted by Amazon"),
    ("rejected", "rejected"),
    ("feeds_open", "feed{s} still processing"),
    ("mirrored", "Amazon refund{s} mirrored as credit memo{s}"),
    ("recognised_own", "recognised as Commerce's own"),
    ("queued", "credit memo{s} queued"),
    ("held", "held"),
    ("skipped", "skipped"),
    ("settled_by_amazon", "settled by Amazon"),
    ("checks_confirmed", "refund{s} confirmed three ways"),
    ("checks_mismatched", "mismatched"),
    ("checks_waiting", "waiting for Amazon's transaction"),
    ("checks_opened", "check{s} opened"),
)

#: The cancellation's outcomes (``pipelines/order_cancel.Outcome``).
CANCEL_PHRASES: Sequence[tuple[str, str]] = (
    ("cancelled", "cancelled on both sides"),
    ("already_cancelled", "already cancelled"),
    ("would_cancel", "would be cancelled (dry run)"),
    ("requested", "sent to Amazon (not confirmed yet)"),
    ("shipped", "shipped (issue a refund instead)"),
    ("not_cancellable", "not cancellable"),
    ("not_found", "not found"),
    ("other_account", "of another account"),
    ("rejected", "rejected by Amazon"),
    ("not_confirmed", "not confirmed by Amazon"),
    ("error", "failed"),
)


def _counts(counts: Mapping[str, Any]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool) and v}


def sentence(
    counts: Mapping[str, Any],
    phrases: Sequence[tuple[str, str]] = (),
    *,
    details: Mapping[str, Mapping[str, int]] | None = None,
) -> str:
    """``"13 created, 4 not eligible (3 cancelled before import, 1 placed before ...), 1 on hold"``.

    :param counts: counter -> count; entries that are not whole numbers (lists, dicts, the account) are ignored.
    :param phrases: ``(counter, phrase)`` in the order to say them; other counters follow by name. ``{s}`` in a
        phrase is the plural ``s`` (``"feed{s} submitted"``).
    :param details: counter -> {reason: count}, said in brackets after that counter, largest first.
    """
    left = _counts(counts)
    parts = []
    for key, phrase in [*phrases, *((k, k.replace("_", " ")) for k in sorted(left))]:
        n = left.pop(key, 0)
        if not n:
            continue
        why = _counts((details or {}).get(key) or {})
        reasons = sorted(why.items(), key=lambda kv: (-kv[1], kv[0]))
        parts.append(
            f"{n} {phrase.format(s='' if n == 1 else 's')}"
            + (f" ({', '.join(f'{v} {r}' for r, v in reasons)})" if reasons else "")
        )
    return ", ".join(parts) or "nothing to do"


def import_sentence(summary: Mapping[str, Any]) -> str:
    """An account's order load: ``IMPORT_PHRASES``, the not-eligible reasons in brackets."""
    return sentence(summary, IMPORT_PHRASES, details={"not_eligible": summary.get("not_eligible_reasons") or {}})


def shipment_sentence(summary: Mapping[str, Any]) -> str:
    """An account's shipment sync (``SHIPMENT_PHRASES``)."""
    return sentence(summary, SHIPMENT_PHRASES)


def refund_sentence(summary: Mapping[str, Any]) -> str:
    """A refund sync step of an account, or the run's totals (``REFUND_PHRASES``)."""
    return sentence(summary, REFUND_PHRASES)


def cancel_sentence(counts: Mapping[str, int], *, dry_run: bool = False) -> str:
    """The cancellation run: ``"2 orders: 1 cancelled on both sides, 1 shipped (issue a refund instead)"``."""
    total = sum(_counts(counts).values())
    head = f"{total} order{'s' if total != 1 else ''}" + (" (dry run)" if dry_run else "")
    return f"{head}: {sentence(counts, CANCEL_PHRASES)}"


def monitor_sentence(result: Mapping[str, Sequence[str]]) -> str:
    """The monitor's run: what fires, what was sent, what was held back by ``alert_repeat_minutes``."""
    firing, sent = len(result.get("firing") or ()), len(result.get("sent") or ())
    held = len(result.get("repeat_suppressed") or ())
    if not firing:
        return "all quiet: no alert firing"
    text = f"{firing} alert{'s' if firing != 1 else ''} firing: {sent} sent"
    return text + (f", {held} already sent within alert_repeat_minutes" if held else "")


def _figure(value: float | None) -> str:
    """A rate, rounded to 3 significant figures (``0.0167``, ``0.5``, ``20``); ``-`` when not known yet."""
    if value is None:
        return "-"
    return f"{value:.3g}"


def rate_limit_table(headroom: Mapping[str, Mapping[str, float | None]]) -> str:
    """The Amazon hook's ``rate_limit_headroom()`` as a text table, one operation a row, rates rounded.

    Columns: the rate Amazon applied last (``x-amzn-RateLimit-Limit``, requests per second; ``-`` before the first
    call of the operation), the client's own rate and its burst.
    """
    rows = [("operation", "Amazon /s", "ours /s", "burst")]
    rows += [
        (op, _figure(v.get("server_rate")), _figure(v.get("client_rate")), _figure(v.get("burst")))
        for op, v in sorted(headroom.items())
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join([row[0].ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))])
        for row in rows
    )
