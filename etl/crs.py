"""Datum-correct coordinate transformation to the target CRS, and CRS sanity checks.

Why explicit pipelines: stock PROJ has no open TKY2JGD grid, so ``to_crs`` silently falls back to a
3-parameter Helmert (~3 m off at Uozu) or even a ballpark (~435 m off). We build the operation
ourselves from the project's ``transforms`` (GSI grids through ``hgridshift``) and record which
operation ran, with its accuracy, for every layer.

Why point by point: GSI grids mean different things outside their area. A datum change (TKY2JGD)
must cover every point, or the point cannot be converted (its record is quarantined as
OUTSIDE_DATUM_GRID); a correction (PatchJGD, the 2024 Noto grid) leaves a point outside it
unchanged. PROJ's ``hgridshift`` returns infinity outside a grid, so each grid is applied as its
own step and its coverage is counted per point (the report shows it per source).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import rasterio
import rasterio.windows
import shapely
from pyproj import CRS, Transformer
from pyproj.crs import Datum
from pyproj.exceptions import ProjError

from config import Project
from config.errors import ConfigError, SourceError
from config.models import Correction, GridRef, I18nText

#: Where a coordinate of Japan can be (lon, lat), for the raw-coordinate axis check.
JAPAN_LONLAT = (122.0, 20.0, 154.0, 46.0)
#: Buffer (degrees, ~3 km) around the city for the raw-coordinate axis check: wide enough for
#: any datum offset (Tokyo datum ~435 m), far narrower than what a swap moves a point.
AXIS_CHECK_BUFFER_DEG = 0.03


@dataclass
class TransformInfo:
    """What ran for one source: recorded in lineage, the manifest and the QA report."""

    source_crs: str
    target_crs: str
    method: str  # identity | conversion | grid | proj
    title_ja: str
    title_en: str
    accuracy_m: float | None
    grids: list[str] = field(default_factory=list)
    pipeline: str = ""
    axis_swapped: bool = False
    corrections: list[str] = field(default_factory=list)
    epoch_ja: str = ""
    epoch_en: str = ""
    #: per grid: points that reached it, points it covered, and what outside means
    grid_coverage: dict[str, dict] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        return self.title_en


def crs_label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _proj_string(crs: CRS) -> str:
    """The map projection part of ``crs`` as PROJ keywords (no datum shift, no axis order)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = crs.to_proj4()
    s = re.sub(r"\+(towgs84|nadgrids)=\S+", "", s)
    s = re.sub(r"\+(no_defs|type=crs|wktext)\b", "", s)
    return " ".join(s.split())


def _datum_name(crs: CRS) -> str:
    gcrs = crs.geodetic_crs
    return gcrs.datum.name if gcrs is not None and gcrs.datum is not None else ""


@cache
def _datum_for(code: str) -> str:
    m = re.fullmatch(r"(?i)epsg:(\d+)", code.strip())
    return Datum.from_epsg(m.group(1)).name if m else Datum.from_name(code).name


def _to_degrees(crs: CRS) -> Transformer | None:
    """``crs`` (x=easting/lon, y=northing/lat) -> lon/lat degrees on its own ellipsoid."""
    if crs.is_geographic:
        return None
    if not crs.is_projected:
        raise ValueError(f"unsupported CRS type: {crs.name}")
    return Transformer.from_pipeline(f"+proj=pipeline +step +inv {_proj_string(crs)} "
                                     "+step +proj=unitconvert +xy_in=rad +xy_out=deg")


def _from_degrees(crs: CRS) -> Transformer | None:
    """lon/lat degrees -> ``crs`` (x=easting/lon, y=northing/lat), the inverse of the above."""
    if crs.is_geographic:
        return None
    if not crs.is_projected:
        raise ValueError(f"unsupported CRS type: {crs.name}")
    return Transformer.from_pipeline("+proj=pipeline +step +proj=unitconvert +xy_in=deg "
                                     f"+xy_out=rad +step {_proj_string(crs)}")


@dataclass
class GridStep:
    name: str
    path: Path
    outside: str  # "quarantine" | "unchanged"
    transformer: Transformer

    def covered(self, lon: np.ndarray, lat: np.ndarray, nx: np.ndarray,
                ny: np.ndarray) -> np.ndarray:
        """Points this grid really covers, by GSI's meaning of its parameter file.

        GSI grids list only the meshes they define; the GeoTIFF holds zero offsets elsewhere,
        which PROJ applies (or interpolates with) like any value. A datum grid (TKY2JGD) covers
        a point only when all four mesh nodes around it are defined, as GSI's own converter
        requires; a correction grid (PatchJGD) covers a point it moves (outside, the point is
        unchanged, which is the right coordinate by definition).
        """
        finite = np.isfinite(nx) & np.isfinite(ny)
        if self.outside == "unchanged":
            return finite & ((nx != lon) | (ny != lat))
        return finite & _nodes_defined(str(self.path), lon, lat)


def _nodes_defined(path: str, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where the four grid nodes around (lon, lat) carry a non-zero offset."""
    out = np.zeros(len(lon), dtype=bool)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return out
    with rasterio.open(path) as ds:
        t = ds.transform
        # node (c, r) sits at the centre of pixel (c, r) (the grids are PixelIsPoint)
        fc = (lon[ok] - t.c) / t.a - 0.5
        fr = (lat[ok] - t.f) / t.e - 0.5
        c0, r0 = np.floor(fc).astype(np.int64), np.floor(fr).astype(np.int64)
        inside = (c0 >= 0) & (c0 + 1 < ds.width) & (r0 >= 0) & (r0 + 1 < ds.height)
        res = np.zeros(len(fc), dtype=bool)
        if inside.any():
            cmin, cmax = int(c0[inside].min()), int(c0[inside].max()) + 1
            rmin, rmax = int(r0[inside].min()), int(r0[inside].max()) + 1
            data = ds.read(window=rasterio.windows.Window(cmin, rmin, cmax - cmin + 1,
                                                          rmax - rmin + 1))
            defined = np.isfinite(data).all(axis=0) & (data != 0).any(axis=0)
            c, r = c0[inside] - cmin, r0[inside] - rmin
            res[inside] = (defined[r, c] & defined[r, c + 1] & defined[r + 1, c]
                           & defined[r + 1, c + 1])
    out[ok] = res
    return out


def _grid_step(project: Project, ref: GridRef) -> GridStep:
    p = (project.grids_dir / ref.file).resolve()
    if not p.exists():
        raise ConfigError("grid_missing", grid=ref.file, dir=str(project.grids_dir))
    t = Transformer.from_pipeline("+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
                                  f"+step +proj=hgridshift +grids={p} "
                                  "+step +proj=unitconvert +xy_in=rad +xy_out=deg")
    return GridStep(ref.file, p, ref.outside, t)


@dataclass
class Applied:
    """The result of :meth:`CoordOp.apply` on an array of geometries."""

    geoms: np.ndarray
    failed: np.ndarray  # per geometry: a point could not be converted (outside a datum grid)
    unchanged: dict[str, np.ndarray]  # grid -> geometries with a point left unchanged outside it
    coverage: dict[str, dict]


class CoordOp:
    """Source -> target coordinates: to degrees, each grid per point, to the target.

    ``direct`` is a plain PROJ operation (a conversion within one datum, or PROJ's own best
    transformation when the project names no grid for the source's datum).
    """

    def __init__(self, *, direct: Transformer | None = None, to_deg: Transformer | None = None,
                 steps: list[GridStep] | None = None, from_deg: Transformer | None = None,
                 swap_xy: bool = False) -> None:
        self.direct, self.to_deg, self.from_deg = direct, to_deg, from_deg
        self.steps = steps or []
        self.swap_xy = swap_xy

    def transform_xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray, dict]:
        """Coordinates in, coordinates out; failed points (and NaN in) are ``inf``.

        Also returns the failed mask and, per grid, the points outside it.
        """
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if self.swap_xy:
            x, y = y, x
        outside: dict[str, np.ndarray] = {}
        if self.direct is not None:
            x, y = self.direct.transform(x, y, errcheck=False)
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        elif self.steps or self.to_deg is not None or self.from_deg is not None:
            if self.to_deg is not None:
                x, y = self.to_deg.transform(x, y, errcheck=False)
                x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            failed = ~(np.isfinite(x) & np.isfinite(y))
            for st in self.steps:
                nx, ny = st.transformer.transform(x, y, errcheck=False)
                nx, ny = np.asarray(nx, dtype=float), np.asarray(ny, dtype=float)
                out = ~st.covered(x, y, nx, ny) & ~failed
                outside[st.name] = out
                if st.outside == "quarantine":
                    failed |= out
                else:
                    nx, ny = np.where(out, x, nx), np.where(out, y, ny)
                x, y = nx, ny
            if self.from_deg is not None:
                x, y = self.from_deg.transform(x, y, errcheck=False)
                x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            x, y = np.where(failed, np.inf, x), np.where(failed, np.inf, y)
        failed = ~(np.isfinite(x) & np.isfinite(y))
        return np.where(failed, np.inf, x), np.where(failed, np.inf, y), failed, outside

    def transform(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple:
        """``Transformer.transform`` look-alike (scalars or arrays)."""
        scalar = np.isscalar(x)
        ox, oy, _, _ = self.transform_xy(np.atleast_1d(x), np.atleast_1d(y))
        return (float(ox[0]), float(oy[0])) if scalar else (ox, oy)

    def apply(self, geoms: np.ndarray) -> Applied:
        """Transform every vertex; per geometry, which failed and which grids left it as is."""
        n = len(geoms)
        out = geoms.copy()
        failed = np.zeros(n, dtype=bool)
        live = ~shapely.is_missing(geoms)
        live[live] &= ~shapely.is_empty(geoms[live])
        coverage = {st.name: {"points": 0, "covered": 0, "outside": st.outside}
                    for st in self.steps}
        unchanged = {st.name: np.zeros(n, dtype=bool) for st in self.steps
                     if st.outside == "unchanged"}
        if not live.any():
            return Applied(out, failed, unchanged, coverage)
        sub = geoms[live]
        coords, idx = shapely.get_coordinates(sub, return_index=True)
        x, y, bad, outside = self.transform_xy(coords[:, 0], coords[:, 1])
        out[live] = shapely.set_coordinates(sub.copy(), np.column_stack([x, y]))
        pos = np.flatnonzero(live)
        if bad.any():
            failed[pos[np.unique(idx[bad])]] = True
        reached = np.ones(len(x), dtype=bool)
        for st in self.steps:
            o = outside.get(st.name, np.zeros(len(x), dtype=bool))
            coverage[st.name]["points"] = int(reached.sum())
            coverage[st.name]["covered"] = int((reached & ~o).sum())
            if st.outside == "unchanged" and o.any():
                unchanged[st.name][pos[np.unique(idx[o])]] = True
            if st.outside == "quarantine":
                reached &= ~o
        return Applied(out, failed, unchanged, coverage)


def _combined_accuracy(parts: list[float | None]) -> float | None:
    vals = [p for p in parts if p is not None]
    return round(math.sqrt(sum(v * v for v in vals)), 3) if vals else None


def plan_transform(project: Project, src: CRS, tgt: CRS, *,
                   corrections: list[Correction] | None = None,
                   swap_xy: bool = False) -> tuple[CoordOp | None, TransformInfo]:
    """Choose the operation from ``src`` to ``tgt``: identity, exact conversion or GSI grids,
    followed by the ``corrections`` (e.g. the 2024 Noto grid) in the target datum.

    Operations take (x=easting/lon, y=northing/lat) in and out (``always_xy`` semantics).
    """
    corrections = list(corrections or [])
    s_lbl, t_lbl = crs_label(src), crs_label(tgt)
    cfg = project.config
    epoch = corrections[-1].epoch if corrections else cfg.epoch
    c_steps = [_grid_step(project, g) for c in corrections for g in c.grids]

    def info(method: str, title: I18nText, acc: float | None, grids: list[GridStep],
             pipeline: str = "") -> TransformInfo:
        tja = " + ".join([title.ja, *(c.title.ja for c in corrections)])
        ten = " + ".join([title.en, *(c.title.en for c in corrections)])
        return TransformInfo(s_lbl, t_lbl, method, tja, ten,
                             _combined_accuracy([acc, *(c.accuracy_m for c in corrections)]),
                             grids=[g.name for g in grids], pipeline=pipeline,
                             axis_swapped=swap_xy, corrections=[c.id for c in corrections],
                             epoch_ja=epoch.ja, epoch_en=epoch.en,
                             grid_coverage={g.name: {"points": 0, "covered": 0,
                                                     "outside": g.outside} for g in grids})

    s_datum, t_datum = _datum_name(src), _datum_name(tgt)
    if src.equals(tgt, ignore_axis_order=True) and not c_steps:
        op = CoordOp(swap_xy=True) if swap_xy else None
        return op, info("identity", I18nText(ja="変換なし (同一座標系)", en="none (same CRS)"),
                        0.0, [])
    if s_datum and s_datum == t_datum:
        title = (I18nText(ja="変換なし (同一座標系)", en="none (same CRS)")
                 if src.equals(tgt, ignore_axis_order=True) else
                 I18nText(ja="投影変換のみ (同一測地系)", en="projection change only (same datum)"))
        if not c_steps:
            t = Transformer.from_crs(src, tgt, always_xy=True, allow_ballpark=False)
            return CoordOp(direct=t, swap_xy=swap_xy), info("conversion", title, 0.0, [],
                                                            t.to_proj4() or "")
        op = CoordOp(to_deg=_to_degrees(src), steps=c_steps, from_deg=_from_degrees(tgt),
                     swap_xy=swap_xy)
        return op, info("grid", title, 0.0, c_steps)
    for gt in cfg.transforms:
        if _datum_for(gt.from_datum) != s_datum:
            continue
        steps = [_grid_step(project, g) for g in gt.grids] + c_steps
        pipeline = " ".join(["+proj=pipeline", f"+step +inv {_proj_string(src)}"
                             if src.is_projected else "",
                             *(f"+step +proj=hgridshift +grids={s.path}" for s in steps),
                             f"+step {_proj_string(tgt)}" if tgt.is_projected else ""])
        op = CoordOp(to_deg=_to_degrees(src), steps=steps, from_deg=_from_degrees(tgt),
                     swap_xy=swap_xy)
        return op, info("grid", gt.title, gt.accuracy_m, steps, " ".join(pipeline.split()))
    # Another datum with no grid configured: only accept an operation PROJ calls accurate.
    try:
        geo = tgt.geodetic_crs if tgt.is_projected else tgt
        t = Transformer.from_crs(src, geo, always_xy=True, allow_ballpark=False, only_best=True)
    except ProjError as e:
        raise ConfigError("spec_bad_crs", file="config/project.yml", source="transforms",
                          crs=f"{s_lbl} -> {t_lbl}: {e}") from e
    acc = t.accuracy if t.accuracy and t.accuracy > 0 else None
    title = I18nText(ja=t.description, en=t.description)
    op = CoordOp(to_deg=t, steps=c_steps, from_deg=_from_degrees(tgt), swap_xy=swap_xy)
    return op, info("proj", title, acc, c_steps, t.to_proj4() or "")


def corrections_for(project: Project, wanted: list[str] | None) -> list[Correction]:
    """The corrections a source asks for (None: the project's defaults), in project order."""
    cs = project.config.corrections
    if wanted is None:
        return [c for c in cs if c.default]
    return [c for c in cs if c.id in wanted]


def transform_geoms(geoms: np.ndarray, op: CoordOp | None, *,
                    swap_xy: bool = False) -> np.ndarray:
    """Vectorized (shapely 2) coordinate transform; failed points become inf."""
    if op is None and not swap_xy:
        return geoms
    if op is None:
        op = CoordOp(swap_xy=True)
    elif swap_xy:
        op = CoordOp(direct=op.direct, to_deg=op.to_deg, steps=op.steps, from_deg=op.from_deg,
                     swap_xy=not op.swap_xy)
    return op.apply(geoms).geoms


def bad_coords(geoms: np.ndarray) -> np.ndarray:
    """True where a transformed geometry has non-finite coordinates (outside a grid)."""
    out = np.zeros(len(geoms), dtype=bool)
    notnull = ~shapely.is_missing(geoms)
    if notnull.any():
        bounds = shapely.bounds(geoms[notnull])
        out[notnull] = ~np.isfinite(bounds).all(axis=1) & ~shapely.is_empty(geoms[notnull])
    return out


# ---------------------------------------------------------------- sanity checks


@dataclass
class Boundary:
    geom: shapely.Geometry  # in the target CRS, already buffered by the margin
    raw: shapely.Geometry
    lonlat: shapely.Geometry  # lon/lat, buffered for the raw-coordinate axis check


@cache
def _load_boundary(path: str, margin: float, target: str) -> Boundary:
    import geopandas as gpd

    b = gpd.read_file(path)
    if b.crs is None:
        b = b.set_crs("OGC:CRS84")
    ll = shapely.union_all(b.to_crs("OGC:CRS84").geometry.values).buffer(AXIS_CHECK_BUFFER_DEG)
    shapely.prepare(ll)
    b = b.to_crs(target)
    raw = shapely.union_all(b.geometry.values)
    buffered = raw.buffer(margin)
    shapely.prepare(buffered)
    return Boundary(buffered, raw, ll)


def load_boundary(project: Project) -> Boundary | None:
    bc = project.config.boundary
    if bc is None:
        return None
    return _load_boundary(str(project.path(bc.path)), bc.margin_m, project.config.target_crs)


def inside(boundary: Boundary, geoms: np.ndarray) -> np.ndarray:
    ok = np.ones(len(geoms), dtype=bool)
    m = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    if m.any():
        ok[m] = shapely.intersects(boundary.geom, geoms[m])
    return ok


@dataclass
class AxisEvidence:
    """Raw first vertices as declared and with swapped axes: inside the city (or Japan)?"""

    n: int
    live: np.ndarray  # per geometry
    as_is: np.ndarray  # per geometry (False where not live)
    swapped: np.ndarray
    where_ja: str
    where_en: str

    @property
    def swapped_records(self) -> np.ndarray:
        """Single records whose axes are swapped (outside as declared, inside once swapped)."""
        return self.live & ~self.as_is & self.swapped


def axis_evidence(src: CRS, geoms: np.ndarray, boundary: Boundary | None, *,
                  swap_xy: bool = False) -> AxisEvidence:
    """Look at the raw coordinates, before any datum shift (which fails on swapped ones).

    Each geometry's first vertex goes to lon/lat with the source's own projection (exact, no
    datum change) as declared and with X/Y swapped, and is tested against the city boundary
    (~3 km buffer) or, without one, Japan.
    """
    n = len(geoms)
    live = ~shapely.is_missing(geoms)
    live[live] &= ~shapely.is_empty(geoms[live])
    as_is, sw = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    where = ("市域", "the city") if boundary is not None else ("日本", "Japan")
    if not live.any():
        return AxisEvidence(0, live, as_is, sw, *where)
    coords, idx = shapely.get_coordinates(geoms[live], return_index=True)
    _, first = np.unique(idx, return_index=True)
    xy = coords[first]
    if swap_xy:
        xy = xy[:, ::-1]
    to_deg = _to_degrees(src) if src.is_projected else None
    pos = np.flatnonzero(live)

    def where_in(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if to_deg is not None:
            with np.errstate(all="ignore"):
                x, y = to_deg.transform(x, y, errcheck=False)
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        lo_x, lo_y, hi_x, hi_y = JAPAN_LONLAT
        jp = ok & (x >= lo_x) & (x <= hi_x) & (y >= lo_y) & (y <= hi_y)
        if boundary is None:
            return jp
        res = np.zeros(len(x), dtype=bool)
        if jp.any():
            res[jp] = shapely.contains_xy(boundary.lonlat, x[jp], y[jp])
        return res

    as_is[pos] = where_in(xy[:, 0], xy[:, 1])
    sw[pos] = where_in(xy[:, 1], xy[:, 0])
    return AxisEvidence(int(live.sum()), live, as_is, sw, *where)


def tokyo_shift_probe(project: Project, pts: np.ndarray) -> np.ndarray:
    """Where ``pts`` (target CRS) would land if their coordinates were really Tokyo datum."""
    tgt = CRS.from_user_input(project.config.target_crs)
    tokyo = tokyo_equivalent(tgt)
    if tokyo is None:
        return pts
    t, _ = plan_transform(project, tokyo, tgt)
    return transform_geoms(pts, t)


def tokyo_equivalent(tgt: CRS) -> CRS | None:
    """The Tokyo-datum CRS with the same plane zone as ``tgt`` (JGD2011 zone N -> EPSG:30160+N)."""
    epsg = tgt.to_epsg() or 0
    if 6669 <= epsg <= 6687:
        return CRS.from_epsg(30161 + epsg - 6669)
    if 2443 <= epsg <= 2461:
        return CRS.from_epsg(30161 + epsg - 2443)
    return None


def source_crs(file_crs: str | None, spec_crs: str | None, override: bool, *, layer: str,
               file: str) -> CRS:
    """Decide the source CRS: the file's own, else the spec's; a conflict needs an override."""
    if file_crs is None and spec_crs is None:
        raise SourceError("source_no_crs", layer=layer, file=file)
    if file_crs is None:
        return CRS.from_user_input(spec_crs)
    fc = CRS.from_user_input(file_crs)
    if spec_crs is None:
        return fc
    sc = CRS.from_user_input(spec_crs)
    if override or fc.equals(sc, ignore_axis_order=True):
        return sc
    raise SourceError("source_crs_conflict", layer=layer, file=file, file_crs=crs_label(fc),
                      spec_crs=crs_label(sc))


def grid_paths(project: Project) -> list[Path]:
    refs = [g for t in project.config.transforms for g in t.grids]
    refs += [g for c in project.config.corrections for g in c.grids]
    return sorted({project.grids_dir / g.file for g in refs})
