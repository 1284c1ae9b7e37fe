#!/usr/bin/env bash
# Headless Chromium for the UI page test (Debian's package). Installs it only where absent and apt exists.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium not found: the browser test of the Sales Channel page is skipped (install Chromium to run it)." >&2
  [ -n "${CI:-}" ] && exit 1 || exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Chromium: installing Debian's package"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
