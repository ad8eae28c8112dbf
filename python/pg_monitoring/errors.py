"""The exceptions pg_monitoring raises.

The SQL functions raise with an SQLSTATE and a message naming the bad argument; `translate`
maps those to this small hierarchy so callers need not know psycopg's error classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed


class PgMonitoringError(Exception):
    """Base class of every pg_monitoring error."""


class InstallError(PgMonitoringError):
    """The schema can not be installed, upgraded or removed as asked."""


class NotInstalledError(PgMonitoringError):
    """The database has no pg_monitoring schema (run `pg-monitoring install`)."""


class InvalidArgumentError(PgMonitoringError, ValueError):
    """A stored function rejected an argument; the message names it."""


class PermissionDeniedError(PgMonitoringError, PermissionError):
    """The role lacks the monitoring_* role the call needs."""


class NotFoundError(PgMonitoringError, LookupError):
    """What the call names does not exist (an issue id, a fingerprint)."""


class UnavailableError(PgMonitoringError):
    """The database could not be reached: the connection failed or broke, no pooled
    connection came within the call's bound, or the circuit breaker is open after such a
    failure and the call was refused without trying."""


class CallTimeoutError(UnavailableError):
    """The call was still running at the end of its bound and was abandoned (its connection
    closed, its statement cancelled); whether a write took effect is unknown."""


# A table or function of ours that is missing: the schema (or this version of it) is not there.
NOT_INSTALLED_HINT = (
    "Hint: is pg_monitoring installed in this database? "
    "`pg-monitoring install` installs it; `pg-monitoring status` shows what is there."
)

# Any insufficient_privilege from our objects: the database names only the object refused.
ROLES_HINT = (
    "Hint: pg_monitoring's rights come with three roles, granted to login roles "
    "(GRANT monitoring_admin TO oncall): monitoring_writer captures errors and uses the "
    "cache; monitoring_reader reads issues, events, settings and alert state; "
    "monitoring_admin, a member of both, also triages issues, changes settings and alert "
    "channels, and runs the alert worker and maintenance."
)

_HINTS: dict[type[PgMonitoringError], str] = {
    NotInstalledError: NOT_INSTALLED_HINT,
    PermissionDeniedError: ROLES_HINT,
}

_BY_SQLSTATE: dict[type[psycopg.Error], type[PgMonitoringError]] = {
    pg_errors.InvalidParameterValue: InvalidArgumentError,
    pg_errors.NullValueNotAllowed: InvalidArgumentError,
    pg_errors.InvalidTextRepresentation: InvalidArgumentError,
    pg_errors.StringDataRightTruncation: InvalidArgumentError,
    pg_errors.InsufficientPrivilege: PermissionDeniedError,
    pg_errors.NoDataFound: NotFoundError,
    pg_errors.InvalidSchemaName: NotInstalledError,
    pg_errors.UndefinedTable: NotInstalledError,
    pg_errors.UndefinedFunction: NotInstalledError,
}


# Shutdown, crash recovery, or the server not accepting connections yet: nothing the call
# asked for, so it may work on another try, as after a broken connection (class 08).
_OUTAGE_SQLSTATES = ("57P01", "57P02", "57P03")


def is_outage(error: BaseException) -> bool:
    """Whether `error` says the database was not reached (rather than refusing the call).

    Connection exceptions (class 08), shutdown and startup (57P01-57P03), and an
    OperationalError without an SQLSTATE: libpq's broken connection, a pool that gave no
    connection in time. A closed pool is the application's doing, not an outage.
    """
    if not isinstance(error, psycopg.Error) or isinstance(error, PoolClosed):
        return False
    sqlstate = error.sqlstate
    if sqlstate is None:
        return isinstance(error, psycopg.OperationalError)
    return sqlstate.startswith("08") or sqlstate in _OUTAGE_SQLSTATES


def translate(error: psycopg.Error) -> PgMonitoringError:
    """The pg_monitoring exception for a database error (raise it `from error`)."""
    if is_outage(error):
        return UnavailableError(str(error))
    for pg_class, our_class in _BY_SQLSTATE.items():
        if isinstance(error, pg_class):
            message = error.diag.message_primary or str(error)
            if our_class in _HINTS:
                message += f"\n{_HINTS[our_class]}"
            return our_class(message)
    return PgMonitoringError(str(error))


@contextmanager
def needs_role(role: str, action: str) -> Iterator[None]:
    """Around a call that `role` may make: a refusal says `action` needs `role`, where the
    database would name only the object it refused (`permission denied for function x`)."""
    try:
        yield
    except PermissionDeniedError as error:
        raise PermissionDeniedError(f"{action} needs {role}: {error}") from error.__cause__


# An argument of a stored function as its messages name it: p_name, p_config.url,
# p_config.url_env (a field of a JSON argument, or the environment variable naming it).
_ARGUMENT = re.compile(r"\b(p_[a-z_]+)(?:\.(\w+?)(_env)?)?\b")


def in_callers_words(message: str, words: Mapping[str, str]) -> str:
    """A stored function's `message` with its arguments spelled as the caller names what it
    passed (a CLI its flags, the worker its options): `words` by argument (`p_config`),
    field (`p_config.{}`) or variable (`p_config.{}_env`), `{}` standing for the field. A
    bare argument's `{}` is the field the message named last. Arguments `words` does not
    spell stay as they are."""
    field = "FIELD"

    def spell(match: re.Match[str]) -> str:
        nonlocal field
        argument, named, env = match.groups()
        if named is None:
            template = words.get(argument)
        else:
            field = named
            template = words.get(f"{argument}.{{}}{env or ''}")
        return match.group(0) if template is None else template.format(field)

    return _ARGUMENT.sub(spell, message)
