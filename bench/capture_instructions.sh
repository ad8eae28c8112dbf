#!/usr/bin/env bash
# CPU instructions per capture of two builds, counted by valgrind's callgrind: repeatable to
# a fraction of a percent on a busy machine, where throughput runs differ by 10% or more.
# Each build is installed in a database of a private cluster, which is then stopped; a
# single-user backend (postgres --single) runs N captures, each its own transaction as an
# application sends them, under callgrind, once for capture_error and once for capture_event.
# Per capture = (total of N captures - total of one) / (N - 1): startup and first-call
# compilation cancel out.
#   git archive REV | tar -x -C /tmp/base && make -C /tmp/base all
#   BASE_SCRIPT=/tmp/base/python/pg_monitoring/extension/pg_monitoring--0.2.0.sql \
#       bench/capture_instructions.sh          # needs valgrind (Debian package valgrind)
set -euo pipefail

N=${BENCH_CAPTURES:-300}
BASE_SCRIPT=${BASE_SCRIPT:?name the install script of the build to compare with}
NEW_SCRIPT=$(cd "$(dirname "$0")/.." && pwd)/python/pg_monitoring/extension/pg_monitoring--0.2.0.sql
BIN=$(pg_config --bindir)
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }
work=$(mktemp -d)
as_postgres=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$work"
    as_postgres=(runuser -u postgres --)
fi
trap '"${as_postgres[@]}" "$BIN/pg_ctl" -D "$work/data" stop -m immediate >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

"${as_postgres[@]}" "$BIN/initdb" -D "$work/data" -A trust -U postgres >/dev/null
printf "listen_addresses = ''\nunix_socket_directories = '%s'\nfsync = off\n" "$work" \
    >> "$work/data/postgresql.conf"
"${as_postgres[@]}" "$BIN/pg_ctl" -D "$work/data" -l "$work/log" start >/dev/null
for db in base new; do
    "$BIN/createdb" -h "$work" -U postgres "$db"
    script=$NEW_SCRIPT
    [ "$db" = base ] && script=$BASE_SCRIPT
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d "$db" -f "$script" >/dev/null
    "$BIN/psql" -X -q -h "$work" -U postgres -d "$db" -c "SELECT monitoring.run_maintenance()" \
        >/dev/null
done
"${as_postgres[@]}" "$BIN/pg_ctl" -D "$work/data" stop >/dev/null

# The statements of bench/capture.sh's hot and event scenarios, one per line (single-user
# mode ends a statement at the end of its line).
python3 - "$work" "$N" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
frames = json.dumps([{
    "filename": f"app/services/payments_{i}.py", "module": f"app.services.payments_{i}",
    "function": "charge" if i == 9 else f"step_{i}", "lineno": 100 + i,
    "context_line": f"result = gateway.charge(order, amount=amount, retries={i})",
    "pre_context": ["    order = load(order_id)", "    amount = order.total"],
    "post_context": ["    return result"], "in_app": True,
} for i in range(10)])
context = {"user_id": 42, "order_id": 1234, "request_id": "b1946ac9", "operation": "charge"}
def error(i):
    return ("SELECT monitoring.capture_error('PaymentTimeout', 'timeout after %d ms', %s::jsonb, %s::jsonb)"
            % (i, "'" + frames.replace("'", "''") + "'", "'" + json.dumps(context) + "'"))
def event(i):
    doc = {"level": "error", "platform": "python",
           "exception": {"values": [{"type": "PaymentTimeout", "value": f"timeout after {i} ms",
                                     "stacktrace": {"frames": json.loads(frames)}}]},
           "extra": context, "tags": {"region": "eu"},
           "contexts": {"trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}}}
    return "SELECT monitoring.capture_event(%s::text)" % ("'" + json.dumps(doc).replace("'", "''") + "'")
for kind, make in (("error", error), ("event", event)):
    for count in (1, n):
        with open(f"{work}/{kind}.{count}.sql", "w") as out:
            out.writelines(make(i) + "\n" for i in range(count))
PY
chmod a+r "$work"/*.sql

count() {  # database, kind, captures
    "${as_postgres[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$BIN/postgres" --single -D "$work/data" "$1" < "$work/$2.$3.sql" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "Instructions per capture (callgrind, $N captures, each its own transaction):"
printf '  %-14s %12s %12s %8s\n' call base new new/base
for kind in error event; do
    b=$(( ($(count base "$kind" "$N") - $(count base "$kind" 1)) / (N - 1) ))
    n=$(( ($(count new "$kind" "$N") - $(count new "$kind" 1)) / (N - 1) ))
    awk -v k="capture_$kind" -v b="$b" -v n="$n" \
        'BEGIN { printf "  %-14s %12d %12d %8.3f\n", k, b, n, n / b }'
done
