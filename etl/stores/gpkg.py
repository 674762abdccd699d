"""The embedded default store: one GeoPackage master per run, switched by a symlink rename."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import shapely

from config.errors import EtlError
from etl.stores.base import HASH_DIR, MANIFEST, MASTER, MasterStore, StagedRun
from etl.stores.transplant import transplant

if TYPE_CHECKING:
    from config import Project


#: rows per row group of a hashes file: pyarrow's default (``to_parquet`` of a whole frame)
HASH_ROW_GROUP = 1024 * 1024


class GpkgRun(StagedRun):
    """A GeoPackage run: ``.staging-<run>/master.gpkg`` plus reports, renamed into place."""

    def __init__(self, store: GpkgStore, run_id: str, partial: bool) -> None:
        self.store, self.run_id = store, run_id
        self.artifacts = store.local_staging(run_id)
        self.path = self.artifacts / MASTER
        self._fids: dict[str, np.ndarray] = {}
        cur = store.current / MASTER
        if partial and cur.exists():  # begin with a copy; the current master is never modified
            shutil.copyfile(cur, self.path)

    appends = True

    def write_layer(self, layer: str, frame: pd.DataFrame, *, geometry_type: str | None,
                    append: bool = False) -> None:
        """Write (or with ``append`` add a batch to) one table of the staged master."""
        kw: dict[str, Any] = {"layer": layer, "driver": "GPKG", "use_arrow": True,
                              "append": append}
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

    reads_back = True

    def read_geometries(self, layer: str, rows: Any) -> np.ndarray:
        """``rows`` (write order) of a staged layer by their feature ids (the GeoPackage's
        integer primary key, increasing in write order; looked up once per layer)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full(len(rows), None, dtype=object)
        if not len(rows):
            return out
        fids = self._fids.get(layer)
        if fids is None:
            fid_col = pyogrio.read_info(self.path, layer=layer)["fid_column"] or "fid"
            with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro",
                                                    uri=True)) as con:
                q = f'SELECT "{fid_col}" FROM "{layer}" ORDER BY "{fid_col}"'
                fids = np.fromiter((r[0] for r in con.execute(q)), dtype=np.int64)
            self._fids[layer] = fids
        want, inv = np.unique(fids[rows], return_inverse=True)
        _, got, wkb, _ = pyogrio.raw.read(self.path, layer=layer, fids=want, columns=[],
                                          return_fids=True)
        if not np.array_equal(np.asarray(got, dtype=np.int64), want):
            order = np.argsort(got)
            wkb = np.asarray(wkb, dtype=object)[order]
            assert np.array_equal(np.asarray(got, dtype=np.int64)[order], want)
        return shapely.from_wkb(np.asarray(wkb, dtype=object))[inv]

    parts = True

    def part(self, layer: str) -> GpkgRun:
        """A writer of one layer into its own GeoPackage in the run's folder (a layer merged
        in a child process; :meth:`land` moves it into the master). Reports and change
        hashes go to the run's folder as before."""
        p = copy.copy(self)
        p.path = self.artifacts / f".part-{layer}.gpkg"
        p._fids = {}
        return p

    def land(self, part: StagedRun, layer: str) -> None:
        """Move ``layer`` of ``part`` into the staged master (rows and index as stored)."""
        assert isinstance(part, GpkgRun)
        transplant(self.path, part.path, layer)

    def drop_part(self, part: StagedRun) -> None:
        assert isinstance(part, GpkgRun) and part.path != self.path
        part.path.unlink(missing_ok=True)

    def write_hashes(self, layer: str, hashes: pd.DataFrame) -> None:
        (self.artifacts / HASH_DIR).mkdir(exist_ok=True)
        hashes.to_parquet(self.artifacts / HASH_DIR / f"{layer}.parquet", index=False)

    def write_hash_chunks(self, layer: str, chunks: Iterable[pd.DataFrame]) -> None:
        """``write_hashes`` piece by piece: what ``to_parquet`` of the whole frame writes
        (the same rows, schema, pandas metadata and row groups of pyarrow's default size; a
        column chunk over one data page may be split into pages elsewhere), with at most one
        row group in memory."""
        (self.artifacts / HASH_DIR).mkdir(exist_ok=True)
        # the types pandas gives the whole frame (text ids, at least one not missing)
        schema = pa.Schema.from_pandas(pd.DataFrame(
            {"id": np.array(["-"], dtype=object), "hash": np.zeros(1, dtype=np.uint64)}),
            preserve_index=False)
        buf: list[pa.Table] = []
        held = 0
        with pq.ParquetWriter(self.artifacts / HASH_DIR / f"{layer}.parquet", schema,
                              compression="snappy") as out:
            for chunk in chunks:
                buf.append(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
                held += len(chunk)
                while held >= HASH_ROW_GROUP:
                    t = pa.concat_tables(buf)
                    out.write_table(t.slice(0, HASH_ROW_GROUP))
                    buf, held = [t.slice(HASH_ROW_GROUP)], held - HASH_ROW_GROUP
            if held:
                out.write_table(pa.concat_tables(buf))

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

    @classmethod
    def open(cls, url: str, project: Project) -> GpkgStore:
        """The registry's constructor (:data:`etl.stores.STORES`): the URL is just ``gpkg``."""
        return cls(project.merged_dir, project.config.keep_runs)

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

    def iter_hashes(self, run_id: str, layer: str,
                    rows: int = 65_536) -> Iterator[pd.DataFrame] | None:
        p = self.run_dir(run_id) / HASH_DIR / f"{layer}.parquet"
        if not p.exists():
            return None
        return (b.to_pandas() for b in pq.ParquetFile(p).iter_batches(batch_size=rows))


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
