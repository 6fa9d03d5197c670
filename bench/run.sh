#!/usr/bin/env bash
# Doorman load benchmark: `bash bench/run.sh`.
#
# Builds the release binary, seeds a database of 10 accounts, 100,000 users and 1,000,000
# active sessions (bench/seed.rs, once; later runs start from a pristine copy), starts the
# server on loopback, loads it with wrk and prints a table of figures. It measures; it
# does not fail on a slow machine. Everything it writes stays under target/bench/.
#
# Knobs (environment): BENCH_DURATION (10s per load), BENCH_CONNECTIONS (32),
# BENCH_THREADS (wrk threads, 1), BENCH_PORT (18080), BENCH_RESEED=1 (rebuild the data),
# BENCH_ONLY=startup (only the start-up time and memory with the embedded location
# database, on an empty database: no seeding, no loads).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/bench
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-1}
PORT=${BENCH_PORT:-18080}
ONLY=${BENCH_ONLY:-}
URL=http://127.0.0.1:$PORT
TOKENS=$OUT/tokens.txt
export BENCH_TOKENS=$TOKENS

say() { printf '\n== %s\n' "$*" >&2; }

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
cargo build --release --bin doorman --example seed --example probe
RELEASE=${CARGO_TARGET_DIR:-$ROOT/target}/release
BIN=$RELEASE/doorman
SEED=$RELEASE/examples/seed
PROBE=$RELEASE/examples/probe
mkdir -p "$OUT"

# --- data set ----------------------------------------------------------------------------
# Seeded sessions were created up to 13 days ago and idle-expire after 14: a seed is good
# for a day.
PRISTINE=$OUT/seed.sqlite3
if [ "$ONLY" = startup ]; then
  : # an empty database, created by the server
elif [ -n "${BENCH_RESEED:-}" ] || [ ! -s "$PRISTINE" ] || [ ! -s "$TOKENS" ] ||
  [ -n "$(find "$PRISTINE" -mmin +1200)" ]; then
  say "seeding 1,000,000 sessions and 10,000,000 events (takes a while)"
  start=$(date +%s%N)
  "$SEED" "$PRISTINE" "$TOKENS"
  SEED_SECS=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "$SEED_SECS" >"$OUT/seed-ms"
fi
DB=$OUT/doorman.sqlite3
rm -f "$DB" "$DB-wal" "$DB-shm"
[ "$ONLY" = startup ] || cp "$PRISTINE" "$DB"

# The server's settings: loopback is the proxy, and one protected application has
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
LOGOUT_PORTS=($((PORT + 1)) $((PORT + 2)))
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

# --- server ------------------------------------------------------------------------------
SERVER_PID=""
BG_PID=""
cleanup() {
  [ -n "$BG_PID" ] && kill "$BG_PID" 2>/dev/null
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if curl -s -o /dev/null "$URL/healthz"; then
  echo "bench: something already listens on port $PORT; set BENCH_PORT" >&2
  exit 1
fi
# Started from target/bench, so that it reads the doorman.toml written above and none of the
# developer's. Sets
# SERVER_PID, and START_MS to the milliseconds from launch to the first answered request.
start_server() {
  local start
  start=$(date +%s%N)
  (cd "$OUT" && DOORMAN_STORAGE__PATH="$DB" DOORMAN_SERVER__LISTEN="127.0.0.1:$PORT" \
    RUST_LOG=info exec "$BIN" serve) >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  until curl -s -o /dev/null -f "$URL/healthz"; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "bench: the server did not start; see $OUT/server.log" >&2
      cat "$OUT/server.log" >&2
      exit 1
    fi
    sleep 0.002
  done
  START_MS=$(( ($(date +%s%N) - start) / 1000000 ))
}

# Resident memory of the server now: "VmRSS N MB (anon N, file N)"; the file-backed part
# holds the pages of the mapped location database that lookups have touched.
rss() {
  awk '/^VmRSS/ { t = $2 } /^RssAnon/ { a = $2 } /^RssFile/ { f = $2 }
    END { printf "VmRSS %.0f MB (anon %.0f, file %.0f)", t / 1024, a / 1024, f / 1024 }' \
    "/proc/$SERVER_PID/status"
}

# The first start unpacks the embedded DB-IP database (an IPv4 and an IPv6 file) beside
# the database file; later starts map the unpacked files. Both are timed.
say "starting the server on $URL (first start, then a restart)"
rm -f "$OUT"/geolite2-city-*.mmdb "$OUT"/dbip-city-*.mmdb "$OUT/server.log"
start_server
FIRST_MS=$START_MS
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
start_server
STARTUP_MS=$START_MS
STARTED_MEM=$(rss)
GEO_FILES=$(du -cm "$OUT"/dbip-city-*.mmdb | awk 'END { print $1 }')
if [ "$ONLY" = startup ]; then
  ROWS=()
  row() { ROWS+=("$(printf '%-52s | %-22s | %s' "$1" "$2" "$3")"); }
  row "start-up to first answered request (empty database)" "1 s" \
    "$FIRST_MS ms first start (unpacks DB-IP, $GEO_FILES MB), $STARTUP_MS ms later starts"
  row "server memory just after start" "within 20% of before" "$STARTED_MEM"
  printf '%-52s | %-22s | %s\n' "what" "target" "measured"
  printf '%s\n' "${ROWS[@]}"
  exit 0
fi

token() { awk -v k="$1" '$1 == k { print $2; exit }' "$TOKENS"; }
OWNER=$(token owner)
FIFTY=$(token fifty)
HOT=$(token hot)

ROWS=()
row() { ROWS+=("$(printf '%-52s | %-22s | %s' "$1" "$2" "$3")"); }

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

say "warming up"
wrk -t1 -c8 -d3s -H "Authorization: Bearer $HOT" "$URL/auth/verify" >/dev/null

AUTH=(-H "Authorization: Bearer $HOT")
measure "GET /auth/verify (one token)" "20000 req/s, p99 5 ms" "$CONNS" "${AUTH[@]}" "$URL/auth/verify"
measure "GET /api/v1/me (one token)" "20000 req/s, p99 5 ms" "$CONNS" "${AUTH[@]}" "$URL/api/v1/me"
measure "GET /api/authz/forward-auth (rules, X-Forwarded-*)" "within 10% of verify" "$CONNS" \
  "${AUTH[@]}" -H "X-Forwarded-Proto: https" -H "X-Forwarded-Host: grafana.bench.example" \
  -H "X-Forwarded-Uri: /d/1?orgId=1" -H "X-Forwarded-Method: GET" "$URL/api/authz/forward-auth"
measure "GET /auth/verify (1,000 tokens in turn)" "20000 req/s, p99 5 ms" "$CONNS" \
  -s "$ROOT/bench/rotate.lua" "$URL"
BENCH_PATH=/api/v1/me measure "GET /api/v1/me (1,000 tokens in turn)" "20000 req/s, p99 5 ms" \
  "$CONNS" -s "$ROOT/bench/rotate.lua" "$URL"
measure "GET /api/v1/sessions (user with 50 sessions)" "5000 req/s" "$CONNS" \
  -H "Authorization: Bearer $FIFTY" "$URL/api/v1/sessions"

# Admin search as the owner over every account; 50 per page (the default).
for q in "fifty@:1 user, 50 sessions" "user0424:100 users, ~1,000 sessions" \
  "@hooli.:10,000 users, ~100,000 sessions" ".example:every user, 1,000,000 sessions" \
  "nobody:no match"; do
  measure "GET /api/v1/admin/sessions?q=${q%%:*} (${q#*:})" "p99 50 ms" 16 \
    -H "Authorization: Bearer $OWNER" "$URL/api/v1/admin/sessions?q=${q%%:*}"
done

# The security log as the owner, over 10,000,000 events: the newest page, one type, one
# user, one account (what its admin sees), a rare type in one account, a page deep down,
# and one day a week ago.
EUSER=$(token eventuser)
EACCOUNT=$(token eventaccount)
ECURSOR=$(token eventcursor)
DAY=$(date -u -d '7 days ago' +%Y-%m-%d)
for q in ":newest page" "type=login.failed:one type" "user_id=$EUSER:one user's events" \
  "account_id=$EACCOUNT:one account" "account_id=$EACCOUNT&type=access.denied:rare type, one account" \
  "cursor=$ECURSOR:a page halfway down" \
  "since=${DAY}T00%3A00%3A00Z&until=${DAY}T23%3A59%3A59Z&type=session.ended:one day, one type"; do
  measure "GET /api/v1/admin/events?${q%%:*} (${q#*:})" "p99 20 ms" 16 \
    -H "Authorization: Bearer $OWNER" "$URL/api/v1/admin/events?${q%%:*}"
done

say "termination: 1,000 x (end a session, then present its token), under load"
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

MEM=$(awk '/^VmRSS|^VmHWM/ { printf "%s %.0f MB  ", $1, $2 / 1024 }' "/proc/$SERVER_PID/status")
row "server memory after the loads" "150 MB" "$MEM"
row "start-up to first answered request" "1 s" \
  "$FIRST_MS ms first start (unpacks DB-IP, $GEO_FILES MB), $STARTUP_MS ms later starts (1,000,000 sessions)"
row "server memory just after the later start" "within 20% of before" "$STARTED_MEM"
[ -f "$OUT/seed-ms" ] && row "seeding the data set (bench/seed.rs)" "a couple of minutes" \
  "$(( $(cat "$OUT/seed-ms") / 1000 )) s"

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEMTOTAL=$(awk '/^MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)
{
  echo
  echo "Doorman load benchmark — $(nproc) CPUs ($CPU), $MEMTOTAL RAM, wrk -t$THREADS, $DURATION per load"
  echo "load average when done: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
  echo
  printf '%-52s | %-22s | %s\n' "what" "target" "measured"
  printf '%-52s-|-%-22s-|-%s\n' "$(printf '%.0s-' {1..52})" "$(printf '%.0s-' {1..22})" "--------"
  printf '%s\n' "${ROWS[@]}"
} | tee "$OUT/results.txt"
