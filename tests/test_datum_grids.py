"""Datum grids with GSI's meaning, through the whole merge (issue 13, item 3).

A city outside the 2011 PatchJGD grid (Takamatsu, 34.34 N, zone IV): JGD2000 coordinates are
JGD2011 coordinates there, so the records pass unchanged and their lineage says why; a Tokyo
point outside TKY2JGD is quarantined with its raw geometry; the 2024 Noto correction applies
where a source asks for it and each layer records its coordinate epoch.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import mini
import pyogrio
import shapely
from pyproj import Transformer

from config import load_project
from etl.pipeline import run_merge
from etl.stores import open_store

TAKAMATSU = (134.0467, 34.3403)  # near Takamatsu city hall

PROJECT = f"""
city: {{ja: 試験市, en: Zone IV Test City}}
city_code: "999998"
target_crs: EPSG:6672
boundary: {{path: boundary.gpkg, margin_m: 200}}
grids_dir: {mini.GRIDS}
transforms:
  - from_datum: EPSG:6301
    grids: [TKY2JGD.tif, {{file: touhokutaiheiyouoki2011.tif, outside: unchanged}}]
    accuracy_m: 0.2
    title: {{ja: 旧日本測地系→JGD2011, en: Tokyo datum to JGD2011 (TKY2JGD + PatchJGD)}}
  - from_datum: EPSG:6612
    grids: [{{file: touhokutaiheiyouoki2011.tif, outside: unchanged}}]
    accuracy_m: 0.05
    title: {{ja: JGD2000→JGD2011, en: JGD2000 to JGD2011 (PatchJGD)}}
publish:
  title: {{ja: 試験, en: Test}}
  description: {{ja: 試験, en: test}}
  contact_name: 試験市
  contact_url: https://example.org/
  city_url: https://example.org/
"""

SPEC = """
spec_version: 1
id: school_district
title: {ja: 通学区域の代表点, en: School district points}
geometry_type: Point
source_system: education
attribution: {ja: 試験市, en: Test City}
id_field: district_id
sources:
  - {name: districts, path: school/DISTRICT.shp, encoding: cp932, id_field: 学区,
     data_date: dbf_header}
  - {name: old_districts, path: school/OLD.shp, encoding: cp932, crs: "EPSG:30164", id_field: 学区,
     data_date: dbf_header}
fields:
  district_id: {from: 学区, required: true, unique: true}
"""


def _build(root: Path) -> list[tuple[float, float]]:
    (root / "config").mkdir(parents=True)
    (root / "layers").mkdir()
    (root / "config/project.yml").write_text(PROJECT, encoding="utf-8")
    (root / "layers/school_district.yml").write_text(SPEC, encoding="utf-8")
    to4 = Transformer.from_crs(4612, 2446, always_xy=True)  # JGD2000 lon/lat -> zone IV
    x0, y0 = to4.transform(*TAKAMATSU)
    gpd.GeoDataFrame(geometry=[shapely.box(x0 - 3000, y0 - 3000, x0 + 3000, y0 + 3000)],
                     crs=6672).to_file(root / "boundary.gpkg")
    pts = [(x0 + 500 * i, y0 + 300 * i) for i in range(3)]
    mini.write_shp(gpd.GeoDataFrame({"学区": ["A", "B", "C"]}, geometry=shapely.points(pts),
                                    crs=2446), root / "data/raw/school/DISTRICT.shp")
    # the same places in Tokyo datum, zone IV (TKY2JGD covers Takamatsu's land)
    tky = Transformer.from_pipeline(
        "+proj=pipeline +step +inv +proj=tmerc +lat_0=33 +lon_0=133.5 +k=0.9999 +x_0=0 +y_0=0 "
        f"+ellps=GRS80 +step +inv +proj=hgridshift +grids={mini.GRIDS}/TKY2JGD.tif "
        "+step +proj=tmerc +lat_0=33 +lon_0=133.5 +k=0.9999 +x_0=0 +y_0=0 +ellps=bessel")
    old = [tky.transform(x, y + 50) for x, y in pts]
    mini.write_shp(gpd.GeoDataFrame({"学区": ["D", "E", "F"]}, geometry=shapely.points(old)),
                   root / "data/raw/school/OLD.shp", prj=False)
    return pts


def test_outside_patchjgd_is_unchanged_and_says_so(tmp_path: Path) -> None:
    pts = _build(tmp_path)
    m = run_merge(load_project(tmp_path)).manifest["layers"]["school_district"]
    assert (m["read"], m["merged"], m["quarantined"]) == (6, 6, 0)
    new, old = m["sources"]
    assert new["transform"]["grid_coverage"] == {
        "touhokutaiheiyouoki2011.tif": {"points": 3, "covered": 0, "outside": "unchanged"}}
    assert old["transform"]["grid_coverage"] == {
        "TKY2JGD.tif": {"points": 3, "covered": 3, "outside": "quarantine"},
        "touhokutaiheiyouoki2011.tif": {"points": 3, "covered": 0, "outside": "unchanged"}}
    df = open_store(load_project(tmp_path)).read_layer("school_district")
    a = df[df["district_id"] == "A"].iloc[0]
    assert shapely.Point(pts[0]).distance(a.geometry) < 1e-6  # JGD2011 = JGD2000 here
    assert a["xy_transform"] == ("JGD2000 to JGD2011 (PatchJGD); touhokutaiheiyouoki2011.tif "
                                 "の範囲外: 変換せず / outside touhokutaiheiyouoki2011.tif: "
                                 "unchanged")
    assert a["quality_flags"] == "outside_grid:touhokutaiheiyouoki2011.tif"
    d = df[df["district_id"] == "D"].iloc[0]  # Tokyo datum: TKY2JGD applied, PatchJGD not
    assert shapely.Point(pts[0][0], pts[0][1] + 50).distance(d.geometry) < 0.001
    assert m["flags"] == {"outside_grid:touhokutaiheiyouoki2011.tif": 6}


def test_tokyo_point_outside_tky2jgd_keeps_its_raw_geometry(mini_project: Path) -> None:
    m = mini.manholes()
    m = m.set_geometry(mini.to_tokyo(m.geometry))
    geoms = list(m.geometry.values)
    geoms[5] = shapely.Point(mini.E0 - 20_000, mini.N0 + 200_000)  # the Sea of Japan
    m = m.set_geometry(geoms).set_crs(None, allow_override=True)
    mini.write_shp(m, mini_project / "data/raw/sewer/MH.shp", prj=False)
    res = run_merge(load_project(mini_project))
    L = res.manifest["layers"]["sewer_manhole"]
    assert L["sources"][0]["by_reason"] == {"OUTSIDE_DATUM_GRID": 1}
    assert L["sources"][0]["transform"]["grid_coverage"]["TKY2JGD.tif"] == {
        "points": 6, "covered": 5, "outside": "quarantine"}
    q = open_store(load_project(mini_project)).read_layer("_quarantine")
    row = q[q["reason_code"] == "OUTSIDE_DATUM_GRID"].iloc[0]
    assert row["record"] == "#6 MH005"
    assert row["geometry_wkt"] == "POINT (1600 291300)" and row["geometry_crs"] == "EPSG:30167"
    assert row["detail"] == ("OUTSIDE_DATUM_GRID: (1600.000, 291300.000) EPSG:30167 outside "
                             "TKY2JGD.tif / touhokutaiheiyouoki2011.tif")
    assert row["reason"] == ("測地系変換グリッドの範囲外 / outside the datum grid (cannot "
                             "convert)")


def test_noto_correction_and_coordinate_epoch(mini_project: Path) -> None:
    before = run_merge(load_project(mini_project))
    # the run releases each layer once written: the geometry as merged is the store's
    g0 = open_store(load_project(mini_project)).read_layer("road_segment").geometry.values
    p = mini_project / "layers/road_segment.yml"
    p.write_text(p.read_text(encoding="utf-8").replace(
        "data_date: dbf_header}", "data_date: dbf_header, corrections: [noto2024]}"),
        encoding="utf-8")
    after = run_merge(load_project(mini_project))
    L = after.manifest["layers"]["road_segment"]
    assert L["coordinate_epoch"] == "JGD2011 (2024 revision)"
    assert before.manifest["layers"]["road_segment"]["coordinate_epoch"] == "JGD2011"
    assert L["sources"][0]["transform"]["grid_coverage"] == {
        "noto2024_BL.tif": {"points": 16, "covered": 16, "outside": "unchanged"}}
    store = open_store(load_project(mini_project))
    meta = store.read_layer("_layer_meta").set_index("layer")["coordinate_epoch"]
    assert meta["road_segment"] == "JGD2011 (2024 revision)" and meta["parcel"] == "JGD2011"
    g1 = store.read_layer("road_segment").geometry.values
    d = shapely.distance(shapely.get_point(g0, 0), shapely.get_point(g1, 0))
    assert (d > 0.05).all() and (d < 0.12).all()  # ~8 cm at Uozu
    x = pyogrio.read_dataframe(mini_project / "data/merged/master.gpkg", layer="road_segment")
    assert set(x["xy_transform"]) == {
        "none (same CRS) + 2024 Noto earthquake correction (PatchJGD)"}
    assert math.isfinite(g1[0].length)
