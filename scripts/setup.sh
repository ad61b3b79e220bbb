#!/usr/bin/env bash
# Set-up step run first by both README commands and by .ci/run: what pip cannot install.
#   * 3Dmol.js (npm package `3dmol`, pinned in package-lock.json) into node_modules/ — the app serves it
#     locally, never from a CDN;
#   * Debian's `chromium` + `chromium-driver` (apt-get) — the headless browser of the end-to-end test.
# Idempotent: when both are there it only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1 || { [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; }; then
    echo "setup: cannot install $* (needs apt-get as root); install it by hand" >&2
    return 1
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    $SUDO apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ! -f node_modules/3dmol/build/3Dmol-min.js ]; then
  if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || true
  fi
  if command -v npm >/dev/null 2>&1; then
    echo "setup: npm ci (3Dmol.js)"
    npm ci --no-audit --no-fund --loglevel=error
  else
    echo "setup: npm is missing; the app's 3D views need node_modules/3dmol (npm ci)" >&2
  fi
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "setup: apt-get install chromium chromium-driver (headless browser for the end-to-end test)"
  apt_install chromium chromium-driver || true
fi
