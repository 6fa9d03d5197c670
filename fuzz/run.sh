#!/usr/bin/env bash
# Fuzzes each target with cargo-fuzz (libFuzzer) for a bounded time:
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET]     (default 60)
#
# Installs cargo-fuzz when it is missing. cargo-fuzz passes nightly-only `-Z` flags to
# rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. The corpus grows in
# fuzz/corpus/<target> (seeded from fuzz/seeds/<target>); a crashing input is written to
# fuzz/artifacts/<target>/ and makes this script exit non-zero after all targets ran.
# Keep such an input as a test in tests/fuzz_regressions.rs.
#
# Built unoptimised (--dev) and without AddressSanitizer (-s none): Doorman forbids
# unsafe code, so ASan would find little, while an optimised, sanitised build of the whole
# dependency tree takes tens of minutes on a 2-core machine; this one takes a few.
# Panics, overflow checks and debug assertions are all on.
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-60}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

targets=(user_agent forwarded_for cursor config)
flags=(--dev --sanitizer none)
cargo fuzz build "${flags[@]}"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "== fuzz $t for ${secs}s"
  # -timeout: one input slower than this is a finding too (a parser that hangs).
  if ! cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzzing: ${#targets[@]} targets, ${secs}s each, no crash"
