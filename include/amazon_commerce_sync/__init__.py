"""Amazon Seller Central ⇄ Adobe Commerce integration for Apache Airflow.

Modules:
- ``constants``: connection ids, DAG ids, asset URIs.
- ``errors`` / ``retry`` / ``ratelimit``: failure classes, the one retry policy, token buckets.
- ``hooks.amazon`` / ``hooks.commerce``: one hook per external system, speaking the domain.
- ``store``: the integration's own state (cursors, order mapping, outbox, quarantine, audit).
- ``settings``: the Sales Channel settings, validated when a task starts.
- ``transform``: pure functions from Amazon orders to Commerce payloads.
- ``pipelines``: what the DAGs' tasks call.
"""
