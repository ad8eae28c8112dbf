#!/usr/bin/env bash
# Installs the Debian packages `make test` needs (pgTAP, pg_prove, redis-server for the cache's
# differential tests and benchmark, prometheus for promtool) when they are missing.
# As root it runs apt-get; otherwise it prints the command to run.
set -euo pipefail

major=${PG_MAJOR:?PG_MAJOR is not set}
sharedir=$(pg_config --sharedir)
packages=()
[ -e "$sharedir/extension/pgtap.control" ] || packages+=("postgresql-$major-pgtap")
command -v pg_prove >/dev/null || packages+=(libtap-parser-sourcehandler-pgtap-perl)
command -v pg_virtualenv >/dev/null || packages+=(postgresql-common)
# redis-server brings redis-tools (redis-benchmark); pgbench comes with the server packages.
command -v redis-server >/dev/null || packages+=(redis-server)
# promtool checks the /metrics page and the alert rules; the package's Prometheus server scrapes
# serve in tests/test_prometheus_server.py
command -v promtool >/dev/null || packages+=(prometheus)

[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "make test needs: ${packages[*]}" >&2
    echo "Install them with: sudo apt-get install -y ${packages[*]}" >&2
    exit 1
fi

echo "Installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have stale or no package lists: update only when the install fails.
apt-get install -y -q "${packages[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${packages[@]}" >/dev/null; }
