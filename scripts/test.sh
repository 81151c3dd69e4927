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

# The store suite runs on SQLite always, and on PostgreSQL and MariaDB at
# these URLs (each test creates and drops its own database). Set a URL to
# the empty string to leave that database out; a server that is asked for
# but unreachable fails the run.
export SECUREAI_TEST_POSTGRES_URL="${SECUREAI_TEST_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/test}"
export SECUREAI_TEST_MYSQL_URL="${SECUREAI_TEST_MYSQL_URL-mysql://root@127.0.0.1:3306/test}"
# Rounds of each concurrency race (last admin, seats, single-use links).
export SECUREAI_RACE_ROUNDS="${SECUREAI_RACE_ROUNDS:-500}"
trap 'rm -f "$log"' EXIT

step() { printf '\n== %s\n' "$*"; }

step "database servers"
if [ -n "$SECUREAI_TEST_POSTGRES_URL" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    sleep 2
  fi
  pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is asked for but unreachable" >&2; exit 1; }
fi
if [ -n "$SECUREAI_TEST_MYSQL_URL" ]; then
  if ! mysqladmin -h 127.0.0.1 -uroot ping >/dev/null 2>&1 && [ -x /usr/sbin/mariadbd ]; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    sleep 3
  fi
  mysqladmin -h 127.0.0.1 -uroot ping || { echo "MariaDB is asked for but unreachable" >&2; exit 1; }
fi

step "system packages (samael's xmlsec needs libxmlsec1-dev and libclang-dev)"
./scripts/system-packages.sh

step "browser: Debian chromium and chromium-driver for the admin panel tests"
./scripts/chromium.sh

step "test peers: a real SMTP server (aiosmtpd, trustme from PyPI)"
python3 -c 'import aiosmtpd, trustme' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check aiosmtpd trustme
python3 -c 'import aiosmtpd, trustme; print("ok: aiosmtpd", aiosmtpd.__version__)'

step "test peers: real identity providers (npm oidc-provider, saml-idp)"
command -v node >/dev/null || { echo "node is required for the SSO test peers" >&2; exit 1; }
# Reinstall only when the lock file changed since the last install.
if ! cmp -s tests/peers/package-lock.json tests/peers/node_modules/.secureai-installed-lock; then
  npm ci --prefix tests/peers --no-audit --no-fund --loglevel=error
  cp tests/peers/package-lock.json tests/peers/node_modules/.secureai-installed-lock
fi
node -e 'for (const n of ["oidc-provider", "saml-idp"]) console.log("ok:", n, require("./tests/peers/node_modules/" + n + "/package.json").version)'

step "test peers: the Standard Webhooks reference library (PyPI), which checks our signatures"
python3 -c 'import standardwebhooks' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check 'standardwebhooks>=1.3,<2'
python3 -c 'import importlib.metadata as m; print("ok: standardwebhooks", m.version("standardwebhooks"))'

step "API fuzzing: schemathesis (PyPI)"
python3 -c 'import schemathesis' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
schemathesis --version

step "SCIM conformance: scim2-tester (PyPI)"
python3 -c 'import scim2_tester, httpx2' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check 'scim2-tester[httpx2]'
python3 -c 'import importlib.metadata as m; print("ok: scim2-tester", m.version("scim2-tester"))'

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
# Test code stays out of the binary: the in-memory adapters (`testing`) and
# the throw-away databases (`test-databases`) are features only tests enable.
if cargo tree -p secureai-app -e normal,features --prefix none \
    | grep -E '^secureai-(domain|store) feature "(testing|test-databases)"'; then
  echo "the secureai binary must not build test code" >&2
  exit 1
fi
echo "ok: the secureai binary builds no test adapters or test databases"

# Modules depend one way: no two modules of the domain, HTTP or app crates
# import each other, directly or round a loop; in the domain no service
# imports another, and the subdomains' models and ports form one order.
python3 scripts/check-modules.py --services crates/domain/src
python3 scripts/check-modules.py crates/http/src crates/app/src
# Files sized for a reader: no Rust source of ours over 600 lines.
long="$(find crates tests migrations -name '*.rs' -not -path '*/node_modules/*' -exec wc -l {} + \
  | awk '$2 != "total" && $1 > 600 { print $2 " (" $1 " lines)" }')"
[ -z "$long" ] || { echo "source files over 600 lines:"; echo "$long"; exit 1; } >&2
echo "ok: no source file over 600 lines"

step "rules: every test docs/RULES.md names exists"
./scripts/check-rules.sh

step "embedding: another service uses only the invitations and sessions services"
embedded="$(cargo run -q -p secureai-embedding-example)"
echo "$embedded"
[ "$embedded" = "signed in: grace@example.com (user)" ] \
  || { echo "the embedding example did not sign its invited user in" >&2; exit 1; }

step "build the secureai binary (the end-to-end suite runs it)"
cargo build -p secureai-app --bin secureai

step "API contract under fuzzing (schemathesis, every check, seed 42, as a user and as an admin)"
fuzz_log="$(mktemp)"
if ! python3 scripts/fuzz.py "$CARGO_TARGET_DIR/debug/secureai" --seed 42 --max-examples 20 >"$fuzz_log" 2>&1; then
  cat "$fuzz_log"
  echo "schemathesis found failures" >&2
  exit 1
fi
fuzz_summary="$(tail -1 "$fuzz_log")"
echo "$fuzz_summary"
rm -f "$fuzz_log"

step "SCIM 2.0 conformance (scim2-tester against the real server: discovery, Users CRUD, PATCH)"
scim_log="$(mktemp)"
if ! python3 scripts/scim-conformance.py "$CARGO_TARGET_DIR/debug/secureai" >"$scim_log" 2>&1; then
  cat "$scim_log"
  echo "scim2-tester found failures" >&2
  exit 1
fi
scim_summary="$(tail -1 "$scim_log")"
grep -E '^(DEVIATION|ACCEPTABLE|SKIPPED)' "$scim_log" || true
echo "$scim_summary"
rm -f "$scim_log"

step "tests"
cargo test --workspace --features secureai-domain/mocks 2>&1 | tee "$log"

# The HTTP suite again on each server database (it ran on SQLite above).
http_runs=""
for db in postgres mysql; do
  case "$db" in
    postgres) [ -n "$SECUREAI_TEST_POSTGRES_URL" ] || continue ;;
    mysql) [ -n "$SECUREAI_TEST_MYSQL_URL" ] || continue ;;
  esac
  step "HTTP suite on $db"
  run_log="$(mktemp)"
  if ! SECUREAI_TEST_HTTP_DB=$db cargo test -p secureai-tests --test api >"$run_log" 2>&1; then
    # Show what failed, not only the last lines.
    sed -n '/^failures:/,$p' "$run_log"
    cat "$run_log" >> "$log"
    echo "HTTP suite on $db failed" >&2
    exit 1
  fi
  cat "$run_log" >> "$log"
  tail -3 "$run_log"
  rm -f "$run_log"
  http_runs="$http_runs $db"
done

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
  END { printf "\ntests: %d passed, %d failed\n", total_passed, total_failed > "/dev/stderr" }
' "$log" 2>"$log.total"
echo
echo "HTTP suite ran on: sqlite$http_runs"
echo "store suite per database:"
for db in sqlite postgres mysql; do
  n=$(grep -cE "^test [a-z_]+::${db}::[a-z0-9_]+ \.\.\. ok$" "$log" || true)
  printf '  %-10s %3d passed\n' "$db" "$n"
done
[ -n "$SECUREAI_TEST_POSTGRES_URL" ] || echo "  (PostgreSQL left out: SECUREAI_TEST_POSTGRES_URL is empty)"
[ -n "$SECUREAI_TEST_MYSQL_URL" ] || echo "  (MariaDB left out: SECUREAI_TEST_MYSQL_URL is empty)"
oidc=$(grep -cE "^test oidc::[a-z0-9_]+ \.\.\. ok$" "$log" || true)
saml=$(grep -cE "^test saml::[a-z0-9_]+ \.\.\. ok$" "$log" || true)
echo "SSO tests, all databases: OIDC against npm oidc-provider $oidc passed, SAML against npm saml-idp $saml passed"
echo "$fuzz_summary"
echo "$scim_summary"
cat <<'TXT'

The HTTP suite starts the real server on a random port; the end-to-end
suite runs the real secureai binary (SQLite, and two instances sharing one
PostgreSQL or MariaDB). Mail goes through lettre's file transport (.eml files read back
and parsed) and, in the mail tests, through a real SMTP server (aiosmtpd: plain,
STARTTLS and implicit TLS with login, stopped and started). The browser
suite drives real headless Chromium through chromedriver and saves
screenshots into docs/screenshots.
TXT
# The closing line: every test binary's results added up.
cat "$log.total"
rm -f "$log.total"
