"""The report's pictures: the PNG encoder and the numpy-drawn lanes, asserted on pixel regions."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from diagnostics_app.core import thumbnails as th
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.png import decode_png, encode_png
from diagnostics_app.core.report_pictures import comparison_pictures, current_picture, lane_kind
from diagnostics_app.core.store import LoadedFeature

# --- png ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_png_round_trips_and_its_chunks_are_valid(channels: int | None) -> None:
    rng = np.random.default_rng(1)
    shape = (7, 11) if channels is None else (7, 11, channels)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(pixels)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (11, 7)
    back = decode_png(data)
    assert np.array_equal(back.reshape(shape), pixels)
    # a flipped bit is caught by the chunk CRC, as any viewer would
    broken = bytearray(data)
    broken[40] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        decode_png(bytes(broken))


def test_png_idat_is_a_zlib_stream_of_filtered_scanlines() -> None:
    pixels = np.full((2, 3, 3), 200, np.uint8)
    data = encode_png(pixels)
    start = data.index(b"IDAT") + 4
    (length,) = struct.unpack(">I", data[start - 8 : start - 4])
    raw = zlib.decompress(data[start : start + length])
    assert raw == (b"\x00" + bytes([200] * 9)) * 2


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((2, 2), np.float32), np.zeros((2, 2, 2), np.uint8), np.zeros((0, 4), np.uint8)],
)
def test_png_refuses_what_it_cannot_encode(pixels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="PNG"):
        encode_png(pixels)


# --- thumbnails --------------------------------------------------------------------------------


def painted(pixels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(pixels == np.array(colour, np.uint8), axis=-1)


def test_a_rising_line_goes_from_bottom_left_to_top_right_without_gaps() -> None:
    pixels = th.canvas(50, 100)
    times = np.arange(30) * 0.1
    th.draw_line(pixels, np.arange(30.0), times, 3.0, (0.0, 29.0), th.NEW_COLOUR)
    mask = painted(pixels, th.NEW_COLOUR)
    columns = np.flatnonzero(mask.any(axis=0))
    assert columns.size > 90  # continuous over the data's span
    assert np.all(np.diff(columns) == 1)
    rows_left, rows_right = (
        np.flatnonzero(mask[:, columns[0]]),
        np.flatnonzero(mask[:, columns[-1]]),
    )
    assert rows_left.max() >= 45 and rows_right.min() <= 5


def test_many_frames_are_drawn_as_their_per_column_range() -> None:
    pixels = th.canvas(40, 50)
    n = 50_000
    values = np.where(np.arange(n) % 2 == 0, -1.0, 1.0)  # alternating: a full-height band
    th.draw_line(pixels, values, np.arange(n) / n, 1.0, (-1.0, 1.0), th.NEW_COLOUR)
    mask = painted(pixels, th.NEW_COLOUR)
    assert mask[:, 5:45].all()


def test_a_nan_gap_leaves_its_columns_blank() -> None:
    pixels = th.canvas(30, 100)
    values = np.ones(100)
    values[40:60] = np.nan  # e.g. unvoiced frames of a pitch track
    th.draw_line(pixels, values, np.arange(100) / 100, 1.0, (0.0, 2.0), th.NEW_COLOUR)
    mask = painted(pixels, th.NEW_COLOUR)
    assert not mask[:, 45:55].any()
    assert mask[:, 10:30].any(axis=0).all() and mask[:, 70:90].any(axis=0).all()


def test_an_image_puts_low_bins_at_the_bottom_and_leaves_uncovered_time_blank() -> None:
    frames, bins = 20, 8
    values = np.tile(np.arange(bins, dtype=np.float64), (frames, 1))  # bin k has value k
    times = np.arange(frames) * 0.1  # covers 0..2 s of a 4 s axis
    pixels = th.draw_image(values, times, 4.0, (0.0, bins - 1.0), height=16, width=40)
    lowest, highest = th.colour_map(np.array([0.0, 1.0]))
    assert np.array_equal(pixels[-1, 2], lowest) and np.array_equal(pixels[0, 2], highest)
    assert painted(pixels[:, 30:], th.BACKGROUND).all()


def test_marks_are_a_red_strip_under_the_ranges_only() -> None:
    pixels = th.canvas(20, 100)
    th.mark_ranges(pixels, [(1.0, 2.0)], 4.0)
    red = painted(pixels, th.MARK_COLOUR)
    assert red[-1, 25:50].all() and not red[-1, :24].any() and not red[-1, 51:].any()
    assert not red[:10].any()


# --- lanes -------------------------------------------------------------------------------------


def feature(meta: OutputMeta, data: np.ndarray) -> LoadedFeature:
    step = meta.frame_step or 0.01
    return LoadedFeature(meta, data.astype(np.float32), np.arange(len(data)) * step)


LINE = OutputMeta("rms", channels=1, width=1, frame_step=0.01)
BAND = OutputMeta("peaks", channels=1, width=2, frame_step=0.01, width_names=("min", "max"))
IMAGE = OutputMeta(
    "spectrogram",
    channels=1,
    width=16,
    frame_step=0.01,
    bins=tuple(float(b) for b in range(16)),
    value_range=(-80.0, 0.0),
)


def test_lane_kinds_follow_the_output_meta() -> None:
    assert (lane_kind(LINE), lane_kind(BAND), lane_kind(IMAGE)) == ("line", "band", "image")


def test_previous_against_current_of_a_line_is_one_overlay_with_its_marks() -> None:
    old = np.sin(np.linspace(0, 6, 300))[:, None, None]
    new = old.copy()
    new[100:150] += 0.5
    pictures = comparison_pictures(feature(LINE, old), feature(LINE, new), [(1.0, 1.5)], "s / rms")
    assert len(pictures) == 1
    pixels = decode_png(pictures[0].png)
    assert painted(pixels, th.OLD_COLOUR).any() and painted(pixels, th.NEW_COLOUR).any()
    red_columns = np.flatnonzero(painted(pixels[-1:], th.MARK_COLOUR)[0])
    assert red_columns.min() >= 155 and red_columns.max() <= 245  # 1.0-1.5 s of 3.0 s, 480 px


def test_previous_against_current_of_an_image_is_old_new_and_their_difference() -> None:
    old = np.full((100, 1, 16), -60.0)
    new = old.copy()
    new[50:] = -20.0
    pictures = comparison_pictures(feature(IMAGE, old), feature(IMAGE, new), [], "s / spec")
    assert [p.alt.split(": ")[1].split(" ")[0] for p in pictures] == [
        "previous",
        "current",
        "current",  # current − previous
    ]
    diff = decode_png(pictures[2].png)
    white = np.array([247, 247, 247])
    assert np.abs(diff[:, 50].astype(int) - white).max() <= 2  # unchanged: the centre colour
    assert diff[:, 400, 0].mean() > 150 and diff[:, 400, 2].mean() < 80  # louder: red
    assert current_picture(feature(BAND, np.zeros((10, 1, 2))), "x").height == th.LINE_HEIGHT


def test_frequency_bins_are_drawn_on_log_rows_and_colours_ignore_outliers() -> None:
    centres = np.arange(1025) * 22050 / 2048  # a linear STFT's bin centres
    rows = th.log_rows(centres, 100)
    assert rows is not None
    assert rows[0] == 1024 and centres[rows[-1]] == pytest.approx(30.0, abs=11)
    assert np.all(np.diff(rows) <= 0)  # top row highest
    # an octave takes as many rows low as high: 100-200 Hz and 5-10 kHz
    assert np.count_nonzero((centres[rows] >= 100) & (centres[rows] < 200)) == pytest.approx(
        np.count_nonzero((centres[rows] >= 5000) & (centres[rows] < 10000)), abs=2
    )
    assert th.log_rows(np.arange(12.0), 100) is None  # pitch classes: not frequencies
    values = np.linspace(-60.0, -20.0, 1000)
    values[:3] = -120.0  # the floor of a few silent frames
    lo, hi = th.robust_limits(values)
    assert -61.0 < lo < -55.0 and hi > -21.0
