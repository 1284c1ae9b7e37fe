#!/usr/bin/env bash
# Headless Chromium for the UI page test (Debian's package). Installs it only where absent and apt exists.
# `scripts/ensure_chromium.sh --driver` also ensures ChromeDriver (Debian's chromium-driver), which
# tests/ui/make_screenshot.py drives to screenshot the page of a running `make run`.
set -euo pipefail
WANT_DRIVER=0
for arg in "$@"; do
  case "$arg" in
    --driver) WANT_DRIVER=1 ;;
    *) echo "usage: $0 [--driver]" >&2; exit 2 ;;
  esac
done
PACKAGES=()
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  PACKAGES+=(chromium)
fi
if [ "$WANT_DRIVER" -eq 1 ] && ! command -v chromedriver >/dev/null 2>&1; then
  PACKAGES+=(chromium-driver)
fi
[ "${#PACKAGES[@]}" -gt 0 ] || exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  if [ "$WANT_DRIVER" -eq 1 ]; then
    echo "missing ${PACKAGES[*]}: install Chromium and ChromeDriver to take the screenshot of the page." >&2
    exit 1
  fi
  echo "chromium not found: the browser test of the Sales Channel page is skipped (install Chromium to run it)." >&2
  [ -n "${CI:-}" ] && exit 1 || exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Chromium: installing Debian's package(s): ${PACKAGES[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
