#!/usr/bin/env bash
# Installs what the end-to-end tests need beyond Go: nginx (HTTP ext_authz mode is
# tested through a real nginx) and its headers-more module, which the shipped
# envoy/deploy/nginx/nginx.conf loads to remove every client-sent X-Agentos-* header.
# Never skips silently: if either is missing and cannot be installed, it fails with a
# message saying why.
set -euo pipefail

# Debian's libnginx-mod-http-headers-more-filter installs the module here; the shipped
# nginx.conf's load_module names the same path.
headers_more=/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }

pkgs=()
have_nginx || pkgs+=(nginx)
[ -f "$headers_more" ] || pkgs+=(libnginx-mod-http-headers-more-filter)
if [ ${#pkgs[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "the end-to-end tests need ${pkgs[*]} (Debian packages), not installed; run as root (apt-get) or install them yourself" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "the end-to-end tests need ${pkgs[*]}; no apt-get here: install nginx and its headers-more module ($headers_more) by hand" >&2
  exit 1
fi
echo "installing ${pkgs[*]} (apt-get) for the end-to-end tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ! have_nginx; then
  apt-get install -y -qq --no-install-recommends nginx-light libnginx-mod-http-headers-more-filter >/dev/null 2>&1 || \
    apt-get install -y -qq --no-install-recommends nginx libnginx-mod-http-headers-more-filter >/dev/null
  # Debian starts the packaged service; the tests run their own instances on loopback.
  if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
else
  apt-get install -y -qq --no-install-recommends libnginx-mod-http-headers-more-filter >/dev/null
fi
have_nginx || { echo "nginx install failed" >&2; exit 1; }
[ -f "$headers_more" ] || { echo "headers-more module install failed: $headers_more missing" >&2; exit 1; }
