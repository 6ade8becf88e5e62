#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, the test suites, the
# OpenAPI document against the server, and a short run of every fuzz target.
# This is the README's test command; CI (.ci/run) calls it after preparing the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

# The HTTP suite again, every test server on a PostgreSQL schema of its own. The test
# binary cargo just built is run directly: `cargo test -p tessera-server` would unify
# features differently from the workspace build and compile the dependencies again.
echo "== HTTP suite on PostgreSQL"
http_suite=$(cargo test --workspace --locked --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if (m.get("reason") == "compiler-artifact" and m["target"]["name"] == "it"
            and "tessera-server" in m["package_id"] and m.get("executable")):
        print(m["executable"])
')
[ -x "$http_suite" ] || { echo "cannot find the tessera-server HTTP suite binary" >&2; exit 1; }
(cd crates/server && TESSERA_TEST_STORE=postgres "$http_suite")

# The providers' own sample clients (tests/dialects/, see docs/dialects.md), run against
# the debug binary that cargo test just built for the CLI's tests (`cargo build -p
# tessera` would unify features differently and compile again).
echo "== dialect sample clients"
TESSERA_BIN="${CARGO_TARGET_DIR:-target}/debug/tessera" tests/dialects/run.sh

# The dashboard in headless Chromium (Debian's; installed when missing), same binary.
echo "== dashboard in a browser"
TESSERA_BIN="${CARGO_TARGET_DIR:-target}/debug/tessera" tests/dashboard/run.sh

# Schemathesis against the OpenAPI document of the admin API and the public endpoints
# (PyPI, in a virtual environment of its own): no 5xx, no answer outside the document.
echo "== schemathesis against the OpenAPI document"
TESSERA_BIN="${CARGO_TARGET_DIR:-target}/debug/tessera" tests/schema/run.sh

# Every cargo-fuzz target for a short while (fuzz/README.md for longer runs).
echo "== fuzz targets"
scripts/fuzz.sh
