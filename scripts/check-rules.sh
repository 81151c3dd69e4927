#!/usr/bin/env bash
# Every test docs/RULES.md names still exists, in the file it names (a rule
# must keep its test).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
count=0
while read -r name path; do
  count=$((count + 1))
  if ! grep -qE "fn $name\b" "$path" 2>/dev/null; then
    echo "docs/RULES.md names $name in $path, which does not define it" >&2
    missing=1
  fi
done < <(grep -oE '`[a-z0-9_]+` \(`[^`]+`\)' docs/RULES.md | sed -E 's/`([a-z0-9_]+)` \(`([^`]+)`\)/\1 \2/')
[ "$missing" -eq 0 ] || exit 1
[ "$count" -gt 0 ] || { echo "docs/RULES.md names no test" >&2; exit 1; }
echo "ok: the $count tests docs/RULES.md names exist where it says"
