"""Bad input, one kind at a time: each gives a clear error or quarantine row, never a traceback,
never a silent drop (the conservation law is checked on every successful run).

Each case runs ``merge`` through the API and, for errors, ``validate`` and ``merge`` through the
CLI: the same exact message, exit code 1, no traceback, and the previous master untouched.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import mini
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer

import cli
from config import load_project
from config.errors import EtlError
from etl.pipeline import RunErrors, run_merge
from etl.stores import open_store

RAW = Path("data/raw")


def _spec(root: Path, lid: str, old: str, new: str, *, codelist: bool = False) -> None:
    p = root / "layers" / ("codelists" if codelist else "") / f"{lid}.yml"
    s = p.read_text(encoding="utf-8")
    assert old in s, (lid, old)
    p.write_text(s.replace(old, new), encoding="utf-8")


def _pipes(root: Path, fn: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame], *,
           tokyo: bool = True) -> None:
    p = fn(mini.pipes())
    if tokyo:
        p = p.set_geometry(mini.to_tokyo(p.geometry))
    mini.write_shp(p.set_crs(None, allow_override=True), root / RAW / "sewer/PIPE.shp", prj=False)


def _manholes(root: Path, fn: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]) -> None:
    m = fn(mini.manholes())
    m = m.set_geometry(mini.to_tokyo(m.geometry))
    mini.write_shp(m.set_crs(None, allow_override=True), root / RAW / "sewer/MH.shp", prj=False)


def _roads(root: Path, fn: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame], **kw) -> None:
    mini.write_shp(fn(mini.roads()), root / RAW / "road/ROAD.shp", **kw)


def _road_path(root: Path, path: str, *, dated: bool = False) -> None:
    """The road source's ``path:`` instead of road/ROAD.shp; ``dated``: with a fixed data date
    (a file without a DBF header has none)."""
    _spec(root, "road_segment", "path: road/ROAD.shp", f"path: {path}")
    if dated:
        _spec(root, "road_segment", "data_date: dbf_header", "data_date: 2025-04-01")


def _roads_geojson(root: Path, g: gpd.GeoDataFrame) -> None:
    (root / RAW / "road").mkdir(exist_ok=True)
    pyogrio.write_dataframe(g, root / RAW / "road/ROAD.geojson")
    _spec(root, "road_segment", ", encoding: cp932", "")
    _road_path(root, "road/ROAD.geojson", dated=True)


def _parcels(root: Path, fn: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]) -> None:
    mini.write_shp(fn(mini.parcels()), root / RAW / "tax/CHIBAN.shp")


def _tax(root: Path, fn: Callable[[pd.DataFrame], pd.DataFrame], *,
         encoding: str = "cp932") -> None:
    fn(mini.tax()).to_csv(root / RAW / "tax/KAZEI.csv", index=False, encoding=encoding)


def _set(df: pd.DataFrame, row: int, col: str, value: object) -> pd.DataFrame:
    df = df.copy()
    if col == "geometry":
        geoms = list(df.geometry.values)
        geoms[row] = value
        return df.set_geometry(gpd.GeoSeries(geoms, index=df.index, crs=df.crs))
    df[col] = df[col].astype(object)
    df.loc[row, col] = value
    return df


def _merge_first(r: Path) -> None:
    """A good run before the bad input (rules that compare with the previous run)."""
    run_merge(load_project(r))


HYDRANT = """
spec_version: 1
id: hydrant
title: {ja: 消火栓, en: Hydrants}
geometry_type: Point
source_system: fire
attribution: {ja: テスト市 消防, en: Test City fire department}
id_field: hydrant_id
sources:
  - {name: hydrants, path: fire/HYDRANT.csv, reader: csv, encoding: utf-8, crs: "EPSG:6668",
     x_field: 経度, y_field: 緯度, id_field: 番号, data_date: 2025-04-01}
fields:
  hydrant_id: {from: 番号, required: true, unique: true}
"""


def _hydrants(r: Path, *, swap_rows: tuple[int, ...] = (), swap_columns: bool = False,
              fmt: str = "csv") -> None:
    """Five hydrants near the mini city's centre, given as lon/lat (JGD2011)."""
    t = Transformer.from_crs(6675, 6668, always_xy=True)
    lon, lat = t.transform([mini.E0 + 100 * i for i in range(5)], [mini.N0 + 50] * 5)
    rows = []
    for i in range(5):
        x, y = (lat[i], lon[i]) if (i in swap_rows) != swap_columns else (lon[i], lat[i])
        rows.append({"番号": f"H{i}", "経度": round(x, 7), "緯度": round(y, 7)})
    (r / RAW / "fire").mkdir(parents=True, exist_ok=True)
    spec = HYDRANT
    if fmt == "geojson":
        df = pd.DataFrame(rows)
        gdf = gpd.GeoDataFrame(df[["番号"]], geometry=shapely.points(df["経度"], df["緯度"]),
                               crs=4326)
        pyogrio.write_dataframe(gdf, r / RAW / "fire/HYDRANT.geojson")
        spec = spec.replace("path: fire/HYDRANT.csv, reader: csv, encoding: utf-8",
                            "path: fire/HYDRANT.geojson, crs_override: true").replace(
            "x_field: 経度, y_field: 緯度, ", "")
    else:
        pd.DataFrame(rows).to_csv(r / RAW / "fire/HYDRANT.csv", index=False)
    (r / "layers/hydrant.yml").write_text(spec, encoding="utf-8")


# ---- mutations. expected: ("error", regex on the English part) or
#      ("quarantine", layer, reason, n) or ("flag", layer, flag, n) or ("repaired", layer, n) or
#      ("warning", layer, regex) or ("check", fn(manifest, root))
def corrupt_shp(r: Path) -> None:
    (r / RAW / "sewer/PIPE.shp").write_bytes(b"this is not a shapefile" * 10)


def corrupt_shp_same_size(r: Path) -> None:
    p = r / RAW / "sewer/PIPE.shp"
    p.write_bytes(b"\x00" * p.stat().st_size)


def missing_dbf(r: Path) -> None:
    (r / RAW / "sewer/PIPE.dbf").unlink()


def missing_shx(r: Path) -> None:
    (r / RAW / "road/ROAD.shx").unlink()


def missing_file(r: Path) -> None:
    for p in (r / RAW / "tax").glob("CHIBAN.*"):
        p.unlink()


def truncated_dbf(r: Path) -> None:
    p = r / RAW / "road/ROAD.dbf"
    p.write_bytes(p.read_bytes()[:40])


def dbf_fewer_records_than_shx(r: Path) -> None:
    tmp = r / "tmp"
    mini.write_shp(mini.roads().iloc[:7], tmp / "ROAD.shp")
    (r / RAW / "road/ROAD.dbf").write_bytes((tmp / "ROAD.dbf").read_bytes())


def wrong_encoding_spec(r: Path) -> None:
    _spec(r, "road_segment", "encoding: cp932", "encoding: utf-8")


def no_encoding_spec(r: Path) -> None:
    _spec(r, "road_segment", ", encoding: cp932", "")


def cpg_says_utf8(r: Path) -> None:
    _spec(r, "road_segment", ", encoding: cp932", "")
    (r / RAW / "road/ROAD.cpg").write_text("UTF-8", encoding="ascii")


def csv_wrong_encoding(r: Path) -> None:
    _spec(r, "parcel_tax", "encoding: cp932", "encoding: utf-8")


def csv_utf8_declared_cp932(r: Path) -> None:
    _tax(r, lambda d: d, encoding="utf-8")


def csv_utf16_declared_cp932(r: Path) -> None:
    _tax(r, lambda d: d, encoding="utf-16")


def csv_utf8_bom(r: Path) -> None:
    _tax(r, lambda d: d, encoding="utf-8-sig")
    _spec(r, "parcel_tax", "encoding: cp932", "encoding: utf-8")


def bow_tie(r: Path) -> None:
    _parcels(r, lambda d: _set(d, 0, "geometry", shapely.Polygon(
        [(mini.E0, mini.N0 + 10), (mini.E0 + 40, mini.N0 + 50), (mini.E0 + 40, mini.N0 + 10),
         (mini.E0, mini.N0 + 50)])))


def degenerate_polygon(r: Path) -> None:
    _parcels(r, lambda d: _set(d, 1, "geometry", shapely.Polygon(
        [(mini.E0, mini.N0 + 10), (mini.E0 + 40, mini.N0 + 10), (mini.E0 + 20, mini.N0 + 10)])))


def null_geometry(r: Path) -> None:
    _roads(r, lambda d: _set(d, 2, "geometry", None))


def empty_geometry(r: Path) -> None:
    _roads_geojson(r, _set(mini.roads(), 3, "geometry", shapely.LineString()))


def mixed_geometry_types(r: Path) -> None:
    _roads_geojson(r, _set(mini.roads(), 1, "geometry", shapely.Point(mini.E0, mini.N0)))


def multipart_line(r: Path) -> None:
    _roads_geojson(r, _set(mini.roads(), 0, "geometry", shapely.MultiLineString(
        [[(mini.E0, mini.N0), (mini.E0 + 10, mini.N0)],
         [(mini.E0 + 50, mini.N0), (mini.E0 + 60, mini.N0)]])))


def zero_length_line(r: Path) -> None:
    _roads(r, lambda d: _set(d, 4, "geometry", shapely.LineString(
        [(mini.E0, mini.N0), (mini.E0, mini.N0)])))


def swapped_axes(r: Path) -> None:
    g = mini.roads()
    g = g.set_geometry(shapely.transform(g.geometry.values, lambda xy: xy[:, ::-1]))
    mini.write_shp(g, r / RAW / "road/ROAD.shp")


def swapped_latlon_columns(r: Path) -> None:
    _hydrants(r, swap_columns=True)


def geojson_in_latlon_order(r: Path) -> None:
    _hydrants(r, swap_columns=True, fmt="geojson")


def one_record_swapped(r: Path) -> None:
    _hydrants(r, swap_rows=(3,))


def swapped_fixed_by_axis_order(r: Path) -> None:
    _hydrants(r, swap_columns=True)
    _spec(r, "hydrant", "x_field: 経度", "axis_order: yx, x_field: 経度")


def tokyo_declared_as_jgd(r: Path) -> None:
    _spec(r, "sewer_manhole", 'crs: "EPSG:30167"', 'crs: "EPSG:6675"')


def wrong_zone(r: Path) -> None:
    _spec(r, "sewer_pipe", 'crs: "EPSG:30167"', 'crs: "EPSG:30168"')


def no_prj_no_crs(r: Path) -> None:
    _spec(r, "sewer_pipe", ', crs: "EPSG:30167"', "")


def prj_conflicts_with_spec(r: Path) -> None:
    _spec(r, "road_segment", "encoding: cp932,", 'encoding: cp932, crs: "EPSG:2449",')


def outside_tky2jgd_grid(r: Path) -> None:
    """A Tokyo-datum manhole 250 km out in the Sea of Japan, where TKY2JGD has no meshes."""
    _manholes(r, lambda d: _set(d, 5, "geometry", shapely.Point(mini.E0 - 20_000,
                                                                  mini.N0 + 200_000)))


def duplicate_ids(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 3, "管渠番号", "P001"))


def unknown_code(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 2, "管種", "XX"))


def missing_required(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 1, "管渠番号", None))


def missing_column(r: Path) -> None:
    _pipes(r, lambda d: d.drop(columns=["管種"]))


def out_of_range(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 0, "管径", 99999))


def bad_number_text(r: Path) -> None:
    _roads(r, lambda d: _set(d, 0, "幅員", "広い"))


def number_1e400(r: Path) -> None:
    _roads(r, lambda d: _set(d, 1, "幅員", "1e400"))


def int_beyond_int64(r: Path) -> None:
    _tax(r, lambda d: _set(d, 0, "評価額", "99999999999999999999999999"))


def int_beyond_int64_nulled(r: Path) -> None:
    int_beyond_int64(r)
    _spec(r, "parcel_tax", "assessed_value_jpy: {from: 評価額, type: int}",
          'assessed_value_jpy: {from: 評価額, type: int, on_bad_value: "null"}')


def int_exact_17_digits(r: Path) -> None:
    _tax(r, lambda d: _set(d, 1, "評価額", "12345678901234567"))


def blank_numeric_column(r: Path) -> None:
    _tax(r, lambda d: d.assign(評価額=""))


def blank_text_column_dbf(r: Path) -> None:
    _roads(r, lambda d: d.assign(幅員=None))


def mixed_types_geojson(r: Path) -> None:
    g = mini.roads()
    g["幅員"] = pd.Series([5.5, "6.0m", 7, "W=4.0", 3, "3m", 4.25, "８"], dtype=object)
    _roads_geojson(r, g)


def numbers_with_units(r: Path) -> None:
    _roads(r, lambda d: d.assign(幅員=["3.0m", "約2m", "0.5ｍ未満", "250cm", "7", "6m", "5", "4m"]))
    _spec(r, "road_segment", "normalize: [number], range: [0.5, 60]",
          "normalize: [{quantity: {unit: m}}], range: [0.5, 60]")


def numbers_with_units_bounds_kept(r: Path) -> None:
    numbers_with_units(r)
    _spec(r, "road_segment", "{quantity: {unit: m}}", "{quantity: {unit: m, bounds: keep}}")


def bad_wareki(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 0, "布設年度", "H99"))


def impossible_era_dates(r: Path) -> None:
    _roads(r, lambda d: d.assign(調査日=["令和元年4月1日", "H1.1.1", "令和元年5月1日", "H1.1.8",
                                         "S64.1.7", "H31.4.30", "2019/05/01", None]))
    _spec(r, "road_segment", "  width_m:", "  survey_date: {from: 調査日, type: date}\n  width_m:")


def garbage_chiban(r: Path) -> None:
    _parcels(r, lambda d: _set(d, 3, "地番", "abc"))


def _chiban_dbf(r: Path, width: int, names: list[str]) -> None:
    """The parcel export with 大字名 in a text field ``width`` bytes wide (a fixed ledger
    width, as the source system has it)."""
    p = mini.parcels().assign(大字名=names)
    tmp = r / "tmp"
    tmp.mkdir(exist_ok=True)
    df = pd.DataFrame(p.drop(columns="geometry")).assign(WKT=shapely.to_wkt(p.geometry.values))
    df.to_csv(tmp / "c.csv", index=False, encoding="utf-8")
    (tmp / "c.csvt").write_text(f'"String(10)","String({width})","String(20)","String(10)",'
                                '"String"\n', encoding="ascii")
    out = r / RAW / "tax/CHIBAN.shp"
    for q in out.parent.glob("CHIBAN.*"):
        q.unlink()
    subprocess.run(["ogr2ogr", "-q", "-f", "ESRI Shapefile", "-lco", "ENCODING=CP932",
                    "-a_srs", "EPSG:6675", "-nlt", "POLYGON", str(out), str(tmp / "c.csv"),
                    "-oo", "GEOM_POSSIBLE_NAMES=WKT", "-oo", "KEEP_GEOM_COLUMNS=NO"], check=True)
    out.with_suffix(".cpg").unlink()


def text_at_field_width(r: Path) -> None:
    """大字名 is 6 bytes wide and one name fills it (新宿東町 was perhaps cut to 新宿東)."""
    _chiban_dbf(r, 6, ["本町", "本町", "新宿東", "新宿"])


def text_cut_inside_a_character(r: Path) -> None:
    """新宿東町 cut at 7 bytes by the export: the DBF ends in half a character, which GDAL
    drops silently (it reads 新宿東)."""
    _chiban_dbf(r, 8, ["本町", "本町", "新宿東町", "新宿"])
    dbf = r / RAW / "tax/CHIBAN.dbf"
    d = dbf.read_bytes()
    full = "新宿東町".encode("cp932")
    assert full in d
    dbf.write_bytes(d.replace(full, full[:7] + b" "))
    _spec(r, "parcel", "oaza_name: {from: 大字名,", "oaza_name: {from: 大字名, on_truncated: warn,")


def text_cut_quarantined(r: Path) -> None:
    text_cut_inside_a_character(r)
    _spec(r, "parcel", "on_truncated: warn", "on_truncated: quarantine")


def missing_reference(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 2, "上流人孔", "MH999"))


def missing_reference_nulled(r: Path) -> None:
    missing_reference(r)
    _spec(r, "sewer_pipe", "endpoint: start, tolerance_m: 1.0}",
          'endpoint: start, tolerance_m: 1.0, on_missing: "null"}')


def end_far_from_manhole(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 0, "geometry", shapely.LineString(
        [(mini.E0 + 5, mini.N0 + 2), (mini.E0 + 100, mini.N0 + 2)])))


def outside_city(r: Path) -> None:
    _roads(r, lambda d: _set(d, 0, "geometry", shapely.LineString(
        [(mini.E0 + 9000, mini.N0), (mini.E0 + 9100, mini.N0)])))


def sentinel_values(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 0, "上流土被", 999.99))


def join_unmatched(r: Path) -> None:
    _tax(r, lambda d: _set(d, 0, "地番", "777-7"))


def join_unmatched_warned(r: Path) -> None:
    join_unmatched(r)
    _spec(r, "parcel_tax", "keys: [oaza_name, chiban]}", "keys: [oaza_name, chiban], "
          "on_missing: warn}")


def empty_file(r: Path) -> None:
    _roads(r, lambda d: d.iloc[:0])


def header_only_csv_after_a_run(r: Path) -> None:
    _merge_first(r)
    _tax(r, lambda d: d.iloc[:0])


def header_only_csv_allowed(r: Path) -> None:
    header_only_csv_after_a_run(r)
    _spec(r, "parcel_tax", "data_date: 2025-01-01}", "data_date: 2025-01-01, allow_empty: true}")


def geojson_no_features(r: Path) -> None:
    _roads_geojson(r, mini.roads().iloc[:0])


def geojson_no_features_after_a_run(r: Path) -> None:
    _merge_first(r)
    geojson_no_features(r)


def many_records_lost(r: Path) -> None:
    _roads(r, lambda d: d.assign(幅員=["広い", "狭い", "?", "-", "x", "6m", "5", "4m"]))


def unknown_spec_key(r: Path) -> None:
    _spec(r, "road_segment", "visibility: public\n", "visibilty: public\n")


def spec_not_yaml(r: Path) -> None:
    (r / "layers/road_segment.yml").write_text("id: [unclosed", encoding="utf-8")


def _road_class_entry(r: Path, entry: str) -> None:
    """One more code list entry (a YAML line) after the road class code list's last."""
    last = "  other: {ja: その他, en: Other}"
    _spec(r, "road_class", last, f"{last}\n  {entry}", codelist=True)


def yaml_boolean_key(r: Path) -> None:
    _road_class_entry(r, "NO: {ja: なし, en: None}")


def yaml_duplicate_key(r: Path) -> None:
    _road_class_entry(r, "class1: {ja: 一級市道, en: Class 1 road}")


def alias_claimed_twice(r: Path) -> None:
    _spec(r, "sewer_material", "HP: {ja: ヒューム管, en: Hume pipe}",
          "HP: {ja: ヒューム管, en: Hume pipe, aliases: [塩ビ]}", codelist=True)
    _spec(r, "sewer_material", "VU: {ja: 塩ビ管(薄肉), en: PVC (thin)}",
          "VU: {ja: 塩ビ管(薄肉), en: PVC (thin), aliases: [塩ビ]}", codelist=True)


def alias_claimed_twice_folded(r: Path) -> None:
    _spec(r, "sewer_material", "VP: {ja: 塩ビ管(厚肉), en: PVC (thick)}",
          "VP: {ja: 塩ビ管(厚肉), en: PVC (thick), aliases: [hp]}", codelist=True)


def path_traversal(r: Path) -> None:
    _road_path(r, "../../../../etc/passwd")


def absolute_path(r: Path) -> None:
    _road_path(r, "/etc/passwd")


def symlink_out_of_raw(r: Path) -> None:
    outside = r / "elsewhere"
    outside.mkdir()
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        src = r / RAW / f"road/ROAD{ext}"
        (outside / f"ROAD{ext}").write_bytes(src.read_bytes())
        src.unlink()
        src.symlink_to(outside / f"ROAD{ext}")


def measured_shapefile(r: Path) -> None:
    """Manholes exported as PointM (measure = chainage): the master cannot keep M."""
    m = mini.manholes()
    m = m.set_geometry(mini.to_tokyo(m.geometry))
    df = pd.DataFrame({"人孔番号": m["人孔番号"], "地盤高": m["地盤高"], "蓋種別": m["蓋種別"],
                       "WKT": [f"POINT M ({g.x} {g.y} {10.0 * i})"
                               for i, g in enumerate(m.geometry)]})
    tmp = r / "tmp"
    tmp.mkdir(exist_ok=True)
    df.to_csv(tmp / "MH.csv", index=False, encoding="utf-8")
    for p in (r / RAW / "sewer").glob("MH.*"):
        p.unlink()
    subprocess.run(["ogr2ogr", "-q", "-f", "ESRI Shapefile", "-lco", "ENCODING=CP932",
                    "-nlt", "POINTM", str(r / RAW / "sewer/MH.shp"), str(tmp / "MH.csv"),
                    "-oo", "GEOM_POSSIBLE_NAMES=WKT", "-oo", "KEEP_GEOM_COLUMNS=NO"], check=True)
    for ext in (".cpg", ".prj"):
        (r / RAW / f"sewer/MH{ext}").unlink(missing_ok=True)


def measured_shapefile_dropped(r: Path) -> None:
    measured_shapefile(r)
    _spec(r, "sewer_manhole", "data_date: dbf_header}", "data_date: dbf_header,\n"
          "     drop_dimensions: [m]}")


def vertex_budget(r: Path) -> None:
    _spec(r, "parcel", "id_field: parcel_id\n",
          "id_field: parcel_id\npublish_geometry: {max_vertices: 4, tolerance_m: 0.5}\n")


def bad_publication_rule(r: Path) -> None:
    _spec(r, "parcel", "id_field: parcel_id\n",
          "id_field: parcel_id\npublish_geometry: {max_vertices: 4, tolerance_m: 0}\n")


def swapped_plane_xy_columns(r: Path) -> None:
    """Plane coordinates in columns X and Y the surveying way (X = northing, Y = easting),
    declared x_field: X as if X were the easting: every point swapped."""
    rows = [{"番号": f"H{i}", "X": mini.N0 + 50, "Y": mini.E0 + 100 * i} for i in range(5)]
    (r / RAW / "fire").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(r / RAW / "fire/HYDRANT.csv", index=False)
    (r / "layers/hydrant.yml").write_text(HYDRANT.replace('crs: "EPSG:6668"', 'crs: "EPSG:6675"')
                                          .replace("x_field: 経度, y_field: 緯度",
                                                   "x_field: X, y_field: Y"), encoding="utf-8")


def swapped_plane_xy_fixed(r: Path) -> None:
    swapped_plane_xy_columns(r)
    _spec(r, "hydrant", "x_field: X", "axis_order: yx, x_field: X")


def id_padded_with_spaces(r: Path) -> None:
    """P001 again, padded with a full-width and an ASCII space: the same public id once
    trimmed, so merge must call it a duplicate (publish trims ids the same way)."""
    _pipes(r, lambda d: _set(d, 3, "管渠番号", "\u3000P001 "))


def id_padded_no_normalizer(r: Path) -> None:
    """The same on an id field with no normalizer (the type cast trims it)."""
    _parcels(r, lambda d: _set(d, 2, "筆ID", "\u3000F0"))


MATERIAL = "material: {from: 管種, codelist: sewer_material,"


def _unknown_code_policy(r: Path, policy: str) -> None:
    """:func:`unknown_code` under ``on_unknown_code: <policy>``."""
    unknown_code(r)
    _spec(r, "sewer_pipe", MATERIAL, f"{MATERIAL} on_unknown_code: {policy},")


def unknown_code_kept(r: Path) -> None:
    _unknown_code_policy(r, "keep")


def unknown_code_warned(r: Path) -> None:
    _unknown_code_policy(r, "warn")


def unknown_code_nulled(r: Path) -> None:
    _unknown_code_policy(r, '"null"')


def yaml_boolean_key_on(r: Path) -> None:
    _road_class_entry(r, "ON: {ja: オン, en: On}")


def yaml_boolean_key_y(r: Path) -> None:
    _road_class_entry(r, "Y: {ja: 県道, en: Prefectural}")


VRT = """<OGRVRTDataSource>
  <OGRVRTLayer name="ROAD">
    <SrcDataSource relativeToVRT="1">../../../elsewhere/ROAD.shp</SrcDataSource>
  </OGRVRTLayer>
</OGRVRTDataSource>
"""


def _elsewhere(r: Path) -> None:
    """A copy of the road export outside the raw folder (what a VRT could point at)."""
    outside = r / "elsewhere"
    outside.mkdir(exist_ok=True)
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        (outside / f"ROAD{ext}").write_bytes((r / RAW / f"road/ROAD{ext}").read_bytes())


def vrt_out_of_raw(r: Path) -> None:
    """A VRT inside the raw folder whose source is outside it."""
    _elsewhere(r)
    (r / RAW / "road/ROAD.vrt").write_text(VRT, encoding="utf-8")
    _road_path(r, "road/ROAD.vrt", dated=True)


def vrt_named_geojson(r: Path) -> None:
    """The same VRT under another name: GDAL knows it by its content, so does the check."""
    _elsewhere(r)
    (r / RAW / "road/ROAD.geojson").write_text(VRT, encoding="utf-8")
    _road_path(r, "road/ROAD.geojson", dated=True)


def vrt_in_zip(r: Path) -> None:
    """The VRT as the only member of a .zip (GDAL opens such a zip's member directly), its
    source an absolute path."""
    import zipfile

    _elsewhere(r)
    with zipfile.ZipFile(r / RAW / "road/ROAD.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ROAD.vrt", VRT.replace('relativeToVRT="1">../../../',
                                           f">{r.resolve()}/"))
    _road_path(r, "road/ROAD.zip", dated=True)


def gdal_vsi_path(r: Path) -> None:
    _road_path(r, "/vsicurl/https://example.org/ROAD.shp")


def gdal_connection_string(r: Path) -> None:
    _road_path(r, '"PG:dbname=gis"')


def _manholes_z(r: Path, z: list[float]) -> None:
    """Manholes exported as PointZ (Tokyo datum, no .prj), Z as given."""
    m = mini.manholes()
    g = shapely.force_3d(mini.to_tokyo(m.geometry).values, z=np.array(z))
    mini.write_shp(gpd.GeoDataFrame(m.drop(columns="geometry"), geometry=g),
                   r / RAW / "sewer/MH.shp", prj=False)
    assert pyogrio.read_info(r / RAW / "sewer/MH.shp", encoding="cp932")["geometry_type"] == \
        "Point Z"


def z_shapefile(r: Path) -> None:
    """PointZ manholes carrying their ground height as Z: the master stores X/Y only."""
    _manholes_z(r, [5.1, 5.2, 5.3, 5.4, 5.5, 5.6])


def z_shapefile_dropped(r: Path) -> None:
    """PolyLineZ pipes (invert levels as Z) with drop_dimensions: [z]."""
    p = mini.pipes()
    g = shapely.force_3d(mini.to_tokyo(p.geometry).values, z=3.5)
    mini.write_shp(gpd.GeoDataFrame(p.drop(columns="geometry"), geometry=g),
                   r / RAW / "sewer/PIPE.shp", prj=False)
    assert pyogrio.read_info(r / RAW / "sewer/PIPE.shp", encoding="cp932")["geometry_type"] == \
        "LineString Z"
    _spec(r, "sewer_pipe", "id_field: 管渠番号,\n     data_date: dbf_header}",
          "id_field: 管渠番号,\n     data_date: dbf_header, drop_dimensions: [z]}")


def z_all_zero(r: Path) -> None:
    """PointZ with every Z 0 (a 2D export written as 3D): dropped with a warning."""
    _manholes_z(r, [0.0] * 6)


def _q_detail(layer: str, reason: str, want: list[tuple[str, str]]) -> Callable:
    """The quarantine rows of ``reason``: (record, detail) each, in order."""
    def check(m: dict, root: Path) -> None:
        q = open_store(load_project(root)).read_layer("_quarantine")
        rows = q[(q["layer"] == layer) & (q["reason_code"] == reason)]
        assert list(zip(rows["record"], rows["detail"], strict=True)) == want, rows
    return check


def _problem(layer: str, row: dict) -> Callable:
    """A row of the layer's report (the policy engine's: reason, field, action, count)."""
    def check(m: dict, root: Path) -> None:
        rows = m["layers"][layer]["problems"]
        assert row in rows, rows
    return check


def _no_z(layer: str) -> Callable:
    def check(m: dict, root: Path) -> None:
        g = open_store(load_project(root)).read_layer(layer).geometry
        assert not g.has_z.any()
    return check


def _q_geometry(layer: str, reason: str, crs: str, pattern: str) -> Callable:
    """The quarantine row keeps the record's raw geometry (WKT in the named CRS)."""
    def check(m: dict, root: Path) -> None:
        q = open_store(load_project(root)).read_layer("_quarantine")
        rows = q[(q["layer"] == layer) & (q["reason_code"] == reason)]
        assert len(rows) == 1, q[["layer", "reason_code"]]
        assert list(rows["geometry_crs"]) == [crs]
        assert re.fullmatch(pattern, rows["geometry_wkt"].iloc[0]), rows["geometry_wkt"].iloc[0]
    return check


def _values(layer: str, column: str, want: list) -> Callable:
    def check(m: dict, root: Path) -> None:
        df = open_store(load_project(root)).read_layer(layer)
        got = [None if pd.isna(v) else v for v in df[column]]
        assert got == want, got
    return check


def _all(*checks: Callable) -> Callable:
    def check(m: dict, root: Path) -> None:
        for c in checks:
            c(m, root)
    return check


def _unknown_code_outcome(action: str, material: str | None, flags: dict) -> Callable:
    """P002's unknown material XX under ``on_unknown_code: <action>``: the materials stored
    (``material`` for P002), the layer's flags and the row of its report."""
    return _all(
        _values("sewer_pipe", "material", ["HP", "VU", material, "HP", "HP"]),
        _flags("sewer_pipe", flags),
        _problem("sewer_pipe", {"reason": "UNKNOWN_CODE", "field": "material", "action": action,
                                "count": 1, "example": "sewer/PIPE.shp #3 P002 material=XX"}))


def _layer_read(layer: str, read: int, merged: int) -> Callable:
    def check(m: dict, root: Path) -> None:
        L = m["layers"][layer]
        assert (L["read"], L["merged"]) == (read, merged)
    return check


def _flags(layer: str, flags: dict) -> Callable:
    def check(m: dict, root: Path) -> None:
        assert m["layers"][layer]["flags"] == flags, m["layers"][layer]["flags"]
    return check


def _warned(layer: str, pattern: str) -> Callable:
    def check(m: dict, root: Path) -> None:
        ws = m["layers"][layer]["warnings"]
        assert any(re.search(pattern, w) for w in ws), ws
    return check


E = r"\. Fix: "
CASES: list[tuple[Callable[[Path], None], tuple]] = [
    (corrupt_shp, ("error", r"layer 'sewer_pipe': sewer/PIPE\.shp is truncated \(PIPE\.shp: "
                            r"230 < 540 bytes\)\. Fix: export it again")),
    (corrupt_shp_same_size, ("error", r"layer 'sewer_pipe': cannot read sewer/PIPE\.shp .*"
                                      r"Fix: export it")),
    (missing_dbf, ("error", r"layer 'sewer_pipe': sewer/PIPE\.shp is missing its \.dbf")),
    (missing_shx, ("error", r"layer 'road_segment': road/ROAD\.shp is missing its \.shx")),
    (missing_file, ("error", r"layer 'parcel': file tax/CHIBAN\.shp not found\. Fix: export it "
                             r"from the source system into data/raw$")),
    (truncated_dbf, ("error", r"layer 'road_segment': road/ROAD\.shp is truncated")),
    (dbf_fewer_records_than_shx, ("error", r"layer 'road_segment': the parts of road/ROAD\.shp "
                                           r"disagree: \.shp/\.shx hold 8 shapes, \.dbf holds 7 "
                                           r"records\. Fix: copy \.shp, \.shx and \.dbf of one "
                                           r"export together")),
    (wrong_encoding_spec, ("error", r"road/ROAD\.shp is declared utf-8 but it is cp932 "
                                    r"\(Shift_JIS\) \(does not decode as utf-8\)\. Fix: set "
                                    r"encoding: cp932 on the source")),
    (no_encoding_spec, ("error", r"road/ROAD\.shp has no declared encoding \(its text is cp932 "
                                 r"\(Shift_JIS\)\)\. Fix: set encoding: cp932 on the source")),
    (cpg_says_utf8, ("error", r"road/ROAD\.shp is declared UTF-8 \(\.cpg\) but it is cp932 "
                              r"\(Shift_JIS\)")),
    (csv_wrong_encoding, ("error", r"tax/KAZEI\.csv is declared utf-8 but it is cp932 "
                                   r"\(Shift_JIS\) \(does not decode as utf-8\)")),
    (csv_utf8_declared_cp932, ("error", r"tax/KAZEI\.csv is declared cp932 but it is UTF-8 "
                                        r"\(valid UTF-8 throughout\)\. Fix: set encoding: "
                                        r"utf-8 on the source")),
    (csv_utf16_declared_cp932, ("error", r"tax/KAZEI\.csv is declared cp932 but it is UTF-16 "
                                         r"\(BOM\)\. Fix: set encoding: utf-16")),
    (csv_utf8_bom, ("quarantine", "parcel_tax", "JOIN_UNMATCHED", 1)),
    (bow_tie, ("repaired", "parcel", 1)),
    (degenerate_polygon, ("quarantine", "parcel", "INVALID_GEOMETRY", 1)),
    (null_geometry, ("quarantine", "road_segment", "NULL_GEOMETRY", 1)),
    (empty_geometry, ("quarantine", "road_segment", "EMPTY_GEOMETRY", 1)),
    (mixed_geometry_types, ("quarantine", "road_segment", "GEOMETRY_TYPE", 1)),
    (multipart_line, ("quarantine", "road_segment", "GEOMETRY_TYPE", 1)),
    (zero_length_line, ("quarantine", "road_segment", "INVALID_GEOMETRY", 1)),
    (swapped_axes, ("error", r"layer 'road_segment': road/ROAD\.shp has its axes \(X/Y, lat/lon\) "
                             r"swapped: 8/8 points fall outside the city; swapped, 8/8 fall "
                             r"inside the boundary \(CRS EPSG:6675\)\. Fix: set axis_order: yx "
                             r"on the source")),
    (swapped_latlon_columns, ("error", r"layer 'hydrant': fire/HYDRANT\.csv has its axes .* "
                                       r"swapped: 5/5 points fall outside the city; swapped, 5/5 "
                                       r"fall inside the boundary \(CRS EPSG:6668\)")),
    (geojson_in_latlon_order, ("error", r"layer 'hydrant': fire/HYDRANT\.geojson has its axes "
                                        r".* 5/5 points fall outside the city; swapped, 5/5")),
    (swapped_plane_xy_columns, ("error", r" / layer 'hydrant': fire/HYDRANT\.csv has its axes "
                                         r"\(X/Y, lat/lon\) swapped: 5/5 points fall outside the "
                                         r"city; swapped, 5/5 fall inside the boundary \(CRS "
                                         r"EPSG:6675\)\. Fix: set axis_order: yx on the source$")),
    (swapped_plane_xy_fixed, ("check", _layer_read("hydrant", 5, 5))),
    (one_record_swapped, ("check", _all(_q_geometry("hydrant", "SWAPPED_AXES", "EPSG:6668",
                                                    r"POINT \(36\.\d+ 137\.\d+\)"),
                                        _layer_read("hydrant", 5, 4)))),
    (swapped_fixed_by_axis_order, ("check", _layer_read("hydrant", 5, 5))),
    (tokyo_declared_as_jgd, ("error", r"sewer/MH\.shp is declared EPSG:6675 but looks like "
                                      r"Tokyo datum.*Fix: set the source's crs: to EPSG:30167 "
                                      r"\(Tokyo datum, same zone\)")),
    (wrong_zone, ("error", r"layer 'sewer_pipe': 5/5 points of sewer/PIPE\.shp fall outside the "
                           r"city \(CRS EPSG:30168; 0/5 inside with swapped axes\)\. Fix: check "
                           r"the source's crs: \(zone and datum\)")),
    (no_prj_no_crs, ("error", r"sewer/PIPE\.shp has no CRS \(\.prj missing\)\. Fix: set crs:")),
    (prj_conflicts_with_spec, ("error", r"road/ROAD\.shp says EPSG:6675 but the spec says "
                                        r"EPSG:2449")),
    (outside_tky2jgd_grid, ("check", _all(
        _q_geometry("sewer_manhole", "OUTSIDE_DATUM_GRID", "EPSG:30167",
                    r"POINT \(1\d{3}\.\d+ 29\d{4}\.\d+\)"),
        _layer_read("sewer_manhole", 6, 5)))),
    (duplicate_ids, ("quarantine", "sewer_pipe", "DUPLICATE_ID", 1)),
    (id_padded_with_spaces, ("check", _all(
        _q_detail("sewer_pipe", "DUPLICATE_ID", [
            ("#4 \u3000P001", "DUPLICATE_ID: pipe_id=P001 also in sewer/PIPE.shp #2 P001")]),
        _layer_read("sewer_pipe", 5, 4)))),
    (id_padded_no_normalizer, ("check", _all(
        _q_detail("parcel", "DUPLICATE_ID", [
            ("#3 \u3000F0", "DUPLICATE_ID: parcel_id=F0 also in tax/CHIBAN.shp #1 F0")]),
        _values("parcel", "parcel_id", ["F0", "F1", "F3"])))),
    (unknown_code, ("quarantine", "sewer_pipe", "UNKNOWN_CODE", 1)),
    (unknown_code_kept, ("check", _all(  # kept as recorded, unflagged, a row of the report
        _unknown_code_outcome("keep", "XX", {"sentinel:cover_up_m": 1}),
        _layer_read("sewer_pipe", 5, 5)))),
    (unknown_code_warned, ("check", _unknown_code_outcome(
        "warn", "XX", {"sentinel:cover_up_m": 1, "unknown_code:material": 1}))),
    (unknown_code_nulled, ("check", _unknown_code_outcome(
        "null", None, {"sentinel:cover_up_m": 1, "unknown_code:material": 1}))),
    (missing_required, ("quarantine", "sewer_pipe", "MISSING_REQUIRED", 1)),
    (missing_column, ("error", r"sewer/PIPE\.shp has no column\(s\) 管種")),
    (out_of_range, ("quarantine", "sewer_pipe", "OUT_OF_RANGE", 1)),
    (bad_number_text, ("quarantine", "road_segment", "BAD_VALUE", 1)),
    (number_1e400, ("quarantine", "road_segment", "BAD_VALUE", 1)),
    (int_beyond_int64, ("quarantine", "parcel_tax", "BAD_VALUE", 1)),
    (int_beyond_int64_nulled, ("check", _all(
        _flags("parcel_tax", {"bad_value:assessed_value_jpy": 1}),
        _values("parcel_tax", "assessed_value_jpy", [None, 2000000, 3000000, 4000000])))),
    (int_exact_17_digits, ("check", _values("parcel_tax", "assessed_value_jpy",
                                            [1000000, 12345678901234567, 3000000, 4000000]))),
    (blank_numeric_column, ("check", _values("parcel_tax", "assessed_value_jpy",
                                             [None] * 4))),
    (blank_text_column_dbf, ("check", _values("road_segment", "width_m", [None] * 8))),
    (mixed_types_geojson, ("check", _values("road_segment", "width_m",
                                            [5.5, 6.0, 7.0, 4.0, 3.0, 3.0, 4.25, 8.0]))),
    (numbers_with_units, ("check", _all(
        _values("road_segment", "width_m", [3.0, 2.0, 2.5, 7.0, 6.0, 5.0, 4.0]),
        _values("road_segment", "width_m_qual", ["exact", "approx", "exact", "exact", "exact",
                                                  "exact", "exact"]),
        _q_detail("road_segment", "BAD_VALUE", [("#3 3", "BAD_VALUE: width_m=0.5ｍ未満")]),
        _layer_read("road_segment", 8, 7)))),
    (numbers_with_units_bounds_kept, ("check", _values(
        "road_segment", "width_m_qual", ["exact", "approx", "below", "exact", "exact", "exact",
                                         "exact", "exact"]))),
    (bad_wareki, ("quarantine", "sewer_pipe", "BAD_VALUE", 1)),
    (impossible_era_dates, ("check", _all(
        _values("road_segment", "survey_date", ["2019-05-01", "1989-01-08", "1989-01-07",
                                                "2019-04-30", "2019-05-01", None]),
        _q_detail("road_segment", "BAD_VALUE", [("#1 1", "BAD_VALUE: survey_date=令和元年4月1日"),
                                                ("#2 2", "BAD_VALUE: survey_date=H1.1.1")]),
        _layer_read("road_segment", 8, 6)))),
    (garbage_chiban, ("quarantine", "parcel", "BAD_VALUE", 1)),
    (text_at_field_width, ("check", _all(
        _warned("parcel", r"tax/CHIBAN\.shp: 1 value\(s\) of 大字名 fill the DBF field width of "
                          r"6 bytes; check that the export did not cut them"),
        _flags("parcel", {})))),
    (text_cut_inside_a_character, ("check", _all(
        _flags("parcel", {"truncated:oaza_name": 1}),
        _values("parcel", "oaza_name", ["本町", "本町", "新宿東", "新宿"])))),
    (text_cut_quarantined, ("quarantine", "parcel", "TRUNCATED_TEXT", 1)),
    (missing_reference, ("quarantine", "sewer_pipe", "MISSING_REFERENCE", 1)),
    (missing_reference_nulled, ("check", _all(
        _flags("sewer_pipe", {"missing_ref:up_mh_id": 1, "sentinel:cover_up_m": 1}),
        _values("sewer_pipe", "up_mh_id", ["MH000", "MH001", None, "MH003", "MH004"])))),
    (end_far_from_manhole, ("flag", "sewer_pipe", "far_from:up_mh_id", 1)),
    (outside_city, ("quarantine", "road_segment", "OUTSIDE_BOUNDARY", 1)),
    (sentinel_values, ("flag", "sewer_pipe", "sentinel:cover_up_m", 2)),
    (join_unmatched, ("quarantine", "parcel_tax", "JOIN_UNMATCHED", 2)),
    (join_unmatched_warned, ("check", _all(
        _flags("parcel_tax", {"join_unmatched:oaza_name+chiban": 2}),
        _layer_read("parcel_tax", 5, 5)))),
    (empty_file, ("check", _all(_warned("road_segment", r"road/ROAD\.shp: no records "
                                                        r"\(header only\)"),
                                _layer_read("road_segment", 0, 0)))),
    (header_only_csv_after_a_run, ("error", r"layer 'parcel_tax': tax/KAZEI\.csv yields no "
                                            r"records \(header only\) but the previous run "
                                            r"\S+ had 5\. Fix: export it again; if it really "
                                            r"is empty now, set allow_empty: true")),
    (header_only_csv_allowed, ("check", _layer_read("parcel_tax", 0, 0))),
    (geojson_no_features, ("check", _warned("road_segment", r"road/ROAD\.geojson: no records "
                                                            r"\(no features\)"))),
    (geojson_no_features_after_a_run, ("error", r"road/ROAD\.geojson yields no records \(no "
                                                r"features\) but the previous run \S+ had 8")),
    (many_records_lost, ("error", r"layer 'road_segment': 5 of 8 records \(62\.5%\) would be "
                                  r"quarantined, above the budget of 4 \(max_quarantine: share "
                                  r"0\.05, count 10\), so the layer fails\. Top reasons: "
                                  r"BAD_VALUE ×5 \(road/ROAD\.shp #1 1: BAD_VALUE: width_m=広い\) "
                                  r"→ type: and normalize:\. Fix: correct what the reasons say")),
    (unknown_spec_key, ("error", r"layers/road_segment\.yml: key 'visibilty': unknown key\. "
                                 r"Fix: did you mean 'visibility'\?")),
    (spec_not_yaml, ("error", r"layers/road_segment\.yml: not valid YAML")),
    (yaml_boolean_key, ("error", r"layers/codelists/road_class\.yml: line 8: key NO is read by "
                                 r"YAML as the boolean false\. Fix: quote it \(\"NO\":\)")),
    (yaml_boolean_key_on, ("error", r"layers/codelists/road_class\.yml: line 8: key ON is read "
                                    r"by YAML as the boolean true\. Fix: quote it \(\"ON\":\)")),
    (yaml_boolean_key_y, ("error", r"layers/codelists/road_class\.yml: line 8: key Y is read by "
                                   r"YAML as the boolean true\. Fix: quote it \(\"Y\":\)")),
    (yaml_duplicate_key, ("error", r"layers/codelists/road_class\.yml: line 8: key 'class1' is "
                                   r"repeated \(first on line 5; the later one would silently "
                                   r"replace it\)\. Fix: keep one")),
    (alias_claimed_twice, ("error", r"layers/codelists/sewer_material\.yml: spelling '塩ビ' is "
                                    r"claimed by both code 'HP' and code 'VU'\. Fix: keep it "
                                    r"under one code")),
    (alias_claimed_twice_folded, ("error", r"sewer_material\.yml: spelling 'hp \(= HP\)' is "
                                           r"claimed by both code 'HP' and code 'VP'")),
    (path_traversal, ("error", r"layer 'road_segment': source path \.\./\.\./\.\./\.\./etc/passwd "
                               r"leads outside the raw folder data/raw \(\S*/etc/passwd\)\. "
                               r"Fix: put the file inside the raw folder")),
    (absolute_path, ("error", r"layer 'road_segment': source path /etc/passwd leads outside the "
                              r"raw folder data/raw")),
    (symlink_out_of_raw, ("error", r"layer 'road_segment': source path road/ROAD\.shp leads "
                                   r"outside the raw folder data/raw \(\S+/elsewhere/ROAD\.shp\)")),
    (vrt_out_of_raw, ("error", r" / layer 'road_segment': road/ROAD\.vrt is a GDAL VRT, which "
                               r"reads other data named inside it \(\.\./\.\./\.\./elsewhere/"
                               r"ROAD\.shp\) and so could read outside the raw folder data/raw; "
                               r"it is refused\. Fix: export the data itself \(GeoPackage, "
                               r"Shapefile, CSV \.\.\.\) into the raw folder and set path: to that "
                               r"file$")),
    (vrt_named_geojson, ("error", r" / layer 'road_segment': road/ROAD\.geojson is a GDAL VRT, "
                                  r"which reads other data named inside it \(\.\./\.\./\.\./"
                                  r"elsewhere/ROAD\.shp\)")),
    (vrt_in_zip, ("error", r" / layer 'road_segment': road/ROAD\.zip/ROAD\.vrt is a GDAL VRT, "
                           r"which reads other data named inside it \(/\S+/elsewhere/"
                           r"ROAD\.shp\) and so could read outside the raw folder data/raw; it "
                           r"is refused")),
    (gdal_vsi_path, ("error", r" / layer 'road_segment': source path /vsicurl/https://example\.org/"
                              r"ROAD\.shp is a GDAL connection string or virtual file system "
                              r"\(/vsi\.\.\.\) path, not a file in the raw folder data/raw\. Fix: "
                              r"export the data into the raw folder and give its path relative "
                              r"to it$")),
    (gdal_connection_string, ("error", r" / layer 'road_segment': source path PG:dbname=gis is a "
                                       r"GDAL connection string or virtual file system")),
    (z_shapefile, ("error", r" / layer 'sewer_manhole': 6 geometries of sewer/MH\.shp carry Z "
                            r"values; the master stores X/Y only\. Fix: set drop_dimensions: "
                            r"\[z\] on the source to drop them \(the count is reported\), or "
                            r"export Z as an attribute column if it is needed$")),
    (z_shapefile_dropped, ("check", _all(
        _warned("sewer_pipe", r"^sewer/PIPE\.shp: 5 件の図形の Z 値を捨てました "
                              r"\(drop_dimensions\) / sewer/PIPE\.shp: Z values of 5 "
                              r"geometries dropped \(drop_dimensions\)$"),
        _no_z("sewer_pipe"), _layer_read("sewer_pipe", 5, 5)))),
    (z_all_zero, ("check", _all(
        _warned("sewer_manhole", r"sewer/MH\.shp: Z values are all 0 or empty and were dropped "
                                 r"\(6 geometries\)$"),
        _no_z("sewer_manhole"), _layer_read("sewer_manhole", 6, 6)))),
    (measured_shapefile, ("error", r"layer 'sewer_manhole': 6 geometries of sewer/MH\.shp carry "
                                   r"M values; the master stores X/Y only\. Fix: set "
                                   r"drop_dimensions: \[m\] on the source")),
    (measured_shapefile_dropped, ("check", _all(
        _warned("sewer_manhole", r"sewer/MH\.shp: M values of 6 geometries dropped"),
        _layer_read("sewer_manhole", 6, 6)))),
    (vertex_budget, ("check", _warned("parcel", r"^.* / 4 features exceed the publication "
                                                r"vertex budget of 4; publication simplifies them "
                                                r"\(from a tolerance of 0\.5 m\); the master "
                                                r"keeps them exact$"))),
    (bad_publication_rule, ("error", r"layers/parcel\.yml: key 'publish_geometry\.tolerance_m': "
                                     r"Input should be greater than 0")),
]


def _current(root: Path) -> str | None:
    try:
        return open_store(load_project(root)).current_run()
    except EtlError:
        return None


@pytest.mark.parametrize("mutate,expected", CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input(mini_project: Path, monkeypatch: pytest.MonkeyPatch,
                   mutate: Callable[[Path], None], expected: tuple) -> None:
    monkeypatch.chdir(mini_project)
    mutate(mini_project)
    if expected[0] == "error":
        before = _current(mini_project)
        with pytest.raises(EtlError) as ei:
            run_merge(load_project(mini_project))
        msg = str(ei.value)
        assert re.search(expected[1], msg, re.MULTILINE), msg
        assert " / " in msg  # bilingual
        assert "internal error" not in msg and "Traceback" not in msg
        assert _current(mini_project) == before  # the previous master (or none) is kept
        # the CLI says the same thing with exit code 1, without a traceback, for both commands
        for cmd, tail in (("validate", "nothing was written"),
                          ("merge", "the previous master is unchanged")):
            res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "-q", cmd])
            assert res.exit_code == 1, res.output
            assert re.search(expected[1], res.output, re.MULTILINE), res.output
            assert "Traceback" not in res.output and "internal error" not in res.output
            if isinstance(ei.value, RunErrors):  # a run's errors end with what it did
                assert tail in res.output.splitlines()[-1], res.output
        assert _current(mini_project) == before
        return
    val = run_merge(load_project(mini_project), dry_run=True).manifest
    res = run_merge(load_project(mini_project))
    m = res.manifest
    for lid, L in m["layers"].items():  # conservation, always; validate predicted the merge
        for s, v in zip(L["sources"], val["layers"][lid]["sources"], strict=True):
            assert s["read"] == s["merged"] + s["quarantined"], lid
            assert (v["read"], v["merged"], v["quarantined"], v["by_reason"]) == (
                s["read"], s["merged"], s["quarantined"], s["by_reason"]), lid
    kind, layer = expected[0], expected[1] if len(expected) > 1 else None
    if kind == "quarantine":
        L = m["layers"][layer]
        reason, n = expected[2], expected[3]
        got = L["sources"][0]["by_reason"]
        assert got.get(reason, 0) == n, got
        if n:
            q = open_store(load_project(mini_project)).read_layer("_quarantine")
            rows = q[(q["layer"] == layer) & (q["reason_code"] == reason)]
            assert len(rows) == n
            assert rows["record"].str.match(r"#\d+").all()  # names the record
            assert rows["raw_attrs"].str.startswith("{").all()
    elif kind == "flag":
        assert m["layers"][layer]["flags"].get(expected[2], 0) == expected[3], \
            m["layers"][layer]["flags"]
    elif kind == "repaired":
        assert m["layers"][layer]["repaired"] == expected[2]
    elif kind == "check":
        expected[1](m, mini_project)
    else:  # pragma: no cover - a typo in CASES
        raise AssertionError(kind)


def test_corpus_size() -> None:
    """The issue-18 probe found 36 kinds; the corpus keeps them and every issue-13 item."""
    assert len(CASES) >= 70, len(CASES)


def test_validate_reports_every_broken_layer(mini_project: Path) -> None:
    missing_dbf(mini_project)
    missing_file(mini_project)
    res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "-q", "validate"])
    assert res.exit_code == 1
    assert "sewer/PIPE.shp is missing its .dbf" in res.output
    assert "file tax/CHIBAN.shp not found" in res.output
    assert "cannot run because the layer it joins, 'parcel', failed" in res.output
    assert "validation found problems (nothing was written); fix them before merging." in \
        res.output
    assert "the merge failed" not in res.output and "previous master" not in res.output


def test_duplicate_reported_with_both_records(mini_project: Path) -> None:
    duplicate_ids(mini_project)
    run_merge(load_project(mini_project))
    q = open_store(load_project(mini_project)).read_layer("_quarantine")
    row = q[q["reason_code"] == "DUPLICATE_ID"].iloc[0]
    assert row["record"] == "#4 P001"
    assert row["detail"] == "DUPLICATE_ID: pipe_id=P001 also in sewer/PIPE.shp #2 P001"


def test_budget_keeps_the_previous_master(mini_project: Path) -> None:
    first = run_merge(load_project(mini_project))
    many_records_lost(mini_project)
    with pytest.raises(EtlError, match="would be quarantined, above the budget"):
        run_merge(load_project(mini_project))
    store = open_store(load_project(mini_project))
    assert store.current_run() == first.run_id
    assert len(store.read_layer("road_segment")) == 8
    # a budget raised on purpose lets it through, and the quarantine says why
    _spec(mini_project, "road_segment", "id_field: route_no\n",
          "id_field: route_no\nmax_quarantine: {share: 0.7}\n")
    m = run_merge(load_project(mini_project)).manifest
    assert m["layers"]["road_segment"]["sources"][0]["by_reason"] == {"BAD_VALUE": 5}


def test_source_missing_names_the_sample_only_when_there_is_one(mini_project: Path) -> None:
    missing_file(mini_project)
    with pytest.raises(EtlError) as ei:
        run_merge(load_project(mini_project))
    assert "uozu-gis sample" not in str(ei.value)
    p = mini_project / "config/project.yml"
    p.write_text(p.read_text(encoding="utf-8") + "sample: {generator: samples/city.py}\n",
                 encoding="utf-8")
    with pytest.raises(EtlError) as ei:
        run_merge(load_project(mini_project))
    assert ("layer 'parcel': file tax/CHIBAN.shp not found. Fix: export it from the source "
            "system into data/raw, or write the project's sample data with 'uozu-gis sample'"
            ) in str(ei.value)


def test_no_absolute_paths_on_stderr(mini_project: Path) -> None:
    """What GDAL and Python warn about while reading reaches the report, with the file named
    relative to the raw folder: stderr shows no installation or project paths."""
    measured_shapefile_dropped(mini_project)
    text_at_field_width(mini_project)
    repo = Path(cli.__file__).resolve().parent
    res = subprocess.run([sys.executable, str(repo / "cli.py"), "--project", str(mini_project),
                          "merge"], capture_output=True, text=True, cwd=mini_project)
    assert res.returncode == 0, res.stderr
    assert str(mini_project) not in res.stderr.replace(
        str(mini_project / "data/merged/runs"), ""), res.stderr  # only the report's own path
    assert "site-packages" not in res.stderr and str(repo) not in res.stderr, res.stderr
    assert "sewer/MH.shp: M values of 6 geometries dropped (drop_dimensions)" in res.stdout
