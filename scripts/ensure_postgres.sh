#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests.
# Reuses a running server; installs and starts Debian's package only where none runs.
set -euo pipefail
HOST=127.0.0.1 PORT=5432

answers() { "${1:-pg_isready}" -h "$HOST" -p "$PORT" -q 2>/dev/null || python3 - "$HOST" "$PORT" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(2)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PY
}

if answers; then
  echo "PostgreSQL: using the server running on $HOST:$PORT"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL is not running on $HOST:$PORT. Start one (e.g. 'brew services start postgresql')," >&2
  echo "or point ACS_TEST_PG_URL at a server; the PostgreSQL half of the state-store tests is skipped otherwise." >&2
  [ -n "${CI:-}" ] && exit 1 || exit 0
fi

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "PostgreSQL: installing Debian's package"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
VERSION=$(ls /etc/postgresql | sort -V | tail -n 1)
HBA=/etc/postgresql/$VERSION/main/pg_hba.conf
# A local test server: trust connections from loopback only (no passwords in the tests).
if ! $SUDO grep -q "acs-test-trust" "$HBA"; then
  $SUDO sed -i '1i host all all 127.0.0.1/32 trust # acs-test-trust\nhost all all ::1/128 trust # acs-test-trust' "$HBA"
fi
$SUDO pg_ctlcluster --skip-systemctl-redirect "$VERSION" main start 2>/dev/null \
  || $SUDO pg_ctlcluster --skip-systemctl-redirect "$VERSION" main reload
for _ in $(seq 1 30); do answers && break; sleep 1; done
answers || { echo "PostgreSQL did not start" >&2; exit 1; }
echo "PostgreSQL $VERSION: started on $HOST:$PORT"
