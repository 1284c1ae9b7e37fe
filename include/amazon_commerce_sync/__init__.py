"""Amazon Seller Central ⇄ Adobe Commerce integration for Apache Airflow.

Modules (each calls only the ones below it; docs/architecture.md has the map):
- ``pipelines``: one module per DAG, and ``pipelines.tasks``, what the DAGs' tasks call; no pipeline imports another.
- ``resources``: what a task opens: validated settings, the state store, per-thread hooks.
- ``commerce_writes``: ``write_once``, the one exactly-once write protocol, its keys and the shared order operations.
- ``feeds``: Amazon feeds from the outbox, one per run, and their processing reports.
- ``transform`` / ``shipments`` / ``refunds``: pure rules (Amazon order → Commerce order, shipments, refunds).
- ``store``: the integration's own state, by aggregate (orders, retention, writes, outbox, ops).
- ``hooks``: one hook per external system, speaking the domain.
- ``errors`` / ``retry`` / ``ratelimit``: failure classes, the one retry policy, token buckets.
- ``settings`` / ``constants`` / ``times``: the Sales Channel settings, ids and names, the one time parser.
- ``alerts`` / ``ui``: the monitor's alerts, the Sales Channel page.
"""
