#!/usr/bin/env bash
# Installs the Debian packages the build needs, once: samael (SAML) links
# libxmlsec1 through bindgen, which needs libclang; jemalloc (the binary's
# allocator) is built from C with make. Idempotent: installs only what is
# missing.
set -euo pipefail
need=""
for pkg in make gcc pkg-config libssl-dev libxml2-dev libxmlsec1-dev libxmlsec1-openssl libclang-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
  echo "installing Debian packages:$need"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need >/dev/null
fi
echo "ok: xmlsec1 $(pkg-config --modversion xmlsec1), libclang present"
