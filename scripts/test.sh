#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, and the test suites.
# This is the README's test command; CI (.ci/run) calls it after preparing the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

# The providers' own sample clients (../shared/dialects), run against the debug build
# that cargo test just made.
echo "== dialect sample clients"
cargo build -p tessera --locked
TESSERA_BIN="${CARGO_TARGET_DIR:-target}/debug/tessera" tests/dialects/run.sh
