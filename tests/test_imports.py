"""Every module of the package imports on its own, in a fresh interpreter: no import cycle
hides behind the order in which other modules happen to be imported. New modules are found
by walking the package, so they are covered without a change here."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pg_monitoring

MODULES = sorted(
    module.name
    for module in pkgutil.walk_packages(pg_monitoring.__path__, f"{pg_monitoring.__name__}.")
)


def test_every_module_imports_alone() -> None:
    assert "pg_monitoring.cli" in MODULES
    # One interpreter per module, all at once: a fresh interpreter each costs ~0.5 s.
    children = {
        module: subprocess.Popen(
            [sys.executable, "-c", f"import {module}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module in MODULES
    }
    failures = {}
    for module, child in children.items():
        out, err = child.communicate(timeout=120)
        if child.returncode != 0 or out:
            failures[module] = (err.strip().splitlines() or [out.strip()])[-1]
    assert failures == {}
