-- Daily partitions for the time-partitioned tables of traces and logs: created ahead by
-- run_maintenance, dropped whole when older than a domain's retention (instant, no dead
-- rows). Each such table has a DEFAULT partition, so an insert never fails when maintenance
-- has not run; rows that landed there move into their day's partition when it is created.
-- A partition of table T for day D is named T_pYYYYMMDD; only these functions create them.
-- Callers pass their own tables (regclass), never text from a writer.

-- Whether p_table is distributed by Citus (monitoring.distribute()): partitions are created
-- another way there. A catalog look-up per call, made by maintenance only.
CREATE OR REPLACE FUNCTION monitoring._distributed(p_table regclass)
RETURNS boolean
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_distributed boolean;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS d WHERE d.logicalrelid = $1)'
    INTO v_distributed
    USING p_table;
    RETURN v_distributed;
END
$$;

COMMENT ON FUNCTION monitoring._distributed(regclass) IS
'Whether p_table is a Citus distributed table';

CREATE OR REPLACE FUNCTION monitoring._create_daily_partition(
    p_parent regclass, p_column name, p_day date
)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_parent text := (SELECT c.relname FROM pg_catalog.pg_class AS c WHERE c.oid = p_parent);
    v_name text := format('%s_p%s', v_parent, to_char(p_day, 'YYYYMMDD'));
    -- bounds in UTC ISO form: %L of a timestamptz would follow the session's DateStyle and
    -- TimeZone, whose abbreviation may read back as another zone
    v_from text := to_char(p_day, 'YYYY-MM-DD') || ' 00:00:00+00';
    v_to text := to_char(p_day + 1, 'YYYY-MM-DD') || ' 00:00:00+00';
    v_default text := v_parent || '_default';
    v_day_in_default text := format(
        'FROM monitoring.%I AS d WHERE d.%I >= $1::timestamptz AND d.%I < $2::timestamptz',
        v_default, p_column, p_column
    );
    v_strays boolean;
BEGIN
    IF to_regclass(format('monitoring.%I', v_name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- On Citus, created as a partition at once, which Citus distributes (a shard beside each
    -- of the parent's). The way below, a table LIKE the parent filled and then attached, has
    -- Citus copy that local table into new shards on ATTACH (leaving its rows on the
    -- coordinator's disk), and ended in a distributed deadlock inside run_maintenance.
    -- CREATE TABLE ... PARTITION OF locks the parent ACCESS EXCLUSIVE, on the coordinator and
    -- on each shard: no writer chooses DEFAULT while the bounds change. When DEFAULT holds
    -- rows of that day, it is detached first, and they move before it is attached again.
    IF monitoring._distributed(p_parent) THEN
        -- SELECT 1, not SELECT: Citus plans the subquery apart, and an empty target list
        -- then fails (a column definition list is required for functions returning "record")
        EXECUTE 'SELECT EXISTS (SELECT 1 ' || v_day_in_default || ')' INTO v_strays USING v_from, v_to;
        IF v_strays THEN
            EXECUTE format(
                'ALTER TABLE monitoring.%I DETACH PARTITION monitoring.%I', v_parent, v_default
            );
        END IF;
        EXECUTE format(
            'CREATE TABLE monitoring.%I PARTITION OF monitoring.%I FOR VALUES FROM (%L) TO (%L)',
            v_name, v_parent, v_from, v_to
        );
        IF v_strays THEN
            -- colocated: Citus runs each on the shards, no row through the coordinator
            EXECUTE format('INSERT INTO monitoring.%I SELECT d.* ', v_name) || v_day_in_default
            USING v_from, v_to;
            EXECUTE 'DELETE ' || v_day_in_default USING v_from, v_to;
            EXECUTE format(
                'ALTER TABLE monitoring.%I ATTACH PARTITION monitoring.%I DEFAULT',
                v_parent, v_default
            );
        END IF;
        RETURN true;
    END IF;
    -- Writers must not insert while the bounds change: one that chose DEFAULT before the
    -- ATTACH would put a row of that day there and fail its constraint. This waits for
    -- running writers and holds new ones for the few milliseconds the attach takes.
    EXECUTE format('LOCK TABLE monitoring.%I IN SHARE ROW EXCLUSIVE MODE', v_parent);
    EXECUTE format(
        'CREATE TABLE monitoring.%I '
        '(LIKE monitoring.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION INCLUDING STORAGE)',
        v_name, v_parent
    );
    EXECUTE 'WITH moved AS (DELETE ' || v_day_in_default
        || format(' RETURNING d.*) INSERT INTO monitoring.%I SELECT * FROM moved', v_name)
    USING v_from, v_to;
    EXECUTE format(
        'ALTER TABLE monitoring.%I ATTACH PARTITION monitoring.%I FOR VALUES FROM (%L) TO (%L)',
        v_parent, v_name, v_from, v_to
    );
    RETURN true;
END
$$;

COMMENT ON FUNCTION monitoring._create_daily_partition(regclass, name, date) IS
'Creates and attaches p_parent''s partition for p_day (UTC), moving that day''s rows out of '
'the DEFAULT partition; false when it exists';

-- From today (UTC) to p_days_ahead days ahead. A writer inside a long transaction holds its
-- lock on the table: rather than stall every other writer behind our lock request, give up
-- and try again at the next run.
CREATE OR REPLACE FUNCTION monitoring._ensure_daily_partitions(
    p_parent regclass, p_column name, p_days_ahead integer
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_created integer := 0;
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    PERFORM set_config('lock_timeout', '500ms', true);
    BEGIN
        FOR i IN 0..p_days_ahead LOOP
            IF monitoring._create_daily_partition(p_parent, p_column, v_today + i) THEN
                v_created := v_created + 1;
            END IF;
        END LOOP;
    EXCEPTION WHEN lock_not_available THEN
        RAISE NOTICE 'pg_monitoring: % busy, partitions left for the next run', p_parent;
    END;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    RETURN v_created;
END
$$;

-- Drops the daily partitions wholly before p_cutoff and deletes older rows from DEFAULT;
-- returns how many partitions it dropped and rows it deleted.
CREATE OR REPLACE FUNCTION monitoring._drop_daily_partitions(
    p_parent regclass, p_column name, p_cutoff timestamptz,
    OUT partitions_dropped integer, OUT default_rows_deleted bigint
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_parent text := (SELECT c.relname FROM pg_catalog.pg_class AS c WHERE c.oid = p_parent);
    v_partition text;
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    partitions_dropped := 0;
    -- DROP locks the parent as ATTACH does (see _ensure_daily_partitions)
    PERFORM set_config('lock_timeout', '500ms', true);
    FOR v_partition IN
        SELECT c.relname
        FROM pg_catalog.pg_inherits AS i
        INNER JOIN pg_catalog.pg_class AS c ON i.inhrelid = c.oid
        WHERE i.inhparent = p_parent
            AND c.relname = v_parent || '_p' || right(c.relname, 8)
            AND right(c.relname, 8) ~ E'^\\d{8}$'
            AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
            <= p_cutoff
        ORDER BY c.relname
    LOOP
        BEGIN
            EXECUTE format('DROP TABLE monitoring.%I', v_partition);
            partitions_dropped := partitions_dropped + 1;
        EXCEPTION WHEN lock_not_available THEN
            EXIT;
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    EXECUTE format('DELETE FROM monitoring.%I AS d WHERE d.%I < $1', v_parent || '_default', p_column)
    USING p_cutoff;
    GET DIAGNOSTICS default_rows_deleted = ROW_COUNT;
END
$$;
