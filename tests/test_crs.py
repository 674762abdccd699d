"""Datum-correct transforms against independent references at Uozu."""

from __future__ import annotations

import math
from pathlib import Path

import mini
import numpy as np
import pytest
import shapely
import tky2jgd.tky2jgd as ref
from pyproj import CRS, Transformer

from config import load_project
from config.models import GridTransform, I18nText
from etl import crs as crsmod

# A control point near Uozu city hall, given in Tokyo-datum latitude/longitude.
TOKYO_LAT, TOKYO_LON = 36.81947, 137.41181


@pytest.fixture(scope="module")
def project(mini_template: Path):
    return load_project(mini_template)


def test_tky2jgd_grid_matches_gsi_parameter_file(project) -> None:
    """Our PROJ hgridshift on the vendored GeoTIFF vs GSI's TKY2JGD.par (the tky2jgd port)."""
    only_tky = project.config.model_copy(update={"transforms": [GridTransform(
        from_datum="EPSG:6301", grids=["TKY2JGD.tif"], accuracy_m=0.2,
        title=I18nText(ja="TKY2JGD", en="TKY2JGD"))]})
    p = type(project)(project.root, only_tky, project.specs, project.codelists)
    t, info = crsmod.plan_transform(p, CRS.from_epsg(4301), CRS.from_epsg(4612))
    assert info.method == "grid" and info.grids == ["TKY2JGD.tif"]
    lon, lat = t.transform(TOKYO_LON, TOKYO_LAT)
    ref.load_parameter(ref._bundled_parameter_path())
    dB, dL = ref.bilinear(TOKYO_LAT, TOKYO_LON)
    lat_ref, lon_ref = TOKYO_LAT + dB / 3600, TOKYO_LON + dL / 3600
    dy = (lat - lat_ref) * 111_000
    dx = (lon - lon_ref) * 111_000 * math.cos(math.radians(lat))
    assert math.hypot(dx, dy) < 0.05, math.hypot(dx, dy)
    # and the shift itself is the ~435 m datum difference
    assert 400 < math.hypot((lon - TOKYO_LON) * 89_000, (lat - TOKYO_LAT) * 111_000) < 470


def test_tokyo_plane_to_jgd2011_uses_grids_not_helmert(project) -> None:
    t, info = crsmod.plan_transform(project, CRS.from_epsg(30167), CRS.from_epsg(6675))
    assert info.method == "grid" and "hgridshift" in info.pipeline
    assert info.grids == ["TKY2JGD.tif", "touhokutaiheiyouoki2011.tif"]
    x, y = Transformer.from_crs(4301, 30167, always_xy=True).transform(TOKYO_LON, TOKYO_LAT)
    e, n = t.transform(x, y)
    he, hn = Transformer.from_crs(30167, 6675, always_xy=True).transform(x, y)
    assert 2.5 < math.hypot(e - he, n - hn) < 4.5  # stock PROJ Helmert is ~3.4 m off here
    assert 400 < math.hypot(e - x, n - y) < 470  # "Tokyo as JGD" would be ~435 m off
    # Uozu is in zone VII around E 21.6 km, N 91.3 km (easting first: always_xy)
    assert 15_000 < e < 30_000 and 85_000 < n < 100_000


def test_patchjgd_shift_at_uozu(project) -> None:
    t, info = crsmod.plan_transform(project, CRS.from_epsg(2449), CRS.from_epsg(6675))
    assert info.grids == ["touhokutaiheiyouoki2011.tif"]
    e, n = t.transform(21600.0, 91300.0)
    d = math.hypot(e - 21600.0, n - 91300.0)
    assert 0.3 < d < 0.6, d  # GSI PatchJGD moves Uozu ~0.47 m; stock PROJ would do nothing


def test_same_datum_is_exact_and_identity(project) -> None:
    _, info = crsmod.plan_transform(project, CRS.from_epsg(6675), CRS.from_epsg(6675))
    assert info.method == "identity" and info.accuracy_m == 0
    t, info = crsmod.plan_transform(project, CRS.from_epsg(6668), CRS.from_epsg(6675))
    assert info.method == "conversion"
    e, n = t.transform(137.40888, 36.82263)
    assert abs(e - 21607.65) < 0.05 and abs(n - 91302.74) < 0.05


def test_grid_round_trip_millimetre(project) -> None:
    """Our per-point grid steps invert exactly with GSI's README pipeline run backwards."""
    t, _ = crsmod.plan_transform(project, CRS.from_epsg(30167), CRS.from_epsg(6675))
    pts = np.array([shapely.Point(21876.96 + i, 90956.26 + i) for i in range(100)], dtype=object)
    fwd = crsmod.transform_geoms(pts, t)
    inv = Transformer.from_pipeline(mini.TOKYO_PIPE.format(g=mini.GRIDS))
    back = shapely.transform(fwd, lambda xy: np.column_stack(
        inv.transform(xy[:, 0], xy[:, 1], direction="INVERSE")))
    assert float(shapely.distance(back, pts).max()) < 0.001
    # and forwards it is the same operation as that single PROJ pipeline
    ref = shapely.transform(pts, lambda xy: np.column_stack(inv.transform(xy[:, 0], xy[:, 1])))
    assert float(shapely.distance(fwd, ref).max()) < 1e-6


def test_point_outside_grid_is_flagged(project) -> None:
    t, _ = crsmod.plan_transform(project, CRS.from_epsg(30167), CRS.from_epsg(6675))
    far = np.array([shapely.Point(5_000_000, 5_000_000), shapely.Point(21876.0, 90956.0)],
                   dtype=object)
    out = crsmod.transform_geoms(far, t)
    assert list(crsmod.bad_coords(out)) == [True, False]


# ---------------------------------------------------------------- grid coverage (GSI's meaning)

def _deg(project, *grids: str) -> crsmod.CoordOp:
    """Degrees in, degrees out, through the named grids as the project configures them."""
    refs = {g.file: g for t in project.config.transforms for g in t.grids}
    refs |= {g.file: g for c in project.config.corrections for g in c.grids}
    return crsmod.CoordOp(steps=[crsmod._grid_step(project, refs[g]) for g in grids])


def test_grid_nodes_are_read_where_proj_reads_them(project) -> None:
    """At a mesh node PROJ's shift is the node's stored offset (arc-seconds): our node lookup
    indexes the same cells, so "all four nodes defined" means what GSI's converter means."""
    import rasterio
    import rasterio.windows

    lon, lat = 137.4125, 36.8  # a node of the 45" x 30" mesh near Uozu
    with rasterio.open(mini.GRIDS / "TKY2JGD.tif") as ds:
        t = ds.transform
        c, r = round((lon - t.c) / t.a - 0.5), round((lat - t.f) / t.e - 0.5)
        dlat, dlon = ds.read(window=rasterio.windows.Window(c, r, 1, 1))[:, 0, 0]
    x, y = _deg(project, "TKY2JGD.tif").transform(lon, lat)
    assert abs((y - lat) * 3600 - dlat) < 1e-4
    assert abs((x - lon) * 3600 - dlon) < 1e-4


def test_tky2jgd_must_cover_every_point(project) -> None:
    """At sea TKY2JGD has no meshes: stock hgridshift shifts by 0 there (a silent ~435 m error);
    the point must fail instead. On land near the coast all four nodes exist."""
    op = _deg(project, "TKY2JGD.tif")
    lon = np.array([137.4, 137.2, 150.0, 137.3])
    lat = np.array([36.8, 38.6, 30.0, 37.2])
    plain = Transformer.from_pipeline(
        f"+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step +proj=hgridshift "
        f"+grids={mini.GRIDS}/TKY2JGD.tif +step +proj=unitconvert +xy_in=rad +xy_out=deg")
    px, py = plain.transform(lon, lat, errcheck=False)
    assert px[1] == lon[1] and py[1] == lat[1]  # what PROJ alone does at sea
    x, _, failed, outside = op.transform_xy(lon, lat)
    assert list(failed) == [False, True, True, True]
    assert list(outside["TKY2JGD.tif"]) == [False, True, True, True]
    assert np.isinf(x[1:]).all() and abs(x[0] - px[0]) < 1e-12


def test_patchjgd_leaves_points_outside_unchanged(project) -> None:
    """Takamatsu (34.34 N) is outside the 2011 PatchJGD grid: JGD2011 = JGD2000 there."""
    op = _deg(project, "touhokutaiheiyouoki2011.tif")
    x, y, failed, outside = op.transform_xy(np.array([134.0467, 137.4]),
                                            np.array([34.3403, 36.8]))
    assert list(failed) == [False, False]
    assert list(outside["touhokutaiheiyouoki2011.tif"]) == [True, False]
    assert (x[0], y[0]) == (134.0467, 34.3403)
    assert 0.3 < math.hypot((x[1] - 137.4) * 89_000, (y[1] - 36.8) * 111_000) < 0.6


def test_coverage_is_counted_per_grid(project) -> None:
    t, info = crsmod.plan_transform(project, CRS.from_epsg(4301), CRS.from_epsg(6668))
    pts = np.array([shapely.Point(137.4, 36.8), shapely.LineString([(137.41, 36.81),
                                                                    (137.2, 38.6)])])
    ap = t.apply(pts)
    assert ap.coverage == {
        "TKY2JGD.tif": {"points": 3, "covered": 2, "outside": "quarantine"},
        "touhokutaiheiyouoki2011.tif": {"points": 2, "covered": 2, "outside": "unchanged"}}
    assert list(ap.failed) == [False, True]
    assert info.epoch_en == "JGD2011" and info.corrections == []


def test_noto_correction_where_asked(project) -> None:
    """The 2024 Noto grid moves Uozu by ~8 cm; applied only to sources that ask for it."""
    noto = crsmod.corrections_for(project, ["noto2024"])
    assert [c.id for c in noto] == ["noto2024"] and crsmod.corrections_for(project, None) == []
    t, info = crsmod.plan_transform(project, CRS.from_epsg(6675), CRS.from_epsg(6675),
                                    corrections=noto)
    assert info.method == "grid" and info.grids == ["noto2024_BL.tif"]
    assert info.epoch_en == "JGD2011 (2024 revision)"
    assert info.title_en == "none (same CRS) + 2024 Noto earthquake correction (PatchJGD)"
    e, n = t.transform(21600.0, 91300.0)
    assert 0.05 < math.hypot(e - 21600.0, n - 91300.0) < 0.12
    _, info2 = crsmod.plan_transform(project, CRS.from_epsg(2449), CRS.from_epsg(6675),
                                      corrections=noto)
    assert info2.grids == ["touhokutaiheiyouoki2011.tif", "noto2024_BL.tif"]
