"""Calculator plugins (interface §5): found in DIAGNOSTICS_APP_PLUGIN_PATH folders and through
entry points; a broken plugin is reported with its path and error while the rest load.

The example plugin is docs/example_plugin.py itself, copied into a plugin folder: the README's
example is exercised here.
"""

from __future__ import annotations

import os
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

from diagnostics_app.core.calculators import registry as registry_module
from diagnostics_app.core.calculators.registry import (
    BUILTINS,
    ENTRY_POINT_GROUP,
    PLUGIN_PATH_ENV,
    Registry,
)
from diagnostics_app.core.engine import analyse
from diagnostics_app.core.errors import PluginError, RegistryError
from diagnostics_app.core.params import PARAMS, resolve_params
from tests.core import audio_factory as af
from tests.core.test_declared_params import CHANGED

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "example_plugin.py"
SR = 22050


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty plugin folder, the only one in DIAGNOSTICS_APP_PLUGIN_PATH."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(folder))
    return folder


def install_example(folder: Path, name: str = "zcr_plugin.py") -> Path:
    target = folder / name
    target.write_text(EXAMPLE.read_text())
    return target


def reference_zcr(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Zero-crossing rate of centred, zero-padded frames, written out with numpy."""
    n = len(x)
    padded = np.concatenate([np.zeros(length), x, np.zeros(length)])
    out = []
    for t in range(1 + n // hop):
        start = t * hop - length // 2 + length  # index in padded
        frame = padded[start : start + length]
        neg = np.signbit(frame)
        out.append(np.count_nonzero(neg[1:] != neg[:-1]) / (length - 1))
    return np.array(out, np.float32)


# --- the example plugin ----------------------------------------------------------------------


def test_example_plugin_loads_from_plugin_path_and_analyses(
    plugin_dir: Path, tmp_path: Path
) -> None:
    install_example(plugin_dir)
    registry = Registry.default()
    assert registry.problems == []
    calc = registry.resolve("zcr")
    assert calc.id == "example.zcr"
    assert registry.resolve("zcr", "example.zcr") is calc
    assert "zcr" in registry.features()
    assert {c.id for c in BUILTINS} < {c.id for c in registry}

    x = af.chirp(200.0, 4000.0, 1.0, SR)
    path = af.write_float_wav(tmp_path / "chirp.wav", x, SR)
    params = resolve_params({"window_size": 1024, "hop_size": 256})
    result = analyse(path, [calc, registry.get("core.rms")], params, block_frames=3000)
    zcr = result["example.zcr"]["zcr"]
    assert zcr.data.shape == (1 + len(x) // 256, 1, 1)
    np.testing.assert_allclose(zcr.times, np.arange(len(zcr.data)) * 256 / SR)
    expected = reference_zcr(x[:, 0].astype(np.float32), 1024, 256)
    np.testing.assert_array_equal(zcr.data[:, 0, 0], expected)
    # a rising sweep crosses zero more and more often
    middle = zcr.data[5:-5, 0, 0]
    assert middle[-1] > 5 * middle[0]


def test_plugin_path_lists_several_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    install_example(first)
    (second / "other.py").write_text(
        EXAMPLE.read_text().replace('id = "example.zcr"', 'id = "example.zcr2"')
        .replace('"zcr",\n    kind', '"zcr2",\n    kind')
    )  # fmt: skip
    monkeypatch.setenv(PLUGIN_PATH_ENV, os.pathsep.join([str(first), "", str(second)]))
    registry = Registry.default()
    assert registry.problems == []
    assert registry.resolve("zcr").id == "example.zcr"
    assert registry.resolve("zcr2").id == "example.zcr2"


def test_no_plugin_path_means_builtins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)
    registry = Registry.default()
    assert [c.id for c in registry] == [c.id for c in BUILTINS]
    assert registry.problems == []


def test_missing_plugin_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(missing))
    registry = Registry.default()
    assert [(p.origin, p.error) for p in registry.problems] == [
        (str(missing), "plugin folder not found")
    ]
    assert len(list(registry)) == len(BUILTINS)


@pytest.mark.parametrize("param", list(PARAMS))
def test_example_plugin_declares_exactly_what_it_reads(
    param: str, plugin_dir: Path, tmp_path: Path
) -> None:
    """The example follows the rule it documents (see test_declared_params)."""
    install_example(plugin_dir)
    calc = Registry.default().resolve("zcr")
    path = af.write_float_wav(tmp_path / "s.wav", af.stereo(0.7, SR), SR)
    before = analyse(path, [calc], resolve_params(), block_frames=2500)["example.zcr"]["zcr"]
    after = analyse(path, [calc], resolve_params({param: CHANGED[param]}), block_frames=2500)
    changed = after["example.zcr"]["zcr"]
    same = before.data.shape == changed.data.shape and np.array_equal(before.data, changed.data)
    assert same == (param not in calc.params)


# --- broken plugins --------------------------------------------------------------------------

GOOD_SMALL = """
from diagnostics_app.core.calculators import Calculator, FeatureSpec
from diagnostics_app.core.calculators.temporal import RmsCalculator


class {name}(RmsCalculator):
    id = "{cid}"
    version = 1
    features = (FeatureSpec("{feature}"),)
    params = {params}
"""

BROKEN: dict[str, tuple[str, str]] = {
    # file name: (source, text the reported error must contain)
    "syntax_error.py": ("def broken(:\n    pass\n", "SyntaxError"),
    "raises_on_import.py": (
        "raise RuntimeError('plugin failed on purpose')\n",
        "RuntimeError: plugin failed on purpose",
    ),
    "imports_missing_module.py": (
        "import no_such_module_for_diagnostics_app\n",
        "ModuleNotFoundError",
    ),
    "unknown_param.py": (
        GOOD_SMALL.format(
            name="Unknown",
            cid="bad.unknown",
            feature="u",
            params='("window_size", "no_such_param")',
        ),
        "reads unknown parameters no_such_param",
    ),
    "params_not_a_tuple.py": (
        GOOD_SMALL.format(name="NotTuple", cid="bad.string", feature="s", params='("window_size")'),
        "params must be a tuple of parameter names",
    ),
    "duplicate_builtin_id.py": (
        GOOD_SMALL.format(name="Dup", cid="core.rms", feature="d", params='("window_size",)'),
        "calculator id 'core.rms' is already registered",
    ),
    "zz_duplicate_plugin_id.py": (
        GOOD_SMALL.format(name="Dup2", cid="example.zcr", feature="d2", params="()"),
        "calculator id 'example.zcr' is already registered",
    ),
    "no_calculator.py": ("VALUE = 1\n", "defines no Calculator subclass"),
    "features_not_specs.py": (
        textwrap.dedent(
            """
            from diagnostics_app.core.calculators.temporal import RmsCalculator

            class Strings(RmsCalculator):
                id = "bad.features"
                features = ("zcr_as_a_string",)
            """
        ),
        "features must be a tuple of FeatureSpec",
    ),
}


def test_broken_plugins_are_reported_and_the_rest_load(plugin_dir: Path, tmp_path: Path) -> None:
    install_example(plugin_dir, "a_zcr.py")  # sorted first: loads before its duplicate
    for name, (source, _) in BROKEN.items():
        (plugin_dir / name).write_text(source)
    registry = Registry.default()

    problems = {Path(p.origin).name: p for p in registry.problems}
    assert set(problems) == set(BROKEN)
    for name, (_, expected) in BROKEN.items():
        problem = problems[name]
        assert problem.origin == str(plugin_dir / name)
        assert expected in problem.error, (name, problem.error)
        assert "\n" not in problem.error
        assert str(problem) == f"plugin {plugin_dir / name}: {problem.error}"

    # everything else works: the built-ins, untouched, and the good plugin
    assert registry.get("core.rms").__class__.__module__.startswith("diagnostics_app.core")
    assert [c.id for c in registry][: len(BUILTINS)] == [c.id for c in BUILTINS]
    zcr = registry.resolve("zcr")
    assert zcr.id == "example.zcr"
    path = af.write_float_wav(tmp_path / "s.wav", af.sine(440.0, 0.5, SR), SR)
    out = analyse(path, [zcr], resolve_params())
    assert out["example.zcr"]["zcr"].data.shape == (1 + round(0.5 * SR) // 512, 1, 1)
    for cid in ("bad.unknown", "bad.string", "bad.features"):
        assert cid not in registry
    with pytest.raises(RegistryError, match=r"unknown calculator 'bad\.unknown'"):
        registry.get("bad.unknown")


def test_adding_an_invalid_calculator_directly_raises() -> None:
    registry = Registry.builtin()
    with pytest.raises(PluginError, match="already registered"):
        registry.add(BUILTINS[0]())


# --- entry points ----------------------------------------------------------------------------


def test_entry_point_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry points of the group are loaded (a class); a broken one is reported with its
    name and target, and the rest still load."""
    package = tmp_path / "site"
    package.mkdir()
    (package / "zcr_entry_point_plugin.py").write_text(EXAMPLE.read_text())
    monkeypatch.syspath_prepend(str(package))
    points = [
        EntryPoint("zcr", "zcr_entry_point_plugin:ZeroCrossingRate", ENTRY_POINT_GROUP),
        EntryPoint("ghost", "no_such_module_for_diagnostics_app:Thing", ENTRY_POINT_GROUP),
        EntryPoint("not_a_calculator", "os.path:join", ENTRY_POINT_GROUP),
    ]

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        return points if group == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)
    registry = Registry.default()
    assert registry.resolve("zcr").id == "example.zcr"
    origins = {p.origin: p.error for p in registry.problems}
    assert set(origins) == {
        "entry point ghost (no_such_module_for_diagnostics_app:Thing)",
        "entry point not_a_calculator (os.path:join)",
    }
    assert (
        "ModuleNotFoundError"
        in origins["entry point ghost (no_such_module_for_diagnostics_app:Thing)"]
    )
