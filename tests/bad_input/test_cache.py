"""Cache (monitoring_writer): every cache function with bad input.

Any key and value PostgreSQL can hold is stored and read back (a long key by its md5 in the
index); a TTL, flag, lock time, count or pattern that makes no sense is refused naming the
argument. Each case works on keys of its own (%(k)s).
"""

from __future__ import annotations

import psycopg

from .suite import (
    MB,
    Case,
    Database,
    assert_healthy,
    call,
    long_array,
    nested_arrays,
    noise,
    ok,
    refused,
    table,
    text_of,
    wide_object,
)

NULL_STATES = ("22004",)
TRUE = [(True,)]


def key(case_id: str, value: object = None, **more: object) -> dict[str, object]:
    """Arguments: the case's own key k, and value v."""
    return {"k": f"bad:{case_id}", "v": value, **more}


SET = "SELECT monitoring.cache_set(%(k)s, %(v)s::jsonb)"
SET_TTL = "SELECT monitoring.cache_set(%(k)s, '1', %(ttl)s)"
SET_BYTES = "SELECT monitoring.cache_set_bytes(%(k)s, %(v)s::bytea)"
SET_TAGS = "SELECT monitoring.cache_set(%(k)s, '1', p_tags => %(tags)s::text[])"
# A stored value reads back as it was given.
READS_BACK = "SELECT value = %(v)s::jsonb FROM monitoring.cache_get(%(k)s)"
READS_BACK_BYTES = "SELECT value = %(v)s::bytea FROM monitoring.cache_get_bytes(%(k)s)"
KEYS = "SELECT count(*) FROM monitoring.cache_keys(%(p)s)"
LOCK = "SELECT status FROM monitoring.cache_get_or_lock(%(k)s)"
LOCK_WITH = "SELECT status FROM monitoring.cache_get_or_lock(%(k)s, %(lock)s, %(wait)s)"
INCR = "SELECT monitoring.cache_incr(%(k)s, %(by)s)"

CACHE_SET = [
    refused("set-null-key", SET, key("x", "1", k=None), states=NULL_STATES, names="p_key"),
    refused("set-null-value", SET, key("set-null-value"), states=NULL_STATES, names="p_value"),
    ok("set-json-null", (SET, READS_BACK), key("set-json-null", "null"), returns=TRUE),
    ok("set-empty-key", (SET, READS_BACK), key("x", "1", k=""), returns=TRUE),
    ok(
        "set-10mb-key",
        (SET, READS_BACK),
        lambda: key("x", "1", k=text_of(10 * MB)),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "set-10k-noise-key",
        (SET, READS_BACK),
        lambda: key("x", "[1]", k=noise(10_000)),
        returns=TRUE,
    ),
    ok(
        "set-keys-alike-but-the-last-of-600",
        (SET, READS_BACK),
        key("x", '"second"', k=text_of(600) + "b"),
        returns=TRUE,
    ),
    ok(
        "set-key-of-600-emoji", (SET, READS_BACK), key("x", "4", k="\U0001f600" * 600), returns=TRUE
    ),
    ok(
        "set-tag-of-500-emoji",
        SET_TAGS,
        key("set-tag-emoji", tags=["\U0001f600" * 500]),
        returns=TRUE,
    ),
    ok(
        "set-key-metacharacters",
        (SET, READS_BACK),
        key("x", "2", k="%_\\[*?]^$.|(){}'; DROP TABLE monitoring.cache_entries; --"),
        returns=TRUE,
    ),
    ok(
        "set-key-control-characters",
        (SET, READS_BACK),
        key("x", "3", k="\x01\x1b\n\t\x7f"),
        returns=TRUE,
    ),
    ok(
        "set-10mb-value",
        (SET, READS_BACK),
        lambda: key("set-10mb-value", '"' + noise(10 * MB) + '"'),
        returns=TRUE,
        timeout=5,
    ),
    ok(
        "set-100k-keys-object",
        (SET, READS_BACK),
        lambda: key("set-100k-keys-object", wide_object(100_000)),
        returns=TRUE,
    ),
    ok(
        "set-array-of-100k",
        (SET, READS_BACK),
        lambda: key("set-array-of-100k", long_array(100_000)),
        returns=TRUE,
    ),
    ok(
        "set-nested-512",
        (SET, READS_BACK),
        lambda: key("set-nested-512", nested_arrays(512)),
        returns=TRUE,
    ),
    refused(
        "set-nested-800", SET, lambda: key("set-nested-800", nested_arrays(800)), names="p_value"
    ),
    refused(
        "set-nested-5000", SET, lambda: key("set-nested-5000", nested_arrays(5000)), names="p_value"
    ),
    refused(
        "set-jsonb-nul-escape-is-refused-by-postgresql",
        SET,
        key("set-nul", '"\\u0000"'),
        states=("22P05",),
    ),
    ok(
        "set-huge-numbers",
        (SET, READS_BACK),
        key("set-huge-numbers", "[1e308, -1e-308]"),
        returns=TRUE,
    ),
    refused("set-ttl-zero", SET_TTL, key("set-ttl", ttl=0.0), names="p_ttl"),
    refused("set-ttl-negative", SET_TTL, key("set-ttl", ttl=-1.0), names="p_ttl"),
    refused("set-ttl-nan", SET_TTL, key("set-ttl", ttl=float("nan")), names="p_ttl"),
    refused("set-ttl-infinity", SET_TTL, key("set-ttl", ttl=float("inf")), names="p_ttl"),
    refused("set-ttl-1e308", SET_TTL, key("set-ttl", ttl=1e308), names="p_ttl"),
    ok("set-ttl-tiny", SET_TTL, key("set-ttl-tiny", ttl=1e-300), returns=TRUE),
    refused(
        "set-nx-and-xx",
        "SELECT monitoring.cache_set(%(k)s, '1', NULL, TRUE, TRUE)",
        key("set-nx-xx"),
        names="p_nx",
    ),
    ok(
        "set-null-flags-are-false",
        "SELECT monitoring.cache_set(%(k)s, '1', NULL, NULL, NULL, NULL)",
        key("set-flags"),
        returns=TRUE,
    ),
    ok("set-tags-null-and-empty", SET_TAGS, key("set-tags", tags=[None, "", " "]), returns=TRUE),
    ok(
        "set-tags-10k",
        SET_TAGS,
        key("set-tags-10k", tags=[f"t{i}" for i in range(10_000)]),
        returns=TRUE,
    ),
    refused(
        "set-tag-10k-noise",
        SET_TAGS,
        lambda: key("set-tag-long", tags=[noise(10_000)]),
        names="p_tags",
    ),
    refused(
        "set-bytes-null", SET_BYTES, key("set-bytes-null"), states=NULL_STATES, names="p_value"
    ),
    ok(
        "set-bytes-not-utf8",
        (SET_BYTES, READS_BACK_BYTES),
        key("set-bytes-not-utf8", b"\xff\xfe\x00\xc0\x80"),
        returns=TRUE,
    ),
    ok(
        "set-bytes-10mb",
        (SET_BYTES, READS_BACK_BYTES),
        lambda: key("set-bytes-10mb", noise(10 * MB).encode()),
        returns=TRUE,
        timeout=5,
    ),
    refused(
        "set-bytes-tag-10k-noise",
        "SELECT monitoring.cache_set_bytes(%(k)s, '\\x00', p_tags => %(tags)s::text[])",
        lambda: key("set-bytes-tag-long", tags=[noise(10_000)]),
        names="p_tags",
    ),
]

SET_MANY = "SELECT monitoring.cache_set_many(%(v)s::jsonb)"
SET_MANY_BYTES = "SELECT monitoring.cache_set_many_bytes(%(keys)s::text[], %(values)s::bytea[])"
CACHE_SET_MANY = [
    refused("set-many-array", SET_MANY, key("x", "[]"), names="p_entries"),
    refused("set-many-null", SET_MANY, key("x"), names="p_entries"),
    refused("set-many-json-null", SET_MANY, key("x", "null"), names="p_entries"),
    ok("set-many-empty", SET_MANY, key("x", "{}"), returns=[(0,)]),
    # stored, then deleted: KEYS reads every key, and the others need not wait for these
    ok(
        "set-many-100k",
        (SET_MANY, "SELECT monitoring.cache_delete_pattern('bad:wide:*')"),
        lambda: key("x", wide_object(100_000, prefix="bad:wide:")),
        returns=[(100_000,)],
        timeout=5,
    ),
    refused(
        "set-many-nested-5000",
        SET_MANY,
        lambda: key("x", '{"bad:set-many-deep": ' + nested_arrays(5000) + "}"),
        names="p_entries",
    ),
    refused(
        "set-many-ttl-nan",
        "SELECT monitoring.cache_set_many('{\"a\": 1}', 'NaN')",
        key("x"),
        names="p_ttl",
    ),
    refused(
        "set-many-bytes-lengths-differ",
        SET_MANY_BYTES,
        key("x", keys=["a", "b"], values=[b"1"]),
        names="p_keys",
    ),
    refused(
        "set-many-bytes-null-key",
        SET_MANY_BYTES,
        key("x", keys=[None], values=[b"1"]),
        states=NULL_STATES,
        names="p_keys",
    ),
    refused(
        "set-many-bytes-null-value",
        SET_MANY_BYTES,
        key("x", keys=["bad:set-many-bytes-null-value"], values=[None]),
        states=NULL_STATES,
        names="p_values",
    ),
    ok(
        "set-many-bytes-null-arrays",
        SET_MANY_BYTES,
        key("x", keys=None, values=None),
        returns=[(0,)],
    ),
    refused(
        "set-many-bytes-2d-arrays",
        SET_MANY_BYTES,
        key(
            "x",
            keys=[["bad:2d-a", "bad:2d-b"], ["bad:2d-c", "bad:2d-d"]],
            values=[[b"1", b"2"], [b"3", b"4"]],
        ),
        names="one-dimensional",
    ),
    ok(
        "set-many-bytes-same-key-twice",
        SET_MANY_BYTES,
        key("x", keys=["bad:twice", "bad:twice"], values=[b"1", b"2"]),
        returns=[(1,)],
    ),
]

CACHE_READ = [
    ok("get-null-key", "SELECT * FROM monitoring.cache_get(%(k)s)", key("x", k=None), returns=[]),
    ok(
        "get-10mb-key",
        "SELECT * FROM monitoring.cache_get_bytes(%(k)s)",
        lambda: key("x", k=noise(10 * MB)),
        returns=[],
        timeout=5,
    ),
    ok(
        "get-many-null-array",
        "SELECT * FROM monitoring.cache_get_many(%(keys)s::text[])",
        key("x", keys=None),
        returns=[],
    ),
    ok(
        "get-many-nulls",
        "SELECT count(*) FROM monitoring.cache_get_many(%(keys)s::text[])",
        key("x", keys=[None, None, "bad:set-json-null"]),
        returns=[(1,)],
    ),
    ok(
        "get-many-100k",
        "SELECT count(*) FROM monitoring.cache_get_many(%(keys)s::text[])",
        key("x", keys=[f"bad:{i}" for i in range(100_000)]),
        returns=[(0,)],
    ),
    ok(
        "get-many-bytes-nulls",
        "SELECT count(*) FROM monitoring.cache_get_many_bytes(%(keys)s::text[])",
        key("x", keys=[None, None]),
        returns=[(2,)],
    ),
    ok("exists-null", "SELECT monitoring.cache_exists(%(k)s)", key("x", k=None), returns=[(0,)]),
    ok(
        "exists-null-array",
        "SELECT monitoring.cache_exists(VARIADIC %(keys)s::text[])",
        key("x", keys=None),
        returns=[(0,)],
    ),
    ok("ttl-null", "SELECT monitoring.cache_ttl(%(k)s)", key("x", k=None), returns=[(-2,)]),
    ok(
        "ttl-of-a-lock-placeholder",
        (LOCK, "SELECT monitoring.cache_ttl(%(k)s)"),
        key("ttl-lock"),
        returns=[(-2,)],
    ),
]

EXPIRE = "SELECT monitoring.cache_expire(%(k)s, %(ttl)s)"
CACHE_WRITE = [
    ok("delete-null", "SELECT monitoring.cache_delete(%(k)s)", key("x", k=None), returns=[(0,)]),
    ok(
        "delete-null-array",
        "SELECT monitoring.cache_delete(VARIADIC %(keys)s::text[])",
        key("x", keys=None),
        returns=[(0,)],
    ),
    ok(
        "delete-10mb-key",
        "SELECT monitoring.cache_delete(%(k)s)",
        lambda: key("x", k=text_of(10 * MB, "y")),
        returns=[(0,)],
        timeout=5,
    ),
    refused("expire-nan", (SET, EXPIRE), key("expire", "1", ttl=float("nan")), names="p_ttl"),
    refused("expire-infinity", (SET, EXPIRE), key("expire", "1", ttl=float("inf")), names="p_ttl"),
    ok(
        "expire-minus-infinity-deletes",
        (SET, EXPIRE),
        key("expire", "1", ttl=float("-inf")),
        returns=TRUE,
    ),
    ok("expire-null-key", EXPIRE, key("x", k=None, ttl=1.0), returns=[(False,)]),
    refused("incr-null-key", INCR, key("x", k=None, by=1), states=NULL_STATES, names="p_key"),
    refused("incr-null-by", INCR, key("x", by=None), states=NULL_STATES, names="p_by"),
    refused(
        "incr-overflow",
        ("SELECT monitoring.cache_set(%(k)s, '9223372036854775807')", INCR),
        key("incr-overflow", by=1),
        states=("22003",),
        names="overflow",
    ),
    ok("incr-to-the-least-bigint", INCR, key("incr-least", by=-(2**63)), returns=[(-(2**63),)]),
    refused(
        "incr-below-the-least-bigint",
        (INCR, INCR),
        key("incr-below", by=-(2**63)),
        states=("22003",),
        names="overflow",
    ),
    refused(
        "incr-text",
        (SET, INCR),
        key("incr-text", '"abc"', by=1),
        states=("22P02",),
        names="not an integer",
    ),
    ok(
        "incr-a-json-number-in-exponent-form",
        (SET, INCR),
        key("incr-exp", "1e3", by=1),
        returns=[(1001,)],
    ),
    refused(
        "incr-leading-zero", (SET_BYTES, INCR), key("incr-zero", b"01", by=1), states=("22P02",)
    ),
    refused(
        "incr-bytes-not-utf8",
        (SET_BYTES, INCR),
        key("incr-bytes", b"\xff1", by=1),
        states=("22P02",),
    ),
    refused(
        "incr-10mb-key-not-integer",
        (SET, INCR),
        lambda: key("x", '"a"', k=noise(10 * MB), by=1),
        states=("22P02",),
        timeout=5,
    ),
]

CACHE_PATTERNS = [
    ok("keys-null", KEYS, key("x", p=None), returns=[(0,)]),
    ok(
        "keys-empty-pattern-matches-the-empty-key",
        (SET, KEYS),
        key("x", "1", k="", p=""),
        returns=[(1,)],
    ),
    ok("keys-unclosed-bracket", KEYS, key("x", p="bad:[abc"), returns=[(0,)]),
    ok("keys-empty-brackets", KEYS, key("x", p="[]"), returns=[(0,)]),
    ok("keys-1000-brackets", KEYS, key("x", p="[" * 1000), returns=[(0,)]),
    ok("keys-1000-backslashes", KEYS, key("x", p="\\" * 1000), returns=[(0,)]),
    ok("keys-1000-stars", KEYS, key("x", p="*" * 1000)),
    ok("keys-star-question-500", KEYS, key("x", p="*?" * 500)),
    ok("keys-bracket-star-200", KEYS, key("x", p="[^a]*" * 200)),
    refused("keys-5000-stars", KEYS, key("x", p="*" * 5000), names="p_pattern"),
    ok("keys-regex-specials", KEYS, key("x", p="bad:.+()^$|{}"), returns=[(0,)]),
    ok("keys-like-specials", KEYS, key("x", p="bad:%_"), returns=[(0,)]),
    ok("keys-reversed-range", KEYS, key("x", p="bad:[z-a]"), returns=[(0,)]),
    ok(
        "keys-injection",
        KEYS,
        key("x", p="'; DROP TABLE monitoring.cache_entries; --"),
        returns=[(0,)],
    ),
    ok("keys-non-bmp-prefix", KEYS, key("x", p="\U0010ffff\U0010ffff*"), returns=[(0,)]),
    ok("keys-1000-multibyte", KEYS, key("x", p="é" * 1000), returns=[(0,)]),
    refused("keys-1mb", KEYS, lambda: key("x", p=text_of(MB)), names="p_pattern"),
    refused(
        "keys-negative-limit",
        "SELECT count(*) FROM monitoring.cache_keys('*', NULL, -1)",
        key("x"),
        names="p_limit",
    ),
    ok(
        "keys-after-10mb",
        "SELECT count(*) FROM monitoring.cache_keys('bad:*', %(k)s, 1)",
        lambda: key("x", k=text_of(10 * MB, "~")),
        returns=[(0,)],
        timeout=5,
    ),
    ok(
        "delete-pattern-null",
        "SELECT monitoring.cache_delete_pattern(%(p)s)",
        key("x", p=None),
        returns=[(0,)],
    ),
    ok(
        "delete-pattern-empty-brackets",
        "SELECT monitoring.cache_delete_pattern('[]')",
        key("x"),
        returns=[(0,)],
    ),
    refused(
        "delete-pattern-1mb",
        "SELECT monitoring.cache_delete_pattern(%(p)s)",
        lambda: key("x", p=text_of(MB, "?")),
        names="p_pattern",
    ),
    ok(
        "delete-tag-null",
        "SELECT monitoring.cache_delete_tag(%(t)s)",
        key("x", t=None),
        returns=[(0,)],
    ),
    ok(
        "delete-tag-10mb",
        "SELECT monitoring.cache_delete_tag(%(t)s)",
        lambda: key("x", t=noise(10 * MB)),
        returns=[(0,)],
        timeout=5,
    ),
]

CACHE_LOCKS = [
    refused("lock-null-key", LOCK, key("x", k=None), states=NULL_STATES, names="p_key"),
    refused(
        "lock-seconds-nan",
        LOCK_WITH,
        key("lock", lock=float("nan"), wait=1.0),
        names="p_lock_seconds",
    ),
    refused(
        "lock-seconds-null",
        LOCK_WITH,
        key("lock-null", lock=None, wait=1.0),
        names="p_lock_seconds",
    ),
    refused(
        "lock-seconds-1e308", LOCK_WITH, key("lock", lock=1e308, wait=1.0), names="p_lock_seconds"
    ),
    refused(
        "wait-seconds-negative", LOCK_WITH, key("lock", lock=1.0, wait=-1.0), names="p_wait_seconds"
    ),
    refused(
        "wait-seconds-infinity",
        LOCK_WITH,
        key("lock", lock=1.0, wait=float("inf")),
        names="p_wait_seconds",
    ),
    refused(
        "wait-seconds-null-while-locked",
        (LOCK, LOCK_WITH),
        key("lock-wait-null", lock=30.0, wait=None),
        names="p_wait_seconds",
    ),
    ok(
        "unlock-null", "SELECT monitoring.cache_unlock(%(k)s)", key("x", k=None), returns=[(False,)]
    ),
    ok(
        "unlock-10mb-key",
        "SELECT monitoring.cache_unlock(%(k)s)",
        lambda: key("x", k=noise(10 * MB)),
        returns=[(False,)],
        timeout=5,
    ),
]

STATS = "SELECT monitoring.cache_record_stats(%(hits)s, %(misses)s)"
CACHE_STATS = [
    refused("stats-negative", STATS, key("x", hits=-1, misses=0), names="p_hits"),
    refused("stats-null", STATS, key("x", hits=None, misses=None), names="p_hits"),
    ok("stats-largest-twice", (STATS, STATS), key("x", hits=2**63 - 1, misses=2**63 - 1)),
    ok(
        "stats-sum-at-the-largest",
        (STATS, "SELECT hits FROM monitoring.cache_stats()"),
        key("x", hits=2**63 - 1, misses=0),
        returns=[(2**63 - 1,)],
    ),
]


@table(
    CACHE_SET
    + CACHE_SET_MANY
    + CACHE_READ
    + CACHE_WRITE
    + CACHE_PATTERNS
    + CACHE_LOCKS
    + CACHE_STATS
)
def test_cache(db: Database, case: Case) -> None:
    call(db.writer, case)


def test_stats_of_every_shard_at_the_largest_count(db: Database) -> None:
    """Counts reported from other backends land in other shards: their sum is no bigint."""
    for _ in range(16):
        with psycopg.connect(db.writer_dsn, autocommit=True) as other:
            other.execute("SELECT monitoring.cache_record_stats(%s, 0)", (2**63 - 1,))
    (hits,) = db.writer.execute("SELECT hits FROM monitoring.cache_stats()").fetchone() or ()
    assert hits == 2**63 - 1


def test_after_cache(db: Database) -> None:
    assert_healthy(db)
