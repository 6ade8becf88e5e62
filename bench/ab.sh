#!/usr/bin/env bash
# Two builds of tessera side by side: short wrk runs against each in turn, many rounds,
# and the median server CPU per request of each (see bench/README.md, "Two builds side
# by side"). Interleaving makes a busy, noisy machine hit both builds alike, which two
# run.sh reports taken minutes apart do not.
#
#   bench/ab.sh OLD_BIN_DIR NEW_BIN_DIR [opaque|introspect|jwt] [ROUNDS]
#   bench/ab.sh ../old/target/release target/release opaque 16
#
# Each directory holds a release `tessera`. Both servers run at once on CPU SERVER_CPU
# (only one is loaded at a time), wrk -t1 -c64 on CPU LOAD_CPU, DURATION s per run.
set -euo pipefail

OLD=${1:?usage: bench/ab.sh OLD_BIN_DIR NEW_BIN_DIR [opaque|introspect|jwt] [ROUNDS]}
NEW=${2:?usage: bench/ab.sh OLD_BIN_DIR NEW_BIN_DIR [opaque|introspect|jwt] [ROUNDS]}
SCENARIO=${3:-opaque}
ROUNDS=${4:-10}
DURATION=${DURATION:-5}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

die() {
  echo "!!! $*" >&2
  exit 1
}
[[ $SCENARIO == opaque || $SCENARIO == introspect || $SCENARIO == jwt ]] ||
  die "the scenario is opaque, introspect or jwt, not '$SCENARIO'"
for v in ROUNDS DURATION SERVER_CPU LOAD_CPU; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
for dir in "$OLD" "$NEW"; do
  [[ -x $dir/tessera ]] || die "no tessera binary in $dir"
done
for tool in wrk taskset curl base64 od; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-ab.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
json_field() { grep -o "\"$1\": *\"[^\"]*\"" | head -1 | sed 's/.*"\([^"]*\)"$/\1/'; }

declare -A PID ADDR TARGET
unset TESSERA_CONFIG TESSERA_DATABASE_URL TESSERA_PUBLIC_URL
export TESSERA_LISTEN=127.0.0.1:0 TESSERA_ADMIN_LISTEN=127.0.0.1:0 TESSERA_LOG=info
for side in old new; do
  bin=$OLD
  [[ $side == new ]] && bin=$NEW
  export TESSERA_DATA_DIR="$TMP/data-$side"
  TESSERA_ADMIN_KEY=$(random_hex 24) TESSERA_MASTER_KEY=$(random_hex 32)
  export TESSERA_ADMIN_KEY TESSERA_MASTER_KEY
  taskset -c "$SERVER_CPU" "$bin/tessera" serve >"$TMP/$side.log" 2>&1 &
  PID[$side]=$!
  PIDS+=("${PID[$side]}")
  addr=""
  for _ in $(seq 100); do
    addr=$(sed -n 's|.*public endpoints: http://\([0-9.]*:[0-9]*\).*|\1|p' "$TMP/$side.log" | head -1)
    [[ -n $addr ]] && break
    sleep 0.1
  done
  [[ -n $addr ]] || die "the $side server did not start: $(cat "$TMP/$side.log")"
  ADDR[$side]=$addr
  format=opaque
  [[ $SCENARIO == jwt ]] && format=jwt
  app=$("$bin/tessera" app create --name "ab-$side" --token-format "$format" --json)
  auth="Basic $(printf '%s:%s' "$(json_field client_id <<<"$app")" "$(json_field client_secret <<<"$app")" | base64 -w0)"
  body=""
  for _ in $(seq 50); do
    body=$(curl -sS --noproxy '*' -H "Authorization: $auth" -d grant_type=client_credentials \
      "http://$addr/oauth2/token" 2>/dev/null || true)
    [[ $body == *'"access_token":"'* ]] && break
    sleep 0.1
  done
  [[ $body == *'"access_token":"'* ]] || die "no token from the $side server: $body"
  path=oauth2/token form=grant_type=client_credentials
  if [[ $SCENARIO == introspect ]]; then
    path=oauth2/introspect
    form="token=$(sed 's/.*"access_token":"\([^"]*\)".*/\1/' <<<"$body")"
  fi
  cat >"$TMP/$side.lua" <<LUA
wrk.method = "POST"
wrk.body = "$form"
wrk.headers["Authorization"] = "$auth"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
  TARGET[$side]="http://$addr/$path"
  taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s -s "$TMP/$side.lua" "${TARGET[$side]}" >/dev/null
done

# cpu_ticks PID: user + system clock ticks the process has used so far.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
hz=$(getconf CLK_TCK)
echo "scenario $SCENARIO, $ROUNDS rounds of ${DURATION}s each, old = $OLD, new = $NEW"
for round in $(seq "$ROUNDS"); do
  for side in old new; do
    before=$(cpu_ticks "${PID[$side]}")
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" -s "$TMP/$side.lua" "${TARGET[$side]}")
    after=$(cpu_ticks "${PID[$side]}")
    grep -q "Non-2xx" <<<"$out" && die "the $side server answered non-2xx: $out"
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    awk -v s="$side" -v r="$round" -v n="$requests" -v t=$((after - before)) -v hz="$hz" -v d="$DURATION" \
      'BEGIN { printf "%s\t%s\t%.0f\t%.2f\n", s, r, n / d, t / hz * 1e6 / n }' | tee -a "$TMP/runs.tsv"
  done
done

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
old_us=$(awk '$1 == "old" { print $4 }' "$TMP/runs.tsv" | median)
new_us=$(awk '$1 == "new" { print $4 }' "$TMP/runs.tsv" | median)
old_rps=$(awk '$1 == "old" { print $3 }' "$TMP/runs.tsv" | median)
new_rps=$(awk '$1 == "new" { print $3 }' "$TMP/runs.tsv" | median)
echo ""
echo "| build | req/s (median) | server CPU per request (median) |"
echo "|---|---:|---:|"
echo "| old | $old_rps | $old_us us |"
echo "| new | $new_rps | $new_us us |"
awk -v o="$old_us" -v n="$new_us" 'BEGIN { printf "new / old, CPU per request: %.1f%%\n", 100 * n / o }'
