#!/usr/bin/env bash
# Capture throughput of two builds side by side: bench/capture.sh's capture statements,
# interleaved over databases installed as plain scripts in one cluster, so that a busy
# machine slows them alike:
#   base   BASE_SCRIPT (the build to compare with, e.g. of an earlier commit)
#   new    the current build
#   chan   with CHANNEL=1: the current build with one webhook channel (new issues queue an
#          alert and a NOTIFY), for what alerts cost capture
# Scenarios: hot (one fingerprint, an error storm), spread (5,000 fingerprints), fresh (every
# event a new issue), event (hot as Sentry-shaped JSON text through capture_event, the Python
# client's call).
#   git archive REV | tar -x -C /tmp/base && make -C /tmp/base all
#   BASE_SCRIPT=/tmp/base/python/pg_monitoring/extension/pg_monitoring--0.2.0.sql \
#       bench/capture_builds.sh        # with PG* naming a disposable server (fsync on)
set -euo pipefail

CLIENTS=${BENCH_CLIENTS:-8}
SECONDS_EACH=${BENCH_SECONDS:-6}
ROUNDS=${BENCH_ROUNDS:-5}
BASE_SCRIPT=${BASE_SCRIPT:?name the install script of the build to compare with}
NEW_SCRIPT=$(dirname "$0")/../python/pg_monitoring/extension/pg_monitoring--0.2.0.sql
dbs="b_base b_new"
[ "${CHANNEL:-0}" = 1 ] && dbs="$dbs b_chan"
work=$(mktemp -d)
trap 'rm -rf "$work"; for db in $dbs; do dropdb --if-exists "$db"; done' EXIT

for db in $dbs; do
    dropdb --if-exists "$db" >/dev/null 2>&1
    createdb "$db"
    script=$NEW_SCRIPT
    [ "$db" = b_base ] && script=$BASE_SCRIPT
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$script" >/dev/null
done
if [ "${CHANNEL:-0}" = 1 ]; then
    psql -X -q -v ON_ERROR_STOP=1 -d b_chan -c "SELECT monitoring.add_channel('hook', 'webhook',
        p_secrets => '{\"url\": \"http://127.0.0.1:9/nobody\"}')" >/dev/null
fi

frames=$(python3 - <<'PY'
import json
print(json.dumps([{
    "filename": f"app/services/payments_{i}.py", "module": f"app.services.payments_{i}",
    "function": "FUNC" if i == 9 else f"step_{i}", "lineno": 100 + i,
    "context_line": f"result = gateway.charge(order, amount=amount, retries={i})",
    "pre_context": ["    order = load(order_id)", "    amount = order.total"],
    "post_context": ["    return result"], "in_app": True,
} for i in range(10)]).replace("'", "''"))
PY
)
context='{"user_id": 42, "order_id": 1234, "request_id": "b1946ac9", "operation": "charge"}'
capture() {  # $1: expression giving the FUNC name
    cat <<SQL
\set n random(1, 1000000)
SELECT monitoring.capture_error('PaymentTimeout', 'timeout after ' || :n || ' ms',
    replace('$frames', 'FUNC', $1)::jsonb, '$context'::jsonb);
SQL
}
capture "'charge'" > "$work/hot.sql"
capture "'handler_' || (:n % 5000)" > "$work/spread.sql"
capture "'fresh_' || :n || '_' || (random() * 1e9)::bigint" > "$work/fresh.sql"
cat > "$work/event.sql" <<SQL
\set n random(1, 1000000)
SELECT monitoring.capture_event(('{"level": "error", "platform": "python",
    "exception": {"values": [{"type": "PaymentTimeout", "value": "timeout after ' || :n || ' ms",
        "stacktrace": {"frames": ' || replace('$frames', 'FUNC', 'charge') || '}}]},
    "extra": $context, "tags": {"region": "eu"},
    "contexts": {"trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}}}')::text);
SQL

for db in $dbs; do
    psql -X -q -d "$db" -c "SELECT monitoring.run_maintenance()" >/dev/null
    pgbench -n -c 2 -j 2 -T 2 -f "$work/hot.sql" "$db" >/dev/null 2>&1
done
for round in $(seq "$ROUNDS"); do
    for s in hot spread fresh event; do
        for db in $dbs; do
            tps=$(pgbench -n -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -f "$work/$s.sql" "$db" 2>&1 \
                | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
            echo "$s $db $tps" >> "$work/results"
            printf '  round %s %-7s %-7s %8.0f tps\n' "$round" "$s" "$db" "$tps"
        done
    done
    for db in $dbs; do
        psql -X -q -d "$db" -c "SELECT monitoring.run_maintenance()" >/dev/null
    done
done

median() { awk -v s="$1" -v d="$2" '$1 == s && $2 == d { print $3 }' "$work/results" | sort -n \
    | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "Capture throughput, $CLIENTS clients, ${SECONDS_EACH}s x $ROUNDS rounds, medians (tps):"
printf '  %-7s %8s %8s %8s %10s %10s\n' scenario base new chan new/base chan/base
for s in hot spread fresh event; do
    b=$(median "$s" b_base); n=$(median "$s" b_new); c=$(median "$s" b_chan)
    awk -v s="$s" -v b="$b" -v n="$n" -v c="${c:-0}" \
        'BEGIN { printf "  %-7s %8.0f %8.0f %8.0f %10.2f %10.2f\n", s, b, n, c, n / b, c / b }'
done
