#!/usr/bin/env bash
# Browser tests of the dashboard: a built `tessera serve`, Debian's headless Chromium,
# playwright-core from npm, Node's own test runner. Installs what a fresh machine lacks
# (as root: apt-get install chromium; npm ci). Screenshots of every page land in
# target/dashboard-screenshots (SCREENSHOT_DIR to change).
#
# Environment: TESSERA_BIN (default target/debug/tessera), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
say() { echo "dashboard/run.sh: $*" >&2; }

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "apt-get install chromium chromium-driver"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq chromium chromium-driver >&2
    else
        say "need Debian's chromium (run as root on Debian, or set CHROMIUM)"
        exit 1
    fi
fi
command -v node >/dev/null || { say "need Node.js"; exit 1; }

cd "$HERE"
# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "npm ci"
    npm ci --no-audit --no-fund --loglevel=error >&2
fi

export TESSERA_BIN="${TESSERA_BIN:-$ROOT/target/debug/tessera}"
case "$TESSERA_BIN" in /*) ;; *) TESSERA_BIN="$ROOT/$TESSERA_BIN" ;; esac
[ -x "$TESSERA_BIN" ] || { say "no tessera binary at $TESSERA_BIN"; exit 1; }
export SCREENSHOT_DIR="${SCREENSHOT_DIR:-$ROOT/target/dashboard-screenshots}"
node --test --test-concurrency=1 dashboard.test.mjs
say "screenshots in $SCREENSHOT_DIR"
