"""Load stage: write the master atomically, keep run history, roll back.

Layout under ``merged_dir``::

    runs/<run_id>/master.gpkg      one complete master per successful run
    runs/<run_id>/manifest.json    counts, transforms, timings, lineage of that run
    runs/<run_id>/report.{html,json}
    current -> runs/<run_id>       symlink, switched with one atomic rename
    master.gpkg -> current/master.gpkg, manifest.json -> current/manifest.json

The store interface (:class:`MasterStore`, :class:`StagedRun`) is what the pipeline talks to;
``STORES`` maps a store kind to its class (``gpkg`` here, ``postgresql`` in :mod:`etl.pgstore`).

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import geopandas as gpd
import pandas as pd
import pyogrio

from etl.errors import EtlError

if TYPE_CHECKING:
    from config import Project

MASTER = "master.gpkg"
MANIFEST = "manifest.json"
HASH_DIR = "hashes"


class StagedRun:
    """One run being written: invisible to readers until :meth:`commit`, gone after :meth:`abort`.

    ``artifacts`` is a local folder for the run's reports (``report.html`` ...); it becomes
    ``merged_dir/runs/<run_id>/`` on commit, whatever the store.
    """

    run_id: str
    artifacts: Path

    def write_layer(self, layer: str, frame: pd.DataFrame, *, geometry_type: str | None) -> None:
        raise NotImplementedError

    def read_current(self, table: str) -> pd.DataFrame | None:
        """A non-spatial table of the master being replaced (None if absent): partial merges."""
        raise NotImplementedError

    def write_hashes(self, layer: str, hashes: pd.DataFrame) -> None:
        """Per-feature (id, hash) of a layer, read back by the next run's change summary."""
        raise NotImplementedError

    def commit(self, manifest: dict[str, Any]) -> Path:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class MasterStore:
    """Where merged masters live: one immutable master per run plus a ``current`` pointer."""

    kind: ClassVar[str]

    def __init__(self, merged_dir: Path, keep_runs: int = 5) -> None:
        self.dir = merged_dir
        self.runs = merged_dir / "runs"
        self.keep_runs = keep_runs

    def describe(self) -> str:
        """Where the master is, for messages (never with a password)."""
        raise NotImplementedError

    def run_dir(self, run_id: str) -> Path:
        """The run's local artifacts folder (reports)."""
        return self.runs / run_id

    # ---- reading
    def current_run(self) -> str | None:
        raise NotImplementedError

    def list_runs(self) -> list[dict[str, Any]]:
        """Manifests of stored runs, newest first."""
        raise NotImplementedError

    def manifest(self, run_id: str | None = None) -> dict[str, Any] | None:
        """The manifest of ``run_id`` (default: the current run), None if there is none."""
        raise NotImplementedError

    def layers(self, run_id: str | None = None) -> list[str]:
        raise NotImplementedError

    def columns(self, layer: str, run_id: str | None = None) -> list[str] | None:
        """Column names of a stored layer (geometry excluded), None if the layer is absent."""
        raise NotImplementedError

    def read_layer(self, layer: str, columns: list[str] | None = None,
                   run_id: str | None = None) -> gpd.GeoDataFrame:
        raise NotImplementedError

    def read_hashes(self, run_id: str, layer: str) -> pd.DataFrame | None:
        raise NotImplementedError

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

    def begin(self, run_id: str, *, partial: bool) -> StagedRun:
        """Start writing run ``run_id`` (``partial``: layers not written are carried over)."""
        raise NotImplementedError

    def local_staging(self, run_id: str) -> Path:
        """A fresh local folder for a run's files; leftovers of killed runs are removed."""
        for old in self.dir.glob(".staging-*"):
            shutil.rmtree(old, ignore_errors=True)
        st = self.dir / f".staging-{run_id}"
        st.mkdir(parents=True)
        return st

    def publish_artifacts(self, staging: Path, run_id: str,
                          manifest: dict[str, Any]) -> Path:
        """Move a committed run's local files to ``runs/<run_id>/`` (manifest copy included)."""
        rd = self.run_dir(run_id)
        self.runs.mkdir(parents=True, exist_ok=True)
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2),
                                        encoding="utf-8")
        for p in staging.rglob("*"):
            if p.is_file():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
        os.replace(staging, rd)
        return rd

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
        self._switch(run_id)
        return run_id

    def _switch(self, run_id: str) -> None:
        raise NotImplementedError


class GpkgRun(StagedRun):
    """A GeoPackage run: ``.staging-<run>/master.gpkg`` plus reports, renamed into place."""

    def __init__(self, store: GpkgStore, run_id: str, partial: bool) -> None:
        self.store, self.run_id = store, run_id
        self.artifacts = store.local_staging(run_id)
        self.path = self.artifacts / MASTER
        cur = store.current / MASTER
        if partial and cur.exists():  # begin with a copy; the current master is never modified
            shutil.copyfile(cur, self.path)

    def write_layer(self, layer: str, frame: pd.DataFrame, *, geometry_type: str | None) -> None:
        kw: dict[str, Any] = {"layer": layer, "driver": "GPKG", "use_arrow": True}
        if isinstance(frame, gpd.GeoDataFrame) and geometry_type and geometry_type != "None":
            kw["geometry_type"] = geometry_type
            kw["layer_options"] = {"SPATIAL_INDEX": "YES"}
        elif isinstance(frame, gpd.GeoDataFrame):
            frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        with _gdal_config(OGR_SQLITE_SYNCHRONOUS="OFF"):
            pyogrio.write_dataframe(frame, self.path, **kw)

    def read_current(self, table: str) -> pd.DataFrame | None:
        cur = self.store.current / MASTER
        if not cur.exists() or table not in {str(n) for n, _ in pyogrio.list_layers(cur)}:
            return None
        return pyogrio.read_dataframe(cur, layer=table, read_geometry=False)

    def write_hashes(self, layer: str, hashes: pd.DataFrame) -> None:
        (self.artifacts / HASH_DIR).mkdir(exist_ok=True)
        hashes.to_parquet(self.artifacts / HASH_DIR / f"{layer}.parquet", index=False)

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Move the staged run into history and switch ``current`` to it atomically."""
        rd = self.store.publish_artifacts(self.artifacts, self.run_id, manifest)
        self.store._switch(self.run_id)
        self.store._prune()
        return rd

    def abort(self) -> None:
        shutil.rmtree(self.artifacts, ignore_errors=True)


class GpkgStore(MasterStore):
    """The embedded default store: one GeoPackage per run, switched by a symlink."""

    kind = "gpkg"

    @property
    def current(self) -> Path:
        return self.dir / "current"

    @property
    def master_path(self) -> Path:
        return self.dir / MASTER

    def describe(self) -> str:
        return str(self.master_path)

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
        out = []
        if self.runs.exists():
            for d in self.runs.iterdir():
                m = d / MANIFEST
                if m.exists() and (d / MASTER).exists():
                    out.append(json.loads(m.read_text(encoding="utf-8")))
        return sorted(out, key=lambda m: m["run_id"], reverse=True)

    def begin(self, run_id: str, *, partial: bool) -> GpkgRun:
        return GpkgRun(self, run_id, partial)

    def _switch(self, run_id: str) -> None:
        rd = self.run_dir(run_id)
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

    def _path(self, run_id: str | None) -> Path:
        """The master of ``run_id`` (default: the current one, resolved once)."""
        rid = run_id or self.current_run()
        return self.run_dir(rid) / MASTER if rid else self.current / MASTER

    def read_layer(self, layer: str, columns: list[str] | None = None,
                   run_id: str | None = None) -> gpd.GeoDataFrame:
        path = self._path(run_id)
        if not path.exists():
            raise EtlError("no_master")
        return pyogrio.read_dataframe(path, layer=layer, columns=columns, use_arrow=True)

    def layers(self, run_id: str | None = None) -> list[str]:
        path = self._path(run_id)
        if not path.exists():
            return []
        return [str(n) for n, _ in pyogrio.list_layers(path)]

    def columns(self, layer: str, run_id: str | None = None) -> list[str] | None:
        if layer not in self.layers(run_id):
            return None
        return [str(f) for f in pyogrio.read_info(self._path(run_id), layer=layer)["fields"]]

    def read_hashes(self, run_id: str, layer: str) -> pd.DataFrame | None:
        p = self.run_dir(run_id) / HASH_DIR / f"{layer}.parquet"
        return pd.read_parquet(p) if p.exists() else None


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


#: Store kinds by URL scheme; :mod:`etl.pgstore` adds ``postgresql``.
STORES: dict[str, Callable[[str, Project], MasterStore]] = {
    "gpkg": lambda url, project: GpkgStore(project.merged_dir, project.config.keep_runs),
}


def open_store(project: Project, url: str | None = None) -> MasterStore:
    """The master store in effect (``url`` > ``UOZU_GIS_STORE`` > config; see etl.store_url)."""
    from etl import store_url

    url = store_url.resolve(project.config.store, url)
    kind = store_url.scheme(url)
    if kind == "postgresql" and kind not in STORES:
        import etl.pgstore  # noqa: F401  (registers itself; psycopg2 only loaded when used)
    if kind not in STORES:
        raise EtlError("store_unknown", store=store_url.redact(url))
    return STORES[kind](url, project)
