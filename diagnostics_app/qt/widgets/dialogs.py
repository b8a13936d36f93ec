"""Dialogs that build a new value (requests, tempo map, settings) and hand it back (the
profiles' dialog is in :mod:`.profiles_dialog`).

They validate nothing themselves beyond parsing what was typed: the caller passes the value to
an edit from :mod:`diagnostics_app.core.edits` through the controller, and a rejected edit's
one-line message is shown in the dialog (``show_error``) so the user can fix it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from diagnostics_app.audio_out import OutputDevice
from diagnostics_app.core.project import DEFAULT_PROFILE, Request
from diagnostics_app.qt.settings import AppSettings

AUTO_CALCULATOR = "(automatic)"


class _EditDialog(QDialog):
    """OK runs ``apply(value)``; a returned message keeps the dialog open and shows it."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.error = QLabel(self)
        self.error.setObjectName("dialogError")
        self.error.setStyleSheet("color: #c62828")
        self.error.setWordWrap(True)
        self.error.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self._on_ok)
        self.buttons.rejected.connect(self.reject)
        self.apply: Callable[[Any], str | None] | None = None

    def value(self) -> Any:
        raise NotImplementedError

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def _on_ok(self) -> None:
        try:
            value = self.value()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        problem = self.apply(value) if self.apply is not None else None
        if problem:
            self.show_error(problem)
            return
        self.accept()


def _parse_value(text: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class RequestsDialog(_EditDialog):
    """A track's requests: feature, calculator, profile and per-request params (JSON)."""

    HEADERS = ("Feature", "Calculator", "Profile", "Params (JSON)")

    def __init__(
        self,
        track_name: str,
        requests: Sequence[Request],
        features: Sequence[str],
        calculators: Sequence[str],
        profiles: Sequence[str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(f"Requests of {track_name}", parent)
        self.setObjectName("requestsDialog")
        self._features = list(features)
        self._calculators = [AUTO_CALCULATOR, *calculators]
        self._profiles = list(profiles)
        # invalid requests as written, with the cells they were shown in (see add_row)
        self._kept: list[tuple[Request, tuple[str, ...]]] = []
        self.table = QTableWidget(0, len(self.HEADERS), self)
        self.table.setHorizontalHeaderLabels(list(self.HEADERS))
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for req in requests:
            self.add_row(req)
        add = QPushButton("Add request", self)
        add.clicked.connect(
            lambda: self.add_row(Request(self._features[0] if self._features else "rms"))
        )
        remove = QPushButton("Remove selected", self)
        remove.clicked.connect(self._remove_selected)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "Each request is one descriptor row; params override the profile for this request only.",
                self,
            )
        )
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.resize(720, 360)

    def _combo(self, items: Sequence[str], current: str, editable: bool = False) -> QComboBox:
        box = QComboBox(self.table)
        box.setEditable(editable)
        box.addItems(list(items))
        if current not in items:
            box.addItem(current)
        box.setCurrentText(current)
        return box

    def add_row(self, req: Request) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        self.table.setCellWidget(r, 0, self._combo(self._features, req.feature, editable=True))
        self.table.setCellWidget(
            r, 1, self._combo(self._calculators, req.calculator or AUTO_CALCULATOR)
        )
        self.table.setCellWidget(r, 2, self._combo(self._profiles, req.profile))
        params = json.dumps(dict(req.params), sort_keys=True) if req.params else ""
        item = QTableWidgetItem(params)
        if req.problem is not None:
            # a request the file got wrong: shown as it could be read, kept as written (with
            # its mistake, so the row stays `invalid` and says why) unless its cells change
            self._kept.append((req, self._cells(r, params)))
            item.setData(Qt.ItemDataRole.UserRole, len(self._kept))  # 1 + its index
            item.setToolTip(f"invalid: {req.problem}")
            for c in range(3):
                w = self.table.cellWidget(r, c)
                if w is not None:
                    w.setToolTip(f"invalid: {req.problem}")
                    w.setStyleSheet("color: #c0392b;")
            item.setForeground(Qt.GlobalColor.red)
        self.table.setItem(r, 3, item)

    def _cells(self, r: int, params: str | None = None) -> tuple[str, ...]:
        texts = [self._cell_text(r, c) for c in range(3)]
        return (*texts, self._cell_text(r, 3) if params is None else params)

    def _remove_selected(self) -> None:
        for r in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(r)

    def value(self) -> tuple[Request, ...]:
        out: list[Request] = []
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 3)
            key = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
            if isinstance(key, int) and key > 0 and self._cells(r) == self._kept[key - 1][1]:
                out.append(self._kept[key - 1][0])  # an invalid request left alone stays
                continue
            feature = self._cell_text(r, 0).strip()
            calc = self._cell_text(r, 1)
            profile = self._cell_text(r, 2) or DEFAULT_PROFILE
            raw = self._cell_text(r, 3).strip()
            params: dict[str, Any] = {}
            if raw:
                try:
                    parsed = json.loads(raw)
                except ValueError as exc:
                    raise ValueError(f"row {r + 1}: params are not valid JSON ({exc})") from None
                if not isinstance(parsed, dict):
                    raise ValueError(
                        f'row {r + 1}: params must be a JSON object like {{"fmin": 80}}'
                    )
                params = parsed
            if not feature:
                raise ValueError(f"row {r + 1}: choose a feature")
            out.append(Request(feature, None if calc == AUTO_CALCULATOR else calc, profile, params))
        return tuple(out)

    def _cell_text(self, r: int, c: int) -> str:
        w = self.table.cellWidget(r, c)
        if isinstance(w, QComboBox):
            return w.currentText()
        item = self.table.item(r, c)
        return item.text() if item is not None else ""


class TempoMapDialog(_EditDialog):
    """Segments of constant tempo: start time (s) and BPM."""

    def __init__(
        self, segments: Sequence[Mapping[str, float]], parent: QWidget | None = None
    ) -> None:
        super().__init__("Tempo map", parent)
        self.setObjectName("tempoMapDialog")
        self.table = QTableWidget(0, 2, self)
        self.table.setObjectName("tempoTable")
        self.table.setHorizontalHeaderLabels(["Start (s)", "BPM"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        for seg in segments:
            self.add_row(float(seg["time"]), float(seg["bpm"]))
        add = QPushButton("Add segment", self)
        add.clicked.connect(self._add_after_last)
        remove = QPushButton("Remove selected", self)
        remove.clicked.connect(self._remove_selected)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "The first segment starts at 0 s. Only features that read the tempo map (beat_rms) go stale.",
                self,
            )
        )
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.resize(420, 320)

    def add_row(self, time: float, bpm: float) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        self.table.setItem(r, 0, QTableWidgetItem(f"{time:g}"))
        self.table.setItem(r, 1, QTableWidgetItem(f"{bpm:g}"))

    def set_bpm(self, row: int, bpm: float) -> None:
        item = self.table.item(row, 1)
        assert item is not None
        item.setText(f"{bpm:g}")

    def _add_after_last(self) -> None:
        segs = self._rows(strict=False)
        last_t, last_bpm = segs[-1] if segs else (0.0, 120.0)
        self.add_row(last_t + 8.0 if segs else 0.0, last_bpm)

    def _remove_selected(self) -> None:
        for r in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(r)

    def _rows(self, strict: bool = True) -> list[tuple[float, float]]:
        out = []
        for r in range(self.table.rowCount()):
            cells = [self.table.item(r, c) for c in (0, 1)]
            texts = [c.text().strip() if c is not None else "" for c in cells]
            try:
                out.append((float(texts[0]), float(texts[1])))
            except ValueError:
                if strict:
                    raise ValueError(f"row {r + 1}: start and BPM must be numbers") from None
        return out

    def value(self) -> list[dict[str, float]]:
        rows = self._rows()
        if not rows:
            raise ValueError("the tempo map needs at least one segment")
        return [{"time": t, "bpm": b} for t, b in sorted(rows)]


class SettingsDialog(QDialog):
    """Workers, the cache limit, automatic analysis, and the output device (``devices``: as
    PortAudio lists them; the remembered one is kept, marked, when it is not listed)."""

    def __init__(
        self,
        settings: AppSettings,
        parent: QWidget | None = None,
        devices: Sequence[OutputDevice] = (),
    ) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self._base = settings
        self.workers = QSpinBox(self)
        self.workers.setRange(1, 64)
        self.workers.setValue(settings.workers)
        self.workers.setToolTip("Analysis passes run in parallel")
        self.cache_limit = QSpinBox(self)
        self.cache_limit.setRange(0, 10**6)
        self.cache_limit.setSuffix(" MB")
        self.cache_limit.setSpecialValueText("no limit")
        self.cache_limit.setValue(settings.cache_limit_mb)
        self.auto = QCheckBox("Analyse missing rows automatically", self)
        self.auto.setChecked(settings.auto_analyse)
        form = QFormLayout()
        form.addRow("Worker threads", self.workers)
        self.cache_limit.setToolTip(
            "After each analysis, cached data is deleted until the cache fits: extraneous "
            "first, then stale, then the least recently computed"
        )
        form.addRow("Cache size limit", self.cache_limit)
        form.addRow("", self.auto)
        self.output_device = QComboBox(self)
        self.output_device.setObjectName("outputDeviceCombo")
        self.output_device.addItem("System default", "")
        for device in devices:
            mark = " — default" if device.is_default else ""
            self.output_device.addItem(f"{device.label}{mark}", device.name)
        wanted = settings.output_device
        if wanted and self.output_device.findData(wanted) < 0:
            self.output_device.addItem(f"{wanted} (not available)", wanted)
        self.output_device.setCurrentIndex(max(0, self.output_device.findData(wanted)))
        self.output_device.setToolTip(
            "Where playback goes; a device that is gone falls back to the system default"
        )
        form.addRow("Output device", self.output_device)
        self.scheduler = QLineEdit(settings.scheduler, self)
        self.scheduler.setObjectName("schedulerEdit")
        self.scheduler.setPlaceholderText("local processes; or tcp://HOST:8786")
        self.scheduler.setToolTip(
            "Where analysis passes run: this machine's processes (empty), or the Dask "
            "scheduler at this address (the README says what its workers must share)"
        )
        form.addRow("Dask scheduler", self.scheduler)
        self.error = QLabel(self)
        self.error.setObjectName("settingsError")
        self.error.setStyleSheet("color: #c0392b;")
        form.addRow("", self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def value(self) -> AppSettings:
        from dataclasses import replace

        return replace(
            self._base,
            workers=self.workers.value(),
            cache_limit_mb=self.cache_limit.value(),
            auto_analyse=self.auto.isChecked(),
            output_device=str(self.output_device.currentData() or ""),
            scheduler=self.scheduler.text().strip(),
        )

    def accept(self) -> None:
        address = self.scheduler.text().strip()
        if address:
            from diagnostics_app.core.cluster import ClusterError, check_address

            try:
                check_address(address)
            except ClusterError as exc:
                self.error.setText(str(exc))  # the dialog stays open
                return
        super().accept()
