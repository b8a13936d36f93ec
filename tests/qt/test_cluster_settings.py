"""The desktop app on a Dask cluster (Settings ▸ Dask scheduler): a real LocalCluster of
worker processes runs the window's passes; a bad address is refused in the dialog."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from diagnostics_app.core.cluster import Cluster, open_cluster
from diagnostics_app.core.events import JobUpdated
from diagnostics_app.qt.app import wait_until_idle
from diagnostics_app.qt.main_window import MainWindow
from tests.core.project_factory import write_project, write_tone

pytestmark = [pytest.mark.xdist_group("cluster")]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with open_cluster(workers=1) as c:
        yield c


def _project(folder: Path) -> Path:
    write_tone(folder / "audio" / "a.wav", 1.0, 220.0, seed=4)
    return write_project(
        folder,
        {
            "name": "P",
            "sources": [{"id": "a", "path": "audio/a.wav"}],
            "tracks": [{"id": "t", "name": "T", "source": "a", "requests": [{"feature": "rms"}]}],
        },
    )


def test_the_settings_dialog_refuses_what_is_not_a_scheduler_address(
    make_window: Callable[..., MainWindow], tmp_path: Path
) -> None:
    window = make_window(_project(tmp_path))
    dialog = window.settings_dialog()
    dialog.scheduler.setText("http://scheduler")  # no port, not a Dask scheme
    dialog.accept()  # what its OK button does
    assert dialog.result() != dialog.DialogCode.Accepted
    assert "not a scheduler address" in dialog.error.text()
    dialog.scheduler.setText(" tcp://10.0.0.5:8786 ")
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    assert dialog.value().scheduler == "tcp://10.0.0.5:8786"
    dialog.deleteLater()


def test_the_window_runs_its_passes_on_the_scheduler_of_the_settings(
    make_window: Callable[..., MainWindow], tmp_path: Path, cluster: Cluster
) -> None:
    window = make_window(_project(tmp_path))
    controller = window.controller
    address = cluster.local.scheduler_address
    labels: list[str] = []
    lock = threading.Lock()

    def seen(event: JobUpdated) -> None:
        with lock:
            labels.append(event.label)

    controller.session.events.job_updated.connect(seen)
    window.apply_settings(replace(controller.settings, scheduler=address))
    assert controller._analysis.scheduler == address
    assert controller.calculate_missing() == 1
    assert wait_until_idle(window)
    assert {r.state for r in controller.diagnosis.rows} == {"ok"}
    assert f"connecting to {address}" in labels  # the pass went to the cluster
    # back to this machine's processes
    window.apply_settings(replace(controller.settings, scheduler=""))
    assert controller._analysis.scheduler == ""
