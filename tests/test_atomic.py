"""A failed or killed run never damages the last good master."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import load_project
from etl.load import GpkgStore
from etl.pipeline import run_merge

KILL_SCRIPT = r"""
import sys, time
from pathlib import Path
from etl.load import GpkgStore
orig = GpkgStore.write_layer
def slow(self, path, layer, frame, **kw):
    orig(self, path, layer, frame, **kw)
    Path(sys.argv[2]).write_text("mid-write")
    time.sleep(120)
GpkgStore.write_layer = slow
from config import load_project
from etl.pipeline import run_merge
run_merge(load_project(sys.argv[1]))
"""


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_killed_merge_leaves_master_intact(mini_project: Path, tmp_path: Path) -> None:
    first = run_merge(load_project(mini_project))
    master = mini_project / "data/merged/master.gpkg"
    before = _digest(master)
    flag = tmp_path / "mid"
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(mini_project), str(flag)],
                            cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        deadline = time.time() + 120
        while not flag.exists():
            assert proc.poll() is None, "merge ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.05)
        assert list((mini_project / "data/merged").glob(".staging-*"))  # really mid-write
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _digest(master) == before
    store = GpkgStore(mini_project / "data/merged")
    assert store.current_run() == first.run_id
    assert store.manifest()["run_id"] == first.run_id
    # the next run cleans the leftover staging folder and succeeds
    second = run_merge(load_project(mini_project))
    assert not list((mini_project / "data/merged").glob(".staging-*"))
    assert store.current_run() == second.run_id


def test_failed_merge_changes_nothing(mini_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_merge(load_project(mini_project))
    master = mini_project / "data/merged/master.gpkg"
    before = _digest(master)
    calls = {"n": 0}
    orig = GpkgStore.write_layer

    def boom(self, path, layer, frame, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return orig(self, path, layer, frame, **kw)

    monkeypatch.setattr(GpkgStore, "write_layer", boom)
    with pytest.raises(OSError):
        run_merge(load_project(mini_project))
    assert _digest(master) == before
    assert GpkgStore(mini_project / "data/merged").current_run() == first.run_id
    assert not list((mini_project / "data/merged").glob(".staging-*"))
