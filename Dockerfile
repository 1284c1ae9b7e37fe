# The images of docker-compose.yaml, from the official Apache Airflow image of the version pinned in requirements.txt
# (Python 3.11, the version the lock is resolved for). Two targets share the locked runtime:
#
#   production   what every Airflow service runs: the locked requirements, this project's package, its DAGs and the
#                plugin of the Sales Channel page. No test or development tool (they are in requirements-dev.txt,
#                never installed here), no sandboxes. The last stage, so a plain `docker build` makes it.
#   sandboxes    the stand-ins for Amazon and Commerce (not production code) and the official models they validate
#                against; only the optional `sandboxes` compose profile runs it.
#
#   docker compose build            (or: docker build --target production -t amazon-commerce-sync:latest .)
#
# Dependencies are baked in at build time; never use _PIP_ADDITIONAL_REQUIREMENTS (it reinstalls on every start,
# unpinned). tests/deploy/test_compose_consistency.py checks this file against requirements.txt and the repo.
FROM apache/airflow:3.3.2-python3.11 AS runtime

# The official image runs as the `airflow` user (uid 50000, gid 0). Everything this project adds lives in
# /opt/sales-channel, owned by that user (pip builds the package in place; the sandboxes write their state in var/).
USER root
RUN mkdir -p /opt/sales-channel/src /opt/sales-channel/var && chown -R airflow:root /opt/sales-channel
USER airflow

# The locked requirements, every one with its hashes: the exact set the test suite runs against. apache-airflow is
# repeated with the image's own version so that a lock that drifts from the image fails the build instead of
# replacing Airflow.
COPY --chown=airflow:root requirements.txt /opt/sales-channel/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/sales-channel/requirements.txt


FROM runtime AS sandboxes

# The sandboxes and the official models they validate against, run from /opt/sales-channel (the compose file's
# working_dir); var/ holds their state files (a named volume).
COPY --chown=airflow:root sandboxes/ /opt/sales-channel/sandboxes/
COPY --chown=airflow:root reference/ /opt/sales-channel/reference/
WORKDIR /opt/sales-channel


FROM runtime AS production

# 1. The integration package (include/amazon_commerce_sync), without dependencies: they all come from the lock.
#    The build fails if the image holds a test tool or the sandboxes.
COPY --chown=airflow:root pyproject.toml README.md /opt/sales-channel/src/
COPY --chown=airflow:root include/ /opt/sales-channel/src/include/
RUN pip install --no-cache-dir --no-deps /opt/sales-channel/src \
    && python -c "import amazon_commerce_sync.store.db as db; print('amazon_commerce_sync', db.head_revision())" \
    && python -c "import importlib.util as u, sys; bad = [m for m in ('pytest', 'ruff', 'sandboxes') if u.find_spec(m)]; \
sys.exit(f'test-only modules in the production image: {bad}' if bad else 0)"

# 2. The DAG files and the plugin of the Sales Channel page, where AIRFLOW__CORE__DAGS_FOLDER and
#    AIRFLOW__CORE__PLUGINS_FOLDER point in docker-compose.yaml.
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/

WORKDIR /opt/airflow
