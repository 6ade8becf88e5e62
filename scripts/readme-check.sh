#!/usr/bin/env bash
# Runs the README's own commands, as written there, so that the README cannot drift from
# what the code does: the server command of "Two commands" (a release build on first
# use), then every step of "First token" against it: `app create`, the token,
# introspection, /verify and revocation requests, and the admin API request. Each answer
# is checked; after the revocation, introspection must say inactive and /verify 401.
# Then the server gets SIGTERM and must stop within a deadline. CI (.ci/run) runs this
# before the test command; it can also be run alone from any clone.
#
# The commands are read out of README.md, not copied here. Only two things are added to
# them: `--json` on `app create` (the README offers it "for scripts") to read the id and
# secret, and curl options that print the status code (`-sS -w …`); ID, SECRET and TOKEN
# are replaced by the real values.
#
# The README's server command keeps its data in ./data and listens on 127.0.0.1:8080 and
# :8081, its defaults, so this script needs the same: it refuses to start when ./data
# exists (it would use someone's data) or a port is taken, and removes the ./data it
# made when it ends.
#
# Environment: READY_TIMEOUT (seconds to wait for /readyz, default 1800: a cold release
# build takes about 8 minutes on two idle cores, and took over 15 on two busy ones),
# STOP_TIMEOUT (seconds for the server to stop after SIGTERM, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."

READY_TIMEOUT="${READY_TIMEOUT:-1800}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
PUBLIC=http://127.0.0.1:8080
ADMIN=http://127.0.0.1:8081

say() { echo "readme-check: $*"; }
fail() {
    echo "readme-check: FAIL: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- the README's commands

# The indented lines of one README section (from the heading to the next `## `), with
# backslash-continued lines joined.
section_commands() {
    awk -v heading="$1" '
        $0 == heading { inside = 1; next }
        inside && /^## / { exit }
        inside && /^    [^ ]/ {
            line = substr($0, 5)
            while (line ~ /\\$/ && (getline next_line) > 0) {
                sub(/\\$/, "", line)
                sub(/^ +/, " ", next_line)
                line = line next_line
            }
            print line
        }
    ' README.md
}

# The one line of `lines` matching the extended regular expression `pattern`.
one_line() {
    local what="$1" pattern="$2" lines="$3" found
    found=$(grep -E -- "$pattern" <<<"$lines" || true)
    [ -n "$found" ] || fail "README.md has no $what (a line matching /$pattern/)"
    [ "$(wc -l <<<"$found")" -eq 1 ] || fail "README.md has several $what lines:
$found"
    printf '%s\n' "$found"
}

[ -f README.md ] || fail "no README.md in $(pwd)"
two_commands=$(section_commands "## Two commands")
first_token=$(section_commands "## First token")
SERVE=$(one_line "server command" '^cargo run .*serve' "$two_commands")
APP_CREATE=$(one_line "app create command" '^cargo run .* app create ' "$first_token")
CURL_TOKEN=$(one_line "token request" '^curl .*/oauth2/token$' "$first_token")
CURL_TOKEN_INFO=$(one_line "introspection request" '^curl .*/oauth2/introspect$' "$first_token")
CURL_VERIFY=$(one_line "/verify request" '^curl .*/verify$' "$first_token")
CURL_REVOKE=$(one_line "revocation request" '^curl .*/oauth2/revoke$' "$first_token")
CURL_ADMIN=$(one_line "admin API request" '^curl .*/admin/v1/realms$' "$first_token")

# ---------------------------------------------------------------- preconditions

[ ! -e data ] || fail "./data exists in $(pwd); the README's server command would use it.
Move it away, or run this in a fresh clone."
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 8080 8081; do
    if port_taken "$port"; then
        fail "127.0.0.1:$port is already in use; the README's server command listens on
127.0.0.1:8080 and 127.0.0.1:8081 (its defaults), so this check needs both free."
    fi
done
command -v curl >/dev/null || fail "curl is not installed (the README's requests use it)"
command -v python3 >/dev/null || fail "python3 is not installed (it reads the JSON answers)"

# ---------------------------------------------------------------- the server

WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER_PID=""
OK=""

cleanup() {
    local status=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 "$STOP_TIMEOUT"); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 1
        done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    fi
    if [ -z "$OK" ] && [ -s "$LOG" ]; then
        echo "readme-check: the last lines of the server's output:" >&2
        tail -n 40 "$LOG" | sed 's/^/    /' >&2
    fi
    rm -rf data "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting the README's server command: $SERVE"
# A session of its own, so that the server and cargo before it (which replaces itself
# with the binary once built) get SIGTERM together and nothing else does.
setsid bash -c "exec $SERVE" >"$LOG" 2>&1 </dev/null &
SERVER_PID=$!

say "waiting up to ${READY_TIMEOUT}s for $PUBLIC/readyz (the first run builds in release mode)"
start=$SECONDS
last_report=$SECONDS
until curl -fsS -o /dev/null --max-time 2 "$PUBLIC/readyz" 2>/dev/null; do
    kill -0 "$SERVER_PID" 2>/dev/null || {
        wait "$SERVER_PID" && status=0 || status=$?
        SERVER_PID=""
        fail "the server command ended (exit status $status) before /readyz answered"
    }
    if ((SECONDS - start >= READY_TIMEOUT)); then
        fail "/readyz did not answer within ${READY_TIMEOUT}s"
    fi
    if ((SECONDS - last_report >= 30)); then
        last_report=$SECONDS
        say "  $((SECONDS - start))s: $(tail -n 1 "$LOG" | cut -c1-100)"
    fi
    sleep 2
done
say "ready after $((SECONDS - start))s"

# ---------------------------------------------------------------- First token

# Runs a README curl line with the placeholders replaced and the status code printed on
# a last line of its own; sets BODY (everything before) and STATUS.
request() {
    local command="$1" out
    command=${command//ID:SECRET/$CLIENT_ID:$CLIENT_SECRET}
    command=${command//TOKEN/$ACCESS_TOKEN}
    out=$(bash -c "$command -sS -w '\n%{http_code}'") || fail "this request failed: $command"
    STATUS=${out##*$'\n'}
    BODY=${out%$'\n'*}
}

# The value of `key` in the JSON object BODY, or nothing.
json_field() {
    python3 -c '
import json, sys
try:
    value = json.loads(sys.argv[1]).get(sys.argv[2])
except (ValueError, AttributeError):
    value = None
if value is not None:
    print(json.dumps(value) if isinstance(value, bool) else value)
' "$BODY" "$1"
}

expect() {
    local what="$1" want_status="$2"
    [ "$STATUS" = "$want_status" ] || fail "$what: status $STATUS, expected $want_status; body: $BODY"
}

say "creating an application: $APP_CREATE --json"
created=$(bash -c "$APP_CREATE --json") || fail "the app create command failed"
read -r CLIENT_ID CLIENT_SECRET < <(python3 -c '
import json, sys
app = json.loads(sys.argv[1])
inner = app.get("application", {})
print(app.get("client_id") or inner.get("client_id") or "", app.get("client_secret") or "")
' "$created") || true
[ -n "${CLIENT_ID:-}" ] && [ -n "${CLIENT_SECRET:-}" ] ||
    fail "app create printed no client_id and client_secret: $created"
say "  client_id $CLIENT_ID"
ACCESS_TOKEN=""

# The CLI writes the store directly and the server obeys within a second (README), so
# the first token request may come too early; it is repeated for a few seconds.
say "token: $CURL_TOKEN"
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    request "$CURL_TOKEN"
    [ "$STATUS" = 200 ] && break
    sleep 0.5
done
expect "token request" 200
ACCESS_TOKEN=$(json_field access_token)
[ -n "$ACCESS_TOKEN" ] || fail "the token response has no access_token: $BODY"
[ "$attempt" -eq 1 ] || say "  (the server saw the new application on attempt $attempt)"

say "introspection: $CURL_TOKEN_INFO"
request "$CURL_TOKEN_INFO"
expect "introspection" 200
[ "$(json_field active)" = true ] || fail "introspection does not say active: $BODY"
[ "$(json_field client_id)" = "$CLIENT_ID" ] || fail "introspection names another client: $BODY"

say "verify: $CURL_VERIFY"
request "$CURL_VERIFY"
expect "/verify" 200
grep -qi "^x-client-id: $CLIENT_ID" <<<"$BODY" || fail "/verify sent no X-Client-Id: $BODY"

say "revocation: $CURL_REVOKE"
request "$CURL_REVOKE"
expect "revocation" 200

say "introspection after revocation"
request "$CURL_TOKEN_INFO"
expect "introspection after revocation" 200
[ "$(json_field active)" = false ] || fail "the revoked token is still active: $BODY"

say "verify after revocation"
request "$CURL_VERIFY"
expect "/verify after revocation" 401

say "admin API: $CURL_ADMIN"
request "$CURL_ADMIN"
expect "admin API" 200
python3 -c 'import json, sys; assert "default" in json.dumps(json.loads(sys.argv[1]))' "$BODY" ||
    fail "the admin API's realm list does not name the default realm: $BODY"

# ---------------------------------------------------------------- stop

say "stopping the server (SIGTERM)"
kill -TERM -- "-$SERVER_PID"
for _ in $(seq 1 "$STOP_TIMEOUT"); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 1
done
kill -0 "$SERVER_PID" 2>/dev/null && fail "the server did not stop within ${STOP_TIMEOUT}s of SIGTERM"
wait "$SERVER_PID" && status=0 || status=$?
SERVER_PID=""
[ "$status" -eq 0 ] || fail "the server ended with exit status $status after SIGTERM"

OK=1
say "PASS: the README's server command and First token steps work as written"
