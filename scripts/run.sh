#!/usr/bin/env bash
# `make run`: both sandboxes (live mode) + Airflow standalone with the integration's DAGs, wired together.
# Ctrl-C stops everything this script started except the local SQS (moto, reused next time).
# State lives in ./var (delete it to start afresh).
# The terminal shows the banner, then one line per finished DAG run; every process's full log is in ./var.
# For tests: RUN_VAR_DIR (state and logs elsewhere), RUN_VENV (another virtualenv), RUN_MINUTES (stop after N min).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VAR=${RUN_VAR_DIR:-$ROOT/var}
VENV=${RUN_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
export PATH="$VENV/bin:$PATH"
mkdir -p "$VAR"
chmod 700 "$VAR"

AMAZON_PORT=${AMAZON_SANDBOX_PORT:-8701}
COMMERCE_PORT=${COMMERCE_SANDBOX_PORT:-8702}
AIRFLOW_PORT=${AIRFLOW_PORT:-8080}
export AMAZON_PORT COMMERCE_PORT

# Credentials of this checkout's sandboxes and UI: random, made once, kept out of git (var/ is ignored).
if [ ! -f "$VAR/secrets.env" ]; then
  umask 077
  "$PY" - > "$VAR/secrets.env" <<'PY'
import secrets
from datetime import UTC, datetime, timedelta
for name in ("LWA_CLIENT_SECRET", "LWA_REFRESH_TOKEN", "COMMERCE_ADMIN_PASSWORD", "UI_ADMIN_PASSWORD"):
    print(f"{name}={secrets.token_urlsafe(24)}")
print("LWA_CLIENT_ID=amzn1.application-oa2-client." + secrets.token_hex(8))
# Orders placed before the channel is connected are never imported (as the Sales Channel does).
print("IMPORT_ORDERS_AFTER=" + (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
PY
fi
# The key that encrypts buyer data in the state store (store/pii_crypto.py); added to older var/secrets.env too.
if ! grep -q '^SALES_CHANNEL_PII_KEYS=' "$VAR/secrets.env"; then
  (umask 077; "$PY" -c 'from cryptography.fernet import Fernet; print("SALES_CHANNEL_PII_KEYS=" + Fernet.generate_key().decode())' >> "$VAR/secrets.env")
fi
# Airflow signs its API tokens with HS512; its generated default key is 24 bytes, which PyJWT warns about in
# every task log (RFC 7518 3.2: a key at least as long as the hash, 64 bytes). Added to older var/secrets.env too.
if ! grep -q '^AIRFLOW__API_AUTH__JWT_SECRET=' "$VAR/secrets.env"; then
  (umask 077; "$PY" -c 'import secrets; print("AIRFLOW__API_AUTH__JWT_SECRET=" + secrets.token_urlsafe(64))' >> "$VAR/secrets.env")
fi
set -a; . "$VAR/secrets.env"; set +a

export AIRFLOW_HOME=$VAR/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__PORT=$AIRFLOW_PORT
# The UI listens where the banner says, like the sandboxes (Airflow's default host is 0.0.0.0: every interface).
export AIRFLOW__API__HOST=${AIRFLOW__API__HOST:-127.0.0.1}
# Tasks reach the Execution API on this port too (Airflow's default is port 8080 whatever the API port is), and
# wait for it: `airflow standalone` starts the scheduler, which queues the runs due, while the API server is still
# starting (10 tries with random exponential waits up to 90 s, instead of 5: minutes rather than about 30 s).
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$AIRFLOW_PORT/execution/
export AIRFLOW__WORKERS__EXECUTION_API_RETRIES=${AIRFLOW__WORKERS__EXECUTION_API_RETRIES:-10}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
# Two deprecation warnings raised by Airflow's own code, filtered by message and raising module only (see
# docs/quiet-logs.md): the standard provider's PythonSensor (behind @task.sensor) imports determine_kwargs from its
# deprecated place, and the UI's deadlines route uses SQLAlchemy 2.1's deprecated noload().
export PYTHONWARNINGS="ignore:The \`airflow.utils.operator_helpers.determine_kwargs\` attribute is deprecated:FutureWarning:airflow.providers.standard.sensors.python,ignore:The noload() option is deprecated::airflow.api_fastapi.core_api.routes.ui.deadlines${PYTHONWARNINGS:+,$PYTHONWARNINGS}"
# The event path (amazon_order_events) brings orders in seconds; the polling import is the sweep behind it.
export SALES_CHANNEL_IMPORT_SCHEDULE=${SALES_CHANNEL_IMPORT_SCHEDULE:-"*/10 * * * *"}
export SALES_CHANNEL_SHIPMENT_SCHEDULE=${SALES_CHANNEL_SHIPMENT_SCHEDULE:-"*/2 * * * *"}
export SALES_CHANNEL_REFUND_SCHEDULE=${SALES_CHANNEL_REFUND_SCHEDULE:-"*/3 * * * *"}
export SALES_CHANNEL_DB_URL=${SALES_CHANNEL_DB_URL:-sqlite:///$VAR/sales_channel.db}
mkdir -p "$AIRFLOW_HOME"
printf '{"admin": "%s"}\n' "$UI_ADMIN_PASSWORD" > "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"

# The Airflow connections and settings, as environment variables (see README "Configuration").
export AIRFLOW_CONN_AMAZON_SP_API=$("$PY" -c '
import json, os
print(json.dumps({"conn_type": "http", "host": "http://127.0.0.1:" + os.environ["AMAZON_PORT"],
  "login": os.environ["LWA_CLIENT_ID"], "password": os.environ["LWA_CLIENT_SECRET"],
  "extra": {"refresh_token": os.environ["LWA_REFRESH_TOKEN"],
            "lwa_endpoint": "http://127.0.0.1:" + os.environ["AMAZON_PORT"] + "/auth/o2/token"}}))' )
export AIRFLOW_CONN_COMMERCE=$("$PY" -c '
import json, os
print(json.dumps({"conn_type": "http", "host": "http://127.0.0.1:" + os.environ["COMMERCE_PORT"],
  "login": "admin", "password": os.environ["COMMERCE_ADMIN_PASSWORD"],
  "extra": {"store_code": "default", "auth": "admin"}}))' )
export AIRFLOW_VAR_SALES_CHANNEL_SETTINGS=$("$PY" -c '
import json, os
print(json.dumps({"accounts": [{"account_id": "us-main", "merchant_id": "A2SANDBOXSELLER1",
  "marketplace_ids": ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"], "import_orders_after": os.environ["IMPORT_ORDERS_AFTER"]}]}))' )

# Event-driven import (README "Event-driven import"): a local SQS (moto, reused or started in the
# background by scripts/ensure_sqs.sh, left running), the queue the Amazon sandbox publishes ORDER_CHANGE to,
# its aws connection and the watcher's queue URL. ops.run_status triggers amazon_notifications_setup once (the
# subscription; a later `make run` finds it and changes nothing).
export SQS_ENDPOINT=http://127.0.0.1:${SALES_CHANNEL_SQS_PORT:-8703}
"$ROOT/scripts/ensure_sqs.sh" "$VENV/bin"
export SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL=$("$PY" -c '
import os, boto3
sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT"], region_name="us-east-1",
                   aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
print(sqs.create_queue(QueueName="order-change")["QueueUrl"])' )
export AIRFLOW_CONN_SALES_CHANNEL_SQS=$("$PY" -c '
import json, os
print(json.dumps({"conn_type": "aws", "login": "sandbox", "password": "sandbox",
  "extra": {"endpoint_url": os.environ["SQS_ENDPOINT"], "region_name": "us-east-1"}}))' )

PIDS=()
descendants() {  # every process below $1, children first
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do descendants "$child"; echo "$child"; done
}
cleanup() {
  trap - EXIT INT TERM
  echo; echo "Stopping..."
  local all=() pid
  for pid in "${PIDS[@]}"; do all+=($(descendants "$pid") "$pid"); done
  kill "${all[@]}" 2>/dev/null || true
  for _ in $(seq 1 30); do  # up to 15 s for a clean shutdown, then no mercy
    local alive=0
    for pid in "${all[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 1 ] || break
    sleep 0.5
  done
  kill -9 "${all[@]}" 2>/dev/null || true
  echo "Stopped."
}
trap cleanup EXIT INT TERM

wait_for() {  # url name [seconds]
  for _ in $(seq 1 $((${3:-60} * 2))); do
    "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "$2 did not start; see $VAR/*.log" >&2; exit 1
}

AMAZON_SANDBOX_CLIENT_ID=$LWA_CLIENT_ID AMAZON_SANDBOX_CLIENT_SECRET=$LWA_CLIENT_SECRET \
AMAZON_SANDBOX_REFRESH_TOKEN=$LWA_REFRESH_TOKEN \
  "$PY" -m sandboxes.amazon --host 127.0.0.1 --port "$AMAZON_PORT" --state-file "$VAR/amazon-sandbox.json" \
  --live --live-interval "${AMAZON_SANDBOX_LIVE_INTERVAL:-30}" --orders "${AMAZON_SANDBOX_ORDERS:-20}" \
  --finances-v0-removed --sqs-endpoint "$SQS_ENDPOINT" > "$VAR/amazon-sandbox.log" 2>&1 &
PIDS+=($!)
COMMERCE_SANDBOX_ADMIN_PASSWORD=$COMMERCE_ADMIN_PASSWORD \
  "$PY" -m sandboxes.commerce --host 127.0.0.1 --port "$COMMERCE_PORT" --state-file "$VAR/commerce-sandbox.json" \
  > "$VAR/commerce-sandbox.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$AMAZON_PORT/_sandbox/health" "Amazon sandbox"
wait_for "http://127.0.0.1:$COMMERCE_PORT/_sandbox/stats" "Commerce sandbox"
# The Commerce catalog holds the SKUs the Amazon sandbox sells (an upsert: safe on every start).
"$PY" - <<'PY'
import json, os, urllib.request
from sandboxes.amazon.generator import CATALOG
body = json.dumps({"products": [{"sku": p["sku"], "name": p["name"], "price": str(p["price"]), "status": 1,
                                 "qty": 500} for p in CATALOG]}).encode()
request = urllib.request.Request(f"http://127.0.0.1:{os.environ['COMMERCE_PORT']}/_sandbox/products", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
urllib.request.urlopen(request, timeout=10).read()
PY

cat <<MSG

  Amazon SP-API sandbox  http://127.0.0.1:$AMAZON_PORT   (admin: /_sandbox/orders, /_sandbox/feeds, ...)
  Commerce sandbox       http://127.0.0.1:$COMMERCE_PORT   (admin: /_sandbox/orders)
  Airflow UI             http://127.0.0.1:$AIRFLOW_PORT   user: admin   password: $UI_ADMIN_PASSWORD
  Local SQS (moto)       $SQS_ENDPOINT   (ORDER_CHANGE queue: order-change)
  State store            $(sed -E 's#://([^:/@]+):[^@]*@#://\1:***@#' <<< "$SALES_CHANNEL_DB_URL")
  Logs                   ${VAR#"$ROOT"/}/airflow.log (Airflow), ${VAR#"$ROOT"/}/airflow/logs/ (task logs), ${VAR#"$ROOT"/}/*-sandbox.log
  Ctrl-C stops everything (the local SQS stays: make clean stops it).

MSG

"$VENV/bin/airflow" standalone > "$VAR/airflow.log" 2>&1 &
AIRFLOW_PID=$!
PIDS+=($AIRFLOW_PID)
wait_for "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" "Airflow" 300
echo "Airflow is up. Finished DAG runs:"
# One line per finished DAG run (ops/run_status.py); it ends when Airflow does, or after RUN_MINUTES.
"$PY" -m ops.run_status --url "http://127.0.0.1:$AIRFLOW_PORT" --airflow-pid "$AIRFLOW_PID" \
  --minutes "${RUN_MINUTES:-0}" --log "$VAR/airflow.log" --trigger-once amazon_notifications_setup &
PIDS+=($!)
wait "$!"
