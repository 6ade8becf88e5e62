#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a short while (CI's smoke
# run; see fuzz/README.md for longer runs). Fails on any crash, printing the input.
#
#   scripts/fuzz.sh [target...]     all targets, or only those named
#
#   FUZZ_SECONDS    how long each target runs (default 20)
#   FUZZ_JOBS       how many targets run at once (default: the number of CPUs)
#   FUZZ_SANITIZER  none (default) or address: ASan finds no more in safe Rust, and
#                   doubles the build time
#   FUZZ_TARGET_DIR where the fuzz build goes (default fuzz/target, apart from the
#                   main build's target directory, whatever CARGO_TARGET_DIR says)
#
# cargo-fuzz needs nightly flags; the stable toolchain is told to accept them with
# RUSTC_BOOTSTRAP=1, here only. cargo-fuzz is installed when missing, and a C++ compiler
# (libFuzzer is C++) when missing and run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
sanitizer=${FUZZ_SANITIZER:-none}

if ! command -v c++ >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing a C++ compiler for libFuzzer"
    apt-get update -qq && apt-get install -y -qq g++ >/dev/null
  else
    echo "libFuzzer needs a C++ compiler (c++); install g++ or clang" >&2
    exit 1
  fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  # Its own temporary target directory, not the fuzz build's or the main build's.
  env -u CARGO_TARGET_DIR cargo install cargo-fuzz --locked --quiet
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$root/fuzz/target}

cd "$root/fuzz"
# fuzz/Cargo.lock pins what the targets build with. When a crate of the workspace
# gained a dependency, the lock is behind: cargo adds what is missing and keeps every
# other pin (cargo fuzz has no --locked to refuse that instead).
if ! cargo metadata --locked --format-version 1 >/dev/null 2>&1; then
  echo "== fuzz/Cargo.lock is behind the workspace's manifests; updating it (commit that)"
  cargo metadata --format-version 1 >/dev/null
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
start=$(date +%s)
# Every target at once (one cargo run: the dependencies are built once for all). With
# 16 codegen units, not cargo-fuzz's 1: a much shorter build, for runs a little slower.
cargo fuzz build --sanitizer "$sanitizer" --debug-assertions --codegen-units 16 2>&1 \
  | { grep -v '^ *Compiling ' || true; }
bin_dir=$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release
for target in "${targets[@]}"; do
  [ -x "$bin_dir/$target" ] || { echo "fuzz target $target was not built" >&2; exit 1; }
done
echo "   built in $(( $(date +%s) - start )) s"

# The targets' SQLite store lives in memory when it can.
scratch=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/tessera-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$root/fuzz/artifacts" "$root/fuzz/corpus"

run() {
  local target=$1 log=$scratch/$1.log
  local corpus=$root/fuzz/corpus/$target artifacts=$root/fuzz/artifacts/$target/
  mkdir -p "$corpus" "$artifacts" "$scratch/$target"
  local seeds=()
  [ -d "$root/fuzz/seeds/$target" ] && seeds=("$root/fuzz/seeds/$target")
  # New inputs go to the corpus (kept between local runs); the seeds are only read.
  if TESSERA_FUZZ_TMP=$scratch/$target "$bin_dir/$target" "$corpus" "${seeds[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1; then
    echo ok >"$scratch/$target.status"
    printf '   %-20s ok: %s runs, %s inputs in the corpus\n' "$target" \
      "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
      "$(find "$corpus" -type f | wc -l)"
  else
    echo "!! $target FAILED; its log ends:"
    tail -n 60 "$log"
    local input
    input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [ -n "$input" ]; then
      echo "!! crashing input: $input"
      echo "!! base64: $(base64 -w0 "$input")"
      echo "!! reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer -a --codegen-units 16 $target $input  (in fuzz/)"
    fi
    return 1
  fi
}

echo "== running each target for ${seconds} s, $jobs at a time"
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  run "$target" &
done
wait
failed=()
for target in "${targets[@]}"; do
  [ -f "$scratch/$target.status" ] || failed+=("$target")
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "!! fuzz targets failed: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "== fuzzing: no crash in ${#targets[@]} targets ($(( $(date +%s) - start )) s with the build)"
