"""Issue 11 through the real command line: a calculator plugin whose version 2 changes its
output in one time range, ``compare`` finding exactly that range; a version bump that changes
nothing said so ("regenerated — identical"); previous versions evicted first by the cache
limit; another hop compared on a common grid; ``--against FILE.npy``; bad input."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from diagnostics_app.core.calculators.registry import PLUGIN_PATH_ENV
from diagnostics_app.core.compare import clock
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import EntryKey
from tests.core.project_factory import SR, write_project, write_tone
from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    Cli,
    _no_plugins,  # noqa: F401  (autouse fixture)
    assert_bad_input,
    edit_project,
    rows_by,
)
from tests.core.test_cli import cli as _cli  # noqa: F401  (a fixture, here named _cli)

HOP = 256
CHANGED = (0.5, 0.75)  # seconds: version 2 scales the frames whose time falls here

PLUGIN = """
import numpy as np
from diagnostics_app.core.calculators import (
    Calculator, CalculatorRun, FeatureSpec, as_frames, uniform_meta,
)

LEVEL = FeatureSpec("level", unit="FS", description="mean absolute value per frame")


class Level(Calculator):
    id = "qa.level"
    version = {version}
    features = (LEVEL,)
    params = ("window_size", "hop_size", "channel_mode")
    description = "mean absolute value of centred frames"

    def start(self, ctx):
        return _Run(ctx)


class _Run(CalculatorRun):
    def __init__(self, ctx):
        self.ctx = ctx

    def process(self, block):
        n = self.ctx.params.get_int("window_size")
        level = np.abs(block.frames(n, -(n // 2))).mean(axis=-1)  # (channels, frames)
        hop, sr = self.ctx.hop, self.ctx.sample_rate
        times = (block.frame_start + np.arange(level.shape[1])) * hop / sr
        lo, hi = {changed}
        level = np.where((times >= lo) & (times < hi), level * {factor}, level)
        return {{"level": as_frames(level)}}

    def outputs(self):
        return {{"level": uniform_meta(self.ctx, LEVEL, 1)}}
"""


def install(folder: Path, version: int, factor: float) -> None:
    """The plugin at ``version`` in its own folder (a new module: no stale bytecode)."""
    target = folder / f"v{version}"
    target.mkdir(parents=True, exist_ok=True)
    code = PLUGIN.format(version=version, changed=CHANGED, factor=factor)
    (target / "level_plugin.py").write_text(textwrap.dedent(code))


@pytest.fixture
def cli(_cli: Cli) -> Cli:  # noqa: F811  (the imported fixture, by its name)
    return _cli


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return tmp_path / "plugins"


def use(plugins: Path, version: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(plugins / f"v{version}"))


@pytest.fixture
def project(tmp_path: Path, plugins: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Path:
    """One source analysed with the plugin's version 1 (plus a built-in rms)."""
    write_tone(tmp_path / "proj" / "audio" / "a.wav", 1.5, 330.0)
    path = write_project(
        tmp_path / "proj",
        {
            "name": "Compare",
            "profiles": {"default": {"window_size": 1024, "hop_size": HOP}},
            "sources": [{"id": "a", "path": "audio/a.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "a",
                    "requests": [{"feature": "level"}, {"feature": "rms"}],
                }
            ],
        },
    )
    install(plugins, 1, 1.0)
    install(plugins, 2, 1.5)  # changes the frames in CHANGED
    install(plugins, 3, 1.5)  # the same output as version 2: a bump that changes nothing
    use(plugins, 1, monkeypatch)
    assert cli("analyze", path).code == 0
    return path


def expected_range() -> tuple[float, float]:
    """The frames version 2 changed: from the first frame time in CHANGED to the time of the
    frame after the last one."""
    step = HOP / SR
    first = math.ceil(CHANGED[0] / step - 1e-9)
    after = math.ceil(CHANGED[1] / step - 1e-9)  # the first frame not changed
    return first * step, after * step


def test_version_2_changes_one_range_and_compare_finds_exactly_it(
    project: Path, plugins: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    none_yet = cli("compare", project, "--feature", "level")
    assert_bad_input(none_yet, "a/level", "no previous version")
    use(plugins, 2, monkeypatch)
    assert cli("analyze", project).code == 0
    result = cli("compare", project, "--feature", "level", "--json")
    assert result.code == 1, result
    doc = json.loads(result.out)
    assert doc["summary"] == {"identical": 0, "within tolerance": 0, "differs": 1}
    (row,) = doc["rows"]
    assert (row["source"], row["feature"], row["verdict"]) == ("a", "level", "differs")
    assert row["against"]["what"] == "previous" and row["against"]["calculator_version"] == 1
    start, end = expected_range()
    assert len(row["ranges"]) == 1
    assert row["ranges"][0] == pytest.approx([start, end], abs=1e-9)
    assert row["first_diff_s"] == pytest.approx(start)
    assert start <= row["worst_diff_s"] < end
    assert row["frames_beyond"] == round((end - start) / (HOP / SR))
    assert row["max_rel_diff"] == pytest.approx(0.5 / 1.5, rel=1e-3)  # x1.5: |a-b|/max
    assert row["first_diff"] == clock(start) and row["ranges_text"] == [
        f"{clock(start)}–{clock(end)}"
    ]
    # text: the verdict and the times in m:ss.mmm; the rms row (never regenerated) listed
    text = cli("compare", project)
    assert text.code == 1
    assert "differs   a  level  qa.level  default" in text.out
    assert f"ranges {clock(start)}–{clock(end)}" in text.out
    assert "no previous version kept" in text.out  # rms
    # check --json: the regeneration changed the data
    check = rows_by(cli("check", project, "--json").json())
    assert check["a", "level", "default"]["regenerated"] == "changed"
    assert check["a", "rms", "default"]["regenerated"] is None


def test_a_bump_that_changes_nothing_is_said_identical(
    project: Path, plugins: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    use(plugins, 2, monkeypatch)
    assert cli("analyze", project).code == 0
    use(plugins, 3, monkeypatch)
    check = rows_by(cli("check", project, "--json").json())
    assert check["a", "level", "default"]["state"] == "stale"  # calculator.version 2 -> 3
    assert cli("analyze", project).code == 0
    result = cli("compare", project, "--feature", "level", "--json")
    assert result.code == 0, result
    (row,) = json.loads(result.out)["rows"]
    assert row["verdict"] == "identical" and row["frames_beyond"] == 0 and row["ranges"] == []
    check = rows_by(cli("check", project, "--json").json())
    assert check["a", "level", "default"]["regenerated"] == "identical"
    with Session.open(project) as session:
        row_obj = next(r for r in session.diagnose().rows if r.key.feature == "level")
        assert row_obj.note == "regenerated — identical to the previous version"
        assert row_obj.state == "ok"


def test_previous_versions_are_evicted_first(
    project: Path, plugins: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    use(plugins, 2, monkeypatch)
    assert cli("analyze", project, "--all").code == 0  # rms regenerated too: two previous
    with Session.open(project) as session:
        store = session.store
        versions = store.previous_versions()
        assert {v.key.calculator_id for v in versions} == {"qa.level", "core.rms"}
        current = sum(e.nbytes for e in store.entries())
        total = store.total_bytes()
        assert total == current + store.previous_bytes()  # they count in the size shown
        # a limit one byte under the total: the oldest replaced previous version goes, alone
        freed = session.enforce_cache_limit(total - 1)
        assert freed == versions[0].nbytes
        left = store.previous_versions()
        assert left == versions[1:]
        assert {r.state for r in session.diagnose().rows} == {"ok"}  # no row lost its data
        # a limit under the current data: every previous version goes before any row's data
        session.enforce_cache_limit(current - 1)
        assert store.previous_versions() == []
        assert sum(r.state == "missing" for r in session.diagnose().rows) == 1


def test_another_hop_is_compared_on_a_common_grid(project: Path, cli: Cli) -> None:
    edit_project(project, lambda doc: doc["profiles"]["default"].update(hop_size=HOP // 2))
    assert cli("analyze", project).code == 0
    result = cli("compare", project, "--feature", "rms", "--json")
    (row,) = json.loads(result.out)["rows"]
    assert row["common_grid"] is True
    assert "common time grid" in row["note"] and "frame step" in row["note"]
    assert row["verdict"] in ("within tolerance", "differs")  # never "identical" on a grid
    text = cli("compare", project, "--feature", "rms")
    assert "note: compared on a common time grid" in text.out


def test_against_a_npy_file(project: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "rms.npy"
    assert (
        cli(
            "export", project, "--source", "a", "--feature", "rms", "--format", "npy", "-o", out
        ).code
        == 0
    )
    same = cli("compare", project, "--source", "a", "--feature", "rms", "--against", out)
    assert same.code == 0 and same.out.startswith("identical"), same
    data = np.load(out)
    data[100:110] += 0.5
    np.save(out, data)
    result = cli(
        "compare", project, "--source", "a", "--feature", "rms", "--against", out, "--json"
    )
    assert result.code == 1
    (row,) = json.loads(result.out)["rows"]
    step = HOP / SR
    assert np.allclose(row["ranges"], [[100 * step, 110 * step]])
    assert row["against"] == {"what": "file", "path": str(out)}


def test_bad_input_is_one_line(project: Path, tmp_path: Path, cli: Cli) -> None:
    assert_bad_input(cli("compare", project, "--source", "nope"), "unknown source 'nope'")
    assert_bad_input(cli("compare", project, "--feature", "rms"), "no previous version")
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"\x93NUMPY garbage")
    assert_bad_input(
        cli("compare", project, "--source", "a", "--feature", "rms", "--against", junk),
        str(junk),
        "not a readable .npy",
    )
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((10, 3, 2), np.float32))
    assert_bad_input(
        cli("compare", project, "--source", "a", "--feature", "rms", "--against", wrong),
        "does not match",
    )
    assert_bad_input(
        cli("compare", project, "--against", wrong), "--source and --feature are required"
    )
    assert_bad_input(
        cli(
            "compare",
            project,
            "--source",
            "a",
            "--feature",
            "rms",
            "--against",
            tmp_path / "none.npy",
        ),
        "no such file",
    )


def test_unreadable_previous_data_is_a_row_error(
    project: Path, plugins: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    use(plugins, 2, monkeypatch)
    assert cli("analyze", project).code == 0
    with Session.open(project) as session:
        version = session.store.previous(EntryKey.of("a", "qa.level"), "level")
        assert version is not None
        (session.store.root / version.feature.path).write_bytes(b"truncated")
    result = cli("compare", project, "--feature", "level")
    assert result.code == 1
    assert result.out.startswith("error") and "corrupt array file" in result.out
