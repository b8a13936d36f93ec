"""Replaces PyInstaller's hook for PySide6.QtGui (hooks in ``hookspath`` take precedence):
the same collection, minus the Qt plugins a desktop app on X11/Wayland never loads.

Dropping them *here*, before PyInstaller resolves binary dependencies, also keeps out what
only they link to: QtNetwork + Kerberos (VNC platform, TUIO touch), GTK 3's pango/cairo/
gdk-pixbuf/atk stack (the GTK 3 platform theme, which would load the system's GTK 3 against
the bundled copies of those libraries), and the EGLFS device integrations.
"""

from pathlib import PurePath

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

# (plugin type, file name); "*" drops the whole type
DROPPED_PLUGINS = {
    ("platforms", "libqeglfs.so"),
    ("platforms", "libqlinuxfb.so"),
    ("platforms", "libqminimalegl.so"),
    ("platforms", "libqvkkhrdisplay.so"),
    ("platforms", "libqvnc.so"),
    ("platformthemes", "libqgtk3.so"),
    ("egldeviceintegrations", "*"),
    ("generic", "*"),
}


def _dropped(dest_dir: str, src: str) -> bool:
    parts = PurePath(dest_dir).parts
    if "plugins" not in parts or parts.index("plugins") + 1 >= len(parts):
        return False
    kind = parts[parts.index("plugins") + 1]
    return (kind, "*") in DROPPED_PLUGINS or (kind, PurePath(src).name) in DROPPED_PLUGINS


hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = [(src, dest) for src, dest in binaries if not _dropped(dest, src)]
