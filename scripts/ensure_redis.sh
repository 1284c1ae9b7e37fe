#!/usr/bin/env bash
# Make sure a Redis server answers on 127.0.0.1:6379 (the Celery broker of `make distributed` / `make soak`).
# Reuses a running server; installs and starts Debian's package only where none runs.
set -euo pipefail
HOST=127.0.0.1 PORT=6379

answers() { python3 - "$HOST" "$PORT" <<'PY'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
PY
}

if answers; then
  echo "Redis: using the server running on $HOST:$PORT"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Redis is not running on $HOST:$PORT; start one (e.g. 'brew services start redis')." >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v redis-server >/dev/null 2>&1; then
  echo "Redis: installing Debian's package"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
# A local broker on loopback only, nothing kept on disk (the queues are refilled by the scheduler).
$SUDO redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --daemonize yes >/dev/null
for _ in $(seq 1 30); do answers && break; sleep 0.5; done
answers || { echo "Redis did not start" >&2; exit 1; }
echo "Redis: started on $HOST:$PORT"
