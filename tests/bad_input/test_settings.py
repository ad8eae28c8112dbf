"""Settings (monitoring_admin): get_setting, set_setting and reset_setting with bad input.

An unknown name and a value of the wrong JSON type or out of the setting's range are 22023
(22004 for no value). Every value a setting accepts, the extremes included, leaves capture,
the cache and maintenance working: a case that sets one goes on to use it, and every case
ends with all settings back at their defaults.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .suite import (
    MB,
    Case,
    Database,
    assert_healthy,
    call,
    js,
    nested_arrays,
    noise,
    ok,
    python_traceback,
    refused,
    table,
    text_of,
    wide_object,
)

GET = "SELECT monitoring.get_setting(%(name)s)"
SET = "SELECT monitoring.set_setting(%(name)s, %(value)s::jsonb)"
RESET = "SELECT monitoring.reset_setting(%(name)s)"
# What a setting at an extreme must still let through, as the writer role would send it.
CAPTURE = (
    "SELECT event_id IS NOT NULL FROM monitoring.capture_error('Failure', %(message)s,"
    " %(stack)s::text, %(context)s::jsonb, p_breadcrumbs => %(crumbs)s::jsonb)"
)
MAINTAIN = "SELECT NOT monitoring.run_maintenance() ? 'failed'"
CACHE = (
    "SELECT monitoring.cache_set('bad:settings', '1')"
    " AND monitoring.cache_exists('bad:settings') = 1"
)
TRUE = [(True,)]


def setting(name: str | None, value: str | None = None) -> dict[str, object]:
    return {"name": name, "value": value}


def big_event(name: str, value: str) -> dict[str, object]:
    """A setting at an extreme, and an event over every limit."""
    return {
        "name": name,
        "value": value,
        "message": noise(MB),
        "stack": python_traceback(3000),
        "context": wide_object(10_000, js(noise(100))),
        "crumbs": "[" + ",".join([js({"message": noise(1000)})] * 1000) + "]",
    }


SETTINGS = [
    # names
    refused("get-null", GET, setting(None), names="unknown setting"),
    refused("get-empty", GET, setting(""), names="unknown setting"),
    refused("get-10mb", GET, lambda: setting(text_of(10 * MB)), names="unknown setting", timeout=5),
    refused("get-like-wildcard", GET, setting("errors.%"), names="unknown setting"),
    refused("get-other-case", GET, setting("ERRORS.MAX_FRAMES"), names="unknown setting"),
    refused("get-trailing-blank", GET, setting("errors.max_frames "), names="unknown setting"),
    refused(
        "get-injection",
        GET,
        setting("x'; DROP TABLE monitoring.settings; --"),
        names="unknown setting",
    ),
    refused("set-null-name", SET, setting(None, "1"), names="unknown setting"),
    refused(
        "set-unknown-10mb",
        SET,
        lambda: setting(noise(10 * MB), "1"),
        names="unknown setting",
        timeout=5,
    ),
    refused("reset-null", RESET, setting(None), names="unknown setting"),
    refused(
        "reset-10mb", RESET, lambda: setting(text_of(10 * MB)), names="unknown setting", timeout=5
    ),
    ok("reset-twice", (RESET, RESET), setting("errors.max_frames"), returns=[(100,)]),
    # values of the wrong type
    refused("set-sql-null", SET, setting("errors.max_frames"), states=("22004",), names="p_value"),
    refused(
        "set-json-null",
        SET,
        setting("errors.max_frames", "null"),
        states=("22004",),
        names="p_value",
    ),
    refused(
        "set-string-for-number",
        SET,
        setting("errors.max_frames", '"50"'),
        names="errors.max_frames",
    ),
    refused(
        "set-object-for-number", SET, setting("errors.max_frames", "{}"), names="errors.max_frames"
    ),
    refused(
        "set-string-for-boolean", SET, setting("scrub.enabled", '"false"'), names="scrub.enabled"
    ),
    refused(
        "set-string-for-list", SET, setting("scrub.extra_keys", '"token"'), names="scrub.extra_keys"
    ),
    refused(
        "set-jsonb-nul-escape-is-refused-by-postgresql",
        SET,
        setting("errors.default_service", '"\\u0000"'),
        states=("22P05",),
    ),
    # numbers out of range
    refused(
        "set-number-below-min", SET, setting("errors.max_frames", "0"), names="errors.max_frames"
    ),
    refused(
        "set-number-negative",
        SET,
        setting("errors.retention_days", "-1"),
        names="errors.retention_days",
    ),
    refused(
        "set-number-above-max",
        SET,
        setting("errors.max_message_length", "1000001"),
        names="errors.max_message_length",
    ),
    refused(
        "set-fraction-for-whole",
        SET,
        setting("errors.max_frames", "1.5"),
        names="errors.max_frames",
    ),
    refused(
        "set-number-1e308", SET, setting("cache.max_entries", "1e308"), names="cache.max_entries"
    ),
    refused(
        "set-number-of-100000-digits",
        SET,
        setting("cache.max_bytes", "1" + "0" * 100_000),
        names="cache.max_bytes",
    ),
    refused(
        "set-number-tiny",
        SET,
        setting("alerts.retry_base_seconds", "1e-300"),
        names="alerts.retry_base_seconds",
    ),
    refused(
        "set-max-attempts-zero",
        SET,
        setting("alerts.max_attempts", "0"),
        names="alerts.max_attempts",
    ),
    # text and lists out of range
    refused(
        "set-text-empty",
        SET,
        setting("errors.default_environment", '""'),
        names="errors.default_environment",
    ),
    refused(
        "set-text-201",
        SET,
        setting("errors.default_environment", js("e" * 201)),
        names="errors.default_environment",
    ),
    refused(
        "set-text-10mb",
        SET,
        lambda: setting("errors.default_service", js(noise(10 * MB))),
        names="errors.default_service",
        timeout=5,
    ),
    refused(
        "set-text-newline",
        SET,
        setting("errors.default_service", js("a\nb")),
        names="errors.default_service",
    ),
    refused(
        "set-text-control-character",
        SET,
        setting("errors.default_service", js("a\x01")),
        names="errors.default_service",
    ),
    refused(
        "set-list-of-numbers", SET, setting("scrub.extra_keys", "[1]"), names="scrub.extra_keys"
    ),
    refused(
        "set-list-empty-name", SET, setting("scrub.safe_keys", '[""]'), names="scrub.safe_keys"
    ),
    refused(
        "set-list-null-name", SET, setting("scrub.safe_keys", "[null]"), names="scrub.safe_keys"
    ),
    refused(
        "set-list-of-101",
        SET,
        setting("scrub.extra_keys", js([f"k{i}" for i in range(101)])),
        names="scrub.extra_keys",
    ),
    refused(
        "set-list-of-100k",
        SET,
        lambda: setting("scrub.extra_keys", js([f"k{i}" for i in range(100_000)])),
        names="scrub.extra_keys",
    ),
    refused(
        "set-list-nested-5000",
        SET,
        lambda: setting("scrub.extra_keys", nested_arrays(5000)),
        names="scrub.extra_keys",
    ),
    refused(
        "set-list-name-201",
        SET,
        setting("scrub.extra_keys", js(["k" * 201])),
        names="scrub.extra_keys",
    ),
    # values in range at the extremes: capture, the cache and maintenance still work
    ok(
        "extra-keys-of-regex-and-like-specials",
        (SET, CAPTURE),
        lambda: big_event("scrub.extra_keys", js(["(", "[", "\\", ".*", "%", "_", "|", "?"])),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "extra-keys-not-ascii",
        (SET, CAPTURE),
        lambda: big_event("scrub.extra_keys", js(["пароль", "ΚΛΕΙΔΊ", "秘密"])),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "safe-keys-of-100",
        (SET, CAPTURE),
        lambda: big_event("scrub.safe_keys", js([f"token{i}" for i in range(100)])),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "scrub-off",
        (SET, CAPTURE),
        lambda: big_event("scrub.enabled", "false"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "message-length-least",
        (SET, CAPTURE),
        lambda: big_event("errors.max_message_length", "256"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "message-length-most",
        (SET, CAPTURE),
        lambda: big_event("errors.max_message_length", "1000000"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "context-bytes-least",
        (SET, CAPTURE),
        lambda: big_event("errors.max_context_bytes", "1024"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "stack-bytes-least",
        (SET, CAPTURE),
        lambda: big_event("errors.max_stack_bytes", "16384"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "frames-least",
        (SET, CAPTURE),
        lambda: big_event("errors.max_frames", "1"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "frames-most",
        (SET, CAPTURE),
        lambda: big_event("errors.max_frames", "1000"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "breadcrumbs-none",
        (SET, CAPTURE),
        lambda: big_event("errors.max_breadcrumbs", "0"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "exceptions-most",
        (SET, CAPTURE),
        lambda: big_event("errors.max_exceptions", "100"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "retention-least",
        (SET, CAPTURE, MAINTAIN),
        lambda: big_event("errors.retention_days", "1"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "retention-most",
        (SET, CAPTURE, MAINTAIN),
        lambda: big_event("errors.retention_days", "36500"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "partitions-ahead-most",
        (SET, MAINTAIN),
        setting("errors.partition_days_ahead", "90"),
        returns=TRUE,
        timeout=10,
    ),
    ok(
        "default-names-of-200",
        (SET, CAPTURE),
        lambda: big_event("errors.default_environment", js("é" * 200)),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "cache-entries-least",
        (SET, CACHE, MAINTAIN),
        setting("cache.max_entries", "1"),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "cache-batch-least",
        (SET, MAINTAIN),
        setting("cache.cleanup_batch_size", "1"),
        returns=TRUE,
        timeout=5,
    ),
    ok("retry-base-least", SET, setting("alerts.retry_base_seconds", "0.01")),
]


@pytest.fixture
def defaults(db: Database) -> Iterator[None]:
    """Every setting back at its default after the case."""
    yield
    db.admin.execute(
        "SELECT monitoring.reset_setting(name) FROM monitoring.effective_settings"
        " WHERE NOT is_default"
    )


@table(SETTINGS)
def test_settings(db: Database, defaults: None, case: Case) -> None:
    call(db.admin, case)


def test_after_settings(db: Database) -> None:
    assert_healthy(db)
