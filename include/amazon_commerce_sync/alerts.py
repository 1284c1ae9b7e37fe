"""Alerts: task failures and the integration's health, through Airflow notifiers.

Two sources of alerts:

* **Task failures.** Every Sales Channel task has ``dag_defaults.notify_failure`` as its
  ``on_failure_callback``; it builds :func:`failure_alert`. The message names the DAG, task, run and
  account, what failed (the exception's message and the notes the task added, secrets masked and
  e-mail addresses removed) and what to do, saying whether the failure was retried first.
* **The monitor** (DAG ``sales_channel_monitor``, every 10 minutes, module ``monitor``) alerts even when no
  task failed: import lag, orders waiting or quarantined too long, orders near their ship-by deadline.

Where alerts go is a deployment switch, the environment variable ``SALES_CHANNEL_NOTIFIER``
(a class path), default :class:`LoggingNotifier` (one ERROR line in the task log):

* ``amazon_commerce_sync.alerts.SmtpNotifier``: e-mail through the SMTP provider's notifier and hook,
  with the Airflow connection ``sales_channel_smtp`` (see :class:`SmtpNotifier`).
* Any other ``airflow.sdk.BaseNotifier`` (the SMTP, Slack, Teams... providers' notifiers),
  built with the keyword arguments in ``SALES_CHANNEL_NOTIFIER_KWARGS`` (JSON). The alert is in
  the template context as ``sales_channel_alert`` (``subject``, ``text``, ``account_id``...), e.g.
  ``{"slack_webhook_conn_id": "slack", "text": "{{ sales_channel_alert.text }}"}``.

If the configured notifier fails, the alert is still written to the log by the logging notifier.
No alert carries buyer personal data or credentials.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import importlib
import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from airflow.providers.smtp.hooks.smtp import SmtpHook as ProviderSmtpHook
from airflow.providers.smtp.notifications.smtp import SmtpNotifier as ProviderSmtpNotifier
from airflow.sdk import BaseNotifier

from amazon_commerce_sync.constants import SMTP_CONN_ID

log = logging.getLogger(__name__)

NOTIFIER_ENV = "SALES_CHANNEL_NOTIFIER"
NOTIFIER_KWARGS_ENV = "SALES_CHANNEL_NOTIFIER_KWARGS"
ALERT_SENT = "alert_sent"
MAX_MESSAGE = 600
MAX_LISTED = 10

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert: what happened, to which account, and what to do about it."""

    kind: str  # task_failed, import_lag, orders_waiting, orders_quarantined, ship_by
    key: str  # identifies the condition, for repeat suppression
    account_id: str
    subject: str
    what: str
    action: str

    @property
    def text(self) -> str:
        return (
            f"[Sales Channel] {self.subject}\n"
            f"Account: {self.account_id}\n"
            f"What happened: {self.what}\n"
            f"What to do: {self.action}\n"
        )

    @property
    def line(self) -> str:
        return (
            f"SALES CHANNEL ALERT [{self.kind}] account={self.account_id}: {self.subject} | "
            f"what happened: {self.what} | what to do: {self.action}"
        )

    def as_dict(self) -> dict[str, str]:
        return {**dataclasses.asdict(self), "text": self.text}


def safe_text(value: Any, limit: int = MAX_MESSAGE) -> str:
    """A message fit for an alert: one line, secrets masked, e-mail addresses removed, bounded."""
    text = str(value)
    try:  # the same masker that keeps connection passwords out of task logs
        from airflow.sdk._shared.secrets_masker import redact

        text = str(redact(text))
    except Exception:  # noqa: BLE001 - masking is a safety net; never lose the alert over it
        log.debug("secrets masker unavailable; sending the alert unmasked by it")
    text = _EMAIL.sub("<email>", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- task failures ---------------------------------------------------------------------------------
DAG_HINTS = {
    "amazon_order_import": "Orders stay staged and the cursor does not move past what was not staged: "
    "the next successful run catches up by itself.",
    "amazon_shipment_sync": "Shipment confirmations stay in the outbox and are sent on the next successful run.",
    "amazon_refund_sync": "Refund adjustments stay in the outbox and are sent on the next successful run.",
    "amazon_order_cancel": "Check the run's summary for each order's outcome before triggering it again.",
    "amazon_pii_retention": "Nothing is half-erased (each order is erased in one transaction); "
    "the next run erases what is left.",
    "sales_channel_monitor": "Health alerts are not being checked until this is fixed.",
}


def _account_of(context: Mapping[str, Any]) -> str:
    # A mapped task's account is in the unmapped operator's kwargs (``ti.task`` once it ran).
    tasks = (getattr(context.get("ti"), "task", None), context.get("task"))
    candidates = [getattr(t, "op_kwargs", None) or {} for t in tasks] + [context.get("params") or {}]
    for kwargs in candidates:
        value = kwargs.get("account_id") if isinstance(kwargs, Mapping) else None
        if value:
            return str(value)
    return "all accounts"


def _fails_without_retry(context: Mapping[str, Any], exc: BaseException) -> bool:
    """True when Airflow failed the task on this try: ``AirflowFailException``, or the task's retry policy
    (``dag_defaults.RETRY_POLICY``: a ``FatalError`` or ``SettingsError``) says FAIL."""
    from airflow.sdk import RetryAction
    from airflow.sdk.exceptions import AirflowFailException

    from amazon_commerce_sync.dag_defaults import RETRY_POLICY

    if isinstance(exc, AirflowFailException):
        return True
    task = getattr(context.get("ti"), "task", None) or context.get("task")
    policy = getattr(task, "retry_policy", None) or RETRY_POLICY
    return policy.evaluate(exc, try_number=0, max_tries=0).action is RetryAction.FAIL


def _described(exc: BaseException) -> str:
    """The exception's message and its notes (PEP 678: the step, account and fix the task added)."""
    return " ".join([str(exc), *getattr(exc, "__notes__", ())])


def failure_alert(context: Mapping[str, Any]) -> Alert:
    """The alert for a failed task instance (the context of ``on_failure_callback``).

    :param context: the task context Airflow passes to ``on_failure_callback`` (``ti``, ``task``,
        ``params``, ``exception``...); missing keys are tolerated.
    :returns: an :class:`Alert` of kind ``task_failed``, keyed by DAG and task, whose ``what`` is the
        exception's type, message and notes (secrets masked, e-mail addresses removed, bounded).
    """
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    run_id = getattr(ti, "run_id", None) or context.get("run_id", "?")
    tries = getattr(ti, "try_number", None)
    where = f"{dag_id}.{task_id}" + (f"[{map_index}]" if map_index is not None and map_index >= 0 else "")
    exc = context.get("exception")
    kind = type(exc).__name__ if isinstance(exc, BaseException) else "error"
    message = safe_text(_described(exc)) if exc is not None else "no exception recorded (see the task log)"
    account = _account_of(context)
    if isinstance(exc, BaseException) and _fails_without_retry(context, exc):
        action = (
            "This failure is not retried: fix what the message names (the settings, a connection or the "
            "run's parameters), then clear the task."
        )
    elif kind == "AirflowTaskTimeout":
        action = (
            "The task ran past its execution_timeout: check Amazon's and Commerce's response times "
            "(run sales_channel_healthcheck), then clear the task."
        )
    else:
        action = (
            f"The task failed after {tries or 1} attempt(s): read the task log, run sales_channel_healthcheck "
            "to test the connections, then clear the task (every step is idempotent: a rerun duplicates nothing)."
        )
    hint = DAG_HINTS.get(str(dag_id))
    if hint:
        action = f"{action} {hint}"
    log_url = getattr(ti, "log_url", None) if ti is not None else None
    if log_url:
        action = f"{action} Log: {log_url}"
    return Alert(
        kind="task_failed",
        key=f"task_failed:{dag_id}:{task_id}",
        account_id=account,
        subject=f"{where} failed (run {run_id})",
        what=f"{kind}: {message}",
        action=action,
    )


# -- notifiers -------------------------------------------------------------------------------------
class SalesChannelNotifier(BaseNotifier):
    """A notifier that delivers :class:`Alert` objects (from ``context['sales_channel_alert']``)."""

    def notify(self, context) -> None:
        raw = context.get("sales_channel_alert")
        alert = Alert(**{k: raw[k] for k in ALERT_FIELDS}) if raw else failure_alert(context)
        self.deliver(alert)

    def deliver(self, alert: Alert) -> None:
        raise NotImplementedError


ALERT_FIELDS = tuple(f.name for f in dataclasses.fields(Alert))


class LoggingNotifier(SalesChannelNotifier):
    """The default: one ERROR line in the task log (where log-based alerting can pick it up)."""

    def deliver(self, alert: Alert) -> None:
        log.error("%s", alert.line)


class _SmtpHook(ProviderSmtpHook):
    """The SMTP provider's hook, also reading the connection extras of this integration's earlier notifier.

    The provider's keys are ``from_email``, ``disable_tls`` and ``disable_ssl`` (TLS and SSL on unless
    disabled). A ``sales_channel_smtp`` connection made for the earlier notifier has ``from``, ``starttls``
    and ``ssl`` (both off unless set); when the connection has none of the provider's three keys, those
    earlier keys and defaults apply, so existing connections keep working unchanged.
    """

    PROVIDER_KEYS = frozenset({"from_email", "disable_tls", "disable_ssl"})

    def __init__(self, smtp_conn_id: str, auth_type: str = "basic", timeout: float | None = None) -> None:
        super().__init__(smtp_conn_id=smtp_conn_id, auth_type=auth_type)
        self._timeout = timeout

    @property
    def _earlier_extras(self) -> bool:
        return not (self.PROVIDER_KEYS & self.conn.extra_dejson.keys())

    @property
    def from_email(self) -> str | None:
        extra = self.conn.extra_dejson
        return extra.get("from_email") or extra.get("from") or self.conn.login or None

    @property
    def smtp_starttls(self) -> bool:
        return bool(self.conn.extra_dejson.get("starttls")) if self._earlier_extras else super().smtp_starttls

    @property
    def use_ssl(self) -> bool:
        return bool(self.conn.extra_dejson.get("ssl")) if self._earlier_extras else super().use_ssl

    @property
    def timeout(self) -> int:
        return int(self._timeout) if self._timeout is not None else super().timeout


class SmtpNotifier(SalesChannelNotifier, ProviderSmtpNotifier):
    """E-mail through the SMTP provider's notifier and hook (``apache-airflow-providers-smtp``).

    Server, credentials and TLS come from the connection ``sales_channel_smtp`` as for any SMTP provider
    connection (host, port, login, password; extra ``from_email``, ``disable_tls``, ``disable_ssl``,
    ``timeout``, ``retry_limit``), plus extra ``to``: the recipients (a list, or a comma-separated
    string). Earlier extras (``from``, ``starttls``, ``ssl``) still work, see :class:`_SmtpHook`. The
    e-mail's subject is ``[Sales Channel] <alert subject>``, its body the alert's text (HTML-escaped,
    pre-formatted); the alert carries no personal data.

    :param to: recipients, instead of the connection's extra ``to``.
    :param from_email: the sender, instead of the connection's ``from_email`` (or ``from``, or login).
    :param smtp_conn_id: the connection (``conn_id`` is accepted as its earlier name).
    :param timeout: seconds, instead of the connection's extra ``timeout`` (default 30).
    :raises ValueError: (when sending) the connection has no host or no recipients.

    Other keyword arguments are the provider notifier's (``cc``, ``bcc``, ``custom_headers``, ``auth_type``).
    """

    def __init__(
        self,
        to: str | list[str] | None = None,
        *,
        smtp_conn_id: str | None = None,
        conn_id: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(to=to or [], smtp_conn_id=smtp_conn_id or conn_id or SMTP_CONN_ID, **kwargs)
        self.timeout = timeout

    @functools.cached_property
    def hook(self) -> _SmtpHook:
        return _SmtpHook(self.smtp_conn_id, auth_type=self.auth_type, timeout=self.timeout)

    def deliver(self, alert: Alert) -> None:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self.smtp_conn_id)
        recipients = self.to or conn.extra_dejson.get("to") or []
        if isinstance(recipients, str):
            recipients = [r.strip() for r in re.split(r"[,;]", recipients) if r.strip()]
        if not conn.host or not recipients:
            raise ValueError(f"connection {self.smtp_conn_id!r}: set host and extra.to (the recipients)")
        with self.hook as smtp:
            smtp.send_email_smtp(
                to=recipients,
                from_email=self.from_email or smtp.from_email or "sales-channel@localhost",
                subject=f"[Sales Channel] {alert.subject}",
                html_content=f"<pre>{html.escape(alert.text)}</pre>",
                cc=self.cc,
                bcc=self.bcc,
                mime_charset=self.mime_charset,
                custom_headers=self.custom_headers,
            )
        log.info("alert %s e-mailed to %d recipient(s)", alert.key, len(recipients))


def configured_notifier() -> BaseNotifier:
    """The notifier named by ``SALES_CHANNEL_NOTIFIER`` (default: :class:`LoggingNotifier`)."""
    path = os.environ.get(NOTIFIER_ENV, "").strip()
    if not path:
        return LoggingNotifier()
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{NOTIFIER_ENV}: {path!r} is not a class path such as 'package.module.Class'")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, BaseNotifier)):
        raise ValueError(f"{NOTIFIER_ENV}: {path!r} is not an airflow.sdk.BaseNotifier")
    kwargs = json.loads(os.environ.get(NOTIFIER_KWARGS_ENV) or "{}")
    if not isinstance(kwargs, dict):
        raise ValueError(f"{NOTIFIER_KWARGS_ENV}: must be a JSON object")
    return cls(**kwargs)


def send_alert(alert: Alert, context: Mapping[str, Any] | None = None) -> None:
    """Deliver an alert through the configured notifier; fall back to the log if that fails."""
    try:
        notifier = configured_notifier()
        if isinstance(notifier, SalesChannelNotifier):
            notifier.deliver(alert)
        else:
            notifier({**(context or {}), "sales_channel_alert": alert.as_dict()})
    except Exception as exc:  # noqa: BLE001 - an alert must not be lost because its channel failed
        log.warning("the configured notifier failed (%s): %s", type(exc).__name__, safe_text(exc, 300))
        LoggingNotifier().deliver(alert)
