#!/usr/bin/env bash
# Storm protection by the clock, side by side in one run (pgbench, same clients and duration):
# one issue past errors.storm_full_events (set to 1) in two databases, "whole" keeping every
# event (errors.storm_keep_one_in 1), "storm" almost none (1,000,000), for capture_error (a
# transaction per event) and capture_events (BENCH_BATCH Sentry events per call). Rounds are
# interleaved; medians of events/s and the ratio of CPU per event are printed (the server is
# CPU-bound here, so events/s stands for CPU per event). bench/capture_instructions.sh with
# BENCH_STORM=1 counts the instructions of the same comparison.
# Expects PG* variables naming a disposable server with pg_monitoring installable.
set -euo pipefail

CLIENTS=${BENCH_CLIENTS:-8}
SECONDS_EACH=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-3}
BATCH=${BENCH_BATCH:-50}
work=$(mktemp -d)
trap 'rm -rf "$work"; dropdb --if-exists bench_storm_whole; dropdb --if-exists bench_storm_storm' EXIT

for db in whole storm; do
    keep=1
    [ "$db" = storm ] && keep=1000000
    dropdb --if-exists "bench_storm_$db" >/dev/null
    createdb "bench_storm_$db"
    psql -X -q -v ON_ERROR_STOP=1 -d "bench_storm_$db" \
        -c "CREATE EXTENSION pg_monitoring" \
        -c "SELECT monitoring.set_setting('errors.storm_full_events', '1')" \
        -c "SELECT monitoring.set_setting('errors.storm_check_one_in', '1')" \
        -c "SELECT monitoring.set_setting('errors.storm_keep_one_in', '$keep')" \
        -c "SELECT monitoring.run_maintenance()" >/dev/null
done

python3 - "$work" "$BATCH" <<'PY'
import json, sys
work, batch = sys.argv[1], int(sys.argv[2])
frames = [{
    "filename": f"app/services/payments_{i}.py", "module": f"app.services.payments_{i}",
    "function": "charge" if i == 9 else f"step_{i}", "lineno": 100 + i,
    "context_line": f"result = gateway.charge(order, amount=amount, retries={i})",
    "pre_context": ["    order = load(order_id)", "    amount = order.total"],
    "post_context": ["    return result"], "in_app": True,
} for i in range(10)]
context = {"user_id": 42, "order_id": 1234, "request_id": "b1946ac9", "operation": "charge"}
quote = lambda text: "'" + text.replace("'", "''") + "'"
with open(f"{work}/error.sql", "w") as out:
    out.write("\\set n random(1, 1000000)\n")
    out.write("SELECT monitoring.capture_error('PaymentTimeout', 'timeout after ' || :n || ' ms', "
              f"{quote(json.dumps(frames))}::jsonb, {quote(json.dumps(context))}::jsonb);\n")
docs = [{"level": "error", "platform": "python",
         "exception": {"values": [{"type": "PaymentTimeout", "value": f"timeout after {k} ms",
                                   "stacktrace": {"frames": frames}}]},
         "extra": context, "tags": {"region": "eu"}, "user": {"id": f"user-{k % 20}"},
         "contexts": {"trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}}}
        for k in range(batch)]
with open(f"{work}/events.sql", "w") as out:
    out.write(f"SELECT count(*) FROM monitoring.capture_events({quote(json.dumps(docs))}::text);\n")
PY

for db in whole storm; do
    pgbench -n -c 2 -j 2 -T 2 -f "$work/error.sql" "bench_storm_$db" >/dev/null
done
for round in $(seq "$ROUNDS"); do
    for kind in error events; do
        for db in whole storm; do
            tps=$(pgbench -n -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -f "$work/$kind.sql" \
                "bench_storm_$db" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
            per=1
            [ "$kind" = events ] && per=$BATCH
            eps=$(awk -v t="$tps" -v p="$per" 'BEGIN { print t * p }')
            echo "$kind $db $eps" >> "$work/results"
            printf '  round %s %-7s %-6s %8.0f events/s\n' "$round" "$kind" "$db" "$eps"
        done
    done
    for db in whole storm; do
        psql -X -q -d "bench_storm_$db" -c "SELECT monitoring.run_maintenance()" >/dev/null
    done
done

median() { awk -v k="$1" -v d="$2" '$1 == k && $2 == d { print $3 }' "$work/results" | sort -n \
    | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "Storm protection, $CLIENTS clients, ${SECONDS_EACH}s x $ROUNDS rounds, medians:"
for kind in error events; do
    w=$(median "$kind" whole); s=$(median "$kind" storm)
    awk -v k="$kind" -v w="$w" -v s="$s" 'BEGIN {
        printf "  capture_%-7s whole %7.0f events/s   storm %7.0f events/s   CPU storm/whole %.2f\n", k, w, s, w / s
    }'
done
for db in whole storm; do
    psql -X -q -At -d "bench_storm_$db" -c "SELECT '$db: ' || (SELECT count(*) FROM monitoring.error_events) || ' events stored of ' || (SELECT sum(times_seen) FROM monitoring.issues)"
done
