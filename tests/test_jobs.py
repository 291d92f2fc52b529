"""The job helpers: generator driving with cancellation, atomic writes."""

import os
import stat

import pytest

from lfs_gui.jobs import Cancelled, Progress, atomic_path, atomic_write_bytes, run_generator


def _count(n, log):
    try:
        for i in range(n):
            yield Progress(i + 1, n)
        return "done"
    finally:
        log.append("closed")


def test_run_generator_returns_value_and_reports_items():
    log, seen = [], []
    assert run_generator(_count(3, log), seen.append) == "done"
    assert [p.done for p in seen] == [1, 2, 3] and seen[-1].fraction == 1.0
    assert log == ["closed"]


def test_cancel_closes_generator():
    log, seen = [], []
    with pytest.raises(Cancelled):
        run_generator(_count(10, log), seen.append, should_cancel=lambda: len(seen) == 2)
    assert len(seen) == 2 and log == ["closed"]


def test_atomic_writes_replace_and_leave_no_temp(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == b"two"  # nothing lost
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]
