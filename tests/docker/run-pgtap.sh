#!/usr/bin/env bash
# Inside the test image: start the server the way the image does, then run the pgTAP suite.
set -euo pipefail
docker-entrypoint.sh postgres -c shared_preload_libraries=pg_stat_statements >/tmp/server.log 2>&1 &
# The entrypoint's first server is socket-only; TCP answers once the real one is up.
for _ in $(seq 60); do pg_isready -q && break; sleep 1; done
pg_isready || { cat /tmp/server.log; exit 1; }
make --no-print-directory pgtap
