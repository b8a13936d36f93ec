#!/usr/bin/env bash
# Installs the Debian packages the app and its tests need, and only those that are missing.
# Idempotent: a second run installs nothing and does not touch apt's lists.
set -euo pipefail
PKGS=(
  # offscreen Qt, fonts (without them every label is an empty box), PortAudio for sounddevice
  libegl1 libgl1 libx11-6 libdbus-1-3 libfontconfig1 libfreetype6 libglib2.0-0 libxkbcommon0
  fonts-dejavu-core libportaudio2
  # a real window under Xvfb (make run on a machine without a display, screenshots)
  xvfb xauth libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libx11-xcb1
  libxcb-shm0 libxcb-sync1 libxcb-glx0 libxcb-util1 libxcb-render0
  # the distributions' validators of the desktop entry and the AppStream metadata (tests)
  desktop-file-utils appstream
  # a real browser for the QA report's tests (headless: --dump-dom, --screenshot)
  chromium
)
command -v dpkg-query >/dev/null 2>&1 || { echo "system-deps: not a Debian system; install the equivalents of: ${PKGS[*]}" >&2; exit 0; }
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "system-deps: run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
