#!/usr/bin/env bash
# Every test docs/RULES.md names still exists (a rule must keep its test).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
count=0
for name in $(grep -oE '`[a-z0-9_]+` \(`' docs/RULES.md | grep -oE '[a-z0-9_]+'); do
  count=$((count + 1))
  if ! grep -rqE "fn $name\b" crates tests --include=*.rs; then
    echo "docs/RULES.md names $name, which no test defines" >&2
    missing=1
  fi
done
[ "$missing" -eq 0 ] || exit 1
echo "ok: the $count tests docs/RULES.md names exist"
