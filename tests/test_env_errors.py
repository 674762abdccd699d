"""Environment faults are errors a city's staff can act on: the path or server and the fix,
in Japanese and English; never "internal error", never a traceback or an SQL statement; and the
previous master stays current.

Disk full and a read-only folder are real (a small tmpfs mounted over ``data/merged`` or
``data/public``); a PostGIS that goes away is a real terminated backend (during a merge, and
during a publish both inside and outside the public tables' writes); the rest are the errors
GDAL, SQLite and the OS raise, injected where the store writes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
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


def _merge_cli(root: Path, command: str = "merge") -> tuple[int, str]:
    res = CliRunner().invoke(cli.cli, ["--project", str(root), "-q", command])
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
    """Use up every free byte of the file system holding ``folder`` (unbuffered: a last partial
    block left in a buffer would raise ENOSPC at close, outside the ``suppress``)."""
    with open(folder / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
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
        assert (f"{merged}/.lock に書き込めません: 読取専用のファイルシステムです。修正: "
                "書き込めるフォルダを設定する (config/project.yml の merged_dir) / "
                f"cannot write {merged}/.lock: the file system is read-only. Fix: configure a "
                "writable folder (merged_dir in config/project.yml)") in out, out
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


# ---------------------------------------------------------------- publish


def _publish_cli(root: Path) -> tuple[int, str]:
    return _merge_cli(root, "publish")


def _unchanged(current: str) -> str:
    return (f"公開に失敗しました。現在の公開版 ({current}) は変更していません / publication "
            f"failed; the current release ({current}) is unchanged")


def _release_state(public: Path) -> tuple[str | None, list[str]]:
    from publish.build import release
    return release.current_id(public), sorted(p.name for p in (public / "releases").iterdir())


def test_publish_disk_full_and_read_only_for_real(mini_project: Path) -> None:
    """The release folder's disk fills up mid-publish (GDAL's error names no file): the
    message names the release folder and the fix; read-only names ``public_dir``."""
    from publish.build import publish
    run_merge(load_project(mini_project))
    public = mini_project / "data/public"
    with _tmpfs(public, "16m"):
        first = publish(load_project(mini_project))
        before = _release_state(public)
        _fill(public)
        code, out = _publish_cli(mini_project)
        assert code == 1
        m = re.fullmatch(
            r"Error: (\S+) に書き込めません: ディスクがいっぱいです。修正: 空き容量を作ってから"
            r"再実行する / cannot write (\S+): the disk is full\. Fix: free disk space and run "
            r"again\n(.*)\n", out)
        assert m, out
        assert m[1] == m[2] and m[1].startswith(f"{public}/releases/"), out
        assert m[1] != "-" and m[3] == _unchanged(first.release_id)
        assert _release_state(public) == before  # nothing half-written left behind
        (public / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(public)], check=True)
        code, out = _publish_cli(mini_project)
        assert code == 1
        assert out == (
            f"Error: {public}/.publish.lock に書き込めません: 読取専用のファイルシステムです。"
            "修正: 書き込めるフォルダを設定する (config/project.yml の public_dir) / cannot "
            f"write {public}/.publish.lock: the file system is read-only. Fix: configure a "
            "writable folder (public_dir in config/project.yml)\n"
            f"{_unchanged(first.release_id)}\n"), out
        assert _release_state(public) == before


@pytest.mark.parametrize("where", ["write", "grant", "schema"])
def test_postgis_gone_during_publish(mini_project: Path, new_pg_db,
                                     monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """The server ends the publish's connection inside a public table's write, while granting
    the reader role, or while creating the release schema: the message names the server (no
    password), says nothing was committed and the fix; no SQL, no "internal error"; the
    current release and its schema stay."""
    from sqlalchemy import text
    from stores import set_store_in_file

    from etl.stores.url import redact
    from publish.build import pgpublic, publish
    url = new_pg_db()
    set_store_in_file(mini_project, url)
    run_merge(load_project(mini_project))
    first = publish(load_project(mini_project))
    public = mini_project / "data/public"
    before = _release_state(public)

    def kill(conn) -> None:
        """Terminate the publish's backend from another session (as an admin or a crash
        would): its next statement finds the connection gone."""
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with open_store(load_project(mini_project)).engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})

    if where == "write":
        orig_write = pgpublic.PgPublicWriter.write

        def write(self, spec, table):
            if spec.id == "road_segment":
                kill(self.conn)
            return orig_write(self, spec, table)
        monkeypatch.setattr(pgpublic.PgPublicWriter, "write", write)
    elif where == "grant":
        orig_grant = pgpublic.PgPublicWriter.grant

        def grant(self):
            kill(self.conn)
            return orig_grant(self)
        monkeypatch.setattr(pgpublic.PgPublicWriter, "grant", grant)
    else:
        orig_reader = pgpublic.PgPublicWriter._ensure_reader

        def ensure_reader(self):
            orig_reader(self)
            kill(self.conn)
        monkeypatch.setattr(pgpublic.PgPublicWriter, "_ensure_reader", ensure_reader)
    code, out = _publish_cli(mini_project)
    assert code == 1
    store = redact(url)
    m = re.fullmatch(
        rf"Error: PostGIS {re.escape(store)} との接続が途中で切れました \((.+)\)。何も確定して"
        r"いません。修正: サーバーの状態を確認して再実行する / the connection to PostGIS "
        rf"{re.escape(store)} was lost \((.+)\); nothing was committed\. Fix: check the server "
        r"and run again\n(.*)\n", out)
    assert m, out
    assert m[1] == m[2] and m[1] in ("terminating connection due to administrator command",
                                     "server closed the connection unexpectedly"), out
    assert m[3] == _unchanged(first.release_id)
    monkeypatch.undo()
    assert _release_state(public) == before
    with open_store(load_project(mini_project)).engine.connect() as conn:
        schemas = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE "
                                    "'%\\_pub\\_%'")).scalars().all()
    assert schemas == [pgpublic.public_schema(load_project(mini_project).config.postgis
                                              .schema_prefix, first.release_id)]


@pytest.mark.parametrize("detail,key", [
    ("server closed the connection unexpectedly", "lost"),
    ('could not extend file "base/1/2": No space left on device', "full"),
])
def test_cli_explains_a_database_fault_no_command_mapped(
        mini_project: Path, new_pg_db, monkeypatch: pytest.MonkeyPatch, detail: str,
        key: str) -> None:
    """The CLI's last line of defence asks the store to explain a database error any command
    let through (here ``rollback``): the server and the fix, never "internal error" nor SQL."""
    from sqlalchemy.exc import OperationalError
    from stores import set_store_in_file

    from etl.stores.base import MasterStore
    from etl.stores.url import redact
    url = new_pg_db()
    set_store_in_file(mini_project, url)

    def gone(self, run_id=None):
        raise OperationalError("SELECT run_id FROM gis_meta.runs", {}, Exception(detail))

    monkeypatch.setattr(MasterStore, "rollback", gone)
    code, out = _merge_cli(mini_project, "rollback")
    assert code == 1
    store = redact(url)
    if key == "lost":
        assert out == (f"Error: PostGIS {store} との接続が途中で切れました ({detail})。何も確定して"
                       "いません。修正: サーバーの状態を確認して再実行する / the connection to "
                       f"PostGIS {store} was lost ({detail}); nothing was committed. Fix: check "
                       "the server and run again\n"), out
    else:
        assert out == (f"Error: PostGIS {store} のディスクがいっぱいです ({detail})。何も確定して"
                       "いません。修正: データベースサーバーの空き容量を作ってから再実行する / the "
                       f"disk of PostGIS {store} is full ({detail}); nothing was committed. Fix: "
                       "free disk space on the database server and run again\n"), out


def test_postgis_refuses_a_public_table(mini_project: Path, new_pg_db,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Any other database error writing a public table names the layer, the server and the
    fix (not the SQL); the current release stays."""
    from sqlalchemy.exc import ProgrammingError
    from stores import set_store_in_file

    from etl.stores.url import redact
    from publish.build import pgpublic, publish
    url = new_pg_db()
    set_store_in_file(mini_project, url)
    run_merge(load_project(mini_project))
    first = publish(load_project(mini_project))
    before = _release_state(mini_project / "data/public")
    orig = pgpublic.write_frame

    def refuse(conn, schema, table, frame, **kw):
        if table == "road_segment":
            raise ProgrammingError("CREATE TABLE x (...)", {},
                                   Exception(f"permission denied for schema {schema}"))
        return orig(conn, schema, table, frame, **kw)

    monkeypatch.setattr(pgpublic, "write_frame", refuse)
    code, out = _publish_cli(mini_project)
    assert code == 1
    m = re.fullmatch(r".*permission denied for schema (\w+)。.*", out.splitlines()[0])
    assert m, out
    store, detail = redact(url), f"permission denied for schema {m[1]}"
    assert out == (
        f"Error: PostGIS {store} の公開ストアへの書込みに失敗しました (レイヤ 'road_segment'): "
        f"{detail}。修正: サーバーのログと接続ユーザーの権限を確認して再実行する / writing the "
        f"PostGIS public store on {store} failed (layer 'road_segment'): {detail}. Fix: check "
        "the server's log and the connecting user's rights, then run again\n"
        f"{_unchanged(first.release_id)}\n"), out
    assert m[1].startswith(load_project(mini_project).config.postgis.schema_prefix + "_pub_")
    assert _release_state(mini_project / "data/public") == before


def test_postgis_gone_while_tidying_up_after_the_switch(mini_project: Path, new_pg_db,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Once ``current`` points at the new release, a server lost while dropping old release
    schemas does not fail the publish: exit 0, the new release is current, and a warning
    names the server and says the next publish drops them."""
    from sqlalchemy.exc import OperationalError
    from stores import set_store_in_file

    from etl.stores.url import redact
    from publish.build import pgpublic, release
    url = new_pg_db()
    set_store_in_file(mini_project, url)
    run_merge(load_project(mini_project))

    def gone(project, url, keep):
        raise OperationalError("DROP SCHEMA x CASCADE", {},
                               Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(pgpublic, "drop_except", gone)
    res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "-q", "--json",
                                       "publish"])
    assert res.exit_code == 0, res.output
    rid = json.loads(res.stdout)["release"]
    assert release.current_id(mini_project / "data/public") == rid
    store = redact(url)
    assert res.stderr == (
        f"Warning: 公開版 {rid} に切り替えました。PostGIS {store} の古い公開スキーマは削除"
        "できませんでした (server closed the connection unexpectedly)。次回の公開で削除します"
        f" / switched to release {rid}; old public schemas on PostGIS {store} could not be "
        "dropped (server closed the connection unexpectedly); the next publish drops them\n")
