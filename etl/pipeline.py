"""The merge pipeline: extract -> transform -> validate -> load, one layer spec at a time.

Conservation law: every input record ends either in the master or in ``_quarantine`` with a
reason; per source ``read == merged + quarantined`` is checked before anything is written.
``validate`` is this same pipeline with ``dry_run``: it reads and normalizes every record and
predicts exactly what ``merge`` would write, then writes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import functools
import json
import os
import resource
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import CRS

from config import Project
from config.errors import ConfigError, EtlError, SourceError
from config.messages import REASON_HINTS, en, ja, text
from config.messages import reason as reason_label
from config.models import LayerSpec, SourceSpec
from etl import crs as crsmod
from etl.carried import CarriedHashes, SeenIds
from etl.checks import check_project
from etl.normalize import apply_normalizer
from etl.parallel import Child, jobs_default, pack_error, ready, unpack_error
from etl.policy import Ledger, Problem
from etl.readers import (
    READERS,
    STREAMS,
    RawFrame,
    SourceStream,
    file_hash,
    load_lookup,
    source_path,
)
from etl.report import change_counts, change_summary, feature_hashes, write_reports
from etl.results import LayerResult, SourceStats
from etl.schema import CODES_TABLE, LAYER_META_TABLE, QUARANTINE_TABLE, output_columns
from etl.stores import MasterStore, StagedRun, explain_error, open_store
from etl.transform import apply_fields, missing_columns
from etl.validate import check_geometries, key_positions, reference_check, tokyo_offset_check

Progress = Callable[[str, str, int, int], None]  # (stage, layer, done, total)
_LIBC_NAME = ctypes.util.find_library("c")
#: glibc, for ``malloc_trim`` (None elsewhere: memory is then returned as the allocator likes)
_LIBC = (ctypes.CDLL(_LIBC_NAME) if _LIBC_NAME and hasattr(ctypes.CDLL(_LIBC_NAME),
                                                             "malloc_trim") else None)
#: glibc ``mallopt`` M_MMAP_THRESHOLD (malloc.h)
_M_MMAP_THRESHOLD = -3
STAGES = ("read", "normalize", "transform", "validate", "write")
QUARANTINE_COLUMNS = ["layer", "source_name", "source_file", "record", "reason_code", "reason",
                      "detail", "raw_attrs", "geometry_wkt", "geometry_crs", "run_id"]


@dataclass
class RunContext:
    project: Project
    run_id: str
    progress: Progress | None
    outputs: dict[str, LayerResult] = field(default_factory=dict)
    stage_seconds: Counter = field(default_factory=Counter)
    boundary: crsmod.Boundary | None = None
    previous: dict | None = None  # the current run's manifest (empty-source rule)
    warnings: list[str] = field(default_factory=list)

    #: lookup tables on other layers' keys, built once per layer (not once per batch)
    lookups: dict[tuple, Any] = field(default_factory=dict)
    #: per streamed layer whose geometries a join takes or an endpoint reference measures:
    #: how to read them back from the staged store by row, and their CRS (the layer keeps
    #: only its keys and geometry types in memory)
    geometry_at: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Any]] = field(
        default_factory=dict)

    def lookup(self, key: tuple, build: Callable[[], Any]) -> Any:
        if key not in self.lookups:
            self.lookups[key] = build()
        return self.lookups[key]

    def tick(self, stage: str, layer: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(stage, layer, done, total)

    def previous_read(self, layer: str, source: str) -> int:
        """Records the previous run read from this source (0 when unknown)."""
        lay = ((self.previous or {}).get("layers") or {}).get(layer) or {}
        return next((int(s.get("read") or 0) for s in lay.get("sources", [])
                     if s.get("name") == source), 0)


class Timer:
    def __init__(self, ctx: RunContext, stage: str) -> None:
        self.ctx, self.stage = ctx, stage

    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ctx.stage_seconds[self.stage] += time.perf_counter() - self.t0


def new_run_id() -> str:
    """Sortable, unique run id: local time to the millisecond plus a random suffix."""
    now = dt.datetime.now()
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}-{uuid.uuid4().hex[:4]}"


def _rel_to(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- extract


@dataclass
class SourcePart:
    """One source read, checked and in the target CRS (masks are this source's length)."""

    frame: gpd.GeoDataFrame
    stats: SourceStats
    problems: list[Problem]
    at_width: dict[str, np.ndarray]
    notes: np.ndarray  # per record: lineage notes ("outside X: unchanged")
    warnings: list[str]


@dataclass
class Extracted:
    frame: gpd.GeoDataFrame
    stats: list[SourceStats]
    problems: list[Problem]  # full length
    tables: dict[str, dict[str, str]]
    truncated: dict[str, np.ndarray]
    notes: np.ndarray
    warnings: list[str]


def _data_date(spec: LayerSpec, src: SourceSpec, raw: RawFrame, df: pd.DataFrame,
               rel: str) -> str | None:
    """The date the source's data describes, as its spec says (never guessed)."""
    dd = src.data_date
    if dd is None:
        return None
    if isinstance(dd, dt.date):
        return dd.isoformat()
    if dd == "mtime":
        return dt.date.fromtimestamp(max(p.stat().st_mtime for p in raw.files)).isoformat()
    if dd == "dbf_header":
        if not any(p.suffix.lower() == ".dbf" for p in raw.files):
            raise ConfigError("spec_data_date_header", file=f"layers/{spec.id}.yml",
                              source=src.name)
        return raw.header_date
    col = df[dd.field] if dd.field in df.columns else raw.frame.get(dd.field)
    if col is None:
        raise SourceError("source_missing_field", layer=spec.id, file=rel, fields=dd.field,
                          have=", ".join(map(str, raw.frame.columns)))
    dates = apply_normalizer("date", col)[""].dropna()
    return str(dates.max()) if len(dates) else None


def _measured_dimensions(geoms: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None:
    """(has Z, has M, ``{"z"|"m": records with a meaningful value}``), or None when no record
    has Z or M. All-zero Z and shapefile "no data" measures (< -1e38) are not meaningful."""
    live = ~shapely.is_missing(geoms)
    if not live.any():
        return None
    has_z = np.zeros(len(geoms), dtype=bool)
    has_m = np.zeros(len(geoms), dtype=bool)
    has_z[live] = shapely.has_z(geoms[live])
    has_m[live] = shapely.has_m(geoms[live])
    if not (has_z.any() or has_m.any()):
        return None
    real: dict[str, np.ndarray] = {}
    for dim, mask, col in (("z", has_z, 2), ("m", has_m, 3)):
        if mask.any():
            c, idx = shapely.get_coordinates(geoms[mask], include_z=True, include_m=True,
                                             return_index=True)
            v = c[:, col]
            meaningful = np.isfinite(v) & (v != 0 if dim == "z" else v > -1e38)
            per = np.zeros(int(mask.sum()), dtype=bool)
            per[np.unique(idx[meaningful])] = True
            real[dim] = np.zeros(len(geoms), dtype=bool)
            real[dim][np.flatnonzero(mask)[per]] = True
    return has_z, has_m, real


def _flatten(geoms: np.ndarray, has_z: np.ndarray, has_m: np.ndarray) -> np.ndarray:
    out = geoms.copy()
    drop = has_z | has_m
    out[drop] = shapely.force_2d(geoms[drop])
    return out


def _dimensions(spec: LayerSpec, src: SourceSpec, geoms: np.ndarray, rel: str,
                warnings: list[str]) -> np.ndarray:
    """Z and M values are an error unless the spec drops them (counted); all-zero Z is noise."""
    found = _measured_dimensions(geoms)
    if found is None:
        return geoms
    has_z, has_m, real = found
    bad = [d for d, m in real.items() if m.any() and d not in src.drop_dimensions]
    if bad:
        n = int(np.logical_or.reduce([real[d] for d in bad]).sum())
        raise SourceError("source_dimensions", layer=spec.id, file=rel, n=n,
                          dims=", ".join(d.upper() for d in bad), keys=", ".join(bad))
    for d, m in real.items():
        if m.any():
            warnings.append(text("warn_dims_dropped", file=rel, n=int(m.sum()), dims=d.upper()))
    zero_z = has_z & ~real.get("z", np.zeros(len(geoms), dtype=bool))
    if zero_z.any():
        warnings.append(text("warn_zero_z", file=rel, n=int(zero_z.sum())))
    return _flatten(geoms, has_z, has_m)


def _read_source(ctx: RunContext, spec: LayerSpec, si: int, src: SourceSpec,
                 target: CRS, spatial: bool, tables: dict[str, dict[str, str]]) -> SourcePart:
    project = ctx.project
    raw_dir = project.raw_dir
    rel = src.path
    raw_rel = _rel_to(raw_dir, project.root)
    with Timer(ctx, "read"):
        try:
            source_path(raw_dir, rel, spec.id, missing_key="source_missing_sample"
                        if project.config.sample else "source_missing")
            raw = READERS[src.reader](spec, src, raw_dir)
        except SourceError as e:
            if "raw" in e.params:  # the raw folder as the project names it
                e.params["raw"] = raw_rel
                raise type(e)(e.key, **e.params) from None
            raise
        for name, lk in src.lookups.items():
            tables[name] = load_lookup(raw_dir, spec, lk.path, lk.key, lk.value, lk.encoding)
    df = raw.frame.rename(columns=src.rename)
    for k, v in src.constants.items():
        df[k] = v
    n = len(df)
    warnings = list(text("warn_reader", file=rel, detail=w) for w in raw.warnings)
    warnings += [text("warn_text_width", file=rel, column=c, n=k, width=w)
                 for c, (k, w) in raw.filled.items()]
    if n == 0:
        what = "header only" if raw.columns_known else "no features"
        prev = ctx.previous_read(spec.id, src.name)
        if prev and not src.allow_empty:
            raise SourceError("source_empty", layer=spec.id, file=rel, what=what,
                              previous=prev, run=(ctx.previous or {}).get("run_id", "-"))
        warnings.append(text("warn_source_empty", file=rel, what=what))
    miss = missing_columns(spec, list(df.columns))
    if miss and (n > 0 or raw.columns_known):
        raise SourceError("source_missing_field", layer=spec.id, file=rel,
                          fields=", ".join(miss), have=", ".join(map(str, raw.frame.columns)))
    for c in miss:  # a source without records and without known columns (0-feature GeoJSON)
        df[c] = pd.Series([], dtype=object)
    label = _record_labels(df, src)
    df["_record"] = label
    df["_src"] = si
    st = SourceStats(src.name, rel, file_hash(raw.files), None, None, read=n)
    st.data_date = _data_date(spec, src, raw, df, rel)
    if st.data_date is None and n:
        warnings.append(text("warn_data_date_unknown", file=rel))
    problems: list[Problem] = []
    notes = np.full(n, "", dtype=object)
    raw_geom = np.full(n, None, dtype=object)
    if spatial:
        if not raw.has_geometry and n:
            raise SourceError("source_geom_missing", layer=spec.id, file=rel)
        with Timer(ctx, "transform"):
            geoms = _dimensions(spec, src, np.asarray(df.geometry.array, dtype=object), rel,
                                warnings)
            src_crs = (crsmod.source_crs(raw.file_crs, src.crs, src.crs_override,
                                         layer=spec.id, file=rel) if n or src.crs or
                       raw.file_crs else target)
            problems += _axes(ctx, spec, src, src_crs, geoms, rel, raw_geom)
            op, info = crsmod.plan_transform(project, src_crs, target,
                                             corrections=crsmod.corrections_for(
                                                 project, src.corrections),
                                             swap_xy=src.axis_order == "yx")
            if op is None:
                out_geoms, failed, unchanged = geoms, np.zeros(n, dtype=bool), {}
                off_grid = failed
            else:
                ap = op.apply(geoms)
                out_geoms, failed, unchanged = ap.geoms, ap.failed, ap.unchanged
                info.grid_coverage = ap.coverage
                off_grid = _off_grid(op, geoms, failed)
            st.crs, st.transform = crsmod.crs_label(src_crs), info.as_dict()
            out_geoms = out_geoms.copy()
            out_geoms[failed] = None
            raw_geom[failed] = geoms[failed]
            for code, m in (("OUTSIDE_DATUM_GRID", failed & off_grid),
                            ("TRANSFORM_FAILED", failed & ~off_grid)):
                if m.any():
                    problems.append(Problem(m, code, "quarantine", _first_point_text(
                        geoms[m], src_crs, info.grids), None))
            for grid, m in unchanged.items():
                m = m & ~failed
                if m.any():
                    note = text("grid_outside_unchanged", grid=grid)
                    notes[m] = np.where(notes[m] == "", note, notes[m] + "; " + note)
                    problems.append(Problem(m, "OUTSIDE_GRID", "warn", en(
                        "grid_outside_unchanged", grid=grid), grid))
            df = gpd.GeoDataFrame(df.drop(columns="geometry"), geometry=out_geoms, crs=target)
            problems += _sanity(ctx, spec, src_crs, df, rel, failed | (raw_geom != None))  # noqa: E711
    else:
        df = gpd.GeoDataFrame(df.drop(columns="geometry"),
                              geometry=gpd.GeoSeries([None] * n, index=df.index))
    df["_raw_geom"] = raw_geom
    return SourcePart(df, st, problems, raw.at_width, notes, warnings)


def _record_labels(df: pd.DataFrame, src: SourceSpec, start: int = 0) -> pd.Series:
    """``#<row> <id>`` per record (the id from the source's id_field(s), joined by "/");
    ``start``: the records of the source before this batch."""
    n = len(df)
    rownum = pd.Series(np.arange(start + 1, start + n + 1), index=df.index).astype("string")
    cols = [c for c in src.id_fields if c in df.columns]
    if not cols:
        return ("#" + rownum).astype("string")
    rec = df[cols[0]].astype("string").fillna("")
    for c in cols[1:]:
        rec = rec + "/" + df[c].astype("string").fillna("")
    rec = rec.mask(rec.str.strip("/") == "", "")
    return ("#" + rownum + np.where(rec.to_numpy() != "", " " + rec.astype(str), "")
            ).astype("string")


def _off_grid(op: crsmod.CoordOp, geoms: np.ndarray, failed: np.ndarray) -> np.ndarray:
    """Which failed records failed because a point lies outside a must-cover datum grid."""
    if not failed.any() or not any(s.outside == "quarantine" for s in op.steps):
        return np.zeros(len(geoms), dtype=bool)
    probe = crsmod.CoordOp(to_deg=op.to_deg, steps=[s for s in op.steps
                                                     if s.outside == "quarantine"],
                           swap_xy=op.swap_xy)
    return probe.apply(geoms).failed & failed


def _first_point_text(geoms: np.ndarray, src_crs: CRS, grids: list[str]) -> np.ndarray:
    """``(x, y) in EPSG:n outside <grids>`` per geometry (its first vertex)."""
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    _, first = np.unique(idx, return_index=True)
    lbl = crsmod.crs_label(src_crs)
    where = " / ".join(grids) or "the operation's area"
    return np.array([f"({x:.3f}, {y:.3f}) {lbl} outside {where}" for x, y in coords[first]],
                    dtype=object)


def _axes(ctx: RunContext, spec: LayerSpec, src: SourceSpec, src_crs: CRS, geoms: np.ndarray,
          rel: str, raw_geom: np.ndarray) -> list[Problem]:
    """Swapped axes, judged on the raw coordinates before any datum shift."""
    ev = crsmod.axis_evidence(src_crs, geoms, ctx.boundary if spec.check_boundary else None,
                              swap_xy=src.axis_order == "yx")
    if ev.n == 0:
        return []
    n_in, n_sw = int(ev.as_is.sum()), int(ev.swapped.sum())
    if n_in < ev.n / 2:
        key = "crs_swapped" if n_sw >= ev.n / 2 else "crs_outside"
        raise SourceError(key, layer=spec.id, file=rel, n=ev.n, outside=ev.n - n_in,
                          inside=n_sw, where_ja=ev.where_ja, where_en=ev.where_en,
                          crs=crsmod.crs_label(src_crs))
    m = ev.swapped_records
    if not m.any():
        return []
    raw_geom[m] = geoms[m]
    return [Problem(m, "SWAPPED_AXES", "quarantine",
                    f"outside {ev.where_en} as recorded, inside once X/Y are swapped")]


def _sanity(ctx: RunContext, spec: LayerSpec, src_crs: CRS, df: gpd.GeoDataFrame, rel: str,
            judged: np.ndarray) -> list[Problem]:
    """Boundary and Tokyo-datum checks for one source (already reprojected)."""
    problems: list[Problem] = []
    geoms = df.geometry.values
    live = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) & ~judged
    if ctx.boundary is not None and spec.check_boundary and live.any():
        out = live & ~crsmod.inside(ctx.boundary, geoms)
        if out.any():
            problems.append(Problem(out, "OUTSIDE_BOUNDARY", "quarantine", "outside boundary"))
    dc = spec.datum_check
    if dc and dc.reference in ctx.outputs and live.any() and "Tokyo" not in (
            src_crs.geodetic_crs.datum.name if src_crs.geodetic_crs else ""):
        ref = ctx.outputs[dc.reference].frame
        pts = shapely.point_on_surface(geoms[live])
        pts = pts[:: max(1, len(pts) // dc.sample)]
        shifted = crsmod.tokyo_shift_probe(ctx.project, pts)
        as_is, fixed = tokyo_offset_check(pts, shifted, ref)
        if as_is > 30 and fixed < as_is / 3:
            tgt = CRS.from_user_input(ctx.project.config.target_crs)
            tokyo = crsmod.tokyo_equivalent(tgt)
            raise SourceError("crs_tokyo_suspect", layer=spec.id, file=rel,
                              crs=crsmod.crs_label(src_crs), reference=dc.reference,
                              as_is=as_is, fixed=fixed,
                              tokyo=crsmod.crs_label(tokyo) if tokyo else "Tokyo datum")
    return problems


def _extract(ctx: RunContext, spec: LayerSpec) -> Extracted:
    """Read every source, check it, reproject it to the target CRS, and concatenate."""
    target = CRS.from_user_input(ctx.project.config.target_crs)
    spatial = spec.geometry_type != "None" and spec.join is None
    tables: dict[str, dict[str, str]] = {}
    parts: list[SourcePart] = []
    for si, src in enumerate(spec.sources):
        parts.append(_read_source(ctx, spec, si, src, target, spatial, tables))
        ctx.tick("read", spec.id, si + 1, len(spec.sources))
    frames = [p.frame for p in parts]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(
        drop=True)
    frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=target if spatial else None)
    n = len(frame)
    offsets = np.cumsum([0] + [len(f) for f in frames])
    problems: list[Problem] = []
    truncated: dict[str, np.ndarray] = {}
    for si, p in enumerate(parts):
        a, b = offsets[si], offsets[si + 1]
        for pr in p.problems:
            m = np.zeros(n, dtype=bool)
            m[a:b] = pr.mask
            problems.append(Problem(m, pr.reason, pr.action, pr.detail, pr.field))
        for col, mask in p.at_width.items():
            src = spec.sources[si]
            col = src.rename.get(col, col)
            truncated.setdefault(col, np.zeros(n, dtype=bool))[a:b] |= mask
    notes = np.concatenate([p.notes for p in parts]) if parts else np.empty(0, dtype=object)
    return Extracted(frame, [p.stats for p in parts], problems, tables, truncated, notes,
                     [w for p in parts for w in p.warnings])


# --------------------------------------------------------------------------- layer


@dataclass
class Part:
    """The records of one layer (or of one batch of a streamed layer) after every rule."""

    good: gpd.GeoDataFrame | pd.DataFrame  # merged features, lineage columns included
    quarantine: pd.DataFrame
    ledger: Ledger
    unmapped: dict[str, Counter]
    repaired: int
    merged: Counter  # kept records per source index (before ``combine``)
    flags: Counter
    over: int  # features over the publication's vertex budget


def _records(ctx: RunContext, spec: LayerSpec, ex: Extracted,
             seen: SeenIds | None = None) -> Part:
    """Every record-level rule on the records of ``ex`` (a whole layer, or one batch of a
    streamed layer: ``seen`` then holds the ids of the batches before, see
    :func:`_duplicates_streamed`)."""
    project = ctx.project
    frame, stats = ex.frame, ex.stats
    n = len(frame)
    src_idx = frame["_src"].astype(int).to_numpy() if n else np.zeros(0, dtype=int)
    files = np.array([s.file for s in stats], dtype=object)
    ledger = Ledger(n, records=files[src_idx] + " " + frame["_record"].astype(str).to_numpy()
                    if n else None)
    for p in ex.problems:
        ledger.apply(p)
    with Timer(ctx, "normalize"):
        fr = apply_fields(spec, frame, tables=ex.tables, codelists=project.codelists,
                          ledger=ledger, source_names=[s.name for s in stats],
                          truncated=ex.truncated)
    ctx.tick("normalize", spec.id, 1, 1)
    repaired = 0
    out_geoms = frame.geometry.values
    with Timer(ctx, "validate"):
        if spec.geometry_type != "None" and spec.join is None:
            g = check_geometries(frame.geometry.values, spec)
            out_geoms = g.geoms
            gtype = frame.geometry.geom_type.fillna("null").astype(str).to_numpy()
            judged = frame["_raw_geom"].notna().to_numpy()  # coordinates already quarantined
            for code, m in (("NULL_GEOMETRY", g.null), ("EMPTY_GEOMETRY", g.empty),
                            ("GEOMETRY_TYPE", g.wrong_type), ("INVALID_GEOMETRY", g.invalid),
                            ("TOO_SMALL", g.too_small)):
                m = m & ~judged
                ledger.apply(Problem(m, code, "quarantine", gtype[m]))
            repaired = int(g.repaired.sum())
            ledger.flags[g.repaired] = ledger.flags[g.repaired] + "repaired_geometry;"
        out = pd.concat([fr.columns, frame[["_record", "_src"]]], axis=1)
        out = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(out_geoms, index=frame.index),
                               crs=frame.crs)
        for ref in spec.references:
            _reference(ctx, spec, ref, out, ledger)
        if spec.join is not None:
            _join(ctx, spec, out, ledger)
        if spec.fields[spec.id_field].unique:
            if seen is None:
                _duplicates(spec, out, ledger, stats)
            else:
                _duplicates_streamed(spec, out, ledger, stats, seen)
    ctx.tick("validate", spec.id, 1, 1)

    keep = ledger.keep
    out["_flags"] = ledger.flags
    out["_note"] = ex.notes
    quarantine = _quarantine_rows(ctx, spec, frame, stats, ledger.reason, ledger.detail)
    good = out[keep]  # a new frame already (copy-on-write): no second copy
    del out
    if spec.combine is not None:
        good = _combine(spec, good)
    good = _lineage(ctx, spec, good, stats)
    merged = Counter({si: int((src_idx[keep] == si).sum()) for si in range(len(stats))})
    # quality flags as they stand on the merged features (sentinels, repairs, warnings)
    parts = good["quality_flags"].dropna().astype(str).str.split(";").explode()
    flag_counts = Counter({k: int(v) for k, v in parts[parts != ""].value_counts().items()})
    if spec.public_filter:
        try:
            good.query(spec.public_filter)
        except Exception as e:
            raise ConfigError("spec_invalid", file=f"layers/{spec.id}.yml", key="public_filter",
                              detail_ja=str(e)[:200], detail_en=str(e)[:200],
                              fix_ja="pandas の query 式を直す",
                              fix_en="fix the pandas query expression") from e
    return Part(good, quarantine, ledger, fr.unmapped, repaired, merged, flag_counts,
                _over_vertex_budget(spec, good))


def _layer_result(ctx: RunContext, spec: LayerSpec, stats: list[SourceStats], part: Part,
                  quarantine: pd.DataFrame, warnings: list[str]) -> LayerResult:
    """Counts per source (conservation checked), warnings, and the layer's result."""
    project = ctx.project
    for si, st in enumerate(stats):
        st.merged = part.merged.get(si, 0)
        q = quarantine[quarantine["source_name"] == st.name]
        st.quarantined = len(q)
        st.by_reason = Counter(q["reason_code"].tolist())
        if st.read != st.merged + st.quarantined:
            raise EtlError("conservation", layer=spec.id, read=st.read, merged=st.merged,
                           quarantined=st.quarantined)
    warnings = list(warnings)
    if part.over:
        rule = spec.publish_geometry
        warnings.append(text("warn_vertex_budget", n=part.over, max=rule.max_vertices,
                             tol=rule.tolerance_m))
    epochs = sorted({(s.transform or {}).get("epoch_en") or project.config.epoch.en
                     for s in stats})
    if len(epochs) > 1:
        warnings.append(text("warn_mixed_epochs", epochs=", ".join(epochs)))
    data_date = max((getattr(s, "data_date", None) or "") for s in stats) or None
    res = LayerResult(spec, part.good, quarantine, stats, part.repaired, warnings, part.flags,
                      {k: dict(v) for k, v in part.unmapped.items()}, data_date)
    res.problems = part.ledger.report_rows()
    res.epoch = ", ".join(epochs)
    res.over_vertex_budget = part.over
    return res


class LayerSink:
    """Where a streamed layer's batches go: the staged store (appended batch by batch) and
    the change hashes (one id and one 64-bit hash per feature, on disk in a scratch file
    next to the staged run: :class:`~etl.carried.CarriedHashes`)."""

    def __init__(self, staged: StagedRun, lid: str, geometry_type: str | None) -> None:
        self.staged, self.lid, self.geometry_type = staged, lid, geometry_type
        self.hashes = CarriedHashes(self.scratch)
        self.n = 0

    @property
    def scratch(self) -> Path:
        """The folder of the layer's scratch files (unlinked when opened: nothing stays)."""
        return self.staged.artifacts

    def add(self, spec: LayerSpec, good: pd.DataFrame) -> None:
        self.staged.write_layer(self.lid, good, geometry_type=self.geometry_type,
                                append=self.n > 0)
        h = feature_hashes(LayerResult(spec, good, pd.DataFrame(), []))
        self.hashes.append(h["id"].to_numpy(), h["hash"].to_numpy())
        self.n += len(good)

    def frame_hashes(self) -> CarriedHashes:
        """The change hashes, for ``change_counts`` (which reads and closes them)."""
        return self.hashes


def process_layer(ctx: RunContext, spec: LayerSpec, *, batch_size: int | None = None,
                  sink: LayerSink | None = None, keep: set[str] | None = None) -> LayerResult:
    """Run one layer spec end to end. A layer read whole is not written here; a streamed one
    (``batch_size``, see :func:`_stream`) is written batch by batch to ``sink`` and comes
    back already released to the ``keep`` columns later layers read."""
    stream = _stream(ctx, spec, batch_size)
    if stream is None:
        ex = _extract(ctx, spec)
        part = _records(ctx, spec, ex)
        return _layer_result(ctx, spec, ex.stats, part, part.quarantine, ex.warnings)
    return _process_streamed(ctx, spec, stream, sink, keep or set())


# --------------------------------------------------------------------------- streamed layers

#: Records per batch of a streamed layer (``UOZU_GIS_BATCH`` overrides; 0 reads layers whole).
#: 32,768: at 1M records a batch of 65,536 in flight (Arrow table, pandas columns, the
#: written copy) put the peak ~30 MB higher, for ~10 % less CPU.
DEFAULT_BATCH = 32_768


def batch_size_default() -> int | None:
    """The batch size of a run: ``UOZU_GIS_BATCH`` (0 = whole layers) or DEFAULT_BATCH."""
    v = os.environ.get("UOZU_GIS_BATCH", "").strip()
    n = int(v) if v else DEFAULT_BATCH
    return n if n > 0 else None


def _stream(ctx: RunContext, spec: LayerSpec, batch_size: int | None) -> SourceStream | None:
    """The layer's source as a stream of batches, or None to read the layer whole.

    Streamed: one source read by a reader that can stream it, no ``combine:`` and no
    reference to the layer itself (those rules look at all records at once). Everything
    else that spans the layer (unique ids, the source's axis and datum verdicts, the text
    check) is carried from batch to batch on compact keys and counts.
    """
    if (not batch_size or len(spec.sources) != 1 or spec.combine is not None
            or any(r.layer == spec.id for r in spec.references)):
        return None
    src = spec.sources[0]
    opener = STREAMS.get(src.reader)
    if opener is None:
        return None
    project = ctx.project
    raw_dir = project.raw_dir
    with Timer(ctx, "read"):
        try:
            source_path(raw_dir, src.path, spec.id, missing_key="source_missing_sample"
                        if project.config.sample else "source_missing")
            return opener(spec, src, raw_dir, batch_size)
        except SourceError as e:
            if "raw" in e.params:  # the raw folder as the project names it
                e.params["raw"] = _rel_to(raw_dir, project.root)
                raise type(e)(e.key, **e.params) from None
            raise


@dataclass
class _SourceTally:
    """What one source's batches add up to for the verdicts made on the whole source."""

    n: int = 0
    dims: Counter = field(default_factory=Counter)  # real z / m / all-zero z records
    axes_n: int = 0
    axes_in: int = 0
    axes_sw: int = 0
    axes_where: tuple[str, str] = ("", "")
    coverage: dict[str, dict] = field(default_factory=dict)
    datum_pts: list[np.ndarray] = field(default_factory=list)
    data_date: str | None = None
    src_crs: CRS | None = None
    op: Any = None
    info: Any = None


def _dims_batch(src: SourceSpec, geoms: np.ndarray, tally: _SourceTally) -> np.ndarray:
    """``_dimensions`` for one batch: counted here, judged once the source is read."""
    found = _measured_dimensions(geoms)
    if found is None:
        return geoms
    has_z, has_m, real = found
    bad = [d for d, m in real.items() if m.any() and d not in src.drop_dimensions]
    if bad:
        tally.dims["bad"] += int(np.logical_or.reduce([real[d] for d in bad]).sum())
        for d in bad:
            tally.dims["bad_" + d] += 1
    for d, m in real.items():
        tally.dims[d] += int(m.sum())
    tally.dims["zero_z"] += int((has_z & ~real.get("z", np.zeros(len(geoms), bool))).sum())
    return _flatten(geoms, has_z, has_m)


def _source_batch(ctx: RunContext, spec: LayerSpec, src: SourceSpec, head: RawFrame,
                  batch: gpd.GeoDataFrame, start: int, st: SourceStats, tally: _SourceTally,
                  tables: dict[str, dict[str, str]]) -> Extracted:
    """One batch of a streamed source through ``_read_source``'s steps (per record), with
    the verdicts that need the whole source counted in ``tally``."""
    project = ctx.project
    target = CRS.from_user_input(project.config.target_crs)
    spatial = spec.geometry_type != "None" and spec.join is None
    rel = src.path
    df = batch.rename(columns=src.rename)
    for k, v in src.constants.items():
        df[k] = v
    n = len(df)
    if start == 0:
        miss = missing_columns(spec, list(df.columns))
        if miss and (n > 0 or head.columns_known):
            raise SourceError("source_missing_field", layer=spec.id, file=rel,
                              fields=", ".join(miss), have=", ".join(map(str, batch.columns)))
        for c in miss:
            df[c] = pd.Series([], dtype=object)
    df["_record"] = _record_labels(df, src, start)
    df["_src"] = 0
    raw = RawFrame(batch, head.file_crs, head.files, header_date=head.header_date)
    dd = _data_date(spec, src, raw, df, rel)
    if dd is not None and (tally.data_date is None or dd > tally.data_date):
        tally.data_date = dd
    problems: list[Problem] = []
    notes = np.full(n, "", dtype=object)
    raw_geom = np.full(n, None, dtype=object)
    if spatial:
        if not head.has_geometry and n:
            raise SourceError("source_geom_missing", layer=spec.id, file=rel)
        with Timer(ctx, "transform"):
            geoms = _dims_batch(src, np.asarray(df.geometry.array, dtype=object), tally)
            if tally.info is None:
                tally.src_crs = (crsmod.source_crs(head.file_crs, src.crs, src.crs_override,
                                                   layer=spec.id, file=rel)
                                 if n or src.crs or head.file_crs else target)
                tally.op, tally.info = crsmod.plan_transform(
                    project, tally.src_crs, target,
                    corrections=crsmod.corrections_for(project, src.corrections),
                    swap_xy=src.axis_order == "yx")
                # lineage names the transform on every batch; coverage is added at the end
                st.crs, st.transform = crsmod.crs_label(tally.src_crs), tally.info.as_dict()
            src_crs, op, info = tally.src_crs, tally.op, tally.info
            ev = crsmod.axis_evidence(src_crs, geoms,
                                      ctx.boundary if spec.check_boundary else None,
                                      swap_xy=src.axis_order == "yx")
            if ev.n:
                tally.axes_n += ev.n
                tally.axes_in += int(ev.as_is.sum())
                tally.axes_sw += int(ev.swapped.sum())
                tally.axes_where = (ev.where_ja, ev.where_en)
                m = ev.swapped_records
                if m.any():
                    raw_geom[m] = geoms[m]
                    problems.append(Problem(
                        m, "SWAPPED_AXES", "quarantine",
                        f"outside {ev.where_en} as recorded, inside once X/Y are swapped",
                        site=(0, 0)))
            if op is None:
                out_geoms, failed, unchanged = geoms, np.zeros(n, dtype=bool), {}
                off_grid = failed
            else:
                ap = op.apply(geoms)
                out_geoms, failed, unchanged = ap.geoms, ap.failed, ap.unchanged
                for g, c in ap.coverage.items():
                    t = tally.coverage.setdefault(g, dict(c, points=0, covered=0))
                    t["points"] += c["points"]
                    t["covered"] += c["covered"]
                off_grid = _off_grid(op, geoms, failed)
            out_geoms = out_geoms.copy()
            out_geoms[failed] = None
            raw_geom[failed] = geoms[failed]
            for j, (code, m) in enumerate((("OUTSIDE_DATUM_GRID", failed & off_grid),
                                           ("TRANSFORM_FAILED", failed & ~off_grid))):
                if m.any():
                    problems.append(Problem(m, code, "quarantine", _first_point_text(
                        geoms[m], src_crs, info.grids), None, site=(0, 1 + j)))
            for gi, (grid, m) in enumerate(unchanged.items()):
                m = m & ~failed
                if m.any():
                    note = text("grid_outside_unchanged", grid=grid)
                    notes[m] = np.where(notes[m] == "", note, notes[m] + "; " + note)
                    problems.append(Problem(m, "OUTSIDE_GRID", "warn", en(
                        "grid_outside_unchanged", grid=grid), grid, site=(0, 3 + gi)))
            df = gpd.GeoDataFrame(df.drop(columns="geometry"), geometry=out_geoms, crs=target)
            problems += _sanity_batch(ctx, spec, src_crs, df,
                                      failed | (raw_geom != None), tally)  # noqa: E711
    else:
        df = gpd.GeoDataFrame(df.drop(columns="geometry"),
                              geometry=gpd.GeoSeries([None] * n, index=df.index))
    df["_raw_geom"] = raw_geom
    frame = gpd.GeoDataFrame(df.reset_index(drop=True), geometry="geometry",
                             crs=target if spatial else None)
    truncated = {src.rename.get(c, c): m[start:start + n] for c, m in head.at_width.items()}
    st.read += n
    return Extracted(frame, [st], problems, tables, truncated, notes, [])


def _sanity_batch(ctx: RunContext, spec: LayerSpec, src_crs: CRS, df: gpd.GeoDataFrame,
                  judged: np.ndarray, tally: _SourceTally) -> list[Problem]:
    """``_sanity`` for one batch: the boundary per record; the datum check's sample points
    are collected and judged once the source is read (:func:`_source_verdicts`)."""
    problems: list[Problem] = []
    geoms = df.geometry.values
    live = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) & ~judged
    if ctx.boundary is not None and spec.check_boundary and live.any():
        out = live & ~crsmod.inside(ctx.boundary, geoms)
        if out.any():
            problems.append(Problem(out, "OUTSIDE_BOUNDARY", "quarantine", "outside boundary",
                                    site=(0, 10_000)))
    dc = spec.datum_check
    if dc and dc.reference in ctx.outputs and live.any() and "Tokyo" not in (
            src_crs.geodetic_crs.datum.name if src_crs.geodetic_crs else ""):
        tally.datum_pts.append(shapely.get_coordinates(shapely.point_on_surface(geoms[live])))
    return problems


def _source_verdicts(ctx: RunContext, spec: LayerSpec, src: SourceSpec, st: SourceStats,
                     tally: _SourceTally, warnings: list[str]) -> None:
    """The whole-source verdicts of ``_read_source``, in its order: Z/M values, swapped
    axes, a Tokyo-datum suspicion; then the source's CRS and transform in its stats."""
    rel = src.path
    d = tally.dims
    if d["bad"]:
        dims = [x for x in ("z", "m") if d["bad_" + x]]
        raise SourceError("source_dimensions", layer=spec.id, file=rel, n=d["bad"],
                          dims=", ".join(x.upper() for x in dims), keys=", ".join(dims))
    for x in ("z", "m"):
        if d[x]:
            warnings.append(text("warn_dims_dropped", file=rel, n=d[x], dims=x.upper()))
    if d["zero_z"]:
        warnings.append(text("warn_zero_z", file=rel, n=d["zero_z"]))
    if tally.axes_n and tally.axes_in < tally.axes_n / 2:
        key = "crs_swapped" if tally.axes_sw >= tally.axes_n / 2 else "crs_outside"
        raise SourceError(key, layer=spec.id, file=rel, n=tally.axes_n,
                          outside=tally.axes_n - tally.axes_in, inside=tally.axes_sw,
                          where_ja=tally.axes_where[0], where_en=tally.axes_where[1],
                          crs=crsmod.crs_label(tally.src_crs))
    dc = spec.datum_check
    if tally.datum_pts:
        xy = np.concatenate(tally.datum_pts)
        pts = shapely.points(xy)[:: max(1, len(xy) // dc.sample)]
        shifted = crsmod.tokyo_shift_probe(ctx.project, pts)
        as_is, fixed = tokyo_offset_check(pts, shifted, ctx.outputs[dc.reference].frame)
        if as_is > 30 and fixed < as_is / 3:
            tgt = CRS.from_user_input(ctx.project.config.target_crs)
            tokyo = crsmod.tokyo_equivalent(tgt)
            raise SourceError("crs_tokyo_suspect", layer=spec.id, file=rel,
                              crs=crsmod.crs_label(tally.src_crs), reference=dc.reference,
                              as_is=as_is, fixed=fixed,
                              tokyo=crsmod.crs_label(tokyo) if tokyo else "Tokyo datum")
    if tally.info is not None:
        if tally.op is not None:
            tally.info.grid_coverage = tally.coverage
        st.crs, st.transform = crsmod.crs_label(tally.src_crs), tally.info.as_dict()


def _process_streamed(ctx: RunContext, spec: LayerSpec, stream: SourceStream,
                      sink: LayerSink | None, keep: set[str]) -> LayerResult:
    """A one-source layer batch by batch: each batch goes through every rule, is written
    (``sink``) and let go. Across batches only counts, the ids seen (unique ids), the
    quarantine rows and the columns later layers read are kept."""
    project = ctx.project
    src = spec.sources[0]
    head = stream.head
    tables: dict[str, dict[str, str]] = {}
    with Timer(ctx, "read"):
        for name, lk in src.lookups.items():
            tables[name] = load_lookup(project.raw_dir, spec, lk.path, lk.key, lk.value,
                                       lk.encoding)
    st = SourceStats(src.name, src.path, file_hash(head.files), None, None, read=0)
    tally = _SourceTally()
    seen = SeenIds(sink.scratch if sink is not None else None)
    ledger = Ledger(0)
    quarantine: list[pd.DataFrame] = []
    kept: list[pd.DataFrame] = []
    unmapped: dict[str, Counter] = {}
    flags: Counter = Counter()
    merged: Counter = Counter()
    repaired = over = written = 0
    start = 0
    keep, read_back = _geometry_kept(keep, sink)
    crs = None
    batches = stream.batches()
    while True:
        with Timer(ctx, "read"):
            batch = next(batches, None)
        if batch is None:
            break
        ex = _source_batch(ctx, spec, src, head, batch, start, st, tally, tables)
        del batch
        start += len(ex.frame)
        part = _records(ctx, spec, ex, seen)
        ledger.merge_rows(part.ledger)
        if not part.quarantine.empty:
            quarantine.append(part.quarantine)
        for k, c in part.unmapped.items():
            unmapped.setdefault(k, Counter()).update(c)
        flags.update(part.flags)
        merged.update(part.merged)
        repaired += part.repaired
        over += part.over
        written += len(part.good)
        if sink is not None:
            with Timer(ctx, "write"):
                sink.add(spec, part.good)
        if keep:
            kept.append(_compact(part.good, keep))
            crs = getattr(part.good, "crs", None) if crs is None else crs
        del ex, part
        _trim()
    ctx.tick("read", spec.id, 1, 1)
    if read_back:
        assert sink is not None
        staged, lid = sink.staged, sink.lid
        ctx.geometry_at[spec.id] = (lambda rows: staged.read_geometries(lid, rows), crs)
    with Timer(ctx, "read"):
        stream.finish()
    if st.read == 0:
        what = "header only" if head.columns_known else "no features"
        prev = ctx.previous_read(spec.id, src.name)
        if prev and not src.allow_empty:
            raise SourceError("source_empty", layer=spec.id, file=src.path, what=what,
                              previous=prev, run=(ctx.previous or {}).get("run_id", "-"))
    warnings = [text("warn_reader", file=src.path, detail=w) for w in head.warnings]
    warnings += [text("warn_text_width", file=src.path, column=c, n=k, width=w)
                 for c, (k, w) in head.filled.items()]
    if st.read == 0:
        warnings.append(text("warn_source_empty", file=src.path, what="header only"
                             if head.columns_known else "no features"))
    st.data_date = _data_date_fixed(spec, src, head, tally)
    if st.data_date is None and st.read:
        warnings.append(text("warn_data_date_unknown", file=src.path))
    _source_verdicts(ctx, spec, src, st, tally, warnings)
    q = (pd.concat(quarantine, ignore_index=True) if quarantine
         else pd.DataFrame(columns=QUARANTINE_COLUMNS))
    order = list(spec.fields)
    unmapped = {k: unmapped[k] for k in sorted(unmapped, key=order.index)}
    part = Part(_concat_kept(kept), q, ledger, unmapped, repaired, merged,
                Counter(dict(sorted(flags.items(), key=lambda kv: -kv[1]))), over)
    res = _layer_result(ctx, spec, [st], part, q, warnings)
    res.written = written
    res.streamed = True
    return res


def _data_date_fixed(spec: LayerSpec, src: SourceSpec, head: RawFrame,
                     tally: _SourceTally) -> str | None:
    """The source's data date: from a field, the latest over the batches; else as declared."""
    dd = src.data_date
    if dd is None or isinstance(dd, dt.date) or dd in ("mtime", "dbf_header"):
        return _data_date(spec, src, head, pd.DataFrame(), src.path)
    return tally.data_date


def _fixed_mmap_threshold() -> None:
    """Every block of 128 KiB or more (a batch's column arrays) gets its own mapping, handed
    back to the system as soon as it is freed. By default glibc raises the threshold after
    each large free (up to 32 MiB), so later batches land in the heap, where small blocks
    allocated between them keep the pages resident (~30 MB of a merge's peak at 1M)."""
    if _LIBC is not None and hasattr(_LIBC, "mallopt"):
        _LIBC.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def _trim() -> None:
    """Hand freed memory back to the system (Arrow's pool, then glibc's heap).

    Batches are freed as they are written, but both allocators keep the pages for reuse, so
    without this the resident size of a run grows to its largest batch plus everything freed
    around it, and stays there for the layers after it.
    """
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _geometry_kept(keep: set[str], sink: LayerSink | None) -> tuple[set[str], bool]:
    """What a streamed layer keeps for a join that takes its geometry or an endpoint
    reference to it: only the geometry types (one byte per feature) when the staged store
    reads the written geometries back by row, else the geometries themselves."""
    if BY_ROW not in keep:
        return keep, False
    keep = keep - {BY_ROW}
    if ("geometry" not in keep and sink is not None and sink.staged.reads_back
            and sink.geometry_type not in (None, "None")):
        return keep | {GTYPE}, True
    return keep | {"geometry"}, False


def _compact(good: pd.DataFrame, keep: set[str]) -> pd.DataFrame:
    """The columns of a batch later layers read (see :func:`_kept_columns`)."""
    cols = [c for c in good.columns if c in keep and c != "geometry"]
    if "geometry" in keep and isinstance(good, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(good[cols].reset_index(drop=True).copy(),
                                geometry=good.geometry.values.copy(), crs=good.crs)
    out = pd.DataFrame(good[cols]).reset_index(drop=True).copy()
    if GTYPE in keep:
        out[GTYPE] = (shapely.get_type_id(good.geometry.values).astype(np.int8)
                      if isinstance(good, gpd.GeoDataFrame)
                      else np.full(len(good), -1, dtype=np.int8))
    return out


def _as_kept(geoms: np.ndarray, gtype: np.ndarray) -> np.ndarray:
    """Geometries read back from the staged store as they were in memory: the store writes
    the layer's declared type, so a Polygon comes back as a one-part MultiPolygon (and an
    empty one as an empty multi-geometry)."""
    got = shapely.get_type_id(geoms)
    diff = got != gtype
    if not diff.any():
        return geoms
    geoms = geoms.copy()
    gone = diff & (gtype == -1)
    geoms[gone] = None
    part = diff & ~gone & np.isin(gtype, (0, 1, 3)) & (got == gtype + 3)
    empty = part & shapely.is_empty(geoms)
    single = part & ~empty & (shapely.get_num_geometries(geoms) == 1)
    geoms[single] = shapely.get_geometry(geoms[single], 0)
    for t in np.unique(gtype[empty]):
        geoms[empty & (gtype == t)] = shapely.from_wkt(_EMPTY[int(t)])
    left = diff & ~gone & ~single & ~empty
    if left.any():  # never expected: a store that changed a geometry beyond its type
        raise AssertionError(f"geometry read back as type {got[left][0]}, "
                             f"written as {gtype[left][0]}")
    return geoms


_EMPTY = {0: "POINT EMPTY", 1: "LINESTRING EMPTY", 3: "POLYGON EMPTY"}


def _concat_kept(kept: list[pd.DataFrame]) -> pd.DataFrame:
    if not kept:
        return pd.DataFrame()
    out = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0]
    if isinstance(kept[0], gpd.GeoDataFrame):
        out = gpd.GeoDataFrame(out, geometry="geometry", crs=kept[0].crs)
    return out


def _duplicates_streamed(spec: LayerSpec, out: gpd.GeoDataFrame, ledger: Ledger,
                         stats: list[SourceStats], seen: SeenIds) -> None:
    """``_duplicates`` (no ``combine``) for one batch: ``seen`` holds every id kept in the
    batches before, so a record is a duplicate exactly when the whole layer's check would
    call it one (the first feature with an id wins, and is named in the detail)."""
    keep = ledger.keep
    idx = np.flatnonzero(keep)
    idf = spec.id_field
    ids = out[idf].astype("string").to_numpy(dtype=object, na_value=None)[idx]
    live = np.array([v is not None for v in ids], dtype=bool)
    idx, ids = idx[live], ids[live]
    src = out["_src"].to_numpy()[idx]
    rec = out["_record"].astype(str).to_numpy()[idx]
    h = pd.util.hash_array(ids.astype(object)) if len(ids) else np.empty(0, np.uint64)
    before = seen.find(h, ids)
    first = ~pd.Series(ids, dtype=object).duplicated(keep="first").to_numpy()
    here = {}
    for j in np.flatnonzero(first & (before < 0)):
        here[ids[j]] = j
    m = np.zeros(len(out), dtype=bool)
    det: list[str] = []
    for j in np.flatnonzero(~first | (before >= 0)):
        if before[j] >= 0:
            w_src, w_rec = seen.winner(int(before[j]))
        else:
            w = here[ids[j]]
            w_src, w_rec = int(src[w]), rec[w]
        m[idx[j]] = True
        det.append(f"{idf}={ids[j]} also in {stats[w_src].file} {w_rec}")
    new = first & (before < 0)
    seen.add(h[new], ids[new], src[new], rec[new])
    ledger.apply(Problem(m, "DUPLICATE_ID", "quarantine", np.array(det, dtype=object), idf))


def _over_vertex_budget(spec: LayerSpec, good: gpd.GeoDataFrame) -> int:
    if spec.geometry_type == "None" or "geometry" not in good or good.empty:
        return 0
    nv = shapely.get_num_coordinates(good.geometry.values)
    return int((nv > spec.publish_geometry.max_vertices).sum())


def _reference(ctx: RunContext, spec: LayerSpec, ref: Any, out: gpd.GeoDataFrame,
               ledger: Ledger) -> None:
    """A reference to another layer's key (and an endpoint's distance), by its policies."""
    keep = ledger.keep
    target = out[keep] if ref.layer == spec.id else ctx.outputs[ref.layer].frame
    sub = out[keep]
    lut = None
    if ref.layer != spec.id:  # the other layer's lookup, built once for all the batches
        lut = ctx.lookup(("ref", ref.layer, ref.key),
                         lambda: key_positions(target, ref.key))
        if ref.endpoint and GTYPE in target.columns:
            target, lut = _rows_read_back(ctx, ref.layer, target, lut, sub[ref.field])
    missing, far, dist = reference_check(sub, ref, target, lut)
    idx = np.flatnonzero(keep)
    vals = sub[ref.field].astype(str).to_numpy()
    m = np.zeros(len(out), dtype=bool)
    m[idx[missing]] = True
    out[ref.field] = ledger.apply(Problem(
        m, "MISSING_REFERENCE", ref.on_missing,
        f"{ref.field}=" + vals[missing] + f" not in {ref.layer}.{ref.key}", ref.field),
        out[ref.field])
    f = far & ~missing
    m = np.zeros(len(out), dtype=bool)
    m[idx[f]] = True
    out[ref.field] = ledger.apply(Problem(
        m, "FAR_FROM_REFERENCE", ref.on_far,
        f"{ref.field}: " + np.round(dist.to_numpy()[f], 2).astype(str)
        + f" m > {ref.tolerance_m} m", ref.field), out[ref.field])


def _rows_read_back(ctx: RunContext, layer: str, target: pd.DataFrame, lut: pd.Series,
                    keys: pd.Series) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """The rows of a streamed layer that ``keys`` name, with their geometries read back from
    the staged store, and the lookup (key -> position) into them: the same matches and the
    same geometries as the whole layer held in memory."""
    pos = keys.astype("string").map(lut)
    rows = np.unique(pos.dropna().to_numpy(dtype=np.int64))
    read, crs = ctx.geometry_at[layer]
    geoms = (_as_kept(read(rows), target[GTYPE].to_numpy()[rows]) if len(rows)
             else np.empty(0, dtype=object))
    hit = lut[lut.isin(rows)]
    small = pd.Series(np.searchsorted(rows, hit.to_numpy()), index=hit.index)
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries(geoms, crs=crs)), small


def _join(ctx: RunContext, spec: LayerSpec, out: gpd.GeoDataFrame, ledger: Ledger) -> None:
    """Attach the geometry of the joined layer on normalized keys; unmatched by the policy."""
    j = spec.join
    assert j is not None
    other = ctx.outputs[j.layer].frame

    def positions() -> pd.Series:
        key = pd.MultiIndex.from_frame(other[j.keys].astype("string"))
        pos = pd.Series(np.arange(len(other)), index=key)
        return pos[~pos.index.duplicated()]

    pos = ctx.lookup(("join", j.layer, tuple(j.keys)), positions)
    mine = pd.MultiIndex.from_frame(out[j.keys].astype("string"))
    hit = pos.reindex(mine).to_numpy()
    matched = ~np.isnan(hit)
    un = ledger.keep & ~matched
    # the key text only for the unmatched rows (a row-wise join over all rows cost ~5 s/1M);
    # applied even when none is unmatched (the same ledger calls in every batch)
    txt = (out.loc[un, j.keys].astype(str).agg(" ".join, axis=1).to_numpy() + f" not in {j.layer}"
           if un.any() else "")
    ledger.apply(Problem(un, "JOIN_UNMATCHED", j.on_missing, txt, "+".join(j.keys)))
    if j.take_geometry:
        geoms = np.full(len(out), None, dtype=object)
        rows = hit[matched].astype(int)
        if GTYPE in other.columns:  # read back from the staged store (see _geometry_kept)
            read, crs = ctx.geometry_at[j.layer]
            geoms[matched] = _as_kept(read(rows), other[GTYPE].to_numpy()[rows])
        else:
            geoms[matched] = other.geometry.values[rows]
            crs = other.crs
        out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=crs), inplace=True)


def _duplicates(spec: LayerSpec, out: gpd.GeoDataFrame, ledger: Ledger,
                stats: list[SourceStats]) -> None:
    """Ids must be unique among the layer's features once its sources are combined.

    Judged after every other rule (and after ``combine:`` folds records of one object), so a
    record is a duplicate only of a feature that is really in the master; the quarantine row
    names the record it collides with.
    """
    keep = ledger.keep
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return
    idf = spec.id_field
    ids = out[idf].astype("string").to_numpy(dtype=object, na_value=None)[idx]
    if spec.combine is not None:
        g = out.loc[keep, spec.combine.key].astype("string").fillna("\x00").agg(
            "\x1f".join, axis=1).to_numpy()
    else:
        g = idx
    df = pd.DataFrame({"pos": idx, "g": g, "id": ids})
    feat = df.groupby("g", sort=False).agg(first=("pos", "min"))
    feat["id"] = df.dropna(subset=["id"]).groupby("g", sort=False)["id"].first().reindex(
        feat.index)
    feat = feat.sort_values("first")
    dup = feat["id"].notna() & feat["id"].duplicated(keep="first")
    if not dup.any():
        return
    winner = feat[~dup & feat["id"].notna()].set_index("id")["first"]
    bad = df[df["g"].isin(feat.index[dup])]
    src = out["_src"].to_numpy()
    rec = out["_record"].astype(str).to_numpy()
    det = []
    for p in bad["pos"]:
        v = ids[np.searchsorted(idx, p)]
        w = winner.get(v)
        det.append(f"{idf}={v} also in {stats[src[w]].file} {rec[w]}" if w is not None
                   else f"{idf}={v}")
    m = np.zeros(len(out), dtype=bool)
    m[bad["pos"].to_numpy()] = True
    ledger.apply(Problem(m, "DUPLICATE_ID", "quarantine", np.array(det, dtype=object), idf))


def _combine(spec: LayerSpec, good: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Fold records with the same key: flags OR-ed, otherwise the first non-null value."""
    c = spec.combine
    assert c is not None
    key = good[c.key].astype("string").agg("\x1f".join, axis=1)
    if not key.duplicated().any():
        good["_records"] = 1
        return good
    agg: dict[str, Any] = {col: "first" for col in good.columns if col not in c.any_true}
    for col in c.any_true:
        agg[col] = "max"
    grouped = good.assign(_k=key.to_numpy(), _records=1)
    for col in c.any_true:
        grouped[col] = grouped[col].astype("boolean").fillna(False)
    agg["_records"] = "sum"
    res = grouped.groupby("_k", sort=False).agg(agg)
    res = gpd.GeoDataFrame(res.reset_index(drop=True), geometry="geometry", crs=good.crs)
    return res


def _lineage(ctx: RunContext, spec: LayerSpec, good: gpd.GeoDataFrame,
             stats: list[SourceStats]) -> gpd.GeoDataFrame:
    """Per-feature lineage columns (internal): system, file, record, hash, spec, run, transform."""
    src_idx = good["_src"].astype(int).to_numpy()
    names = np.array([s.name for s in stats], dtype=object)
    files = np.array([s.file for s in stats], dtype=object)
    hashes = np.array([s.sha256[:16] for s in stats], dtype=object)
    xf = np.array([(s.transform or {}).get("title_en", "") for s in stats], dtype=object)
    cols = [c.name for c in output_columns(spec, lineage=False) if c.name in good.columns]
    res = good[cols]  # copy-on-write: the new columns below do not touch ``good``
    res["source_system"] = spec.source_system
    res["source_name"] = names[src_idx]
    res["source_file"] = files[src_idx]
    res["source_record"] = good["_record"].to_numpy()
    res["source_hash"] = hashes[src_idx]
    res["spec_version"] = f"{spec.spec_version}:{ctx.project.spec_hashes.get(spec.id, '')}"
    res["run_id"] = ctx.run_id
    note = good["_note"].astype(str).to_numpy() if "_note" in good else np.full(len(good), "")
    base = xf[src_idx].astype(object)
    res["xy_transform"] = np.where(note != "", base + "; " + note, base)
    fl = good["_flags"].astype("string").str.rstrip(";")
    res["quality_flags"] = fl.mask(fl == "")
    if spec.geometry_type != "None":
        res = gpd.GeoDataFrame(res, geometry=good.geometry.values, crs=good.crs)
    return res


def _quarantine_rows(ctx: RunContext, spec: LayerSpec, frame: gpd.GeoDataFrame,
                     stats: list[SourceStats], reason: np.ndarray,
                     detail: np.ndarray) -> pd.DataFrame:
    """One row per quarantined record: reason, raw attributes (JSON) and geometry (WKT).

    The geometry is the record's own: in the target CRS when it could be transformed, else as
    read (swapped axes, outside a datum grid) with ``geometry_crs`` naming its CRS.
    """
    m = reason != ""
    if not m.any():
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    sub = frame[m]
    raw_cols = [c for c in sub.columns if c not in ("geometry", "_record", "_src", "_raw_geom")]
    raw = sub[raw_cols].astype(object).where(sub[raw_cols].notna(), None)
    raw_json = [json.dumps(r, ensure_ascii=False, default=str) for r in raw.to_dict("records")]
    src = sub["_src"].astype(int).to_numpy()
    rawg = sub["_raw_geom"].to_numpy()
    use_raw = np.array([g is not None for g in rawg], dtype=bool)
    geoms = np.where(use_raw, rawg, sub.geometry.values)
    wkt = shapely.to_wkt(geoms, rounding_precision=6 if spec.geometry_type != "None" else 3)
    target = crsmod.crs_label(CRS.from_user_input(ctx.project.config.target_crs))
    gcrs = np.where(use_raw, np.array([stats[i].crs or "" for i in src], dtype=object),
                    np.where(shapely.is_missing(geoms), "", target))
    return pd.DataFrame({
        "layer": spec.id,
        "source_name": [stats[i].name for i in src],
        "source_file": [stats[i].file for i in src],
        "record": sub["_record"].astype(str).to_numpy(),
        "reason_code": reason[m],
        "reason": [reason_label(r) for r in reason[m]],
        "detail": detail[m],
        "raw_attrs": raw_json,
        "geometry_wkt": pd.Series(wkt, dtype=object).fillna("").to_numpy(),
        "geometry_crs": gcrs,
        "run_id": ctx.run_id,
    })


def check_budget(res: LayerResult) -> None:
    """A layer quarantining more than its ``max_quarantine`` fails, naming reasons and fix."""
    spec = res.spec
    read = sum(s.read for s in res.sources)
    q = sum(s.quarantined for s in res.sources)
    budget = spec.max_quarantine
    limit = budget.limit(read)
    if q == 0 or q <= limit:
        return
    by = Counter()
    for s in res.sources:
        by.update(s.by_reason)
    top = by.most_common(3)
    ex = res.quarantine.drop_duplicates("reason_code").set_index("reason_code")

    def reasons(lang: int) -> str:
        out = []
        for code, k in top:
            r = ex.loc[code] if code in ex.index else None
            eg = f"{r['source_file']} {r['record']}: {r['detail']}"[:160] if r is not None else ""
            hint = REASON_HINTS.get(code, ("", ""))[lang]
            out.append(f"{code} ×{k} ({eg})" + (f" → {hint}" if hint else ""))
        return "; ".join(out)

    raise EtlError("quarantine_budget", layer=spec.id, read=read, quarantined=q,
                   pct=round(100 * q / max(read, 1), 1), limit=int(limit), share=budget.share,
                   count=budget.count, reasons_ja=reasons(0), reasons_en=reasons(1),
                   fix_ja=ja("budget_fix", layer=spec.id), fix_en=en("budget_fix", layer=spec.id))


# --------------------------------------------------------------------------- run


class RunErrors(EtlError):
    """Every layer's error of one run (all inputs are checked before the run gives up).

    ``manifest`` holds what the layers that did run would have produced (validate prints it).
    """

    def __init__(self, errors: list[EtlError], *, dry_run: bool = False,
                 manifest: dict | None = None) -> None:
        self.errors = errors
        self.key, self.params = ("validate_failed" if dry_run else "run_failed"), {}
        self.manifest = manifest
        Exception.__init__(self, "\n".join([*(str(e) for e in errors), text(self.key)]))


@dataclass
class RunResult:
    run_id: str
    manifest: dict[str, Any]
    layers: dict[str, LayerResult]
    run_dir: Path | None


def run_merge(project: Project, *, only: list[str] | None = None, dry_run: bool = False,
              progress: Progress | None = None, store: MasterStore | None = None,
              argv: list[str] | None = None, batch_size: int | str | None = "default",
              jobs: int | None = None) -> RunResult:
    """Merge the layers (``only`` plus their dependencies; default all) into a new master.

    With ``dry_run`` (``validate``) every record goes through the same steps and the result
    (counts, quarantine, budgets) is what a merge would write, but nothing is written.
    ``batch_size``: records per batch of a streamed layer (None reads every layer whole;
    the default is :func:`batch_size_default`). The output is the same for any batch size.
    ``jobs``: layers merged at once in child processes (default
    :func:`etl.parallel.jobs_default`; 1 merges them one after the other in this process).
    The output is the same for any number. A store that cannot write layers apart
    (``StagedRun.parts``: PostGIS, whose tables a child's own connection would have to
    share) and a partial merge (its staged master starts as a copy of the current one, whose
    tables would have to be replaced in place) run with one.
    """
    batch = batch_size_default() if batch_size == "default" else batch_size
    assert batch is None or isinstance(batch, int)
    jobs = jobs_default() if jobs is None else max(1, int(jobs))
    _fixed_mmap_threshold()
    check_project(project)
    t0 = time.perf_counter()
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    run_id = new_run_id()
    ctx = RunContext(project, run_id, progress, boundary=crsmod.load_boundary(project))
    store = store or open_store(project)
    try:
        ctx.previous = store.manifest()
    except EtlError as e:
        if not dry_run:
            raise
        ctx.warnings.append(text("warn_previous_unknown", detail=str(e).split(" / ")[-1]))
    order = project.order(only)
    ctx.tick("plan", "", 0, len(order))
    wanted = order if not only else [lid for lid in order if lid in set(only) | set(order)]
    keep = _kept_columns(project, order)
    if dry_run:
        errors = _process_layers(ctx, order, keep, batch=batch, jobs=jobs)
        if errors:
            raise RunErrors(errors, dry_run=True, manifest=_manifest(
                ctx, started, [lid for lid in wanted if lid in ctx.outputs], only, argv,
                prev=ctx.previous))
        manifest = _manifest(ctx, started, wanted, only, argv)
        manifest["seconds"] = round(time.perf_counter() - t0, 2)
        return RunResult(run_id, manifest, ctx.outputs, None)
    try:
        with store.lock():
            prev = store.manifest()
            staged = store.begin(run_id, partial=bool(only))
            try:
                written = set(wanted)
                steps = [0]

                def sink(lid: str, to: StagedRun | None = None) -> LayerSink | None:
                    """Where a streamed layer's batches are written (None: not written);
                    ``to``: a child's own part of the run instead of the staged store."""
                    if lid not in written or not staged.appends:
                        return None
                    spec = project.specs[lid]
                    gt = spec.geometry_type if spec.join is None else "MultiPolygon"
                    return LayerSink(to or staged, lid, gt)

                def write(lid: str, res: LayerResult, out: LayerSink | None,
                          to: StagedRun | None = None) -> None:
                    """Write a finished layer to the staged store at once, hash it and let it
                    go: only what later layers read of it stays in memory (bounded RSS). A
                    streamed layer is written already: only its change summary is left.
                    ``to``: a child's own part of the run (moved in and counted by
                    ``landed``)."""
                    if lid not in written:
                        return
                    dst = to or staged
                    with Timer(ctx, "write"):
                        if res.streamed:
                            assert out is not None
                            res.change = change_counts(store, prev, dst, lid,
                                                       out.frame_hashes())
                        else:
                            gt = (res.spec.geometry_type if res.spec.join is None
                                  else "MultiPolygon")
                            dst.write_layer(lid, res.frame, geometry_type=gt)
                            res.change = change_summary(store, prev, dst, lid, res)
                    if to is None:
                        landed(lid)

                def landed(lid: str) -> None:
                    steps[0] += 1
                    ctx.tick("write", lid, steps[0], len(wanted))

                errors = _process_layers(
                    ctx, order, keep, write=write, sink=sink,
                    batch=batch if staged.appends else None,
                    jobs=jobs if staged.parts and not only else 1,
                    staged=staged, landed=landed)
                if errors:
                    raise RunErrors(errors, manifest=_manifest(
                        ctx, started, [lid for lid in wanted if lid in ctx.outputs], only,
                        argv, prev=ctx.previous))
                with Timer(ctx, "write"):
                    _write_tables(ctx, staged, wanted, partial=bool(only))
                manifest = _manifest(ctx, started, wanted, only, argv, prev=prev)
                manifest["store"] = store.kind
                manifest["seconds"] = round(time.perf_counter() - t0, 2)
                manifest["peak_rss_mb"] = round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
                write_reports(project, manifest, ctx.outputs, staged.artifacts)
                rd = staged.commit(manifest)
            except BaseException:
                staged.abort()
                raise
    except EtlError:
        raise
    except Exception as e:  # disk full, permissions, a lock, a database gone away
        err = explain_error(e, store)
        if err is None:
            raise
        raise RunErrors([err]) from e
    return RunResult(run_id, manifest, ctx.outputs, rd)


def _kept_columns(project: Project, order: list[str]) -> dict[str, set[str]]:
    """Per layer, what later layers of the run read of it once it is written: reference keys,
    join keys and ``geometry`` (endpoints, joined geometry, the datum check). Everything else
    is released after the layer is written, so memory holds one layer at a time."""
    need: dict[str, set[str]] = {}
    for lid in order:
        spec = project.specs[lid]
        for ref in spec.references:
            if ref.layer != lid:
                need.setdefault(ref.layer, set()).update(
                    {ref.key, BY_ROW} if ref.endpoint else {ref.key})
        if spec.join is not None:
            need.setdefault(spec.join.layer, set()).update(spec.join.keys)
            if spec.join.take_geometry:
                need[spec.join.layer].add(BY_ROW)
        if spec.datum_check:
            need.setdefault(spec.datum_check.reference, set()).add("geometry")
    return need


#: in :func:`_kept_columns`: a join or an endpoint reference reads the geometries of the
#: rows it matches. A layer read whole keeps its geometries; a streamed one keeps, under
#: this column name, each feature's shapely geometry type id (one byte) when the staged
#: store reads the geometries back by row (:func:`_geometry_kept`)
BY_ROW = "\x00geometry by row"
GTYPE = BY_ROW


def _release(res: LayerResult, keep: set[str]) -> None:
    """Replace a written layer's frame by the columns later layers read (a copy, so the full
    frame can be freed); the feature count stays on ``written``."""
    if BY_ROW in keep:
        keep = (keep - {BY_ROW}) | {"geometry"}
    f = res.frame
    res.written = len(f)
    cols = [c for c in f.columns if c in keep and c != "geometry"]
    if "geometry" in keep and isinstance(f, gpd.GeoDataFrame):
        res.frame = gpd.GeoDataFrame(f[cols].copy(), geometry=f.geometry.values.copy(),
                                     crs=f.crs)
    elif keep:
        res.frame = pd.DataFrame(f[cols]).copy()
    else:
        res.frame = f.iloc[:0].copy()


def _process_layers(ctx: RunContext, order: list[str], keep: dict[str, set[str]], *,
                    write: Callable[..., None] | None = None,
                    sink: Callable[..., LayerSink | None] | None = None,
                    batch: int | None = None, jobs: int = 1, staged: StagedRun | None = None,
                    landed: Callable[[str], None] | None = None) -> list[EtlError]:
    """Every layer in dependency order, each written (``write``) as soon as it passed and then
    released; every layer's error is collected (nothing is written after the first one).
    With ``jobs`` > 1 layers that do not depend on each other run in child processes
    (:func:`_process_parallel`), with the same result."""
    if jobs > 1 and len(order) > 1:
        return _process_parallel(ctx, order, keep, write=write, sink=sink, batch=batch,
                                 jobs=jobs, staged=staged, landed=landed)
    errors: list[EtlError] = []
    failed: set[str] = set()
    last = {dep: i for i, lid in enumerate(order)
            for dep in ctx.project.specs[lid].dependencies()}  # a layer's last reader
    for i, lid in enumerate(order):
        ctx.lookups.clear()  # built on the layers this one reads (some are released below)
        for dep in [d for d, j in last.items() if j == i - 1 and d in ctx.outputs]:
            _release(ctx.outputs[dep], set())  # its last reader is done: let it go entirely
        blocked = sorted(ctx.project.specs[lid].dependencies() & failed)
        if blocked:
            errors.append(EtlError("join_layer_failed", layer=lid, other=blocked[0]))
            failed.add(lid)
            continue
        out = sink(lid) if sink is not None and not errors else None
        try:
            res = process_layer(ctx, ctx.project.specs[lid], batch_size=batch, sink=out,
                                keep=keep.get(lid, set()))
            ctx.outputs[lid] = res
            check_budget(res)
        except EtlError as e:
            errors.append(e)
            failed.add(lid)
            if lid in ctx.outputs:  # over its quarantine budget: counted, not kept
                _release(ctx.outputs[lid], set())
            continue
        if write is not None and not errors:
            write(lid, res, out)
        if not res.streamed:
            _release(res, keep.get(lid, set()))
        _trim()
    return errors


def _layer_cost(ctx: RunContext, lid: str) -> int:
    """Bytes of a layer's raw files (its sources, with a shapefile's companions): which of
    the layers ready to run is likely the longest (started first)."""
    raw = ctx.project.raw_dir
    total = 0
    for src in ctx.project.specs[lid].sources:
        p = raw / src.path
        if p.parent.is_dir():
            total += sum(f.stat().st_size for f in p.parent.glob(p.stem + ".*") if f.is_file())
    return total


def _critical_paths(ctx: RunContext, order: list[str], deps: dict[str, set[str]]
                    ) -> dict[str, int]:
    """Per layer: its cost plus the longest chain of layers waiting for it."""
    cost = {lid: _layer_cost(ctx, lid) for lid in order}
    path: dict[str, int] = {}
    for lid in reversed(order):
        path[lid] = cost[lid] + max((path[r] for r in order if lid in deps[r]), default=0)
    return path


def _layer_child(ctx: RunContext, lid: str, keep: set[str], batch: int | None,
                 write: Callable[..., None] | None, sink: Callable[..., LayerSink | None] | None,
                 part: StagedRun | None, send: Callable[[Any], None]) -> None:
    """One layer in a child process, as :func:`_process_layers` runs it: processed, checked
    against its budget, written into its own ``part`` of the run (when given) and released;
    the result goes back with the stage seconds spent here and how its geometries are read
    back (the parent rebuilds the reader on ``part``)."""
    ctx.progress = lambda *a: send(("tick", *a))
    ctx.lookups.clear()
    t0 = Counter(ctx.stage_seconds)
    spec = ctx.project.specs[lid]
    out = sink(lid, part) if sink is not None and part is not None else None
    err = None
    try:
        res: LayerResult | None = process_layer(ctx, spec, batch_size=batch, sink=out,
                                                keep=keep)
        assert res is not None
        ctx.outputs[lid] = res
        check_budget(res)
    except EtlError as e:
        err = pack_error(e)
        res = ctx.outputs.get(lid)
        if res is not None:  # over its quarantine budget: counted, not kept
            _release(res, set())
    else:
        if write is not None and part is not None:
            write(lid, res, out, part)
        if not res.streamed:
            _release(res, keep)
    geo = ctx.geometry_at.get(lid)
    if res is not None:
        res.spec = None  # type: ignore[assignment]  # the parent has it (not pickled)
    seconds = Counter(ctx.stage_seconds)
    seconds.subtract(t0)
    send(("result", res, err, dict(seconds), geo is not None, geo[1] if geo else None,
          write is not None and part is not None))


def _process_parallel(ctx: RunContext, order: list[str], keep: dict[str, set[str]], *,
                      write: Callable[..., None] | None,
                      sink: Callable[..., LayerSink | None] | None, batch: int | None,
                      jobs: int, staged: StagedRun | None,
                      landed: Callable[[str], None] | None) -> list[EtlError]:
    """:func:`_process_layers` with up to ``jobs`` layers at once, each in a forked child.

    A layer starts once every layer it reads has finished (the child inherits their kept
    columns by the fork); of the layers ready, the one heading the longest chain first. A
    child writes its layer into its own GeoPackage (``staged.part``); the parent moves the
    finished layers into the staged master in dependency order (``staged.land``), so the
    master is the one a sequential run writes. A layer that reads another's geometries back
    by row reads them from that layer's part. Errors, the layers a failure blocks, what is
    written after the first failure and what is released match the sequential run.
    """
    specs = ctx.project.specs
    deps = {lid: specs[lid].dependencies() & set(order) for lid in order}
    readers = {lid: {r for r in order if lid in deps[r]} for lid in order}
    pos = {lid: i for i, lid in enumerate(order)}
    last = {d: max(pos[r] for r in rs) for d, rs in readers.items() if rs}
    prio = _critical_paths(ctx, order, deps)
    errors: dict[str, EtlError] = {}
    failed: set[str] = set()
    finished: set[str] = set()
    pending = list(order)
    running: dict[Child, tuple[str, StagedRun | None]] = {}
    parts: dict[str, StagedRun] = {}  # written by a child, not yet removed
    wrote: set[str] = set()
    land_at = 0

    def released(d: str) -> None:
        """A layer's readers are done: let it go (as the sequential run does before the
        layer after its last reader)."""
        if d in ctx.outputs and readers[d] <= finished and last[d] + 1 < len(order):
            _release(ctx.outputs[d], set())

    try:
        while pending or running or land_at < len(order):
            changed = True
            while changed:  # blocked by a failed layer: known once its readers are due
                changed = False
                for lid in [x for x in pending if deps[x] <= finished and deps[x] & failed]:
                    errors[lid] = EtlError("join_layer_failed", layer=lid,
                                           other=sorted(deps[lid] & failed)[0])
                    failed.add(lid)
                    finished.add(lid)
                    pending.remove(lid)
                    changed = True
                    for d in deps[lid]:
                        released(d)
            go = sorted((x for x in pending if deps[x] <= finished),
                        key=lambda x: (-prio[x], pos[x]))
            for lid in go[:max(0, jobs - len(running))]:
                pending.remove(lid)
                part = None
                if (staged is not None and write is not None
                        and not any(pos[f] < pos[lid] for f in failed)):
                    part = staged.part(lid)
                    parts[lid] = part
                fn = functools.partial(_layer_child, ctx, lid, keep.get(lid, set()), batch,
                                       write, sink, part)
                running[Child(lid, fn)] = (lid, part)
            while land_at < len(order) and order[land_at] in finished:  # in order
                lid = order[land_at]
                land_at += 1
                if lid in wrote and not errors and staged is not None:
                    with Timer(ctx, "write"):
                        staged.land(parts[lid], lid)
                    if landed is not None:
                        landed(lid)
            for lid in [x for x in parts if x in finished and pos[x] < land_at
                        and readers[x] <= finished]:
                assert staged is not None
                staged.drop_part(parts.pop(lid))
            if not running:
                continue
            for child in ready(list(running)):
                lid, part = running[child]
                for msg in child.messages():
                    if msg[0] == "tick":
                        ctx.tick(*msg[1:])
                    elif msg[0] == "died":
                        raise EtlError("merge_worker_died", layer=lid, code=msg[1])
                    elif msg[0] == "crash":
                        e = unpack_error(msg[1])
                        e.add_note(msg[2])
                        raise e
                    else:
                        _, res, err, seconds, by_row, crs, did = msg
                        ctx.stage_seconds.update(seconds)
                        if res is not None:
                            res.spec = specs[lid]
                            ctx.outputs[lid] = res
                        if err is not None:
                            errors[lid] = unpack_error(err)  # type: ignore[assignment]
                            failed.add(lid)
                        elif did:
                            wrote.add(lid)
                        if by_row and part is not None:
                            ctx.geometry_at[lid] = (
                                lambda rows, p=part, lid=lid: p.read_geometries(lid, rows), crs)
                        finished.add(lid)
                        for d in deps[lid]:
                            released(d)
                        _trim()
                if child.done:
                    child.conn.close()
                    del running[child]
    finally:
        for child in running:
            child.stop()
        if staged is not None:
            for p in parts.values():
                staged.drop_part(p)
    done = dict(ctx.outputs)  # in the order the layers ran in (reports list them so)
    ctx.outputs.clear()
    ctx.outputs.update({lid: done.pop(lid) for lid in order if lid in done})
    ctx.outputs.update(done)
    if failed:  # the sequential run writes (and summarises) nothing after its first failure
        first = min(pos[f] for f in failed)
        for lid in order[first + 1:]:
            if lid in ctx.outputs:
                ctx.outputs[lid].change = None
    return [errors[lid] for lid in order if lid in errors]


def _write_tables(ctx: RunContext, staged: StagedRun, layers: list[str], *,
                  partial: bool) -> None:
    """After the layers: ``_quarantine``, ``_code_table`` and ``_layer_meta`` (same in all
    stores). A partial run keeps the other layers' rows of the two bookkeeping tables.
    """
    project = ctx.project
    q = pd.concat([ctx.outputs[lid].quarantine for lid in layers], ignore_index=True)
    old = staged.read_current(QUARANTINE_TABLE) if partial else None
    if old is not None:
        q = pd.concat([old[~old["layer"].isin(layers)], q], ignore_index=True)
    if q.empty:
        q = pd.DataFrame({c: pd.Series(dtype="string") for c in QUARANTINE_COLUMNS})
    staged.write_layer(QUARANTINE_TABLE, q.astype("string"), geometry_type=None)
    codes = [{"codelist": cl.id, "code": code, "label_ja": e.ja, "label_en": e.en,
              "color": e.color, "min": e.min, "max": e.max}
             for cl in project.codelists.values() for code, e in cl.codes.items()]
    staged.write_layer(CODES_TABLE, pd.DataFrame(codes), geometry_type=None)
    meta = []
    for lid in project.specs:
        if lid in ctx.outputs:
            r = ctx.outputs[lid]
            meta.append({"layer": lid, "visibility": r.spec.visibility,
                         "features": r.features, "data_date": r.data_date,
                         "transform": "; ".join(sorted({(s.transform or {}).get("title_en", "")
                                                        for s in r.sources})),
                         "coordinate_epoch": r.epoch,
                         "run_id": ctx.run_id})
    old_meta = staged.read_current(LAYER_META_TABLE) if partial else None
    if old_meta is not None:
        meta = old_meta[~old_meta["layer"].isin(layers)].to_dict("records") + meta
    staged.write_layer(LAYER_META_TABLE, pd.DataFrame(meta), geometry_type=None)


def _examples(res: LayerResult) -> dict[str, str]:
    """One example record per quarantine reason (file, record and detail)."""
    q = res.quarantine
    if q.empty:
        return {}
    first = q.drop_duplicates("reason_code")
    return {r["reason_code"]: f"{r['source_file']} {r['record']}: {r['detail']}"[:300]
            for r in first.to_dict("records")}


def _manifest(ctx: RunContext, started: str, layers: list[str], only: list[str] | None,
              argv: list[str] | None, prev: dict | None = None) -> dict[str, Any]:
    project = ctx.project
    out: dict[str, Any] = {
        "run_id": ctx.run_id,
        "started_at": started,
        "finished_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "status": "ok",
        "partial": bool(only),
        "argv": argv or [],
        "city": project.config.city.model_dump(),
        "city_code": project.config.city_code,
        "target_crs": project.config.target_crs,
        "previous_run": (prev or {}).get("run_id"),
        "stage_seconds": {s: round(ctx.stage_seconds.get(s, 0.0), 2) for s in STAGES},
        "warnings": list(ctx.warnings),
        "layers": {},
    }
    prev_layers = (prev or {}).get("layers", {}) if only else {}
    for lid, info in prev_layers.items():
        if lid not in layers:
            out["layers"][lid] = info
    for lid in layers:
        r = ctx.outputs[lid]
        out["layers"][lid] = {
            "title": r.spec.title.model_dump(),
            "visibility": r.spec.visibility,
            "features": r.features,
            "read": sum(s.read for s in r.sources),
            "merged": sum(s.merged for s in r.sources),
            "quarantined": sum(s.quarantined for s in r.sources),
            "repaired": r.repaired,
            "data_date": r.data_date,
            "coordinate_epoch": r.epoch,
            "spec_version": f"{r.spec.spec_version}:{project.spec_hashes.get(lid, '')}",
            "sources": [{
                "name": s.name, "file": s.file, "sha256": s.sha256, "crs": s.crs,
                "transform": s.transform, "read": s.read, "merged": s.merged,
                "quarantined": s.quarantined, "by_reason": dict(s.by_reason),
                "data_date": s.data_date,
            } for s in r.sources],
            "flags": dict(r.flag_counts),
            "problems": r.problems,
            "examples": _examples(r),
            "unmapped_codes": r.unmapped,
            "warnings": r.warnings,
            "over_vertex_budget": r.over_vertex_budget,
            "change": r.change,
        }
    tot = out["layers"].values()
    out["totals"] = {k: sum(v.get(k, 0) for v in tot) for k in ("read", "merged", "quarantined",
                                                                  "features", "repaired")}
    return out
