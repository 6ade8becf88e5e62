#!/usr/bin/env bash
# Store and nodes benchmark: token issuance (JWT, client_credentials, Basic auth) by one
# node on SQLite, one node on PostgreSQL and two nodes sharing one PostgreSQL database,
# side by side; and whether the stores grow with the number of tokens issued
# (see bench/README.md, "Store and nodes").
#
#   bench/nodes.sh                       # DURATION=10 s per run, RUNS=3 rounds
#   TOKENS=1000000 bench/nodes.sh        # then keep loading each store until it has
#                                        # issued at least a million tokens
#
# Exit status: 0 the run went through; 1 it failed (a build error, PostgreSQL not
# reachable, a server that did not start or died, any bad / non-2xx response or socket
# error, or a database it could not drop at the end).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-2}             # seconds of unrecorded load per scenario before the runs
CONNECTIONS=${CONNECTIONS:-64}  # in total; the two-node scenario splits them over its nodes
SERVER_CPU=${SERVER_CPU:-0}
NODE2_CPU=${NODE2_CPU:-$SERVER_CPU} # the second node of the cluster
LOAD_CPU=${LOAD_CPU:-1}
TOKENS=${TOKENS:-0}             # 0: storage figures for whatever the timed runs issued
# The PostgreSQL server (no database in the URL) and a database to run CREATE / DROP
# DATABASE from. Trust authentication is assumed (no password prompt).
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_ADMIN_DB=${PG_ADMIN_DB:-postgres}

die() {
  echo "" >&2
  echo "!!! BENCHMARK FAILED: $*" >&2
  exit 1
}

for v in DURATION RUNS WARMUP CONNECTIONS SERVER_CPU NODE2_CPU LOAD_CPU TOKENS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((RUNS >= 1 && DURATION >= 1)) || die "RUNS and DURATION must be at least 1"
((CONNECTIONS >= 2)) || die "CONNECTIONS must be at least 2 (one per node of the cluster)"
ncpu=$(nproc --all)
((SERVER_CPU < ncpu && NODE2_CPU < ncpu && LOAD_CPU < ncpu)) ||
  die "no such CPU (SERVER_CPU=$SERVER_CPU NODE2_CPU=$NODE2_CPU LOAD_CPU=$LOAD_CPU, $ncpu CPUs here)"
((SERVER_CPU != LOAD_CPU && NODE2_CPU != LOAD_CPU)) ||
  die "the servers and wrk need distinct CPUs (SERVER_CPU=$SERVER_CPU NODE2_CPU=$NODE2_CPU LOAD_CPU=$LOAD_CPU)"
[[ $PG_URL =~ ^postgres(ql)?://[^/]+$ ]] ||
  die "PG_URL must be postgres://user@host:port without a database, not '$PG_URL'"

# ----- build and tools -------------------------------------------------------------------

echo "== cargo build --release -p tessera"
cargo build --release -p tessera || die "release build failed"
TESSERA="$ROOT/target/release/tessera"

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
for tool in wrk taskset curl timeout base64 psql; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# psql_ DATABASE ARGS...: psql on PG_URL, unaligned, quiet, stopping at the first error.
psql_() {
  local db=$1
  shift
  psql "$PG_URL/$db" -X -A -t -q -v ON_ERROR_STOP=1 "$@"
}
psql_ "$PG_ADMIN_DB" -c 'SELECT 1' >/dev/null ||
  die "PostgreSQL does not answer at $PG_URL/$PG_ADMIN_DB (set PG_URL / PG_ADMIN_DB)"

# ----- results, temp files, clean-up -----------------------------------------------------

STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$ROOT/bench/results/$STAMP-nodes"
mkdir -p "$RESULTS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-nodes.XXXXXX")
PIDS=()       # servers
LOAD_PIDS=()  # wrk processes running right now
CREATED_DBS=() # databases this run created, and only those: dropped at exit

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid db
  for pid in "${LOAD_PIDS[@]}" "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${LOAD_PIDS[@]}" "${PIDS[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for db in "${CREATED_DBS[@]}"; do
    # FORCE: a connection left over (a server killed with -9) must not keep it alive.
    if ! psql_ "$PG_ADMIN_DB" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null ||
      [[ -n $(psql_ "$PG_ADMIN_DB" -c "SELECT 1 FROM pg_database WHERE datname = '$db'" 2>/dev/null) ]]; then
      echo "!!! could not drop database $db: drop it by hand (dropdb -h 127.0.0.1 -U postgres $db)" >&2
      if ((status == 0)); then status=1; fi
    fi
  done
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DB_ONE="tessera_bench_$$_one"
DB_TWO="tessera_bench_$$_two"

{
  echo "date:        $(date -Is)"
  echo "commit:      $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (working tree differs)')"
  echo "cpu:         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $ncpu"
  echo "settings:    DURATION=${DURATION}s RUNS=$RUNS WARMUP=${WARMUP}s CONNECTIONS=$CONNECTIONS TOKENS=$TOKENS"
  echo "pinning:     servers on CPU $SERVER_CPU (second cluster node on CPU $NODE2_CPU), wrk -t1 on CPU $LOAD_CPU"
  echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) at start"
  echo "wrk:         $(wrk -v 2>&1 | head -1)"
  echo "postgresql:  $(psql_ "$PG_ADMIN_DB" -c 'SHOW server_version') at $PG_URL, databases $DB_ONE and $DB_TWO"
} | tee "$RESULTS/environment.txt"

# ----- stores ----------------------------------------------------------------------------

for db in "$DB_ONE" "$DB_TWO"; do
  [[ -z $(psql_ "$PG_ADMIN_DB" -c "SELECT 1 FROM pg_database WHERE datname = '$db'") ]] ||
    die "database $db exists already (left by another run?); not touching it"
  psql_ "$PG_ADMIN_DB" -c "CREATE DATABASE \"$db\"" || die "could not create database $db"
  CREATED_DBS+=("$db")
done

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
now() { date +%s.%N; }

unset TESSERA_CONFIG TESSERA_DATABASE_URL TESSERA_DATA_DIR TESSERA_MIGRATE_ON_START
export TESSERA_ADMIN_KEY
TESSERA_ADMIN_KEY=$(random_hex 24)
# One master key for every node and CLI call: the cluster's nodes must share it.
export TESSERA_MASTER_KEY
TESSERA_MASTER_KEY=$(random_hex 32)
# Port 0: the kernel picks a free loopback port; each server prints the one it got.
export TESSERA_LISTEN=127.0.0.1:0
export TESSERA_ADMIN_LISTEN=127.0.0.1:0
# One public URL (issuer) for every node, as behind a load balancer: otherwise each node
# would be its own issuer (http://127.0.0.1:PORT), and a token from one node would not be
# one the other issues. The same for the single nodes, so that every token is the same size.
export TESSERA_PUBLIC_URL=http://tessera-bench.test
export TESSERA_LOG=${TESSERA_LOG:-info}

# The stores: a data directory each (SQLite's home; unused but required by the others),
# and a database URL for the PostgreSQL ones.
STORES=(sqlite pg1 pg2)
declare -A STORE_DIR STORE_URL STORE_DB
STORE_DIR[sqlite]="$TMP/sqlite" STORE_URL[sqlite]="" STORE_DB[sqlite]=""
STORE_DIR[pg1]="$TMP/pg1" STORE_URL[pg1]="$PG_URL/$DB_ONE" STORE_DB[pg1]=$DB_ONE
STORE_DIR[pg2]="$TMP/pg2" STORE_URL[pg2]="$PG_URL/$DB_TWO" STORE_DB[pg2]=$DB_TWO

# store_env STORE: sets STORE_ENV to that store's TESSERA_* settings, for env(1). (env
# and taskset exec what they run, so that $! of a server started in the background is
# the server's own pid.)
store_env() {
  STORE_ENV=("TESSERA_DATA_DIR=${STORE_DIR[$1]}")
  if [[ -n ${STORE_URL[$1]} ]]; then
    STORE_ENV+=("TESSERA_DATABASE_URL=${STORE_URL[$1]}")
  fi
}

# ----- servers ---------------------------------------------------------------------------

# start_server NAME STORE CPU: `tessera serve` on STORE pinned to CPU, logging to
# RESULTS/NAME.log; waits for the address it prints and sets SERVER_PID[NAME] and
# SERVER_ADDR[NAME].
declare -A SERVER_PID SERVER_ADDR
start_server() {
  local name=$1 store=$2 cpu=$3
  store_env "$store"
  taskset -c "$cpu" env "${STORE_ENV[@]}" "$TESSERA" serve >"$RESULTS/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  SERVER_PID[$name]=$pid
  local addr=""
  for _ in $(seq 300); do
    addr=$(sed -n 's|.*public endpoints: http://\([0-9.]*:[0-9]*\).*|\1|p' "$RESULTS/$name.log" | head -1)
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

curl_() { curl --noproxy '*' -sS --max-time 5 "$@"; }

start_server sqlite sqlite "$SERVER_CPU"
start_server pg1 pg1 "$SERVER_CPU"
start_server pg2-node1 pg2 "$SERVER_CPU"
start_server pg2-node2 pg2 "$NODE2_CPU"
NODES=(sqlite pg1 pg2-node1 pg2-node2)
for node in "${NODES[@]}"; do
  for _ in $(seq 100); do
    curl_ -f "http://${SERVER_ADDR[$node]}/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl_ -f "http://${SERVER_ADDR[$node]}/healthz" >/dev/null || die "$node: /healthz does not answer"
done
echo "servers:     sqlite ${SERVER_ADDR[sqlite]}, pg1 ${SERVER_ADDR[pg1]}, pg2 ${SERVER_ADDR[pg2-node1]} + ${SERVER_ADDR[pg2-node2]}" |
  tee -a "$RESULTS/environment.txt"

# ----- applications and first tokens -----------------------------------------------------

# create_app STORE: prints "client_id client_secret" of a new JWT application, made
# with the CLI working on that store directly.
create_app() {
  local json id secret
  store_env "$1"
  json=$(env "${STORE_ENV[@]}" "$TESSERA" app create --name bench --token-format jwt --json) ||
    die "tessera app create failed on the $1 store"
  # The secret stays out of the saved copy.
  # shellcheck disable=SC2001  # a regex, not a plain replacement
  sed 's/"client_secret": *"[^"]*"/"client_secret": "(removed)"/' <<<"$json" >"$RESULTS/app-$1.json.txt"
  id=$(grep -o '"client_id": *"[^"]*"' <<<"$json" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
  secret=$(grep -o '"client_secret": *"[^"]*"' <<<"$json" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
  [[ -n $id && -n $secret ]] || die "no client_id/client_secret in: $json"
  echo "$id $secret"
}

# fetch_token ADDR AUTH: the access_token of one client_credentials request. The CLI
# writes the store directly and a server picks changes up within a second: retry a while.
fetch_token() {
  local body=""
  for _ in $(seq 50); do
    body=$(curl_ -H "Authorization: $2" -d grant_type=client_credentials \
      "http://$1/oauth2/token" 2>/dev/null || true)
    [[ $body == *'"access_token":"'* ]] && break
    sleep 0.1
  done
  [[ $body == *'"access_token":"'* ]] || die "no token from $1: $body"
  # shellcheck disable=SC2001  # a regex capture, not a plain replacement
  sed 's/.*"access_token":"\([^"]*\)".*/\1/' <<<"$body"
}

# introspect ADDR AUTH TOKEN: dies unless ADDR says TOKEN is active.
introspect() {
  local check
  check=$(curl_ -H "Authorization: $2" --data-urlencode "token=$3" "http://$1/oauth2/introspect") ||
    die "introspection request to $1 failed"
  [[ $check == *'"active":true'* ]] || die "$1 says a fresh token is not active: $check"
}

declare -A AUTH
for store in "${STORES[@]}"; do
  creds=$(create_app "$store")
  read -r app_id app_secret <<<"$creds"
  AUTH[$store]="Basic $(printf '%s:%s' "$app_id" "$app_secret" | base64 -w0)"
done

declare -A STORE_OF=([sqlite]=sqlite [pg1]=pg1 [pg2-node1]=pg2 [pg2-node2]=pg2)
declare -A SAMPLE
for node in "${NODES[@]}"; do
  SAMPLE[$node]=$(fetch_token "${SERVER_ADDR[$node]}" "${AUTH[${STORE_OF[$node]}]}")
  [[ ${SAMPLE[$node]} == eyJ*.*.* ]] || die "$node issued a non-JWT token: ${SAMPLE[$node]}"
  introspect "${SERVER_ADDR[$node]}" "${AUTH[${STORE_OF[$node]}]}" "${SAMPLE[$node]}"
done
# The cluster is one server: each node accepts the other's tokens.
introspect "${SERVER_ADDR[pg2-node2]}" "${AUTH[pg2]}" "${SAMPLE[pg2-node1]}"
introspect "${SERVER_ADDR[pg2-node1]}" "${AUTH[pg2]}" "${SAMPLE[pg2-node2]}"
echo "tokens:      JWT, $(for n in "${NODES[@]}"; do printf '%s %s chars  ' "$n" "${#SAMPLE[$n]}"; done)" |
  tee -a "$RESULTS/environment.txt"
echo "checks:      every node issues tokens and accepts them; the two pg2 nodes accept each other's" |
  tee -a "$RESULTS/environment.txt"

# ----- storage ---------------------------------------------------------------------------

# sqlite_bytes: the bytes of every file in the SQLite store's data directory.
sqlite_bytes() {
  find "${STORE_DIR[sqlite]}" -type f -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'
}
# pg_figures DB: "DATABASE_BYTES TABLE_BYTES ROWS": pg_database_size, the tables of the
# public schema with their indexes and TOAST (pg_total_relation_size), and their rows.
pg_figures() {
  local db=$1 size tables rows table n
  size=$(psql_ "$PG_ADMIN_DB" -c "SELECT pg_database_size('$db')") || die "pg_database_size($db) failed"
  tables=$(psql_ "$db" -c "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'") ||
    die "table sizes of $db failed"
  rows=0
  while read -r table; do
    [[ -n $table ]] || continue
    n=$(psql_ "$db" -c "SELECT count(*) FROM public.\"$table\"") || die "counting $db.$table failed"
    rows=$((rows + n))
  done < <(psql_ "$db" -c "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
  echo "$size $tables $rows"
}
# pg_xacts DB: the transactions committed or rolled back in DB so far (pg_stat_database;
# the statistics lag by up to about a second).
pg_xacts() {
  psql_ "$PG_ADMIN_DB" -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$1'" ||
    die "pg_stat_database for $1 failed"
}
# storage_snapshot WHEN: appends every store's figures to RESULTS/storage.txt and sets
# SIZE[STORE.WHEN] ("BYTES" for SQLite, pg_figures' three numbers for PostgreSQL).
declare -A SIZE XACTS XACT_AT
storage_snapshot() {
  local when=$1 db
  {
    echo "== $when ($(date -Is))"
    echo "-- sqlite: ${STORE_DIR[sqlite]}"
    find "${STORE_DIR[sqlite]}" -type f -printf '%s\t%P\n' | sort -k2
    for db in "$DB_ONE" "$DB_TWO"; do
      echo "-- postgresql: $db (pg_database_size $(psql_ "$PG_ADMIN_DB" -c "SELECT pg_database_size('$db')"))"
      psql_ "$db" -F $'\t' -c "SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1"
    done
  } >>"$RESULTS/storage.txt"
  # The transaction counts are read last before the load and first after it, so that
  # this function's own queries fall outside what they count.
  if [[ $when == after ]]; then
    XACT_AT[$when]=$(now)
    XACTS[pg1.$when]=$(pg_xacts "$DB_ONE")
    XACTS[pg2.$when]=$(pg_xacts "$DB_TWO")
  fi
  SIZE[sqlite.$when]=$(sqlite_bytes)
  SIZE[pg1.$when]=$(pg_figures "$DB_ONE")
  SIZE[pg2.$when]=$(pg_figures "$DB_TWO")
  if [[ $when == before ]]; then
    XACT_AT[$when]=$(now)
    XACTS[pg1.$when]=$(pg_xacts "$DB_ONE")
    XACTS[pg2.$when]=$(pg_xacts "$DB_TWO")
  fi
}

# ----- load ------------------------------------------------------------------------------

SCENARIOS=(sqlite pg1 pg2)
declare -A LABEL SCENARIO_NODES
LABEL[sqlite]="SQLite, 1 node"
LABEL[pg1]="PostgreSQL, 1 node"
LABEL[pg2]="PostgreSQL, 2 nodes, 1 database"
SCENARIO_NODES[sqlite]="sqlite"
SCENARIO_NODES[pg1]="pg1"
SCENARIO_NODES[pg2]="pg2-node1 pg2-node2"
# Tokens each store answered under load (warm-up, timed and fill runs).
declare -A ISSUED=([sqlite]=0 [pg1]=0 [pg2]=0)

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
# nodes_cpu NODE...: the CPU seconds (user + kernel) those servers have used so far.
nodes_cpu() {
  local node usr sys total=0
  for node in "$@"; do
    read -r usr sys <<<"$(proc_cpu "${SERVER_PID[$node]}")"
    total=$(awk -v t="$total" -v a="$usr" -v b="$sys" 'BEGIN { print t + a + b }')
  done
  echo "$total"
}
# children_cpu VAR: sets VAR to the CPU seconds used by this shell's finished children
# (wrk among them). Not called as $(...): `times` in a subshell would count nothing.
children_cpu() {
  times >"$TMP/times"
  printf -v "$1" '%s' "$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } printf "%.2f", t }' "$TMP/times")"
}
# cpus_busy CPU...: seconds those CPUs (each counted once) have been busy, from /proc/stat.
cpus_busy() {
  printf '%s\n' "$@" | sort -u | while read -r c; do
    awk -v cpu="cpu$c" -v hz="$CLK_TCK" '$1 == cpu { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
  done | awk '{ t += $1 } END { printf "%.2f", t }'
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
# thousands N: N rounded, with thousands separators.
thousands() {
  awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); neg = (s ~ /^-/); if (neg) s = substr(s, 2)
    while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
    print (neg ? "-" : "") s }'
}

# merged_percentiles QFILE:REQUESTS...: "P50 P99" in µs over the requests of all the given
# wrk runs together. Each QFILE holds one run's latency at every 0.1% (nodes.lua), each
# point standing for a thousandth of that run's REQUESTS; for one run the result is
# exactly wrk's own p50 / p99, for two it is within 0.1 percentile of the exact one.
merged_percentiles() {
  local spec
  for spec in "$@"; do
    awk -v n="${spec##*:}" '{ print $2, n / 1000 }' "${spec%:*}"
  done | sort -g -k1,1 | awk '{ v[NR] = $1; w[NR] = $2; total += $2 }
    END {
      if (total <= 0) exit 1
      for (i = 1; i <= NR; i++) {
        cum += w[i]
        if (!got50 && cum >= 0.50 * total * (1 - 1e-9)) { p50 = v[i]; got50 = 1 }
        if (!got99 && cum >= 0.99 * total * (1 - 1e-9)) { p99 = v[i]; got99 = 1 }
      }
      printf "%.1f %.1f\n", p50, p99
    }'
}

RECORDS="$RESULTS/runs.tsv"
printf 'scenario\trun\ttokens_s\tp50_us\tp99_us\terrors\tnon2xx\ttokens\tper_node_tokens_s\tloadavg\tserver_cpu_pct\twrk_cpu_pct\tserver_cpu_us_per_token\tothers_on_server_cpus_pct\n' >"$RECORDS"

# run_load SCENARIO RUN SECONDS: one run: a wrk per node of SCENARIO, all at once, the
# connections split between them, every response checked. RUN "warmup" and "fill*" are
# not recorded in runs.tsv; every run's tokens count in ISSUED.
run_load() {
  local s=$1 run=$2 secs=$3
  local -a nodes outs qfiles
  read -r -a nodes <<<"${SCENARIO_NODES[$s]}"
  local n=${#nodes[@]} i load
  load=$(cut -d' ' -f1 /proc/loadavg)
  printf '   %-32s run %-7s ' "${LABEL[$s]}" "$run"

  local -a cpus=("$SERVER_CPU")
  if ((n > 1)); then cpus+=("$NODE2_CPU"); fi
  local srv0 srv1 busy0 busy1 wrk0 wrk1 t0 t1
  srv0=$(nodes_cpu "${nodes[@]}")
  busy0=$(cpus_busy "${cpus[@]}")
  children_cpu wrk0
  t0=$(now)
  LOAD_PIDS=()
  for ((i = 0; i < n; i++)); do
    local node=${nodes[$i]}
    local conns=$((CONNECTIONS / n + (i < CONNECTIONS % n ? 1 : 0)))
    outs[i]="$RESULTS/$s.$run.$node.txt"
    qfiles[i]="$RESULTS/$s.$run.$node.quantiles"
    BENCH_AUTH=${AUTH[$s]} BENCH_BODY=grant_type=client_credentials \
      BENCH_EXPECT='"access_token":"eyJ' BENCH_WRK_LUA="$ROOT/bench/wrk.lua" \
      BENCH_QUANTILES=${qfiles[$i]} \
      timeout $((secs + 60)) taskset -c "$LOAD_CPU" \
      wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$ROOT/bench/nodes.lua" \
      "http://${SERVER_ADDR[$node]}/oauth2/token" >"${outs[$i]}" 2>&1 &
    LOAD_PIDS+=($!)
  done
  local failed=""
  for ((i = 0; i < n; i++)); do
    wait "${LOAD_PIDS[$i]}" || failed+=" ${nodes[$i]}"
  done
  LOAD_PIDS=()
  t1=$(now)
  children_cpu wrk1
  for node in "${nodes[@]}"; do
    kill -0 "${SERVER_PID[$node]}" 2>/dev/null ||
      die "$node died during $s run $run (log: $RESULTS/$node.log)"
  done
  srv1=$(nodes_cpu "${nodes[@]}")
  busy1=$(cpus_busy "${cpus[@]}")
  if [[ -n $failed ]]; then
    echo
    for ((i = 0; i < n; i++)); do cat "${outs[$i]}" >&2; done
    die "wrk failed for$failed in $s run $run (output above, also in $RESULTS)"
  fi

  local rps_sum=0 tokens=0 errors=0 non2xx=0 per_node="" specs=() bad_outs=()
  for ((i = 0; i < n; i++)); do
    local out=${outs[$i]} rps checked bad_status bad_body socket nx nx_wrk
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    checked=$(field "$out" checked)
    bad_status=$(field "$out" bad_status)
    bad_body=$(field "$out" bad_body)
    socket=$(field "$out" socket_errors)
    nx=$(field "$out" non2xx)
    nx_wrk=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$out")
    if [[ -z $rps || -z $checked || -z $bad_status || -z $bad_body || -z $socket || -z $nx ||
      ! -s ${qfiles[$i]} ]]; then
      echo
      cat "$out" >&2
      die "could not read wrk's output for ${nodes[$i]} in $s run $run (above, also in $out)"
    fi
    nx=$((nx > ${nx_wrk:-0} ? nx : ${nx_wrk:-0}))
    errors=$((errors + bad_status + bad_body + socket))
    non2xx=$((non2xx + nx))
    tokens=$((tokens + checked))
    rps_sum=$(awk -v a="$rps_sum" -v b="$rps" 'BEGIN { printf "%.2f", a + b }')
    per_node+="${per_node:+ + }$(thousands "$rps")"
    specs+=("${qfiles[$i]}:$checked")
    if ((bad_status + bad_body + socket + nx > 0)); then bad_outs+=("$out"); fi
  done
  ISSUED[$s]=$((ISSUED[$s] + tokens))

  local p50 p99 percentiles
  percentiles=$(merged_percentiles "${specs[@]}") || die "no latencies in $s run $run"
  read -r p50 p99 <<<"$percentiles"
  local wall srv srv_pct wrk_pct others_pct cost
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  srv=$(awk -v a="$srv0" -v b="$srv1" 'BEGIN { print b - a }')
  srv_pct=$(pct "$srv" "$wall")
  wrk_pct=$(pct "$(awk -v a="$wrk0" -v b="$wrk1" 'BEGIN { print b - a }')" "$wall")
  # What else ran on the servers' CPU(s) meanwhile (other processes, interrupts).
  others_pct=$(pct "$(awk -v a="$busy0" -v b="$busy1" -v s="$srv" 'BEGIN { d = b - a - s; print (d > 0) ? d : 0 }')" "$wall")
  # The servers' CPU time (user + kernel) per token answered, in microseconds.
  cost=$(awk -v n="$tokens" -v s="$srv" 'BEGIN { printf "%.1f", (n > 0) ? 1e6 * s / n : 0 }')
  local split=""
  if ((n > 1)); then split=" ($per_node)"; fi
  printf '%7s tokens/s%s  p50 %8s  p99 %9s  CPU: servers %3s%% others %3s%% wrk %3s%%  %5.1f us/token  errors %s, non-2xx %s\n' \
    "$(thousands "$rps_sum")" "$split" "$(ms "$p50")" "$(ms "$p99")" "$srv_pct" "$others_pct" \
    "$wrk_pct" "$cost" "$errors" "$non2xx"
  if ((errors > 0 || non2xx > 0 || tokens == 0)); then
    for out in "${bad_outs[@]}"; do grep '^bench:' "$out" >&2 || true; done
    die "$s run $run: $errors bad responses or socket errors, $non2xx non-2xx, $tokens checked (raw output in $RESULTS)"
  fi
  if [[ $run =~ ^[0-9]+$ ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$run" "$rps_sum" "$p50" "$p99" \
      "$errors" "$non2xx" "$tokens" "${per_node// /}" "$load" "$srv_pct" "$wrk_pct" "$cost" "$others_pct" >>"$RECORDS"
  fi
  LAST_RATE=$rps_sum
}

storage_snapshot before

echo
echo "== load: JWT client_credentials (Basic), wrk -t1 --latency, $CONNECTIONS connections per scenario"
echo "   (split over the nodes of the cluster), $RUNS round(s) of ${DURATION}s: ${SCENARIOS[*]}"
if ((WARMUP > 0)); then
  for s in "${SCENARIOS[@]}"; do run_load "$s" warmup "$WARMUP"; done
fi
# Rounds interleave the scenarios, so that a slow spell on the machine (other builds)
# falls on every scenario alike rather than on whichever ran then.
for run in $(seq "$RUNS"); do
  for s in "${SCENARIOS[@]}"; do run_load "$s" "$run" "$DURATION"; done
done

# median SCENARIO COLUMN: the median of that column over the recorded runs.
median() {
  awk -F'\t' -v s="$1" -v c="$2" 'NR > 1 && $1 == s { print $c }' "$RECORDS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

if ((TOKENS > 0)); then
  echo
  echo "== fill: loading each store until it has issued at least $(thousands "$TOKENS") tokens"
  for s in "${SCENARIOS[@]}"; do
    chunk=0
    rate=$(median "$s" 3)
    while ((ISSUED[$s] < TOKENS)); do
      chunk=$((chunk + 1))
      # Enough seconds for what is left at the last rate, plus a little; at most 60.
      secs=$(awk -v left="$((TOKENS - ISSUED[$s]))" -v r="$rate" 'BEGIN {
        s = (r > 0) ? int(left * 1.05 / r) + 1 : 60; if (s > 60) s = 60; if (s < 1) s = 1; print s }')
      run_load "$s" "fill$chunk" "$secs"
      rate=$LAST_RATE
    done
  done
fi

storage_snapshot after

# ----- report ----------------------------------------------------------------------------

bytes() { echo "$(thousands "$1") B"; }
delta() {
  awk -v a="$1" -v b="$2" 'BEGIN { d = b - a; printf "%s%d B", (d >= 0) ? "+" : "", d }'
}
per_million() {
  awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f B", (n > 0) ? (b - a) * 1e6 / n : 0 }'
}

SUMMARY="$RESULTS/summary.md"
{
  echo "| scenario | tokens/s (median) | p50 | p99 | errors | servers' CPU | others on that core | wrk CPU | servers' CPU per token |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for s in "${SCENARIOS[@]}"; do
    printf '| %s | %s | %s | %s | %s | %.0f%% | %.0f%% | %.0f%% | %.1f µs |\n' "${LABEL[$s]}" \
      "$(thousands "$(median "$s" 3)")" "$(ms "$(median "$s" 4)")" "$(ms "$(median "$s" 5)")" \
      "$(awk -F'\t' -v s="$s" 'NR > 1 && $1 == s { n += $6 + $7 } END { print n + 0 }' "$RECORDS")" \
      "$(median "$s" 11)" "$(median "$s" 14)" "$(median "$s" 12)" "$(median "$s" 13)"
  done
  echo
  echo "Medians of $RUNS run(s) of ${DURATION}s each, JWT (ES256) client_credentials with Basic"
  echo "auth, every response checked. wrk -t1 on CPU $LOAD_CPU with $CONNECTIONS connections in all;"
  echo "the 2-node row runs one wrk per node at the same time ($((CONNECTIONS - CONNECTIONS / 2)) + $((CONNECTIONS / 2)) connections)"
  echo "and adds their tokens/s; its p50/p99 are over both nodes' requests together."
  echo "Servers' CPU: share of one core the node(s) used; others: the rest of that core's busy"
  echo "time (other processes; well above 0% means a busy machine and lower tokens/s); CPU per"
  echo "token: the nodes' user + kernel time per token answered, the steadier figure when the"
  echo "machine is busy. Per-run tokens/s:"
  for s in "${SCENARIOS[@]}"; do
    line="" sep=""
    while IFS=$'\t' read -r rps split; do
      line+="$sep$(thousands "$rps")"
      [[ $split == *+* ]] && line+=" (${split//+/ + })"
      sep=", "
    done < <(awk -F'\t' -v s="$s" 'NR > 1 && $1 == s { print $3 "\t" $9 }' "$RECORDS")
    echo "- ${LABEL[$s]}: $line"
  done
  echo
  if ((NODE2_CPU == SERVER_CPU)); then
    echo "**Note: both nodes of the 2-node cluster run on the same core (CPU $SERVER_CPU; this machine"
    echo "has $ncpu), so the 2-node figure measures correctness under contention (two processes"
    echo "sharing one database, load on both at once, every response checked), not scaling:"
    echo "expect about the 1-node figure, not twice it.**"
  elif ((ncpu <= 2)); then
    echo "**Note: on this $ncpu-core machine the 2-node figure measures correctness under"
    echo "contention, not scaling: the nodes share the cores with wrk and PostgreSQL.**"
  else
    echo "Note: the cluster's nodes run on CPUs $SERVER_CPU and $NODE2_CPU; PostgreSQL is not pinned."
  fi
  echo
  echo "Storage: the size of each store before the first warm-up and after the last load,"
  echo "with the tokens it issued in between (every wrk run against it, warm-ups$( ((TOKENS > 0)) && echo ' and fills')"
  echo "included)."
  echo
  echo "| store | tokens issued | size before | size after | change | change per million tokens |"
  echo "|---|---:|---:|---:|---:|---:|"
  b=${SIZE[sqlite.before]} a=${SIZE[sqlite.after]}
  printf '| SQLite: data directory files | %s | %s | %s | %s | %s |\n' "$(thousands "${ISSUED[sqlite]}")" \
    "$(bytes "$b")" "$(bytes "$a")" "$(delta "$b" "$a")" "$(per_million "$b" "$a" "${ISSUED[sqlite]}")"
  for s in pg1 pg2; do
    read -r db0 tb0 rows0 <<<"${SIZE[$s.before]}"
    read -r db1 tb1 rows1 <<<"${SIZE[$s.after]}"
    name="PostgreSQL, $([[ $s == pg1 ]] && echo '1 node' || echo '2 nodes')"
    printf '| %s: pg_database_size(%s) | %s | %s | %s | %s | %s |\n' "$name" "${STORE_DB[$s]}" \
      "$(thousands "${ISSUED[$s]}")" "$(bytes "$db0")" "$(bytes "$db1")" "$(delta "$db0" "$db1")" \
      "$(per_million "$db0" "$db1" "${ISSUED[$s]}")"
    printf '| %s: Tessera tables + indexes (rows %s → %s) | %s | %s | %s | %s | %s |\n' "$name" \
      "$(thousands "$rows0")" "$(thousands "$rows1")" "$(thousands "${ISSUED[$s]}")" \
      "$(bytes "$tb0")" "$(bytes "$tb1")" "$(delta "$tb0" "$tb1")" "$(per_million "$tb0" "$tb1" "${ISSUED[$s]}")"
  done
  echo
  secs=$(awk -v a="${XACT_AT[before]}" -v b="${XACT_AT[after]}" 'BEGIN { printf "%.0f", b - a }')
  echo "PostgreSQL transactions in each database from the first warm-up to the end of the load"
  sep="($secs s; pg_stat_database, to within a second): "
  for s in pg1 pg2; do
    x=$((${XACTS[$s.after]} - ${XACTS[$s.before]}))
    printf '%s%s %s (%s/s, %s per 1,000 tokens)' "$sep" \
      "$([[ $s == pg1 ]] && echo '1 node' || echo '2 nodes')" "$(thousands "$x")" \
      "$(awk -v x="$x" -v t="$secs" 'BEGIN { printf "%.1f", (t > 0) ? x / t : 0 }')" \
      "$(awk -v x="$x" -v n="${ISSUED[$s]}" 'BEGIN { printf "%.2f", (n > 0) ? 1000 * x / n : 0 }')"
    sep="; "
  done
  echo "."
} >"$SUMMARY"

echo
echo "== results (raw output in ${RESULTS#"$ROOT"/})"
echo
cat "$SUMMARY"
echo
echo "The run went through: every response was a 200 with a JWT."
