"""This process's start token is read from /proc once, not once per job record (the GUI
thread queued 40 jobs with 41 reads), and a forked child still gets its own."""

from __future__ import annotations

import os

import pytest

from diagnostics_app.core.store import owners


def test_own_token_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(owners, "_own_start", [0, ""])
    reads: list[int] = []
    real = owners._proc_stat

    def counting(pid: int) -> tuple[str, str] | None:
        reads.append(pid)
        return real(pid)

    monkeypatch.setattr(owners, "_proc_stat", counting)
    first = owners.process_start_token()
    assert first and owners.process_start_token(os.getpid()) == first
    assert owners.process_start_token() == first
    assert reads == [os.getpid()]
    # another pid is always read (its process may have been replaced)
    owners.process_start_token(1)
    assert reads == [os.getpid(), 1]


def test_a_forked_child_reads_its_own_token() -> None:
    parent = owners.process_start_token()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its token, through the cache the parent filled
        try:
            os.write(write_fd, owners.process_start_token().encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    child = os.read(read_fd, 200).decode()
    os.close(read_fd)
    os.waitpid(pid, 0)
    assert child and child != parent
    assert child.split(":")[0] == parent.split(":")[0]  # the same boot
