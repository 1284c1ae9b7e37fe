"""What every Sales Channel DAG shares: owner, retry policy, failure alert, timeouts, schedule switches.

DAG files import this module at parse time, so it imports only ``airflow.sdk``, the standard library and
:mod:`amazon_commerce_sync.constants`; the alert code is imported when a task fails. The retry policy
names its exceptions by dotted path: Airflow imports them when the rule is built (``RetryRule``), which
loads :mod:`amazon_commerce_sync.errors` and :mod:`amazon_commerce_sync.settings`, both light by design.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseNotifier, ExceptionRetryPolicy, Param, RetryAction, RetryRule

from amazon_commerce_sync.constants import ACCOUNT_ID_EXPECTED, ACCOUNT_ID_PATTERN, ORDER_CHANGE_QUEUE_ENV, OWNER

#: "Fatal means fail now" (Airflow 3.3 ``ExceptionRetryPolicy``; rules are checked in order, the first match
#: decides). A ``FatalError`` (Amazon or Commerce refused the request: HTTP 400/401/403/404/409, a Login with
#: Amazon refusal, a connection missing its credentials), a ``SettingsError`` and a ``StateStoreConfigError``
#: (``sales_channel_db`` defined but unusable) fail the task on the try
#: they happen, whatever its ``retries``. Anything else (``RetriableError`` once the hooks' own retries are
#: spent, a state-store outage, a timeout) follows the task's ``retries`` and ``retry_delay``.
#: ``AirflowFailException`` (an invalid run parameter or guard) never retries in Airflow itself.
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception="amazon_commerce_sync.errors.FatalError",
            action=RetryAction.FAIL,
            reason="Amazon or Commerce refused the request (credentials, permissions or data): retrying cannot help",
        ),
        RetryRule(
            exception="amazon_commerce_sync.settings.SettingsError",
            action=RetryAction.FAIL,
            reason="the Sales Channel settings are invalid: retrying cannot help",
        ),
        RetryRule(
            exception="amazon_commerce_sync.errors.StateStoreConfigError",
            action=RetryAction.FAIL,
            reason="the state store's connection is unusable: retrying cannot help",
        ),
    ],
)

#: ``map_index_template`` of a task mapped over accounts: the UI and the API name each instance by its account.
#: Inside a mapped task group, pass ``account_id=`` by keyword (a positional argument lands in ``op_args``).
ACCOUNT_MAP_INDEX = "{{ task.op_kwargs['account_id'] }}"


def string_matching(pattern: str, expected: str) -> dict[str, Any]:
    """JSON-schema keywords for a string that must match ``pattern``, refused with a message in words.

    A plain ``pattern`` is refused with the regular expression itself (``'12' does not match '^\\d{3}-...'``),
    and that is what Airflow's API server answers the trigger form (jsonschema's message, shown in the form). With
    ``if``/``else`` the refusal reads ``'<expected>' was expected``; the strings accepted are the same (``expected``
    itself is refused by the ``not``). Non-strings pass these keywords: give the ``type`` alongside.

    :param pattern: the regular expression (``constants``), e.g. ``AMAZON_ORDER_ID_PATTERN``.
    :param expected: what a valid value looks like, e.g. ``an Amazon order id: 3-7-7 digits, like 123-1234567-1234567``.
    """
    return {"if": {"pattern": pattern}, "else": {"const": expected, "not": {"const": expected}}}


def account_param(description: str = "Only this account (default: all).") -> Param:
    """The optional ``account_id`` run parameter of a DAG: an account of the settings, or empty for the default.

    Its type admits ``null``, so Airflow's trigger form does not mark it required (the React form's
    ``isParamRequired``: a schema type without ``"null"`` is required).
    """
    return Param(
        None,
        type=["null", "string"],
        title="Account",
        description=description,
        **string_matching(ACCOUNT_ID_PATTERN, ACCOUNT_ID_EXPECTED),
    )


class FailureNotifier(BaseNotifier):
    """The ``on_failure_callback`` of every Sales Channel task: the alert of
    :func:`amazon_commerce_sync.alerts.failure_alert` through the configured notifier
    (``SALES_CHANNEL_NOTIFIER``). The alert code is imported only when a task fails."""

    def notify(self, context) -> None:
        from amazon_commerce_sync import alerts

        alerts.send_alert(alerts.failure_alert(context), context)


notify_failure = FailureNotifier()


def task_defaults(
    *,
    retries: int,
    execution_timeout: timedelta,
    retry_delay: timedelta = timedelta(minutes=1),
    exponential_backoff: bool = False,
) -> dict[str, Any]:
    """``default_args`` for a DAG: each DAG states its retries and timeout; owner, retry policy and alert are common.

    :param retries: retries of a task after a failure that is not fatal (see :data:`RETRY_POLICY`).
    :param execution_timeout: the longest one try may run.
    :param retry_delay: the wait before a retry (doubling each time with ``exponential_backoff``).
    """
    args: dict[str, Any] = {
        "owner": OWNER,
        "on_failure_callback": notify_failure,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_policy": RETRY_POLICY,
        "execution_timeout": execution_timeout,
    }
    if exponential_backoff:
        args["retry_exponential_backoff"] = True
    return args


def import_schedule_default() -> str:
    """The polling import's default cron: every 5 minutes, or every 15 when the event-driven import is on
    (``SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL`` set). With ORDER_CHANGE notifications the import is the reconciling
    sweep (issue 16): its cursor logic is unchanged, only its interval; the sweep leaves more of searchOrders'
    bucket (0.0056 req/s, burst 20) to the event path's adaptive searches.
    """
    return "*/15 * * * *" if os.environ.get(ORDER_CHANGE_QUEUE_ENV) else "*/5 * * * *"


def environment_schedule(name: str, default: str) -> str | None:
    """A DAG's schedule from a deployment switch (environment variable), read at parse time without I/O.

    :param name: the variable, e.g. ``SALES_CHANNEL_IMPORT_SCHEDULE`` (see ``constants.SCHEDULE_SWITCHES``).
    :param default: the cron expression when the variable is unset.
    :returns: the cron expression, or ``None`` for ``none`` (any case): the DAG then runs only when
        triggered (REST API, UI, an external orchestrator) or, where it has one, on its asset.
    """
    value = os.environ.get(name, default).strip()
    return None if value.lower() == "none" else value
