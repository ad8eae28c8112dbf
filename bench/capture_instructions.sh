#!/usr/bin/env bash
# CPU instructions per capture of two builds, counted by valgrind's callgrind: repeatable to
# a fraction of a percent on a busy machine, where throughput runs differ by 10% or more.
# Each build is installed in a database of a private cluster, which is then stopped; a
# single-user backend (postgres --single) runs N captures, each its own transaction as an
# application sends them, under callgrind, once for capture_error and once for capture_event.
# Per capture = (total of N captures - total of two) / (N - 2): startup and first-call
# compilation cancel out, of the second capture's path too (its session remembers the
# fingerprint: statements the first capture never ran are planned in both).
#   git archive REV | tar -x -C /tmp/base && make -C /tmp/base all
#   BASE_SCRIPT=/tmp/base/python/pg_monitoring/extension/pg_monitoring--0.2.0.sql \
#       bench/capture_instructions.sh          # needs valgrind (Debian package valgrind)
# BENCH_STORM=1 compares storm protection's short path with a whole capture instead, in this
# build: both databases have their issue past errors.storm_full_events (1); "whole" keeps
# every event (errors.storm_keep_one_in 1), "storm" almost none (1,000,000).
# Without it, a build with storm protection keeps every event whole (errors.storm_keep_one_in
# 1): the captures here are one issue's, a storm past 100 events.
# capture_events is measured with batches of BENCH_BATCH events (default 50), per event.
# BENCH_EVENTS_FILE: capture_event(s) send these events (a JSON array of Sentry events, e.g.
# bench/sdk_events.py's, made by the real sentry-sdk), each with a new event_id, in place of
# the 10-frame event.
set -euo pipefail

N=${BENCH_CAPTURES:-300}
BATCH=${BENCH_BATCH:-50}
NEW_SCRIPT=$(cd "$(dirname "$0")/.." && pwd)/python/pg_monitoring/extension/pg_monitoring--0.2.0.sql
if [ -n "${BENCH_STORM:-}" ]; then
    BASE_SCRIPT=$NEW_SCRIPT
    labels=(whole storm)
    setup=("1" "1000000")
else
    BASE_SCRIPT=${BASE_SCRIPT:?name the install script of the build to compare with}
    labels=(base new)
    setup=("" "")  # keep one in 1, where the build has the setting
fi
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
    keep=${setup[0]}
    [ "$db" = new ] && keep=${setup[1]}
    if [ -n "$keep" ]; then
        "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d "$db" \
            -c "SELECT monitoring.set_setting('errors.storm_full_events', '1')" \
            -c "SELECT monitoring.set_setting('errors.storm_check_one_in', '1')" \
            -c "SELECT monitoring.set_setting('errors.storm_keep_one_in', '$keep')" >/dev/null
    else
        "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d "$db" \
            -c "SELECT monitoring.set_setting(d.name, '1') FROM monitoring.setting_definitions AS d
                WHERE d.name = 'errors.storm_keep_one_in'" >/dev/null
    fi
    "$BIN/psql" -X -q -h "$work" -U postgres -d "$db" -c "SELECT monitoring.run_maintenance()" \
        >/dev/null
done
"${as_postgres[@]}" "$BIN/pg_ctl" -D "$work/data" stop >/dev/null

# The statements of bench/capture.sh's hot and event scenarios, one per line (single-user
# mode ends a statement at the end of its line).
python3 - "$work" "$N" "$BATCH" "${BENCH_EVENTS_FILE:-}" <<'PY'
import itertools, json, sys, uuid
work, n, batch, events_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sent = json.load(open(events_file)) if events_file else None
ids = itertools.count(1)  # an id never sent before: a resend would take the short way
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
def doc(i):
    if sent:
        return {**sent[i % len(sent)], "event_id": uuid.UUID(int=next(ids)).hex}
    return {"level": "error", "platform": "python",
            "exception": {"values": [{"type": "PaymentTimeout", "value": f"timeout after {i} ms",
                                      "stacktrace": {"frames": json.loads(frames)}}]},
            "extra": context, "tags": {"region": "eu"},
            "contexts": {"trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}}}
def event(i):
    return "SELECT monitoring.capture_event(%s::text)" % ("'" + json.dumps(doc(i)).replace("'", "''") + "'")
def events(i):
    docs = json.dumps([doc(i * batch + k) for k in range(batch)])
    return "SELECT count(*) FROM monitoring.capture_events(%s::text)" % ("'" + docs.replace("'", "''") + "'")
for kind, make in (("error", error), ("event", event), ("events", events)):
    for count in (2, n):
        with open(f"{work}/{kind}.{count}.sql", "w") as out:
            out.writelines(make(i) + "\n" for i in range(count))
PY
chmod a+r "$work"/*.sql

count() {  # database, kind, captures
    "${as_postgres[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$BIN/postgres" --single -D "$work/data" "$1" < "$work/$2.$3.sql" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
# A first capture makes the issue (and passes the storm threshold with BENCH_STORM).
for db in base new; do count "$db" error 2 >/dev/null; done
echo "Instructions per event (callgrind, $N calls, each its own transaction; capture_events: $BATCH events a call):"
printf '  %-14s %12s %12s %8s\n' call "${labels[0]}" "${labels[1]}" "${labels[1]}/${labels[0]}"
for kind in error event events; do
    per=1
    [ "$kind" = events ] && per=$BATCH
    b=$(( ($(count base "$kind" "$N") - $(count base "$kind" 2)) / ((N - 2) * per) ))
    n=$(( ($(count new "$kind" "$N") - $(count new "$kind" 2)) / ((N - 2) * per) ))
    awk -v k="capture_$kind" -v b="$b" -v n="$n" \
        'BEGIN { printf "  %-14s %12d %12d %8.3f\n", k, b, n, n / b }'
done
