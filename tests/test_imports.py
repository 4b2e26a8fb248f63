"""Every module of the project imports on its own, first, in a fresh interpreter.

A job or a command may be the first to import a module (a worker imports a job's module by name), so
an import cycle that only works in one order is a crash waiting for that order. One subprocess: the
project's modules are dropped from sys.modules before each import, third-party ones stay loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import importlib, pkgutil, sys
roots = ("saas", "tenants", "workers")
names = [m.name for root in roots for m in pkgutil.walk_packages(importlib.import_module(root).__path__, root + ".")
         if ".migrations." not in m.name]
failed = []
for name in names:
    for loaded in [k for k in sys.modules if k.split(".")[0] in roots]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_module_imports_first_on_its_own():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    count, *failed = done.stdout.strip().split("\n")
    assert int(count) > 100  # the walk found the project
    assert [f for f in failed if f] == []
