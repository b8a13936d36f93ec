"""Channel mute and solo for multichannel sources: the Playback ▸ Channels menu.

One checkable action per channel of the source in the player (checked: heard); Alt+click on
one, or its entry in the Solo submenu, hears that channel alone; "Hear All" undoes both. The
choice goes to :meth:`~diagnostics_app.qt.playback.Player.set_channel_mask` at once (also while
playing) and is reset when another source is opened. A mixin of
:class:`~diagnostics_app.qt.main_window.MainWindow`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMenu

from diagnostics_app.core.axes import channel_names
from diagnostics_app.qt.window_host import WindowHost


class ChannelsMixin(WindowHost):
    channels_menu: QMenu
    solo_menu: QMenu
    channel_actions: list[QAction]

    def _init_channels(self, playback_menu: QMenu) -> None:
        playback_menu.addSeparator()
        self.channels_menu = playback_menu.addMenu("&Channels")
        self.channels_menu.setObjectName("channelsMenu")
        self.channels_menu.setToolTipsVisible(True)
        self.channel_actions = []
        self.solo_menu = QMenu("&Solo", self.channels_menu)
        self.solo_menu.setObjectName("soloMenu")
        self._rebuild_channels_menu()

    def _rebuild_channels_menu(self) -> None:
        """One action per channel of the player's source (a mono source: disabled)."""
        menu = self.channels_menu
        menu.clear()
        self.solo_menu.clear()
        self.channel_actions = []
        count = self.player.channels
        for i, name in enumerate(channel_names(count)):
            action = QAction(name, menu)
            action.setObjectName(f"actionChannel{i + 1}")
            action.setCheckable(True)
            action.setChecked(True)
            action.setToolTip(f"Hear {name} (Alt+click: hear it alone)")
            action.triggered.connect(self._on_channel_toggled)
            menu.addAction(action)
            self.channel_actions.append(action)
            solo = self.solo_menu.addAction(name)
            solo.setObjectName(f"actionSolo{i + 1}")
            solo.triggered.connect(lambda _=False, i=i: self.solo_channel(i))
        menu.addSeparator()
        menu.addMenu(self.solo_menu)
        hear_all = menu.addAction("Hear &All")
        hear_all.setObjectName("actionHearAll")
        hear_all.triggered.connect(self.hear_all_channels)
        menu.setEnabled(count > 1)

    def channel_mask(self) -> tuple[bool, ...]:
        return tuple(a.isChecked() for a in self.channel_actions)

    def solo_channel(self, index: int) -> None:
        """Hear channel ``index`` alone."""
        for i, action in enumerate(self.channel_actions):
            action.setChecked(i == index)
        self._apply_channel_mask()

    @Slot()
    def hear_all_channels(self) -> None:
        for action in self.channel_actions:
            action.setChecked(True)
        self._apply_channel_mask()

    @Slot(bool)
    def _on_channel_toggled(self, checked: bool) -> None:
        sender = self.sender()
        if (
            isinstance(sender, QAction)
            and sender in self.channel_actions
            and QApplication.keyboardModifiers() & Qt.KeyboardModifier.AltModifier
        ):
            self.solo_channel(self.channel_actions.index(sender))  # Alt+click: solo
            return
        self._apply_channel_mask()

    def _apply_channel_mask(self) -> None:
        mask = self.channel_mask()
        self.player.set_channel_mask(None if all(mask) else mask)
        heard = [a.text() for a in self.channel_actions if a.isChecked()]
        if not all(mask):
            text = f"Hearing {', '.join(heard)}" if heard else "Every channel muted"
            self.statusBar().showMessage(text, 3000)
