#!/usr/bin/env bash
# Capture throughput, side by side in one run (pgbench, same clients and duration for all):
#   hot      capture_error on one fingerprint (an error storm)
#   spread   the same capture over 5,000 fingerprints (normal traffic)
#   insert   a bare INSERT of the same event row into monitoring.error_events
#   raw      a bare INSERT of the event JSON into a table with one index
#   floor    the least any grouped capture with exact counts must do, in PL/pgSQL: find the
#            issue, insert the event row, append its count row (no fingerprint, no scrubbing)
#   event    capture_event of the same event as Sentry-shaped JSON text, as the Python client
#            sends it (exception.values with a stacktrace, extra, tags, contexts.trace)
#   lean     floor plus the least a capture that checks, scrubs and fingerprints each event
#            must add when its session already knows the trace's fingerprint: settings read,
#            md5 of the frames as the memo key, scrub and size tests of the message and
#            context, the chain built around the frames. No other validation, no lifecycle.
# Scenarios are interleaved over several rounds; medians and ratios are printed. Throughput of
# separate runs measures what each costs when it alone saturates the server (CPU, here).
# Then one mixed run per round draws each transaction from insert, floor, lean, hot and event
# at random: their latency ratios say what a capture costs next to an insert under one load,
# commit flushes included.
# Expects PG* variables naming a disposable server with pg_monitoring installable.
set -euo pipefail

CLIENTS=${BENCH_CLIENTS:-8}
SECONDS_EACH=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
DB=bench_capture
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dropdb --if-exists "$DB" >/dev/null
createdb "$DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
CREATE EXTENSION pg_monitoring;
CREATE TABLE bench_raw (id bigserial PRIMARY KEY, doc jsonb NOT NULL);
CREATE FUNCTION bench_floor(p_message text, p_exceptions jsonb, p_context jsonb)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_issue bigint;
BEGIN
    SELECT g.id INTO STRICT v_issue FROM monitoring.error_issues AS g
    WHERE g.service = 'default' AND g.environment = 'production' AND g.fingerprint = 'floor';
    INSERT INTO monitoring.error_events (event_id, occurred_at, issue_id, level, exception_type,
        message, exceptions, context)
    VALUES (gen_random_uuid(), now(), v_issue, 'error', 'PaymentTimeout', p_message,
        p_exceptions, p_context);
    INSERT INTO monitoring.error_issue_counts (issue_id, occurred_at) VALUES (v_issue, now());
    RETURN v_issue;
END
$$;
CREATE FUNCTION bench_lean(p_type text, p_message text, p_frames jsonb, p_context jsonb)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cfg jsonb;
    v_key text;
    v_memo text := coalesce(current_setting('bench.fingerprints', TRUE), '');
    v_hit integer;
    v_fingerprint text;
    v_message text;
    v_chain jsonb;
    v_issue bigint;
    v_status text;
BEGIN
    SELECT s.value INTO v_cfg FROM monitoring.settings_snapshot AS s;
    v_key := md5(p_type || E'\n' || p_frames::text) || '=';
    v_hit := strpos(v_memo, v_key);
    v_message := monitoring.scrub_text(p_message);
    IF length(v_message) > (v_cfg ->> 'errors.max_message_length')::integer
        OR pg_column_size(p_context) > (v_cfg ->> 'errors.max_context_bytes')::integer
        OR monitoring._may_hold_secrets(p_context::text, monitoring._scrub_default_key_pattern(),
            monitoring._scrub_default_key_likes()) THEN
        RAISE EXCEPTION 'lean handles only small, clean events';
    END IF;
    v_chain := jsonb_set(
        jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('type', p_type, 'value', v_message))),
        '{0,frames}', p_frames
    );
    IF v_hit > 0 THEN
        v_fingerprint := substr(v_memo, v_hit + 33, 32);
    ELSE
        SELECT f.fingerprint INTO v_fingerprint FROM monitoring.default_fingerprint(v_chain, v_message) AS f;
        PERFORM set_config('bench.fingerprints', v_key || v_fingerprint || ';', FALSE);
    END IF;
    SELECT g.id, g.status INTO v_issue, v_status FROM monitoring.error_issues AS g
    WHERE g.service = v_cfg ->> 'errors.default_service'
        AND g.environment = v_cfg ->> 'errors.default_environment'
        AND g.fingerprint = v_fingerprint;
    INSERT INTO monitoring.error_events (event_id, occurred_at, issue_id, level, exception_type,
        message, exceptions, context)
    VALUES (gen_random_uuid(), now(), v_issue, 'error', p_type, v_message, v_chain, p_context);
    INSERT INTO monitoring.error_issue_counts (issue_id, occurred_at) VALUES (v_issue, now());
    IF v_status <> 'unresolved' THEN
        RAISE EXCEPTION 'lean handles only unresolved issues';
    END IF;
    RETURN v_issue;
END
$$;
INSERT INTO monitoring.error_issues (
    service, environment, fingerprint, fingerprint_source, title, level, first_seen, last_seen
)
VALUES ('default', 'production', 'floor', 'stacktrace', 'floor', 'error', now(), now());
SQL
# BENCH_SETUP_SQL runs after the install, e.g. to add an alert channel.
if [ -n "${BENCH_SETUP_SQL:-}" ]; then
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "$BENCH_SETUP_SQL" >/dev/null
fi

# A 10-frame stack trace of about 2.4 KB, like facts.md's measurements; FUNC varies per
# fingerprint in the spread scenario.
frames=$(python3 - <<'PY'
import json
frames = []
for i in range(10):
    frames.append({
        "filename": f"app/services/payments_{i}.py",
        "abs_path": f"/srv/app/services/payments_{i}.py",
        "module": f"app.services.payments_{i}",
        "function": "FUNC" if i == 9 else f"step_{i}",
        "lineno": 100 + i,
        "context_line": f"result = gateway.charge(order, amount=amount, retries={i})",
        "pre_context": ["    order = load(order_id)", "    amount = order.total"],
        "post_context": ["    return result"],
        "in_app": True,
    })
print(json.dumps(frames).replace("'", "''"))
PY
)
chain="[{\"type\": \"PaymentTimeout\", \"value\": \"timeout\", \"frames\": $frames}]"
context='{"user_id": 42, "order_id": 1234, "request_id": "b1946ac9", "operation": "charge"}'

capture() {  # $1: expression giving the FUNC name
    cat <<SQL
\set n random(1, 1000000)
SELECT monitoring.capture_error('PaymentTimeout', 'timeout after ' || :n || ' ms',
    replace('$frames', 'FUNC', $1)::jsonb, '$context'::jsonb);
SQL
}
capture "'charge'" > "$work/hot.sql"
cat > "$work/event.sql" <<SQL
\set n random(1, 1000000)
SELECT monitoring.capture_event(replace('{"level": "error", "platform": "python",
    "exception": {"values": [{"type": "PaymentTimeout", "value": "timeout after N ms",
        "mechanism": {"type": "generic", "handled": true},
        "stacktrace": {"frames": $(echo "$frames" | sed 's/FUNC/charge/')}}]},
    "extra": $context, "tags": {"service": "default"}, "server_name": "web-1",
    "contexts": {"trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7"}}}', 'after N ms', 'after ' || :n || ' ms'));
SQL
capture "'handler_' || (:n % 5000)" > "$work/spread.sql"

# The row capture stores, inserted directly (an existing issue, the same indexes).
cat > "$work/insert.sql" <<SQL
\set n random(1, 1000000)
INSERT INTO monitoring.error_events (event_id, occurred_at, issue_id, level, exception_type,
    message, exceptions, context)
VALUES (gen_random_uuid(), now(), 1, 'error', 'PaymentTimeout', 'timeout after ' || :n || ' ms',
    replace('$chain', 'FUNC', 'charge')::jsonb, '$context'::jsonb);
SQL
cat > "$work/floor.sql" <<SQL
\set n random(1, 1000000)
SELECT bench_floor('timeout after ' || :n || ' ms',
    replace('$chain', 'FUNC', 'charge')::jsonb, '$context'::jsonb);
SQL
sed 's/monitoring.capture_error(/bench_lean(/' "$work/hot.sql" > "$work/lean.sql"
cat > "$work/raw.sql" <<SQL
\set n random(1, 1000000)
INSERT INTO bench_raw (doc)
VALUES (jsonb_build_object('message', 'timeout after ' || :n || ' ms',
    'exceptions', replace('$chain', 'FUNC', 'charge')::jsonb, 'context', '$context'::jsonb));
SQL

# Warm up: create the hot issue and the partitions.
psql -X -q -d "$DB" -c "SELECT monitoring.run_maintenance()" >/dev/null
pgbench -n -c 2 -j 2 -T 2 -f "$work/hot.sql" "$DB" >/dev/null

scenarios=(hot spread insert raw floor lean event)
for round in $(seq "$ROUNDS"); do
    for s in "${scenarios[@]}"; do
        tps=$(pgbench -n -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -f "$work/$s.sql" "$DB" 2>&1 \
            | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
        echo "$s $tps" >> "$work/results"
        printf '  round %s %-7s %8.0f tps\n' "$round" "$s" "$tps"
    done
    # Maintenance runs every minute in production; fold between rounds like it would.
    psql -X -q -d "$DB" -c "SELECT monitoring.run_maintenance()" >/dev/null
done

median() { awk -v s="$1" '$1 == s { print $2 }' "$work/results" | sort -n \
    | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
hot=$(median hot); spread=$(median spread); insert=$(median insert); raw=$(median raw)
floor=$(median floor); lean=$(median lean); event=$(median event)

echo
echo "Capture throughput, $CLIENTS clients, ${SECONDS_EACH}s x $ROUNDS rounds, medians:"
printf '  %-34s %8.0f tps\n' "capture, one hot fingerprint" "$hot" \
    "capture, 5,000 fingerprints" "$spread" "bare INSERT of the event row" "$insert" \
    "bare INSERT of raw JSON, one index" "$raw" "floor: lookup + event + count row" "$floor" \
    "lean: floor + checks, scrub, memo" "$lean" "capture_event, Sentry JSON text" "$event"
awk -v h="$hot" -v s="$spread" -v i="$insert" -v r="$raw" -v f="$floor" -v l="$lean" -v e="$event" 'BEGIN {
    printf "  hot / spread   %.2f   (target >= 0.9: a storm is not slower than normal traffic)\n", h / s
    printf "  hot / insert   %.2f   (target >= 0.8: grouping and scrubbing cost little)\n", h / i
    printf "  hot / raw JSON %.2f   (reported)\n", h / r
    printf "  floor / insert %.2f   (the most any capture that groups and counts can reach)\n", f / i
    printf "  lean / insert  %.2f   (the most one that also checks, scrubs, fingerprints can reach)\n", l / i
    printf "  event / hot    %.2f   (the Python client'"'"'s call against capture_error)\n", e / h
}'

mixed=(insert floor lean hot event)
for round in $(seq "$ROUNDS"); do
    args=()
    for s in "${mixed[@]}"; do args+=(-f "$work/$s.sql@1"); done
    pgbench -n -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" "${args[@]}" "$DB" 2>&1 \
        | sed -n 's/^ - latency average = \([0-9.]*\) ms/\1/p' | tail -n "${#mixed[@]}" \
        | paste -sd ' ' >> "$work/mixed"
    psql -X -q -d "$DB" -c "SELECT monitoring.run_maintenance()" >/dev/null
done
echo
echo "One mixed run per round, $CLIENTS clients: latency of a bare insert / latency of each, medians:"
for i in 2 3 4 5; do
    ratio=$(awk -v c="$i" '{ print $1 / $c }' "$work/mixed" | sort -n \
        | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    printf '  %-6s / insert %.2f\n' "${mixed[$((i - 1))]}" "$ratio"
done
psql -X -q -At -d "$DB" -c "SELECT 'events stored: ' || count(*) FROM monitoring.error_events"
dropdb "$DB"
