"""Load stage: write the master atomically, keep run history, roll back.

Layout under ``merged_dir``::

    runs/<run_id>/master.gpkg      one complete master per successful run
    runs/<run_id>/manifest.json    counts, transforms, timings, lineage of that run
    runs/<run_id>/report.{html,json}
    current -> runs/<run_id>       symlink, switched with one atomic rename
    master.gpkg -> current/master.gpkg, manifest.json -> current/manifest.json

The store interface (:class:`MasterStore`, :class:`StagedRun`) is what the pipeline talks to;
:data:`etl.stores.STORES` maps a store kind to its class (GeoPackage in :mod:`etl.stores.gpkg`,
PostGIS in :mod:`etl.stores.postgis`).

Why a symlink switch: the master and its manifest change together in one ``rename(2)``, so a
killed run (or a reader during a run) sees the old pair or the new pair, never a mix. A run writes
into ``.staging-<run_id>/`` first; a failure removes it and ``current`` is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import geopandas as gpd
import pandas as pd

from config.errors import EtlError

if TYPE_CHECKING:
    from config import Project

MASTER = "master.gpkg"
MANIFEST = "manifest.json"
HASH_DIR = "hashes"


#: (errno values, message fragments) -> message key: what the environment did, not a bug.
_ENV_FAULTS: list[tuple[set[int], tuple[str, ...], str]] = [
    ({errno.ENOSPC, errno.EDQUOT}, ("no space left on device", "database or disk is full",
                                    "disk quota exceeded"), "env_disk_full"),
    ({errno.EROFS}, ("read-only file system", "readonly database"), "env_read_only"),
    ({errno.EACCES, errno.EPERM}, ("permission denied",), "env_permission"),
    (set(), ("database is locked", "database table is locked"), "env_locked"),
]


def explain_os_error(e: BaseException, path: str, setting: str = "merged_dir"
                     ) -> EtlError | None:
    """A disk-full, permission, read-only or lock fault as a bilingual, fixable error.

    Works on ``OSError`` and on the errors GDAL/SQLite raise with the same cause in their text;
    None for anything else (a real bug keeps its traceback behind ``--debug``). ``path`` is named
    when the error names no file (GDAL's often do not); ``setting`` is the key of
    ``config/project.yml`` that moves the folder (``merged_dir`` for the master, ``public_dir``
    for releases).
    """
    code = e.errno if isinstance(e, OSError) else None
    msg = str(e).lower()
    where = getattr(e, "filename", None) or path
    for codes, fragments, key in _ENV_FAULTS:
        if (code is not None and code in codes) or any(f in msg for f in fragments):
            return EtlError(key, path=str(where), setting=setting)
    if isinstance(e, OSError):
        return EtlError("env_io", path=str(where), detail=(e.strerror or str(e))[:200])
    return None


class StagedRun:
    """One run being written: invisible to readers until :meth:`commit`, gone after :meth:`abort`.

    ``artifacts`` is a local folder for the run's reports (``report.html`` ...); it becomes
    ``merged_dir/runs/<run_id>/`` on commit, whatever the store.
    """

    run_id: str
    artifacts: Path
    #: whether ``write_layer(append=True)`` adds a batch to a table (streamed layers)
    appends: bool = False

    def write_layer(self, layer: str, frame: pd.DataFrame, *, geometry_type: str | None,
                    append: bool = False) -> None:
        raise NotImplementedError

    def read_current(self, table: str) -> pd.DataFrame | None:
        """A non-spatial table of the master being replaced (None if absent): partial merges."""
        raise NotImplementedError

    #: whether :meth:`read_geometries` reads a written layer's geometries back
    reads_back: bool = False

    def read_geometries(self, layer: str, rows: Any) -> Any:
        """The geometries (a shapely array) of ``rows`` (0-based, in the order they were
        written) of a layer this run has written: a layer that joins another's geometry
        reads them back instead of holding the whole layer's geometries in memory."""
        raise NotImplementedError

    #: whether layers can be written apart (:meth:`part`) and moved in (:meth:`land`): the
    #: merge then runs independent layers in parallel processes
    parts: bool = False

    def part(self, layer: str) -> StagedRun:
        """A writer of ``layer`` alone, for a child process (see :attr:`parts`)."""
        raise NotImplementedError

    def land(self, part: StagedRun, layer: str) -> None:
        """Move ``layer`` written by ``part`` into this run."""
        raise NotImplementedError

    def drop_part(self, part: StagedRun) -> None:
        """Remove what ``part`` wrote (after :meth:`land`, or on failure)."""
        raise NotImplementedError

    def write_hashes(self, layer: str, hashes: pd.DataFrame) -> None:
        """Per-feature (id, hash) of a layer, read back by the next run's change summary."""
        raise NotImplementedError

    def write_hash_chunks(self, layer: str, chunks: Iterable[pd.DataFrame]) -> None:
        """``write_hashes`` of hashes given in pieces, in order (a streamed layer's; at least
        one id is not missing). This default joins them; a store that can write them piece
        by piece does, so a large layer's hashes are never in memory at once."""
        parts = list(chunks)
        self.write_hashes(layer, pd.concat(parts, ignore_index=True))

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

    @classmethod
    def open(cls, url: str, project: Project) -> MasterStore:
        """Construct from a store URL and the project (the registry calls this)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the master is, for messages (never with a password)."""
        raise NotImplementedError

    def explain(self, e: BaseException) -> EtlError | None:
        """An environment fault while writing (disk, permissions, lock) as a clear error."""
        return explain_os_error(e, self.describe())

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

    def iter_hashes(self, run_id: str, layer: str,
                    rows: int = 65_536) -> Iterator[pd.DataFrame] | None:
        """``read_hashes`` in pieces of ``rows``, in order (None: no hashes stored). This
        default reads them whole; a store that can read them piece by piece does."""
        df = self.read_hashes(run_id, layer)
        if df is None:
            return None
        return (df.iloc[i:i + rows] for i in range(0, len(df), rows))

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


