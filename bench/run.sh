#!/usr/bin/env bash
# Doorman load benchmark: `bash bench/run.sh`.
#
# Builds the release binaries, seeds a database of 10 accounts, 100,000 users, 1,000,000
# active sessions and 10,000,000 security events (bench/seed.rs, once per size; later runs
# start from a pristine copy), starts the server on loopback beside two reference servers
# (bench/reference.rs: a constant answer and a bare token lookup in the same file), loads
# them with wrk and prints a table of figures. It measures; it does not fail on a slow
# machine. Everything it writes stays under target/bench/ (binaries: $CARGO_TARGET_DIR).
#
# Knobs (environment):
#   BENCH_DURATION (10s per load), BENCH_CONNECTIONS (32), BENCH_THREADS (wrk threads, 1),
#   BENCH_PORT (18080: Doorman; +1 the constant reference, +2 the bare one, +3 a second
#   Doorman in the flat and scale modes, +4 and +5 the back-channel logout receivers of
#   the "logout delivered" row), BENCH_ROUNDS (3 interleaved rounds for the
#   ratios), BENCH_SESSIONS (1,000,000 active sessions, one user per ten), BENCH_EVENTS
#   (10,000,000 security events), BENCH_SCALE_SESSIONS (10,000,000: the large side of
#   the scale mode), BENCH_RESEED=1 (rebuild the data sets this run uses).
# Modes (BENCH_ONLY):
#   (unset)  everything: the ratio rounds, then every row of bench/RESULTS.md, the last
#            being "logout delivered" (1,000 sessions holding two OpenID grants each end
#            over one load's duration; end to each receiver's 200, and /auth/verify during
#            it against just before).
#   ratios   only the ratio rounds and the memory after them.
#   flat     /auth/verify on the data set with BENCH_EVENTS events against the same
#            sessions with none, two servers up together, interleaved rounds.
#   scale    /auth/verify and an admin search on BENCH_SESSIONS against
#            BENCH_SCALE_SESSIONS sessions (no events on either), interleaved rounds.
#   startup  only the start-up time and memory on an empty database (no seeding, no loads).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/bench
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-1}
PORT=${BENCH_PORT:-18080}
ONLY=${BENCH_ONLY:-}
ROUNDS=${BENCH_ROUNDS:-3}
# Counts may be written 1_000_000 or 1,000,000.
SESSIONS=${BENCH_SESSIONS:-1000000}
SESSIONS=${SESSIONS//[_,]/}
EVENTS=${BENCH_EVENTS:-10000000}
EVENTS=${EVENTS//[_,]/}
SCALE_SESSIONS=${BENCH_SCALE_SESSIONS:-10000000}
SCALE_SESSIONS=${SCALE_SESSIONS//[_,]/}
URL=http://127.0.0.1:$PORT
CONSTANT_URL=http://127.0.0.1:$((PORT + 1))
BARE_URL=http://127.0.0.1:$((PORT + 2))
OTHER_URL=http://127.0.0.1:$((PORT + 3))

say() { printf '\n== %s\n' "$*" >&2; }
die() {
  echo "bench: $*" >&2
  exit 1
}
# 1234567 -> 1,234,567
fmt() { echo "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }

for n in "$SESSIONS" "$EVENTS" "$SCALE_SESSIONS" "$ROUNDS"; do
  [[ $n =~ ^[0-9]+$ ]] || die "BENCH_SESSIONS, BENCH_EVENTS, BENCH_SCALE_SESSIONS and BENCH_ROUNDS are whole numbers"
done
if [ "$SESSIONS" -lt 1000 ] || [ "$SCALE_SESSIONS" -lt 1000 ]; then
  die "BENCH_SESSIONS and BENCH_SCALE_SESSIONS are at least 1000"
fi
[ "$ROUNDS" -ge 1 ] || die "BENCH_ROUNDS is at least 1"
case $ONLY in
  "" | ratios | flat | scale | startup) ;;
  *) die "BENCH_ONLY is one of ratios, flat, scale, startup (not $ONLY)" ;;
esac

# --- tools -------------------------------------------------------------------------------
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

say "building (release)"
cargo build --release --bin doorman --example seed --example probe --example reference
mkdir -p "$OUT/bin"
# Copied at once: the run uses these even if the target directory is rebuilt meanwhile.
cp -f "$TARGET/release/doorman" "$TARGET"/release/examples/{seed,probe,reference} "$OUT/bin/"
BIN=$OUT/bin/doorman
SEED=$OUT/bin/seed
PROBE=$OUT/bin/probe
REFERENCE=$OUT/bin/reference
# The single data set of earlier versions of this script, never read again.
rm -f "$OUT/seed.sqlite3" "$OUT/tokens.txt" "$OUT/seed-ms"

# --- data sets ---------------------------------------------------------------------------
# A data set per size, kept for later runs: seed-s<sessions>-e<events>.sqlite3 and its
# tokens file. Seeded sessions were created up to 13 days ago and idle-expire after 14: a
# seed is good for a day. The tokens file is written last, so a seed cut short is redone;
# its `size` line says what the seed holds. Sets SEED_DB, SEED_TOKENS and SEED_MS_FILE.
seed_size() { awk '$1 == "size" { print $2 "-" $3; exit }' "$1" 2>/dev/null || true; }
ensure_seed() {
  local s=$1 e=$2 start
  SEED_DB=$OUT/seed-s$s-e$e.sqlite3
  SEED_TOKENS=$OUT/tokens-s$s-e$e.txt
  SEED_MS_FILE=$OUT/seed-s$s-e$e.ms
  if [ -n "${BENCH_RESEED:-}" ] || [ ! -s "$SEED_DB" ] || [ "$(seed_size "$SEED_TOKENS")" != "$s-$e" ] ||
    [ -n "$(find "$SEED_DB" -mmin +1200)" ]; then
    say "seeding $(fmt "$s") sessions and $(fmt "$e") events (takes a while)"
    rm -f "$SEED_TOKENS" "$SEED_MS_FILE"
    start=$(date +%s%N)
    BENCH_SESSIONS=$s BENCH_EVENTS=$e "$SEED" "$SEED_DB" "$SEED_TOKENS"
    echo $((($(date +%s%N) - start) / 1000000)) >"$SEED_MS_FILE"
    [ "$(seed_size "$SEED_TOKENS")" = "$s-$e" ] ||
      die "the seed did not make $s sessions and $e events (an outdated build of bench/seed.rs?)"
  fi
}

# A fresh working copy of a data set, for a server to write to.
working_copy() {
  local from=$1 to=$2
  rm -f "$to" "$to-wal" "$to-shm"
  cp "$from" "$to"
}

# token KIND FILE: the first token of that kind in a tokens file.
token() { awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }

# The servers' settings: loopback is the proxy, and one protected application has
# rules, for the forward-auth row (requests without X-Forwarded-* match no application).
cat >"$OUT/doorman.toml" <<'TOML'
[server]
trusted_proxies = ["127.0.0.1/32"]

[[applications]]
name = "Grafana"
url = "https://grafana.bench.example"
allow_roles = ["user"]
allow_emails = ["*.example"]
TOML

# --- back-channel logout: two OpenID clients whose receivers `probe logouts` runs --------
# (the seed gives 1,000 sessions a grant of each; nothing else uses them)
LOGOUT_PORTS=($((PORT + 4)) $((PORT + 5)))
LOGOUT_HASH=sha256:$(printf 'bench-logout' | sha256sum | cut -d' ' -f1)
for i in 0 1; do
  c=bench-$([ "$i" = 0 ] && echo a || echo b)
  cat >>"$OUT/doorman.toml" <<TOML

[[applications]]
name = "Bench $([ "$i" = 0 ] && echo A || echo B)"
url = "https://$c.bench.example"

[applications.oidc]
client_id = "$c"
client_secret_hash = "$LOGOUT_HASH"
redirect_uris = ["https://$c.bench.example/callback"]
backchannel_logout_uri = "http://127.0.0.1:${LOGOUT_PORTS[$i]}/bc/$c"
TOML
done

# --- servers -----------------------------------------------------------------------------
PIDS=()
BG_PID=""
cleanup() {
  [ -n "$BG_PID" ] && kill "$BG_PID" 2>/dev/null
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$URL" "$CONSTANT_URL" "$BARE_URL" "$OTHER_URL"; do
  if curl -s -o /dev/null "$p/"; then
    die "something already listens on ${p##*:}; set BENCH_PORT (it uses BENCH_PORT to BENCH_PORT+3)"
  fi
done

# await_up URL PID LOG [curl options]: until URL answers, or the process is gone.
await_up() {
  local url=$1 pid=$2 log=$3
  shift 3
  until curl -s -o /dev/null "$@" "$url"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench: a server did not start; see $log" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.002
  done
}

# start_doorman URL DB LOG: started from target/bench, so that it reads the doorman.toml
# written above and none of the developer's. Sets LAST_PID, and START_MS to the
# milliseconds from launch to the first answered request.
start_doorman() {
  local url=$1 db=$2 log=$3 start
  start=$(date +%s%N)
  (cd "$OUT" && DOORMAN_STORAGE__PATH="$db" DOORMAN_SERVER__LISTEN="${url#http://}" \
    RUST_LOG=info exec "$BIN" serve) >>"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  await_up "$url/healthz" "$LAST_PID" "$log" -f
  START_MS=$((($(date +%s%N) - start) / 1000000))
}

stop() {
  kill "$1"
  wait "$1" 2>/dev/null || true
  local pid left=()
  for pid in "${PIDS[@]}"; do
    [ "$pid" = "$1" ] || left+=("$pid")
  done
  PIDS=("${left[@]}")
}

# The two reference servers: a constant 200, and the bare token lookup in DB.
start_references() {
  local db=$1
  "$REFERENCE" constant "${CONSTANT_URL#http://}" >>"$OUT/reference.log" 2>&1 &
  PIDS+=("$!")
  await_up "$CONSTANT_URL/" $! "$OUT/reference.log"
  "$REFERENCE" bare "${BARE_URL#http://}" "$db" >>"$OUT/reference.log" 2>&1 &
  PIDS+=("$!")
  await_up "$BARE_URL/auth/verify" $! "$OUT/reference.log"
}

# Resident memory of a server now: "VmRSS N MB (anon N, file N)"; the file-backed part
# holds the pages of the mapped location database that lookups have touched.
rss() {
  awk '/^VmRSS/ { t = $2 } /^RssAnon/ { a = $2 } /^RssFile/ { f = $2 }
    END { printf "VmRSS %.0f MB (anon %.0f, file %.0f)", t / 1024, a / 1024, f / 1024 }' \
    "/proc/$1/status"
}
# The most a server has held: "VmHWM N MB".
peak() { awk '/^VmHWM/ { printf "VmHWM %.0f MB", $2 / 1024 }' "/proc/$1/status"; }

ROWS=()
row() { ROWS+=("$(printf '%-52s | %-22s | %s' "$1" "$2" "$3")"); }

table() {
  local cpu memtotal
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  memtotal=$(awk '/^MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)
  {
    echo
    echo "Doorman load benchmark${ONLY:+ ($ONLY)} — $(nproc) CPUs ($cpu), $memtotal RAM, wrk -t$THREADS -c$CONNS, $DURATION per load"
    echo "load average when done: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
    echo
    printf '%-52s | %-22s | %s\n' "what" "target" "measured"
    printf '%-52s-|-%-22s-|-%s\n' "$(printf '%.0s-' {1..52})" "$(printf '%.0s-' {1..22})" "--------"
    printf '%s\n' "${ROWS[@]}"
  } | tee "$OUT/results${ONLY:+-$ONLY}.txt"
}

# --- loads -------------------------------------------------------------------------------
# wrk with latency percentiles; prints "req/s p50 p99 errors" (times in ms).
load() {
  local name=$1 conns=$2
  shift 2
  local file
  file=$OUT/wrk-$(echo "$name" | tr -c 'a-zA-Z0-9' '_').txt
  wrk -t"$THREADS" -c"$conns" -d"$DURATION" --latency "$@" >"$file"
  awk '
    function ms(v) {
      if (v ~ /us$/) return v * 0.001
      if (v ~ /ms$/) return v + 0
      if (v ~ /s$/) return v * 1000
      return v
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { bad += $NF }
    /Socket errors:/ { bad += 1 }
    END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad }' "$file"
}

# One table row per load: what, target, measured.
measure() {
  local name=$1 target=$2 conns=$3
  shift 3
  say "$name ($conns connections, $DURATION)"
  read -r rps p50 p99 bad < <(load "$name" "$conns" "$@")
  local note=""
  [ "$bad" != 0 ] && note=" ($bad errors or non-2xx)"
  note+=", RSS $(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status") MB"
  row "$name" "$target" "$rps req/s, p50 $p50 ms, p99 $p99 ms$note"
  echo "  $rps req/s, p50 $p50 ms, p99 $p99 ms$note" >&2
}

# --- interleaved rounds ------------------------------------------------------------------
# Loads that are compared are run in turn, round after round, so that whatever else the
# machine does weighs on all of them alike. Each load appends "req/s p50 p99 errors" to
# target/bench/rounds/KEY; a figure is the median of its rounds, a ratio is the ratio of
# two medians.
RUNS=$OUT/rounds
rm -rf "$RUNS"
mkdir -p "$RUNS"
ROUND=0

round_load() {
  local key=$1 conns=$2
  shift 2
  local r
  r=$(load "round-$key" "$conns" "$@")
  echo "$r" >>"$RUNS/$key"
  read -r rps p50 p99 bad <<<"$r"
  printf '  round %s/%s %-10s %7s req/s, p50 %s ms, p99 %s ms%s\n' "$ROUND" "$ROUNDS" "$key" \
    "$rps" "$p50" "$p99" "$([ "$bad" = 0 ] || echo ", $bad errors or non-2xx")" >&2
}

# figure KEY COLUMN median|max|sum: over KEY's rounds (column 1 req/s, 2 p50, 3 p99, 4 errors).
figure() {
  awk -v c="$2" '{ print $c }' "$RUNS/$1" | sort -g | awk -v how="$3" '
    { v[NR] = $1; s += $1 }
    END {
      if (how == "max") print v[NR]
      else if (how == "sum") print s
      else if (NR % 2) print v[(NR + 1) / 2]
      else print (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

# A row for one compared load: best and median req/s, median p99.
round_row() {
  local key=$1 name=$2 target=$3 bad note=""
  bad=$(figure "$key" 4 sum)
  [ "$bad" != 0 ] && note=", $bad errors or non-2xx in all"
  row "$name" "$target" "$(printf 'best %.0f / median %.0f req/s, median p99 %.2f ms%s' \
    "$(figure "$key" 1 max)" "$(figure "$key" 1 median)" "$(figure "$key" 3 median)" "$note")"
}

# ratio_row NAME A B OP TARGET [COLUMN]: median of A over median of B (req/s, or column
# 3 for p99), and whether it meets OP TARGET (">=" or "<=").
ratio_row() {
  local name=$1 a=$2 b=$3 op=$4 target=$5 col=${6:-1} unit=req/s
  [ "$col" = 3 ] && unit="ms p99"
  local ma mb
  ma=$(figure "$a" "$col" median)
  mb=$(figure "$b" "$col" median)
  row "$name" "$op $target" "$(awk -v a="$ma" -v b="$mb" -v op="$op" -v t="$target" -v u="$unit" '
    BEGIN {
      if (b <= 0) { printf "n/a (median of the second is %s)", b; exit }
      r = a / b
      ok = (op == ">=") ? (r >= t) : (r <= t)
      f = (u == "req/s") ? "%.2f (medians %.0f / %.0f %s) %s" : "%.2f (medians %.2f / %.2f %s) %s"
      printf f, r, a, b, u, ok ? "met" : "NOT MET"
    }')"
}

rounds() {
  local body=$1
  for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    say "round $ROUND of $ROUNDS ($DURATION per load)"
    "$body"
  done
}

# --- start-up only -----------------------------------------------------------------------
if [ "$ONLY" = startup ]; then
  DB=$OUT/doorman.sqlite3
  rm -f "$DB" "$DB-wal" "$DB-shm"
  say "starting the server on $URL (first start on an empty database, then a restart)"
  rm -f "$OUT"/geolite2-city-*.mmdb "$OUT"/dbip-city-*.mmdb "$OUT/server.log"
  start_doorman "$URL" "$DB" "$OUT/server.log"
  FIRST_MS=$START_MS
  stop "$LAST_PID"
  start_doorman "$URL" "$DB" "$OUT/server.log"
  GEO_FILES=$(du -cm "$OUT"/dbip-city-*.mmdb | awk 'END { print $1 }')
  row "start-up to first answered request (empty database)" "1 s" \
    "$FIRST_MS ms first start (unpacks DB-IP, $GEO_FILES MB), $START_MS ms later starts"
  row "server memory just after start" "within 20% of before" "$(rss "$LAST_PID")"
  table
  exit 0
fi

# --- flat with data, and scale: two Doormans side by side --------------------------------
# Rounds of the flat and scale modes: the same loads on A and on B.
SEARCH="/api/v1/admin/sessions?q=user0424"
flat_round() {
  round_load verify-a "$CONNS" "${A_AUTH[@]}" "$URL/auth/verify"
  round_load verify-b "$CONNS" "${B_AUTH[@]}" "$OTHER_URL/auth/verify"
}
scale_round() {
  flat_round
  round_load search-a 16 "${A_OWNER[@]}" "$URL$SEARCH"
  round_load search-b 16 "${B_OWNER[@]}" "$OTHER_URL$SEARCH"
}

# Data set A on $URL, B on $OTHER_URL; each is loaded with its own tokens.
if [ "$ONLY" = flat ] || [ "$ONLY" = scale ]; then
  if [ "$ONLY" = flat ]; then
    A_SIZE=("$SESSIONS" "$EVENTS") B_SIZE=("$SESSIONS" 0)
    A_NAME="$(fmt "$EVENTS") events" B_NAME="no events"
  else
    A_SIZE=("$SCALE_SESSIONS" 0) B_SIZE=("$SESSIONS" 0)
    A_NAME="$(fmt "$SCALE_SESSIONS") sessions" B_NAME="$(fmt "$SESSIONS") sessions"
  fi
  [ "${A_SIZE[*]}" != "${B_SIZE[*]}" ] || echo "bench: both sides are the same data set" >&2
  ensure_seed "${A_SIZE[@]}"
  A_TOKENS=$SEED_TOKENS
  working_copy "$SEED_DB" "$OUT/doorman.sqlite3"
  ensure_seed "${B_SIZE[@]}"
  B_TOKENS=$SEED_TOKENS
  working_copy "$SEED_DB" "$OUT/doorman-b.sqlite3"
  say "starting Doorman on $URL (a: $A_NAME) and on $OTHER_URL (b: $B_NAME)"
  rm -f "$OUT/server.log" "$OUT/server-b.log"
  start_doorman "$URL" "$OUT/doorman.sqlite3" "$OUT/server.log"
  SERVER_PID=$LAST_PID
  start_doorman "$OTHER_URL" "$OUT/doorman-b.sqlite3" "$OUT/server-b.log"
  A_AUTH=(-H "Authorization: Bearer $(token hot "$A_TOKENS")")
  B_AUTH=(-H "Authorization: Bearer $(token hot "$B_TOKENS")")
  A_OWNER=(-H "Authorization: Bearer $(token owner "$A_TOKENS")")
  B_OWNER=(-H "Authorization: Bearer $(token owner "$B_TOKENS")")
  say "warming up"
  wrk -t1 -c8 -d3s "${A_AUTH[@]}" "$URL/auth/verify" >/dev/null
  wrk -t1 -c8 -d3s "${B_AUTH[@]}" "$OTHER_URL/auth/verify" >/dev/null
  if [ "$ONLY" = scale ]; then
    wrk -t1 -c8 -d2s "${A_OWNER[@]}" "$URL$SEARCH" >/dev/null
    wrk -t1 -c8 -d2s "${B_OWNER[@]}" "$OTHER_URL$SEARCH" >/dev/null
  fi

  if [ "$ONLY" = flat ]; then
    rounds flat_round
    round_row verify-a "GET /auth/verify, $A_NAME" ""
    round_row verify-b "GET /auth/verify, $B_NAME" ""
    ratio_row "flat: verify ($A_NAME / $B_NAME)" verify-a verify-b ">=" 0.95
  else
    rounds scale_round
    round_row verify-a "GET /auth/verify, $A_NAME" ""
    round_row verify-b "GET /auth/verify, $B_NAME" ""
    # user0424: users 42,400 to 42,499 (~1,000 sessions) on both sides when each has
    # 425,000 sessions or more (one user per ten sessions).
    round_row search-a "admin search q=user0424, $A_NAME" ""
    round_row search-b "admin search q=user0424, $B_NAME" ""
    ratio_row "scale: verify ($A_NAME / $B_NAME)" verify-a verify-b ">=" 0.9
    ratio_row "scale: admin search p99 ($A_NAME / $B_NAME)" search-a search-b "<=" 1.5 3
  fi
  table
  exit 0
fi

# --- the whole run, or the ratios alone --------------------------------------------------
ensure_seed "$SESSIONS" "$EVENTS"
TOKENS=$SEED_TOKENS
export BENCH_TOKENS=$TOKENS
DB=$OUT/doorman.sqlite3
working_copy "$SEED_DB" "$DB"
HOT=$(token hot "$TOKENS")
FIFTY=$(token fifty "$TOKENS")
OWNER=$(token owner "$TOKENS")
HOT_COUNT=$(grep -c '^hot ' "$TOKENS" || true)
PAIR_COUNT=$(grep -c '^pair ' "$TOKENS" || true)

# The first start unpacks the embedded DB-IP database (an IPv4 and an IPv6 file) beside
# the database file; later starts map the unpacked files. Both are timed.
say "starting the server on $URL (first start, then a restart)"
rm -f "$OUT"/geolite2-city-*.mmdb "$OUT"/dbip-city-*.mmdb "$OUT/server.log"
start_doorman "$URL" "$DB" "$OUT/server.log"
FIRST_MS=$START_MS
stop "$LAST_PID"
start_doorman "$URL" "$DB" "$OUT/server.log"
SERVER_PID=$LAST_PID
STARTUP_MS=$START_MS
STARTED_MEM=$(rss "$SERVER_PID")
GEO_FILES=$(du -cm "$OUT"/dbip-city-*.mmdb | awk 'END { print $1 }')

say "starting the references: constant on $CONSTANT_URL, bare lookup on $BARE_URL"
rm -f "$OUT/reference.log"
# The bare lookup reads the very file Doorman serves, so both find its pages cached alike.
start_references "$DB"

AUTH=(-H "Authorization: Bearer $HOT")
say "warming up"
wrk -t1 -c8 -d3s "${AUTH[@]}" "$URL/auth/verify" >/dev/null
wrk -t1 -c8 -d1s "${AUTH[@]}" "$BARE_URL/auth/verify" >/dev/null
wrk -t1 -c8 -d1s "${AUTH[@]}" "$CONSTANT_URL/auth/verify" >/dev/null

# The session check against its yardsticks: every load presents the same token.
ratio_round() {
  round_load constant "$CONNS" "${AUTH[@]}" "$CONSTANT_URL/auth/verify"
  round_load bare "$CONNS" "${AUTH[@]}" "$BARE_URL/auth/verify"
  round_load verify "$CONNS" "${AUTH[@]}" "$URL/auth/verify"
  round_load me "$CONNS" "${AUTH[@]}" "$URL/api/v1/me"
  round_load sessions "$CONNS" -H "Authorization: Bearer $FIFTY" "$URL/api/v1/sessions"
}
say "ratios: $ROUNDS interleaved rounds of constant, bare, verify, me, sessions (50)"
rounds ratio_round
round_row constant "constant answer (poem, reference)" ""
round_row bare "bare token lookup (poem+r2d2+SQLite, reference)" ""
round_row verify "GET /auth/verify (one token), rounds" ""
round_row me "GET /api/v1/me (one token), rounds" ""
round_row sessions "GET /api/v1/sessions (50 sessions), rounds" ""
ratio_row "ratio verify / bare" verify bare ">=" 0.95
ratio_row "ratio verify / constant" verify constant ">=" 0.6
ratio_row "ratio me / verify" me verify ">=" 0.85
ratio_row "ratio sessions (50) / verify" sessions verify ">=" 0.25

if [ "$ONLY" = ratios ]; then
  row "server memory after the loads" "100 MB" "$(peak "$SERVER_PID"); $(rss "$SERVER_PID")"
  table
  exit 0
fi

measure "GET /auth/verify (one token)" "20000 req/s, p99 5 ms" "$CONNS" "${AUTH[@]}" "$URL/auth/verify"
measure "GET /api/v1/me (one token)" "20000 req/s, p99 5 ms" "$CONNS" "${AUTH[@]}" "$URL/api/v1/me"
measure "GET /api/authz/forward-auth (rules, X-Forwarded-*)" "within 10% of verify" "$CONNS" \
  "${AUTH[@]}" -H "X-Forwarded-Proto: https" -H "X-Forwarded-Host: grafana.bench.example" \
  -H "X-Forwarded-Uri: /d/1?orgId=1" -H "X-Forwarded-Method: GET" "$URL/api/authz/forward-auth"
measure "GET /auth/verify ($(fmt "$HOT_COUNT") tokens in turn)" "20000 req/s, p99 5 ms" "$CONNS" \
  -s "$ROOT/bench/rotate.lua" "$URL"
BENCH_PATH=/api/v1/me measure "GET /api/v1/me ($(fmt "$HOT_COUNT") tokens in turn)" \
  "20000 req/s, p99 5 ms" "$CONNS" -s "$ROOT/bench/rotate.lua" "$URL"
measure "GET /api/v1/sessions (user with 50 sessions)" "5000 req/s" "$CONNS" \
  -H "Authorization: Bearer $FIFTY" "$URL/api/v1/sessions"

# Admin search as the owner over every account; 50 per page (the default). One user per
# ten sessions (bench/seed.rs), named user<n, six digits>: user0424 is users 42,400 to
# 42,499 when there are that many.
USERS=$((SESSIONS / 10))
FOUND=$((USERS - 42400))
FOUND=$((FOUND < 0 ? 0 : FOUND > 100 ? 100 : FOUND))
for q in "fifty@:1 user, 50 sessions" "user0424:$FOUND users, ~$(fmt $((FOUND * 10))) sessions" \
  "@hooli.:$(fmt $((USERS / 10))) users, ~$(fmt $((SESSIONS / 10))) sessions" \
  ".example:every user, $(fmt "$SESSIONS") sessions" "nobody:no match"; do
  measure "GET /api/v1/admin/sessions?q=${q%%:*} (${q#*:})" "p99 50 ms" 16 \
    -H "Authorization: Bearer $OWNER" "$URL/api/v1/admin/sessions?q=${q%%:*}"
done

# The security log as the owner, over BENCH_EVENTS events: the newest page, one type,
# one user, one account (what its admin sees), a rare type in one account, a page deep
# down, and one day a week ago.
EUSER=$(token eventuser "$TOKENS")
EACCOUNT=$(token eventaccount "$TOKENS")
ECURSOR=$(token eventcursor "$TOKENS")
DAY=$(date -u -d '7 days ago' +%Y-%m-%d)
[ "$EVENTS" = 0 ] && row "GET /api/v1/admin/events (the security log)" "p99 20 ms" "not loaded: BENCH_EVENTS=0"
[ "$EVENTS" = 0 ] || for q in ":newest page" "type=login.failed:one type" "user_id=$EUSER:one user's events" \
  "account_id=$EACCOUNT:one account" "account_id=$EACCOUNT&type=access.denied:rare type, one account" \
  "cursor=$ECURSOR:a page halfway down" \
  "since=${DAY}T00%3A00%3A00Z&until=${DAY}T23%3A59%3A59Z&type=session.ended:one day, one type"; do
  measure "GET /api/v1/admin/events?${q%%:*} (${q#*:})" "p99 20 ms" 16 \
    -H "Authorization: Bearer $OWNER" "$URL/api/v1/admin/events?${q%%:*}"
done

say "termination: $(fmt "$PAIR_COUNT") x (end a session, then present its token), under load"
wrk -t1 -c16 -d120s -s "$ROOT/bench/rotate.lua" "$URL" >/dev/null &
BG_PID=$!
TERM_LINE=$("$PROBE" terminate "$URL" "$TOKENS" || true)
kill "$BG_PID" 2>/dev/null
wait "$BG_PID" 2>/dev/null || true
BG_PID=""
echo "  $TERM_LINE" >&2
row "DELETE /api/v1/sessions/{id}, then the ended token" "refused, always" "${TERM_LINE#terminate: }"

say "sign-in: 30 sequential sign-ins, then the argon2 verify alone"
SIGNIN_LINE=$("$PROBE" signin "$URL" "$TOKENS" 30 || true)
echo "  $SIGNIN_LINE" >&2
row "POST /api/v1/login, beyond the argon2 hash" "2 ms" "${SIGNIN_LINE#signin: }"

# --- back-channel logout -------------------------------------------------------------------
# 1,000 sessions holding two OpenID grants each end (as the owner ends them), spread over
# one load's duration; each end's two logout tokens go to receivers on loopback. The
# session check is loaded just before and during it.
say "logout delivered: 1,000 sessions x 2 apps end over $DURATION; the session check meanwhile"
case $DURATION in
  *m) LOGOUT_SECS=$(( ${DURATION%m} * 60 )) ;;
  *s) LOGOUT_SECS=${DURATION%s} ;;
  *) LOGOUT_SECS=$DURATION ;;
esac
read -r V_RPS _ V_P99 _ < <(load "verify before logouts" "$CONNS" "${AUTH[@]}" "$URL/auth/verify")
"$PROBE" logouts "$URL" "$TOKENS" "${LOGOUT_PORTS[@]}" "$LOGOUT_SECS" >"$OUT/logouts.txt" 2>&1 &
BG_PID=$!
read -r D_RPS _ D_P99 D_BAD < <(load "verify during logouts" "$CONNS" "${AUTH[@]}" "$URL/auth/verify")
wait "$BG_PID" 2>/dev/null || true
BG_PID=""
LOGOUT_LINE=$(tail -n 1 "$OUT/logouts.txt")
echo "  $LOGOUT_LINE" >&2
row "logout delivered (end to the receiver's 200)" "p99 2 s" "${LOGOUT_LINE#logouts: }"
V_NOTE=""
[ "$D_BAD" != 0 ] && V_NOTE=" ($D_BAD errors or non-2xx)"
row "GET /auth/verify during those logouts / just before" "within noise" \
  "$(awk -v d="$D_RPS" -v b="$V_RPS" 'BEGIN { printf "%.2f", d / b }') x req/s ($D_RPS vs $V_RPS), p99 $D_P99 vs $V_P99 ms$V_NOTE"
echo "  verify: $D_RPS req/s during, $V_RPS before; p99 $D_P99 vs $V_P99 ms" >&2

row "server memory after the loads" "100 MB" "$(peak "$SERVER_PID"); $(rss "$SERVER_PID")"
row "start-up to first answered request" "1 s" \
  "$FIRST_MS ms first start (unpacks DB-IP, $GEO_FILES MB), $STARTUP_MS ms later starts ($(fmt "$SESSIONS") sessions)"
row "server memory just after the later start" "within 20% of before" "$STARTED_MEM"
[ -f "$SEED_MS_FILE" ] && row "seeding the data set (bench/seed.rs)" "a couple of minutes" \
  "$(($(cat "$SEED_MS_FILE") / 1000)) s ($(fmt "$SESSIONS") sessions, $(fmt "$EVENTS") events)"
table
