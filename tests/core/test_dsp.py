"""The hand-written windows equal scipy's (``get_window(..., fftbins=True)``), which librosa uses."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from diagnostics_app.core.dsp import periodic_window
from diagnostics_app.core.params import WINDOWS


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("length", [16, 17, 255, 256, 1024, 2048, 2049])
def test_windows_match_scipy(name: str, length: int) -> None:
    ours = periodic_window(name, length)
    ref = scipy.signal.get_window(name, length, fftbins=True)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_unknown_window_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown window"):
        periodic_window("kaiser", 16)


def test_core_check_path_does_not_import_scipy_signal() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from diagnostics_app.core.session import Session\n"
        "import diagnostics_app.cli\n"
        "print('scipy.signal' in sys.modules, 'scipy.fft' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
