"""Datum-correct transforms against independent references at Uozu."""

from __future__ import annotations

import math
from pathlib import Path

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
    t, _ = crsmod.plan_transform(project, CRS.from_epsg(30167), CRS.from_epsg(6675))
    pts = np.array([shapely.Point(21876.96 + i, 90956.26 + i) for i in range(100)], dtype=object)
    fwd = crsmod.transform_geoms(pts, t)
    back = shapely.transform(fwd, lambda xy: np.column_stack(
        t.transform(xy[:, 0], xy[:, 1], direction="INVERSE")))
    assert float(shapely.distance(back, pts).max()) < 0.001


def test_point_outside_grid_is_flagged(project) -> None:
    t, _ = crsmod.plan_transform(project, CRS.from_epsg(30167), CRS.from_epsg(6675))
    far = np.array([shapely.Point(5_000_000, 5_000_000), shapely.Point(21876.0, 90956.0)],
                   dtype=object)
    out = crsmod.transform_geoms(far, t)
    assert list(crsmod.bad_coords(out)) == [True, False]
