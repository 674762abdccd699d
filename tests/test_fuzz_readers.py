"""Reader fuzzing (hypothesis): CSV, GeoJSON and DBF content a source system (or a broken copy)
might produce. Every outcome is a clear bilingual error naming the layer and file, or a run in
which every record is merged or quarantined: never "internal error", never a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import mini
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import load_project
from config.errors import EtlError
from etl.pipeline import run_merge

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

SPECS = {
    "csv": """
spec_version: 1
id: fuzz
title: {ja: 試験, en: Fuzz}
geometry_type: Point
source_system: fuzz
attribution: {ja: 試験, en: fuzz}
id_field: key
sources:
  - {name: s, path: fuzz/F.csv, reader: csv, encoding: ENC, crs: "EPSG:6668", x_field: lon,
     y_field: lat, id_field: key, data_date: 2025-04-01}
fields:
  key: {from: key, normalize: [nfkc], required: true, unique: true}
  num: {from: n, type: int}
  f: {from: f, type: float, range: [-1000, 1000]}
  d: {from: d, type: date}
  t: {from: t, normalize: [nfkc]}
""",
    "geojson": """
spec_version: 1
id: fuzz
title: {ja: 試験, en: Fuzz}
geometry_type: Point
source_system: fuzz
attribution: {ja: 試験, en: fuzz}
id_field: key
sources:
  - {name: s, path: fuzz/F.geojson, crs: "EPSG:6668", crs_override: true, id_field: key,
     data_date: 2025-04-01}
fields:
  key: {from: key, normalize: [nfkc], required: true, unique: true}
  num: {from: n, type: int}
  f: {from: f, type: float}
""",
    "dbf": """
spec_version: 1
id: fuzz
title: {ja: 試験, en: Fuzz}
geometry_type: Point
source_system: fuzz
attribution: {ja: 試験, en: fuzz}
id_field: key
sources:
  - {name: s, path: fuzz/F.shp, encoding: cp932, id_field: key, data_date: dbf_header}
fields:
  key: {from: key, normalize: [nfkc], required: true, unique: true}
  num: {from: n, type: int}
  t: {from: t, normalize: [nfkc]}
""",
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini project's config and boundary with one fuzz layer (no other layers)."""
    root = tmp_path_factory.mktemp("fuzz")
    mini.build(root, specs={})
    for p in (root / "layers").glob("*.yml"):
        p.unlink()
    (root / "data/raw/fuzz").mkdir(parents=True, exist_ok=True)
    return root


def _run(root: Path, kind: str, encoding: str = "utf-8") -> None:
    (root / "layers/fuzz.yml").write_text(SPECS[kind].replace("ENC", encoding), encoding="utf-8")
    try:
        m = run_merge(load_project(root), dry_run=True).manifest
    except EtlError as e:
        msg = str(e)
        assert " / " in msg and "internal error" not in msg, msg
        assert "layer 'fuzz'" in msg, msg  # names the layer (the spec itself is sound)
        return
    for s in m["layers"]["fuzz"]["sources"]:
        assert s["read"] == s["merged"] + s["quarantined"]


CELL = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "1e400", "-0", "NaN", "inf",
                                                        "99999999999999999999", "１２", "3.0m",
                                                        "令和元年4月1日", "H1.1.1", "2024-02-30",
                                                        "○", "\x00", "\"", ",", "\n"]))
COORD = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                  st.floats(min_value=136.0, max_value=138.0),
                  st.floats(min_value=36.0, max_value=37.5))


@SETTINGS
@given(rows=st.lists(st.tuples(CELL, CELL, CELL, CELL, CELL, COORD, COORD), max_size=12),
       write=st.sampled_from(["utf-8", "cp932", "utf-16", "utf-8-sig"]),
       declared=st.sampled_from(["utf-8", "cp932", "utf-16"]),
       drop=st.sampled_from([None, "key", "lat", "t"]), junk=st.binary(max_size=20))
def test_csv_fuzz(base: Path, rows: list, write: str, declared: str, drop: str | None,
                  junk: bytes) -> None:
    df = pd.DataFrame(rows, columns=["key", "n", "f", "d", "t", "lon", "lat"])
    if drop:
        df = df.drop(columns=drop)
    p = base / "data/raw/fuzz/F.csv"
    try:
        data = df.to_csv(index=False).encode(write)
    except UnicodeEncodeError:
        data = df.to_csv(index=False).encode(write, errors="replace")
    p.write_bytes(data + junk)
    _run(base, "csv", declared)


JSONVAL = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                                 st.floats(allow_nan=False, allow_infinity=False)),
                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4),
                                                                          c, max_size=3),
                       max_leaves=5)
GEOMS = st.one_of(
    st.none(),
    st.builds(lambda x, y: {"type": "Point", "coordinates": [x, y]}, COORD, COORD),
    st.builds(lambda y, x: {"type": "Point", "coordinates": [y, x]},  # lat, lon order
              st.floats(36.7, 36.9), st.floats(137.3, 137.5)),
    st.just({"type": "LineString", "coordinates": [[137.4, 36.8], [137.41, 36.81]]}),
    st.just({"type": "Point", "coordinates": []}),
    st.just({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}),
)


@SETTINGS
@given(feats=st.lists(st.tuples(st.dictionaries(st.sampled_from(["key", "n", "f", "x"]),
                                                JSONVAL, max_size=4), GEOMS), max_size=10),
       mangle=st.sampled_from(["none", "truncate", "not_a_collection", "bytes"]),
       noise=st.binary(max_size=30))
def test_geojson_fuzz(base: Path, feats: list, mangle: str, noise: bytes) -> None:
    fc = {"type": "FeatureCollection",
          "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in feats]}
    text = json.dumps(fc, ensure_ascii=False, allow_nan=False) if all(
        _finite(g) for _, g in feats) else json.dumps(fc, ensure_ascii=False)
    data = text.encode("utf-8")
    if mangle == "truncate":
        data = data[: len(data) // 2]
    elif mangle == "not_a_collection":
        data = json.dumps({"type": "Feature", "properties": {}}).encode()
    elif mangle == "bytes":
        data = noise
    (base / "data/raw/fuzz/F.geojson").write_bytes(data)
    _run(base, "geojson")


def _finite(g: dict | None) -> bool:
    if not g:
        return True
    flat = json.dumps(g.get("coordinates"))
    return "NaN" not in flat and "Infinity" not in flat


@SETTINGS
@given(rows=st.lists(st.tuples(
    st.text(alphabet="ABCあいう本町新宿０１２-", max_size=8),
    st.one_of(st.none(), st.integers(-10**6, 10**6)),
    st.text(alphabet="abc東西南北①㈱髙", max_size=10)), min_size=0, max_size=10),
    cut=st.one_of(st.none(), st.integers(0, 400)), flip=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
    part=st.sampled_from(["dbf", "shx", "shp"]))
def test_dbf_fuzz(base: Path, rows: list, cut: int | None, flip: list, part: str) -> None:
    df = pd.DataFrame(rows, columns=["key", "n", "t"])
    pts = [shapely.Point(mini.E0 + i, mini.N0 + i) for i in range(len(df))]
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(pts, dtype="geometry"), crs=6675)
    path = base / "data/raw/fuzz/F.shp"
    for q in path.parent.glob("F.*"):
        q.unlink()
    if len(gdf):
        mini.write_shp(gdf, path)
    else:
        pyogrio.write_dataframe(gdf, path, encoding="cp932")
    target = path.with_suffix("." + part)
    data = bytearray(target.read_bytes())
    for pos, val in flip:
        if pos < len(data):
            data[pos] = val
    if cut is not None:
        data = data[: min(cut, len(data))]
    target.write_bytes(bytes(data))
    _run(base, "dbf")


def test_the_fuzz_specs_run_clean(base: Path) -> None:
    """The fuzz layer itself is sound: good input merges with nothing quarantined."""
    pd.DataFrame({"key": ["a", "b"], "n": ["1", "2"], "f": ["1.5", "2"], "d": ["R1.5.1", ""],
                  "t": ["x", "y"], "lon": [137.41, 137.42], "lat": [36.82, 36.83]}).to_csv(
        base / "data/raw/fuzz/F.csv", index=False)
    (base / "layers/fuzz.yml").write_text(SPECS["csv"].replace("ENC", "utf-8"), encoding="utf-8")
    m = run_merge(load_project(base), dry_run=True).manifest["layers"]["fuzz"]
    assert (m["read"], m["merged"], m["quarantined"]) == (2, 2, 0)
    assert math.isfinite(m["read"])
