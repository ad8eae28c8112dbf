-- The exposition's setting (metrics/exposition.sql).
INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
) VALUES (
    'metrics.max_span_operations', '100',
    'Operations prometheus_metrics() exports span counters and latency for: the entry '
    'points (server and consumer spans) with the most calls; 0 exports none',
    0, 10000
);
