"""inittui.core never imports textual or rich: checked in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import inittui.core


def test_core_modules_import_without_ui_libraries():
    names = [m.name for m in pkgutil.walk_packages(inittui.core.__path__, "inittui.core.")]
    assert "inittui.core.loading" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
