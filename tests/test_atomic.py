"""A failed or killed run never damages the last good master (GeoPackage and PostGIS)."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import shapely

from config import load_project
from config.errors import EtlError
from etl.pipeline import run_merge
from etl.stores import open_store
from etl.stores.gpkg import GpkgRun
from etl.stores.postgis import PgRun

REPO = Path(__file__).resolve().parent.parent

#: a merge (argv: project, flag, go) that writes ``flag`` after its first layer and then waits
#: until ``go`` exists, 120 s at most (a ``go`` never written: until it is killed, and a process
#: it forked that outlives it does not pause forever); flag "-": no pause
PAUSED_MERGE_SCRIPT = r"""
import sys, time
from pathlib import Path
from etl.stores.gpkg import GpkgRun
from etl.stores.postgis import PgRun
def paused(cls):
    orig = cls.write_layer
    def slow(self, layer, frame, **kw):
        orig(self, layer, frame, **kw)
        Path(sys.argv[2]).write_text("mid-write")
        deadline = time.time() + 120
        while not Path(sys.argv[3]).exists() and time.time() < deadline:
            time.sleep(0.05)
    cls.write_layer = slow
if sys.argv[2] != "-":
    paused(GpkgRun)
    paused(PgRun)
from config import load_project
from etl.pipeline import run_merge
print(run_merge(load_project(sys.argv[1])).run_id)
"""


def _digest(root: Path) -> str:
    """Content digest of every table of the current master, through the store API."""
    store = open_store(load_project(root))
    h = hashlib.sha256()
    for layer in sorted(store.layers()):
        df = store.read_layer(layer)
        if "geometry" in df.columns:
            wkb = shapely.to_wkb(df["geometry"].values, hex=True)
            df = pd.DataFrame(df.drop(columns="geometry")).assign(geometry=wkb)
        h.update(layer.encode())
        h.update(pd.util.hash_pandas_object(df.astype("string"), index=False).to_numpy())
    if store.kind == "gpkg":
        h.update((root / "data/merged/master.gpkg").read_bytes())
    return h.hexdigest()


def _in_transaction(root: Path) -> bool:
    """PostGIS: is a uozu-gis session holding an open transaction right now?"""
    from sqlalchemy import text
    store = open_store(load_project(root))
    with store.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                              "'uozu-gis' AND state LIKE 'idle in transaction%'")).scalar()
    return bool(n)


def _schemas(root: Path, like: str) -> list[str]:
    """PostGIS: the schemas whose name is ``LIKE like``, sorted."""
    from sqlalchemy import text
    store = open_store(load_project(root))
    with store.engine.connect() as conn:
        return sorted(conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE "
                                        ":p"), {"p": like}).scalars())


def _run_schemas(root: Path) -> list[str]:
    return _schemas(root, "uozu\\_run\\_%")


def _pub_schemas(root: Path) -> list[str]:
    return _schemas(root, "%\\_pub\\_%")


def _start(*args: str | Path, **kw: Any) -> subprocess.Popen:
    """``python -c <args>`` run from the repository (with it on ``PYTHONPATH``)."""
    return subprocess.Popen([sys.executable, "-c", *map(str, args)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, **kw)


def _wait(ready: Callable[[], bool], proc: subprocess.Popen, ended: str, deadline: float) -> None:
    """Poll ``ready`` until it holds; fail if ``proc`` ends first (``ended``) or at
    ``deadline``."""
    while not ready():
        assert proc.poll() is None, ended
        assert time.time() < deadline
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def _rolled_back(root: Path, kind: str) -> None:
    """PostGIS: wait (30 s at most) until the server has noticed the dead client and rolled
    its transaction back."""
    if kind == "postgresql":
        deadline = time.time() + 30
        while _in_transaction(root) and time.time() < deadline:
            time.sleep(0.1)


def test_killed_merge_leaves_master_intact(mini_store: Path, tmp_path: Path) -> None:
    first = run_merge(load_project(mini_store))
    kind = open_store(load_project(mini_store)).kind
    before = _digest(mini_store)
    schemas = _run_schemas(mini_store) if kind == "postgresql" else []
    flag = tmp_path / "mid"
    proc = _start(PAUSED_MERGE_SCRIPT, mini_store, flag, tmp_path / "never")
    try:
        _wait(flag.exists, proc, "merge ended before it could be killed", time.time() + 120)
        if kind == "gpkg":  # really mid-write
            assert list((mini_store / "data/merged").glob(".staging-*"))
        else:  # really mid-transaction, and nothing of it is visible to other sessions
            assert _in_transaction(mini_store)
            assert _run_schemas(mini_store) == schemas
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = open_store(load_project(mini_store))
    _rolled_back(mini_store, kind)
    if kind == "postgresql":
        assert _run_schemas(mini_store) == schemas
    assert _digest(mini_store) == before
    assert store.current_run() == first.run_id
    assert store.manifest()["run_id"] == first.run_id
    # the next run cleans the leftover staging folder and succeeds
    second = run_merge(load_project(mini_store))
    assert not list((mini_store / "data/merged").glob(".staging-*"))
    assert store.current_run() == second.run_id


def test_failed_merge_changes_nothing(mini_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_merge(load_project(mini_store))
    before = _digest(mini_store)
    calls = {"n": 0}
    for cls in (GpkgRun, PgRun):
        orig = cls.write_layer

        def boom(self, layer, frame, _orig=orig, **kw):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.ENOSPC, "No space left on device", "/data/merged/x.gpkg")
            return _orig(self, layer, frame, **kw)

        monkeypatch.setattr(cls, "write_layer", boom)
    with pytest.raises(EtlError) as ei:
        run_merge(load_project(mini_store))
    assert str(ei.value) == (
        "/data/merged/x.gpkg に書き込めません: ディスクがいっぱいです。"
        "修正: 空き容量を作ってから再実行する / cannot write /data/merged/x.gpkg: the disk is "
        "full. Fix: free disk space and run again\nマージは失敗しました。"
        "前回のマスタは変更されていません。 / the merge failed; the previous master is unchanged.")
    assert _digest(mini_store) == before
    assert open_store(load_project(mini_store)).current_run() == first.run_id
    assert not list((mini_store / "data/merged").glob(".staging-*"))


# ---------------------------------------------------------------- publish killed, two merges

KILL_PUBLISH_SCRIPT = r"""
import sys, time
from pathlib import Path
from publish.build import public_store
orig = public_store.check_public_store
def slow(*a, **kw):
    orig(*a, **kw)  # the new release's store is written (and, on PostGIS, not yet committed)
    Path(sys.argv[2]).write_text("mid-publish")
    time.sleep(120)
public_store.check_public_store = slow
from config import load_project
from publish.build import publish
publish(load_project(sys.argv[1]))
"""


def _tree_digest(folder: Path) -> str:
    """Every file of a release folder, by relative path and content."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _served(root: Path) -> dict[str, object]:
    """What a fresh server answers now: the release id and the number of roads."""
    from publish.server.app import create_app
    client = create_app(load_project(root)).test_client()
    r = client.get("/api/collections/road_segment/items", query_string={"f": "json"})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return {"matched": r.get_json()["numberMatched"],
            "healthz": client.get("/healthz").status_code}


def test_killed_publish_leaves_the_current_release_served(mini_store: Path,
                                                          tmp_path: Path) -> None:
    """kill -9 while a new release is being written: ``current`` still points at the previous
    release, whose files (and PostGIS schema) are intact and served; the partial release is
    never current, and the next publish removes it and succeeds."""
    from publish.build import publish, release
    run_merge(load_project(mini_store))
    first = publish(load_project(mini_store))
    public = mini_store / "data/public"
    kind = open_store(load_project(mini_store)).kind
    before = _tree_digest(first.path)
    served = _served(mini_store)
    schemas = _pub_schemas(mini_store) if kind == "postgresql" else []
    link = os.readlink(public / release.CURRENT)
    flag = tmp_path / "mid"
    proc = _start(KILL_PUBLISH_SCRIPT, mini_store, flag)
    try:
        _wait(flag.exists, proc, "publish ended before it could be killed", time.time() + 120)
        partial = [p for p in (public / "releases").iterdir() if p.name != first.release_id]
        assert len(partial) == 1 and (partial[0] / release.STORE).exists()  # really mid-write
        if kind == "postgresql":
            assert _in_transaction(mini_store)
            assert _pub_schemas(mini_store) == schemas  # uncommitted: invisible
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    _rolled_back(mini_store, kind)
    if kind == "postgresql":
        assert _pub_schemas(mini_store) == schemas
    assert os.readlink(public / release.CURRENT) == link
    assert release.current_id(public) == first.release_id
    assert release.list_releases(public) == [first.release_id]  # the partial one is not complete
    assert not (partial[0] / release.RELEASE_JSON).exists()
    assert _tree_digest(first.path) == before
    assert _served(mini_store) == served
    # the lock died with the process: the next publish runs, switches and prunes the leftover
    second = publish(load_project(mini_store))
    assert release.current_id(public) == second.release_id
    assert not partial[0].exists()
    assert release.list_releases(public) == [first.release_id, second.release_id]


def _waiting_for_lock(kind: str, root: Path, pid: int) -> bool:
    """Is process ``pid`` (a merge) blocked on the master store's lock right now?"""
    if kind == "gpkg":  # a blocked flock() shows in /proc/locks as "-> FLOCK ... <pid> ..."
        lines = Path("/proc/locks").read_text().splitlines()
        return any("->" in ln and "FLOCK" in ln and str(pid) in ln.split() for ln in lines)
    from sqlalchemy import text
    store = open_store(load_project(root))
    with store.engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND pid IN (SELECT pid FROM pg_stat_activity WHERE application_name = 'uozu-gis')"
        )).scalar())


def test_two_merges_at_once_take_turns(mini_store: Path, tmp_path: Path) -> None:
    """A second merge started while one is writing waits for the store's lock (it does not
    interleave): both end well, one after the other, and the master is complete."""
    first = run_merge(load_project(mini_store))
    kind = open_store(load_project(mini_store)).kind
    flag, go = tmp_path / "mid", tmp_path / "go"
    a = _start(PAUSED_MERGE_SCRIPT, mini_store, flag, go, stdout=subprocess.PIPE, text=True)
    b = None
    try:
        deadline = time.time() + 120
        _wait(flag.exists, a, "the first merge ended before the second started", deadline)
        b = _start(PAUSED_MERGE_SCRIPT, mini_store, "-", "-", stdout=subprocess.PIPE, text=True)
        _wait(lambda: _waiting_for_lock(kind, mini_store, b.pid), b,
              "the second merge did not wait for the first", deadline)
        assert open_store(load_project(mini_store)).current_run() == first.run_id
        go.write_text("go")
        out_a, _ = a.communicate(timeout=120)
        out_b, _ = b.communicate(timeout=120)
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
    assert (a.returncode, b.returncode) == (0, 0)
    run_a, run_b = out_a.strip().splitlines()[-1], out_b.strip().splitlines()[-1]
    store = open_store(load_project(mini_store))
    assert first.run_id < run_a < run_b
    assert store.current_run() == run_b
    assert [m["run_id"] for m in store.list_runs()][:3] == [run_b, run_a, first.run_id]
    counts = {lid: lay["features"] for lid, lay in store.manifest()["layers"].items()}
    assert counts == {lid: lay["features"] for lid, lay in first.manifest["layers"].items()}
    for lid, n in counts.items():
        assert len(store.read_layer(lid)) == n, lid
    assert not list((mini_store / "data/merged").glob(".staging-*"))
