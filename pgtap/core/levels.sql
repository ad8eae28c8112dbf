-- Levels: one list, least severe first, which events, channels and clients read.
BEGIN;
SELECT plan(5);

SELECT is(
    monitoring.levels(), ARRAY['debug', 'info', 'warning', 'error', 'fatal'],
    'Sentry''s levels, least severe first'
);
SELECT is(
    (SELECT array_agg(monitoring._level(l, 'p_level') ORDER BY l) FROM unnest(ARRAY[
        'warn', ' Critical', NULL, 'INFO'
    ]) AS l),
    ARRAY['fatal', 'info', 'warning', 'error'],
    'a level is taken in any case, with Python''s warn and critical, and NULL is error'
);
SELECT throws_ok(
    $$SELECT monitoring._level('loud', 'p_level')$$,
    '22023', 'p_level must be one of fatal, error, warning, info, debug; not ''loud''',
    'any other level is refused, naming the argument and the levels, most severe first'
);
SELECT ok(
    monitoring._level_rank('debug') < monitoring._level_rank('info')
    AND monitoring._level_rank('info') < monitoring._level_rank('warning')
    AND monitoring._level_rank('warning') < monitoring._level_rank('error')
    AND monitoring._level_rank('error') < monitoring._level_rank('fatal'),
    'levels rank by severity'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', 'SELECT monitoring.levels()'), NULL,
    'a writer may read them'
);

SELECT * FROM finish();
ROLLBACK;
