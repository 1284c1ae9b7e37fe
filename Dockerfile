# The image every service of docker-compose.yaml runs: the official Apache Airflow image of the version pinned in
# requirements.txt (Python 3.11, the version the lock is resolved for), the locked requirements, this project's
# package, its DAGs, and the sandboxes (used only by the optional `sandboxes` compose profile).
#
#   docker compose build            (or: docker build -t amazon-commerce-sync:latest .)
#
# Dependencies are baked in at build time; never use _PIP_ADDITIONAL_REQUIREMENTS (it reinstalls on every start,
# unpinned). tests/deploy/test_compose_consistency.py checks this file against requirements.txt and the repo.
FROM apache/airflow:3.3.2-python3.11

# The official image runs as the `airflow` user (uid 50000, gid 0). Everything this project adds lives in
# /opt/sales-channel, owned by that user (pip builds the package in place; the sandboxes write their state in var/).
USER root
RUN mkdir -p /opt/sales-channel/src /opt/sales-channel/var && chown -R airflow:root /opt/sales-channel
USER airflow

# 1. The locked requirements: the exact set the test suite runs against. apache-airflow is repeated with the
#    image's own version so that a lock that drifts from the image fails the build instead of replacing Airflow.
COPY --chown=airflow:root requirements.txt /opt/sales-channel/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/sales-channel/requirements.txt

# 2. The integration package (include/amazon_commerce_sync), without dependencies: they all come from the lock.
COPY --chown=airflow:root pyproject.toml README.md /opt/sales-channel/src/
COPY --chown=airflow:root include/ /opt/sales-channel/src/include/
RUN pip install --no-cache-dir --no-deps /opt/sales-channel/src \
    && python -c "import amazon_commerce_sync.store.db as db; print('amazon_commerce_sync', db.head_revision())"

# 3. The DAG files and the plugin of the Sales Channel page, where AIRFLOW__CORE__DAGS_FOLDER and
#    AIRFLOW__CORE__PLUGINS_FOLDER point in docker-compose.yaml.
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/

# 4. The sandboxes and the official models they validate against (not production code; only the `sandboxes`
#    profile runs them, from /opt/sales-channel). var/ holds their state files (a named volume).
COPY --chown=airflow:root sandboxes/ /opt/sales-channel/sandboxes/
COPY --chown=airflow:root reference/ /opt/sales-channel/reference/

WORKDIR /opt/airflow
