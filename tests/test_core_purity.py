"""The sans-I/O core imports no Twisted and no zope: imports point inward only."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import bdii.core

PROBE = """
import importlib, json, pkgutil, sys
import bdii.core
names = sorted("bdii.core." + m.name for m in pkgutil.iter_modules(bdii.core.__path__))
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("twisted", "zope", "ldaptor"))
print(json.dumps({"imported": names, "leaked": leaked}))
"""


def test_importing_every_core_module_loads_no_twisted_or_zope() -> None:
    """In a fresh interpreter, importing every bdii.core module leaves no twisted, zope or ldaptor loaded."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         timeout=60)
    report = json.loads(out.stdout)
    expected = sorted("bdii.core." + m.name for m in pkgutil.iter_modules(bdii.core.__path__))
    assert report["imported"] == expected
    assert {"bdii.core.pipeline", "bdii.core.filters", "bdii.core.ldif"} <= set(expected)
    assert report["leaked"] == []
