"""Who may see the Sales Channel page: Airflow's auth manager decides, with Airflow's own DAG permissions.

The page summarises what the Sales Channel DAGs did (their runs, the orders they imported, the pushes they queued),
so it is as visible as those runs: a signed-in user sees it when the auth manager lets them read the DAG runs of
every Sales Channel DAG (``is_authorized_dag(method="GET", access_entity=DagAccessEntity.RUN)``, asked once for all
of them through ``batch_is_authorized_dag``, the check behind Airflow's own ``GET /api/v2/dags/{dag_id}/dagRuns``).
With the Simple auth manager that is every role (viewer, user, op, admin); with the FAB auth manager every role with
"can read" on DAG Runs for those DAGs (Viewer, User, Op, Admin, and any role a DAG's ``access_control`` names), so
a deployment narrows the page exactly as it narrows the DAGs. In multi-team mode the DAG's team counts, as in
Airflow's ``requires_access_dag``.

Acting is not done on the page: a cancellation decision (the decision DAG's Human-in-the-loop task) and triggering
``amazon_order_cancel`` go through Airflow's own API and UI, which require editing the DAG's Human-in-the-loop
details (``PUT``, ``DagAccessEntity.HITL_DETAIL``) and creating DAG runs (``POST``, ``DagAccessEntity.RUN``): with
the Simple auth manager the user, op and admin roles, not viewer; with FAB, User, Op and Admin. docs/security-access.md
records the decision.

Everything Airflow is imported lazily: the page's module is imported by tests and tools without an API server.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from fastapi import Depends, HTTPException, status

FORBIDDEN = "The Sales Channel page needs permission to read the runs of the Sales Channel DAGs."


@functools.cache
def requires_page_access(dag_ids: tuple[str, ...]) -> Callable[..., None]:
    """The FastAPI dependency of the page: the API server's ``get_user`` (401 without a valid token or session
    cookie, 403 with a forged one), then the auth manager's verdict on reading the runs of ``dag_ids`` (403
    FORBIDDEN when refused). Cached, so the same dependency object is returned for the same DAGs (tests override it
    by identity in ``app.dependency_overrides``). Raises ValueError for no DAG: that would let anybody in."""
    if not dag_ids:
        raise ValueError("the page's access needs the Sales Channel DAG ids")
    from airflow.api_fastapi.core_api.security import get_user

    def sales_channel_page_access(user=Depends(get_user)) -> None:  # noqa: B008 - FastAPI's dependency idiom
        if not may_read_runs(user, dag_ids):
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)

    return sales_channel_page_access


def may_read_runs(user, dag_ids: tuple[str, ...]) -> bool:
    """Whether the auth manager lets ``user`` (the auth manager's user object) read the DAG runs of every DAG in
    ``dag_ids``. Raises RuntimeError if the auth manager has not been initialised (no API server)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.configuration import conf

    teams: dict[str, str | None] = {}
    if conf.getboolean("core", "multi_team", fallback=False):
        from airflow.models.dag import DagModel

        teams = DagModel.get_dag_id_to_team_name_mapping(list(dag_ids))
    requests = [
        {"method": "GET", "access_entity": DagAccessEntity.RUN, "details": DagDetails(id=d, team_name=teams.get(d))}
        for d in dag_ids
    ]
    return get_auth_manager().batch_is_authorized_dag(requests, user=user)
