"""The synthetic project of ``bench/diagnostics.py``: built once in ``bench/out/diag/``
(gitignored), reused while ``BUILD`` is unchanged (``--rebuild`` forces it).

2,000 real WAV sources of 0.05 s (mono and stereo, 22.05/44.1/48 kHz), 10,000 tracks (5 per
source), 3 profiles × 2 parameter variants × 9 features = 50 descriptors per source (4
combinations left out), each requested by 2 or 3 of the source's tracks: 100,000 requested
rows. The store is POPULATED with ``FeatureStore.import_entries`` (one transaction, real tiny
``.npy`` files) with fingerprints made by ``fingerprint.build`` from the real audio facts
(``read_info`` and the content digest, cached in the store as an analysis would leave it),
except: ~2 % of the descriptors are not stored (``missing``), ~2 % are stored with an old
fingerprint (``stale``: old audio digest, old ``hop_size`` or old calculator version), every
other source has one entry nobody requests (``extraneous``), and 20 missing rows have a failed
job record (``failed``).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _util

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.audio import content_digest, read_info
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.project import load_project
from diagnostics_app.core.store import EntryImport, EntryKey, FeatureStore, JobRecord
from diagnostics_app.core.tempo import TempoMap

ROOT = Path(__file__).resolve().parents[1]
OUT = _util.OUT_DIR / "diag"
BUILD = 2  # bump when the synthetic project changes

N_SOURCES = 2000
TRACKS_PER_SOURCE = 5
SECONDS = 0.05
FEATURES: tuple[str, ...] = ("peaks", "rms", "spectrogram", "mel", "chroma", "centroid")
FEATURES += ("onset", "pitch", "beat_rms")
PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "fine": {"window_size": 1024, "hop_size": 256},
    "coarse": {"window_size": 4096, "hop_size": 1024},
}
VARIANTS: tuple[dict[str, Any], ...] = ({}, {"channel_mode": "per_channel"})
LEFT_OUT = {("coarse", 1, f) for f in ("spectrogram", "mel", "chroma", "pitch")}
DESCRIPTORS = [
    (f, p, v)
    for p in PROFILES
    for v in range(len(VARIANTS))
    for f in FEATURES
    if (p, v, f) not in LEFT_OUT
]  # 50
EXTRANEOUS_PARAMS = {"n_mels": 64}  # a mel variant nobody requests
IMAGE_WIDTH = 4  # tiny stand-ins for bins (the diagnostics never read the arrays)
EDITED_SOURCE = 7  # the source whose audio is replaced


def owners(d: int) -> list[int]:
    """Which of a source's tracks request descriptor ``d``: 2 or 3 of the 5."""
    out = {d % 5, (d + 1) % 5}
    if d % 2 == 0:
        out.add((d + 3) % 5)
    return sorted(out)


def source_id(i: int) -> str:
    return f"s{i:04d}"


def audio_format(i: int) -> tuple[int, int]:
    rate = 48000 if i % 10 == 0 else 22050 if i % 10 == 5 else 44100
    return rate, 2 if i % 3 == 0 else 1


def write_audio(path: Path, i: int, variant: int = 0) -> None:
    rate, channels = audio_format(i)
    rng = np.random.default_rng(i * 1000 + variant)
    data = (0.1 * rng.standard_normal((round(SECONDS * rate), channels))).astype(np.float32)
    sf.write(path, data, rate, subtype="PCM_16")


# --- building the project --------------------------------------------------------------------


def project_json() -> dict[str, Any]:
    sources, tracks = [], []
    for i in range(N_SOURCES):
        sid = source_id(i)
        sources.append({"id": sid, "path": f"audio/{sid}.wav"})
        for k in range(TRACKS_PER_SOURCE):
            requests = []
            for d, (feature, profile, v) in enumerate(DESCRIPTORS):
                if k in owners(d):
                    req: dict[str, Any] = {"feature": feature}
                    if profile != "default":
                        req["profile"] = profile
                    if VARIANTS[v]:
                        req["params"] = VARIANTS[v]
                    requests.append(req)
            tracks.append(
                {"id": f"{sid}-t{k}", "name": f"{sid} {k}", "source": sid, "requests": requests}
            )
    return {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "diagnostics at scale",
        "tempo_map": [{"time": 0.0, "bpm": 120.0}],
        "profiles": {k: v for k, v in PROFILES.items() if v},
        "sources": sources,
        "tracks": tracks,
    }


def synthetic_meta(feature: str, calc: Any, params: Any, rate: int, channels: int) -> OutputMeta:
    per_channel = params["channel_mode"] == "per_channel"
    ch = channels if per_channel or feature == "peaks" else 1
    width = {"peaks": 2, "pitch": 2}.get(feature, 1)
    if feature in ("spectrogram", "mel", "chroma"):
        width = IMAGE_WIDTH
    hop = params["peaks_block"] if feature == "peaks" else params["hop_size"]
    return OutputMeta(
        feature=feature,
        channels=ch,
        width=width,
        frame_step=hop / rate,
        storage="u16db" if feature == "spectrogram" else "float32",
        value_range=(-80.0, 0.0) if feature == "spectrogram" else None,
    )


def entry_imports(
    registry: Registry, facts: dict[str, fpr.AudioFacts], tempo: TempoMap
) -> Iterator[EntryImport]:
    """What an analysis would have left, with a few percent stale/missing/extraneous."""
    rng = np.random.default_rng(42)
    params_of = {
        (p, v): resolve_params(PROFILES[p], VARIANTS[v])
        for p in PROFILES
        for v in range(len(VARIANTS))
    }
    for i in range(N_SOURCES):
        sid = source_id(i)
        af = facts[sid]
        wanted = list(DESCRIPTORS)
        for d, (feature, profile, v) in enumerate(wanted):
            r = rng.random()
            if r < 0.02:
                continue  # missing
            calc = registry.resolve(feature, None)
            params = params_of[(profile, v)]
            fp = fpr.build(calc, params, af, tempo)
            version = calc.version
            if r < 0.04:  # stale, for one of three reasons
                why = d % 3
                if why == 0:
                    fp[fpr.AUDIO_CONTENT] = "b2:" + "0" * 32
                elif why == 1 and f"{fpr.PROFILE_PREFIX}hop_size" in fp:
                    fp[f"{fpr.PROFILE_PREFIX}hop_size"] = 333
                else:
                    version = calc.version - 1
                    fp[fpr.CALC_VERSION] = version
            yield _entry(sid, calc, feature, profile, VARIANTS[v], params, fp, version, af)
        if i % 2 == 0:  # one extraneous entry
            calc = registry.resolve("mel", None)
            params = resolve_params({}, EXTRANEOUS_PARAMS)
            fp = fpr.build(calc, params, af, tempo)
            yield _entry(sid, calc, "mel", "default", EXTRANEOUS_PARAMS, params, fp, 1, af)


def _entry(
    sid: str,
    calc: Any,
    feature: str,
    profile: str,
    overrides: dict[str, Any],
    params: Any,
    fp: dict[str, Any],
    version: int,
    af: fpr.AudioFacts,
) -> EntryImport:
    meta = synthetic_meta(feature, calc, params, af.sample_rate, af.channels)
    hop = params["peaks_block"] if feature == "peaks" else params["hop_size"]
    n = 1 + int(SECONDS * af.sample_rate) // hop
    values = np.linspace(-60.0, -6.0, n * meta.channels * meta.width, dtype=np.float32)
    return EntryImport(
        key=EntryKey.of(sid, calc.id, profile, overrides),
        fingerprint=fp,
        version=version,
        metas={feature: meta},
        arrays={feature: values.reshape(n, meta.channels, meta.width)},
    )


def build(rebuild: bool) -> Path:
    marker = OUT / "build.json"
    project_path = OUT / "project.json"
    want = {"build": BUILD, "sources": N_SOURCES}
    if not rebuild and marker.exists() and json.loads(marker.read_text()) == want:
        return project_path
    print(f"building the synthetic project in {OUT} ...", flush=True)
    t0 = time.perf_counter()
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "audio").mkdir(parents=True)
    for i in range(N_SOURCES):
        write_audio(OUT / "audio" / f"{source_id(i)}.wav", i)
    project_path.write_text(json.dumps(project_json(), indent=1), encoding="utf-8")
    project = load_project(project_path)
    registry = Registry.builtin()
    t1 = time.perf_counter()
    with FeatureStore.open(project.cache_path()) as store:
        facts = {}
        for src in project.sources:
            path = project.audio_path(src)
            info = read_info(path)
            facts[src.id] = fpr.AudioFacts(
                content_digest(path, store), info.sample_rate, info.channels
            )
        t2 = time.perf_counter()
        imported = store.import_entries(entry_imports(registry, facts, project.tempo_map))
        t3 = time.perf_counter()
        # failed jobs for some missing rows: ``failed`` rows, as after a failed analysis
        failed = 0
        for i in range(0, N_SOURCES, 7):
            for feature, profile, v in DESCRIPTORS:
                calc = registry.resolve(feature, None)
                key = EntryKey.of(source_id(i), calc.id, profile, VARIANTS[v])
                if failed < 20 and store.get(key) is None:
                    job = JobRecord.new(
                        key.source_id,
                        [calc.id],
                        profile,
                        VARIANTS[v],
                        [feature],
                        state="failed",
                        label="failed",
                    )
                    store.add_job(job)
                    store.update_job(job.id, message="synthetic failure for the benchmark")
                    failed += 1
    print(
        f"  audio + project {t1 - t0:.1f} s, facts {t2 - t1:.1f} s, import of "
        f"{len(imported)} entries {t3 - t2:.1f} s (one transaction)",
        flush=True,
    )
    marker.write_text(json.dumps(want))
    return project_path
