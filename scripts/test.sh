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
