"""The event-driven import (``amazon_order_events``): stage the order ids ORDER_CHANGE named, fetch, load.

1. :func:`stage_events` (fast, no SP-API call): every message of the run's asset events (the watcher's reduced
   batches, ``events.reduce_payload``) gets one outcome, and none stops the run:

   - quarantined (not JSON, not an ORDER_CHANGE 1.0): ``quarantine`` entry ``order_change_message`` with the
     reason, counted;
   - another seller (``SellerId`` is no account's ``merchant_id``) or a marketplace the account does not
     import: ignored, counted;
   - else staged in ``order_events`` (``store.order_events``): a duplicate or an older ``TimeOfOrderChange``
     never overwrites a newer staged one.

2. :func:`fetch_orders`, per account: claims the staged ids under a lease, ``getOrder`` (Orders 2026-01-01,
   0.5/s burst 30) through the same hook and shared rate limiter as the import, hands each batch to
   ``stage_page`` and marks the ids done. The task layer (``pipelines/tasks.py``, the one place that composes
   pipelines) passes the import's own page staging (``order_extract``, quarantine included) and then runs the
   import's loader (``order_import.load_orders``: same rules, same exactly-once writes).
   A 404 is counted and retried in later runs, then left to the polling sweep (``unknown``); an order Amazon
   still shows older than the notification is deferred (Amazon's replicas lag), and after :data:`MAX_DEFERRALS`
   deferrals staged as Amazon shows it and left to the sweep (``stale``). A run killed anywhere leaves
   ``new`` rows (or rows whose lease expires) that the next run takes; what was staged for the loader is also
   loaded by the polling import.

3. Adaptive volume (issue 16), in :func:`fetch_orders`: when more ids wait than getOrder can fetch before the
   next searchOrders token (:func:`getorder_capacity`, from the shared buckets' current tokens), a thread reads
   the window ``[oldest staged change - 1 s, now - 2 min]`` with searchOrders pages (up to 100 orders each,
   0.0056/s burst 20; once it fills a page) while getOrder takes the newest ids (from the moment the backlog
   exceeds it, before any id is searchable), so throughput approaches the sum of both limits. With ``more``,
   the run also stages the notifications recorded after it was queued, so a burst's ids are one run's.
   Each page goes through the same ``stage_page``; the staged ids it shows at least as new as the notification
   are marked done (``covered_by_search``), the rest stay for getOrder. The import's cursor does not move.

Outcomes are counts in the task's XCom (ids and counts only, never buyer data).
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from amazon_commerce_sync import marketplaces
from amazon_commerce_sync.errors import NotFoundError
from amazon_commerce_sync.events import reduce_payload
from amazon_commerce_sync.fetch_loads import Loads
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings, Settings
from amazon_commerce_sync.store.order_events import (
    MESSAGES_ACTION,
    MESSAGES_ENTITY,
    QUARANTINE_ENTITY,
    OrderEvent,
    OrderEvents,
)
from amazon_commerce_sync.times import parse_time

log = logging.getLogger(__name__)

LEASE_SECONDS = 300
CLAIM_BATCH = 100
#: How long an order Amazon still shows older than its notification waits before it is asked for again.
STALE_RETRY_SECONDS = 60
#: ``lastUpdatedTime`` has whole seconds and may be taken a moment before the notification's change time.
CLOCK_ALLOWANCE = timedelta(seconds=1)
#: Deferrals before an order Amazon keeps showing older than its notification is staged as shown (``stale``).
MAX_DEFERRALS = 5
#: searchOrders' ``lastUpdatedBefore`` must be at least 2 minutes before the request (Orders 2026-01-01 model).
SEARCH_MIN_AGE = timedelta(minutes=2)
#: Rows getOrder claims at a time in adaptive mode (few: the pages find the rest free, and the choice between the
#: operations is made again before each batch).
SHARED_CLAIM_BATCH = 10
#: A window reads at most this many times the pages its staged ids fill (the searchOrders bucket is the import's).
SEARCH_PAGE_SLACK = 2
MORE_EVERY, MORE_FOR = 5.0, 600.0  #: seconds between reads of later notifications; for how long a run reads them

Stage = Callable[[list[dict[str, Any]]], None]


def later_events(inlet_events: Any, asset: Any, run_type: str | None, run_after: Any) -> list[Any]:
    """The asset events of ``asset`` recorded after an asset-triggered run's ``run_after`` (up to now), which
    Airflow gives to no run of theirs: the scheduler (Airflow 3.3.2, ``SchedulerJobRunner.
    _create_dag_runs_asset_triggered``) gives a run the events up to its ``run_after`` (when its queue entry was
    made), then deletes the queue entry; an event recorded in between found the entry there, made none of its own,
    and waits for the run a later event makes (with ``max_active_runs=1``: the whole previous run). Staged now,
    and again (as a duplicate, which changes nothing) by that later run.

    :param inlet_events: the task's ``inlet_events`` (Task SDK accessors; ``asset`` must be an inlet of the task).
    :param run_type: the run's type: only ``asset_triggered`` runs have such events (a scheduled run stages none).
    :returns: asset events with ``extra`` (Task SDK ``AssetEventResult``), oldest first; ``[]`` otherwise.
    """
    if inlet_events is None or run_type != "asset_triggered" or run_after is None:
        return []
    return list(inlet_events[asset].after(run_after.isoformat()))


def messages_of(extras: Iterable[Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    """The reduced messages of asset events' ``extra`` (``{"from_trigger": True, "payload": {"message_batch"}}``).

    An extra without a batch (an asset event from elsewhere, e.g. a manual one) gives nothing.
    """
    out: list[dict[str, Any]] = []
    for extra in extras:
        payload = (extra or {}).get("payload")
        if isinstance(payload, Mapping):
            out.extend(reduce_payload(payload)["message_batch"])
    return out


def _account_for(settings: Settings, message: Mapping[str, Any]) -> tuple[AccountSettings | None, str]:
    """The import-enabled account the message is for, or ``(None, why)``: ``other_seller`` / ``other_marketplace``."""
    sellers = [a for a in settings.accounts if a.import_enabled and a.merchant_identifier == message["sellerId"]]
    if not sellers:
        return None, "other_seller"
    for account in sellers:
        if not message.get("marketplaceId") or message["marketplaceId"] in account.marketplace_ids:
            return account, ""
    return None, "other_marketplace"


def stage_events(ctx: Resources, extras: Iterable[Mapping[str, Any] | None], *, audit: bool = True) -> dict[str, Any]:
    """Stage every message of the run's asset events; returns counts ``received``, ``staged``, ``newer``,
    ``older_or_duplicate``, ``quarantined``, ``ignored_other_seller``, ``ignored_other_marketplace``. With
    ``audit``, a run with messages also records these counts in the audit trail (``MESSAGES_ACTION``; the Sales
    Channel page's notifications per hour), after staging, and quarantines the malformed ones: once per asset
    event, by the stage task of the run Airflow gives it to (a fetch staging later events early passes
    ``audit=False``: counted, neither audited nor quarantined)."""
    summary: collections.Counter[str] = collections.Counter()
    staged: list[OrderEvent] = []
    messages = messages_of(extras)
    for message in messages:
        summary["received"] += 1
        if "quarantine" in message:
            if audit:  # quarantined once, by the stage task of its run
                ctx.store.ops.quarantine(QUARANTINE_ENTITY, message["messageId"], message["quarantine"])
            summary["quarantined"] += 1
            continue
        account, why = _account_for(ctx.settings, message)
        if account is None:
            summary[f"ignored_{why}"] += 1
            continue
        staged.append(
            {
                "account_id": account.account_id,
                "amazon_order_id": message["amazonOrderId"],
                "change_time": parse_time(message["changeTime"]),
                "notification_id": message["notificationId"],
                "change_type": message["orderChangeType"],
            }
        )
    summary.update(OrderEvents(ctx.store.engine, ctx.actor).stage(staged))
    if messages and audit:
        ctx.store.ops.audit(MESSAGES_ACTION, MESSAGES_ENTITY, messages[0]["messageId"][:64], dict(summary))
    log.info("ORDER_CHANGE messages: %s", dict(summary))
    return dict(summary)


def _older(updated: datetime | None, change_time: datetime) -> bool:
    """Amazon still shows a version from before the notified change: ``lastUpdatedTime`` (whole seconds) more
    than :data:`CLOCK_ALLOWANCE` before ``TimeOfOrderChange`` (milliseconds)."""
    return updated is None or updated.replace(microsecond=0) + CLOCK_ALLOWANCE < change_time.replace(microsecond=0)


def getorder_capacity(get_tokens: float, get_rate: float, search_tokens: float, search_rate: float) -> float:
    """How many getOrder calls the buckets allow before searchOrders' next token: getOrder's tokens now plus its
    refill until then (0 s when searchOrders has a token now). Tokens as ``AmazonSpApiHook.bucket_tokens`` reads
    them (shared with the import, possibly negative), rates in tokens per second (Amazon's getOrder 0.5/s burst
    30, searchOrders 0.0056/s burst 20, ``hooks/operations.py``, scaled by the connection's ``rate_scale``)."""
    wait = 0.0 if search_tokens >= 1 else (1.0 - search_tokens) / search_rate
    return max(0.0, get_tokens + get_rate * wait)


def fetch_orders(
    ctx: Resources,
    account: AccountSettings,
    *,
    owner: str,
    included_data: Sequence[str],
    stage_page: Stage,
    adaptive: bool = True,
    load: Callable[[], Mapping[str, Any]] | None = None,
    more: Callable[[], list[Any]] | None = None,
) -> dict[str, Any]:
    """Fetch the account's staged ids, hand the orders to ``stage_page`` and mark the ids done: getOrder batch
    by batch and, with ``adaptive`` whenever more ids wait than getOrder can fetch before the next searchOrders
    token, searchOrders pages of their window beside it (module docstring, 3; decided before every batch, as ids
    pass the 2-minute line during a long run). The event path's entry point (the task layer and the benchmark).

    Returns counts ``fetched`` (by getOrder), ``searched_pages``, ``covered_by_search`` (ids a page brought),
    ``not_found``, ``unknown``, ``deferred``, ``stale_given_up`` (staged as Amazon shows it after
    :data:`MAX_DEFERRALS` deferrals), ``superseded`` (a newer notification came during the fetch: fetched again
    next run), ``search_failed`` (the pages stopped on an error; getOrder took the rest).

    :param included_data: getOrder's and searchOrders' ``includedData`` (the import's: the staged order is the same).
    :param stage_page: stages a list of Amazon orders for the import's loader (raises to stop the run); called
        from one thread at a time.
    :param load: the import's loader for the account (``order_import.load_orders``): called by a thread of
        its own (``fetch_loads.Loads``) whenever ``LOAD_EVERY`` orders were staged since its last call or the
        oldest of them waited ``LOAD_AFTER`` seconds, so a burst reaches Commerce as it is fetched instead of after
        the whole backlog, while the fetching goes on; its summaries, added up, are
        ``loaded_during_fetch``, their number ``loads_during_fetch``. The caller loads once more at the end (what
        the last batches staged). A load's error is raised after the fetch.
    :param more: asset events recorded since the run was queued, not yet read (``events.newer_events``): staged
        every :data:`MORE_EVERY` s and when the claims run dry, for :data:`MORE_FOR` s (``later_staged``).
    :raises SettingsError: (``adaptive``) the account's marketplaces are of more than one Amazon region.
    """
    events = OrderEvents(ctx.store.engine, ctx.actor)
    summary: collections.Counter[str] = collections.Counter(searched_pages=0, covered_by_search=0)
    deferred: set[str] = set()
    lock = threading.Lock()
    loads = Loads(load)

    def stage(orders: list[dict[str, Any]]) -> None:
        with lock:
            stage_page(orders)
        loads.staged(len(orders))

    searches = _Searches(ctx, account, events, included_data, stage) if adaptive else None
    try:
        _fetch(
            ctx, account, events, owner, summary, deferred, included_data, stage, searches, more and _more(ctx, more)
        )
    finally:
        try:
            if searches is not None:
                searches.close(summary)
            loads.close()
        finally:
            # A failed try leaves its ids to the next run at once; deferred ones wait STALE_RETRY_SECONDS.
            events.release(account.account_id, owner, keep=deferred)
    summary["loads_during_fetch"] = loads.count
    return {"account": account.account_id, **summary, "loaded_during_fetch": loads.totals}


def _more(ctx: Resources, read: Callable[[], list[Any]]) -> Callable[[], int]:
    """Stages what ``read`` gives (asset events); how many ids were staged or re-armed (0 once :data:`MORE_FOR`
    seconds have passed: nothing is read then). A burst's ids are then one run's, not waiting for it in Airflow's
    queue while its pages re-read ids its getOrder fetched among them."""
    until = time.monotonic() + MORE_FOR

    def more() -> int:
        if time.monotonic() >= until:
            return 0
        counts = stage_events(ctx, [e.extra for e in read()], audit=False)  # audited by the run they belong to
        return counts.get("staged", 0) + counts.get("newer", 0)

    return more


class _Searches:
    """The run's searchOrders windows: one at a time beside getOrder, each after the one before (never read twice);
    none after a window stopped on an error (one stopped by its page budget leaves the rest of its ids to getOrder,
    and the next window has a budget of its own)."""

    def __init__(self, ctx, account, events, included_data, stage) -> None:
        self.ctx, self.account, self.events, self.included_data, self.stage = ctx, account, events, included_data, stage
        # One window for all the account's marketplaces (one token a page whatever their number: a seller's limit).
        self.marketplace_ids = marketplaces.account_region(account.account_id, account.marketplace_ids)[1]
        self.done: list[_WindowSearch] = []
        self.current: _WindowSearch | None = None
        self.searched_until: datetime | None = None
        self.ahead = False

    def newest_first(self) -> bool:
        """Whether getOrder takes the newest ids next: while a window's pages run (they read from the oldest), and
        whenever more ids wait than getOrder can fetch before searchOrders' next token, before any is searchable
        too (the pages will read the oldest: a getOrder call spent on one is spent again on its page). Else the
        oldest first (fair latency). Starts a window when the backlog calls for it (:meth:`_launch`)."""
        if self.current is not None:
            if self.current.is_alive():
                return True
            self.done.append(self.current)
            self.current = None
        if any(s.error is not None for s in self.done):
            return False
        self.current = self._launch()
        return self.current is not None or self.ahead

    def _launch(self) -> _WindowSearch | None:
        """A started window when more ids wait than getOrder can fetch before searchOrders' next token and some
        changed before ``now - 2 min`` (after the previous window), enough to fill a page unless all waiting ids
        are searchable; else None (getOrder alone). Sets :attr:`ahead` (see :meth:`newest_first`)."""
        account = self.account
        end = datetime.now(UTC) - SEARCH_MIN_AGE
        backlog = self.events.backlog(account.account_id, searchable_before=end, searchable_after=self.searched_until)
        capacity = _capacity(self.ctx.amazon(account))
        self.ahead = backlog.claimable > capacity
        if not backlog.searchable or backlog.oldest_searchable is None or not self.ahead:
            return None
        if backlog.searchable < account.page_size and backlog.searchable < backlog.claimable:
            return None  # a part page now would cost the token a full one takes a moment later
        start = backlog.oldest_searchable - CLOCK_ALLOWANCE
        window = (max(start, self.searched_until) if self.searched_until else start, end)
        budget = SEARCH_PAGE_SLACK * math.ceil(backlog.searchable / account.page_size)
        log.info(
            "%s: %d staged ids, getOrder can fetch %.0f before the next searchOrders token: searchOrders pages for "
            "the %d changed in [%s, %s] (at most %d pages) beside getOrder",
            *(account.account_id, backlog.claimable, capacity, backlog.searchable, *window, budget),
        )
        self.searched_until = end
        search = _WindowSearch(self, window, budget)
        search.start()
        return search

    def close(self, summary: collections.Counter[str]) -> None:
        """Stop the running window after its page, wait for it, and add every window's counts to ``summary``."""
        if self.current is not None:
            self.current.stop.set()
            self.current.join()
            self.done.append(self.current)
        for search in self.done:
            summary.update(search.summary)
            if search.error is not None:
                summary["search_failed"] += 1
                log.warning(
                    "%s: searchOrders pages stopped (%s); getOrder fetched the rest",
                    self.account.account_id,
                    search.error,
                )


class _WindowSearch(threading.Thread):
    """searchOrders pages of one window, staged and covering staged ids, beside the getOrder loop."""

    def __init__(self, searches: _Searches, window: tuple[datetime, datetime], budget: int) -> None:
        super().__init__(name=f"order-events-search-{searches.account.account_id}", daemon=True)
        self.searches, self.account, self.events = searches, searches.account, searches.events
        self.window, self.budget = window, budget
        self.stop = threading.Event()
        self.summary: collections.Counter[str] = collections.Counter()
        self.error: BaseException | None = None
        self.exhausted = False  # stopped by its page budget with pages left

    def run(self) -> None:
        try:
            self._pages()
        except Exception as exc:  # noqa: BLE001 - the pages are a shortcut: getOrder fetches what they did not
            self.error = exc

    def _pages(self) -> None:
        account, (start, end) = self.account, self.window
        hook = self.searches.ctx.amazon(account)  # this thread's own hook (sessions are per thread), the same buckets
        pages = hook.search_orders(
            marketplace_ids=self.searches.marketplace_ids,
            last_updated_after=start,
            last_updated_before=end,
            included_data=self.searches.included_data,
            max_results_per_page=account.page_size,
        )
        while not self.stop.is_set():
            page = next(pages, None)
            if page is None:
                return
            self.searches.stage(page.orders)
            covered = self.events.cover(account.account_id, _versions(page.orders), _older)
            self.summary["searched_pages"] += 1
            self.summary["covered_by_search"] += len(covered)
            if page.next_token is None:
                return
            if self.summary["searched_pages"] >= self.budget:
                self.exhausted = True
                return
            backlog = self.events.backlog(account.account_id, searchable_before=end, searchable_after=start)
            if not backlog.searchable or backlog.claimable <= _capacity(hook):
                return  # getOrder finishes before another page would come


def _capacity(hook: Any) -> float:
    """:func:`getorder_capacity` from the hook's shared buckets now."""
    return getorder_capacity(*hook.bucket_tokens("getOrder"), *hook.bucket_tokens("searchOrders"))


def _versions(orders: list[dict[str, Any]]) -> dict[str, datetime]:
    """Order id -> ``lastUpdatedTime`` of a page's orders (an order without a readable one covers nothing)."""
    out = {}
    for order in orders:
        try:
            out[str(order["orderId"])] = parse_time(order["lastUpdatedTime"])
        except (KeyError, TypeError, ValueError):
            pass
    return out


def _fetch(
    ctx: Resources,
    account: AccountSettings,
    events: OrderEvents,
    owner: str,
    summary: collections.Counter[str],
    deferred: set[str],
    included_data: Sequence[str],
    stage_page: Stage,
    searches: _Searches | None,
    more: Callable[[], int] | None = None,
) -> None:
    """Claim, getOrder and stage the account's staged ids (see :func:`fetch_orders`). With ``searches``, few ids a
    batch (the decision is made again before each) and, while a window's pages run, newest first (the pages read
    from the oldest)."""
    hook = ctx.amazon(account)
    # Asked once per run: a 404, a deferred order or one re-armed during its fetch waits for the next run. Only
    # those stay ``new``, so only they are excluded from the claims (a short list, whatever the run's volume).
    later: set[str] = set()
    limit = CLAIM_BATCH if searches is None else SHARED_CLAIM_BATCH
    checked = time.monotonic()
    while True:
        if more is not None and MORE_EVERY <= time.monotonic() - checked:
            checked, summary["later_staged"] = time.monotonic(), summary["later_staged"] + more()
        newest = searches is not None and searches.newest_first()
        claimed = events.claim(
            account.account_id, owner, limit=limit, lease_seconds=LEASE_SECONDS, exclude=later, newest_first=newest
        )
        if not claimed:
            staged = more() if more is not None else 0
            summary["later_staged"] += staged
            if not staged:
                break
            continue
        orders, fetched_rows = [], []
        for row in claimed:
            try:
                order = hook.get_order(row["amazon_order_id"], included_data=included_data)
            except NotFoundError:
                order = {}
            if not order:
                state = events.not_found(row, owner)
                summary["unknown" if state == "unknown" else "not_found"] += 1
                later.add(row["amazon_order_id"])
                continue
            updated = parse_time(order["lastUpdatedTime"]) if order.get("lastUpdatedTime") else None
            stale = _older(updated, row["change_time"])
            if stale and row["deferrals"] < MAX_DEFERRALS:
                events.defer(row, owner, STALE_RETRY_SECONDS)
                deferred.add(row["amazon_order_id"])
                later.add(row["amazon_order_id"])
                summary["deferred"] += 1
                continue
            orders.append(order)
            fetched_rows.append((row, updated, stale))
        if orders:
            stage_page(orders)
        for row, updated, stale in fetched_rows:
            summary["fetched"] += 1
            if stale:  # staged as Amazon shows it after MAX_DEFERRALS; the notified change is the polling sweep's
                settled = events.give_up(row, owner, loaded_updated_at=updated)
                summary["stale_given_up"] += settled
            else:
                settled = events.finish(row, owner, loaded_updated_at=updated)
            if not settled:
                summary["superseded"] += 1  # a newer notification came meanwhile: fetched again next run
                later.add(row["amazon_order_id"])
