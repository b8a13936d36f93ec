"""What a calculator is: its declarations (the inputs of its cache fingerprint) and how it runs.

A calculator declares an ``id``, a ``version``, the ``features`` it produces, the profile
``params`` it reads and whether it ``uses_tempo``. Those declarations are exact: the fingerprint
of a cache entry is built from them, so a parameter a calculator reads but does not declare
would be a parameter whose change goes unnoticed (a test checks every built-in).

Calculators stream: the engine decodes a source once and hands each calculator
:class:`Block` after :class:`Block`; a calculator's run returns, per block, the frames it could
finish, as arrays of shape ``(frames, channels, width)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from diagnostics_app.core.axes import channel_names
from diagnostics_app.core.params import Params
from diagnostics_app.core.ranges import Reach as Reach  # re-exported: plugins declare reach
from diagnostics_app.core.tempo import TempoMap

FeatureKind = Literal["line", "image", "peaks"]
Storage = Literal["float32", "u16db"]


@dataclass(frozen=True)
class FeatureSpec:
    """A feature a calculator produces, and how to show and store it."""

    name: str
    kind: FeatureKind = "line"
    unit: str = ""  # unit of the values ("dBFS", "Hz", ...)
    bin_unit: str = ""  # for image features: what the bins are ("Hz", "mel band", "pitch class")
    storage: Storage = "float32"  # u16db: dB quantised to uint16 between min_db and max_db
    description: str = ""
    # What a NaN or an infinity in this feature's output means, when it means something
    # (e.g. "NaN: no estimate for the frame"). Empty: non-finite values are an error, and the
    # pass fails naming the frames (a cache must never keep NaN under an ``ok`` row).
    nonfinite: str = ""


@dataclass(frozen=True)
class OutputMeta:
    """How to read one produced feature: layout, time axis and bin axis."""

    feature: str
    channels: int
    width: int
    frame_start: float = 0.0  # seconds of frame 0 (uniform time axis)
    frame_step: float | None = None  # seconds between frames; None: explicit times
    bins: tuple[float, ...] = ()  # bin centres for image features
    bin_unit: str = ""
    unit: str = ""
    channel_names: tuple[str, ...] = ()
    width_names: tuple[str, ...] = ()  # e.g. ("min", "max") or ("f0", "confidence")
    storage: Storage = "float32"
    value_range: tuple[float, float] | None = None  # u16db: the quantisation range


@dataclass(frozen=True)
class AnalysisContext:
    """What a calculator knows before the first block arrives."""

    sample_rate: int
    audio_channels: int  # channels in the file
    signal_channels: int  # channels the calculators see: 1 for "mix", else audio_channels
    n_samples: int  # as the header says (compressed formats: an estimate)
    params: Params
    tempo: TempoMap

    @property
    def hop(self) -> int:
        return self.params.get_int("hop_size")

    @property
    def n_frames(self) -> int:
        """Frames of a centred analysis (librosa, ``center=True``): ``1 + n_samples // hop``."""
        return 1 + self.n_samples // self.hop

    @property
    def channel_names(self) -> tuple[str, ...]:
        """The names of the signal's channels (what the calculators see)."""
        mixed = self.signal_channels == 1 and self.params["channel_mode"] == "mix"
        return channel_names(self.signal_channels, mixed)


@dataclass
class Block:
    """One step of the analysis: new samples, and the frames that became complete.

    ``frames()`` and ``spectrum`` are computed on demand and cached, so every calculator that
    needs the STFT of this block shares one computation.
    """

    samples: np.ndarray  # (audio_channels, n) newly decoded samples
    signal: np.ndarray  # (signal_channels, n) the same samples as the calculators see them
    sample_start: int  # index of samples[:, 0] in the file
    frame_start: int  # index of the first complete frame in this block
    frame_count: int  # complete frames in this block (may be 0)
    final: bool  # True for the last block (no more samples will come)
    # (length, offset) -> frames (signal_channels, frame_count, length); set by the engine
    frame_source: Callable[[int, int], np.ndarray]
    spectrum_source: Callable[[], np.ndarray]
    _cache: dict[object, np.ndarray] = field(default_factory=dict)

    def frames(self, length: int, offset: int) -> np.ndarray:
        """Frames of ``length`` samples; frame ``t`` starts at sample ``t * hop + offset``
        (negative and past-the-end samples are zeros, as librosa's ``pad_mode="constant"``)."""
        return self.frame_source(length, offset)

    @property
    def magnitude(self) -> np.ndarray:
        """|STFT| of this block's frames, float32, (signal_channels, frames, n_fft // 2 + 1)."""
        if "mag" not in self._cache:
            self._cache["mag"] = self.spectrum_source()
        return self._cache["mag"]

    @property
    def power(self) -> np.ndarray:
        if "power" not in self._cache:
            mag = self.magnitude
            self._cache["power"] = mag * mag
        return self._cache["power"]

    def shared(self, key: object, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """A per-block result shared between calculators (e.g. a mel power spectrum)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


Outputs = Mapping[str, np.ndarray]


class CalculatorRun(ABC):
    """One streaming run of a calculator over one source."""

    # True if each frame's output depends only on that frame (no state carried between
    # frames): the engine may then split a block's frames across workers (YIN does).
    frames_independent: ClassVar[bool] = False

    @abstractmethod
    def process(self, block: Block) -> Outputs:
        """Frames finished by this block, per feature: arrays (frames, channels, width)."""

    def finish(self) -> Iterable[Outputs]:
        """Frames that could only be finished at the end (default: none)."""
        return ()

    @abstractmethod
    def outputs(self) -> Mapping[str, OutputMeta]:
        """Layout of each produced feature; may be called after ``finish``."""

    def times(self, feature: str) -> np.ndarray | None:
        """Explicit frame times (s) for features without a uniform time axis."""
        return None


class Calculator(ABC):
    """A versioned producer of features. Subclass, set the class attributes, implement
    :meth:`start`. ``uses_spectrum`` tells the engine to schedule it with the STFT group."""

    id: ClassVar[str]
    version: ClassVar[int]
    features: ClassVar[tuple[FeatureSpec, ...]]
    params: ClassVar[tuple[str, ...]] = ()
    uses_tempo: ClassVar[bool] = False
    uses_spectrum: ClassVar[bool] = False
    description: ClassVar[str] = ""

    @classmethod
    def feature_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in cls.features)

    @classmethod
    def feature_spec(cls, name: str) -> FeatureSpec:
        for spec in cls.features:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        """Which samples each output frame reads (:class:`~core.ranges.Reach`): frame ``t``
        reads ``[t * step - before, t * step + after)``, so an edit elsewhere leaves it
        bit-identical. ``None`` (the default): the reach is unbounded, a change anywhere may
        change any frame, and the calculator's data is recomputed whole. Declare it only when
        it is exact: ``tests/core/test_ranges_reach.py`` checks every built-in against real
        recomputations."""
        return None

    def check(self, params: Params, sample_rate: int) -> None:  # noqa: B027 (optional hook)
        """Raise ParamError if ``params`` cannot be served at this sample rate."""

    @abstractmethod
    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        """Begin a run over one source."""


def uniform_meta(
    ctx: AnalysisContext,
    spec: FeatureSpec,
    width: int,
    *,
    bins: Iterable[float] = (),
    width_names: tuple[str, ...] = (),
    value_range: tuple[float, float] | None = None,
) -> OutputMeta:
    """Meta for a feature with one frame every ``hop`` samples, frame t centred on t * hop."""
    return OutputMeta(
        feature=spec.name,
        channels=ctx.signal_channels,
        width=width,
        frame_start=0.0,
        frame_step=ctx.hop / ctx.sample_rate,
        bins=tuple(float(b) for b in bins),
        bin_unit=spec.bin_unit,
        unit=spec.unit,
        channel_names=ctx.channel_names,
        width_names=width_names,
        storage=spec.storage,
        value_range=value_range,
    )


def declared_reach(calc: Calculator, params: Params, sample_rate: int) -> Reach | None:
    """``calc.reach(...)``, read defensively: a plugin whose declaration raises or returns
    something else is taken as unbounded (its data is then recomputed whole, never too little;
    a diagnosis must not fail over a plugin's optional declaration)."""
    try:
        reach = calc.reach(params, sample_rate)
    except Exception:  # any fault of a plugin's declaration: unbounded
        return None
    return reach if isinstance(reach, Reach) else None


def frame_reach(length: int, offset: int, hop: int) -> Reach:
    """The reach of a calculator whose frame ``t`` is ``Block.frames(length, offset)``:
    samples ``[t * hop + offset, t * hop + offset + length)``."""
    return Reach(before=-offset, after=offset + length, step=hop)


def as_frames(values: np.ndarray) -> np.ndarray:
    """(channels, frames, width) or (channels, frames) → (frames, channels, width) float32."""
    if values.ndim == 2:
        values = values[:, :, None]
    return np.ascontiguousarray(values.transpose(1, 0, 2), dtype=np.float32)
