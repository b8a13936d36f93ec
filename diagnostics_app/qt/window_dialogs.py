"""The main window's dialogs: track requests, tempo map, profiles, settings, about.

Each ``*_dialog`` method builds a dialog wired to an undoable controller edit, and is public so
tests (and scripts) can drive the dialog without running it modally; the ``_edit_*`` slots
run them. A mixin of :class:`~diagnostics_app.qt.main_window.MainWindow`, apart from it so
the window module holds the layout and the wiring, not every dialog's details.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QMessageBox

from diagnostics_app import APP_NAME, __version__
from diagnostics_app.core import edits
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.project import Request
from diagnostics_app.qt.settings import AppSettings
from diagnostics_app.qt.widgets.dialogs import (
    RequestsDialog,
    SettingsDialog,
    TempoMapDialog,
)
from diagnostics_app.qt.widgets.profiles_dialog import ProfilesChange, ProfilesDialog
from diagnostics_app.qt.window_host import WindowHost


class EditDialogsMixin(WindowHost):
    def requests_dialog(self) -> RequestsDialog | None:
        if self._selection is None or self._selection[0] != "track":
            self.statusBar().showMessage("Select a track to edit its requests", 4000)
            return None
        c = self.controller
        track = c.project.track(self._selection[1])
        registry = c.session.registry
        dlg = RequestsDialog(
            track.name,
            track.requests,
            registry.features(),
            [calc.id for calc in registry],
            c.project.profile_names(),
            self,
        )
        tid = track.id

        def apply(requests: tuple[Request, ...]) -> str | None:
            return c.edit(
                f"Edit requests of {track.name}", lambda p: edits.set_requests(p, tid, requests)
            )

        dlg.apply = apply
        return dlg

    @Slot()
    def _edit_requests(self) -> None:
        dlg = self.requests_dialog()
        if dlg is not None:
            dlg.exec()

    def tempo_dialog(self) -> TempoMapDialog:
        c = self.controller
        dlg = TempoMapDialog(c.project.tempo_map.to_json(), self)
        dlg.apply = lambda segments: c.edit(
            "Edit tempo map", lambda p: edits.set_tempo_map(p, segments)
        )
        return dlg

    @Slot()
    def _edit_tempo_map(self) -> None:
        self.tempo_dialog().exec()

    def profiles_dialog(self) -> ProfilesDialog:
        c = self.controller
        names = c.project.profile_names()
        before = {n: dict(c.project.profile(n)) for n in names}
        users = {n: edits.user_labels(c.project, n) for n in names}
        dlg = ProfilesDialog(before, self, users)

        def text_of(change: ProfilesChange) -> str:
            """One step is named in the Undo menu ("Undo Rename profile fine to finer")."""
            if len(change.ops) != 1:
                return "Edit profiles"
            try:
                after = edits.edit_profiles(c.project, change.ops, {})
            except DiagnosticsError:
                return "Edit profiles"  # c.edit says why
            same = all(dict(after.profile(n)) == dict(v) for n, v in change.values.items())
            return change.ops[0].describe() if same else "Edit profiles"

        def apply(change: ProfilesChange) -> str | None:
            return c.edit(
                text_of(change), lambda p: edits.edit_profiles(p, change.ops, change.values)
            )

        dlg.apply = apply
        return dlg

    @Slot()
    def _edit_profiles(self) -> None:
        self.profiles_dialog().exec()

    def settings_dialog(self) -> SettingsDialog:
        """The Settings dialog, its output devices as PortAudio lists them now."""
        return SettingsDialog(self.controller.settings, self, self.player.list_output_devices())

    @Slot()
    def _edit_settings(self) -> None:
        dlg = self.settings_dialog()
        if dlg.exec():
            self.apply_settings(dlg.value())

    def apply_settings(self, settings: AppSettings) -> None:
        """Apply and remember ``settings``; a new output device is used from the next Play
        (at once while playing); one that is gone falls back to the default, with a notice."""
        device_changed = settings.output_device != self.controller.settings.output_device
        self.controller.apply_settings(settings)
        if self.settings_store is not None:
            self.settings_store.save(settings)
        self.statusBar().showMessage("Settings saved", 3000)
        if device_changed:
            self.player.set_device(settings.output_device or None)

    @Slot()
    def _about(self) -> None:
        QMessageBox.about(
            self,
            f"About {APP_NAME}",
            f"<b>{APP_NAME} {__version__}</b><p>Diagnostics for audio feature caches.</p><p>Store: {html.escape(str(self.controller.session.store.root))}</p>",
        )
