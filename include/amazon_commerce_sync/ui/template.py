"""The Sales Channel page: one server-rendered HTML document, inline CSS and SVG, no external assets.

The template is a Python string (not a file) so it ships with the package without package data.
Jinja2 (an Airflow dependency) renders it with autoescaping on.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from html import escape
from urllib.parse import quote

from jinja2 import Environment
from markupsafe import Markup

from amazon_commerce_sync.constants import DAG_CANCEL_DECISION, DAG_ORDER_EVENTS, DAG_ORDER_IMPORT
from amazon_commerce_sync.store.order_events import MAX_NOT_FOUND
from amazon_commerce_sync.ui.airflow_meta import run_link
from amazon_commerce_sync.ui.event_path import LAG_LATE_MINUTES, LAG_OK_MINUTES, WATCHER_STATES
from amazon_commerce_sync.ui.queries import STATUS_COLUMNS, PageData

# Where the page links order ids to (deployment switches; the Commerce link needs the admin URL).
SELLER_CENTRAL_URL_ENV = "SALES_CHANNEL_SELLER_CENTRAL_URL"
COMMERCE_ADMIN_URL_ENV = "SALES_CHANNEL_COMMERCE_ADMIN_URL"
DEFAULT_SELLER_CENTRAL_URL = "https://sellercentral.amazon.com"


def age(delta: timedelta | None) -> str:
    if delta is None:
        return "–"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} d {minutes % (24 * 60) // 60} h"


def ago(delta: timedelta | None) -> str:
    """Like :func:`age`, in seconds under two minutes (the event path's scale)."""
    if delta is not None and delta.total_seconds() < 120:
        return f"{max(int(delta.total_seconds()), 0)} s"
    return age(delta)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "–"


def amazon_link(order_id: str | None) -> Markup:
    if not order_id:
        return Markup("–")
    base = os.environ.get(SELLER_CENTRAL_URL_ENV, DEFAULT_SELLER_CENTRAL_URL).rstrip("/")
    href = f"{base}/orders-v3/order/{quote(order_id)}"
    return Markup('<a href="{}" target="_blank" rel="noopener">{}</a>').format(href, order_id)


def commerce_link(order_id: int | None, increment_id: str | None) -> Markup:
    if not order_id:
        return Markup("–")
    label = f"#{increment_id}" if increment_id else f"id {order_id}"
    base = os.environ.get(COMMERCE_ADMIN_URL_ENV, "").rstrip("/")
    if not base:
        return Markup("{}").format(label)
    href = f"{base}/sales/order/view/order_id/{int(order_id)}/"
    return Markup('<a href="{}" target="_blank" rel="noopener">{}</a>').format(href, label)


def _nice_top(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n that is >= value (the value axis' top)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def bar_chart(
    values: list[int],
    hours: list[datetime],
    width: int = 840,
    height: int = 90,
    label: str = "orders created per hour, last 7 days",
) -> Markup:
    """An inline SVG bar chart, one bar per hour, with a value axis (counts per hour: 0, half, top and grid
    lines), day ticks and a title per bar; ``label`` names it for screen readers."""
    top = _nice_top(max(values, default=0) or 1)
    axis = 34  # room for the value axis labels, left of the bars
    bar = (width - axis) / max(len(values), 1)
    top_y = 6
    height_bars = height - top_y
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height + 16}" width="{width}" height="{height + 16}" '
        f'role="img" aria-label="{escape(label)} (axis 0 to {top})">'
    ]
    ticks = sorted({0, top // 2, top}) if top >= 2 else [0, top]
    for tick in ticks:
        y = height - tick / top * height_bars
        parts.append(f'<line x1="{axis}" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{axis - 4}" y="{y + 3:.1f}" text-anchor="end" class="axis">{tick}</text>')
    parts.append(f'<line x1="{axis}" y1="{top_y}" x2="{axis}" y2="{height}" class="tick"/>')
    for i, (value, hour) in enumerate(zip(values, hours, strict=True)):
        x = axis + i * bar
        if hour.hour == 0:
            parts.append(f'<line x1="{x:.1f}" y1="{top_y}" x2="{x:.1f}" y2="{height}" class="tick"/>')
            parts.append(f'<text x="{x + 2:.1f}" y="{height + 12}">{hour:%a %d}</text>')
        if value:
            h = max(value / top * height_bars, 1.5)
            title = escape(f"{hour:%Y-%m-%d %H}:00 UTC: {value}")
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{max(bar - 0.6, 0.6):.1f}" height="{h:.1f}">'
                f"<title>{title}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped titles only


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>Sales Channel</title>
<style>
 body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px 24px; color: #1f2937; }
 h1 { font-size: 22px; margin: 0 0 2px; } h2 { font-size: 17px; margin: 28px 0 8px; }
 h3 { font-size: 14px; margin: 14px 0 4px; } .muted { color: #6b7280; }
 table { border-collapse: collapse; width: 100%; margin: 6px 0; }
 th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
 th { background: #f3f4f6; font-weight: 600; } td.num, th.num { text-align: right; }
 .pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; white-space: nowrap; }
 .ok { background: #dcfce7; color: #166534; }
 .warn, .pending, .submitted { background: #fef3c7; color: #92400e; }
 .late, .failed, .rejected { background: #fee2e2; color: #991b1b; } .unknown { background: #e5e7eb; color: #374151; }
 .cards { display: flex; flex-wrap: wrap; gap: 16px; }
 .card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 14px; }
 svg.chart rect { fill: #2563eb; } svg.chart .tick { stroke: #d1d5db; }
 svg.chart text { font-size: 10px; fill: #6b7280; } svg.chart .grid { stroke: #eef0f3; }
 td.why { font-size: 12px; } abbr { text-decoration: underline dotted; cursor: help; }
 code { background: #f3f4f6; padding: 1px 4px; border-radius: 4px; }
 a { color: #1d4ed8; }
</style></head>
<body>
<h1>Sales Channel</h1>
<div class="muted">Amazon Seller Central → Adobe Commerce · state at {{ when(d.now) }} · refreshes every minute</div>

<h2 id="lag">Import lag per account and Amazon region</h2>
<table>
 <tr><th>Account</th><th>Region</th><th>Marketplace</th><th>Extraction cursor</th><th>Import lag</th>
 <th class="num">Orders staged</th>{% for s in statuses %}<th class="num">{{ labels.get(s, s) }}</th>{% endfor %}</tr>
 {% for c in d.channels %}
 <tr><td>{{ c.account_id }}</td><td>{{ c.region }}</td><td>{{ c.marketplace_id or "(no orders yet)" }}</td>
 <td>{{ when(c.cursor) }}</td>
 <td><span class="pill {{ c.lag_level }}">{{ age(c.lag) }}</span></td>
 <td class="num staged">{{ c.total }}</td>
 {% for s in statuses %}{% if s == "not_eligible" and c.not_eligible_reasons %}<td class="num {{ s }}">
 <abbr title="{{ reasons_text(c.not_eligible_reasons) }}">{{ c.statuses.get(s, 0) }}</abbr></td>{% else %}
 <td class="num {{ s }}">{{ c.statuses.get(s, 0) }}</td>{% endif %}{% endfor %}</tr>
 {% else %}<tr><td colspan="{{ statuses|length + 6 }}" class="muted">No orders imported yet.</td></tr>{% endfor %}
</table>
<div class="muted">Orders staged = the sum of the status columns. <em>not eligible</em>: staged but left out of
 the import, e.g. cancelled before import, placed before <code>import_orders_after</code>, Amazon-fulfilled and not
 shipped yet (imported once shipped).</div>
{% if d.channels|selectattr("not_eligible_reasons")|list %}
<table id="not-eligible" class="why"><tr><th>Account</th><th>Marketplace</th><th>Not eligible because</th>
 <th class="num">Orders</th></tr>
 {% for c in d.channels %}{% for reason, n in c.not_eligible_reasons|dictsort(by="value", reverse=true) %}
 <tr><td>{{ c.account_id }}</td><td>{{ c.marketplace_id }}</td><td class="why">{{ reason }}</td>
 <td class="num">{{ n }}</td></tr>
 {% endfor %}{% endfor %}
</table>
{% endif %}
<div class="muted" id="lag-legend">Lag = now − extraction cursor: one cursor per account and region, one
 <code>searchOrders</code> window for all its marketplaces there.
 <span class="pill ok">ok</span> up to {{ ok_minutes }} min{% if schedule.interval_minutes %} (three runs of
 the import, which {{ schedule_text(schedule) }}){% else %} (the import {{ schedule_text(schedule) }}){% endif %},
 <span class="pill warn">behind</span> up to the account's alert threshold
 (<code>alert_import_lag_minutes</code>), <span class="pill late">late</span> beyond.</div>

{% if d.order_events %}{% set e = d.order_events %}{% set w = watcher_state(e.watcher) %}
<h2 id="order-events">Order events (ORDER_CHANGE)</h2>
<div>Watcher{% for name in e.watcher.watchers %} <code>{{ name }}</code>{% endfor %}:
 <span class="pill {{ w[0] }}" id="watcher-state">{{ w[1] }}</span> <span class="muted">{{ w[2] }}{% if
 e.watcher.heartbeat %} (triggerer heartbeat {{ ago(d.now - e.watcher.heartbeat) }} ago){% endif %}.{% if
 e.watcher.last_event %} Last batch from the queue {{ ago(d.now - e.watcher.last_event) }} ago,
 {{ e.watcher.events_last_hour }} in the last hour.{% endif %}</span></div>
<table id="order-events-summary"><tr><th>Last notification</th><th class="num">Last hour</th>
 <th class="num">Last 24 h</th><th class="num">Waiting</th><th>Lag</th><th class="num">Unknown to Amazon</th>
 <th class="num">Quarantined</th><th class="num">Ignored (24 h)</th></tr>
 <tr><td>{% if e.last_received %}{{ when(e.last_received) }} ({{ ago(d.now - e.last_received) }} ago){% else %}none
 yet{% endif %}</td><td class="num">{{ e.last_hour.received }}</td><td class="num">{{ e.day.received }}</td>
 <td class="num">{{ e.waiting }}</td><td><span class="pill {{ e.lag_level }}">{% if e.waiting %}{{ ago(e.lag) }}{%
 else %}none waiting{% endif %}</span></td><td class="num">{{ e.unknown }}</td><td class="num">{{ e.quarantined }}</td>
 <td class="num">{{ e.day.ignored_other_seller + e.day.ignored_other_marketplace }}</td></tr>
</table>
{% if e.day.received %}<div class="muted" id="order-events-outcomes">Last 24 h: {{ e.day.received }} received,
 {{ e.day.staged }} staged, {{ e.day.newer }} newer change of a staged order, {{ e.day.older_or_duplicate }} duplicate
 or older, {{ e.day.quarantined }} quarantined, {{ e.day.ignored_other_seller }} for another seller,
 {{ e.day.ignored_other_marketplace }} for a marketplace not imported.</div>
<div class="card"><h3>ORDER_CHANGE notifications received per hour, last 24 hours</h3>
 {{ chart(e.received_per_hour, e.hours, label="ORDER_CHANGE notifications received per hour, last 24 hours") }}
</div>
{% endif %}
{% if e.accounts %}
<table id="order-events-accounts"><tr><th>Account</th><th class="num">Waiting</th><th class="num">Being fetched</th>
 <th>Oldest waiting change</th><th>Lag</th><th class="num">Unknown to Amazon</th></tr>
 {% for a in e.accounts %}
 <tr><td>{{ a.account_id }}</td><td class="num">{{ a.waiting }}</td><td class="num">{{ a.in_flight }}</td>
 <td>{{ when(a.oldest_waiting) }}</td><td><span class="pill {{ a.lag_level }}">{% if a.waiting %}{{ ago(a.lag) }}{%
 else %}none waiting{% endif %}</span></td><td class="num">{{ a.unknown }}</td></tr>
 {% endfor %}
</table>
<div class="muted"><a href="csv/order_events" class="csv">all {{ e.waiting + e.unknown }} waiting or unknown as
 CSV</a></div>
{% endif %}
{% if e.quarantined %}
<table id="order-events-quarantine"><tr><th>Message quarantined because</th><th class="num">Messages</th></tr>
 {% for reason, n in e.quarantine_reasons|dictsort(by="value", reverse=true) %}
 <tr><td>{{ safe(reason) }}</td><td class="num">{{ n }}</td></tr>{% endfor %}
</table>
<div class="muted"><a href="csv/order_change_messages" class="csv">all {{ e.quarantined }} as CSV</a>
 (SQS message ids; also in <a href="#quarantined">Quarantined</a>).</div>
{% endif %}
<div class="muted" id="order-events-legend">{% if not e.used %}No ORDER_CHANGE notification received yet. {% endif
 %}Amazon publishes ORDER_CHANGE seconds after an order changes; <code>{{ events_dag }}</code> stages the order
 ids, then fetches each with <code>getOrder</code> and loads it as the import does. Lag = now − the oldest change
 still waiting to be fetched: <span class="pill ok">ok</span> up to {{ event_lag[0] }} min,
 <span class="pill warn">behind</span> up to {{ event_lag[1] }} min (the DAG's own schedule picks up what a run
 left), <span class="pill late">late</span> beyond. <em>Unknown to Amazon</em>: <code>getOrder</code> answered 404
 {{ max_not_found }} times; the polling import (<code>{{ import_dag }}</code>) has those orders.</div>
{% endif %}

{% if d.dag_runs %}
<h2 id="dags">DAG runs</h2>
<table><tr><th>DAG</th><th>Last run (started)</th><th>State</th><th>Last success (started)</th></tr>
 {% for r in d.dag_runs %}
 <tr><td><a href="{{ run_link(r.dag_id, r.last_run_id) }}" target="_top">{{ r.dag_id }}</a></td>
 <td>{{ when(r.last_start) }}{% if r.last_start %} ({{ age(d.now - r.last_start) }} ago){% endif %}</td>
 <td><span class="pill {{ dag_level(r) }}">{{ r.last_state or "never run" }}</span></td>
 <td>{{ when(r.last_success) }}{% if r.last_success %} ({{ age(d.now - r.last_success) }} ago){% endif %}</td></tr>
 {% endfor %}
</table>
<div class="muted">Both times are when the run started; the DAG's name links to its latest run.</div>
{% endif %}

<h2 id="chart">Orders created in Commerce per hour, last 7 days</h2>
<div class="cards">
{% for c in d.channels %}
 <div class="card"><h3>{{ c.account_id }} · {{ c.marketplace_id }}
 <span class="muted">— {{ c.created_per_hour|sum }} in 7 days</span></h3>{{ chart(c.created_per_hour, d.hours) }}</div>
{% endfor %}
</div>

<h2 id="today">Today (UTC) by outcome</h2>
<table><tr><th>Account</th><th>Marketplace</th><th class="num">created</th>
 {% for s in statuses %}<th class="num">{{ labels.get(s, s) }}</th>{% endfor %}</tr>
 {% for c in d.channels %}
 <tr><td>{{ c.account_id }}</td><td>{{ c.marketplace_id }}</td><td class="num">{{ c.today.get("created", 0) }}</td>
 {% for s in statuses %}<td class="num">{{ c.today.get(s, 0) }}</td>{% endfor %}</tr>
 {% endfor %}
</table>
<div class="muted"><em>created</em>: Commerce orders created today (audit trail); the other columns: orders
 processed or changed today, by where they stand now.</div>

<h2 id="ship-by">Orders at risk of shipping late ({{ d.ship_by_risk.total }})</h2>
<div class="muted">Unshipped merchant-fulfilled orders due within {{ d.ship_by_hours }} h of Amazon's ship-by date
 (<code>alert_ship_by_hours</code>) or past it, not shipped in Commerce; soonest first. Amazon counts a shipment
 confirmed after that date as late.</div>
{{ listing_note(d.ship_by_risk, "soonest") }}
<table><tr><th>Amazon order</th><th>Account</th><th>Marketplace</th><th>Commerce order</th><th>Ship by</th>
 <th>Time left</th><th>Alerted</th></tr>
 {% for r in d.ship_by_risk.rows %}
 <tr><td>{{ amazon_link(r.amazon_order_id) }}</td><td>{{ r.account_id }}</td><td>{{ r.marketplace_id }}</td>
 <td>{{ commerce_link(r.commerce_order_id, r.commerce_increment_id) }}</td><td>{{ when(r.ship_by) }}</td>
 <td>{% if r.left.total_seconds() < 0 %}<span class="pill late">{{ age(-r.left) }} late</span>{% else %}
 <span class="pill {{ 'late' if r.left.total_seconds() < 3 * 3600 else 'warn' }}">{{ age(r.left) }}</span>
 {% endif %}</td>
 <td>{{ when(r.ship_by_alerted_at) }}</td></tr>
 {% else %}<tr><td colspan="7" class="muted">None.</td></tr>{% endfor %}
</table>

<h2 id="on-hold">On hold for the buyer's cancellation request ({{ d.on_hold.total }})</h2>
<div class="muted">Each request is a decision in Airflow (<code>{{ decision_dag }}</code>): cancel on both sides
 or keep the order and release the hold.</div>
{{ listing_note(d.on_hold) }}
<table><tr><th>Amazon order</th><th>Account</th><th>Marketplace</th><th>Commerce order</th><th>Amazon changed</th>
 <th>Ship by</th><th>Decision</th></tr>
 {% for r in d.on_hold.rows %}
 <tr><td>{{ amazon_link(r.amazon_order_id) }}</td><td>{{ r.account_id }}</td><td>{{ r.marketplace_id }}</td>
 <td>{{ commerce_link(r.commerce_order_id, r.commerce_increment_id) }}</td><td>{{ age(r.age) }} ago</td>
 <td>{{ when(r.ship_by) }}</td>
 <td><a href="{{ run_link(decision_dag, r.decision_run_id) }}" target="_top">decide</a></td></tr>
 {% else %}<tr><td colspan="7" class="muted">None.</td></tr>{% endfor %}
</table>

<h2 id="waiting">Waiting for a product ({{ d.waiting_product.total }})</h2>
{{ listing_note(d.waiting_product) }}
<table><tr><th>Amazon order</th><th>Account</th><th>Marketplace</th><th>Reason</th><th>Waiting</th>
 <th class="num">Attempts</th></tr>
 {% for r in d.waiting_product.rows %}
 <tr><td>{{ amazon_link(r.amazon_order_id) }}</td><td>{{ r.account_id }}</td><td>{{ r.marketplace_id }}</td>
 <td>{{ safe(r.sync_reason) }}</td><td>{{ age(r.age) }}</td><td class="num">{{ r.attempts }}</td></tr>
 {% else %}<tr><td colspan="6" class="muted">None.</td></tr>{% endfor %}
</table>

<h2 id="quarantined">Quarantined ({{ d.quarantined.total }})</h2>
{{ listing_note(d.quarantined) }}
<table><tr><th>Entity</th><th>Account</th><th>Commerce order</th><th>Reason</th><th>Age</th>
 <th class="num">Seen</th></tr>
 {% for r in d.quarantined.rows %}
 <tr><td>{% if r.entity_type == "amazon_order" %}{{ amazon_link(r.entity_id) }}{% else %}{{ r.entity_type }}
 {{ r.entity_id }}{% endif %}</td><td>{{ r.account_id or "–" }}</td>
 <td>{{ commerce_link(r.commerce_order_id, r.commerce_increment_id) }}</td><td>{{ safe(r.reason) }}</td>
 <td>{{ age(r.age) }}</td><td class="num">{{ r.occurrences }}</td></tr>
 {% else %}<tr><td colspan="6" class="muted">None.</td></tr>{% endfor %}
</table>
<div class="muted">Re-drive after a fix: trigger
 <a href="{{ run_link(import_dag, None) }}" target="_top">{{ import_dag }}</a>
 with <code>{"redrive_quarantined": ["all"]}</code> or a list of Amazon order ids.</div>

<h2 id="outbox">Pushes to Amazon not yet accepted ({{ d.outbox.total }})</h2>
<div>{% for (kind, status), n in d.outbox_counts|dictsort %}<span class="pill {{ status }}">{{ kind }}
 {{ status }}: {{ n }}</span> {% else %}<span class="muted">Nothing pending.</span>{% endfor %}</div>
{{ listing_note(d.outbox) }}
<table><tr><th>Kind</th><th>Status</th><th>Amazon order</th><th>Account</th><th>Age</th><th class="num">Attempts</th>
 <th>Feed</th><th>Amazon's message</th></tr>
 {% for r in d.outbox.rows %}
 <tr><td>{{ r.kind }}</td><td><span class="pill {{ r.status }}">{{ r.status }}</span></td>
 <td>{{ amazon_link(r.amazon_order_id) }}</td><td>{{ r.account_id }}</td><td>{{ age(r.age) }}</td>
 <td class="num">{{ r.attempts }}</td><td>{{ r.feed_id or "–" }}</td><td>{{ safe(r.amazon_message) }}</td></tr>
 {% else %}<tr><td colspan="8" class="muted">None.</td></tr>{% endfor %}
</table>

<h2 id="mismatches">Open mismatches between Amazon and Commerce ({{ d.mismatches.total }})</h2>
{{ listing_note(d.mismatches) }}
<table><tr><th>Kind</th><th>Amazon order</th><th>Detail</th><th>Open for</th><th>Last seen</th></tr>
 {% for r in d.mismatches.rows %}
 <tr><td>{{ r.kind }}</td><td>{{ amazon_link(r.amazon_order_id) }}</td><td>{{ safe(r.detail) }}</td>
 <td>{{ age(r.age) }}</td><td>{{ when(r.last_seen_at) }}</td></tr>
 {% else %}<tr><td colspan="5" class="muted">None.</td></tr>{% endfor %}
</table>

<h2 id="refund-checks">Refunds checked three ways (credit memo, accepted adjustment, Amazon's transaction)</h2>
<table><tr><th>Day (UTC)</th><th>Account</th><th>Currency</th><th class="num">Sent</th><th class="num">Mirrored</th>
 <th class="num">Confirmed</th><th class="num">Mismatched</th></tr>
 {% for r in d.refund_checks %}
 <tr><td>{{ r.day }}</td><td>{{ r.account_id }}</td><td>{{ r.currency }}</td><td class="num">{{ r.sent }}</td>
 <td class="num">{{ r.mirrored }}</td><td class="num">{{ r.confirmed }}</td>
 <td class="num">{% if r.mismatched %}<a href="#mismatches">{{ r.mismatched }}</a>{% else %}0{% endif %}</td></tr>
 {% else %}<tr><td colspan="7" class="muted">No refunds in the last 7 days.</td></tr>{% endfor %}
</table>
</body></html>
"""

STATUSES = tuple(str(s) for s in STATUS_COLUMNS)
STATUS_LABELS = {
    "not_eligible": "not eligible",
    "waiting_product": "waiting product",
    "pending_payment": "pending payment",
    "on_hold": "on hold",
    "canceled": "cancelled",
}


def _listing_note(listing, order: str = "oldest") -> Markup:
    """ "The oldest 50 of 73" and a link to the whole list as CSV (``csv/<name>``, relative to the page)."""
    if not listing.total:
        return Markup("")
    export = Markup('<a href="csv/{}" class="csv">all {} as CSV</a>').format(listing.name, listing.total)
    if listing.total > len(listing.rows):
        return Markup('<div class="muted">The {} {} of {} · {}.</div>').format(
            order, len(listing.rows), listing.total, export
        )
    return Markup('<div class="muted">{}</div>').format(export)


def _reasons_text(reasons: dict[str, int]) -> str:
    return "; ".join(f"{n} {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def _schedule_text(schedule: dict) -> str:
    """The import's schedule in words, as Airflow has it (its timetable's description and expression)."""
    summary, description = schedule.get("summary"), schedule.get("description")
    if not summary or summary.lower() == "none":
        return "is not scheduled (triggered only)"
    source = {"environment": ", from SALES_CHANNEL_IMPORT_SCHEDULE", "default": ", the DAG's default"}.get(
        schedule.get("source"), ""
    )
    if description and description != summary:
        return f"runs {description[0].lower()}{description[1:]} ({summary}{source})"
    return f"runs on the schedule {summary}{source}"


def _dag_level(run: dict) -> str:
    state = run.get("last_state")
    if state == "failed":
        return "failed"
    if state == "success":
        return "ok"
    return "unknown" if state is None else "warn"


def _safe(value) -> str:
    from amazon_commerce_sync.alerts import safe_text

    return safe_text(value) if value else "–"


_env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)  # noqa: S701 - autoescape is on
_template = _env.from_string(PAGE)


def render_page(data: PageData, ok_minutes: int | None = None) -> str:
    """The page's HTML; ``ok_minutes`` defaults to the one ``page_data`` derived from the import's schedule."""
    schedule = data.import_schedule or {}
    return _template.render(
        d=data,
        statuses=STATUSES,
        labels=STATUS_LABELS,
        ok_minutes=ok_minutes if ok_minutes is not None else schedule.get("ok_minutes", 15),
        schedule=schedule,
        schedule_text=_schedule_text,
        reasons_text=_reasons_text,
        run_link=run_link,
        decision_dag=DAG_CANCEL_DECISION,
        import_dag=DAG_ORDER_IMPORT,
        events_dag=DAG_ORDER_EVENTS,
        max_not_found=MAX_NOT_FOUND,
        event_lag=(LAG_OK_MINUTES, LAG_LATE_MINUTES),
        watcher_state=lambda w: WATCHER_STATES.get(w.get("state", "unknown"), WATCHER_STATES["unknown"]),
        age=age,
        ago=ago,
        when=when,
        chart=bar_chart,
        amazon_link=amazon_link,
        commerce_link=commerce_link,
        listing_note=_listing_note,
        dag_level=_dag_level,
        safe=_safe,
    )
