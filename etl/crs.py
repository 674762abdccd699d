"""Datum-correct coordinate transformation to the target CRS, and CRS sanity checks.

Why explicit pipelines: stock PROJ has no open TKY2JGD grid, so ``to_crs`` silently falls back to a
3-parameter Helmert (~3 m off at Uozu) or even a ballpark (~435 m off). We build the PROJ pipeline
ourselves from the project's ``transforms`` (GSI grids through ``hgridshift``) and record which
operation ran, with its accuracy, for every layer.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.crs import Datum
from pyproj.exceptions import ProjError

from config import Project
from config.errors import ConfigError, SourceError


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


def _forward_steps(crs: CRS, *, inverse: bool) -> str:
    """PROJ steps between ``crs`` (x=easting/lon, y=northing/lat) and radians on its ellipsoid."""
    if crs.is_projected:
        return f"+step {'+inv ' if inverse else ''}{_proj_string(crs)}"
    if crs.is_geographic:
        return ("+step +proj=unitconvert +xy_in=deg +xy_out=rad" if inverse
                else "+step +proj=unitconvert +xy_in=rad +xy_out=deg")
    raise ValueError(f"unsupported CRS type: {crs.name}")


def plan_transform(project: Project, src: CRS, tgt: CRS) -> tuple[Transformer | None,
                                                                  TransformInfo]:
    """Choose the operation from ``src`` to ``tgt``: identity, exact conversion or GSI grids.

    Transformers take (x=easting/lon, y=northing/lat) in and out (``always_xy`` semantics).
    """
    s_lbl, t_lbl = crs_label(src), crs_label(tgt)
    if src.equals(tgt, ignore_axis_order=True):
        return None, TransformInfo(s_lbl, t_lbl, "identity", "変換なし (同一座標系)",
                                   "none (same CRS)", 0.0)
    s_datum, t_datum = _datum_name(src), _datum_name(tgt)
    if s_datum and s_datum == t_datum:
        t = Transformer.from_crs(src, tgt, always_xy=True, allow_ballpark=False)
        return t, TransformInfo(s_lbl, t_lbl, "conversion", "投影変換のみ (同一測地系)",
                                "projection change only (same datum)", 0.0, pipeline=t.to_proj4()
                                or "")
    for gt in project.config.transforms:
        if _datum_for(gt.from_datum) != s_datum:
            continue
        grids = []
        for g in gt.grids:
            p = (project.grids_dir / g).resolve()
            if not p.exists():
                raise ConfigError("grid_missing", grid=g, dir=str(project.grids_dir))
            grids.append(p)
        steps = [_forward_steps(src, inverse=True)]
        steps += [f"+step +proj=hgridshift +grids={p}" for p in grids]
        steps.append(_forward_steps(tgt, inverse=False))
        pipeline = "+proj=pipeline " + " ".join(steps)
        t = Transformer.from_pipeline(pipeline)
        return t, TransformInfo(s_lbl, t_lbl, "grid", gt.title.ja, gt.title.en, gt.accuracy_m,
                                grids=[p.name for p in grids], pipeline=pipeline)
    # Another datum with no grid configured: only accept an operation PROJ calls accurate.
    try:
        t = Transformer.from_crs(src, tgt, always_xy=True, allow_ballpark=False, only_best=True)
    except ProjError as e:
        raise ConfigError("spec_bad_crs", file="config/project.yml", source="transforms",
                          crs=f"{s_lbl} -> {t_lbl}: {e}") from e
    acc = t.accuracy if t.accuracy and t.accuracy > 0 else None
    return t, TransformInfo(s_lbl, t_lbl, "proj", t.description, t.description, acc,
                            pipeline=t.to_proj4() or "")


def transform_geoms(geoms: np.ndarray, transformer: Transformer | None, *,
                    swap_xy: bool = False) -> np.ndarray:
    """Vectorized (shapely 2) coordinate transform; failed points become inf."""
    if transformer is None and not swap_xy:
        return geoms

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = (xy[:, 1], xy[:, 0]) if swap_xy else (xy[:, 0], xy[:, 1])
        if transformer is not None:
            x, y = transformer.transform(x, y, errcheck=False)
        return np.column_stack([x, y])

    return shapely.transform(geoms, fn)


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


@cache
def _load_boundary(path: str, margin: float, target: str) -> Boundary:
    import geopandas as gpd

    b = gpd.read_file(path)
    if b.crs is None:
        b = b.set_crs("OGC:CRS84")
    b = b.to_crs(target)
    raw = shapely.union_all(b.geometry.values)
    buffered = raw.buffer(margin)
    shapely.prepare(buffered)
    return Boundary(buffered, raw)


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


def tokyo_shift_probe(project: Project, pts: np.ndarray) -> np.ndarray:
    """Where ``pts`` (target CRS) would land if their coordinates were really Tokyo datum."""
    tgt = CRS.from_user_input(project.config.target_crs)
    tokyo = _tokyo_equivalent(tgt)
    if tokyo is None:
        return pts
    t, _ = plan_transform(project, tokyo, tgt)
    return transform_geoms(pts, t)


def _tokyo_equivalent(tgt: CRS) -> CRS | None:
    """The Tokyo-datum CRS with the same plane zone as ``tgt`` (JGD2011 zone N -> EPSG:30160+N)."""
    epsg = tgt.to_epsg() or 0
    if 6669 <= epsg <= 6687:
        return CRS.from_epsg(30161 + epsg - 6669)
    if 2443 <= epsg <= 2461:
        return CRS.from_epsg(30161 + epsg - 2443)
    return None


def check_swapped(boundary: Boundary, geoms: np.ndarray) -> float:
    """Share (0..1) of geometries that fall inside the city once X/Y are swapped."""
    g = geoms[~shapely.is_missing(geoms)]
    if len(g) == 0:
        return 0.0
    sample = g[:: max(1, len(g) // 500)]
    swapped = transform_geoms(sample, None, swap_xy=True)
    return float(inside(boundary, swapped).mean())


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
    return sorted({project.grids_dir / g for t in project.config.transforms for g in t.grids})
