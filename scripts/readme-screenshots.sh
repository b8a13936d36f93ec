#!/usr/bin/env bash
# The README's screenshots, on real music (scripts/real-music.sh): a project on two songs,
# analysed, then one profile edited so a row is stale, rendered offscreen.
# Usage: scripts/readme-screenshots.sh [PYTHON]   (default .venv/bin/python)
set -euo pipefail
py=${1:-.venv/bin/python}
songs=$(bash "$(dirname "$0")/real-music.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/audio" docs/screenshots
cp "$songs/Awakening.ogg" "$work/audio/awakening.ogg"
cp "$songs/Coherence.ogg" "$work/audio/coherence.ogg"
cat > "$work/project.json" <<'JSON'
{
  "format": "diagnostics-app/project", "schema_version": 1, "name": "Singularity",
  "tempo_map": [{"time": 0.0, "bpm": 96.0}],
  "profiles": {"voice": {"fmin": 80.0, "fmax": 800.0}, "fine": {"hop_size": 256}},
  "sources": [{"id": "awakening", "path": "audio/awakening.ogg"},
              {"id": "coherence", "path": "audio/coherence.ogg"}],
  "tracks": [
    {"id": "mix", "name": "Mix", "source": "awakening",
     "requests": [{"feature": "peaks"}, {"feature": "rms", "profile": "fine"},
                  {"feature": "chroma"}, {"feature": "pitch", "profile": "voice"},
                  {"feature": "spectrogram"}, {"feature": "beat_rms"}]},
    {"id": "pad", "name": "Pad", "source": "coherence",
     "requests": [{"feature": "peaks"}, {"feature": "mel"}, {"feature": "onset"}]}
  ]
}
JSON
"$py" -m diagnostics_app analyze "$work/project.json" >/dev/null
# a stale row to explain: the fine profile's hop changes after the analysis
"$py" - "$work/project.json" <<'PY'
import json, sys
p = sys.argv[1]
data = json.load(open(p))
data["profiles"]["fine"]["hop_size"] = 128
json.dump(data, open(p, "w"), indent=2)
PY
shot() { "$py" -m diagnostics_app screenshot "$work/project.json" "$@"; }
shot -o docs/screenshots/main-window.png --select awakening --row rms --size 1600x1000
shot -o docs/screenshots/spectrogram.png --select awakening --row spectrogram --size 1400x1000 \
  --time-selection 96:104
shot -o docs/screenshots/chroma-mel.png --select coherence --row mel --size 1400x900
# a job running: the other song, analysed while the window shows its progress
# (a file, not stdin: the window's worker processes import the main module)
cat > "$work/job_running.py" <<'PY'
import json, os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QEventLoop
from diagnostics_app.core.session import Session
from diagnostics_app.qt.app import ensure_app, wait_until_idle
from diagnostics_app.qt.controller import Controller
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.settings import AppSettings



def main(path: str, out: str) -> None:
    data = json.load(open(path))
    data["tracks"][1]["requests"] += [{"feature": "chroma"}, {"feature": "spectrogram"}]
    json.dump(data, open(path, "w"), indent=2)
    app = ensure_app()
    controller = Controller(Session.open(path), AppSettings(workers=2, auto_analyse=False))
    window = MainWindow(controller)
    window.force_close = True
    window.resize(1400, 900)
    window.show()
    window.select(("source", "coherence"))
    wait_until_idle(window)
    controller.calculate_missing()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        running = [j for j in controller.jobs if j.state == "running" and (j.progress or 0) > 0.3]
        if running:
            break
    window.grab().save(out, "PNG")
    window.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
PY
"$py" "$work/job_running.py" "$work/project.json" docs/screenshots/job-running.png
echo "docs/screenshots: main-window.png spectrogram.png chroma-mel.png job-running.png"
