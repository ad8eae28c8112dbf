"""`pg-monitoring serve`: the product's one HTTP server, an OTLP/HTTP receiver (pip install
pg-monitoring[server]).

- `app.py` assembles the Starlette app from a `ServerConfig` (the pool, the routes);
- `routes/` holds a module per route, each essentially one stored-function call:
  `health` (GET /healthz), `otlp` (POST /v1/traces, /v1/logs, /v1/metrics), `metrics`
  (GET /metrics), `sentry` (POST /api/<project id>/envelope/ and /store/: Sentry's ingest
  protocol);
- `auth.py` checks `Authorization: Bearer <key>` against `monitoring.check_ingest_key`;
- `decompress.py` reads a request's body, decompressed and bounded, for every route that
  takes one;
- `otlp.py` decodes, batches and answers OTLP bodies;
- `envelopes.py` parses Sentry envelopes for `sentry_ingest`;
- `responses.py` the error answers the routes share.
"""

# Defaults the CLI shows without importing the server's dependencies.
DEFAULT_MAX_BODY = 16 * 1024 * 1024  # bytes a request may hold, decompressed
DEFAULT_KEY_CACHE_SECONDS = 10.0  # how long an accepted ingest key is remembered
