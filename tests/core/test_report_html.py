"""``diagnostics-app report``: one self-contained HTML file, checked in a real browser.

The report is opened in headless Chromium (Debian's ``chromium``) with a probe script appended
to a copy of it; the DOM Chromium dumps is parsed: every section is there, every picture was
decoded by the browser at its declared size, nothing was fetched from anywhere, and hostile
names stayed text. On a machine with Chromium these tests never skip (``make test`` installs
it: scripts/system-deps.sh); in CI a missing Chromium fails them."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core import thumbnails as th
from diagnostics_app.core.png import decode_png
from tests.core import test_cli
from tests.core.project_factory import SR, shared_source_project, write_project, write_tone
from tests.core.test_cli import Cli, assert_bad_input, edit_project
from tests.core.test_verify_drift import alter_stored, louder

# the CLI tests' fixtures, used here too
_no_plugins = test_cli._no_plugins
cli = test_cli.cli

HOSTILE_NAME = '<script>alert("name")</script><img src=x onerror=alert(1)> & "Mix"'
HOSTILE_SOURCE = '"><b onmouseover=alert(2)>bass</b>'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HANG_GUARD_S = 120  # a browser that hangs fails the test instead of stalling the run

PROBE = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight,
                                           i.width, i.height]),
    resources: performance.getEntriesByType("resource").map(r => r.name),
    scripts: document.scripts.length,
  });
  document.body.appendChild(out);
});
</script>"""


class Dom(HTMLParser):
    """The elements of a document: (tag, attributes, text inside) for each start tag."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, str] = {}  # id -> its text
        self._open: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        self.elements.append((tag, d))
        if d.get("id"):
            self._open.append(str(d["id"]))
            self.texts.setdefault(str(d["id"]), "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("section", "pre") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for ident in self._open:
            self.texts[ident] += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def browser_dom(report: Path, tmp_path: Path) -> tuple[Dom, dict[str, Any]]:
    """The DOM of ``report`` as headless Chromium loaded it, and the probe's findings."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/system-deps.sh installs it)")
        pytest.skip("chromium is not installed (scripts/system-deps.sh installs it)")
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # tests run as root here
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Dom(proc.stdout)
    assert "probe" in dom.texts, proc.stdout[-2000:]
    return dom, json.loads(dom.texts["probe"])


@pytest.fixture
def qa_project(tmp_path: Path, cli: Cli) -> Path:
    """Hostile names; rows ok, stale (a profile edit), missing (never analysed) and invalid."""
    write_tone(tmp_path / "audio" / "bass.wav", 1.0, 110.0, seed=2)
    write_tone(tmp_path / "audio" / "drums.wav", 1.5, 220.0, channels=2, seed=1)
    path = write_project(
        tmp_path,
        {
            "name": HOSTILE_NAME,
            "profiles": {"fine": {"window_size": 1024, "hop_size": 256}},
            "sources": [
                {"id": HOSTILE_SOURCE, "path": "audio/bass.wav"},
                {"id": "drums", "path": "audio/drums.wav"},
            ],
            "tracks": [
                {
                    "id": "bass",
                    "source": HOSTILE_SOURCE,
                    "requests": [
                        {"feature": "rms"},
                        {"feature": "spectrogram"},
                        {"feature": "pitch", "params": {"fmin": 40.0, "fmax": 400.0}},
                        {"feature": "nosuch"},
                    ],
                },
                {
                    "id": "drums",
                    "source": "drums",
                    "requests": [
                        {"feature": "peaks"},
                        {"feature": "centroid", "profile": "fine"},
                        {"feature": "mel"},
                    ],
                },
            ],
        },
    )
    features = ("rms", "spectrogram", "pitch", "peaks", "centroid")
    assert cli("analyze", path, *(f"--feature={f}" for f in features)).code == 0
    edit_project(path, lambda doc: doc["profiles"]["fine"].update(hop_size=128))
    return path


def test_the_report_in_chromium_has_every_section_and_every_picture_decodes(
    qa_project: Path, tmp_path: Path, cli: Cli
) -> None:
    out = tmp_path / "report.html"
    result = cli("report", qa_project, "-o", out, "--source", HOSTILE_SOURCE, "--source", "drums")
    assert result.code == 0, result
    dom, probe = browser_dom(out, tmp_path)
    assert [s.get("id") for s in dom.find("section")] == ["summary", "issues", "lanes"]
    # every picture decoded by the browser, at the size the page declares
    images = probe["images"]
    assert len(images) == 5  # rms, spectrogram, pitch, peaks, centroid (stale: still drawn)
    for complete, natural_w, natural_h, w, h in images:
        assert complete and natural_w > 0 and (natural_w, natural_h) == (w, h)
    assert probe["resources"] == []  # self-contained: nothing fetched
    assert probe["scripts"] == 1  # the probe's; hostile names made no element
    assert not [a for _, a in dom.elements if any(k.startswith("on") for k in a)]
    assert dom.find("h1") and HOSTILE_NAME in dom.texts["summary"]
    assert HOSTILE_SOURCE in dom.texts["issues"] and HOSTILE_SOURCE in dom.texts["lanes"]
    issues = dom.find("tr", **{"class": "issue"})
    assert sorted(str(a["data-state"]) for a in issues) == ["invalid", "missing", "stale"]
    lanes = dom.find("figure", **{"class": "lane"})
    assert len(lanes) == 7  # every selected row; mel and nosuch say why they have no picture


def test_the_html_is_self_contained_and_its_pictures_are_pngs(
    qa_project: Path, tmp_path: Path, cli: Cli
) -> None:
    out = tmp_path / "report.html"
    assert cli("report", qa_project, "-o", out, "--source", "drums").code == 0
    text = out.read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not re.search(r"(?:src|href)=\"(?!data:image/png;base64,)", text)
    dom = Dom(text)
    images = dom.find("img")
    assert len(images) == 2  # peaks and centroid of drums only: the selection
    for img in images:
        src = str(img["src"])
        pixels = decode_png(base64.b64decode(src.split(",", 1)[1]))
        assert pixels.shape == (int(str(img["height"])), int(str(img["width"])), 3)
        assert len(set(map(tuple, pixels.reshape(-1, 3)[::97]))) > 1  # something is drawn


def test_summary_counts_match_check_and_reasons_read_as_explain(
    qa_project: Path, tmp_path: Path, cli: Cli
) -> None:
    out = tmp_path / "report.html"
    assert cli("report", qa_project, "-o", out).code == 0
    dom = Dom(out.read_text(encoding="utf-8"))
    summary = cli("check", qa_project, "--json").json()["summary"]
    cells = {str(a["data-state"]) for a in dom.find("td") if "data-state" in a}
    assert cells == set(summary)
    counts = re.findall(r'<td data-state="(\w+)">(\d+)</td>', out.read_text(encoding="utf-8"))
    assert {s: int(n) for s, n in counts} == summary
    issues = dom.texts["issues"]
    assert "profile.hop_size: 256 → 128" in issues  # the stale row's reason, as check says it
    assert "unknown feature 'nosuch'" in issues
    assert "requested, nothing cached" in issues
    # no selection and nothing regenerated: no lane is drawn
    assert not dom.find("img")
    assert "No regenerated rows" in dom.texts["lanes"]


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("missing/report.html", "missing"),
        (".", "folder"),
        ("project.json", "project file"),
        (".featurecache/r.html", "feature store"),
    ],
)
def test_bad_output_paths_are_one_line(
    qa_project: Path, cli: Cli, target: str, needle: str
) -> None:
    before = qa_project.read_bytes()
    assert_bad_input(cli("report", qa_project, "-o", qa_project.parent / target), needle)
    assert qa_project.read_bytes() == before


def test_bad_selection_and_missing_output_are_one_line(
    qa_project: Path, tmp_path: Path, cli: Cli
) -> None:
    assert_bad_input(cli("report", qa_project, "-o", tmp_path / "r.html", "--source", "x"), "'x'")
    assert_bad_input(cli("report", qa_project), "-o")
    assert_bad_input(cli("report", tmp_path / "none.json", "-o", tmp_path / "r.html"), "none.json")
    assert not (tmp_path / "r.html").exists()


def test_regenerated_rows_show_previous_against_current_with_the_differing_range(
    tmp_path: Path, cli: Cli
) -> None:
    project = shared_source_project(tmp_path)
    assert cli("analyze", project).code == 0
    alter_stored(project, "bass", "rms", louder)  # the data before the regeneration
    assert cli("analyze", project, "--all", "--source", "bass").code == 0
    out = tmp_path / "report.html"
    assert cli("report", project, "-o", out).code == 0
    dom, probe = browser_dom(out, tmp_path)
    # without a selection: exactly the regenerated rows, each with its verdict
    lanes = dom.find("figure", **{"class": "lane"})
    assert [(a["data-source"], a["data-feature"]) for a in lanes] == [
        ("bass", "pitch"),
        ("bass", "rms"),
    ]
    verdicts = [str(a["class"]) for a in dom.find("span") if "verdict" in str(a.get("class"))]
    assert verdicts == ["verdict verdict-identical", "verdict verdict-differs"]
    assert "10 of 44 frames beyond" in dom.texts["lanes"]
    assert all(complete and w > 0 for complete, w, *_ in probe["images"])
    # the rms overlay: previous grey and current blue, the altered frames marked in red
    rms = [a for a in dom.find("img") if str(a["alt"]).startswith("bass / rms")]
    assert len(rms) == 1
    pixels = decode_png(base64.b64decode(str(rms[0]["src"]).split(",", 1)[1]))
    duration = 44 * 512 / SR  # the lane spans every frame (frames 10..20 altered)
    red = np.flatnonzero(np.all(pixels[-1] == th.MARK_COLOUR, axis=-1))
    assert red.min() == pytest.approx(10 * 512 / SR / duration * th.WIDTH, abs=2)
    assert red.max() == pytest.approx(20 * 512 / SR / duration * th.WIDTH, abs=2)
    assert np.all(pixels == th.OLD_COLOUR, axis=-1).any()
