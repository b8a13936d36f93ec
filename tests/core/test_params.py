"""Profile parameters: defaults, precedence, validation (every bad value is a one-line
ParamError naming the parameter), cross-checks and checks against the sample rate."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagnostics_app.core.errors import DiagnosticsError, ParamError
from diagnostics_app.core.params import (
    PARAMS,
    WINDOWS,
    Params,
    check_for_rate,
    check_overrides,
    param_table,
    resolve_params,
)


def test_defaults() -> None:
    p = resolve_params()
    assert dict(p) == {name: spec.default for name, spec in PARAMS.items()}
    assert p["window_size"] == 2048
    assert p["hop_size"] == 512
    assert p["fft_size"] is None
    assert p.n_fft == 2048
    assert p["window"] == "hann"
    assert p["channel_mode"] == "mix"


def test_profile_then_overrides() -> None:
    p = resolve_params({"window_size": 1024, "hop_size": 256}, {"hop_size": 128})
    assert p.get_int("window_size") == 1024
    assert p.get_int("hop_size") == 128
    assert p.n_fft == 1024  # fft_size unset follows the window
    assert resolve_params({"window_size": 1024, "fft_size": 4096}).n_fft == 4096


def test_values_are_converted_to_the_parameter_type() -> None:
    p = resolve_params({"window_size": 1024.0, "min_db": -60, "fmin": 50})
    assert p["window_size"] == 1024
    assert type(p["window_size"]) is int
    assert p["min_db"] == -60.0
    assert type(p["min_db"]) is float
    assert type(p["fmin"]) is float


def test_nullable_parameters_accept_null() -> None:
    p = resolve_params({"fft_size": 4096, "fmin": 10.0}, {"fft_size": None, "fmin": None})
    assert p["fft_size"] is None
    assert p["fmin"] is None


def test_params_are_a_hashable_mapping() -> None:
    a = resolve_params({"hop_size": 256})
    b = resolve_params(None, {"hop_size": 256})
    assert a == b
    assert hash(a) == hash(b)
    assert a != resolve_params()
    assert len({a, b, resolve_params()}) == 2
    assert isinstance(a, Params)
    assert set(a) == set(PARAMS)
    assert a.get_float("min_db") == -80.0
    assert a.get_str("window") == "hann"
    assert a.optional_float("fmax") is None


def test_param_table_lists_every_parameter() -> None:
    rows = list(param_table())
    assert [name for name, _, _ in rows] == list(PARAMS)
    assert all(doc for _, _, doc in rows)


# --- bad values ------------------------------------------------------------------------------

BAD: list[tuple[str, Any, str]] = [
    # (parameter, value, what the message says after "<parameter>: ")
    ("window_size", None, "must not be null"),
    ("window_size", "2048", "expected a number, got '2048'"),
    ("window_size", True, "expected a number, got True"),
    ("window_size", [2048], "expected a number"),
    ("window_size", {"v": 1}, "expected a number"),
    ("window_size", 1024.5, "expected a whole number, got 1024.5"),
    ("window_size", math.nan, "expected a whole number"),
    ("window_size", math.inf, "expected a whole number"),
    ("window_size", 8, "8 is below the minimum 16"),
    ("window_size", 65537, "65537 is above the maximum 65536"),
    ("hop_size", 0, "0 is below the minimum 1"),
    ("hop_size", -512, "is below the minimum 1"),
    ("hop_size", 100000, "is above the maximum 65536"),
    ("fft_size", 8, "is below the minimum 16"),
    ("fft_size", "big", "expected a number"),
    ("window", 5, "expected a string, got 5"),
    ("window", None, "must not be null"),
    ("window", "kaiser", "'kaiser' is not one of hann, hamming"),
    ("window", "Hann", "is not one of"),
    ("channel_mode", "stereo", "'stereo' is not one of mix, per_channel"),
    ("channel_mode", False, "expected a string"),
    ("min_db", math.nan, "must be finite"),
    ("min_db", -math.inf, "must be finite"),
    ("min_db", -400.0, "is below the minimum -300"),
    ("min_db", 1.0, "is above the maximum 0"),
    ("min_db", "loud", "expected a number"),
    ("max_db", math.inf, "must be finite"),
    ("max_db", 200.0, "is above the maximum 100"),
    ("n_mels", 0, "is below the minimum 1"),
    ("n_mels", 1000, "is above the maximum 512"),
    ("n_mels", 64.5, "expected a whole number"),
    ("fmin", -1.0, "is below the minimum 0"),
    ("fmin", "low", "expected a number"),
    ("fmax", 0.0, "is below the minimum 1"),
    ("fmax", math.nan, "must be finite"),
    ("n_chroma", 0, "is below the minimum 1"),
    ("n_chroma", 97, "is above the maximum 96"),
    ("trough_threshold", 1.5, "is above the maximum 1"),
    ("trough_threshold", -0.1, "is below the minimum 0"),
    ("trough_threshold", None, "must not be null"),
    ("beat_subdivision", 0, "is below the minimum 1"),
    ("beat_subdivision", 65, "is above the maximum 64"),
    ("beat_subdivision", 2.5, "expected a whole number"),
    ("peaks_block", 0, "is below the minimum 1"),
    ("peaks_block", True, "expected a number"),
]


@pytest.mark.parametrize(("param", "value", "message"), BAD, ids=lambda v: repr(v)[:20])
@pytest.mark.parametrize("where", ["profile", "override"])
def test_bad_value_is_a_param_error_naming_the_parameter(
    param: str, value: Any, message: str, where: str
) -> None:
    args = ({param: value}, None) if where == "profile" else (None, {param: value})
    with pytest.raises(ParamError) as exc:
        resolve_params(*args)
    text = str(exc.value)
    assert text.startswith(f"{param}: ")
    assert message in text
    assert "\n" not in text
    assert isinstance(exc.value, DiagnosticsError)


def test_every_parameter_has_bad_value_tests() -> None:
    assert {param for param, _, _ in BAD} == set(PARAMS)


def test_unknown_parameter_lists_the_known_ones() -> None:
    with pytest.raises(ParamError) as exc:
        resolve_params({"hop": 256})
    assert str(exc.value).startswith("hop: unknown parameter (known: window_size, hop_size")
    with pytest.raises(ParamError, match=r"^hop_lenght: unknown parameter"):
        check_overrides({"hop_lenght": 1})


def test_where_prefixes_the_message() -> None:
    with pytest.raises(ParamError) as exc:
        resolve_params({"hop_size": 0}, where="profiles.fine.")
    assert str(exc.value).startswith("profiles.fine.hop_size: ")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"window_size": 2048, "fft_size": 1024},
            "fft_size: 1024 is smaller than window_size 2048",
        ),
        ({"window_size": 4096}, None),  # fft_size unset: follows the window, never smaller
        ({"min_db": -20.0, "max_db": -20.0}, "min_db: -20.0 must be below max_db -20.0"),
        ({"min_db": -10.0, "max_db": -30.0}, "min_db: -10.0 must be below max_db -30.0"),
        ({"fmin": 500.0, "fmax": 500.0}, "fmin: 500 must be below fmax 500"),
        ({"fmin": 800.0, "fmax": 100.0}, "fmin: 800 must be below fmax 100"),
    ],
)
def test_cross_checks(values: dict[str, Any], message: str | None) -> None:
    if message is None:
        resolve_params(values)
        return
    with pytest.raises(ParamError) as exc:
        resolve_params(values)
    assert str(exc.value) == message


def test_cross_checks_apply_after_overrides() -> None:
    """A profile that is fine on its own can be made invalid by a request's params."""
    resolve_params({"window_size": 1024, "fft_size": 1024})
    with pytest.raises(ParamError, match="fft_size: 1024 is smaller than window_size 2048"):
        resolve_params({"window_size": 1024, "fft_size": 1024}, {"window_size": 2048})


@pytest.mark.parametrize(
    ("values", "rate", "message"),
    [
        ({"fmax": 11025.0}, 22050, None),  # exactly Nyquist is fine
        ({"fmax": 11025.5}, 22050, "x.wav: fmax: 11025.5 Hz is above the Nyquist frequency 11025 Hz"),
        ({"fmax": 5000.0}, 8000, "x.wav: fmax: 5000 Hz is above the Nyquist frequency 4000 Hz"),
        ({"fmin": 4000.0}, 8000, "x.wav: fmin: 4000 Hz is not below the Nyquist frequency 4000 Hz"),
        ({"fmin": 3999.0}, 8000, None),
        ({}, 8000, None),
    ],
)  # fmt: skip
def test_checks_against_the_sample_rate(
    values: dict[str, Any], rate: int, message: str | None
) -> None:
    params = resolve_params(values)
    if message is None:
        check_for_rate(params, rate, where="x.wav: ")
        return
    with pytest.raises(ParamError) as exc:
        check_for_rate(params, rate, where="x.wav: ")
    assert str(exc.value) == message


# --- properties ------------------------------------------------------------------------------

INT_PARAMS = [name for name, spec in PARAMS.items() if spec.kind is int]
FLOAT_PARAMS = [name for name, spec in PARAMS.items() if spec.kind is float]


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(INT_PARAMS), value=st.integers(-(2**40), 2**40))
def test_int_parameters_accept_exactly_their_range(name: str, value: int) -> None:
    spec = PARAMS[name]
    assert spec.minimum is not None
    assert spec.maximum is not None
    if spec.minimum <= value <= spec.maximum:
        assert check_overrides({name: value}) == {name: value}
    else:
        with pytest.raises(ParamError, match=f"^{name}: "):
            check_overrides({name: value})


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(FLOAT_PARAMS),
    value=st.floats(allow_nan=True, allow_infinity=True, width=64),
)
def test_float_parameters_accept_exactly_finite_values_in_range(name: str, value: float) -> None:
    spec = PARAMS[name]
    inside = math.isfinite(value) and (
        (spec.minimum is None or value >= spec.minimum)
        and (spec.maximum is None or value <= spec.maximum)
    )
    if inside:
        assert check_overrides({name: value}) == {name: value}
    else:
        with pytest.raises(ParamError, match=f"^{name}: "):
            check_overrides({name: value})


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from([n for n, s in PARAMS.items() if s.kind is str]),
    value=st.one_of(st.text(max_size=12), st.sampled_from(WINDOWS)),
)
def test_string_parameters_accept_exactly_their_choices(name: str, value: str) -> None:
    spec = PARAMS[name]
    if value in spec.choices:
        assert check_overrides({name: value}) == {name: value}
    else:
        with pytest.raises(ParamError, match=f"^{name}: "):
            check_overrides({name: value})
