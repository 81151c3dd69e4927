#!/usr/bin/env bash
# The whole test suite, as CI runs it. Idempotent; safe on a fresh machine
# of this kind (Rust toolchain present). Prints which suites ran.
set -euo pipefail
cd "$(dirname "$0")/.."

# One cached target directory shared by every checkout on this machine, so a
# fresh clone does not rebuild every dependency.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/secureai/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

step() { printf '\n== %s\n' "$*"; }

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lint (cargo clippy --all-targets, warnings are errors)"
cargo clippy --workspace --all-targets --features secureai-domain/mocks -- -D warnings

step "architecture: the domain crate depends on no adapter technology"
if cargo tree -p secureai-domain -e normal --prefix none \
    | grep -E '^(sea-orm|sqlx|poem|lettre|reqwest|hyper|tokio) ' ; then
  echo "secureai-domain must not depend on the crates above" >&2
  exit 1
fi
echo "ok: no sea-orm, sqlx, poem, lettre, reqwest, hyper or tokio in secureai-domain"

step "build the secureai binary (the end-to-end suite runs it)"
cargo build -p secureai-app --bin secureai

step "tests"
cargo test --workspace --features secureai-domain/mocks 2>&1 | tee "$log"

step "suites that ran"
# Each test binary prints "Running <path> (...)" and then its result line.
awk '
  /^ *Running / {
    p = $NF; gsub(/[()]/, "", p); n = split(p, parts, "/"); suite = parts[n]
    sub(/-[0-9a-f]+$/, "", suite)
    suite = ($2 == "unittests") ? suite " (unit tests)" : suite " (integration suite)"
  }
  /^ *Doc-tests / { suite = $2 " (doc tests)" }
  /^test result:/ {
    passed = $4; failed = $6
    total_passed += passed; total_failed += failed
    if (passed + failed > 0) printf "  %-45s %4d passed, %d failed\n", suite, passed, failed
  }
  END { printf "\ntests: %d passed, %d failed\n", total_passed, total_failed }
' "$log"
cat <<'TXT'

Databases exercised: SQLite (store suite, HTTP suite, end-to-end).
Peers exercised: the real secureai binary and HTTP server on loopback; mail
through lettre's file transport (.eml files read back and parsed).
TXT
