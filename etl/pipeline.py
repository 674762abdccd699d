"""The merge pipeline: extract -> transform -> validate -> load, one layer spec at a time.

Conservation law: every input record ends either in the master or in ``_quarantine`` with a
reason; per source ``read == merged + quarantined`` is checked before anything is written.
"""

from __future__ import annotations

import datetime as dt
import json
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
import shapely
from pyproj import CRS

from config import Project
from config.errors import ConfigError, EtlError, SourceError
from config.messages import reason as reason_label
from config.messages import text
from config.models import LayerSpec
from etl import crs as crsmod
from etl.checks import check_project
from etl.readers import READERS, file_hash, load_lookup
from etl.report import change_summary, write_reports
from etl.results import LayerResult, SourceStats
from etl.schema import CODES_TABLE, LAYER_META_TABLE, QUARANTINE_TABLE, output_columns
from etl.stores import MasterStore, StagedRun, open_store
from etl.transform import Issue, apply_fields, missing_columns
from etl.validate import check_geometries, duplicate_mask, reference_check, tokyo_offset_check

Progress = Callable[[str, str, int, int], None]  # (stage, layer, done, total)
STAGES = ("read", "normalize", "transform", "validate", "write")
GEOM_ORDER = ["NULL_GEOMETRY", "EMPTY_GEOMETRY", "TRANSFORM_FAILED", "GEOMETRY_TYPE",
              "INVALID_GEOMETRY", "OUTSIDE_BOUNDARY", "TOO_SMALL"]
FIELD_ORDER = ["BAD_VALUE", "MISSING_REQUIRED", "UNKNOWN_CODE", "OUT_OF_RANGE"]


@dataclass
class RunContext:
    project: Project
    run_id: str
    progress: Progress | None
    outputs: dict[str, LayerResult] = field(default_factory=dict)
    stage_seconds: Counter = field(default_factory=Counter)
    boundary: crsmod.Boundary | None = None

    def tick(self, stage: str, layer: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(stage, layer, done, total)


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


# --------------------------------------------------------------------------- extract


def _extract(ctx: RunContext, spec: LayerSpec) -> tuple[gpd.GeoDataFrame, list[SourceStats],
                                                         list[Issue], dict[str, dict]]:
    """Read every source, reproject to the target CRS, run the CRS sanity checks."""
    project = ctx.project
    raw_dir = project.raw_dir
    target = CRS.from_user_input(project.config.target_crs)
    frames, stats, issues = [], [], []
    tables: dict[str, dict[str, str]] = {}
    spatial = spec.geometry_type != "None" and spec.join is None
    for si, src in enumerate(spec.sources):
        with Timer(ctx, "read"):
            raw = READERS[src.reader](spec, src, raw_dir)
            for name, lk in src.lookups.items():
                tables[name] = load_lookup(raw_dir, spec, lk.path, lk.key, lk.value, lk.encoding)
        df = raw.frame.rename(columns=src.rename)
        for k, v in src.constants.items():
            df[k] = v
        rel = src.path
        miss = missing_columns(spec, list(df.columns))
        if miss:
            raise SourceError("source_missing_field", layer=spec.id, file=rel,
                              fields=", ".join(miss), have=", ".join(map(str, raw.frame.columns)))
        n = len(df)
        has_id = bool(src.id_field) and src.id_field in df.columns
        rec = (df[src.id_field].astype("string").fillna("") if has_id
               else pd.Series([""] * n, dtype="string"))
        rownum = pd.Series(np.arange(1, n + 1), index=df.index).astype("string")
        df["_record"] = ("#" + rownum + np.where(rec.to_numpy() != "", " " + rec.astype(str), "")
                         ).astype("string")
        df["_src"] = si
        st = SourceStats(src.name, rel, file_hash(raw.files), None, None, read=n)
        st.data_date = dt.date.fromtimestamp(max(p.stat().st_mtime for p in raw.files)).isoformat()
        if spatial:
            if not raw.has_geometry:
                raise SourceError("source_geom_missing", layer=spec.id, file=rel)
            with Timer(ctx, "transform"):
                src_crs = crsmod.source_crs(raw.file_crs, src.crs, src.crs_override,
                                            layer=spec.id, file=rel)
                transformer, info = crsmod.plan_transform(project, src_crs, target)
                info.axis_swapped = src.axis_order == "yx"
                geoms = crsmod.transform_geoms(df.geometry.values, transformer,
                                               swap_xy=src.axis_order == "yx")
                st.crs, st.transform = crsmod.crs_label(src_crs), info.as_dict()
                failed = crsmod.bad_coords(geoms)
                geoms[failed] = None
                df = gpd.GeoDataFrame(df.drop(columns="geometry"), geometry=geoms, crs=target)
                if failed.any():
                    det = pd.Series("outside datum grid", index=df.index)
                    det.attrs["src"] = len(frames)  # masks are per source until concatenated
                    issues.append(Issue(failed, "TRANSFORM_FAILED", det))
                issues += _sanity(ctx, spec, src, src_crs, df, rel, frames)
        else:
            df = gpd.GeoDataFrame(df.drop(columns="geometry"),
                                  geometry=gpd.GeoSeries([None] * n, index=df.index))
        frames.append(df)
        stats.append(st)
        ctx.tick("read", spec.id, si + 1, len(spec.sources))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(
        drop=True)
    frame = gpd.GeoDataFrame(frame, geometry="geometry",
                             crs=target if spatial else None)
    # issue masks were built per source: expand them to the concatenated frame
    full = []
    offsets = np.cumsum([0] + [len(f) for f in frames])
    for iss in issues:
        m = np.zeros(len(frame), dtype=bool)
        si = iss.detail.attrs.get("src", 0)
        m[offsets[si]:offsets[si + 1]] = iss.mask
        det = pd.Series(iss.detail.to_numpy(), index=np.arange(offsets[si], offsets[si + 1]))
        full.append(Issue(m, iss.reason, det.reindex(frame.index).fillna(""), iss.action))
    return frame, stats, full, tables


def _sanity(ctx: RunContext, spec: LayerSpec, src: Any, src_crs: CRS, df: gpd.GeoDataFrame,
            rel: str, frames: list) -> list[Issue]:
    """Boundary, swapped axes and Tokyo-datum checks for one source (already reprojected)."""
    issues: list[Issue] = []
    si = len(frames)
    geoms = df.geometry.values
    live = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    if ctx.boundary is not None and spec.check_boundary and live.any():
        ins = crsmod.inside(ctx.boundary, geoms)
        share_in = ins[live].mean()
        if share_in < 0.5:
            swapped = crsmod.check_swapped(ctx.boundary, geoms[live])
            if swapped >= 0.5:
                raise SourceError("crs_swapped", layer=spec.id, file=rel,
                                  inside=round(swapped * 100))
            raise SourceError("crs_outside", layer=spec.id, file=rel,
                              outside=round((1 - share_in) * 100),
                              crs=crsmod.crs_label(src_crs))
        out = live & ~ins
        if out.any():
            det = pd.Series("outside boundary", index=df.index)
            det.attrs["src"] = si
            issues.append(Issue(out, "OUTSIDE_BOUNDARY", det))
    dc = spec.datum_check
    if dc and dc.reference in ctx.outputs and live.any() and "Tokyo" not in (
            src_crs.geodetic_crs.datum.name if src_crs.geodetic_crs else ""):
        ref = ctx.outputs[dc.reference].frame
        pts = shapely.point_on_surface(geoms[live])
        pts = pts[:: max(1, len(pts) // dc.sample)]
        shifted = crsmod.tokyo_shift_probe(ctx.project, pts)
        as_is, fixed = tokyo_offset_check(pts, shifted, ref)
        if as_is > 30 and fixed < as_is / 3:
            raise SourceError("crs_tokyo_suspect", layer=spec.id, file=rel,
                              crs=crsmod.crs_label(src_crs), reference=dc.reference,
                              as_is=as_is, fixed=fixed)
    for iss in issues:
        iss.detail.attrs["src"] = si
    return issues


# --------------------------------------------------------------------------- layer


def process_layer(ctx: RunContext, spec: LayerSpec) -> LayerResult:
    """Run one layer spec end to end (no writing)."""
    project = ctx.project
    frame, stats, issues, tables = _extract(ctx, spec)
    n = len(frame)
    with Timer(ctx, "normalize"):
        fr = apply_fields(spec, frame, tables=tables, codelists=project.codelists)
        issues += fr.issues
    ctx.tick("normalize", spec.id, 1, 1)
    flags = fr.flags.copy()
    repaired = 0
    out_geoms = frame.geometry.values
    with Timer(ctx, "validate"):
        if spec.geometry_type != "None" and spec.join is None:
            g = check_geometries(frame.geometry.values, spec)
            out_geoms = g.geoms
            for code, m in (("NULL_GEOMETRY", g.null), ("EMPTY_GEOMETRY", g.empty),
                            ("GEOMETRY_TYPE", g.wrong_type), ("INVALID_GEOMETRY", g.invalid),
                            ("TOO_SMALL", g.too_small)):
                if m.any():
                    det = pd.Series(frame.geometry.geom_type.fillna("null").to_numpy(),
                                    index=frame.index).astype(str)
                    issues.append(Issue(m, code, det))
            repaired = int(g.repaired.sum())
            if repaired:
                flags = flags.mask(g.repaired, flags + "repaired_geometry;")
        # first failing reason per record, in a fixed order; all reasons go into the detail
        order = {c: i for i, c in enumerate(GEOM_ORDER + FIELD_ORDER)}
        reason = np.full(n, "", dtype=object)
        detail = np.full(n, "", dtype=object)
        for iss in sorted((i for i in issues if i.action == "quarantine"),
                          key=lambda i: order.get(i.reason, 99)):
            m = iss.mask
            new = m & (reason == "")
            reason[new] = iss.reason
            # the detail text of the flagged records only (not a full-length copy per issue)
            d = iss.detail.reindex(frame.index[m]).fillna("").astype(str).to_numpy()
            detail[m] = np.where(detail[m] == "", iss.reason + ": " + d,
                                 detail[m] + "; " + iss.reason + ": " + d)
        out = pd.concat([fr.columns, frame[["_record", "_src"]]], axis=1)
        out = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(out_geoms, index=frame.index),
                               crs=frame.crs)
        out["_flags"] = flags
        keep = reason == ""
        # duplicates are judged among otherwise good records
        if spec.fields[spec.id_field].unique:
            dup = np.zeros(n, dtype=bool)
            dup[keep] = duplicate_mask(out.loc[keep, spec.id_field])
            reason[dup] = "DUPLICATE_ID"
            detail[dup] = (spec.id_field + "=" + out.loc[dup, spec.id_field].astype(str)).to_numpy()
            keep &= ~dup
        warnings: list[str] = []
        for ref in spec.references:
            target = out if ref.layer == spec.id else ctx.outputs[ref.layer].frame
            sub = out[keep]
            missing, far, dist = reference_check(sub, ref, target if ref.layer != spec.id
                                                 else sub)
            idx = np.flatnonzero(keep)
            _apply_rule(ref.on_missing, idx[missing], "MISSING_REFERENCE",
                        f"{ref.field}=" + sub[ref.field].astype(str).to_numpy()[missing]
                        + f" not in {ref.layer}.{ref.key}", reason, detail, out,
                        f"missing_ref:{ref.field}")
            _apply_rule(ref.on_far, idx[far & ~missing], "FAR_FROM_REFERENCE",
                        f"{ref.field}: " + np.round(dist.to_numpy()[far & ~missing], 2).astype(str)
                        + f" m > {ref.tolerance_m} m", reason, detail, out,
                        f"far_from:{ref.field}")
            keep = reason == ""
        if spec.join is not None:
            keep = _join(ctx, spec, out, keep, reason, detail)
    ctx.tick("validate", spec.id, 1, 1)

    quarantine = _quarantine_rows(ctx, spec, frame, stats, reason, detail)
    good = out[keep]  # a new frame already (copy-on-write): no second copy
    if spec.combine is not None:
        good = _combine(spec, good)
    good = _lineage(ctx, spec, good, stats)
    for si, st in enumerate(stats):
        st.merged = int((out.loc[keep, "_src"] == si).sum())
        q = quarantine[quarantine["source_name"] == st.name]
        st.quarantined = len(q)
        st.by_reason = Counter(q["reason_code"].tolist())
        if st.read != st.merged + st.quarantined:
            raise EtlError("conservation", layer=spec.id, read=st.read, merged=st.merged,
                           quarantined=st.quarantined)
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
    data_date = max((getattr(s, "data_date", None) or "") for s in stats) or None
    return LayerResult(spec, good, quarantine, stats, repaired, warnings, flag_counts,
                       {k: dict(v) for k, v in fr.unmapped.items()}, data_date)


def _apply_rule(action: str, idx: np.ndarray, code: str, det: np.ndarray, reason: np.ndarray,
                detail: np.ndarray, out: pd.DataFrame, flag: str) -> None:
    if len(idx) == 0:
        return
    if action == "quarantine":
        reason[idx] = code
        detail[idx] = code + ": " + det
    elif action in ("warn", "null"):
        col = out.columns.get_loc("_flags")
        out.iloc[idx, col] = out.iloc[idx, col] + flag + ";"


def _join(ctx: RunContext, spec: LayerSpec, out: gpd.GeoDataFrame, keep: np.ndarray,
          reason: np.ndarray, detail: np.ndarray) -> np.ndarray:
    """Attach the geometry of the joined layer on normalized keys; unmatched -> quarantine."""
    j = spec.join
    assert j is not None
    other = ctx.outputs[j.layer].frame
    key = pd.MultiIndex.from_frame(other[j.keys].astype("string"))
    pos = pd.Series(np.arange(len(other)), index=key)
    pos = pos[~pos.index.duplicated()]
    mine = pd.MultiIndex.from_frame(out[j.keys].astype("string"))
    hit = pos.reindex(mine).to_numpy()
    matched = ~np.isnan(hit)
    un = keep & ~matched
    if j.on_missing == "quarantine" and un.any():
        reason[un] = "JOIN_UNMATCHED"
        # the key text only for the unmatched rows (a row-wise join over all rows cost ~5 s/1M)
        txt = out.loc[un, j.keys].astype(str).agg(" ".join, axis=1).to_numpy()
        detail[un] = "JOIN_UNMATCHED: " + txt + f" not in {j.layer}"
    if j.take_geometry:
        geoms = np.full(len(out), None, dtype=object)
        geoms[matched] = other.geometry.values[hit[matched].astype(int)]
        out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=other.crs), inplace=True)
    return reason == ""


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
    res["xy_transform"] = xf[src_idx]
    fl = good["_flags"].astype("string").str.rstrip(";")
    res["quality_flags"] = fl.mask(fl == "")
    if spec.geometry_type != "None":
        res = gpd.GeoDataFrame(res, geometry=good.geometry.values, crs=good.crs)
    return res


def _quarantine_rows(ctx: RunContext, spec: LayerSpec, frame: gpd.GeoDataFrame,
                     stats: list[SourceStats], reason: np.ndarray,
                     detail: np.ndarray) -> pd.DataFrame:
    """One row per quarantined record with its reason and raw attributes (as JSON)."""
    m = reason != ""
    cols = ["layer", "source_name", "source_file", "record", "reason_code", "reason", "detail",
            "raw_attrs", "geometry_wkt", "run_id"]
    if not m.any():
        return pd.DataFrame(columns=cols)
    sub = frame[m]
    raw_cols = [c for c in sub.columns if c not in ("geometry", "_record", "_src")]
    raw = sub[raw_cols].astype(object).where(sub[raw_cols].notna(), None)
    raw_json = [json.dumps(r, ensure_ascii=False, default=str) for r in raw.to_dict("records")]
    src = sub["_src"].astype(int).to_numpy()
    wkt = shapely.to_wkt(sub.geometry.values, rounding_precision=3)
    return pd.DataFrame({
        "layer": spec.id,
        "source_name": [stats[i].name for i in src],
        "source_file": [stats[i].file for i in src],
        "record": sub["_record"].astype(str).to_numpy(),
        "reason_code": reason[m],
        "reason": [reason_label(r) for r in reason[m]],
        "detail": detail[m],
        "raw_attrs": raw_json,
        "geometry_wkt": wkt,
        "run_id": ctx.run_id,
    })


# --------------------------------------------------------------------------- run


class RunErrors(EtlError):
    """Every layer's error of one run (all inputs are checked before the run gives up)."""

    def __init__(self, errors: list[EtlError]) -> None:
        self.errors = errors
        self.key, self.params = "run_failed", {}
        Exception.__init__(self, "\n".join([*(str(e) for e in errors), text("run_failed")]))


@dataclass
class RunResult:
    run_id: str
    manifest: dict[str, Any]
    layers: dict[str, LayerResult]
    run_dir: Path | None


def run_merge(project: Project, *, only: list[str] | None = None, dry_run: bool = False,
              progress: Progress | None = None, store: MasterStore | None = None,
              argv: list[str] | None = None) -> RunResult:
    """Merge the layers (``only`` plus their dependencies; default all) into a new master."""
    check_project(project)
    t0 = time.perf_counter()
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    run_id = new_run_id()
    ctx = RunContext(project, run_id, progress, boundary=crsmod.load_boundary(project))
    order = project.order(only)
    ctx.tick("plan", "", 0, len(order))
    errors: list[EtlError] = []
    failed: set[str] = set()
    for lid in order:
        blocked = sorted(project.specs[lid].dependencies() & failed)
        if blocked:
            errors.append(EtlError("join_layer_failed", layer=lid, other=blocked[0]))
            failed.add(lid)
            continue
        try:
            ctx.outputs[lid] = process_layer(ctx, project.specs[lid])
        except EtlError as e:
            errors.append(e)
            failed.add(lid)
    if errors:
        raise RunErrors(errors)
    wanted = order if not only else [lid for lid in order if lid in set(only) | set(order)]
    store = store or open_store(project)
    manifest = _manifest(ctx, started, wanted, only, argv)
    if dry_run:
        manifest["seconds"] = round(time.perf_counter() - t0, 2)
        return RunResult(run_id, manifest, ctx.outputs, None)
    with store.lock():
        prev = store.manifest()
        staged = store.begin(run_id, partial=bool(only))
        try:
            with Timer(ctx, "write"):
                _write_master(ctx, staged, wanted, partial=bool(only))
                for lid in wanted:
                    res = ctx.outputs[lid]
                    res.change = change_summary(store, prev, staged, lid, res)
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
    return RunResult(run_id, manifest, ctx.outputs, rd)


def _write_master(ctx: RunContext, staged: StagedRun, layers: list[str], *,
                  partial: bool) -> None:
    """Every layer, then ``_quarantine``, ``_code_table`` and ``_layer_meta`` (same in all stores).

    A partial run keeps the other layers' rows of the two bookkeeping tables.
    """
    project = ctx.project
    for i, lid in enumerate(layers):
        res = ctx.outputs[lid]
        gt = res.spec.geometry_type if res.spec.join is None else "MultiPolygon"
        staged.write_layer(lid, res.frame, geometry_type=gt)
        ctx.tick("write", lid, i + 1, len(layers))
    q = pd.concat([ctx.outputs[lid].quarantine for lid in layers], ignore_index=True)
    old = staged.read_current(QUARANTINE_TABLE) if partial else None
    if old is not None:
        q = pd.concat([old[~old["layer"].isin(layers)], q], ignore_index=True)
    if q.empty:
        q = pd.DataFrame({c: pd.Series(dtype="string") for c in q.columns})
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
                         "run_id": ctx.run_id})
    old_meta = staged.read_current(LAYER_META_TABLE) if partial else None
    if old_meta is not None:
        meta = old_meta[~old_meta["layer"].isin(layers)].to_dict("records") + meta
    staged.write_layer(LAYER_META_TABLE, pd.DataFrame(meta), geometry_type=None)


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
            "spec_version": f"{r.spec.spec_version}:{project.spec_hashes.get(lid, '')}",
            "sources": [{
                "name": s.name, "file": s.file, "sha256": s.sha256, "crs": s.crs,
                "transform": s.transform, "read": s.read, "merged": s.merged,
                "quarantined": s.quarantined, "by_reason": dict(s.by_reason),
            } for s in r.sources],
            "flags": dict(r.flag_counts),
            "unmapped_codes": r.unmapped,
            "warnings": r.warnings,
            "change": r.change,
        }
    tot = out["layers"].values()
    out["totals"] = {k: sum(v[k] for v in tot) for k in ("read", "merged", "quarantined",
                                                          "features", "repaired")}
    return out
