"""The core must import no Qt: checked in a fresh interpreter."""

import subprocess
import sys


def test_core_imports_no_qt() -> None:
    code = (
        "import sys, pkgutil, importlib, diagnostics_app.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'diagnostics_app.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "import diagnostics_app.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core loaded Qt modules: {out.stdout.strip()}"
