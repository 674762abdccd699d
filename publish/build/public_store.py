"""The public store: a separate GeoPackage that is public *by construction*.

Why a separate file rather than hiding things in pygeoapi's config: pygeoapi's ``hidden`` is not
private (#1178, #2335), and a field that is not in the file cannot leak through any endpoint,
schema, HTML page or future provider bug. So the store holds only

* ``visibility: public`` layers (one table per layer, named by layer id),
* only rows passing the spec's ``public_filter`` (rows whose filter result is unknown are dropped),
* only the spec's public columns (``etl.schema.public_columns``), a text ``fid`` (the id_field
  value) and Japanese/English labels for code-list columns,
* geometry in CRS84 (stored as EPSG:4326 with x=lon, y=lat, as GeoPackage always does), rounded
  to 7 decimals (about 1 cm) and indexed with an R-tree,

and never a lineage column. Columns are selected when *reading* the master, so internal values
are not even loaded on the public path (except internal columns a ``public_filter`` needs, which
are dropped right after the filter). After writing, :func:`check_public_store` re-opens the file
with both GDAL and plain SQLite and fails unless tables and columns are exactly the allow-list.

From a GeoPackage master the layers are streamed in batches of :data:`BATCH_ROWS` master rows
(:func:`write_public_store`), so memory stays flat whatever the layer's size (issue 17); the rows
written are exactly those of the whole-layer path (``tests/test_publish_store.py``).
"""

from __future__ import annotations

import io
import itertools
import keyword
import queue
import re
import sqlite3
import threading
import time
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from pyogrio.raw import write_arrow

from config import Project
from config import messages as msg
from config.models import CodeList, I18nText, LayerSpec, PublishGeometry
from etl.schema import GEOMETRY_COLUMN, LINEAGE_COLUMNS, output_columns, public_columns
from etl.sql import qi
from etl.stores import MasterStore, open_store
from etl.stores.base import MASTER
from etl.validate import simplify_for_publication
from publish.errors import LeakCheckError, PublishError
from publish.model import (
    DECIMALS,
    GEOM_COLUMN,
    ID_COLUMN,
    LABEL_LANGS,
    ROWID_COLUMN,
    STORE_CRS,
    LayerPlan,
    PublicColumn,
    StoreLayer,
)

# Columns the public path may never produce, whatever a spec says.
RESERVED = {ID_COLUMN, ROWID_COLUMN, GEOM_COLUMN, GEOMETRY_COLUMN}
# GeoPackage/GDAL bookkeeping tables; any other table in the file must be a public layer.
GPKG_SYSTEM_TABLES = {"gpkg_contents", "gpkg_spatial_ref_sys", "gpkg_geometry_columns",
                      "gpkg_ogr_contents", "gpkg_extensions", "gpkg_tile_matrix_set",
                      "gpkg_tile_matrix", "gpkg_metadata", "gpkg_metadata_reference",
                      "gpkg_data_columns", "gpkg_data_column_constraints"}
# pandas dtypes per spec type; dates are published as ISO text (OGR renders Date as 2024/01/31).
DTYPES = {"str": "string", "int": "Int64", "float": "Float64", "bool": "boolean", "date": "string"}
# Names a public_filter may use besides columns (pandas query syntax).
FILTER_WORDS = {"and", "or", "not", "in", "is", "True", "False", "None", "nan", "NaN"}
#: the geometry column of a frame read from a GeoPackage (the name ``read_dataframe`` gives)
FRAME_GEOMETRY = "geometry"
#: master rows per batch of the streamed publish: memory follows this, not the layer's size
BATCH_ROWS = 10_000
#: layer options of every public table (R-tree index, the integer key named rid)
LAYER_OPTIONS = {"FID": ROWID_COLUMN, "GEOMETRY_NAME": GEOM_COLUMN, "SPATIAL_INDEX": "YES"}
DATASET_OPTIONS = {"VERSION": "1.3"}  # GeoPackage 1.3 for GDAL 3.6 readers
# gpkg_geometry_columns.geometry_type_name for pyogrio's geometry type names
GPKG_TYPE_NAMES = {"Unknown": "GEOMETRY", "Point": "POINT", "LineString": "LINESTRING",
                   "Polygon": "POLYGON", "MultiPoint": "MULTIPOINT",
                   "MultiLineString": "MULTILINESTRING", "MultiPolygon": "MULTIPOLYGON",
                   "GeometryCollection": "GEOMETRYCOLLECTION"}


@dataclass
class Simplified:
    """What a layer's publication rule (``publish_geometry``) did to its public copy.

    Recorded per layer in ``release.json`` (``layers.<id>.publish_geometry``): the rule, how many
    features were simplified, their vertices before and after, and the largest tolerance used
    (the rule's ``tolerance_m``, doubled while a feature stayed over the budget). The master
    keeps the exact geometry.
    """

    rule: PublishGeometry
    features: int = 0
    vertices_before: int = 0
    vertices_after: int = 0
    max_tolerance_m: float = 0.0

    def add(self, exact: np.ndarray, simple: np.ndarray, over: np.ndarray,
            tol: np.ndarray) -> None:
        if not over.any():
            return
        self.features += int(over.sum())
        self.vertices_before += int(shapely.get_num_coordinates(exact[over]).sum())
        self.vertices_after += int(shapely.get_num_coordinates(simple[over]).sum())
        self.max_tolerance_m = max(self.max_tolerance_m, float(tol[over].max()))

    def as_dict(self) -> dict[str, Any]:
        return {"rule": {"max_vertices": self.rule.max_vertices,
                         "tolerance_m": self.rule.tolerance_m},
                "simplified_features": self.features,
                "vertices_before": self.vertices_before,
                "vertices_after": self.vertices_after,
                "max_tolerance_m": self.max_tolerance_m}


@dataclass(frozen=True)
class MasterSource:
    """One consistent (master, manifest) pair of the ETL's output: a fixed run of a store."""

    store: MasterStore
    run_id: str
    manifest: dict[str, Any]

    def data_date(self, layer: str) -> str | None:
        return (self.manifest.get("layers", {}).get(layer) or {}).get("data_date")

    def columns(self, layer: str) -> list[str] | None:
        return self.store.columns(layer, run_id=self.run_id)

    def read_layer(self, layer: str, columns: list[str] | None = None) -> gpd.GeoDataFrame:
        return self.store.read_layer(layer, columns=columns, run_id=self.run_id)


def locate_master(project: Project, store_url: str | None = None) -> MasterSource:
    """The current master run of the store in effect, resolved once.

    Why resolve first: every layer is then read from that one run (an immutable run folder or
    run schema), so the tables and the manifest belong together even if a merge switches
    ``current`` meanwhile.
    """
    st = open_store(project, store_url)
    rid = st.current_run()
    manifest = st.manifest(rid) if rid else None
    if rid is None or manifest is None:
        raise PublishError("publish_no_master", path=st.describe())
    return MasterSource(st, rid, manifest)


def filter_names(expr: str) -> set[str]:
    """Column names used by a pandas ``query`` expression (string literals excluded).

    Why tokenize: a regex would take the word in ``status == "in_use"`` for a column.
    Backtick-quoted names (```my col```) are taken verbatim.
    """
    names = set(re.findall(r"`([^`]+)`", expr))
    src = re.sub(r"`[^`]+`", " 0 ", expr)
    prev = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if (tok.type == tokenize.NAME and not keyword.iskeyword(tok.string)
                    and tok.string not in FILTER_WORDS and prev != "."):
                names.add(tok.string)
            if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
                prev = tok.string
    except (tokenize.TokenError, SyntaxError):
        pass  # pandas reports the syntax error itself, with a better message
    return names


def plan_layer(spec: LayerSpec, codelists: dict[str, CodeList]) -> LayerPlan:
    """Derive the public table's columns (and what to read) from the spec only."""
    if spec.visibility != "public":
        raise ValueError(f"layer {spec.id} is not public")
    pub = public_columns(spec)
    names = {c.name for c in pub}
    if spec.id_field not in names:
        raise PublishError("public_id_internal", layer=spec.id, field=spec.id_field)
    cols = [PublicColumn(ID_COLUMN, "str", I18nText(**msg.both("public_id")))]
    labels: list[PublicColumn] = []
    for c in pub:
        if c.name in RESERVED:
            raise PublishError("reserved_column", layer=spec.id, column=c.name)
        cols.append(PublicColumn(c.name, c.type, c.title, c.unit, c.queryable))
        if c.codelist and c.codelist in codelists:
            for lang in LABEL_LANGS:
                lname = f"{c.name}_{lang}"
                if lname in names:
                    raise PublishError("label_column_conflict", layer=spec.id, column=lname)
                key = f"label_suffix_{lang}"
                title = I18nText(ja=msg.ja(key, title=c.title.ja if c.title else c.name),
                                 en=msg.en(key, title=c.title.en if c.title else c.name))
                labels.append(PublicColumn(lname, "str", title, queryable=False,
                                           codelist=c.codelist, label_of=c.name))
    fcols: list[str] = []
    if spec.public_filter:
        known = [c.name for c in output_columns(spec, lineage=False)]
        used = filter_names(spec.public_filter)
        unknown = sorted(used - set(known))
        if unknown:
            raise PublishError("public_filter_unknown", layer=spec.id, expr=spec.public_filter,
                               names=", ".join(unknown), known=", ".join(known))
        fcols = sorted(used)
    read = [c.name for c in pub] + [c for c in fcols if c not in names]
    return LayerPlan(spec, tuple(cols + labels), tuple(read), tuple(fcols))


def public_specs(project: Project) -> list[LayerSpec]:
    """Public layer specs in the project's dependency order."""
    return [project.specs[lid] for lid in project.order()
            if project.specs[lid].visibility == "public"]


def plan_store(project: Project) -> dict[str, LayerPlan]:
    """Allow-lists of every public layer; fails if there is nothing to publish."""
    specs = public_specs(project)
    if not specs:
        raise PublishError("no_public_layers")
    return {s.id: plan_layer(s, project.codelists) for s in specs}


def expected_tables(project: Project) -> dict[str, set[str]]:
    """The leak guard's reference, computed straight from the specs (not from a LayerPlan).

    Kept deliberately independent of :func:`plan_layer` so a bug there cannot also hide itself.
    """
    out: dict[str, set[str]] = {}
    for spec in project.specs.values():
        if spec.visibility != "public":
            continue
        cols = {ID_COLUMN}
        for c in public_columns(spec):
            cols.add(c.name)
            if c.codelist and c.codelist in project.codelists:
                cols |= {f"{c.name}_{lang}" for lang in LABEL_LANGS}
        out[spec.id] = cols
    return out


def forbidden_columns(project: Project) -> set[str]:
    """Every internal or lineage column name of the project (must never be in the store)."""
    bad = set(LINEAGE_COLUMNS)
    for spec in project.specs.values():
        bad |= {c.name for c in output_columns(spec, lineage=False) if c.visibility != "public"}
    public = set().union(*expected_tables(project).values()) if expected_tables(project) else set()
    return bad - public  # a name can be internal in one layer and public in another


def _read_layer(source: MasterSource, plan: LayerPlan) -> gpd.GeoDataFrame:
    have = source.columns(plan.id)
    if have is None:
        raise PublishError("master_layer_missing", layer=plan.id, path=source.store.describe())
    missing = [c for c in plan.read_columns if c not in have]
    if missing:
        raise PublishError("master_columns_missing", layer=plan.id, columns=", ".join(missing))
    # The allow-list is applied here, at read time: nothing else leaves the master.
    return source.read_layer(plan.id, columns=list(plan.read_columns))


def _apply_filter(df: gpd.GeoDataFrame, plan: LayerPlan) -> gpd.GeoDataFrame:
    expr = plan.spec.public_filter
    if not expr:
        return df
    try:
        mask = df.eval(expr, engine="python")
    except Exception as e:  # pandas raises many types for a bad expression
        raise PublishError("public_filter_invalid", layer=plan.id, expr=expr,
                           detail=f"{type(e).__name__}: {e}") from e
    if not isinstance(mask, pd.Series) or len(mask) != len(df):
        raise PublishError("public_filter_invalid", layer=plan.id, expr=expr,
                           detail="not a row-wise condition")
    # Unknown (NA) means "not shown": a row is public only if the filter is definitely true.
    keep = pd.Series(mask, index=df.index).astype("boolean").fillna(False).astype(bool)
    return df.loc[keep.to_numpy()]


def _cast(values: pd.Series, typ: str) -> pd.Series:
    if typ == "date":
        dt = pd.to_datetime(values, errors="coerce")
        return dt.dt.strftime("%Y-%m-%d").astype("string")
    if typ == "bool":
        return values.astype("boolean")
    if typ == "int":
        return pd.to_numeric(values, errors="coerce").round().astype("Int64")
    if typ == "float":
        return pd.to_numeric(values, errors="coerce").astype("Float64")
    return values.astype("string")


def _round(geoms: gpd.GeoSeries) -> np.ndarray:
    """Round coordinates to DECIMALS; GeoJSON otherwise carries 15 digits of noise."""
    arr = np.asarray(geoms.values, dtype=object)
    return shapely.transform(arr, lambda xy: np.round(xy, DECIMALS))


def _public_ids(df: pd.DataFrame, plan: LayerPlan) -> pd.Series:
    """The public ids (``fid``) of filtered master rows; missing or duplicate ids fail."""
    spec = plan.spec
    ids = df[spec.id_field]
    missing = ids.isna() | (ids.astype("string").str.strip() == "")
    if missing.any():
        raise PublishError("public_id_missing", layer=spec.id, n=int(missing.sum()),
                           field=spec.id_field)
    fid = ids.astype("string").str.strip()
    dup = fid[fid.duplicated(keep=False)]
    if len(dup):
        raise PublishError("public_id_duplicate", layer=spec.id, field=spec.id_field,
                           examples=", ".join(sorted(set(dup.astype(str)))[:5]))
    return fid


def _table_rows(df: gpd.GeoDataFrame, fid: pd.Series, plan: LayerPlan,
                codelists: dict[str, CodeList], simplified: Simplified | None = None
                ) -> gpd.GeoDataFrame:
    """Public columns, labels and geometry of filtered master rows, row by row (no order).

    ``simplified`` (if given) adds up what the layer's publication rule did to these rows.
    """
    spec = plan.spec
    data: dict[str, Any] = {}
    for col in plan.columns:
        if col.name == ID_COLUMN:
            data[col.name] = fid.to_numpy()
        elif col.label_of:
            cl = codelists[col.codelist or ""]
            lang = col.name.rsplit("_", 1)[1]
            table = {code: getattr(e, lang) for code, e in cl.codes.items()}
            codes = df[col.label_of].astype("string")
            data[col.name] = codes.map(table).astype("string").to_numpy()
        else:
            data[col.name] = _cast(df[col.name], col.type).to_numpy()
    geo = df.geometry
    if geo.crs is None:
        raise PublishError("master_columns_missing", layer=spec.id, columns="geometry CRS")
    # the spec's publication rule, in metres of the master's plane CRS; the master stays exact
    exact = np.asarray(geo.values, dtype=object)
    simple, over, tol = simplify_for_publication(exact, spec.publish_geometry)
    if simplified is not None:
        simplified.add(exact, simple, over, tol)
    geo = gpd.GeoSeries(simple, index=geo.index, crs=geo.crs).to_crs(STORE_CRS)
    out = gpd.GeoDataFrame(data, geometry=_round(geo), crs=STORE_CRS)
    for col in plan.columns:  # to_numpy() loses nullable dtypes; restore them for GDAL types
        out[col.name] = out[col.name].astype(DTYPES[col.type])
    return out


def build_table(df: gpd.GeoDataFrame, plan: LayerPlan, codelists: dict[str, CodeList],
                simplified: Simplified | None = None) -> gpd.GeoDataFrame:
    """Filtered master rows -> the public table (allow-listed columns, CRS84, labels, fid)."""
    out = _table_rows(df, _public_ids(df, plan), plan, codelists, simplified)
    return out.sort_values(ID_COLUMN, kind="stable").reset_index(drop=True)


def write_layer(path: Path, table: gpd.GeoDataFrame, spec: LayerSpec) -> None:
    """Append one table to the store (R-tree index, GeoPackage 1.3 for GDAL 3.6 readers)."""
    pyogrio.write_dataframe(
        table, path, layer=spec.id, driver="GPKG", use_arrow=True,
        promote_to_multi=spec.geometry_type.startswith("Multi"),
        layer_options=LAYER_OPTIONS, dataset_options=DATASET_OPTIONS,
    )


# ---- streamed publication: bounded memory, the same rows as build_table + write_layer

@dataclass
class _Plan:
    """How one layer is streamed, decided from its ids alone (pass 1)."""

    sql: str | None  # None: the master's own (fid) order is already the public id order
    fids: pa.Array  # the public ids in output order (for checking every batch)
    n_master: int


def _master_path(source: MasterSource) -> Path | None:
    """The run's master GeoPackage; None for a PostGIS master (read whole, as before)."""
    if source.store.kind != "gpkg":
        return None
    path = source.store.run_dir(source.run_id) / MASTER
    return path if path.exists() else None


def _stream_plan(path: Path, plan: LayerPlan) -> _Plan | None:
    """Pass 1 over ids and filter columns only: the whole-layer checks (missing and duplicate
    ids, after the filter, exactly as :func:`build_table`) and the read order.

    Output rows are sorted by public id. When the master is not already in that order the
    rows are read ``ORDER BY trim(CAST(id AS TEXT))`` (SQLite sorts in bounded memory); that
    is used only if its order provably equals the public id order (else None: read whole).
    """
    idf = plan.spec.id_field
    cols = list(dict.fromkeys([idf, *plan.filter_columns]))
    df = pyogrio.read_dataframe(path, layer=plan.id, columns=cols, read_geometry=False,
                                use_arrow=True)
    n_master = len(df)
    df = _apply_filter(df, plan)
    if not len(df):
        return None  # nothing public: the whole-layer path writes the empty table
    fid = _public_ids(df, plan)
    arr = pa.array(fid.to_numpy(dtype=object), type=pa.string())
    order = pc.sort_indices(arr)
    fids = pc.take(arr, order)
    if pc.all(pc.equal(order, pa.array(np.arange(len(arr)), type=order.type))).as_py():
        return _Plan(None, fids, n_master)
    raw = df[idf]
    if not (pd.api.types.is_string_dtype(raw) or pd.api.types.is_integer_dtype(raw)):
        return None
    key = pa.array(raw.astype("string").str.strip(" ").to_numpy(dtype=object), type=pa.string())
    if not pc.all(pc.equal(pc.take(arr, pc.sort_indices(key)), fids)).as_py():
        return None
    names = ", ".join(qi(c) for c in dict.fromkeys([*plan.read_columns]))
    geom = pyogrio.read_info(path, layer=plan.id)["geometry_name"] or "geom"
    sql = (f"SELECT {names}, {qi(geom)} FROM {qi(plan.id)} "
           f"ORDER BY trim(CAST({qi(idf)} AS TEXT), ' ')")
    return _Plan(sql, fids, n_master)


def arrow_batches(path: Path, batch_rows: int, *, layer: str | None = None,
                  columns: list[str] | None = None, sql: str | None = None,
                  geometry: bool = True) -> Iterator[tuple[pa.RecordBatch, str, Any]]:
    """A GeoPackage layer (or, given ``sql``, that query instead) in GDAL's Arrow batches of
    ``batch_rows`` rows, each with the name of its geometry column and its CRS.

    The one batch reader of the streamed publish: the master (:func:`write_public_store`) and
    the public store (open data, change feed, search index through
    :func:`publish.build.opendata.store_frames`). Dates as text, as the whole-layer reads."""
    where: dict[str, Any] = {"sql": sql} if sql else {"layer": layer, "columns": columns}
    with pyogrio.open_arrow(path, batch_size=batch_rows, read_geometry=geometry,
                            use_pyarrow=True, datetime_as_string=True, **where) as (meta, reader):
        gname = meta["geometry_name"] or "wkb_geometry"
        for batch in reader:
            yield batch, gname, meta["crs"]


def batch_frame(batch: pa.RecordBatch, gname: str, crs: Any) -> pd.DataFrame:
    """One Arrow batch (:func:`arrow_batches`) as pandas rows: a GeoDataFrame whose WKB column
    ``gname`` became :data:`FRAME_GEOMETRY` (last, as ``pyogrio.read_dataframe`` gives it), a
    plain frame for a batch read without geometry."""
    df = pa.Table.from_batches([batch]).to_pandas()
    if gname not in df.columns:
        return df
    wkb = df.pop(gname)
    df[FRAME_GEOMETRY] = shapely.from_wkb(wkb.to_numpy())
    return gpd.GeoDataFrame(df, geometry=FRAME_GEOMETRY, crs=crs)


def _prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` computed one step ahead in a thread: reading and transforming the next batch
    (GDAL, GEOS and PROJ release the GIL) overlaps with GDAL writing the current one.

    Memory: at most ``depth`` finished batches wait. An error in the thread is raised here; if
    the consumer stops early, the thread stops at its next batch.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for x in items:
                if not put(("item", x)):
                    return
            put(("end", None))
        except BaseException as e:  # handed to the consumer, raised there
            put(("error", e))

    t = threading.Thread(target=work, name="publish-prefetch", daemon=True)
    t.start()
    try:
        while True:
            kind, x = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise x
            yield x
    finally:
        stop.set()
        t.join()


def _geometry_type(types: set[str], promote: bool) -> str:
    """The layer type pyogrio's ``write_dataframe`` infers from all of a layer's rows."""
    if len(types) == 1:
        t = next(iter(types))
        return f"Multi{t}" if promote and t in ("Point", "LineString", "Polygon") else t
    if len(types) == 2 and promote:
        for single in ("Polygon", "LineString", "Point"):
            if types == {single, f"Multi{single}"}:
                return f"Multi{single}"
    return "Unknown"


def _arrow_rows(table: gpd.GeoDataFrame, promote: bool) -> pa.Table:
    """One batch as the Arrow table ``write_dataframe(use_arrow=True)`` would hand GDAL."""
    geo = table.geometry.values.copy()
    if promote:
        kinds = shapely.get_type_id(np.asarray(geo))
        for tid, make in ((0, shapely.multipoints), (1, shapely.multilinestrings),
                          (3, shapely.multipolygons)):
            m = kinds == tid
            if m.any():
                geo[m] = make(np.atleast_2d(np.asarray(geo[m])), axis=0)
    df = pd.DataFrame(table.drop(columns=table.geometry.name), copy=False)
    df[GEOM_COLUMN] = shapely.to_wkb(np.asarray(geo))
    return pa.Table.from_pandas(df, preserve_index=False)


def _stream_layer(path: Path, master: Path, plan: LayerPlan, sp: _Plan,
                  codelists: dict[str, CodeList], batch_rows: int,
                  simplified: Simplified | None = None
                  ) -> tuple[int, tuple[float, ...] | None]:
    """Write one public layer batch by batch; returns (features, bbox)."""
    spec = plan.spec
    promote = spec.geometry_type.startswith("Multi")
    types: set[str] = set()
    bounds: list[np.ndarray] = []
    done = 0

    def tables() -> Iterator[tuple[pa.RecordBatch, set[str]]]:
        nonlocal done
        for batch, gname, crs in arrow_batches(master, batch_rows, layer=plan.id,
                                               columns=list(plan.read_columns), sql=sp.sql):
            df = _apply_filter(batch_frame(batch, gname, crs), plan)
            if not len(df):
                continue
            fid = df[spec.id_field].astype("string").str.strip()
            want = sp.fids.slice(done, len(fid))
            if len(want) != len(fid) or want.to_pylist() != fid.tolist():
                raise RuntimeError(f"{spec.id}: streamed rows out of public id order")
            table = _table_rows(df, fid, plan, codelists, simplified).reset_index(drop=True)
            done += len(table)
            geo = table.geometry.values
            ok = ~(shapely.is_missing(np.asarray(geo)) | shapely.is_empty(np.asarray(geo)))
            if ok.any():
                bounds.append(shapely.total_bounds(np.asarray(geo)[ok]))
            kinds = {str(t) for t in pd.unique(table.geom_type.dropna())}
            for rb in _arrow_rows(table, promote).to_batches():
                yield rb, kinds

    gen = _prefetch(tables())
    first, first_types = next(gen)
    types.update(first_types)

    def rest() -> Iterator[pa.RecordBatch]:
        for rb, kinds in gen:
            types.update(kinds)
            yield rb.cast(first.schema)  # one stream, one schema (an all-null batch too)

    reader = pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], rest()))
    write_arrow(reader, path, layer=spec.id, driver="GPKG", geometry_name=GEOM_COLUMN,
                geometry_type=_geometry_type(first_types, promote), crs=STORE_CRS,
                append=path.exists(), layer_options=LAYER_OPTIONS,
                dataset_options=DATASET_OPTIONS)
    if done != len(sp.fids):
        raise RuntimeError(f"{spec.id}: {done} streamed rows != {len(sp.fids)} public ids")
    final = _geometry_type(types, promote)
    if final != _geometry_type(first_types, promote):  # a later batch widened the type
        con = sqlite3.connect(path)
        try:
            con.execute("UPDATE gpkg_geometry_columns SET geometry_type_name = ? "
                        "WHERE table_name = ?", (GPKG_TYPE_NAMES[final], spec.id))
            con.commit()
        finally:
            con.close()
    if not bounds:
        return done, None
    b = np.vstack(bounds)
    box = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    return done, tuple(round(float(v), DECIMALS) for v in box)


def write_public_store(project: Project, source: MasterSource, path: Path,
                       plans: dict[str, LayerPlan], *, tick: Any = None,
                       also: Callable[[LayerSpec, gpd.GeoDataFrame], None] | None = None,
                       batch_rows: int | None = BATCH_ROWS,
                       simplified: dict[str, Simplified] | None = None
                       ) -> dict[str, StoreLayer]:
    """Write every public layer of ``source`` into the new GeoPackage ``path``.

    From a GeoPackage master each layer is streamed (:func:`_stream_plan`, then batches of
    ``batch_rows`` master rows: filter, allow-list, simplify, append), so memory does not grow
    with the layer; the rows written are those of the whole-layer path (``batch_rows=None``,
    also used for PostGIS masters, for ``also`` and when the id order cannot be streamed).
    ``also`` receives each finished public table too (the PostGIS public store).
    ``simplified`` (if given) receives per layer what its publication rule did
    (:class:`Simplified`).
    """
    if path.exists():
        path.unlink()
    out: dict[str, StoreLayer] = {}
    master = _master_path(source) if batch_rows and also is None else None
    for i, (lid, plan) in enumerate(plans.items()):
        t0 = time.perf_counter()
        if tick:
            tick("read", lid, i, len(plans))
        simp = Simplified(plan.spec.publish_geometry)
        if simplified is not None:
            simplified[lid] = simp
        if master is not None and batch_rows:
            if plan.id not in source.store.layers(source.run_id):
                raise PublishError("master_layer_missing", layer=plan.id,
                                   path=source.store.describe())
            have = source.columns(plan.id) or []
            missing = [c for c in plan.read_columns if c not in have]
            if missing:
                raise PublishError("master_columns_missing", layer=plan.id,
                                   columns=", ".join(missing))
            sp = _stream_plan(master, plan)
            if sp is not None:
                if tick:
                    tick("store", lid, i, len(plans))
                n, bbox = _stream_layer(path, master, plan, sp, project.codelists, batch_rows,
                                        simp)
                out[lid] = StoreLayer(lid, n, sp.n_master, bbox,  # type: ignore[arg-type]
                                      source.data_date(lid), time.perf_counter() - t0,
                                      plan.names)
                continue
        df = _read_layer(source, plan)
        n_master = len(df)
        df = _apply_filter(df, plan)
        table = build_table(df, plan, project.codelists, simp)
        del df  # the frame with any filter-only internal column goes out of scope here
        if tick:
            tick("store", lid, i, len(plans))
        write_layer(path, table, plan.spec)
        if also is not None:
            also(plan.spec, table)
        geoms = table.geometry[~(table.geometry.isna() | table.geometry.is_empty)]
        bbox = tuple(round(float(v), DECIMALS) for v in geoms.total_bounds) if len(geoms) else None
        out[lid] = StoreLayer(lid, len(table), n_master, bbox,  # type: ignore[arg-type]
                              source.data_date(lid), time.perf_counter() - t0, plan.names)
    return out


def check_public_store(path: Path, expected: dict[str, set[str]], forbidden: Iterable[str],
                       counts: dict[str, int] | None = None) -> None:
    """Re-open the written store and fail unless it is exactly the allow-list.

    Two independent readers: GDAL (what pygeoapi sees) and plain SQLite (what anyone who downloads
    the file sees: every table, view and trigger, not only registered layers).
    """
    problems: list[str] = []
    forbidden = set(forbidden)
    layers = {str(n) for n in pyogrio.list_layers(path)[:, 0]}
    if layers != set(expected):
        problems.append(f"layers {sorted(layers)} != allow-list {sorted(expected)}")
    for lid in sorted(layers & set(expected)):
        info = pyogrio.read_info(path, layer=lid)
        fields = set(info["fields"])
        if fields != expected[lid]:
            extra = sorted(fields - expected[lid])
            lacking = sorted(expected[lid] - fields)
            problems.append(f"{lid}: columns differ (extra {extra}, missing {lacking})")
        if fields & forbidden:
            problems.append(f"{lid}: internal columns {sorted(fields & forbidden)}")
        if info["crs"] != STORE_CRS:
            problems.append(f"{lid}: CRS {info['crs']} != {STORE_CRS}")
        if counts is not None and info["features"] != counts.get(lid):
            problems.append(f"{lid}: {info['features']} features != {counts.get(lid)} written")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT type, name, tbl_name FROM sqlite_master").fetchall()
        system = GPKG_SYSTEM_TABLES | {f"rtree_{lid}_{GEOM_COLUMN}{suffix}" for lid in expected
                                       for suffix in ("", "_node", "_parent", "_rowid")}
        user = {n for t, n, _ in rows if t == "table" and n not in system
                and not n.startswith("sqlite_")}
        if user != set(expected):
            problems.append(f"sqlite tables {sorted(user)} != allow-list {sorted(expected)}")
        views = sorted(n for t, n, _ in rows if t == "view")
        if views:
            problems.append(f"unexpected views {views}")
        for lid in sorted(user & set(expected)):
            cols = {r[1] for r in con.execute(f'PRAGMA table_info("{lid}")')}
            cols -= {ROWID_COLUMN, GEOM_COLUMN}
            if cols != expected[lid]:
                problems.append(f"sqlite {lid}: columns {sorted(cols)} != {sorted(expected[lid])}")
        meta = con.execute("SELECT count(*) FROM sqlite_master WHERE name='gpkg_metadata'")
        if meta.fetchone()[0] and con.execute("SELECT count(*) FROM gpkg_metadata").fetchone()[0]:
            problems.append("gpkg_metadata is not empty")
    finally:
        con.close()
    if problems:
        raise LeakCheckError("leak_check_failed", path=path, detail="; ".join(problems))
