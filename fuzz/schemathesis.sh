#!/usr/bin/env bash
# Property-based testing of the HTTP API against its own OpenAPI document: schemathesis
# generates valid and invalid requests for every operation of /api/openapi.json and
# checks that none answers 5xx and that every answer is documented: its status, its
# content type and its body's schema.
#
#   bash fuzz/schemathesis.sh [MAX_EXAMPLES_PER_OPERATION]     (default 25)
#
# Builds the real binary, runs it on a free loopback port with a temporary database and
# a bootstrap owner, signs in for a bearer token, then runs `st run`. Exits non-zero on
# any failure. Installs schemathesis from PyPI when `st` is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-25}"
case "$examples" in
  '' | *[!0-9]*) echo "usage: $0 [MAX_EXAMPLES_PER_OPERATION]" >&2; exit 2 ;;
esac

if ! command -v st >/dev/null 2>&1; then
  python3 -m pip install --quiet schemathesis
fi

cargo build --quiet --bin doorman
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
bin="$target_dir/debug/doorman"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
email="owner@schemathesis.test"
password="schemathesis owner password"

# Only this run's settings: no doorman.toml (the working directory is the temp dir) and
# no inherited DOORMAN_* variables.
for v in $(env | sed -n 's/^\(DOORMAN_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
(
  cd "$work"
  DOORMAN_STORAGE__PATH="$work/doorman.sqlite3" \
  DOORMAN_SERVER__LISTEN="127.0.0.1:$port" \
  DOORMAN_SERVER__PUBLIC_URL="$base" \
  DOORMAN_BOOTSTRAP__EMAIL="$email" \
  DOORMAN_BOOTSTRAP__PASSWORD="$password" \
  DOORMAN_SECURITY__ARGON2__M=1024 \
  DOORMAN_SECURITY__ARGON2__T=1 \
  exec "$bin" serve
) >"$work/serve.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done

login() {
  curl -fsS "$base/api/v1/login" -H 'content-type: application/json' \
    -d "{\"email\": \"$email\", \"password\": \"$password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

# Run from the temp dir: schemathesis keeps its example database in ./.hypothesis.
run_st() {
  local token="$1"
  shift
  (cd "$work" && st run "$base/api/openapi.json" \
    --url "$base/api/v1" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples "$examples" \
    --seed 20261123 \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check all \
    "$@")
}

status=0
# Everything but sign-out with one session (sign-out would end it for the rest)…
run_st "$(login)" --exclude-operation-id logout || status=1
# …then sign-out on its own, with a fresh session.
run_st "$(login)" --include-operation-id logout || status=1

if grep -q "panicked" "$work/serve.log"; then
  echo "the server panicked:" >&2
  grep -B2 -A5 "panicked" "$work/serve.log" >&2
  status=1
fi
exit "$status"
