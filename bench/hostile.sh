#!/usr/bin/env bash
# Hostile traffic: good clients' token requests under wrk, quiet and while an attacker
# holds thousands of slow sockets and guesses client secrets (see bench/README.md,
# "Hostile traffic"). Also the server's memory before, during and after the attack.
#
#   bench/hostile.sh                      # DURATION=10 s per run, RUNS=3 rounds
#   DURATION=20 RUNS=5 SOCKETS=30000 bench/hostile.sh
#
# Exit status: 0 all targets met; 3 a target missed; 1 the run itself failed (a build
# error, a server that did not start or died, a bad response or socket error in a quiet
# run, an attacker that failed).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-2}             # seconds of unrecorded load per format before the rounds
CONNECTIONS=${CONNECTIONS:-64}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ATTACK_CPU=${ATTACK_CPU:-$LOAD_CPU}
FORMATS=${FORMATS:-"opaque jwt"}
SOCKETS=${SOCKETS:-20000}       # slow sockets the attacker holds
ADDRESSES=${ADDRESSES:-100}     # source addresses they are spread over (127.1.x.y)
REOPEN_MS=${REOPEN_MS:-1000}    # mean pause before a closed slow socket is reopened
BAD_RPS=${BAD_RPS:-1000}        # wrong-credential requests per second
BAD_ADDRESSES=${BAD_ADDRESSES:-4} # addresses they come from (127.2.0.x)
RAMP=${RAMP:-8}                 # seconds between the attack's start and the first measured run
SETTLE=${SETTLE:-10}            # seconds after the attack before "RSS after" is read
MIN_RATIO=${MIN_RATIO:-80}      # target: % of the quiet req/s kept under attack
MAX_RSS_MB=${MAX_RSS_MB:-256}   # target: peak RSS under attack
AFTER_PCT=${AFTER_PCT:-120}     # target: RSS after the attack, % of idle

die() {
  echo "" >&2
  echo "!!! BENCHMARK FAILED: $*" >&2
  exit 1
}

for v in DURATION RUNS WARMUP CONNECTIONS SERVER_CPU LOAD_CPU ATTACK_CPU SOCKETS ADDRESSES \
  REOPEN_MS BAD_RPS BAD_ADDRESSES RAMP SETTLE MIN_RATIO MAX_RSS_MB AFTER_PCT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((RUNS >= 1 && DURATION >= 1)) || die "RUNS and DURATION must be at least 1"
((ADDRESSES >= 1 && ADDRESSES <= 62500 && BAD_ADDRESSES >= 1 && BAD_ADDRESSES <= 250)) ||
  die "ADDRESSES must be 1..62500 and BAD_ADDRESSES 1..250"
ncpu=$(nproc --all)
((SERVER_CPU < ncpu && LOAD_CPU < ncpu && ATTACK_CPU < ncpu && SERVER_CPU != LOAD_CPU)) ||
  die "needs two distinct CPUs (SERVER_CPU=$SERVER_CPU LOAD_CPU=$LOAD_CPU, $ncpu CPUs here)"
for f in $FORMATS; do
  [[ $f == opaque || $f == jwt ]] || die "FORMATS lists opaque and/or jwt, not '$f'"
done

# The attacker needs a descriptor per slow socket. Raise the soft limit as far as the hard
# one allows (tessera raises its own soft limit to the hard one it inherits from here);
# when one process cannot hold every socket, the attack is split over several.
want_fds=$((SOCKETS + 4096))
if (($(ulimit -n) < want_fds)); then
  ulimit -Hn "$want_fds" 2>/dev/null || true
  ulimit -n "$(($(ulimit -Hn) < want_fds ? $(ulimit -Hn) : want_fds))" ||
    die "cannot raise the descriptor limit"
fi
PER_ATTACKER=$(($(ulimit -n) - 1024))
((PER_ATTACKER >= 1000)) || die "the descriptor limit $(ulimit -n) is too low for the attacker"
ATTACKERS=$(((SOCKETS + PER_ATTACKER - 1) / PER_ATTACKER))
PER_ATTACKER=$(((SOCKETS + ATTACKERS - 1) / ATTACKERS))

# ----- build and tools -------------------------------------------------------------------

echo "== cargo build --release -p tessera -p tessera-bench-baseline"
cargo build --release -p tessera -p tessera-bench-baseline || die "release build failed"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TESSERA="$TARGET_DIR/release/tessera"
HOSTILE="$TARGET_DIR/release/tessera-bench-hostile"
[[ -x $TESSERA && -x $HOSTILE ]] || die "no $TESSERA or $HOSTILE after the build"

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
for tool in wrk taskset curl timeout base64 ss; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# ----- results, temp files, clean-up -----------------------------------------------------

STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$ROOT/bench/results/$STAMP-hostile"
mkdir -p "$RESULTS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-hostile.XXXXXX")
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
  echo "settings:    DURATION=${DURATION}s RUNS=$RUNS WARMUP=${WARMUP}s CONNECTIONS=$CONNECTIONS FORMATS='$FORMATS'"
  echo "attack:      SOCKETS=$SOCKETS over ADDRESSES=$ADDRESSES REOPEN_MS=$REOPEN_MS BAD_RPS=$BAD_RPS from BAD_ADDRESSES=$BAD_ADDRESSES RAMP=${RAMP}s SETTLE=${SETTLE}s"
  echo "pinning:     tessera on CPU $SERVER_CPU, wrk -t1 on CPU $LOAD_CPU, attacker on CPU $ATTACK_CPU"
  echo "fd limit:    $(ulimit -n) (the attack is split over $ATTACKERS process(es) of up to $PER_ATTACKER sockets)"
  echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) at start"
  echo "wrk:         $(wrk -v 2>&1 | head -1)"
} | tee "$RESULTS/environment.txt"

# ----- the server ------------------------------------------------------------------------

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

unset TESSERA_CONFIG TESSERA_DATABASE_URL TESSERA_PUBLIC_URL
export TESSERA_DATA_DIR="$TMP/data"
export TESSERA_ADMIN_KEY
TESSERA_ADMIN_KEY=$(random_hex 24)
export TESSERA_MASTER_KEY
TESSERA_MASTER_KEY=$(random_hex 32)
export TESSERA_LISTEN=127.0.0.1:0
export TESSERA_ADMIN_LISTEN=127.0.0.1:0
export TESSERA_LOG=${TESSERA_LOG:-info}

taskset -c "$SERVER_CPU" "$TESSERA" serve >"$RESULTS/tessera.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
ADDR=""
for _ in $(seq 300); do
  ADDR=$(sed -n 's|.*public endpoints: http://\([0-9.]*:[0-9]*\).*|\1|p' "$RESULTS/tessera.log" | head -1)
  [[ -n $ADDR ]] && break
  kill -0 "$SERVER" 2>/dev/null || break
  sleep 0.1
done
[[ -n $ADDR ]] || {
  cat "$RESULTS/tessera.log" >&2
  die "tessera did not start (log above, also in $RESULTS/tessera.log)"
}
PORT=${ADDR##*:}
echo "server:      tessera $ADDR, pid $SERVER, descriptor limit $(awk '/Max open files/ { print $4 }' "/proc/$SERVER/limits")" |
  tee -a "$RESULTS/environment.txt"

curl_() { curl --noproxy '*' -sS --max-time 5 "$@"; }
for _ in $(seq 100); do
  curl_ -f "http://$ADDR/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl_ -f "http://$ADDR/healthz" >/dev/null || die "tessera /healthz does not answer"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER/status"; }
fds() { find "/proc/$SERVER/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
RSS_FRESH=$(rss_kb)

# create_app FORMAT: prints "client_id client_secret" of a new application.
create_app() {
  local json id secret
  json=$("$TESSERA" app create --name "hostile-$1" --token-format "$1" --json) ||
    die "tessera app create --token-format $1 failed"
  id=$(grep -o '"client_id": *"[^"]*"' <<<"$json" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
  secret=$(grep -o '"client_secret": *"[^"]*"' <<<"$json" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
  [[ -n $id && -n $secret ]] || die "no client_id/client_secret in: $json"
  echo "$id $secret"
}
declare -A CLIENT AUTH EXPECT
EXPECT[opaque]='"access_token":"'
EXPECT[jwt]='"access_token":"eyJ'
for f in opaque jwt; do
  read -r id secret <<<"$(create_app "$f")"
  CLIENT[$f]=$id
  AUTH[$f]="Basic $(printf '%s:%s' "$id" "$secret" | base64 -w0)"
done
# The CLI writes the store; the server picks the applications up within a second.
for f in opaque jwt; do
  body=""
  for _ in $(seq 50); do
    body=$(curl_ -H "Authorization: ${AUTH[$f]}" -d grant_type=client_credentials \
      "http://$ADDR/oauth2/token" 2>/dev/null || true)
    [[ $body == *"${EXPECT[$f]}"* ]] && break
    sleep 0.1
  done
  [[ $body == *"${EXPECT[$f]}"* ]] || die "no $f token from tessera: $body"
done

# ----- measuring -------------------------------------------------------------------------

to_us() {
  awk -v v="$1" 'BEGIN {
    n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
    m = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1e6 : (u == "m") ? 6e7 : (u == "h") ? 3.6e9 : -1
    if (m < 0 || n == "") exit 1
    printf "%.1f", n * m
  }'
}
field() { sed -n "s/^bench: .*\b$2=\([0-9]*\).*/\1/p" "$1" | head -1; }
CLK_TCK=$(getconf CLK_TCK)
proc_cpu() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$CLK_TCK" '{ printf "%.2f", ($12 + $13) / hz }'; }
now() { date +%s.%N; }

RECORDS="$RESULTS/runs.tsv"
printf 'scenario\trun\treq_s\tp50_us\tp99_us\tbad\tsocket_errors\tnon2xx\tloadavg\tserver_cpu_pct\n' >"$RECORDS"

# run_wrk FORMAT STATE RUN: one wrk run of good clients; STATE quiet or attack; RUN
# "warmup" is not recorded. A bad response in a quiet run stops the script; under attack
# bad responses, non-2xx and socket errors are recorded (and judged in the report).
run_wrk() {
  local f=$1 state=$2 run=$3 secs=$DURATION
  [[ $run == warmup ]] && secs=$WARMUP
  [[ $run == poke ]] && secs=1
  local out="$RESULTS/$f-$state.$run.txt" load t0 t1 c0 c1
  load=$(cut -d' ' -f1 /proc/loadavg)
  printf '   %-7s %-6s run %-6s ' "$f" "$state" "$run"
  c0=$(proc_cpu "$SERVER")
  t0=$(now)
  if ! BENCH_AUTH=${AUTH[$f]} BENCH_BODY=grant_type=client_credentials BENCH_EXPECT=${EXPECT[$f]} \
    timeout $((secs + 60)) taskset -c "$LOAD_CPU" \
    wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --latency -s "$ROOT/bench/wrk.lua" "http://$ADDR/oauth2/token" \
    >"$out" 2>&1; then
    echo
    cat "$out" >&2
    die "wrk failed for $f $state run $run (output above, also in $out)"
  fi
  t1=$(now)
  kill -0 "$SERVER" 2>/dev/null || die "tessera died during $f $state run $run (log: $RESULTS/tessera.log)"
  c1=$(proc_cpu "$SERVER")
  local rps p50 p99 bad_status bad_body socket non2xx non2xx_wrk srv_pct
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(awk '$1 == "50%" { print $2 }' "$out")
  p99=$(awk '$1 == "99%" { print $2 }' "$out")
  bad_status=$(field "$out" bad_status)
  bad_body=$(field "$out" bad_body)
  socket=$(field "$out" socket_errors)
  non2xx=$(field "$out" non2xx)
  non2xx_wrk=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$out")
  if [[ -z $rps || -z $p50 || -z $p99 || -z $bad_status || -z $bad_body || -z $socket || -z $non2xx ]]; then
    echo
    cat "$out" >&2
    die "could not read wrk's output for $f $state run $run (above, also in $out)"
  fi
  p50=$(to_us "$p50") || die "bad p50 in $out"
  p99=$(to_us "$p99") || die "bad p99 in $out"
  non2xx=$((non2xx > ${non2xx_wrk:-0} ? non2xx : ${non2xx_wrk:-0}))
  local bad=$((bad_status + bad_body))
  srv_pct=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / (t1 - t0) }')
  printf '%7.0f req/s  p50 %6.2f ms  p99 %7.2f ms  server CPU %3s%%  bad %s, socket errors %s, non-2xx %s\n' \
    "$rps" "$(awk -v u="$p50" 'BEGIN { print u / 1000 }')" "$(awk -v u="$p99" 'BEGIN { print u / 1000 }')" \
    "$srv_pct" "$bad" "$socket" "$non2xx"
  if [[ $state == quiet ]] && ((bad > 0 || socket > 0 || non2xx > 0)); then
    grep '^bench:' "$out" >&2 || true
    die "$f quiet run $run: $bad bad responses, $socket socket errors, $non2xx non-2xx (raw output: $out)"
  fi
  if [[ $run != warmup && $run != poke ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$f-$state" "$run" "$rps" "$p50" "$p99" \
      "$bad" "$socket" "$non2xx" "$load" "$srv_pct" >>"$RECORDS"
  fi
}

# The sampler: the server's RSS and descriptors every 0.5 s, and while a file
# "attacking" exists, the established connections on the server's port every 2 s.
SAMPLES="$RESULTS/samples.tsv"
printf 'time\tphase\trss_kb\tfds\testablished\n' >"$SAMPLES"
echo quiet >"$TMP/phase"
sampler() {
  local n=0 est
  while kill -0 "$SERVER" 2>/dev/null; do
    est=-
    if ((n % 4 == 0)) && [[ $(cat "$TMP/phase") == attack* ]]; then
      est=$(ss -Htn state established "( sport = :$PORT )" 2>/dev/null | wc -l)
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date +%s.%N)" "$(cat "$TMP/phase")" "$(rss_kb)" "$(fds)" "$est" >>"$SAMPLES"
    n=$((n + 1))
    sleep 0.5
  done
}
taskset -c "$LOAD_CPU" bash -c "$(declare -f sampler rss_kb fds); SERVER=$SERVER PORT=$PORT TMP=$TMP SAMPLES=$SAMPLES; sampler" &
PIDS+=("$!")

ATTACK_SECS=$((RAMP + $(wc -w <<<"$FORMATS") * (DURATION + 2) + 3))
# attack ROUND: starts the attacker processes for ATTACK_SECS (they stop by themselves),
# each with its range of slots (the first also sends the wrong credentials), and sets
# ATTACKER to their pids.
attack() {
  local k n first rps
  ATTACKER=()
  for ((k = 0; k < ATTACKERS; k++)); do
    first=$((k * PER_ATTACKER))
    n=$((SOCKETS - first < PER_ATTACKER ? SOCKETS - first : PER_ATTACKER))
    rps=$((k == 0 ? BAD_RPS : 0))
    taskset -c "$ATTACK_CPU" "$HOSTILE" "$ADDR" sockets="$n" first="$first" \
      addresses="$ADDRESSES" seconds="$ATTACK_SECS" reopen_ms="$REOPEN_MS" \
      ramp_per_s=$((4000 / ATTACKERS + 1)) bad_rps="$rps" bad_addresses="$BAD_ADDRESSES" \
      client_id="${CLIENT[opaque]}" >"$RESULTS/attack.$1.$k.log" 2>&1 &
    ATTACKER+=("$!")
    PIDS+=("$!")
  done
}

if ((WARMUP > 0)); then
  for f in $FORMATS; do run_wrk "$f" quiet warmup; done
fi
sleep 2
RSS_IDLE=$(rss_kb)
FDS_IDLE=$(fds)
echo "idle:        RSS $(mb "$RSS_FRESH") MB fresh, $(mb "$RSS_IDLE") MB after the warm-up; $FDS_IDLE descriptors" |
  tee -a "$RESULTS/environment.txt"

RSS_AFTER=()
RSS_POKED=()
for run in $(seq "$RUNS"); do
  for f in $FORMATS; do run_wrk "$f" quiet "$run"; done
  echo "   attack $run: $SOCKETS slow sockets over $ADDRESSES addresses, $BAD_RPS wrong credentials/s; ${RAMP}s ramp"
  echo "attack-$run" >"$TMP/phase"
  attack "$run"
  sleep "$RAMP"
  for pid in "${ATTACKER[@]}"; do
    kill -0 "$pid" 2>/dev/null || die "an attacker stopped early (logs: $RESULTS/attack.$run.*.log)"
  done
  for f in $FORMATS; do run_wrk "$f" attack "$run"; done
  cp "/proc/$SERVER/smaps_rollup" "$RESULTS/smaps-attack.$run.txt" 2>/dev/null || true
  for k in "${!ATTACKER[@]}"; do
    wait "${ATTACKER[$k]}" || die "an attacker failed (log: $RESULTS/attack.$run.$k.log)"
    grep -q '^hostile: final' "$RESULTS/attack.$run.$k.log" ||
      die "an attacker did not finish (log: $RESULTS/attack.$run.$k.log)"
  done
  echo "settle-$run" >"$TMP/phase"
  sleep "$SETTLE"
  RSS_AFTER+=("$(rss_kb)")
  cp "/proc/$SERVER/smaps_rollup" "$RESULTS/smaps-after.$run.txt" 2>/dev/null || true
  echo "   after attack $run: RSS $(mb "${RSS_AFTER[-1]}") MB after ${SETTLE}s idle, $(fds) descriptors"
  # The allocator returns freed memory lazily, on later allocations: read RSS again
  # after one second of good traffic.
  echo "poke-$run" >"$TMP/phase"
  run_wrk "${FORMATS%% *}" quiet poke
  sleep 1
  RSS_POKED+=("$(rss_kb)")
  echo "quiet" >"$TMP/phase"
  echo "   after attack $run and 1 s of good traffic: RSS $(mb "${RSS_POKED[-1]}") MB"
done
kill -0 "$SERVER" 2>/dev/null || die "tessera died (log: $RESULTS/tessera.log)"

# ----- report ----------------------------------------------------------------------------

median_of() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
median() { awk -F'\t' -v s="$1" -v c="$2" 'NR > 1 && $1 == s { print $c }' "$RECORDS" | median_of; }
total() { awk -F'\t' -v s="$1" -v c="$2" 'NR > 1 && $1 == s { n += $c } END { print n + 0 }' "$RECORDS"; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }

RSS_PEAK=$(awk -F'\t' 'NR > 1 && $2 ~ /^attack/ && $3 > m { m = $3 } END { print m + 0 }' "$SAMPLES")
FDS_PEAK=$(awk -F'\t' 'NR > 1 && $2 ~ /^attack/ && $4 > m { m = $4 } END { print m + 0 }' "$SAMPLES")
EST_PEAK=$(awk -F'\t' 'NR > 1 && $2 ~ /^attack/ && $5 != "-" && $5 > m { m = $5 } END { print m + 0 }' "$SAMPLES")
RSS_LAST=${RSS_AFTER[-1]}
# Peak open slow sockets: per round, the attacker processes' open counts added up line by
# line (they print once a second from about the same start).
OPEN_PEAK=0
for run in $(seq "$RUNS"); do
  peak=$(paste -d' ' "$RESULTS"/attack."$run".*.log | awk '{ n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^open=/) { sub("open=", "", $i); n += $i } if (n > m) m = n } END { print m + 0 }')
  ((peak > OPEN_PEAK)) && OPEN_PEAK=$peak
done
# Attacker totals over all rounds, from each round's final line.
attack_sum() { cat "$RESULTS"/attack.*.log | sed -n "s/^hostile: final .*\b$1=\([0-9]*\).*/\1/p" | awk '{ n += $1 } END { print n + 0 }'; }
A_CONNECTS=$(attack_sum connects)
A_FAST=$(attack_sum closed_fast)
A_SLOW=$(attack_sum closed_slow)
A_ERR=$(attack_sum connect_errors)
A_ANSWERED=$(attack_sum answered)
A_SENT=$(attack_sum bad_sent)
A_401=$(attack_sum bad_401)
A_429=$(attack_sum bad_429)
A_OTHER=$(attack_sum bad_other)
A_LOST=$(attack_sum bad_conn_errors)
A_LIFE=$(cat "$RESULTS"/attack.*.log | sed -n 's/^hostile: final .*mean_slow_lifetime_ms=\([0-9]*\).*/\1/p' | median_of)

failed=0
verdict() { # verdict CONDITION-AS-AWK-EXPRESSION
  if awk "BEGIN { exit !($1) }"; then echo PASS; else
    echo FAIL
  fi
}
SUMMARY="$RESULTS/summary.md"
{
  echo "| scenario | req/s (median) | p50 | p99 | ratio | RSS | target | result |"
  echo "|---|---:|---:|---:|---:|---:|---|---|"
  for f in $FORMATS; do
    q=$f-quiet a=$f-attack
    printf '| %s, quiet | %.0f | %s | %s | - | %s MB idle | - | - |\n' "$f" "$(median "$q" 3)" \
      "$(ms "$(median "$q" 4)")" "$(ms "$(median "$q" 5)")" "$(mb "$RSS_IDLE")"
    ratio=$(awk -v a="$(median "$a" 3)" -v b="$(median "$q" 3)" 'BEGIN { printf "%.1f", 100 * a / b }')
    bad=$(($(total "$a" 6) + $(total "$a" 8)))
    r=$(verdict "$ratio >= $MIN_RATIO && $bad == 0")
    printf '| %s, under attack | %.0f | %s | %s | %s%% | %s MB peak | >= %s%% of quiet, every answer a 200 with a token | %s |\n' \
      "$f" "$(median "$a" 3)" "$(ms "$(median "$a" 4)")" "$(ms "$(median "$a" 5)")" "$ratio" \
      "$(mb "$RSS_PEAK")" "$MIN_RATIO" "$r"
  done
  printf '| server RSS, peak during the attacks | | | | | %s MB | <= %s MB | %s |\n' "$(mb "$RSS_PEAK")" \
    "$MAX_RSS_MB" "$(verdict "$RSS_PEAK <= $MAX_RSS_MB * 1024")"
  after_pct=$(awk -v a="$RSS_LAST" -v b="$RSS_IDLE" 'BEGIN { printf "%.0f", 100 * a / b }')
  printf '| server RSS, %ss after the last attack | | | | %s%% of idle | %s MB | <= %s%% of idle (%s MB) | %s |\n' \
    "$SETTLE" "$after_pct" "$(mb "$RSS_LAST")" "$AFTER_PCT" "$(mb "$((RSS_IDLE * AFTER_PCT / 100))")" \
    "$(verdict "$RSS_LAST * 100 <= $RSS_IDLE * $AFTER_PCT")"
  echo
  echo "Medians of $RUNS round(s) of ${DURATION}s per scenario; wrk -t1 -c$CONNECTIONS on CPU $LOAD_CPU from 127.0.0.1, tessera on CPU $SERVER_CPU, the attacker on CPU $ATTACK_CPU."
  echo "Server RSS: $(mb "$RSS_FRESH") MB fresh, $(mb "$RSS_IDLE") MB idle after the warm-up (the reference), after each attack + ${SETTLE}s idle: $(for k in "${RSS_AFTER[@]}"; do printf '%s ' "$(mb "$k")"; done)MB; then after 1 s of good traffic: $(for k in "${RSS_POKED[@]}"; do printf '%s ' "$(mb "$k")"; done)MB."
  echo "Attack, per round: $SOCKETS slow sockets from $ADDRESSES addresses (idle, half a head, a stalled body, a dripped head: a quarter each), reopened ~${REOPEN_MS} ms after the server closes them; $BAD_RPS wrong credentials/s from $BAD_ADDRESSES addresses (half the good opaque client's id with a wrong secret, half random ids)."
  echo "Peak open slow sockets on the attacker's side: $OPEN_PEAK; established connections on the server's port at the peak: $EST_PEAK (wrk's $CONNECTIONS included); server descriptors at the peak: $FDS_PEAK ($FDS_IDLE idle)."
  echo "Slow sockets over all rounds: $A_CONNECTS connected, $A_FAST closed by the server within 0.5 s (over a cap), $A_SLOW closed later (median lifetime ${A_LIFE} ms), $A_ANSWERED got an answer first, $A_ERR connects failed."
  echo "Wrong credentials over all rounds: $A_SENT sent, $A_401 answered 401, $A_429 answered 429, $A_OTHER other, $A_LOST connections lost."
  echo "Good clients under attack, all rounds: $(total "$(echo "$FORMATS" | awk '{ print $1 }')-attack" 7) socket errors ($(echo "$FORMATS" | awk '{ print $1 }'))$(for f in $(echo "$FORMATS" | cut -s -d' ' -f2-); do printf ', %s (%s)' "$(total "$f-attack" 7)" "$f"; done); bad answers: $(for f in $FORMATS; do printf '%s %s ' "$f" "$(($(total "$f-attack" 6) + $(total "$f-attack" 8)))"; done)."
  # What the attack itself costs the server: its CPU under attack less what the good
  # requests served then cost at the quiet runs' price. When the server is not at 100%
  # under attack, wrk and the attacker sharing CPU 1 set the good clients' rate, and this
  # is the share of the server's core left to good clients (an estimate, not a target).
  for f in $FORMATS; do
    awk -v f="$f" -v qr="$(median "$f-quiet" 3)" -v qc="$(median "$f-quiet" 10)" \
      -v ar="$(median "$f-attack" 3)" -v ac="$(median "$f-attack" 10)" 'BEGIN {
        if (qr <= 0 || qc <= 0) exit
        cost = ac - ar * qc / qr
        printf "What the attack itself cost, %s: %.0f%% of the server core (%s%% used under attack, %.0f%% of it for the good requests at the quiet price of %.1f us each); with wrk and the attacker on a core of their own, good clients could keep about %.0f%% of what a whole core serves quietly.\n", f, cost, ac, ar * qc / qr, qc / qr * 1e4, 100 - cost
      }'
  done
  echo "Per-run req/s:"
  for f in $FORMATS; do
    for state in quiet attack; do
      echo "- $f $state: $(awk -F'\t' -v s="$f-$state" 'NR > 1 && $1 == s { printf "%s%s (server CPU %s%%, load %s)", sep, $3, $10, $9; sep = ", " }' "$RECORDS")"
    done
  done
} >"$SUMMARY"
failed=$(grep -c '| FAIL |$' "$SUMMARY" || true)

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
