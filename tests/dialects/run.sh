#!/usr/bin/env bash
# Cross-dialect compatibility test (docs/dialects.md): starts a built `tessera`,
# provisions realms and applications through the admin API, and runs each provider's
# published client code (dN_*.py) against it, then has openapi-spec-validator read
# /admin/v1/openapi.json.
# Prints one PASS/FAIL line per case and, last, `N passed, M failed`;
# exits non-zero if anything failed. See README.md beside this file.
#
# Environment: TESSERA_BIN (default target/release/tessera, else target/debug/tessera),
# DIALECTS_VERBOSE=1 (print every client's whole output), DIALECTS_KEEP=1 (keep the
# temporary directory with the server log), DIALECTS_D1_FALLBACK=1 (D1 without M2Crypto).

set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
PY="$VENV/bin/python"
DIALECTS=(d1_signed_credential d2_basic_form d3_keycloak d4_hydra d5_basic_json)

PASSED=0
FAILED=0
SERVER_PID=""
WORK=""

say() { echo "run.sh: $*" >&2; }

# A setup step failed: no dialect can run, so report one failure and stop.
setup_failed() {
    echo "FAIL setup: $*"
    echo "0 passed, 1 failed"
    exit 1
}

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${DIALECTS_KEEP:-0}" = 1 ]; then
            say "kept $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

APT_UPDATED=0
apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        say "need Debian packages $* (run as root on Debian, or install them)"
        return 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- 1. the binary ------------------------------------------------------------------
cd "$ROOT" || setup_failed "cannot cd to $ROOT"
if [ -n "${TESSERA_BIN:-}" ]; then
    BIN="$TESSERA_BIN"
    if [ ! -x "$BIN" ]; then
        case "$BIN" in
            target/debug/tessera | ./target/debug/tessera | "$ROOT/target/debug/tessera")
                say "building $BIN"; cargo build -p tessera >&2 ;;
            target/release/tessera | ./target/release/tessera | "$ROOT/target/release/tessera")
                say "building $BIN"; cargo build --release -p tessera >&2 ;;
            *) setup_failed "TESSERA_BIN=$BIN is not an executable" ;;
        esac
    fi
elif [ -x target/release/tessera ]; then
    BIN=target/release/tessera
elif [ -x target/debug/tessera ]; then
    BIN=target/debug/tessera
else
    BIN=target/release/tessera
    say "no tessera binary: building $BIN"
    cargo build --release -p tessera >&2
fi
[ -x "$BIN" ] || setup_failed "no tessera binary at $BIN"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
say "binary: $BIN"

# --- 2. tools and the Python environment ----------------------------------------------
command -v openssl >/dev/null || apt_install openssl || setup_failed "openssl is missing"
command -v python3 >/dev/null || apt_install python3 python3-venv || setup_failed "python3 is missing"
if [ ! -x "$PY" ] || ! "$PY" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >&2; then
        rm -rf "$VENV"
        apt_install python3-venv || setup_failed "python3 -m venv fails and python3-venv cannot be installed"
        python3 -m venv "$VENV" >&2 || setup_failed "python3 -m venv fails"
    fi
fi
PIP=("$PY" -m pip install -q --disable-pip-version-check)
if ! "$PY" -c 'import requests, jwt, cryptography, openapi_spec_validator' 2>/dev/null; then
    say "pip install requests pyjwt[crypto] cryptography openapi-spec-validator"
    "${PIP[@]}" requests 'pyjwt[crypto]' cryptography openapi-spec-validator >&2 ||
        setup_failed "pip install failed"
fi

# M2Crypto is what D1's page uses. It builds from source with swig, OpenSSL's and
# Python's headers and a C compiler; if it cannot be had, D1 uses its fallback, once
# noted in .venv/m2crypto-unavailable so that later runs do not try again.
if ! "$PY" -c 'import M2Crypto' 2>/dev/null && [ ! -e "$VENV/m2crypto-unavailable" ]; then
    command -v swig >/dev/null || apt_install swig || true
    [ -e /usr/include/openssl/ssl.h ] || apt_install libssl-dev || true
    command -v gcc >/dev/null || apt_install gcc || true
    PY_INCLUDE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    [ -e "$PY_INCLUDE/Python.h" ] || apt_install python3-dev || true
    say "pip install M2Crypto (builds from source)"
    if ! timeout 240 "${PIP[@]}" M2Crypto >"$VENV/m2crypto-build.log" 2>&1; then
        say "M2Crypto could not be built (see $VENV/m2crypto-build.log): D1 uses its fallback"
        touch "$VENV/m2crypto-unavailable"
    fi
fi

# --- 3. the server ---------------------------------------------------------------------
WORK="$(mktemp -d -t tessera-dialects.XXXXXX)" || setup_failed "mktemp failed"
read -r PUBLIC_PORT ADMIN_PORT < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)
[ -n "${ADMIN_PORT:-}" ] || setup_failed "could not pick free ports"
MASTER_KEY="$("$PY" -c 'import secrets; print(secrets.token_hex(32))')"
ADMIN_KEY="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')"

# Only the settings below, whatever the caller's environment holds.
for name in $(compgen -e | grep '^TESSERA_'); do
    unset "$name"
done
mkdir -p "$WORK/data"
(
    cd "$WORK" &&
        TESSERA_LISTEN="127.0.0.1:$PUBLIC_PORT" \
        TESSERA_ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
        TESSERA_DATA_DIR="$WORK/data" \
        TESSERA_MASTER_KEY="$MASTER_KEY" \
        TESSERA_ADMIN_KEY="$ADMIN_KEY" \
        TESSERA_LOG=info \
        exec "$BIN" serve
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

BASE="http://127.0.0.1:$PUBLIC_PORT"
ADMIN_URL="http://127.0.0.1:$ADMIN_PORT"
"$PY" - "$BASE/healthz" "$ADMIN_PORT" "$SERVER_PID" <<'EOF' || { tail -n 30 "$WORK/server.log" >&2; setup_failed "the server did not become healthy"; }
import os, socket, sys, time, urllib.request
url, admin_port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the server exited")
    try:
        urllib.request.urlopen(url, timeout=1).read()
        socket.create_connection(("127.0.0.1", admin_port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("timed out")
EOF
say "server up at $BASE (admin $ADMIN_URL)"

# --- 4. keys and provisioning ------------------------------------------------------------
rsa_key() {  # PKCS#1 ("BEGIN RSA PRIVATE KEY"), as D1's page expects
    openssl genrsa -traditional -out "$1" 2048 2>/dev/null || openssl genrsa -out "$1" 2048 2>/dev/null
}
rsa_key "$WORK/d1_key.pem" && rsa_key "$WORK/d1_other_key.pem" &&
    openssl rsa -in "$WORK/d1_key.pem" -pubout -out "$WORK/d1_public.pem" 2>/dev/null ||
    setup_failed "openssl could not make the D1 keys"
grep -q 'BEGIN RSA PRIVATE KEY' "$WORK/d1_key.pem" || setup_failed "openssl genrsa did not write a PKCS#1 key"

export PYTHONDONTWRITEBYTECODE=1
TESSERA_ADMIN_URL="$ADMIN_URL" TESSERA_ADMIN_KEY="$ADMIN_KEY" D1_PUBLIC_KEY="$WORK/d1_public.pem" \
    timeout 30 "$PY" "$HERE/provision.py" "$WORK/clients.json" ||
    setup_failed "provisioning through the admin API failed"

# --- 5. the dialects -----------------------------------------------------------------------
for dialect in "${DIALECTS[@]}"; do
    log="$WORK/$dialect.log"
    TESSERA_BASE="$BASE" DIALECTS_CLIENTS="$WORK/clients.json" \
        D1_PRIVATE_KEY="$WORK/d1_key.pem" D1_OTHER_PRIVATE_KEY="$WORK/d1_other_key.pem" \
        timeout 60 "$PY" "$HERE/$dialect.py" >"$log" 2>&1
    rc=$?
    grep -E '^(PASS|FAIL|NOTE) ' "$log"
    passes=$(grep -c '^PASS ' "$log")
    fails=$(grep -c '^FAIL ' "$log")
    if [ "$rc" != 0 ] && [ "$fails" = 0 ]; then
        echo "FAIL ${dialect%%_*} $dialect.py exited with status $rc"
        fails=1
    fi
    if [ "$passes" = 0 ] && [ "$fails" = 0 ]; then
        echo "FAIL ${dialect%%_*} $dialect.py reported nothing"
        fails=1
    fi
    PASSED=$((PASSED + passes))
    FAILED=$((FAILED + fails))
    if [ "${DIALECTS_VERBOSE:-0}" = 1 ] || [ "$fails" != 0 ]; then
        echo "--- output of $dialect.py:" >&2
        grep -vE '^(PASS|FAIL|NOTE) ' "$log" | tail -n 40 >&2
    fi
done

# --- 6. the OpenAPI document, read by an outside validator ---------------------------------
log="$WORK/openapi.log"
if timeout 60 "$PY" - "$ADMIN_URL/admin/v1/openapi.json" "$ADMIN_KEY" >"$log" 2>&1 <<'EOF'
import json, sys, urllib.request
from openapi_spec_validator import validate
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
document = json.load(urllib.request.urlopen(request, timeout=10))
validate(document)
print(len(document["paths"]), "paths")
EOF
then
    echo "PASS openapi /admin/v1/openapi.json is a valid OpenAPI document ($(tail -n 1 "$log"))"
    PASSED=$((PASSED + 1))
else
    echo "FAIL openapi /admin/v1/openapi.json is not a valid OpenAPI document"
    grep -v '^ ' "$log" | tail -n 10 >&2
    FAILED=$((FAILED + 1))
fi

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "FAIL server exited during the run"
    FAILED=$((FAILED + 1))
fi
if [ "$FAILED" != 0 ]; then
    echo "--- server log (last lines):" >&2
    tail -n 20 "$WORK/server.log" >&2
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
