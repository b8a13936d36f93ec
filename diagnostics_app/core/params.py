"""Analysis profile parameters: the one table of every parameter, its default and its checks.

A profile is a named set of parameter values; a request's ``params`` override its profile for
that request only. :func:`resolve_params` merges built-in defaults, the profile and the
overrides and validates the result, so that calculators only ever see checked values.

Which calculators read which parameter is declared by the calculators themselves
(``Calculator.params``); the README's parameter table is generated from both.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from diagnostics_app.core.errors import ParamError
from diagnostics_app.core.suggest import did_you_mean

ParamValue = int | float | str | bool | None

# Window names accepted by scipy.signal.get_window and librosa alike (a short, safe list).
WINDOWS = ("hann", "hamming", "blackman", "blackmanharris", "bartlett", "boxcar", "triang")
CHANNEL_MODES = ("mix", "per_channel")


@dataclass(frozen=True)
class ParamSpec:
    """One profile parameter: its type, default, allowed range and a one-line description."""

    name: str
    kind: type  # int, float, str or bool
    default: ParamValue
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    power_of_two: bool = False

    def check(self, value: object, where: str) -> ParamValue:
        """Return ``value`` converted to this parameter's type, or raise a one-line ParamError."""
        if value is None:
            if self.nullable:
                return None
            raise ParamError(f"{where}{self.name}: must not be null")
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ParamError(f"{where}{self.name}: expected true or false, got {value!r}")
            return value
        if self.kind is str:
            if not isinstance(value, str):
                raise ParamError(f"{where}{self.name}: expected a string, got {value!r}")
            if self.choices and value not in self.choices:
                raise ParamError(
                    f"{where}{self.name}: {value!r} is not one of {', '.join(self.choices)}"
                )
            return value
        # numbers: bools are ints in Python, but never a valid number here
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamError(f"{where}{self.name}: expected a number, got {value!r}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ParamError(f"{where}{self.name}: expected a whole number, got {value!r}")
            number: int | float = int(value)
        else:
            number = float(value)
            if not math.isfinite(number):
                raise ParamError(f"{where}{self.name}: must be finite, got {value!r}")
        if self.minimum is not None and number < self.minimum:
            raise ParamError(f"{where}{self.name}: {number} is below the minimum {self.minimum:g}")
        if self.maximum is not None and number > self.maximum:
            raise ParamError(f"{where}{self.name}: {number} is above the maximum {self.maximum:g}")
        if self.power_of_two and int(number) & (int(number) - 1):
            raise ParamError(f"{where}{self.name}: {number} is not a power of two")
        return number


PARAMS: dict[str, ParamSpec] = {
    spec.name: spec
    for spec in (
        ParamSpec(
            "window_size",
            int,
            2048,
            "analysis window (STFT win_length; RMS and YIN frame length), samples",
            16,
            65536,
        ),
        ParamSpec("hop_size", int, 512, "samples between frames", 1, 65536),
        ParamSpec(
            "fft_size",
            int,
            None,
            "FFT length (n_fft); null = window_size",
            16,
            65536,
            nullable=True,
        ),
        ParamSpec("window", str, "hann", "STFT window", choices=WINDOWS),
        ParamSpec(
            "channel_mode",
            str,
            "mix",
            "mix: mean of all channels; per_channel: one result per audio channel",
            choices=CHANNEL_MODES,
        ),
        ParamSpec("min_db", float, -80.0, "spectrogram floor, dB full scale", -300.0, 0.0),
        ParamSpec("max_db", float, 0.0, "spectrogram ceiling, dB full scale", -299.0, 100.0),
        ParamSpec("n_mels", int, 128, "mel bands", 1, 512),
        ParamSpec(
            "fmin",
            float,
            None,
            "lowest frequency, Hz; null = 0 for mel, 65.41 (C2) for pitch",
            0.0,
            200000.0,
            nullable=True,
        ),
        ParamSpec(
            "fmax",
            float,
            None,
            "highest frequency, Hz; null = sr/2 for mel, 2093 (C7) for pitch",
            1.0,
            200000.0,
            nullable=True,
        ),
        ParamSpec("n_chroma", int, 12, "chroma bins per octave", 1, 96),
        ParamSpec("trough_threshold", float, 0.1, "YIN absolute threshold", 0.0, 1.0),
        ParamSpec("beat_subdivision", int, 4, "beat_rms frames per beat", 1, 64),
        ParamSpec(
            "peaks_block", int, 64, "samples per min/max block of the waveform peaks", 1, 65536
        ),
    )
}

PITCH_FMIN_DEFAULT = 65.40639132514966  # librosa.note_to_hz("C2")
PITCH_FMAX_DEFAULT = 2093.004522404789  # librosa.note_to_hz("C7")


@dataclass(frozen=True)
class Params(Mapping[str, ParamValue]):
    """A complete, validated set of parameter values (every parameter of :data:`PARAMS`)."""

    mapping: Mapping[str, ParamValue] = field(default_factory=dict)

    def __getitem__(self, key: str) -> ParamValue:
        return self.mapping[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.mapping)

    def __len__(self) -> int:
        return len(self.mapping)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.mapping.items(), key=lambda kv: kv[0])))

    # Typed accessors: calculators read parameters through these.
    def get_int(self, key: str) -> int:
        value = self.mapping[key]
        assert isinstance(value, int)
        return value

    def get_float(self, key: str) -> float:
        value = self.mapping[key]
        assert isinstance(value, int | float)
        return float(value)

    def get_str(self, key: str) -> str:
        value = self.mapping[key]
        assert isinstance(value, str)
        return value

    def optional_float(self, key: str) -> float | None:
        value = self.mapping[key]
        if value is None:
            return None
        assert isinstance(value, int | float)
        return float(value)

    @property
    def n_fft(self) -> int:
        """The FFT length actually used: ``fft_size``, or ``window_size`` when unset."""
        fft = self.mapping.get("fft_size")
        return self.get_int("window_size") if fft is None else self.get_int("fft_size")


def check_overrides(overrides: Mapping[str, Any], where: str = "") -> dict[str, ParamValue]:
    """Validate a partial parameter mapping (a profile or a request's ``params``)."""
    checked: dict[str, ParamValue] = {}
    for key, value in overrides.items():
        spec = PARAMS.get(key)
        if spec is None:
            raise ParamError(f"{where}{key}: unknown parameter{did_you_mean(str(key), PARAMS)}")
        checked[key] = spec.check(value, where)
    return checked


def resolve_params(
    profile: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    where: str = "",
) -> Params:
    """Defaults, then the profile, then the request overrides; validated, with cross-checks."""
    values: dict[str, ParamValue] = {name: spec.default for name, spec in PARAMS.items()}
    values.update(check_overrides(profile or {}, where))
    values.update(check_overrides(overrides or {}, where))
    params = Params(values)
    _cross_check(params, where)
    return params


def _cross_check(p: Params, where: str) -> None:
    """Rules that involve two parameters (one place for each)."""
    if p.n_fft < p.get_int("window_size"):
        raise ParamError(
            f"{where}fft_size: {p.n_fft} is smaller than window_size {p.get_int('window_size')}"
        )
    if p.get_float("min_db") >= p.get_float("max_db"):
        raise ParamError(f"{where}min_db: {p['min_db']} must be below max_db {p['max_db']}")
    fmin, fmax = p.optional_float("fmin"), p.optional_float("fmax")
    if fmin is not None and fmax is not None and fmin >= fmax:
        raise ParamError(f"{where}fmin: {fmin:g} must be below fmax {fmax:g}")


def check_for_rate(p: Params, sample_rate: int, where: str = "") -> None:
    """Checks that need the audio's sample rate (frequency limits below Nyquist)."""
    nyquist = sample_rate / 2
    fmin = p.optional_float("fmin")
    if fmin is not None and fmin >= nyquist:
        # with fmax unset (= Nyquist for mel) the band would be empty or inverted
        raise ParamError(
            f"{where}fmin: {fmin:g} Hz is not below the Nyquist frequency {nyquist:g} Hz"
        )
    fmax = p.optional_float("fmax")
    if fmax is not None and fmax > nyquist:
        raise ParamError(f"{where}fmax: {fmax:g} Hz is above the Nyquist frequency {nyquist:g} Hz")


def param_table() -> Iterator[tuple[str, ParamValue, str]]:
    """(name, default, description) rows, for the README and ``--help``."""
    for spec in PARAMS.values():
        yield spec.name, spec.default, spec.doc
