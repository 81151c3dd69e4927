#!/usr/bin/env bash
# Starts the service on its embedded defaults: 127.0.0.1:8080, SQLite in
# ./data, mail written to ./data/mail. Installs the build's Debian packages
# first if they are missing (see scripts/system-packages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh
exec cargo run -p secureai-app --bin secureai -- serve "$@"
