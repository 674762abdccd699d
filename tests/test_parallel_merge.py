"""Issue 17: layers that do not depend on each other merge in parallel processes, with the
very same run as one after the other: master (schema, rows, geometry bytes, spatial index),
change hashes, manifest, report and quarantine; the same errors; nothing written on failure."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_uozu_project
from test_bounded_merge import assert_same_run
from test_example_city import copy_example

from cli import cli
from config import load_project
from config.errors import ConfigError, EtlError, SourceError
from etl import pipeline
from etl.parallel import pack_error, unpack_error
from etl.pipeline import RunErrors, run_merge
from examples.takamatsu.samples import generate as gen


def _city(root: Path, city: str) -> Path:
    if city == "uozu":
        make_uozu_project(root, scale=0.002)
    else:
        copy_example(root)
        gen.generate(root / "data" / "raw", scale=0.005)
    return root


def _run(root: Path, dst: Path, *, jobs: int, batch: int | None = None) -> Path:
    """A fresh merge of ``root`` with ``jobs`` processes, its run folder kept as ``dst``."""
    shutil.rmtree(root / "data" / "merged", ignore_errors=True)
    res = run_merge(load_project(root), batch_size=batch, jobs=jobs)
    assert res.run_dir is not None
    shutil.copytree(res.run_dir, dst)
    return dst


def _rtrees_sound(master: Path) -> list[str]:
    """The R-tree tables of a master, each checked by SQLite's ``rtreecheck``."""
    with contextlib.closing(sqlite3.connect(master)) as con:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE 'rtree_%' AND sql LIKE '%VIRTUAL%'")]
        for n in names:
            assert con.execute("SELECT rtreecheck(?)", (n,)).fetchone()[0] == "ok", n
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return names


@pytest.mark.parametrize("city", ["uozu", "takamatsu"])
def test_two_jobs_give_the_very_same_run(city: str, tmp_path: Path) -> None:
    """jobs=2 (read whole and in batches of 7) writes what jobs=1 writes, every byte that
    matters: tables, feature ids, geometries, spatial indexes, hashes, manifest, reports."""
    root = _city(tmp_path / "city", city)
    one = _run(root, tmp_path / "one", jobs=1)
    two = _run(root, tmp_path / "two", jobs=2)
    assert_same_run(one, two)
    seven = _run(root, tmp_path / "seven", jobs=2, batch=7)
    assert_same_run(one, seven)
    for d in (one, two, seven):
        assert _rtrees_sound(d / "master.gpkg")
        assert not list(d.glob(".part-*")), d  # the children's files are gone
    with contextlib.closing(sqlite3.connect(one / "master.gpkg")) as a, \
            contextlib.closing(sqlite3.connect(seven / "master.gpkg")) as b:
        q = "SELECT table_name, data_type, srs_id FROM gpkg_contents ORDER BY table_name"
        assert a.execute(q).fetchall() == b.execute(q).fetchall()
        q = "SELECT table_name, extension_name FROM gpkg_extensions ORDER BY 1, 2"
        assert a.execute(q).fetchall() == b.execute(q).fetchall()


def test_errors_pickle_as_they_are() -> None:
    """A layer's error crosses from the child process with its key, parameters and text."""
    for e in (EtlError("join_layer_failed", layer="a", other="b"),
              SourceError("source_empty", layer="a", file="f.shp", what="no features",
                          previous=3, run="r1"),
              ConfigError("spec_cycle", layers="a -> b -> a")):
        for back in (unpack_error(pack_error(e)), pickle.loads(pickle.dumps(
                pack_error(e)))):
            if isinstance(back, tuple):
                back = unpack_error(back)
            assert type(back) is type(e)
            assert (back.key, back.params, str(back)) == (e.key, e.params, str(e))
    # an OS fault keeps its errno and file name (the bilingual message names the file)
    e = PermissionError(errno.EACCES, "Permission denied", "/srv/gis/x.gpkg")
    back = unpack_error(pickle.loads(pickle.dumps(pack_error(e))))
    assert type(back) is PermissionError
    assert (back.errno, back.strerror, back.filename) == (errno.EACCES, "Permission denied",
                                                           "/srv/gis/x.gpkg")


def _over_budget(root: Path) -> str:
    """Break one layer's source so that it goes over its quarantine budget."""
    spec = root / "layers" / "water_pipe.yml"
    text = spec.read_text(encoding="utf-8")
    assert "max_quarantine" not in text
    spec.write_text(text + "max_quarantine: {share: 0.0, count: 0}\n", encoding="utf-8")
    return "water_pipe"


def _master_files(root: Path) -> dict[str, bytes]:
    cur = root / "data" / "merged" / "current"
    return {p.name: p.read_bytes() for p in sorted(cur.resolve().iterdir()) if p.is_file()}


def test_a_failing_layer_gives_the_same_errors_and_keeps_the_master(tmp_path: Path) -> None:
    root = _city(tmp_path / "city", "uozu")
    run_merge(load_project(root), jobs=1)
    before = _master_files(root)
    _over_budget(root)
    (root / "data" / "raw" / "sewer").rename(root / "data" / "raw" / "sewer_gone")
    got = {}
    for jobs in (1, 2):
        with pytest.raises(RunErrors) as ei:
            run_merge(load_project(root), jobs=jobs)
        got[jobs] = (str(ei.value), sorted(ei.value.manifest["layers"]),
                     [e.key for e in ei.value.errors])
        assert _master_files(root) == before
        assert not list((root / "data" / "merged").glob(".staging-*"))
    assert got[1] == got[2]
    assert "quarantine_budget" in got[2][2] and "join_layer_failed" in got[2][2]


def test_a_child_killed_stops_the_run_with_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that dies (killed, out of memory) stops the run: one clear message naming the
    layer, no traceback, the staged run removed, the previous master untouched."""
    root = _city(tmp_path / "city", "uozu")
    run_merge(load_project(root), jobs=1)
    before = _master_files(root)
    real = pipeline.process_layer

    def dies(ctx, spec, **kw):  # type: ignore[no-untyped-def]
        if spec.id == "shelter":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(ctx, spec, **kw)

    monkeypatch.setattr(pipeline, "process_layer", dies)
    monkeypatch.chdir(root)
    r = CliRunner().invoke(cli, ["--project", str(root), "-q", "merge", "--jobs", "2"])
    assert r.exit_code == 1, r.output
    assert "shelter" in r.output and "--jobs 1" in r.output
    assert "Traceback" not in r.output
    assert _master_files(root) == before
    assert not list((root / "data" / "merged").glob(".staging-*"))


def test_a_child_crash_keeps_its_error(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected exception in a child reaches the parent as itself (and the run stops)."""
    root = _city(tmp_path / "city", "uozu")
    real = pipeline.process_layer

    def boom(ctx, spec, **kw):  # type: ignore[no-untyped-def]
        if spec.id == "shelter":
            raise ZeroDivisionError("planted")
        return real(ctx, spec, **kw)

    monkeypatch.setattr(pipeline, "process_layer", boom)
    with pytest.raises(ZeroDivisionError, match="planted"):
        run_merge(load_project(root), jobs=2)
    assert not (root / "data" / "merged" / "current").exists()
    assert not list((root / "data" / "merged").glob(".staging-*"))


def test_validate_with_two_jobs_prints_what_one_prints(tmp_path: Path) -> None:
    root = _city(tmp_path / "city", "uozu")

    def outputs(code: int) -> list[str]:
        outs = []
        for jobs in ("1", "2"):
            r = CliRunner().invoke(cli, ["--project", str(root), "-q", "validate",
                                         "--jobs", jobs])
            assert r.exit_code == code, r.output
            outs.append(r.output)
        return outs

    outs = outputs(0)
    assert outs[0] == outs[1]
    lid = _over_budget(root)
    outs = outputs(1)
    assert outs[0] == outs[1]
    assert lid in outs[1] and "quarantine" in outs[1]
