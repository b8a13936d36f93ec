#!/usr/bin/env bash
# Real music for looking at the app and for benchmarks, never committed: Debian's
# singularity-music (48 kHz stereo Ogg songs) unpacked under ~/.cache/diagnostics-app/music.
# Idempotent; prints the folder holding the .ogg files.
set -euo pipefail
root=${DIAGNOSTICS_APP_MUSIC:-$HOME/.cache/diagnostics-app/music}
songs=$root/usr/share/games/singularity/music
if ! ls "$songs"/*.ogg >/dev/null 2>&1; then
  mkdir -p "$root"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download singularity-music >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get download singularity-music >/dev/null; })
  dpkg -x "$work"/singularity-music_*.deb "$root"
fi
echo "$songs"
