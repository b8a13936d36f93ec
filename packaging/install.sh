#!/usr/bin/env bash
# Install this unpacked diagnostics-app bundle for the current user (or into --prefix DIR):
#
#   ./install.sh                 # → ~/.local/lib/diagnostics-app, ~/.local/bin/diagnostics-app,
#                                #   desktop entry, AppStream metainfo and icons in ~/.local/share
#   ./install.sh --prefix /opt/x # the same layout under /opt/x
#   ./install.sh --uninstall     # remove what install.sh put there
#
# The desktop entry's Exec= is rewritten to the installed binary's absolute path, so the
# launcher works even when PREFIX/bin is not on the desktop session's PATH.
set -euo pipefail

APP=diagnostics-app
APP_ID=io.github.diagnostics_app
PREFIX=$HOME/.local
UNINSTALL=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) PREFIX=${1#--prefix=}; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$PREFIX/lib/$APP
SHARE=$PREFIX/share

refresh() {
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$SHARE/applications" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$SHARE/icons/hicolor" || true
}

if [[ $UNINSTALL == 1 ]]; then
    rm -rf "$LIB"
    rm -f "$PREFIX/bin/$APP" "$SHARE/applications/$APP_ID.desktop" \
        "$SHARE/metainfo/$APP_ID.metainfo.xml" "$SHARE"/icons/hicolor/*/apps/$APP_ID.{png,svg}
    refresh
    echo "removed $APP from $PREFIX"
    exit 0
fi

[[ -x $HERE/$APP && -d $HERE/_internal ]] || { echo "install.sh: run me from the unpacked bundle" >&2; exit 2; }
mkdir -p "$LIB" "$PREFIX/bin"
if [[ $(cd "$LIB" && pwd) != "$HERE" ]]; then
    rm -rf "$LIB"
    cp -a "$HERE" "$LIB"
fi
ln -sfn "$LIB/$APP" "$PREFIX/bin/$APP"
(cd "$HERE/share" && find . -type f) | while read -r f; do
    install -Dm644 "$HERE/share/$f" "$SHARE/$f"
done
sed -i -e "s|^Exec=.*|Exec=$LIB/$APP|" -e "s|^TryExec=.*|TryExec=$LIB/$APP|" \
    "$SHARE/applications/$APP_ID.desktop"
refresh
echo "installed $APP into $PREFIX (run: $PREFIX/bin/$APP)"
