"""Environment faults are errors a city's staff can act on: the path or server and the fix,
in Japanese and English; never "internal error", never a traceback or an SQL statement; and the
previous master stays current.

Disk full and a read-only folder are real (a small tmpfs mounted over ``data/merged``); a
PostGIS that goes away is a real terminated backend; the rest are the errors GDAL, SQLite and
the OS raise, injected where the store writes.
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pyogrio.errors import DataSourceError

import cli
from config import load_project
from etl.pipeline import run_merge
from etl.stores import open_store
from etl.stores.gpkg import GpkgRun
from etl.stores.postgis import PgRun

TAIL = ("マージは失敗しました。前回のマスタは変更されていません。 / the merge failed; the previous "
        "master is unchanged.")


def _merge_cli(root: Path) -> tuple[int, str]:
    res = CliRunner().invoke(cli.cli, ["--project", str(root), "-q", "merge"])
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    assert "SELECT" not in res.output and "INSERT" not in res.output, res.output
    return res.exit_code, res.output


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> None:
    """Use up every free byte of the file system holding ``folder``."""
    with open(folder / "filler", "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()


def test_disk_full_and_read_only_for_real(mini_project: Path) -> None:
    merged = mini_project / "data/merged"
    with _tmpfs(merged, "8m"):
        first = run_merge(load_project(mini_project))
        _fill(merged)
        code, out = _merge_cli(mini_project)
        assert code == 1
        assert "the disk is full. Fix: free disk space and run again" in out, out
        assert str(merged) in out and out.rstrip().endswith(TAIL), out
        assert open_store(load_project(mini_project)).current_run() == first.run_id
        (merged / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(merged)], check=True)
        code, out = _merge_cli(mini_project)
        assert code == 1
        assert (f"cannot write {merged}/.lock: the file system is read-only. Fix: configure a "
                "writable folder (e.g. merged_dir in config/project.yml)") in out, out
        assert open_store(load_project(mini_project)).current_run() == first.run_id


FAULTS = [
    (OSError(errno.EACCES, "Permission denied", "/srv/gis/merged/.staging-x/master.gpkg"),
     "/srv/gis/merged/.staging-x/master.gpkg に書き込めません: 権限がありません。"
     "修正: このユーザーに書込み権限を与えるか、書き込めるフォルダを設定する / cannot write "
     "/srv/gis/merged/.staging-x/"
     "master.gpkg: permission denied. Fix: give this user write permission or configure a folder "
     "it may write"),
    (DataSourceError("sqlite3_exec(COMMIT) failed: database is locked"),
     "{master} は別のプログラムが使用中 (ロック中) です。"
     "修正: それ (QGIS など) を閉じてから再実行する / {master} is locked by another program. "
     "Fix: close it (e.g. QGIS) and run again"),
    (DataSourceError("sqlite3_exec(INSERT INTO ...) failed: database or disk is full"),
     "{master} に書き込めません: ディスクがいっぱいです。修正: 空き容量を作ってから再実行する / "
     "cannot write {master}: the disk is full. Fix: free disk space and run again"),
]


@pytest.mark.parametrize("fault,message", FAULTS, ids=["permission", "locked", "sqlite_full"])
def test_gpkg_write_faults(mini_project: Path, monkeypatch: pytest.MonkeyPatch,
                           fault: Exception, message: str) -> None:
    first = run_merge(load_project(mini_project))

    def boom(self, layer, frame, **kw):
        raise fault

    monkeypatch.setattr(GpkgRun, "write_layer", boom)
    code, out = _merge_cli(mini_project)
    assert code == 1
    master = mini_project / "data/merged/master.gpkg"
    assert out == f"Error: {message.format(master=master)}\n{TAIL}\n"
    assert open_store(load_project(mini_project)).current_run() == first.run_id


def test_postgis_gone_away(mini_project: Path, new_pg_db, monkeypatch: pytest.MonkeyPatch
                           ) -> None:
    """The server ends the merge's connection mid-write: the run is rolled back by the server,
    the message names the server (no password) and no SQL."""
    from stores import set_store_in_file
    url = new_pg_db()
    set_store_in_file(mini_project, url)
    first = run_merge(load_project(mini_project))
    orig = PgRun.write_layer
    from sqlalchemy import text

    def killed(self, layer, frame, **kw):
        if layer == "road_segment":
            self.conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return orig(self, layer, frame, **kw)

    monkeypatch.setattr(PgRun, "write_layer", killed)
    code, out = _merge_cli(mini_project)
    assert code == 1
    assert out.startswith("Error: PostGIS ") and " との接続が途中で切れました (" in out, out
    assert "the connection to PostGIS postgresql://" in out
    assert "nothing was committed. Fix: check the server and run again" in out
    assert out.rstrip().endswith(TAIL)
    monkeypatch.setattr(PgRun, "write_layer", orig)
    assert open_store(load_project(mini_project)).current_run() == first.run_id


def test_postgis_server_disk_full_has_no_sql_dump(mini_project: Path, new_pg_db,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError
    from stores import set_store_in_file
    set_store_in_file(mini_project, new_pg_db())
    first = run_merge(load_project(mini_project))

    def full(self, layer, hashes):
        raise OperationalError("INSERT INTO x VALUES " + "(1, 2), " * 600, {},
                               Exception('could not extend file "base/1/2": No space left on '
                                         "device\nHINT:  Check free disk space."))

    monkeypatch.setattr(PgRun, "write_hashes", full)
    code, out = _merge_cli(mini_project)
    assert code == 1
    assert "could not extend file \"base/1/2\": No space left on device); nothing was " \
           "committed. Fix: free disk space on the database server and run again" in out, out
    assert len(out) < 1200, len(out)
    assert open_store(load_project(mini_project)).current_run() == first.run_id
