#!/usr/bin/env bash
# Runs the GUI; on a machine without a display, starts a virtual one (Xvfb) so `make run` works.
set -euo pipefail
py=$1; shift
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
  echo "run-gui: no display; starting the app under Xvfb (xvfb-run)" >&2
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$py" -m diagnostics_app "$@"
fi
exec "$py" -m diagnostics_app "$@"
