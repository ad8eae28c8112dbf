"""The package as pip and `python -m build` make it from a checkout that never ran `make`:
the build hook (python/hatch_build.py) builds the SQL scripts into the wheel and the sdist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from .conftest import REPO


def source_copy(tmp_path: Path) -> Path:
    """The checkout's files that git knows (tracked, or new and not ignored): nothing built."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    copy = tmp_path / "checkout"
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    assert not (copy / "python" / "pg_monitoring" / "extension").exists()
    return copy


def expected_scripts(copy: Path) -> tuple[str, set[str]]:
    """The newest version and the files `make all` builds: its full script, the released
    ones, the upgrades and the control file."""
    control = (copy / "pg_monitoring.control").read_text()
    match = re.search(r"^default_version\s*=\s*'([^']+)'", control, re.MULTILINE)
    assert match is not None
    version = match.group(1)
    frozen = {
        p.name for folder in ("released", "upgrades") for p in (copy / "sql" / folder).glob("*.sql")
    }
    return version, {"pg_monitoring.control", f"pg_monitoring--{version}.sql", *frozen}


def build(
    copy: Path, out: Path, *options: str, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"PATH": path} if path is not None else {})}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(out),
            *options,
            str(copy / "python"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def scripts_in(names: list[str], prefix: str) -> set[str]:
    return {name.removeprefix(prefix) for name in names if name.startswith(prefix)}


def test_the_sdist_and_the_wheel_built_from_it_hold_the_sql_scripts(tmp_path: Path) -> None:
    copy = source_copy(tmp_path)
    version, expected = expected_scripts(copy)
    built = build(copy, tmp_path / "dist")  # an sdist, then a wheel from the sdist
    assert built.returncode == 0, built.stderr
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with tarfile.open(sdist) as archive:
        in_sdist = archive.getnames()
    root = in_sdist[0].split("/")[0]
    assert scripts_in(in_sdist, f"{root}/pg_monitoring/extension/") == expected
    with zipfile.ZipFile(wheel) as archive:
        assert scripts_in(archive.namelist(), "pg_monitoring/extension/") == expected
        script = archive.read(f"pg_monitoring/extension/pg_monitoring--{version}.sql").decode()
    assert script.rstrip().endswith(f"SELECT monitoring._record_version('{version}');")


def test_a_wheel_from_the_checkout_holds_the_sql_scripts(tmp_path: Path) -> None:
    copy = source_copy(tmp_path)
    _version, expected = expected_scripts(copy)
    built = build(copy, tmp_path / "dist", "--wheel")  # what `pip install ./python` builds
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert scripts_in(archive.namelist(), "pg_monitoring/extension/") == expected


def test_without_make_the_build_says_what_is_missing(tmp_path: Path) -> None:
    copy = source_copy(tmp_path)
    built = build(copy, tmp_path / "dist", "--wheel", path=str(tmp_path / "no-tools"))
    assert built.returncode != 0
    output = built.stdout + built.stderr
    assert "builds its SQL scripts with `make` (and awk), which is not on PATH" in output
    assert "Traceback" not in output
