#!/usr/bin/env bash
# Runs a command against a throwaway local Citus cluster: a coordinator and two workers on
# 127.0.0.1 (ports CITUS_PORT, +1, +2; default 9700), each with its own data directory under
# one temporary directory, stopped and removed when the command ends, fails or is interrupted.
#
#   tools/citus_cluster.sh [-o name=value]... COMMAND [ARG...]      (make test-citus)
#
# Like pg_virtualenv, which can not start several clusters that know each other: COMMAND runs
# with PGHOST, PGPORT, PGUSER and PGDATABASE naming the coordinator's database, in which
# citus is created and the workers are added (Citus keeps its nodes per database), and
# CITUS_WORKER_PORTS listing the workers' ports. Each -o is a server setting for all three
# nodes (extension_destdir, as make test's). As root the servers run as the postgres user.
set -euo pipefail

settings=()
while [ $# -gt 0 ] && [ "$1" = -o ]; do
    settings+=("$2")
    shift 2
done
[ $# -gt 0 ] || { echo "usage: $0 [-o name=value]... COMMAND [ARG...]" >&2; exit 2; }

bindir=$("${PG_CONFIG:-pg_config}" --bindir)
if [ ! -e "$("${PG_CONFIG:-pg_config}" --pkglibdir)/citus.so" ]; then
    echo "Citus is not installed: run make citus (as root) first" >&2
    exit 1
fi
port=${CITUS_PORT:-9700}
ports=("$port" $((port + 1)) $((port + 2)))
database=${CITUS_DATABASE:-pg_monitoring_citus}

as_postgres=()
if [ "$(id -u)" = 0 ]; then
    as_postgres=(runuser -u postgres --)
fi
root=$(mktemp -d /tmp/pg_monitoring-citus-XXXXXX)
chmod 755 "$root"
[ ${#as_postgres[@]} -eq 0 ] || chown postgres: "$root"

stop() {
    local status=$?
    for p in "${ports[@]}"; do
        if [ -e "$root/$p/postmaster.pid" ]; then
            "${as_postgres[@]}" "$bindir/pg_ctl" -D "$root/$p" -m immediate stop >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$root"
    exit "$status"
}
trap stop EXIT
trap 'exit 130' INT TERM

for p in "${ports[@]}"; do
    if (: </dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
        echo "Port $p is taken: set CITUS_PORT to the first of three free ports" >&2
        exit 1
    fi
    "${as_postgres[@]}" "$bindir/initdb" -D "$root/$p" -U postgres -A trust --no-sync \
        >"$root/initdb-$p.log" 2>&1 || { cat "$root/initdb-$p.log" >&2; exit 1; }
    {
        echo "port = $p"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$root'"
        echo "shared_preload_libraries = 'citus,pg_stat_statements'"
        # throwaway data: durability costs time and buys nothing here
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        # Citus opens connections between the nodes on top of the clients'
        echo "max_connections = 200"
        echo "max_prepared_transactions = 200"
        echo "shared_buffers = 64MB"
        for s in "${settings[@]}"; do
            echo "${s%%=*} = '${s#*=}'"
        done
    } >>"$root/$p/postgresql.conf"
    "${as_postgres[@]}" "$bindir/pg_ctl" -D "$root/$p" -l "$root/$p.log" -w start >/dev/null \
        || { cat "$root/$p.log" >&2; exit 1; }
done

export PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=$database
for p in "${ports[@]}"; do
    PGPORT=$p psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $database"
    PGPORT=$p psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION citus'
done
PGPORT=${ports[0]} psql -X -q -v ON_ERROR_STOP=1 \
    -c "SELECT citus_set_coordinator_host('127.0.0.1', ${ports[0]})" \
    -c "SELECT citus_add_node('127.0.0.1', ${ports[1]})" \
    -c "SELECT citus_add_node('127.0.0.1', ${ports[2]})" >/dev/null

export PGPORT=${ports[0]} CITUS_WORKER_PORTS="${ports[1]} ${ports[2]}"
echo "Citus cluster: coordinator 127.0.0.1:${ports[0]}, workers :${ports[1]} :${ports[2]} ($root)"
"$@"
