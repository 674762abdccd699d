"""Open data per public layer, regenerated with each release: GeoPackage, GeoJSON and CSV.

Read from the release's public store only (so a download holds exactly what the API serves),
written with GDAL (pyogrio) into ``<release>/opendata/``:

* ``<layer>.gpkg``, ``<layer>.geojson`` (RFC 7946, CRS84) with the API's column names;
* ``<layer>.csv``: UTF-8 with BOM (Excel opens it as UTF-8), Japanese column titles from the
  spec, ``緯度``/``経度`` for points, ``WKT`` (CRS84) for lines and polygons;
* where the city maps a layer to a 自治体標準オープンデータセット layout (``opendata:`` of the
  layer's spec; the layouts are data in ``opendata_standards.yml``), also the standard's
  files, e.g. ``<city_code>_evacuation_space.csv`` (指定緊急避難場所一覧), its columns in its
  order;
* ``README.txt`` (ja/en: every file, its 出典 and licence) and ``index.json`` (the same for
  programs and the landing page: title, counts, data date, bytes, sha256).

Licence and 出典 also travel inside the GeoPackage and GeoJSON (layer description).

Each layer's own files are streamed (issue 17): the public GeoPackage is read in Arrow batches of
:data:`BATCH_ROWS` rows, and each batch appended to the GeoPackage and the CSV (one pass) or to
the GeoJSON (another pass) through one GDAL Arrow stream per file, so memory does not grow with
the layer. GDAL holds the GIL while it writes, so the passes of all layers run in two forked
processes (:func:`process_pool`) when there is enough to write. The files are those of the
whole-layer path (``batch_rows=None``, also the fallback for a layer whose rows do not allow
it): :func:`store_frames` gives every batch the dtypes a whole-layer read gives (an integer
column with a NULL anywhere is float, a boolean one object), and the layer's geometry type is
taken from the store before writing and checked against the rows after. CSV and GeoJSON are
byte for byte the same; a GeoPackage differs only in the SQLite header's commit counters (GDAL
commits once per batch). The standard layouts stay whole: they are lists of sites (shelters),
small by nature.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
import yaml
from pydantic import Field
from pyogrio.raw import write_arrow

from config import Project
from config.errors import ConfigError
from config.messages import both
from config.models import I18nText, LayerSpec, OpenDataConfig, OpenDataLayout, Strict
from etl.readers import file_hash
from etl.sql import qi
from publish.build.public_store import FRAME_GEOMETRY, arrow_batches, batch_frame, plan_layer
from publish.model import DECIMALS, ROWID_COLUMN, STORE_CRS, LayerPlan

OPENDATA_DIR = "opendata"
STANDARDS_FILE = Path(__file__).with_name("opendata_standards.yml")
CSV_ENCODING = "utf-8-sig"  # UTF-8 with BOM
LAT, LON, WKT = "緯度", "経度", "WKT"
#: rows per batch of the streamed downloads: memory follows this, not the layer's size
BATCH_ROWS = 10_000
#: the geometry name a whole-layer ``read_dataframe`` gives (the downloads' geometry column)
GEOMETRY = FRAME_GEOMETRY
#: layer geometry types a stream can declare before its first row (else: the whole path)
STREAM_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString",
                "MultiPolygon"}
#: dtypes (``pyogrio.read_info``) whose batches convert like the whole layer
STREAM_DTYPES = {"object", "bool", "int16", "int32", "int64", "float32", "float64"}
#: processes writing the streamed downloads side by side (GDAL holds the GIL while it writes,
#: so threads would not overlap): at most this many, at most the CPUs this process may use
WORKERS = 2
#: public rows from which the downloads are written by :data:`WORKERS` processes (below it the
#: start of the pool costs more than it saves)
POOL_ROWS = 50_000


class Standard(Strict):
    """One layout of the 自治体標準オープンデータセット (engine data, not city config)."""

    number: str  # the sheet number of the standard ("03")
    title: I18nText
    file: str  # file stem template: {city_code}
    standard: I18nText
    url: str
    geometry: str
    auto: dict[str, str] = Field(default_factory=dict)  # column -> city_code | lat | lon
    columns: list[str]


def standards() -> dict[str, Standard]:
    data = yaml.safe_load(STANDARDS_FILE.read_text(encoding="utf-8"))
    return {k: Standard.model_validate(v) for k, v in data.items()}


@dataclass(frozen=True)
class Download:
    """One written file."""

    layer: str
    format: str  # gpkg | geojson | csv
    path: Path
    features: int
    standard: str | None = None  # key of the standard layout, if any

    def entry(self) -> dict[str, Any]:
        digest, size = file_digest(self.path)
        return {"file": self.path.name, "format": self.format, "features": self.features,
                "bytes": size, "sha256": digest,
                **({"standard": self.standard} if self.standard else {})}


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size of a download: the ETL's source hash (:func:`etl.readers.file_hash`,
    read in chunks) of this one file, for the catalogue."""
    return file_hash([path]), path.stat().st_size


def _credit(spec: LayerSpec) -> dict[str, str]:
    """The 出典 and licence line of a layer (ja / en)."""
    return both("opendata_credit", source_ja=spec.attribution.ja, source_en=spec.attribution.en,
                license=spec.license, url=spec.license_url)


def _titles(plan: LayerPlan) -> dict[str, str]:
    """Column -> Japanese title (unique: a repeated title gets its column name added)."""
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for c in plan.columns:
        t = c.title.ja if c.title else c.name
        seen[t] = seen.get(t, 0) + 1
    for c in plan.columns:
        t = c.title.ja if c.title else c.name
        out[c.name] = t if seen[t] == 1 else f"{t} ({c.name})"
    return out


def _is_point(gdf: gpd.GeoDataFrame) -> bool:
    types = set(gdf.geometry.geom_type.dropna())
    return bool(types) and types <= {"Point"}


def _lonlat(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    xy = shapely.get_coordinates(gdf.geometry.values)
    return np.round(xy[:, 0], DECIMALS), np.round(xy[:, 1], DECIMALS)


def _csv_text(values: pd.Series) -> pd.Series:
    """Values as the CSV shows them: booleans as 1/0 (true/false is not Japanese), NULL empty."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map({True: "1", False: "0"}).astype("string")
    return values.astype("string")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """UTF-8 with BOM, CRLF line ends (what Excel writes and expects), no index."""
    frame.to_csv(path, index=False, encoding=CSV_ENCODING, lineterminator="\r\n")


def _write_geo(gdf: gpd.GeoDataFrame, path: Path, layer: str, description: str,
               fmt: str) -> None:
    pyogrio.write_dataframe(gdf, path, layer=layer, use_arrow=True,
                            **_geo_options(layer, description, fmt))


def _geo_options(layer: str, description: str, fmt: str) -> dict[str, Any]:
    """Driver and options of a download (GeoPackage or GeoJSON), whole or streamed."""
    if fmt == "gpkg":
        return {"driver": "GPKG", "dataset_options": {"VERSION": "1.3"},
                "layer_options": {"DESCRIPTION": description, "IDENTIFIER": layer,
                                  "FID": ROWID_COLUMN}}
    return {"driver": "GeoJSON",
            "layer_options": {"RFC7946": "YES", "DESCRIPTION": description,
                              "COORDINATE_PRECISION": str(DECIMALS), "WRITE_NAME": "YES"}}


def _csv_table(gdf: gpd.GeoDataFrame, names: list[str], titles: dict[str, str], point: bool
               ) -> pd.DataFrame:
    """The CSV rows of a layer (or of a batch of it): titled text columns, then 緯度/経度 for a
    point layer, else WKT."""
    table = pd.DataFrame({titles[c]: _csv_text(gdf[c]) for c in names})
    if point:
        lon, lat = _lonlat(gdf)
        table[LAT], table[LON] = lat, lon
    else:
        table[WKT] = shapely.to_wkt(gdf.geometry.values, rounding_precision=DECIMALS)
    return table


def _layer_files(spec: LayerSpec, out: Path) -> tuple[str, dict[str, Path]]:
    desc = " / ".join(_credit(spec).values())
    return (f"{spec.title.ja} / {spec.title.en}. {desc}",
            {fmt: out / f"{spec.id}.{fmt}" for fmt in ("gpkg", "geojson", "csv")})


def layer_downloads(project: Project, store: Path, lid: str, out: Path,
                    batch_rows: int | None = BATCH_ROWS) -> list[Download]:
    """The layer in its own columns: GeoPackage, GeoJSON, CSV.

    Streamed in batches of ``batch_rows`` (in this process) where the layer allows it;
    ``batch_rows=None`` (and the fallback): the whole layer at once. Same bytes either way.
    """
    tasks = _stream_tasks(project, store, lid, out, batch_rows) if batch_rows else []
    return _downloads(project, store, lid, out, tasks, [_stream_task(t) for t in tasks])


def _downloads(project: Project, store: Path, lid: str, out: Path, tasks: list[_Task],
               written: list[_Written]) -> list[Download]:
    """A layer's own files: those its streamed ``tasks`` wrote where they are those of the
    whole-layer path (:func:`_as_whole`), else written whole now."""
    if tasks and _as_whole(tasks, written):
        return [Download(lid, fmt, tasks[0].paths[fmt], tasks[0].shape.rows)
                for fmt in ("gpkg", "geojson", "csv")]
    return _whole_downloads(project, store, lid, out)


def _whole_downloads(project: Project, store: Path, lid: str, out: Path) -> list[Download]:
    spec = project.specs[lid]
    plan = plan_layer(spec, project.codelists)
    gdf = pyogrio.read_dataframe(store, layer=lid, use_arrow=True)
    gdf = gdf[[*plan.names, gdf.geometry.name]]
    desc, paths = _layer_files(spec, out)
    for path in paths.values():  # a fallback after a stream: new files, as in a new release
        path.unlink(missing_ok=True)
    files = []
    for fmt in ("gpkg", "geojson"):
        _write_geo(gdf, paths[fmt], lid, desc, fmt)
        files.append(Download(lid, fmt, paths[fmt], len(gdf)))
    table = _csv_table(gdf, plan.names, _titles(plan), _is_point(gdf))
    write_csv(table, paths["csv"])
    files.append(Download(lid, "csv", paths["csv"], len(table)))
    return files


# ---- streamed downloads: a whole-layer read's frames, a batch at a time

@dataclass(frozen=True)
class LayerShape:
    """What a whole-layer read of a public store layer would decide from all its rows."""

    rows: int
    nulls: dict[str, int]  # column -> NULL count
    geometry_type: str  # as declared in the store (pyogrio's name)
    dtypes: dict[str, str]  # column -> pyogrio dtype

    def batchable(self) -> bool:
        """Batches read exactly like the whole layer (:func:`store_frames`): rows, known
        dtypes."""
        return self.rows > 0 and set(self.dtypes.values()) <= STREAM_DTYPES

    def streamable(self) -> bool:
        """Batches also write exactly like the whole layer: one declared geometry type (a mixed
        or empty layer is written whole)."""
        return self.batchable() and self.geometry_type.removesuffix(" Z") in STREAM_TYPES


def layer_shape(store: Path, lid: str, columns: list[str] | None = None) -> LayerShape:
    """Row count and NULLs per column (one SQL pass, no geometry read), declared geometry
    type and dtypes of a layer of a GeoPackage."""
    info = pyogrio.read_info(store, layer=lid)
    fields = [str(f) for f in info["fields"]]
    cols = [c for c in fields if columns is None or c in columns]
    sel = ", ".join(["count(*)", *(f"sum({qi(c)} IS NULL)" for c in cols)])
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        row = con.execute(f"SELECT {sel} FROM {qi(lid)}").fetchone()
    finally:
        con.close()
    return LayerShape(int(row[0]), {c: int(v or 0) for c, v in zip(cols, row[1:], strict=True)},
                      str(info["geometry_type"]),
                      {f: str(d) for f, d in zip(fields, info["dtypes"], strict=True)
                       if f in cols})


def _frame(batch: pa.RecordBatch, gname: str, shape: LayerShape, crs: Any) -> Any:
    """One Arrow batch as the same rows of a whole-layer ``read_dataframe(use_arrow=True)``."""
    df = batch_frame(batch, gname, crs)
    for c, n in shape.nulls.items():
        if n and c in df.columns:
            if pd.api.types.is_integer_dtype(df[c].dtype):
                df[c] = df[c].astype("float64")
            elif pd.api.types.is_bool_dtype(df[c].dtype):
                df[c] = df[c].astype(object)
    return df


def store_frames(store: Path, lid: str, columns: list[str] | None, batch_rows: int,
                 shape: LayerShape, geometry: bool = True) -> Iterator[gpd.GeoDataFrame]:
    """A layer of a public store in frames of ``batch_rows`` rows, each as the same rows of
    ``pyogrio.read_dataframe(store, layer=lid, columns=columns, use_arrow=True)`` would be:
    Arrow turns an integer column with a NULL into float and a boolean one into object, so a
    column with a NULL anywhere in the layer (``shape.nulls``) gets that dtype in every batch.
    """
    for batch, gname, crs in arrow_batches(store, batch_rows, layer=lid, columns=columns,
                                           geometry=geometry):
        yield _frame(batch, gname, shape, crs)


def _gdal_batch(batch: pa.RecordBatch, gname: str, names: list[str], shape: LayerShape
                ) -> pa.RecordBatch:
    """One Arrow batch as GDAL receives the same rows from ``write_dataframe(use_arrow=True)``
    of a whole-layer frame, without the round trip through pandas: the columns in ``names``
    order, an integer column with a NULL in the layer as float, a column NULL in every row of
    the layer as text (pandas makes it an untyped column, pyogrio text), the geometry's WKB
    (GDAL parses it either way)."""
    cols = []
    for c in names:
        a = batch.column(c)
        n = shape.nulls.get(c, 0)
        if n and pa.types.is_integer(a.type):
            a = a.cast(pa.float64())
        elif (n == shape.rows and pa.types.is_boolean(a.type)) or pa.types.is_null(a.type):
            a = a.cast(pa.string())
        cols.append(a)
    geo = batch.column(gname)
    if not pa.types.is_binary(geo.type):
        geo = geo.cast(pa.binary())
    return pa.RecordBatch.from_arrays([*cols, geo], names=[*names, GEOMETRY])


def _inferred_type(types: set[str], has_z: bool) -> str:
    """The layer type ``write_dataframe`` infers from a layer's geometry types (one type)."""
    if len(types) != 1:
        return "Unknown"
    return next(iter(types)) + (" Z" if has_z else "")


@dataclass(frozen=True)
class _Task:
    """One streamed pass over a layer: its GeoPackage and CSV, or its GeoJSON (two passes that
    can run in two processes: GDAL holds the GIL while it writes)."""

    store: Path
    lid: str
    names: list[str]
    titles: dict[str, str]
    description: str
    paths: dict[str, Path]
    shape: LayerShape
    batch_rows: int
    fmt: str  # gpkg (with the CSV) | geojson


@dataclass(frozen=True)
class _Written:
    rows: int
    types: frozenset[str] | None  # geometry types seen (the GeoPackage pass)
    has_z: bool | None


def _stream_task(task: _Task) -> _Written:
    """Write one pass of a layer's downloads batch by batch (``write_arrow`` pulls the
    batches); what was seen, for the whole-layer checks (the GeoPackage pass)."""
    shape, names = task.shape, task.names
    gtype = shape.geometry_type
    point = gtype.removesuffix(" Z") == "Point"
    types: set[str] = set()
    has_z = False
    n = 0
    batches = arrow_batches(task.store, task.batch_rows, layer=task.lid, columns=names)
    first, gname, crs_info = next(batches)
    crs = None  # as write_dataframe names the layer's CRS
    if crs_info:
        c = gpd.GeoSeries([], crs=crs_info).crs
        epsg = c.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else c.to_wkt("WKT1_GDAL")
    schema = _gdal_batch(first, gname, names, shape).schema
    path = task.paths[task.fmt]
    path.unlink(missing_ok=True)
    fh = (task.paths["csv"].open("w", encoding=CSV_ENCODING, newline="")
          if task.fmt == "gpkg" else None)

    def rows() -> Iterator[pa.RecordBatch]:
        nonlocal n, has_z
        for batch, _, _ in itertools.chain([(first, gname, crs_info)], batches):
            if fh is not None:  # the GeoPackage pass also writes the CSV and checks the types
                gdf = _frame(batch, gname, shape, crs_info)
                geo = gdf.geometry
                ok = geo.notna() & ~geo.is_empty
                types.update(str(t) for t in pd.unique(geo.geom_type.dropna()))
                has_z = has_z or bool(geo[ok].has_z.any())
                _csv_table(gdf, names, task.titles, point).to_csv(
                    fh, index=False, header=n == 0, lineterminator="\r\n")
            n += batch.num_rows
            yield _gdal_batch(batch, gname, names, shape).cast(schema)

    try:
        write_arrow(pa.RecordBatchReader.from_batches(schema, rows()), path,
                    layer=task.lid, geometry_name=GEOMETRY, geometry_type=gtype, crs=crs,
                    **_geo_options(task.lid, task.description, task.fmt))
    finally:
        if fh is not None:
            fh.close()
    return _Written(n, frozenset(types), has_z) if fh is not None else _Written(n, None, None)


def _stream_tasks(project: Project, store: Path, lid: str, out: Path, batch_rows: int
                  ) -> list[_Task]:
    """The two passes of a layer's streamed downloads; [] where the whole-layer path writes
    them (a mixed or empty geometry type, an unknown dtype)."""
    spec = project.specs[lid]
    plan = plan_layer(spec, project.codelists)
    shape = layer_shape(store, lid, plan.names)
    if not shape.streamable() or set(plan.names) - set(shape.dtypes):
        return []
    desc, paths = _layer_files(spec, out)
    return [_Task(store, lid, plan.names, _titles(plan), desc, paths, shape, batch_rows, fmt)
            for fmt in ("gpkg", "geojson")]


def _as_whole(tasks: list[_Task], written: list[_Written]) -> bool:
    """True when the streamed files are those the whole-layer path writes: every row, and the
    geometry type declared before writing is the one the whole layer's rows give."""
    shape = tasks[0].shape
    seen = [w for w in written if w.types is not None]
    return (all(w.rows == shape.rows for w in written) and len(seen) == 1
            and _inferred_type(set(seen[0].types or ()), bool(seen[0].has_z))
            == shape.geometry_type)


def spec_file(project: Project, lid: str) -> str:
    """The layer's spec file as the city's staff know it (``layers/<id>.yml``)."""
    return str(Path(project.config.layers_dir) / f"{lid}.yml")


def layouts(project: Project) -> dict[str, OpenDataLayout]:
    """Public layers with a standard layout (``opendata:`` of their spec)."""
    return {lid: s.opendata for lid, s in project.specs.items()
            if s.opendata is not None and s.visibility == "public"}


def check_mapping(project: Project, lid: str, od: OpenDataLayout, std: Standard | None = None
                  ) -> Standard:
    """The layer's layout names a known standard, its real columns and public fields (else a
    clear error naming the spec file, the key and what is allowed)."""
    file = spec_file(project, lid)
    spec = project.specs.get(lid)
    if spec is None or spec.visibility != "public":
        raise ConfigError("opendata_layer", file=file,
                          visibility=spec.visibility if spec else "-")
    if std is None:
        std = standards().get(od.standard)
        if std is None:
            raise ConfigError("opendata_standard", file=file, standard=od.standard,
                              known=", ".join(standards()))
    public = set(plan_layer(spec, project.codelists).names)
    for col in od.columns:
        if col not in std.columns:
            raise ConfigError("opendata_column", file=file, column=col,
                              standard=std.title.ja, known=", ".join(std.columns))
    for name, key in od.fields().items():
        if name not in public:
            raise ConfigError("opendata_field", file=file, key=key, field=name,
                              known=", ".join(sorted(public)))
    return std


def check_layouts(project: Project) -> None:
    """Every layout of the project, before a publish writes anything."""
    for lid, od in layouts(project).items():
        check_mapping(project, lid, od)


def standard_table(project: Project, gdf: gpd.GeoDataFrame, od: OpenDataLayout, std: Standard
                   ) -> gpd.GeoDataFrame:
    """Rows of the standard list, its columns in its order (text; flags "1" or empty)."""
    if od.where:
        gdf = gdf[gdf[od.where].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    n = len(gdf)
    lon, lat = _lonlat(gdf) if n else (np.zeros(0), np.zeros(0))
    auto = {"city_code": np.full(n, project.config.city_code, dtype=object),
            "lat": lat.astype(object), "lon": lon.astype(object)}
    cols: dict[str, Any] = {}
    for col in std.columns:
        src = od.column(col)
        if src is not None and src.const is not None:
            cols[col] = [src.const] * n
        elif src is not None and src.field:
            v = gdf[src.field]
            if src.format == "flag":
                cols[col] = v.astype("boolean").fillna(False).map({True: "1", False: ""}
                                                                   ).tolist()
            else:
                cols[col] = v.astype("string").fillna("").tolist()
        elif col in std.auto:
            cols[col] = [str(x) for x in auto[std.auto[col]]]
        else:
            cols[col] = [""] * n
    return gpd.GeoDataFrame(pd.DataFrame(cols, dtype="string"), geometry=gdf.geometry.values,
                            crs=STORE_CRS)


def standard_downloads(project: Project, store: Path, lid: str, od: OpenDataLayout, out: Path
                       ) -> list[Download]:
    std = check_mapping(project, lid, od)
    spec = project.specs[lid]
    table = standard_table(project, pyogrio.read_dataframe(store, layer=lid), od, std)
    stem = std.file.format(city_code=project.config.city_code)
    desc = (f"{std.title.ja} ({std.standard.ja}) / {std.title.en} ({std.standard.en}). "
            + " / ".join(_credit(spec).values()))
    files = []
    for fmt in ("gpkg", "geojson"):
        path = out / f"{stem}.{fmt}"
        _write_geo(table, path, stem, desc, fmt)
        files.append(Download(lid, fmt, path, len(table), od.standard))
    path = out / f"{stem}.csv"
    write_csv(pd.DataFrame(table.drop(columns=table.geometry.name)), path)
    files.append(Download(lid, "csv", path, len(table), od.standard))
    return files


def _readme(project: Project, entries: dict[str, Any], cfg: OpenDataConfig) -> str:
    lines = [both("opendata_readme_title", city=project.config.city.ja)["ja"],
             both("opendata_readme_title", city=project.config.city.en)["en"], ""]
    if cfg.note:
        lines += [cfg.note.ja, cfg.note.en, ""]
    for lid, e in entries.items():
        lines.append(f"■ {e['title']['ja']} / {e['title']['en']} ({lid})")
        lines.append(f"  {e['credit']['ja']}")
        lines.append(f"  {e['credit']['en']}")
        for f in e["files"]:
            std = f" [{e['standards'][f['standard']]['ja']}]" if f.get("standard") else ""
            lines.append(f"  - {f['file']}{std}: {f['features']}")
        lines.append("")
    lines += [both("opendata_readme_formats")["ja"], both("opendata_readme_formats")["en"]]
    return "\r\n".join(lines) + "\r\n"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def process_pool(rows: int, tasks: int = WORKERS) -> ProcessPoolExecutor | None:
    """:data:`WORKERS` forked processes (at most the CPUs this process may use) for work over
    ``rows`` public rows in ``tasks`` independent parts; None where one process is as good
    (little work, one CPU, no ``fork``). Forked: the children share the loaded modules."""
    workers = min(WORKERS, _cpus(), tasks)
    if workers < 2 or rows < POOL_ROWS or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))


def _run_tasks(tasks: list[_Task]) -> list[_Written]:
    """Every pass, in :func:`process_pool` when there is enough to write (largest layers
    first), else here; results in the order of ``tasks``."""
    pool = process_pool(sum(t.shape.rows for t in tasks), len(tasks))
    if pool is None:
        return [_stream_task(t) for t in tasks]
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].shape.rows)
    with pool:
        futures = {i: pool.submit(_stream_task, tasks[i]) for i in order}
        return [futures[i].result() for i in range(len(tasks))]


def release_artifact(project: Project, store: Path, release_dir: Path,
                     data_dates: dict[str, str] | None = None,
                     batch_rows: int | None = BATCH_ROWS) -> dict[str, Any]:
    """Write every public layer's downloads into ``<release>/opendata/``; the catalogue.

    Each layer's own files are streamed in batches of ``batch_rows`` (``None``: whole layers,
    the former path; the same files)."""
    cfg = project.config.publish.opendata
    out = release_dir / OPENDATA_DIR
    out.mkdir(parents=True, exist_ok=True)
    have = {str(n) for n in pyogrio.list_layers(store)[:, 0]}
    std_layers = layouts(project)
    tasks = {lid: _stream_tasks(project, store, lid, out, batch_rows) if batch_rows else []
             for lid in sorted(have)}
    flat = [t for ts in tasks.values() for t in ts]
    done = dict(zip(((t.lid, t.fmt) for t in flat), _run_tasks(flat), strict=True))
    catalog: dict[str, Any] = {}
    for lid in sorted(have):
        spec = project.specs[lid]
        files = _downloads(project, store, lid, out, tasks[lid],
                           [done[(lid, t.fmt)] for t in tasks[lid]])
        stds: dict[str, Any] = {}
        if lid in std_layers:
            od = std_layers[lid]
            files += standard_downloads(project, store, lid, od, out)
            std = standards()[od.standard]
            stds[od.standard] = {"ja": std.title.ja, "en": std.title.en, "number": std.number,
                                 "url": std.url}
        catalog[lid] = {
            "title": spec.title.model_dump(), "credit": _credit(spec),
            "attribution": spec.attribution.model_dump(), "license": spec.license,
            "license_url": spec.license_url, "data_date": (data_dates or {}).get(lid),
            "crs": "OGC:CRS84", "standards": stds, "files": [f.entry() for f in files],
        }
    (out / "index.json").write_text(json.dumps({"layers": catalog}, ensure_ascii=False,
                                               indent=1), encoding="utf-8")
    (out / "README.txt").write_text(_readme(project, catalog, cfg), encoding="utf-8-sig")
    return catalog
