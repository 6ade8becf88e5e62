#!/usr/bin/env bash
# Load benchmark: Tessera's token and introspection endpoints under wrk, beside two
# baselines measured in the same run (see bench/README.md).
#
#   bench/run.sh                      # DURATION=10 s per run, RUNS=3 rounds
#   DURATION=30 RUNS=5 bench/run.sh
#
# Exit status: 0 all targets met; 3 a target missed; 1 the run itself failed (a build
# error, a server that did not start or died, or any bad / non-2xx response / socket error).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-2}             # seconds of unrecorded load per scenario before the runs
CONNECTIONS=${CONNECTIONS:-64}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

die() {
  echo "" >&2
  echo "!!! BENCHMARK FAILED: $*" >&2
  exit 1
}

for v in DURATION RUNS WARMUP CONNECTIONS SERVER_CPU LOAD_CPU; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((RUNS >= 1 && DURATION >= 1)) || die "RUNS and DURATION must be at least 1"
ncpu=$(nproc --all)
((SERVER_CPU < ncpu && LOAD_CPU < ncpu && SERVER_CPU != LOAD_CPU)) ||
  die "needs two distinct CPUs (SERVER_CPU=$SERVER_CPU LOAD_CPU=$LOAD_CPU, $ncpu CPUs here)"

# ----- build and tools -------------------------------------------------------------------

echo "== cargo build --release -p tessera -p tessera-bench-baseline"
cargo build --release -p tessera -p tessera-bench-baseline || die "release build failed"
TESSERA="$ROOT/target/release/tessera"
BASELINE="$ROOT/target/release/tessera-bench-baseline"

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show wrk >/dev/null 2>&1; then
    as_root apt-get update
  fi
  as_root apt-get install -y wrk || die "could not install wrk"
fi
for tool in wrk taskset curl timeout base64; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# ----- results, temp files, clean-up -----------------------------------------------------

STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$ROOT/bench/results/$STAMP"
mkdir -p "$RESULTS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench.XXXXXX")
PIDS=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

{
  echo "date:        $(date -Is)"
  echo "commit:      $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (working tree differs)')"
  echo "cpu:         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $ncpu"
  echo "settings:    DURATION=${DURATION}s RUNS=$RUNS WARMUP=${WARMUP}s CONNECTIONS=$CONNECTIONS"
  echo "pinning:     servers on CPU $SERVER_CPU, wrk -t1 on CPU $LOAD_CPU"
  echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) at start"
  echo "wrk:         $(wrk -v 2>&1 | head -1)"
} | tee "$RESULTS/environment.txt"

# ----- servers ---------------------------------------------------------------------------

# start_server NAME PATTERN COMMAND...: starts COMMAND pinned to SERVER_CPU, logging to
# RESULTS/NAME.log, waits until the sed PATTERN finds its address in that log, and sets
# SERVER_PID[NAME] and SERVER_ADDR[NAME].
declare -A SERVER_PID SERVER_ADDR
start_server() {
  local name=$1 pattern=$2
  shift 2
  taskset -c "$SERVER_CPU" "$@" >"$RESULTS/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  SERVER_PID[$name]=$pid
  local addr=""
  for _ in $(seq 300); do
    addr=$(sed -n "$pattern" "$RESULTS/$name.log" | head -1)
    [[ -n $addr ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $addr ]]; then
    cat "$RESULTS/$name.log" >&2
    die "$name did not start (log above, also in $RESULTS/$name.log)"
  fi
  SERVER_ADDR[$name]=$addr
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

unset TESSERA_CONFIG TESSERA_DATABASE_URL TESSERA_PUBLIC_URL
export TESSERA_DATA_DIR="$TMP/data"
export TESSERA_ADMIN_KEY
TESSERA_ADMIN_KEY=$(random_hex 24)
export TESSERA_MASTER_KEY
TESSERA_MASTER_KEY=$(random_hex 32)
# Port 0: the kernel picks a free loopback port; each server prints the one it got.
export TESSERA_LISTEN=127.0.0.1:0
export TESSERA_ADMIN_LISTEN=127.0.0.1:0
export TESSERA_LOG=${TESSERA_LOG:-info}

LISTENING='s|.* listening on \([0-9.]*:[0-9]*\)$|\1|p'
start_server tessera 's|.*public endpoints: http://\([0-9.]*:[0-9]*\).*|\1|p' "$TESSERA" serve
start_server baseline-bare "$LISTENING" "$BASELINE" bare 127.0.0.1:0
start_server baseline-sign "$LISTENING" "$BASELINE" sign 127.0.0.1:0
TESSERA_ADDR=${SERVER_ADDR[tessera]}
BARE_ADDR=${SERVER_ADDR[baseline-bare]}
SIGN_ADDR=${SERVER_ADDR[baseline-sign]}
echo "servers:     tessera $TESSERA_ADDR, baseline bare $BARE_ADDR, baseline sign $SIGN_ADDR" |
  tee -a "$RESULTS/environment.txt"

curl_() { curl --noproxy '*' -sS --max-time 5 "$@"; }

for _ in $(seq 100); do
  curl_ -f "http://$TESSERA_ADDR/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl_ -f "http://$TESSERA_ADDR/healthz" >/dev/null || die "tessera /healthz does not answer"

# create_app FORMAT: prints "client_id client_secret" of a new application.
create_app() {
  local json id secret
  json=$("$TESSERA" app create --name "bench-$1" --token-format "$1" --json) ||
    die "tessera app create --token-format $1 failed"
  echo "$json" >"$RESULTS/app-$1.json.txt"
  id=$(grep -o '"client_id": *"[^"]*"' <<<"$json" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
  secret=$(grep -o '"client_secret": *"[^"]*"' <<<"$json" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
  [[ -n $id && -n $secret ]] || die "no client_id/client_secret in: $json"
  echo "$id $secret"
}
creds=$(create_app jwt)
read -r JWT_ID JWT_SECRET <<<"$creds"
creds=$(create_app opaque)
read -r OPAQUE_ID OPAQUE_SECRET <<<"$creds"
# The secrets stay out of the saved app-*.json.txt files.
sed -i 's/"client_secret": *"[^"]*"/"client_secret": "(removed)"/' "$RESULTS"/app-*.json.txt
JWT_AUTH="Basic $(printf '%s:%s' "$JWT_ID" "$JWT_SECRET" | base64 -w0)"
OPAQUE_AUTH="Basic $(printf '%s:%s' "$OPAQUE_ID" "$OPAQUE_SECRET" | base64 -w0)"

# fetch_token AUTH: the access_token of one client_credentials request. The CLI writes
# the store directly and the server picks changes up within a second, so retry a while.
fetch_token() {
  local body=""
  for _ in $(seq 50); do
    body=$(curl_ -H "Authorization: $1" -d grant_type=client_credentials \
      "http://$TESSERA_ADDR/oauth2/token" 2>/dev/null || true)
    [[ $body == *'"access_token":"'* ]] && break
    sleep 0.1
  done
  [[ $body == *'"access_token":"'* ]] || die "no token from tessera: $body"
  # shellcheck disable=SC2001  # a regex capture, not a plain replacement
  sed 's/.*"access_token":"\([^"]*\)".*/\1/' <<<"$body"
}
jwt_sample=$(fetch_token "$JWT_AUTH")
[[ $jwt_sample == eyJ*.*.* ]] || die "the jwt application got a non-JWT token: $jwt_sample"
OPAQUE_TOKEN=$(fetch_token "$OPAQUE_AUTH")
[[ $OPAQUE_TOKEN != *.*.* ]] || die "the opaque application got a JWT: $OPAQUE_TOKEN"
check=$(curl_ -H "Authorization: $OPAQUE_AUTH" --data-urlencode "token=$OPAQUE_TOKEN" \
  "http://$TESSERA_ADDR/oauth2/introspect") || die "introspection request failed"
[[ $check == *'"active":true'* ]] || die "introspection of a fresh token is not active: $check"
echo "tokens:      jwt ${#jwt_sample} chars, opaque ${#OPAQUE_TOKEN} chars" |
  tee -a "$RESULTS/environment.txt"

# ----- scenarios -------------------------------------------------------------------------

SCENARIOS=(bare sign jwt opaque introspect)
declare -A LABEL URL AUTH BODY EXPECT SERVER
LABEL[bare]="(a) baseline bare"
LABEL[sign]="(b) baseline sign (ES256)"
LABEL[jwt]="(c) tessera token, JWT ES256"
LABEL[opaque]="(d) tessera token, opaque"
LABEL[introspect]="(e) tessera introspect"
URL[bare]="http://$BARE_ADDR/oauth2/token"
URL[sign]="http://$SIGN_ADDR/oauth2/token"
URL[jwt]="http://$TESSERA_ADDR/oauth2/token"
URL[opaque]="http://$TESSERA_ADDR/oauth2/token"
URL[introspect]="http://$TESSERA_ADDR/oauth2/introspect"
# The baselines get the very bytes the opaque scenario sends.
AUTH[bare]=$OPAQUE_AUTH AUTH[sign]=$OPAQUE_AUTH AUTH[jwt]=$JWT_AUTH
AUTH[opaque]=$OPAQUE_AUTH AUTH[introspect]=$OPAQUE_AUTH
for s in bare sign jwt opaque; do BODY[$s]="grant_type=client_credentials"; done
# Opaque tokens are base64url after their prefix: nothing to percent-encode.
BODY[introspect]="token=$OPAQUE_TOKEN"
EXPECT[bare]='{"access_token":"tessera-bench-baseline","token_type":"Bearer","expires_in":3600}'
EXPECT[sign]='","token_type":"Bearer","expires_in":3600}'
EXPECT[jwt]='"access_token":"eyJ'
EXPECT[opaque]='"access_token":"'
EXPECT[introspect]='"active":true'
SERVER[bare]=baseline-bare SERVER[sign]=baseline-sign
SERVER[jwt]=tessera SERVER[opaque]=tessera SERVER[introspect]=tessera

# to_us VALUE: wrk's "123.45us" / "1.20ms" / "2.00s" in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
    m = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1e6 : (u == "m") ? 6e7 : (u == "h") ? 3.6e9 : -1
    if (m < 0 || n == "") exit 1
    printf "%.1f", n * m
  }'
}

# field FILE PATTERN: the number after PATTERN= on a "bench:" line.
field() { sed -n "s/^bench: .*\b$2=\([0-9]*\).*/\1/p" "$1" | head -1; }

CLK_TCK=$(getconf CLK_TCK)
# proc_cpu PID: "USER SYSTEM", the CPU seconds (all threads) the process has used so far.
proc_cpu() {
  sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$CLK_TCK" '{ printf "%.2f %.2f", $12 / hz, $13 / hz }'
}
# children_cpu VAR: sets VAR to the CPU seconds used by this shell's finished children
# (wrk among them). Not called as $(...): `times` in a subshell would count nothing.
children_cpu() {
  times >"$TMP/times"
  printf -v "$1" '%s' "$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } printf "%.2f", t }' "$TMP/times")"
}
# cpu_busy N: seconds CPU N has been busy (all processes), from /proc/stat.
cpu_busy() {
  awk -v cpu="cpu$1" -v hz="$CLK_TCK" '$1 == cpu { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}
now() { date +%s.%N; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }

RECORDS="$RESULTS/runs.tsv"
printf 'scenario\trun\treq_s\tp50_us\tp99_us\terrors\tnon2xx\tloadavg\tserver_cpu_pct\twrk_cpu_pct\tserver_user_us_per_req\tserver_sys_us_per_req\tothers_on_server_cpu_pct\n' >"$RECORDS"

# run_wrk SCENARIO RUN SECONDS: one wrk run, checked; RUN "warmup" is not recorded.
run_wrk() {
  local s=$1 run=$2 secs=$3
  local out="$RESULTS/$s.$run.txt" load
  local pid=${SERVER_PID[${SERVER[$s]}]}
  load=$(cut -d' ' -f1 /proc/loadavg)
  printf '   %-30s run %-6s ' "${LABEL[$s]}" "$run"
  local usr0 sys0 wrk0 t0 busy0 usr1 sys1 wrk1 t1 busy1
  read -r usr0 sys0 <<<"$(proc_cpu "$pid")"
  busy0=$(cpu_busy "$SERVER_CPU")
  children_cpu wrk0
  t0=$(now)
  if ! BENCH_AUTH=${AUTH[$s]} BENCH_BODY=${BODY[$s]} BENCH_EXPECT=${EXPECT[$s]} \
    timeout $((secs + 60)) taskset -c "$LOAD_CPU" \
    wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --latency -s "$ROOT/bench/wrk.lua" "${URL[$s]}" \
    >"$out" 2>&1; then
    echo
    cat "$out" >&2
    die "wrk failed for $s run $run (output above, also in $out)"
  fi
  t1=$(now)
  children_cpu wrk1
  kill -0 "$pid" 2>/dev/null || die "${SERVER[$s]} died during $s run $run (log: $RESULTS/${SERVER[$s]}.log)"
  read -r usr1 sys1 <<<"$(proc_cpu "$pid")"
  busy1=$(cpu_busy "$SERVER_CPU")

  local rps p50 p99 checked bad_status bad_body socket non2xx
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(awk '$1 == "50%" { print $2 }' "$out")
  p99=$(awk '$1 == "99%" { print $2 }' "$out")
  checked=$(field "$out" checked)
  bad_status=$(field "$out" bad_status)
  bad_body=$(field "$out" bad_body)
  socket=$(field "$out" socket_errors)
  non2xx=$(field "$out" non2xx)
  non2xx_wrk=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$out")
  if [[ -z $rps || -z $p50 || -z $p99 || -z $checked || -z $bad_status || -z $bad_body ||
    -z $socket || -z $non2xx ]]; then
    echo
    cat "$out" >&2
    die "could not read wrk's output for $s run $run (above, also in $out)"
  fi
  p50=$(to_us "$p50") || die "bad p50 in $out"
  p99=$(to_us "$p99") || die "bad p99 in $out"
  non2xx=$((non2xx > ${non2xx_wrk:-0} ? non2xx : ${non2xx_wrk:-0}))
  local errors=$((bad_status + bad_body + socket))
  # How busy the server's core and wrk's core were: below ~95% for the server means
  # it was not the bottleneck (wrk was, or other processes took the core).
  local wall srv srv_pct wrk_pct others_pct usr_us sys_us
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  srv=$(awk -v a="$usr0" -v b="$sys0" -v c="$usr1" -v d="$sys1" 'BEGIN { print c + d - a - b }')
  srv_pct=$(pct "$srv" "$wall")
  wrk_pct=$(pct "$(awk -v a="$wrk0" -v b="$wrk1" 'BEGIN { print b - a }')" "$wall")
  # What else ran on the server's CPU meanwhile (other processes, interrupts).
  others_pct=$(pct "$(awk -v a="$busy0" -v b="$busy1" -v s="$srv" 'BEGIN { d = b - a - s; print (d > 0) ? d : 0 }')" "$wall")
  # The server's CPU time per checked request, in microseconds: user and kernel.
  usr_us=$(awk -v n="$checked" -v a="$usr0" -v b="$usr1" 'BEGIN { printf "%.1f", 1e6 * (b - a) / n }')
  sys_us=$(awk -v n="$checked" -v a="$sys0" -v b="$sys1" 'BEGIN { printf "%.1f", 1e6 * (b - a) / n }')
  printf '%7.0f req/s  p50 %5.2f ms  p99 %6.2f ms  CPU: server %3s%% others %3s%% wrk %3s%%  %5.1f us/req  errors %s, non-2xx %s\n' \
    "$rps" "$(awk -v u="$p50" 'BEGIN { print u / 1000 }')" "$(awk -v u="$p99" 'BEGIN { print u / 1000 }')" \
    "$srv_pct" "$others_pct" "$wrk_pct" "$(awk -v a="$usr_us" -v b="$sys_us" 'BEGIN { print a + b }')" \
    "$errors" "$non2xx"
  if ((errors > 0 || non2xx > 0 || checked == 0)); then
    grep '^bench:' "$out" >&2 || true
    die "$s run $run: $errors bad responses or socket errors, $non2xx non-2xx, $checked checked (raw output: $out)"
  fi
  if [[ $run != warmup ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$run" "$rps" "$p50" "$p99" \
      "$errors" "$non2xx" "$load" "$srv_pct" "$wrk_pct" "$usr_us" "$sys_us" "$others_pct" >>"$RECORDS"
  fi
}

echo
echo "== load: wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency, $RUNS round(s) of ${SCENARIOS[*]}"
if ((WARMUP > 0)); then
  for s in "${SCENARIOS[@]}"; do run_wrk "$s" warmup "$WARMUP"; done
fi
# Rounds interleave the scenarios, so that a slow spell on the machine (other builds)
# falls on every scenario alike rather than on whichever ran then.
for run in $(seq "$RUNS"); do
  for s in "${SCENARIOS[@]}"; do run_wrk "$s" "$run" "$DURATION"; done
done

# ----- report ----------------------------------------------------------------------------

# median SCENARIO COLUMN: the median of that column over the recorded runs.
median() {
  awk -F'\t' -v s="$1" -v c="$2" 'NR > 1 && $1 == s { print $c }' "$RECORDS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
sum_errors() {
  awk -F'\t' -v s="$1" 'NR > 1 && $1 == s { n += $6 + $7 } END { print n + 0 }' "$RECORDS"
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }

declare -A RPS P50 P99 ERR SRV WRK USR SYS COST
for s in "${SCENARIOS[@]}"; do
  RPS[$s]=$(median "$s" 3)
  P50[$s]=$(median "$s" 4)
  P99[$s]=$(median "$s" 5)
  ERR[$s]=$(sum_errors "$s")
  SRV[$s]=$(median "$s" 9)
  WRK[$s]=$(median "$s" 10)
  USR[$s]=$(median "$s" 11)
  SYS[$s]=$(median "$s" 12)
  # Median over runs of user + kernel µs per request.
  COST[$s]=$(awk -F'\t' -v s="$s" 'NR > 1 && $1 == s { print $11 + $12 }' "$RECORDS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
done

declare -A BASE=([jwt]=sign [opaque]=bare [introspect]=bare)
declare -A TARGET=([jwt]=70 [opaque]=50 [introspect]=50)
failed=0
SUMMARY="$RESULTS/summary.md"
{
  echo "| scenario | req/s (median) | p50 | p99 | errors | ratio vs baseline | target | result | server CPU | wrk CPU | server CPU per request (user + kernel) |"
  echo "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|"
  for s in "${SCENARIOS[@]}"; do
    ratio="-" target="-" result="-"
    if [[ -n ${BASE[$s]:-} ]]; then
      b=${BASE[$s]}
      pct=$(awk -v a="${RPS[$s]}" -v b="${RPS[$b]}" 'BEGIN { printf "%.1f", 100 * a / b }')
      ratio="$pct% of $b"
      target=">= ${TARGET[$s]}% of $b"
      if awk -v p="$pct" -v t="${TARGET[$s]}" 'BEGIN { exit !(p >= t) }'; then
        result=PASS
      else
        result=FAIL
        failed=$((failed + 1))
      fi
    fi
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %.0f%% | %.0f%% | %.1f µs (%.1f + %.1f) |\n' \
      "${LABEL[$s]}" "${RPS[$s]}" "$(ms "${P50[$s]}")" "$(ms "${P99[$s]}")" "${ERR[$s]}" "$ratio" \
      "$target" "$result" "${SRV[$s]}" "${WRK[$s]}" "${COST[$s]}" "${USR[$s]}" "${SYS[$s]}"
  done
  echo
  echo "Medians of $RUNS run(s) of ${DURATION}s each, wrk -t1 -c$CONNECTIONS on CPU $LOAD_CPU, each server on CPU $SERVER_CPU."
  echo "Server CPU / wrk CPU: share of one core each used during the run (a server well below"
  echo "100% was not the bottleneck: wrk was, or other processes took its core)."
  awk -F'\t' 'NR > 1 { n++; if ($9 < 90) { low++; list = list sep $1 "." $2 " " $9 "%"; sep = ", " } }
    END { if (low) printf "Runs whose server used under 90%% of its core (noisy): %d of %d (%s).\n", low, n, list
          else printf "The server under test used at least 90%% of its core in every run.\n" }' "$RECORDS"
  sep="The same ratios from server CPU per request instead of req/s (steadier on a busy machine): "
  for s in jwt opaque introspect; do
    printf '%s%s %s%% of %s' "$sep" "$s" \
      "$(awk -v a="${COST[$s]}" -v b="${COST[${BASE[$s]}]}" 'BEGIN { printf "%.1f", (a > 0) ? 100 * b / a : 0 }')" \
      "${BASE[$s]}"
    sep=", "
  done
  echo "."
  echo "Per-run req/s:"
  for s in "${SCENARIOS[@]}"; do
    echo "- ${LABEL[$s]}: $(awk -F'\t' -v s="$s" 'NR > 1 && $1 == s { printf "%s%s", sep, $3; sep = ", " }' "$RECORDS")"
  done
} >"$SUMMARY"

echo
echo "== results (raw output in ${RESULTS#"$ROOT"/})"
echo
cat "$SUMMARY"
echo
if ((failed > 0)); then
  echo "$failed target(s) missed."
  exit 3
fi
echo "All targets met."
