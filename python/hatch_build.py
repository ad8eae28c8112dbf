"""Hatchling's build hook: the extension's SQL scripts go into every wheel and sdist.

`pip install ./python`, `python -m build` and an editable install run the repository's
`make all` first, so pg_monitoring/extension/ holds the scripts `make install` would
install: one build, the Makefile's, whatever the layout of ../sql. An sdist carries those
built scripts and no ../sql; a wheel built from it takes them as they are.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ExtensionScripts(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        package = Path(self.root)
        repository = package.parent
        built = package / "pg_monitoring" / "extension"
        if not (repository / "sql" / "pg_monitoring.sql").is_file():
            if not (built / "pg_monitoring.control").is_file():
                raise SystemExit(
                    f"pg-monitoring: no SQL sources in {repository / 'sql'} and no built scripts "
                    f"in {built}: build from a checkout of the repository, or from its sdist"
                )
            return  # an sdist: the scripts were built when it was made
        make = shutil.which("make")
        if make is None:
            raise SystemExit(
                "pg-monitoring: building the package builds its SQL scripts with `make` (and "
                "awk), which is not on PATH: install make, or install a wheel"
            )
        made = subprocess.run(  # noqa: S603 - our own argv
            [make, "-C", str(repository), "--no-print-directory", "all"],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            raise SystemExit(
                f"pg-monitoring: `make -C {repository} all` failed:\n{made.stderr.strip()}"
            )
