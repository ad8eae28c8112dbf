"""Install, upgrade and remove the schema as a plain script (no CREATE EXTENSION needed).

The scripts are the extension's own (`pg_monitoring--X.sql`, `pg_monitoring--A--B.sql`),
built by `make` into the package's `extension/` directory (building the package runs it).
Each operation runs in one transaction under an advisory lock, so two application
instances starting at once do not race.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from .errors import InstallError, NotInstalledError

EXTENSION = "pg_monitoring"
SCHEMA = "monitoring"
ROLES = ("monitoring_reader", "monitoring_writer", "monitoring_admin")
SCRIPTS_DIR = Path(__file__).parent / "extension"

_OBJECTS_QUERY = """
SELECT kind, name
FROM (
    SELECT
        CASE c.relkind
            WHEN 'r' THEN CASE c.relpersistence WHEN 'u' THEN 'unlogged table' ELSE 'table' END
            WHEN 'p' THEN 'partitioned table'
            WHEN 'v' THEN 'view'
            WHEN 'm' THEN 'materialized view'
            WHEN 'S' THEN 'sequence'
        END AS kind,
        c.relname::text AS name
    FROM pg_catalog.pg_class AS c
    WHERE c.relnamespace = 'monitoring'::regnamespace
        AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
        AND NOT c.relispartition
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text
    FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = 'monitoring'::regnamespace
) AS objects
ORDER BY kind, name
"""

_ROLES_QUERY = """
SELECT r.rolname AS role,
       coalesce(array_agg(m.rolname ORDER BY m.rolname)
                FILTER (WHERE m.rolname IS NOT NULL), '{}') AS members
FROM pg_catalog.pg_roles AS r
LEFT JOIN pg_catalog.pg_auth_members AS am ON am.roleid = r.oid
LEFT JOIN pg_catalog.pg_roles AS m ON m.oid = am.member
WHERE r.rolname = ANY(%s)
GROUP BY r.rolname
ORDER BY r.rolname
"""

# Any constant works; it only has to be the same for every installer.
_LOCK_KEY = 0x70675F6D6F6E  # "pg_mon"

_FULL = re.compile(rf"^{EXTENSION}--(\d+\.\d+\.\d+)\.sql$")
_UPGRADE = re.compile(rf"^{EXTENSION}--(\d+\.\d+\.\d+)--(\d+\.\d+\.\d+)\.sql$")


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class Scripts:
    """The install and upgrade scripts in one directory, and the version they default to."""

    directory: Path = SCRIPTS_DIR

    def _files(self) -> list[str]:
        self._check_built()
        return sorted(path.name for path in self.directory.iterdir())

    def _check_built(self) -> None:
        # A package built without its build hook (hatch_build.py), or a checkout before `make`.
        if not (self.directory / f"{EXTENSION}.control").is_file():
            raise InstallError(
                f"no extension scripts in {self.directory}: run `make` in the pg_monitoring "
                "checkout, or reinstall with `pip install ./python` from it, which builds them"
            )

    @property
    def default_version(self) -> str:
        self._check_built()
        control = (self.directory / f"{EXTENSION}.control").read_text()
        match = re.search(r"^default_version\s*=\s*'([^']+)'", control, re.MULTILINE)
        if match is None:
            raise InstallError(f"no default_version in {self.directory}/{EXTENSION}.control")
        return match.group(1)

    def full(self) -> dict[str, Path]:
        """Full install scripts by version."""
        return {
            m.group(1): self.directory / name for name in self._files() if (m := _FULL.match(name))
        }

    def upgrades(self) -> dict[str, dict[str, Path]]:
        """Upgrade scripts: from version -> to version -> script."""
        found: dict[str, dict[str, Path]] = {}
        for name in self._files():
            if m := _UPGRADE.match(name):
                found.setdefault(m.group(1), {})[m.group(2)] = self.directory / name
        return found

    def upgrade_path(self, start: str, target: str) -> list[Path]:
        """The shortest chain of upgrade scripts from `start` to `target`, as PostgreSQL picks."""
        edges = self.upgrades()
        previous: dict[str, tuple[str, Path] | None] = {start: None}
        queue = deque([start])
        while queue:
            version = queue.popleft()
            if version == target:
                break
            for following, script in sorted(edges.get(version, {}).items()):
                if following not in previous:
                    previous[following] = (version, script)
                    queue.append(following)
        if target not in previous:
            raise InstallError(f"no upgrade path from {start} to {target}")
        path: list[Path] = []
        step = previous[target]
        while step is not None:
            path.append(step[1])
            step = previous[step[0]]
        return path[::-1]

    def install_plan(self, target: str) -> list[Path]:
        """A full script plus upgrades reaching `target`, preferring the fewest upgrades."""
        full = self.full()
        if target in full:
            return [full[target]]
        for version in sorted(full, key=version_key, reverse=True):
            try:
                return [full[version], *self.upgrade_path(version, target)]
            except InstallError:
                continue
        raise InstallError(f"no script installs version {target}; known: {sorted(full)}")


@dataclass(frozen=True)
class State:
    """What a database has installed."""

    version: str | None
    mode: Literal["extension", "script"] | None

    @property
    def installed(self) -> bool:
        return self.version is not None


def state(conn: psycopg.Connection[Any]) -> State:
    row = conn.execute(
        "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = %s", (EXTENSION,)
    ).fetchone()
    if row is not None:
        return State(version=row[0], mode="extension")
    has_table = conn.execute(
        "SELECT pg_catalog.to_regclass('monitoring.installed_versions') IS NOT NULL"
    ).fetchone()
    if has_table is not None and has_table[0]:
        version = conn.execute("SELECT monitoring.version()").fetchone()
        return State(version=None if version is None else version[0], mode="script")
    return State(version=None, mode=None)


def status_report(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What `pg-monitoring status` shows: the version installed, its objects and roles."""
    current = state(conn)
    report: dict[str, Any] = {
        "database": conn.info.dbname,
        "installed": current.installed,
        "version": current.version,
        "mode": current.mode,
        "objects": [],
        "roles": [],
    }
    if current.installed:
        report["objects"] = [
            {"kind": kind, "name": name} for kind, name in conn.execute(_OBJECTS_QUERY).fetchall()
        ]
        report["roles"] = [
            {"role": role, "members": members}
            for role, members in conn.execute(_ROLES_QUERY, (list(ROLES),)).fetchall()
        ]
    return report


def _lock(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_catalog.pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


def _run(conn: psycopg.Connection[Any], scripts: list[Path]) -> None:
    for script in scripts:
        # No parameters: psycopg sends the text as a simple query, many statements at once.
        conn.execute(script.read_text())


@dataclass(frozen=True)
class Outcome:
    action: Literal["installed", "unchanged", "upgraded", "uninstalled"]
    version: str | None
    steps: tuple[str, ...] = ()


def install(
    conn: psycopg.Connection[Any], version: str | None = None, scripts: Scripts | None = None
) -> Outcome:
    """Installs `version` (default: the newest) as a plain script; a no-op if it is there."""
    scripts = scripts or Scripts()
    target = version or scripts.default_version
    with conn.transaction():
        _lock(conn)
        current = state(conn)
        if current.mode == "extension":
            if current.version == target:
                return Outcome("unchanged", target)
            raise InstallError(
                f"{EXTENSION} {current.version} is installed as an extension; "
                f"upgrade it with `pg-monitoring upgrade` (ALTER EXTENSION {EXTENSION} UPDATE)"
            )
        if current.installed:
            if current.version == target:
                return Outcome("unchanged", target)
            raise InstallError(
                f"{EXTENSION} {current.version} is installed; "
                f"run `pg-monitoring upgrade` to go to {target}"
            )
        if _schema_has_objects(conn):
            raise InstallError(
                f"schema {SCHEMA} exists and holds objects that are not pg_monitoring's; "
                "drop or rename it first"
            )
        plan = scripts.install_plan(target)
        _run(conn, plan)
    return Outcome("installed", target, tuple(path.name for path in plan))


def _schema_has_objects(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        """
        SELECT EXISTS (
            SELECT FROM pg_catalog.pg_class WHERE relnamespace = n.oid
            UNION ALL SELECT FROM pg_catalog.pg_proc WHERE pronamespace = n.oid
            UNION ALL SELECT FROM pg_catalog.pg_type WHERE typnamespace = n.oid
        )
        FROM pg_catalog.pg_namespace AS n
        WHERE n.nspname = %s
        """,
        (SCHEMA,),
    ).fetchone()
    return bool(row and row[0])


def upgrade(
    conn: psycopg.Connection[Any], version: str | None = None, scripts: Scripts | None = None
) -> Outcome:
    """Applies the pending upgrade scripts in order (ALTER EXTENSION for an extension install)."""
    scripts = scripts or Scripts()
    target = version or scripts.default_version
    with conn.transaction():
        _lock(conn)
        current = state(conn)
        if not current.installed:
            raise NotInstalledError(f"{EXTENSION} is not installed; run `pg-monitoring install`")
        assert current.version is not None
        if current.version == target:
            return Outcome("unchanged", target)
        if version_key(target) < version_key(current.version):
            raise InstallError(f"installed {current.version} is newer than {target}")
        if current.mode == "extension":
            conn.execute(
                sql.SQL("ALTER EXTENSION {} UPDATE TO {}").format(
                    sql.Identifier(EXTENSION), sql.Literal(target)
                )
            )
            return Outcome("upgraded", target, (f"ALTER EXTENSION UPDATE TO {target}",))
        plan = scripts.upgrade_path(current.version, target)
        _run(conn, plan)
    return Outcome("upgraded", target, tuple(path.name for path in plan))


def uninstall(conn: psycopg.Connection[Any], drop_roles: bool = False) -> Outcome:
    """Drops the extension or the schema with everything in it; the roles only if asked."""
    with conn.transaction():
        _lock(conn)
        current = state(conn)
        if current.mode == "extension":
            conn.execute(sql.SQL("DROP EXTENSION {} CASCADE").format(sql.Identifier(EXTENSION)))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        if drop_roles:
            for role in reversed(ROLES):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    return Outcome("uninstalled", current.version)
