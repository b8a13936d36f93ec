#!/usr/bin/env bash
# Build the one-folder desktop bundle and its tarball (`make bundle` runs this after
# `pip install -e '.[bundle]'`):
#
#   dist/diagnostics-app/                                 the bundle (run ./diagnostics-app)
#   dist/diagnostics-app-<version>-linux-x86_64.tar.gz    the same folder, as
#                                                         diagnostics-app-<version>/ in the tarball
#
# The bundle folder also holds share/ (desktop entry, AppStream metainfo, hicolor icons) and
# install.sh, which puts the app into ~/.local (or --prefix DIR). Check it with `make smoke`.
#
# Environment: PY (default .venv/bin/python, else python3) with PyInstaller installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PY=${PY:-}
if [[ -z $PY ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c 'import PyInstaller' 2>/dev/null; then
    echo "build.sh: PyInstaller is not installed for $PY; run: $PY -m pip install -e '.[bundle]'" >&2
    exit 2
fi

APP=diagnostics-app
APP_ID=io.github.diagnostics_app
VERSION=$("$PY" -c 'from diagnostics_app import __version__; print(__version__)')
ARCH=$(uname -m)
BUNDLE=dist/$APP
TARBALL=dist/$APP-$VERSION-linux-$ARCH.tar.gz
ICONS=build/icons   # written by make_icons.py, which the spec runs

start=$(date +%s)
echo "== PyInstaller ($("$PY" -m PyInstaller --version)), $APP $VERSION"
rm -rf "$BUNDLE"
"$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/$APP.spec

echo "== desktop integration files"
SHARE=$BUNDLE/share
install -Dm644 packaging/$APP_ID.desktop "$SHARE/applications/$APP_ID.desktop"
install -Dm644 packaging/$APP_ID.metainfo.xml "$SHARE/metainfo/$APP_ID.metainfo.xml"
install -Dm644 resources/icons/$APP.svg "$SHARE/icons/hicolor/scalable/apps/$APP_ID.svg"
for png in "$ICONS"/$APP-*.png; do
    size=${png##*-}; size=${size%.png}
    install -Dm644 "$png" "$SHARE/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
done
install -m755 packaging/install.sh "$BUNDLE/install.sh"

# every library the bundle's binaries link must be in the bundle or be a system library the
# target is expected to have (glibc, GL/EGL, Wayland); report the ones this machine lacks
missing=$(find "$BUNDLE" -name '*.so*' -type f -print0 \
    | LD_LIBRARY_PATH="$ROOT/$BUNDLE/_internal" xargs -0 ldd 2>/dev/null \
    | grep 'not found' | sort -u || true)
if [[ -n $missing ]]; then
    echo "build.sh: warning: libraries neither bundled nor on this system:" >&2
    echo "$missing" >&2
fi

echo "== $TARBALL"
rm -f "$TARBALL"
tar -C dist --owner=0 --group=0 --transform "s,^$APP,$APP-$VERSION,S" -czf "$TARBALL" "$APP"

end=$(date +%s)
echo "bundle:  $BUNDLE  $(du -sh "$BUNDLE" | cut -f1)"
echo "tarball: $TARBALL  $(du -sh "$TARBALL" | cut -f1)"
echo "built in $((end - start)) s; check it with: bash packaging/smoke-test"
