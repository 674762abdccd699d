"""A failed or killed run never damages the last good master (GeoPackage and PostGIS)."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import shapely

from config import load_project
from config.errors import EtlError
from etl.pipeline import run_merge
from etl.stores import open_store
from etl.stores.gpkg import GpkgRun
from etl.stores.postgis import PgRun

KILL_SCRIPT = r"""
import sys, time
from pathlib import Path
from etl.stores.gpkg import GpkgRun
from etl.stores.postgis import PgRun
def slowed(cls):
    orig = cls.write_layer
    def slow(self, layer, frame, **kw):
        orig(self, layer, frame, **kw)
        Path(sys.argv[2]).write_text("mid-write")
        time.sleep(120)
    cls.write_layer = slow
slowed(GpkgRun)
slowed(PgRun)
from config import load_project
from config.errors import EtlError
from etl.pipeline import run_merge
run_merge(load_project(sys.argv[1]))
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


def _run_schemas(root: Path) -> list[str]:
    from sqlalchemy import text
    store = open_store(load_project(root))
    with store.engine.connect() as conn:
        return sorted(conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE "
                                        "'uozu\\_run\\_%'")).scalars())


def test_killed_merge_leaves_master_intact(mini_store: Path, tmp_path: Path) -> None:
    first = run_merge(load_project(mini_store))
    kind = open_store(load_project(mini_store)).kind
    before = _digest(mini_store)
    schemas = _run_schemas(mini_store) if kind == "postgresql" else []
    flag = tmp_path / "mid"
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(mini_store), str(flag)],
                            cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        deadline = time.time() + 120
        while not flag.exists():
            assert proc.poll() is None, "merge ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.05)
        if kind == "gpkg":  # really mid-write
            assert list((mini_store / "data/merged").glob(".staging-*"))
        else:  # really mid-transaction, and nothing of it is visible to other sessions
            assert _in_transaction(mini_store)
            assert _run_schemas(mini_store) == schemas
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = open_store(load_project(mini_store))
    if kind == "postgresql":  # the server notices the dead client and rolls back
        deadline = time.time() + 30
        while _in_transaction(mini_store) and time.time() < deadline:
            time.sleep(0.1)
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
