#!/usr/bin/env bash
# Make sure a local SQS (moto in server mode: the real SQS API over HTTP) answers on 127.0.0.1:8703 for
# `make run` and the tests. Reuses a running one; otherwise starts the virtualenv's moto_server in the
# background, logging to var/sqs/ ($RUN_VAR_DIR/sqs/ when set; stop it with: kill "$(cat var/sqs/moto.pid)").
# Usage: scripts/ensure_sqs.sh PATH_TO_VENV_BIN
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/.venv/bin}
LOGS=${RUN_VAR_DIR:-$ROOT/var}/sqs
HOST=127.0.0.1 PORT=${SALES_CHANNEL_SQS_PORT:-8703}
ENDPOINT="http://$HOST:$PORT"

answers() { python3 - "$ENDPOINT" <<'PY'
import sys, urllib.request
# A ListQueues whose Authorization names the sqs service (moto routes by it and does not check the signature).
request = urllib.request.Request(sys.argv[1] + "/", data=b"Action=ListQueues&Version=2012-11-05", headers={
    "Content-Type": "application/x-www-form-urlencoded",
    "Authorization": "AWS4-HMAC-SHA256 Credential=sandbox/20260101/us-east-1/sqs/aws4_request, "
                     "SignedHeaders=host, Signature=0"})
try:
    with urllib.request.urlopen(request, timeout=2) as r:
        sys.exit(0 if b"ListQueuesResponse" in r.read() else 1)
except OSError:
    sys.exit(1)
PY
}

if answers; then
  echo "SQS: using the one answering on $ENDPOINT"
  exit 0
fi
mkdir -p "$LOGS"
nohup "$BIN/python" -m moto.server -H "$HOST" -p "$PORT" >"$LOGS/moto.log" 2>&1 &
echo $! >"$LOGS/moto.pid"
for _ in $(seq 1 60); do answers && break; sleep 0.5; done
answers || { echo "SQS (moto) did not start; see $LOGS/moto.log" >&2; exit 1; }
echo "SQS: moto started on $ENDPOINT (pid $(cat "$LOGS/moto.pid"))"
