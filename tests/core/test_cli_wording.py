"""What the CLI prints: CSV headers that say what each column is (bin frequency, mel band
centre, chroma note), ``analyze --json``'s pass of each job and its time counted once,
``analyze`` in aligned columns, and ``prune --dry-run`` in plain English."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from diagnostics_app.cli_analyze import human_bytes
from diagnostics_app.core.calculators.spectral import fft_frequencies
from diagnostics_app.core.export import bin_names, csv_header
from tests.core.project_factory import SR, write_project, write_tone
from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    Cli,
    _no_plugins,  # noqa: F401  (autouse fixture)
    analysed,  # noqa: F401  (fixture)
    cli,  # noqa: F401  (fixture)
    edit_project,
    project,  # noqa: F401  (fixture)
)

NOTES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


@pytest.fixture
def image_project(tmp_path: Path, cli: Cli) -> Path:  # noqa: F811
    write_tone(tmp_path / "a.wav", 0.5, 440.0, channels=2, seed=4)
    path = write_project(
        tmp_path,
        {
            "profiles": {"small": {"window_size": 256, "hop_size": 256, "n_mels": 8}},
            "sources": [{"id": "a", "path": "a.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "source": "a",
                    "requests": [
                        {"feature": "mel", "profile": "small"},
                        {"feature": "chroma", "profile": "small"},
                        {"feature": "spectrogram", "profile": "small"},
                        {
                            "feature": "mel",
                            "profile": "small",
                            "params": {"channel_mode": "per_channel", "n_mels": 2},
                        },
                    ],
                }
            ],
        },
    )
    assert cli("analyze", path).code == 0
    return path


def _header(cli: Cli, project: Path, out: Path, *flags: str) -> list[str]:  # noqa: F811
    result = cli("export", project, "--source", "a", *flags, "--format", "csv", "-o", out)
    assert result.code == 0, result
    with out.open(newline="") as f:
        return next(csv.reader(f))


def test_csv_headers_name_bins_with_their_units(
    image_project: Path,
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    flags = ("--profile", "small", "--param", "n_mels=8")
    mel = _header(cli, image_project, tmp_path / "m.csv", "--feature", "mel", *flags[:2])
    assert mel[0] == "time" and len(mel) == 9
    assert mel[1].startswith("mel0_") and all(h.endswith("Hz") for h in mel[1:])
    centres = [float(re.fullmatch(r"mel\d+_([\d.]+)Hz", h)[1]) for h in mel[1:]]  # type: ignore[index]
    assert centres == sorted(centres) and 0 < centres[0] < centres[-1] < SR / 2

    chroma = _header(cli, image_project, tmp_path / "c.csv", "--feature", "chroma", *flags[:2])
    assert chroma == ["time", *NOTES]

    spec = _header(cli, image_project, tmp_path / "s.csv", "--feature", "spectrogram", *flags[:2])
    hz = fft_frequencies(SR, 256)
    assert spec == ["time", *(f"bin{i}_{f:.1f}Hz" for i, f in enumerate(hz))]
    assert spec[2] == f"bin1_{SR / 256:.1f}Hz"

    per_channel = _header(
        cli,
        image_project,
        tmp_path / "p.csv",
        "--feature",
        "mel",
        *flags[:2],
        "--param",
        "channel_mode=per_channel",
    )
    assert len(per_channel) == 5
    assert [h.split(":")[0] for h in per_channel[1:]] == ["ch1", "ch1", "ch2", "ch2"]
    assert per_channel[1].split(":")[1].startswith("mel0_")
    assert per_channel[1].split(":")[1] == per_channel[3].split(":")[1]


def test_bin_names() -> None:
    assert bin_names("chroma", 12, range(12), "pitch class") == tuple(NOTES)
    assert bin_names("chroma", 24, range(24), "pitch class")[:4] == ("C", "C+50c", "C#", "C#+50c")
    assert bin_names("mel", 2, [40.0, 1234.56], "Hz") == ("mel0_40.0Hz", "mel1_1234.6Hz")
    assert bin_names("x", 2, [1.0], "Hz") == ()  # bins unknown: bin0, bin1
    assert csv_header("x", (3, 2), (), (), [1.0], "Hz") == ["time", "bin0", "bin1"]
    # width names (pitch's f0, confidence) win over bins
    assert csv_header("p", (3, 2), ("f0", "confidence"), (), [0.0, 1.0], "Hz")[1:] == [
        "f0",
        "confidence",
    ]


def test_analyze_json_counts_each_pass_once(project: Path, cli: Cli) -> None:  # noqa: F811
    result = cli("analyze", project, "--json")
    assert result.code == 0
    jobs = result.json()["jobs"]
    passes: dict[int, list[dict]] = {}
    for job in jobs:
        passes.setdefault(job["pass"], []).append(job)
    # drums/default runs rms, beat_rms and spectrogram in one pass
    assert max(len(p) for p in passes.values()) == 3
    assert sorted(passes) == list(range(1, len(passes) + 1))
    for members in passes.values():
        first, *rest = members
        assert isinstance(first["pass_seconds"], float)
        assert all(j["pass_seconds"] is None for j in rest)
        # the jobs of a pass share its source, profile and parameters
        assert len({(j["source"], j["profile"], str(j["params"])) for j in members}) == 1
        # its time is split among its jobs: their seconds add up to the pass's
        assert sum(j["seconds"] for j in members) == pytest.approx(first["pass_seconds"], abs=1e-4)
    total = sum(j["pass_seconds"] for j in jobs if j["pass_seconds"] is not None)
    assert sum(j["seconds"] for j in jobs) == pytest.approx(total, abs=1e-3)

    dry = cli("analyze", project, "--dry-run", "--json", "--all").json()["jobs"]
    assert all(j["pass_seconds"] is None and j["seconds"] is None for j in dry)
    assert {j["pass"] for j in dry} == set(passes)


def test_analyze_text_is_aligned(project: Path, cli: Cli) -> None:  # noqa: F811
    lines = cli("analyze", project).out.splitlines()
    assert len(lines) == 6
    # every column starts at the same place on every line
    starts = [[m.start() for m in re.finditer(r"(?<=  )\S", line)] for line in lines]
    assert all(s[:5] == starts[0][:5] for s in starts), lines
    assert all(line.split()[0] == "done" for line in lines)
    assert sum(bool(re.search(r"\d\.\d\d s$", line)) for line in lines) == 4  # once per pass


def test_prune_dry_run_says_what_it_would_do(analysed: Path, cli: Cli) -> None:  # noqa: F811
    edit_project(analysed, lambda doc: doc["tracks"][2]["requests"].pop())  # bass rms
    dry = cli("prune", analysed, "--dry-run")
    assert dry.code == 0
    *items, last = dry.out.splitlines()
    nbytes = cli("prune", analysed, "--dry-run", "--json").json()["bytes"]
    assert last == f"would delete 1 extraneous entry ({human_bytes(nbytes)})"
    assert len(items) == 1 and items[0].split()[:4] == ["would", "delete", "bass", "rms"]
    done = cli("prune", analysed)
    assert done.out.splitlines()[-1] == f"deleted 1 extraneous entry ({human_bytes(nbytes)})"
    again = cli("prune", analysed, "--dry-run")
    assert again.out.strip() == "no extraneous entries: nothing to delete"


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 1, 1023, 2048, 2_411_724, 5 * 1024**3)] == [
        "0 bytes",
        "1 byte",
        "1023 bytes",
        "2.0 KB",
        "2.3 MB",
        "5.0 GB",
    ]
    assert np.isclose(2_411_724 / 1024**2, 2.3, atol=0.05)
