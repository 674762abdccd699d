"""Validate stage: geometry checks and repairs, duplicate ids, references, joins and combines.

All functions are vectorized (shapely 2) and return masks; the pipeline decides whether a mask
means quarantine, repair or a quality flag. Repairs are counted, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from config.models import LayerSpec, PublishGeometry, Reference

_SINGLE = {"Point": "MultiPoint", "LineString": "MultiLineString", "Polygon": "MultiPolygon"}


@dataclass
class GeomResult:
    geoms: np.ndarray
    null: np.ndarray
    empty: np.ndarray
    wrong_type: np.ndarray
    invalid: np.ndarray  # could not be repaired
    repaired: np.ndarray
    too_small: np.ndarray


def check_geometries(geoms: np.ndarray, spec: LayerSpec) -> GeomResult:
    """Null/empty/type/validity checks; coerce single<->multi parts to the layer's type."""
    n = len(geoms)
    z = np.zeros(n, dtype=bool)
    target = spec.geometry_type
    null = shapely.is_missing(geoms)
    empty = ~null & shapely.is_empty(geoms)
    ok = ~null & ~empty
    out = geoms.copy()
    wrong = z.copy()
    invalid = z.copy()
    repaired = z.copy()
    tids = np.full(n, -1)
    tids[ok] = shapely.get_type_id(out[ok])
    names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                      "MultiLineString", "MultiPolygon", "GeometryCollection"])
    gtype = np.where(tids >= 0, names[np.clip(tids, 0, 7)], "")

    if target in ("Polygon", "MultiPolygon"):
        poly = ok & np.isin(gtype, ["Polygon", "MultiPolygon"])
        wrong = ok & ~poly
        bad = poly & ~shapely.is_valid(out)
        if bad.any():
            if spec.repair_invalid:
                fixed = shapely.make_valid(out[bad])
                fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
                good = ~shapely.is_missing(fixed) & ~shapely.is_empty(fixed)
                idx = np.flatnonzero(bad)
                out[idx[good]] = fixed[good]
                repaired[idx[good]] = True
                invalid[idx[~good]] = True
            else:
                invalid = bad
        if target == "MultiPolygon":
            single = ok & ~wrong & ~invalid & (shapely.get_type_id(out) == 3)
            if single.any():
                k = int(single.sum())
                out[single] = shapely.multipolygons(out[single], indices=np.arange(k))
    elif target in ("LineString", "MultiLineString"):
        line = ok & np.isin(gtype, ["LineString", "MultiLineString"])
        wrong = ok & ~line
        multi = line & (gtype == "MultiLineString")
        if target == "LineString" and multi.any():
            merged = shapely.line_merge(out[multi])
            single = shapely.get_type_id(merged) == 1
            idx = np.flatnonzero(multi)
            out[idx[single]] = merged[single]
            wrong[idx[~single]] = True
        valid_line = line & ~wrong
        short = valid_line & (shapely.get_num_coordinates(out) < 2)
        invalid |= short
        zero = valid_line & ~short & (shapely.length(out) == 0)
        invalid |= zero
    elif target in ("Point",):
        pt = ok & np.isin(gtype, ["Point", "MultiPoint"])
        wrong = ok & ~pt
        mp = pt & (gtype == "MultiPoint")
        if mp.any():
            nparts = shapely.get_num_geometries(out[mp])
            idx = np.flatnonzero(mp)
            one = nparts == 1
            out[idx[one]] = shapely.get_geometry(out[idx[one]], 0)
            wrong[idx[~one]] = True
    too_small = z.copy()
    if spec.min_area_m2 > 0 and target in ("Polygon", "MultiPolygon"):
        live = ok & ~wrong & ~invalid
        too_small[live] = shapely.area(out[live]) < spec.min_area_m2
    return GeomResult(out, null, empty, wrong, invalid, repaired, too_small)


def _polygonal(g: shapely.Geometry) -> shapely.Geometry | None:
    """Keep the polygonal part of a make_valid result (a bow-tie becomes two triangles)."""
    if g is None or g.is_empty:
        return None
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    if g.geom_type == "GeometryCollection":
        parts = [p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")]
        if parts:
            return shapely.union_all(parts)
    return None


def duplicate_mask(ids: pd.Series) -> np.ndarray:
    """All occurrences of an id after the first (the first one is kept)."""
    s = ids.astype("string")
    return (s.notna() & s.duplicated(keep="first")).to_numpy(dtype=bool)


def key_positions(target: pd.DataFrame, key: str) -> pd.Series:
    """Key text -> position of its first row in ``target`` (a reference's lookup table)."""
    tkeys = target[key].astype("string")
    lut = pd.Series(np.arange(len(target)), index=tkeys.to_numpy())
    return lut[~lut.index.duplicated()]


def reference_check(frame: gpd.GeoDataFrame, ref: Reference, target: gpd.GeoDataFrame,
                    lut: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Missing references, and (for ``endpoint``) pipe ends farther than the tolerance.

    ``lut``: ``key_positions(target, ref.key)`` when the caller keeps it (batches)."""
    keys = frame[ref.field].astype("string")
    if lut is None:
        lut = key_positions(target, ref.key)
    pos = keys.map(lut)
    missing = (keys.notna() & pos.isna()).to_numpy(dtype=bool)
    far = np.zeros(len(frame), dtype=bool)
    dist = pd.Series(np.nan, index=frame.index)
    if ref.endpoint:
        have = pos.notna().to_numpy(dtype=bool)
        if have.any():
            lines = frame.geometry.values[have]
            ends = shapely.get_point(lines, 0 if ref.endpoint == "start" else -1)
            tgeom = target.geometry.values[pos[have].astype(int).to_numpy()]
            d = shapely.distance(ends, tgeom)
            dist[have] = d
            far[have] = d > ref.tolerance_m
    return missing, far, dist


def tokyo_offset_check(sample: np.ndarray, shifted: np.ndarray,
                       reference: gpd.GeoDataFrame) -> tuple[float, float]:
    """Median distance of ``sample`` to ``reference`` as-is and as if it were Tokyo datum."""
    if len(sample) == 0 or len(reference) == 0:
        return 0.0, 0.0
    tree = shapely.STRtree(reference.geometry.values)
    _, d0 = tree.query_nearest(sample, return_distance=True, all_matches=False)
    _, d1 = tree.query_nearest(shifted, return_distance=True, all_matches=False)
    return float(np.median(d0)), float(np.median(d1))


def simplify_for_publication(geoms: np.ndarray, rule: PublishGeometry
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The publication copy of ``geoms`` under a layer's ``publish_geometry`` rule.

    A geometry with more than ``rule.max_vertices`` vertices is simplified (Douglas-Peucker,
    topology preserved, so a polygon stays valid and never vanishes) at ``rule.tolerance_m``;
    while it is still over the budget the tolerance doubles. Others are returned as they are.
    Returns (geometries, mask of the simplified ones, tolerance used per geometry, 0 = exact):
    the publication records the tolerance; the master keeps the exact geometry.
    """
    out = np.asarray(geoms, dtype=object).copy()
    n = len(out)
    tol = np.zeros(n, dtype=float)
    live = ~shapely.is_missing(out)
    over = np.zeros(n, dtype=bool)
    over[live] = shapely.get_num_coordinates(out[live]) > rule.max_vertices
    t = rule.tolerance_m
    todo = over.copy()
    for _ in range(40):  # 0.5 m * 2**40 is far beyond any city
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        simp = shapely.simplify(np.asarray(geoms, dtype=object)[idx], t, preserve_topology=True)
        out[idx] = simp
        tol[idx] = t
        todo[idx] = shapely.get_num_coordinates(simp) > rule.max_vertices
        t *= 2
    return out, over, tol
