"""Hostile input to the commands added last (compare --against, add, analyze --workers,
screenshot --row) and to the project file (values of megabytes): each gives a one-line message
naming the culprit, never a hang, a traceback or a message of megabytes. Where a hang is
possible the CLI runs in a fresh process with a hang guard (``fresh``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    Cli,
    _no_plugins,  # noqa: F401  (autouse fixture)
    analysed,  # noqa: F401  (fixture)
    assert_bad_input,
    cli,  # noqa: F401  (fixture)
    project,  # noqa: F401  (fixture)
)
from tests.core.test_hostile_input import fresh, needs_dev, needs_fifo

ROW = ("--source", "bass", "--feature", "rms")


# --- compare --against FILE.npy --------------------------------------------------------------


@needs_fifo
def test_against_a_fifo_is_refused_not_waited_on(analysed: Path, tmp_path: Path) -> None:  # noqa: F811
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    assert_bad_input(fresh("compare", analysed, *ROW, "--against", fifo), str(fifo), "FIFO")


@needs_dev
def test_against_a_device_is_refused(analysed: Path, cli: Cli) -> None:  # noqa: F811
    assert_bad_input(
        cli("compare", analysed, *ROW, "--against", "/dev/zero"), "/dev/zero", "device"
    )


def test_against_a_folder_is_refused(analysed: Path, tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    folder = tmp_path / "d.npy"
    folder.mkdir()
    assert_bad_input(cli("compare", analysed, *ROW, "--against", folder), str(folder), "folder")


def test_against_a_file_that_is_not_npy_says_so(analysed: Path, tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    text = tmp_path / "notes.npy"
    text.write_text("hello\n", encoding="utf-8")
    line = assert_bad_input(
        cli("compare", analysed, *ROW, "--against", text), str(text), "not a .npy file"
    )
    assert "pickle" not in line  # numpy's guess for a file without its magic bytes


def test_against_a_truncated_npy_names_it(analysed: Path, tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    whole = tmp_path / "whole.npy"
    np.save(whole, np.zeros(44, np.float32))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(whole.read_bytes()[:100])
    assert_bad_input(cli("compare", analysed, *ROW, "--against", cut), str(cut))
