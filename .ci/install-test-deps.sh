#!/usr/bin/env bash
# Installs what the end-to-end tests need beyond Go: nginx (HTTP ext_authz mode is
# tested through a real nginx). Never skips silently: if nginx is missing and
# cannot be installed, it fails with a message saying why.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "nginx is required by the end-to-end tests and is not installed; run as root (apt-get) or install the 'nginx' package" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "nginx is required by the end-to-end tests; no apt-get here: install the 'nginx' package by hand" >&2
  exit 1
fi
echo "installing nginx (apt-get) for the end-to-end tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 || \
  apt-get install -y -qq --no-install-recommends nginx >/dev/null
# Debian starts the packaged service; the tests run their own instances on loopback.
if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { echo "nginx install failed" >&2; exit 1; }
