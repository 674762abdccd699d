"""Load stage: write the master atomically, keep run history, roll back.

Layout under ``merged_dir``::

    runs/<run_id>/master.gpkg      one complete master per successful run
    runs/<run_id>/manifest.json    counts, transforms, timings, lineage of that run
    runs/<run_id>/report.{html,json}
    current -> runs/<run_id>       symlink, switched with one atomic rename
    master.gpkg -> current/master.gpkg, manifest.json -> current/manifest.json

Why a symlink switch: the master and its manifest change together in one ``rename(2)``, so a
killed run (or a reader during a run) sees the old pair or the new pair, never a mix. A run writes
into ``.staging-<run_id>/`` first; a failure removes it and ``current`` is untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from etl.errors import EtlError

MASTER = "master.gpkg"
MANIFEST = "manifest.json"


class GpkgStore:
    """The embedded default store: one GeoPackage per run, switched by a symlink."""

    def __init__(self, merged_dir: Path, keep_runs: int = 5) -> None:
        self.dir = merged_dir
        self.runs = merged_dir / "runs"
        self.keep_runs = keep_runs

    # ---- paths
    @property
    def current(self) -> Path:
        return self.dir / "current"

    @property
    def master_path(self) -> Path:
        return self.dir / MASTER

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def current_run(self) -> str | None:
        if not self.current.is_symlink():
            return None
        return Path(os.readlink(self.current)).name

    def manifest(self, run_id: str | None = None) -> dict[str, Any] | None:
        rid = run_id or self.current_run()
        if rid is None:
            return None
        p = self.run_dir(rid) / MANIFEST
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None

    def list_runs(self) -> list[dict[str, Any]]:
        """Manifests of stored runs, newest first (runs whose files were pruned are omitted)."""
        out = []
        if self.runs.exists():
            for d in self.runs.iterdir():
                m = d / MANIFEST
                if m.exists() and (d / MASTER).exists():
                    out.append(json.loads(m.read_text(encoding="utf-8")))
        return sorted(out, key=lambda m: m["run_id"], reverse=True)

    # ---- writing
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One merge at a time per merged folder (a second one waits)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def staging(self, run_id: str) -> Path:
        for old in self.dir.glob(".staging-*"):  # leftovers of killed runs
            shutil.rmtree(old, ignore_errors=True)
        st = self.dir / f".staging-{run_id}"
        st.mkdir(parents=True)
        return st

    def start_from_current(self, staging: Path) -> Path:
        """Partial merge: begin with a copy of the current master (never modified in place)."""
        dst = staging / MASTER
        cur = self.current / MASTER
        if cur.exists():
            shutil.copyfile(cur, dst)
        return dst

    def write_layer(self, path: Path, layer: str, frame: pd.DataFrame, *,
                    geometry_type: str | None) -> None:
        kw: dict[str, Any] = {"layer": layer, "driver": "GPKG", "use_arrow": True}
        if isinstance(frame, gpd.GeoDataFrame) and geometry_type and geometry_type != "None":
            kw["geometry_type"] = geometry_type
            kw["layer_options"] = {"SPATIAL_INDEX": "YES"}
            frame = frame.copy() if frame.crs is None else frame
        elif isinstance(frame, gpd.GeoDataFrame):
            frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        with _gdal_config(OGR_SQLITE_SYNCHRONOUS="OFF"):
            pyogrio.write_dataframe(frame, path, **kw)

    def commit(self, staging: Path, run_id: str, manifest: dict[str, Any]) -> Path:
        """Move the staged run into history and switch ``current`` to it atomically."""
        rd = self.run_dir(run_id)
        self.runs.mkdir(parents=True, exist_ok=True)
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2),
                                        encoding="utf-8")
        for p in staging.rglob("*"):
            if not p.is_file():
                continue
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(staging, rd)
        self._switch(rd)
        self._prune()
        return rd

    def _switch(self, rd: Path) -> None:
        tmp = self.dir / ".current.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.path.relpath(rd, self.dir), tmp)
        os.replace(tmp, self.current)
        for name in (MASTER, MANIFEST):
            link = self.dir / name
            if not link.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    link.unlink()
                os.symlink(f"current/{name}", link)

    def _prune(self) -> None:
        runs = self.list_runs()
        cur = self.current_run()
        for m in runs[self.keep_runs:]:
            if m["run_id"] != cur:
                shutil.rmtree(self.run_dir(m["run_id"]), ignore_errors=True)

    def rollback(self, run_id: str | None = None) -> str:
        """Point ``current`` back at a stored run (default: the one before the current)."""
        runs = [m["run_id"] for m in self.list_runs()]
        cur = self.current_run()
        if run_id is None:
            older = [r for r in runs if r != cur and (cur is None or r < cur)]
            if not older:
                raise EtlError("no_run", run="(previous)", known=", ".join(runs) or "-")
            run_id = older[0]
        if run_id not in runs:
            raise EtlError("no_run", run=run_id, known=", ".join(runs) or "-")
        self._switch(self.run_dir(run_id))
        return run_id

    def read_layer(self, layer: str, columns: list[str] | None = None,
                   run_id: str | None = None) -> gpd.GeoDataFrame:
        path = (self.run_dir(run_id) if run_id else self.current) / MASTER
        if not path.exists():
            raise EtlError("no_master")
        return pyogrio.read_dataframe(path, layer=layer, columns=columns, use_arrow=True)

    def layers(self, run_id: str | None = None) -> list[str]:
        path = (self.run_dir(run_id) if run_id else self.current) / MASTER
        if not path.exists():
            return []
        return [str(n) for n, _ in pyogrio.list_layers(path)]


@contextlib.contextmanager
def _gdal_config(**options: str) -> Iterator[None]:
    """GDAL config options for the duration of one write (the previous values are restored).

    ``OGR_SQLITE_SYNCHRONOUS=OFF``: SQLite does not fsync after every transaction of a staged
    master. Durability is unchanged: ``commit`` fsyncs every staged file before the atomic
    switch, and a run that dies before that leaves only a staging folder that is thrown away.
    """
    old = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(old)


STORES: dict[str, type[GpkgStore]] = {"gpkg": GpkgStore}


def open_store(kind: str, merged_dir: Path, keep_runs: int = 5) -> GpkgStore:
    """Store registry lookup (``gpkg`` is the embedded default)."""
    scheme = kind.split(":", 1)[0]
    if scheme not in STORES:
        raise EtlError("unknown_layer_arg", layer=kind, known=", ".join(STORES))
    return STORES[scheme](merged_dir, keep_runs)
