#!/usr/bin/env bash
# How fast a realm with many applications lists (issue 4: 100,000 applications list in
# milliseconds). Builds the release binary if needed, starts it on SQLite, fills the
# default realm with APPS applications (copies of one made through the admin API,
# written straight into the database with sqlite3), restarts it, and times each page
# request REQUESTS times with curl: median and p99 of the whole request, beside a
# baseline measured in the same run (GET of one realm: same listener, key check and
# JSON, no store query). Also prints how long the server took to start with them all.
#
# Environment: APPS (default 100000), REQUESTS (default 50), TESSERA_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
APPS="${APPS:-100000}"
REQUESTS="${REQUESTS:-50}"
BIN="${TESSERA_BIN:-target/release/tessera}"
[ -x "$BIN" ] || cargo build --release --locked -p tessera
command -v sqlite3 >/dev/null || { echo "needs sqlite3 (apt-get install sqlite3)" >&2; exit 1; }

WORK="$(mktemp -d -t tessera-apps.XXXXXX)"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

read -r PUBLIC_PORT ADMIN_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
KEY="bench-admin-key-$(date +%s%N)"
ADMIN="http://127.0.0.1:$ADMIN_PORT"

start() {
    TESSERA_LISTEN="127.0.0.1:$PUBLIC_PORT" TESSERA_ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
        TESSERA_DATA_DIR="$WORK/data" TESSERA_ADMIN_KEY="$KEY" TESSERA_LOG=warn \
        "$BIN" serve >"$WORK/server.log" 2>&1 &
    PID=$!
    local began
    began=$(date +%s%N)
    until curl -sf "http://127.0.0.1:$PUBLIC_PORT/readyz" >/dev/null; do
        kill -0 "$PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
        sleep 0.05
    done
    STARTED_MS=$(( ($(date +%s%N) - began) / 1000000 ))
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

start
curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"name": "template", "client_id": "app-000000", "scopes": ["read"]}' \
    "$ADMIN/admin/v1/realms/default/applications" >/dev/null
stop
sqlite3 "$WORK/data/tessera.db" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $APPS - 1)
INSERT INTO applications (realm_id, client_id, name, data, created_at, updated_at)
SELECT a.realm_id, printf('app-%06d', n.i), printf('service %06d', n.i), a.data, a.created_at, a.updated_at
FROM n, applications a WHERE a.client_id = 'app-000000';
SQL
start
count=$(sqlite3 "$WORK/data/tessera.db" "SELECT COUNT(*) FROM applications")
echo "applications in the realm: $count; server ready ${STARTED_MS} ms after start"

# Median and p99 of REQUESTS requests, milliseconds.
measure() {
    local path="$1"
    for _ in $(seq "$REQUESTS"); do
        curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $KEY" "$ADMIN$path"
    done | sort -n | awk '{ t[NR] = $1 * 1000 } END {
        m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
        p = t[int(NR * 0.99 + 0.999)]
        printf "%.2f %.2f\n", m, p }'
}
check() {  # how many items a page holds, to show the request did what it says
    curl -s -H "Authorization: Bearer $KEY" "$ADMIN$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

printf "%-52s %6s %10s %10s %8s\n" "request" "items" "median ms" "p99 ms" "ratio"
read -r base_med base_p99 < <(measure /admin/v1/realms/default)
printf "%-52s %6s %10s %10s %8s\n" "baseline: GET realm (no store query)" "-" "$base_med" "$base_p99" "1.00"
for path in \
    "/admin/v1/realms/default/applications?limit=100" \
    "/admin/v1/realms/default/applications?limit=100&after=app-050000" \
    "/admin/v1/realms/default/applications?limit=1000&after=app-098000" \
    "/admin/v1/realms/default/applications?q=service%2007712" \
    "/admin/v1/realms/default/applications?q=no-such-name"; do
    read -r med p99 < <(measure "$path")
    ratio=$(awk -v a="$med" -v b="$base_med" 'BEGIN { printf "%.1f", a / b }')
    printf "%-52s %6s %10s %10s %8s\n" "${path#/admin/v1/realms/default}" "$(check "$path")" "$med" "$p99" "$ratio"
done
