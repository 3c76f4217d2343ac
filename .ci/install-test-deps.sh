#!/usr/bin/env bash
# Installs what the tests need beyond Go: nginx (HTTP ext_authz mode is tested through a
# real nginx) and its headers-more module, which the shipped envoy/deploy/nginx/nginx.conf
# loads to remove every client-sent X-Agentos-* header; and the PostgreSQL server
# (service accounts are tested against a real PostgreSQL, started by internal/pgtest in
# a temporary directory). Never skips silently: if something is missing and cannot be
# installed, it fails with a message saying why.
set -euo pipefail

# Debian's libnginx-mod-http-headers-more-filter installs the module here; the shipped
# nginx.conf's load_module names the same path.
headers_more=/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
# internal/pgtest looks for Debian's layout: /usr/lib/postgresql/<version>/bin/{postgres,initdb}.
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }

missing=()
have_nginx || missing+=(nginx)
[ -f "$headers_more" ] || missing+=(libnginx-mod-http-headers-more-filter)
have_postgres || missing+=(postgresql)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "the tests need ${missing[*]} (Debian packages), not installed; run as root (apt-get) or install them yourself" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "the tests need ${missing[*]}; no apt-get here: install the Debian package(s) '${missing[*]}' by hand" >&2
  exit 1
fi
echo "installing ${missing[*]} (apt-get) for the tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq

if ! have_nginx; then
  apt-get install -y -qq --no-install-recommends nginx-light libnginx-mod-http-headers-more-filter >/dev/null 2>&1 || \
    apt-get install -y -qq --no-install-recommends nginx libnginx-mod-http-headers-more-filter >/dev/null
  # Debian starts the packaged service; the tests run their own instances on loopback.
  if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
elif [ ! -f "$headers_more" ]; then
  apt-get install -y -qq --no-install-recommends libnginx-mod-http-headers-more-filter >/dev/null
fi
have_nginx || { echo "nginx install failed" >&2; exit 1; }
[ -f "$headers_more" ] || { echo "headers-more module install failed: $headers_more missing" >&2; exit 1; }

if ! have_postgres; then
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  # Debian creates and starts a cluster on port 5432; the tests run their own clusters
  # (initdb in a temporary directory, a free loopback port), so the packaged one is stopped.
  if command -v service >/dev/null 2>&1; then service postgresql stop >/dev/null 2>&1 || true; fi
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for v in /usr/lib/postgresql/*; do pg_ctlcluster "$(basename "$v")" main stop >/dev/null 2>&1 || true; done
  fi
  have_postgres || { echo "postgresql install failed: no /usr/lib/postgresql/*/bin/initdb" >&2; exit 1; }
fi
