#!/usr/bin/env bash
# Installs what the tests need beyond Go: nginx (HTTP ext_authz mode is tested through a
# real nginx) and the PostgreSQL server (service accounts are tested against a real
# PostgreSQL, started by internal/pgtest in a temporary directory). Never skips
# silently: if something is missing and cannot be installed, it fails with a message
# saying why.
set -euo pipefail

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
# internal/pgtest looks for Debian's layout: /usr/lib/postgresql/<version>/bin/{postgres,initdb}.
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }

missing=()
have_nginx || missing+=(nginx)
have_postgres || missing+=(postgresql)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "the tests need ${missing[*]}, not installed; run as root (apt-get) or install the Debian package(s) '${missing[*]}'" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "the tests need ${missing[*]}; no apt-get here: install the Debian package(s) '${missing[*]}' by hand" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq

if ! have_nginx; then
  echo "installing nginx (apt-get) for the end-to-end tests"
  apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 || \
    apt-get install -y -qq --no-install-recommends nginx >/dev/null
  # Debian starts the packaged service; the tests run their own instances on loopback.
  if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
  have_nginx || { echo "nginx install failed" >&2; exit 1; }
fi

if ! have_postgres; then
  echo "installing postgresql (apt-get) for the service-account tests"
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  # Debian creates and starts a cluster on port 5432; the tests run their own clusters
  # (initdb in a temporary directory, a free loopback port), so the packaged one is stopped.
  if command -v service >/dev/null 2>&1; then service postgresql stop >/dev/null 2>&1 || true; fi
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for v in /usr/lib/postgresql/*; do pg_ctlcluster "$(basename "$v")" main stop >/dev/null 2>&1 || true; done
  fi
  have_postgres || { echo "postgresql install failed: no /usr/lib/postgresql/*/bin/initdb" >&2; exit 1; }
fi
