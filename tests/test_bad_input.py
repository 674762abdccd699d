"""Bad input, one kind at a time: each gives a clear error or quarantine row, never a traceback,
never a silent drop (the conservation law is checked on every successful run).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import mini
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner

import cli
from config import load_project
from config.errors import EtlError
from etl.pipeline import run_merge

RAW = Path("data/raw")


def _spec(root: Path, lid: str, old: str, new: str) -> None:
    p = root / "layers" / f"{lid}.yml"
    s = p.read_text(encoding="utf-8")
    assert old in s, (lid, old)
    p.write_text(s.replace(old, new), encoding="utf-8")


def _pipes(root: Path, fn: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame], *,
           tokyo: bool = True) -> None:
    p = fn(mini.pipes())
    if tokyo:
        p = p.set_geometry(mini.to_tokyo(p.geometry))
    mini.write_shp(p.set_crs(None, allow_override=True), root / RAW / "sewer/PIPE.shp", prj=False)


def _roads(root: Path, fn: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]) -> None:
    mini.write_shp(fn(mini.roads()), root / RAW / "road/ROAD.shp")


def _parcels(root: Path, fn: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]) -> None:
    mini.write_shp(fn(mini.parcels()), root / RAW / "tax/CHIBAN.shp")


def _set(df: pd.DataFrame, row: int, col: str, value: object) -> pd.DataFrame:
    df = df.copy()
    if col == "geometry":
        geoms = list(df.geometry.values)
        geoms[row] = value
        return df.set_geometry(gpd.GeoSeries(geoms, index=df.index, crs=df.crs))
    df[col] = df[col].astype(object)
    df.loc[row, col] = value
    return df


# ---- (mutation, expected) pairs. expected: ("error", regex on the English part)
#      or ("quarantine", layer, reason, n) or ("flag", layer, flag, n) or ("repaired", layer, n)
def corrupt_shp(r: Path) -> None:
    (r / RAW / "sewer/PIPE.shp").write_bytes(b"this is not a shapefile" * 10)


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


def wrong_encoding_spec(r: Path) -> None:
    _spec(r, "road_segment", "encoding: cp932", "encoding: utf-8")


def no_encoding_spec(r: Path) -> None:
    _spec(r, "road_segment", ", encoding: cp932", "")


def csv_wrong_encoding(r: Path) -> None:
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
    g = mini.roads()
    g = _set(g, 3, "geometry", shapely.LineString())
    (r / RAW / "road").mkdir(exist_ok=True)
    pyogrio.write_dataframe(g, r / RAW / "road/ROAD.geojson")
    _spec(r, "road_segment", "path: road/ROAD.shp, encoding: cp932", "path: road/ROAD.geojson")


def mixed_geometry_types(r: Path) -> None:
    g = _set(mini.roads(), 1, "geometry", shapely.Point(mini.E0, mini.N0))
    pyogrio.write_dataframe(g, r / RAW / "road/ROAD.geojson")
    _spec(r, "road_segment", "path: road/ROAD.shp, encoding: cp932", "path: road/ROAD.geojson")


def multipart_line(r: Path) -> None:
    g = _set(mini.roads(), 0, "geometry", shapely.MultiLineString(
        [[(mini.E0, mini.N0), (mini.E0 + 10, mini.N0)],
         [(mini.E0 + 50, mini.N0), (mini.E0 + 60, mini.N0)]]))
    pyogrio.write_dataframe(g, r / RAW / "road/ROAD.geojson")
    _spec(r, "road_segment", "path: road/ROAD.shp, encoding: cp932", "path: road/ROAD.geojson")


def zero_length_line(r: Path) -> None:
    _roads(r, lambda d: _set(d, 4, "geometry", shapely.LineString(
        [(mini.E0, mini.N0), (mini.E0, mini.N0)])))


def swapped_axes(r: Path) -> None:
    g = mini.roads()
    g = g.set_geometry(shapely.transform(g.geometry.values, lambda xy: xy[:, ::-1]))
    mini.write_shp(g, r / RAW / "road/ROAD.shp")


def tokyo_declared_as_jgd(r: Path) -> None:
    _spec(r, "sewer_manhole", 'crs: "EPSG:30167"', 'crs: "EPSG:6675"')


def wrong_zone(r: Path) -> None:
    _spec(r, "sewer_pipe", 'crs: "EPSG:30167"', 'crs: "EPSG:30168"')


def no_prj_no_crs(r: Path) -> None:
    _spec(r, "sewer_pipe", ', crs: "EPSG:30167"', "")


def prj_conflicts_with_spec(r: Path) -> None:
    _spec(r, "road_segment", "encoding: cp932,", 'encoding: cp932, crs: "EPSG:2449",')


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


def bad_wareki(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 0, "布設年度", "H99"))


def garbage_chiban(r: Path) -> None:
    _parcels(r, lambda d: _set(d, 3, "地番", "abc"))


def missing_reference(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 2, "上流人孔", "MH999"))


def end_far_from_manhole(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 0, "geometry", shapely.LineString(
        [(mini.E0 + 5, mini.N0 + 2), (mini.E0 + 100, mini.N0 + 2)])))


def outside_city(r: Path) -> None:
    _roads(r, lambda d: _set(d, 0, "geometry", shapely.LineString(
        [(mini.E0 + 9000, mini.N0), (mini.E0 + 9100, mini.N0)])))


def sentinel_values(r: Path) -> None:
    _pipes(r, lambda d: _set(d, 0, "上流土被", 999.99))


def join_unmatched(r: Path) -> None:
    t = mini.tax()
    t.loc[0, "地番"] = "777-7"
    t.to_csv(r / RAW / "tax/KAZEI.csv", index=False, encoding="cp932")


def empty_file(r: Path) -> None:
    _roads(r, lambda d: d.iloc[:0])


def unknown_spec_key(r: Path) -> None:
    _spec(r, "road_segment", "visibility: public\n", "visibilty: public\n")


def spec_not_yaml(r: Path) -> None:
    (r / "layers/road_segment.yml").write_text("id: [unclosed", encoding="utf-8")


CASES: list[tuple[Callable[[Path], None], tuple]] = [
    (corrupt_shp, ("error", r"layer 'sewer_pipe': cannot read sewer/PIPE\.shp .*Fix: export it")),
    (missing_dbf, ("error", r"layer 'sewer_pipe': sewer/PIPE\.shp is missing its \.dbf")),
    (missing_shx, ("error", r"layer 'road_segment': road/ROAD\.shp is missing its \.shx")),
    (missing_file, ("error", r"layer 'parcel': file tax/CHIBAN\.shp not found")),
    (truncated_dbf, ("error", r"layer 'road_segment': road/ROAD\.shp is truncated")),
    (wrong_encoding_spec, ("error", r"road/ROAD\.shp does not decode as utf-8")),
    (no_encoding_spec, ("error", r"road/ROAD\.shp does not decode as auto")),
    (csv_wrong_encoding, ("error", r"tax/KAZEI\.csv does not decode as utf-8")),
    (bow_tie, ("repaired", "parcel", 1)),
    (degenerate_polygon, ("quarantine", "parcel", "INVALID_GEOMETRY", 1)),
    (null_geometry, ("quarantine", "road_segment", "NULL_GEOMETRY", 1)),
    (empty_geometry, ("quarantine", "road_segment", "EMPTY_GEOMETRY", 1)),
    (mixed_geometry_types, ("quarantine", "road_segment", "GEOMETRY_TYPE", 1)),
    (multipart_line, ("quarantine", "road_segment", "GEOMETRY_TYPE", 1)),
    (zero_length_line, ("quarantine", "road_segment", "INVALID_GEOMETRY", 1)),
    (swapped_axes, ("error", r"road/ROAD\.shp looks like X/Y .* Fix: set axis_order: yx")),
    (tokyo_declared_as_jgd, ("error", r"sewer/MH\.shp is declared EPSG:6675 but looks like "
                                      r"Tokyo datum.*Fix: set the source's crs: to EPSG:30167")),
    (wrong_zone, ("error", r"100% of sewer/PIPE\.shp lies outside the city \(CRS EPSG:30168\)")),
    (no_prj_no_crs, ("error", r"sewer/PIPE\.shp has no CRS \(\.prj missing\)\. Fix: set crs:")),
    (prj_conflicts_with_spec, ("error", r"road/ROAD\.shp says EPSG:6675 but the spec says "
                                        r"EPSG:2449")),
    (duplicate_ids, ("quarantine", "sewer_pipe", "DUPLICATE_ID", 1)),
    (unknown_code, ("quarantine", "sewer_pipe", "UNKNOWN_CODE", 1)),
    (missing_required, ("quarantine", "sewer_pipe", "MISSING_REQUIRED", 1)),
    (missing_column, ("error", r"sewer/PIPE\.shp has no column\(s\) 管種")),
    (out_of_range, ("quarantine", "sewer_pipe", "OUT_OF_RANGE", 1)),
    (bad_number_text, ("quarantine", "road_segment", "BAD_VALUE", 1)),
    (bad_wareki, ("quarantine", "sewer_pipe", "BAD_VALUE", 1)),
    (garbage_chiban, ("quarantine", "parcel", "BAD_VALUE", 1)),
    (missing_reference, ("quarantine", "sewer_pipe", "MISSING_REFERENCE", 1)),
    (end_far_from_manhole, ("flag", "sewer_pipe", "far_from:up_mh_id", 1)),
    (outside_city, ("quarantine", "road_segment", "OUTSIDE_BOUNDARY", 1)),
    (sentinel_values, ("flag", "sewer_pipe", "sentinel:cover_up_m", 2)),
    (join_unmatched, ("quarantine", "parcel_tax", "JOIN_UNMATCHED", 2)),
    (empty_file, ("quarantine", "road_segment", None, 0)),
    (unknown_spec_key, ("error", r"layers/road_segment\.yml: key 'visibilty': unknown key\. "
                                 r"Fix: did you mean 'visibility'\?")),
    (spec_not_yaml, ("error", r"layers/road_segment\.yml: not valid YAML")),
]


@pytest.mark.parametrize("mutate,expected", CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input(mini_project: Path, monkeypatch: pytest.MonkeyPatch,
                   mutate: Callable[[Path], None], expected: tuple) -> None:
    monkeypatch.chdir(mini_project)
    mutate(mini_project)
    if expected[0] == "error":
        with pytest.raises(EtlError) as ei:
            run_merge(load_project(mini_project))
        msg = str(ei.value)
        assert re.search(expected[1], msg), msg
        assert " / " in msg  # bilingual
        assert not (mini_project / "data/merged/master.gpkg").exists()
        # and the CLI says the same thing with exit code 1, without a traceback
        res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "-q", "merge"])
        assert res.exit_code == 1, res.output
        assert res.output.startswith("Error: ") and "Traceback" not in res.output
        return
    res = run_merge(load_project(mini_project))
    m = res.manifest
    for lid, L in m["layers"].items():  # conservation, always
        for s in L["sources"]:
            assert s["read"] == s["merged"] + s["quarantined"], lid
    kind, layer = expected[0], expected[1]
    L = m["layers"][layer]
    if kind == "quarantine":
        reason, n = expected[2], expected[3]
        got = L["sources"][0]["by_reason"]
        assert got.get(reason, 0) == n if reason else sum(got.values()) == 0, got
        if n:
            q = pyogrio.read_dataframe(mini_project / "data/merged/master.gpkg",
                                       layer="_quarantine")
            rows = q[(q["layer"] == layer) & (q["reason_code"] == reason)]
            assert len(rows) == n
            assert rows["record"].str.match(r"#\d+").all()  # names the record
            assert rows["raw_attrs"].str.startswith("{").all()
    elif kind == "flag":
        assert L["flags"].get(expected[2], 0) == expected[3], L["flags"]
    elif kind == "repaired":
        assert L["repaired"] == expected[2]


def test_at_least_25_kinds() -> None:
    assert len(CASES) >= 25


def test_validate_reports_every_broken_layer(mini_project: Path) -> None:
    missing_dbf(mini_project)
    missing_file(mini_project)
    res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "-q", "validate"])
    assert res.exit_code == 1
    assert "sewer/PIPE.shp is missing its .dbf" in res.output
    assert "file tax/CHIBAN.shp not found" in res.output
    assert "cannot run because the layer it joins, 'parcel', failed" in res.output
    assert "the previous master is unchanged" in res.output
