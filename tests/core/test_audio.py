"""Audio input: every way a file can be bad gives one AudioError naming the file and the cause;
metadata comes from the header alone; decoding streams in blocks; content digests follow the
bytes, and the stat fast path skips re-reading unchanged files.

Every error test works on a real file on disk (written, cut, or crafted byte by byte).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from diagnostics_app.core import audio
from diagnostics_app.core.audio import (
    FileStamp,
    MemoryDigestCache,
    content_digest,
    hash_file,
    iter_blocks,
    read_all,
    read_info,
)
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import MemorySink, PassPlan, run_pass
from diagnostics_app.core.errors import AudioError, DiagnosticsError
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.tempo import TempoMap
from tests.core import audio_factory as af

SR = 8000


def decode_all(path: Path, block_frames: int = 1000) -> int:
    """Decode the whole file; the number of frames decoded."""
    return sum(block.shape[1] for block in iter_blocks(path, block_frames))


def analyse_through_engine(path: Path) -> MemorySink:
    sink = MemorySink()
    plan = PassPlan(str(path), resolve_params(), TempoMap(), tuple(Registry.builtin()))
    run_pass(plan, sink, block_frames=1000)
    return sink


def assert_audio_error(exc: pytest.ExceptionInfo[AudioError], path: Path, *causes: str) -> None:
    """One line, naming the file and (any of) the expected causes."""
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert exc.value.path == str(path)
    assert any(cause in exc.value.cause for cause in causes), message
    assert isinstance(exc.value, DiagnosticsError)


# --- errors found when opening (read_info, and so everything else) ---------------------------


def make_missing(d: Path) -> Path:
    return d / "missing.wav"


def make_empty(d: Path) -> Path:
    p = d / "empty.wav"
    p.write_bytes(b"")
    return p


def make_folder(d: Path) -> Path:
    p = d / "folder.wav"
    p.mkdir()
    return p


def make_under_a_file(d: Path) -> Path:
    parent = af.write(d / "file.wav", af.sine(440, 0.1, SR), SR)
    return parent / "x.wav"


def make_cut_wav(d: Path) -> Path:
    return af.truncate(af.write(d / "cut.wav", af.white_noise(1.0, SR), SR), 0.5)


def make_cut_aiff(d: Path) -> Path:
    return af.truncate(af.write(d / "cut.aiff", af.white_noise(1.0, SR), SR), 0.5)


def make_cut_ogg(d: Path) -> Path:
    return af.truncate(af.write(d / "cut.ogg", af.white_noise(2.0, SR), SR), 0.5)


def make_cut_ogg_late(d: Path) -> Path:
    return af.truncate(af.write(d / "cut_late.ogg", af.white_noise(2.0, SR), SR), 0.9)


def make_wav_cut_mid_header(d: Path) -> Path:
    return af.truncate(af.write(d / "header.wav", af.sine(440, 0.5, SR), SR), 30)


def make_wav_cut_in_fmt(d: Path) -> Path:
    return af.truncate(af.write(d / "fmt.wav", af.sine(440, 0.5, SR), SR), 20)


def make_random_bytes(d: Path) -> Path:
    p = d / "random.wav"
    p.write_bytes(np.random.default_rng(1).bytes(4096))
    return p


def make_text_as_mp3(d: Path) -> Path:
    p = d / "notes.mp3"
    p.write_text("this is a text file, not audio\n" * 40)
    return p


def make_text_as_flac(d: Path) -> Path:
    p = d / "notes.flac"
    p.write_text("this is a text file, not audio\n" * 40)
    return p


def make_zero_rate(d: Path) -> Path:
    return af.write_raw_wav(d / "rate0.wav", np.zeros(100), sample_rate=0, float_format=False)


def make_zero_channels(d: Path) -> Path:
    p = d / "channels0.wav"
    p.write_bytes(af.wav_header(sample_rate=SR, channels=0, data_bytes=200) + bytes(200))
    return p


def make_no_frames(d: Path) -> Path:
    return af.write_raw_wav(d / "noframes.wav", np.zeros(0), sample_rate=SR)


OPEN_ERRORS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "missing": (make_missing, ("file not found",)),
    "empty": (make_empty, ("empty file (0 bytes)",)),
    "folder": (make_folder, ("is a folder",)),
    "path_under_a_file": (make_under_a_file, ("Not a directory",)),
    "wav_cut_in_half": (make_cut_wav, ("truncated",)),
    "aiff_cut_in_half": (make_cut_aiff, ("truncated",)),
    "ogg_cut_in_half": (make_cut_ogg, ("truncated",)),
    "ogg_cut_at_90_percent": (make_cut_ogg_late, ("truncated",)),
    "wav_cut_mid_header": (make_wav_cut_mid_header, ("corrupt or truncated header",)),
    "wav_cut_in_fmt_chunk": (make_wav_cut_in_fmt, ("corrupt or truncated header",)),
    "random_bytes_wav": (make_random_bytes, ("unsupported or unrecognised audio format",)),
    "text_named_mp3": (make_text_as_mp3, ("unsupported or unrecognised audio format",)),
    "text_named_flac": (make_text_as_flac, ("unsupported or unrecognised audio format",)),
    "zero_sample_rate": (make_zero_rate, ("invalid sample rate 0",)),
    "zero_channels": (make_zero_channels, ("invalid channel count 0",)),
    "no_frames": (make_no_frames, ("no audio frames",)),
}


@pytest.mark.parametrize("kind", OPEN_ERRORS)
def test_read_info_refuses_bad_file(kind: str, tmp_path: Path) -> None:
    make, causes = OPEN_ERRORS[kind]
    path = make(tmp_path)
    with pytest.raises(AudioError) as exc:
        read_info(path)
    assert_audio_error(exc, path, *causes)


@pytest.mark.parametrize("kind", OPEN_ERRORS)
def test_decoding_refuses_bad_file(kind: str, tmp_path: Path) -> None:
    make, causes = OPEN_ERRORS[kind]
    path = make(tmp_path)
    with pytest.raises(AudioError) as exc:
        decode_all(path)
    assert_audio_error(exc, path, *causes)


@pytest.mark.parametrize("kind", OPEN_ERRORS)
def test_engine_reports_bad_file(kind: str, tmp_path: Path) -> None:
    make, causes = OPEN_ERRORS[kind]
    path = make(tmp_path)
    with pytest.raises(AudioError) as exc:
        analyse_through_engine(path)
    assert_audio_error(exc, path, *causes)


# --- errors found only while decoding --------------------------------------------------------


def make_cut_flac(d: Path) -> Path:
    return af.truncate(af.write(d / "cut.flac", af.white_noise(2.0, SR), SR), 0.5)


def make_cut_flac_late(d: Path) -> Path:
    return af.truncate(af.write(d / "cut_late.flac", af.white_noise(2.0, SR), SR), 0.9)


def make_cut_mp3(d: Path) -> Path:
    return af.truncate(af.write(d / "cut.mp3", af.white_noise(2.0, SR), SR), 0.5)


def make_nan(d: Path) -> Path:
    x = np.zeros(2000, np.float32)
    x[800] = np.nan
    return af.write_raw_wav(d / "nan.wav", x, sample_rate=SR)


def make_inf(d: Path) -> Path:
    x = np.zeros(2000, np.float32)
    x[800] = -np.inf
    return af.write_raw_wav(d / "inf.wav", x, sample_rate=SR)


def make_nan_in_a_later_block(d: Path) -> Path:
    x = np.full(20000, 0.25, np.float32)
    x[12345] = np.nan  # 1.543 s at 8 kHz, in the 13th block of 1000 frames
    return af.write_raw_wav(d / "nan_late.wav", x, sample_rate=SR)


DECODE_ERRORS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "flac_cut_in_half": (make_cut_flac, ("truncated",)),
    "flac_cut_at_90_percent": (make_cut_flac_late, ("truncated",)),
    "mp3_cut_in_half": (make_cut_mp3, ("truncated",)),
    "nan_sample": (make_nan, ("non-finite sample (NaN or Inf) at 0.100 s",)),
    "inf_sample": (make_inf, ("non-finite sample (NaN or Inf) at 0.100 s",)),
    "nan_in_a_later_block": (make_nan_in_a_later_block, ("non-finite sample (NaN or Inf) at 1.543 s",)),
}  # fmt: skip


@pytest.mark.parametrize("kind", DECODE_ERRORS)
def test_decoding_detects_bad_data(kind: str, tmp_path: Path) -> None:
    make, causes = DECODE_ERRORS[kind]
    path = make(tmp_path)
    read_info(path)  # the header is fine...
    with pytest.raises(AudioError) as exc:
        decode_all(path)  # ... the data is not
    assert_audio_error(exc, path, *causes)


@pytest.mark.parametrize("kind", DECODE_ERRORS)
def test_engine_reports_bad_data_and_aborts(kind: str, tmp_path: Path) -> None:
    make, causes = DECODE_ERRORS[kind]
    path = make(tmp_path)
    with pytest.raises(AudioError) as exc:
        analyse_through_engine(path)
    assert_audio_error(exc, path, *causes)


def test_engine_aborts_sink_on_decoding_error(tmp_path: Path) -> None:
    path = make_cut_flac(tmp_path)
    sink = MemorySink()
    plan = PassPlan(str(path), resolve_params(), TempoMap(), tuple(Registry.builtin()))
    with pytest.raises(AudioError):
        run_pass(plan, sink, block_frames=1000)
    assert sink.aborted
    assert sink.results == {}


def test_cut_is_detected_wherever_the_file_is_cut(tmp_path: Path) -> None:
    """Cuts at many points of WAV, AIFF, FLAC and OGG files: none decodes as if whole."""
    for ext in ("wav", "aiff", "flac", "ogg"):
        whole = af.write(tmp_path / f"whole.{ext}", af.white_noise(1.0, SR, seed=5), SR)
        raw = whole.read_bytes()
        assert decode_all(whole) == SR
        cut = tmp_path / f"cut.{ext}"
        for size in np.linspace(60, len(raw) - 1, 12).astype(int):
            cut.write_bytes(raw[:size])
            with pytest.raises(AudioError) as exc:
                decode_all(cut)
            assert str(cut) in str(exc.value)


# --- metadata from the header alone ----------------------------------------------------------

MP3_RATES = (8000, 22050, 44100, 48000)


def metadata_cases() -> list[Any]:
    cases = []
    for ext in ("wav", "flac", "ogg", "mp3", "aiff"):
        for channels in (1, 2, 6):
            for rate in (8000, 22050, 44100, 48000, 96000):
                if ext == "mp3" and (channels > 2 or rate not in MP3_RATES):
                    continue  # MPEG audio has at most 2 channels and no 96 kHz
                cases.append(pytest.param(ext, channels, rate, id=f"{ext}-{channels}ch-{rate}"))
    return cases


FORMAT_NAMES = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3", "aiff": "AIFF"}


@pytest.mark.parametrize(("ext", "channels", "rate"), metadata_cases())
def test_metadata_without_decoding(
    ext: str, channels: int, rate: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = rate // 5 + 17
    path = af.write(tmp_path / f"a.{ext}", af.multichannel(channels, frames / rate, rate), rate)

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("read_info decoded audio")

    for method in ("read", "buffer_read", "buffer_read_into", "blocks", "seek"):
        monkeypatch.setattr(sf.SoundFile, method, no_decoding)
    info = read_info(path)
    assert info.path == str(path)
    assert (info.sample_rate, info.channels, info.frames) == (rate, channels, frames)
    assert info.format == FORMAT_NAMES[ext]
    assert info.subtype == af.FORMATS[ext][1]
    assert info.duration == pytest.approx(frames / rate)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_subtypes_decode_to_float32(subtype: str, tmp_path: Path) -> None:
    data = af.stereo(0.3, SR)
    path = af.write(tmp_path / "s.wav", data, SR, "WAV", subtype)
    info = read_info(path)
    assert info.subtype == subtype
    samples, rate = read_all(path)
    assert rate == SR
    assert samples.dtype == np.float32
    assert samples.shape == (2, len(data))
    np.testing.assert_allclose(samples.T, data, atol=1 / 64)  # 8-bit is the coarsest


# --- streaming decode ------------------------------------------------------------------------


@pytest.mark.parametrize("block_frames", [1, 999, 1000, 4096, 1 << 17])
def test_blocks_cover_the_file_in_order(block_frames: int, tmp_path: Path) -> None:
    data = af.multichannel(3, 0.5, SR)
    path = af.write_float_wav(tmp_path / "m.wav", data, SR)
    blocks = list(iter_blocks(path, block_frames))
    assert all(b.dtype == np.float32 and b.shape[0] == 3 for b in blocks)
    assert all(b.shape[1] == block_frames for b in blocks[:-1])
    assert 0 < blocks[-1].shape[1] <= block_frames
    assert all(b.flags.c_contiguous for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), data.T.astype(np.float32))


@pytest.mark.parametrize("ext", ["flac", "ogg", "mp3", "aiff"])
def test_compressed_and_other_formats_decode_completely(ext: str, tmp_path: Path) -> None:
    data = af.sine(440.0, 1.0, 22050)
    path = af.write(tmp_path / f"s.{ext}", data, 22050)
    assert decode_all(path, 3000) == read_info(path).frames == len(data)


# --- content digests -------------------------------------------------------------------------


class SpyCache(MemoryDigestCache):
    """A DigestCache that records every call."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[tuple[str, FileStamp]] = []
        self.puts: list[tuple[str, FileStamp, str]] = []

    def get_digest(self, path: str, stamp: FileStamp) -> str | None:
        self.gets.append((path, stamp))
        return super().get_digest(path, stamp)

    def put_digest(self, path: str, stamp: FileStamp, digest: str) -> None:
        self.puts.append((path, stamp, digest))
        super().put_digest(path, stamp, digest)


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every time content_digest really reads a file's bytes."""
    calls: list[str] = []
    real = audio.hash_file

    def spy(path: str | os.PathLike[str]) -> str:
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(audio, "hash_file", spy)
    return calls


def test_digest_is_blake2b_of_the_bytes(tmp_path: Path) -> None:
    a = af.write(tmp_path / "a.wav", af.sine(440, 0.2, SR), SR)
    b = tmp_path / "b.wav"
    b.write_bytes(a.read_bytes())
    digest = content_digest(a)
    assert digest.startswith("b2:")
    assert len(digest) == 3 + 32
    assert int(digest[3:], 16) >= 0
    assert content_digest(b) == digest == hash_file(a)  # the bytes, not the name


def test_stat_fast_path_does_not_reread_unchanged_file(
    tmp_path: Path, hash_calls: list[str]
) -> None:
    path = af.write(tmp_path / "a.wav", af.sine(440, 0.2, SR), SR)
    cache = SpyCache()
    first = content_digest(path, cache)
    assert len(hash_calls) == 1
    assert len(cache.puts) == 1
    key, stamp, stored = cache.puts[0]
    assert key == str(path.resolve())
    assert stamp == FileStamp.of(path)
    assert stored == first
    for _ in range(3):
        assert content_digest(path, cache) == first
    assert len(hash_calls) == 1  # never read again
    assert len(cache.puts) == 1
    assert len(cache.gets) == 4
    assert all(get == (key, stamp) for get in cache.gets)


def test_fast_path_trusts_the_cache_for_an_unchanged_stamp(
    tmp_path: Path, hash_calls: list[str]
) -> None:
    """The cached digest is returned as is for an unchanged stamp: the bytes are not read."""
    path = af.write(tmp_path / "a.wav", af.sine(440, 0.2, SR), SR)
    cache = SpyCache()
    cache.put_digest(str(path.resolve()), FileStamp.of(path), "b2:remembered")
    assert content_digest(path, cache) == "b2:remembered"
    assert hash_calls == []


def test_digest_changes_exactly_when_bytes_change(tmp_path: Path, hash_calls: list[str]) -> None:
    path = af.write(tmp_path / "a.wav", af.sine(440, 0.2, SR), SR)
    cache = SpyCache()
    original = content_digest(path, cache)
    raw = path.read_bytes()

    # same bytes written again: the stamp changes, the file is re-read, the digest is the same
    path.write_bytes(raw)
    assert content_digest(path, cache) == original
    assert len(hash_calls) == 2

    # a touch alone: re-read, same digest
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert content_digest(path, cache) == original
    assert len(hash_calls) == 3

    # one byte changed in place, same size, modification time put back: still noticed
    # (ctime moves). The pause outlasts a coarse kernel clock tick, so ctime really moves.
    time.sleep(0.02)
    st = path.stat()
    with path.open("r+b") as f:
        f.seek(len(raw) - 1)
        f.write(bytes([raw[-1] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = content_digest(path, cache)
    assert changed != original
    assert len(hash_calls) == 4

    # replaced by another file of the same size and modification time (a new inode)
    other = tmp_path / "other.wav"
    other.write_bytes(raw)
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    assert content_digest(path, cache) == original
    assert len(hash_calls) == 5

    # and back from the cache, unchanged, without reading
    assert content_digest(path, cache) == original
    assert len(hash_calls) == 5


def test_digest_of_a_missing_file_is_an_audio_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.wav"
    with pytest.raises(AudioError) as exc:
        content_digest(path, SpyCache())
    assert_audio_error(exc, path, "file not found")


# --- windows of the decode (start/stop) ------------------------------------------------------


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
@pytest.mark.parametrize(
    ("start", "stop"), [(0, 2500), (1, 2), (999, 4001), (2500, None), (3999, None)]
)
def test_a_window_is_the_whole_decode_s_slice_on_its_block_grid(
    ext: str, start: int, stop: int | None, tmp_path: Path
) -> None:
    path = af.write(tmp_path / f"w.{ext}", af.white_noise(0.5, SR, seed=4), SR)
    whole = np.concatenate(list(iter_blocks(path, 1000)), axis=1)
    blocks = list(iter_blocks(path, 1000, start=start, stop=stop))
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), whole[:, start:stop])
    # every block ends where a whole decode's block ends (or at stop / the file's end)
    ends = np.cumsum([b.shape[1] for b in blocks]) + start
    assert all(e % 1000 == 0 for e in ends[:-1])


def test_a_window_past_the_end_or_backwards_is_refused(tmp_path: Path) -> None:
    path = af.write(tmp_path / "w.wav", af.white_noise(0.5, SR), SR)
    with pytest.raises(AudioError, match="cannot seek to frame 4001: the file has 4000"):
        list(iter_blocks(path, start=4001))
    with pytest.raises(ValueError, match=r"frames \[10, 5\)"):
        list(iter_blocks(path, start=10, stop=5))
    assert list(iter_blocks(path, start=10, stop=10)) == []


def test_a_window_keeps_the_short_read_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that decodes fewer frames than its header says: a window to the end, or one
    whose stop lies past what decodes, fails as the whole decode does; a window before the
    shortfall reads fine. An Ogg window that stops early is not checked (its header length is
    an estimate)."""
    path = af.write(tmp_path / "w.wav", af.white_noise(0.5, SR), SR)
    real = audio.read_info

    def longer(p: Any) -> audio.AudioInfo:
        info = real(p)
        return audio.AudioInfo(
            info.path, info.sample_rate, info.channels, 4100, info.format, info.subtype
        )

    monkeypatch.setattr(audio, "read_info", longer)
    for start, stop in ((0, None), (3000, None), (3000, 4050)):
        with pytest.raises(
            AudioError, match="truncated: header says 4100 frames, only 4000 decoded"
        ):
            list(iter_blocks(path, 1000, start=start, stop=stop))
    assert sum(b.shape[1] for b in iter_blocks(path, 1000, start=3000, stop=3990)) == 990
