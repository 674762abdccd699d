"""Issue 17: the merge writes each layer as soon as it passed and lets it go; the change
summary hashes one column at a time; the readers take GDAL open options and one "lat,lon"
column (the second city's CKAN LINK CSVs)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import mini
import numpy as np
import pandas as pd
import pytest
import shapely
from pydantic import ValidationError
from pyproj import Transformer

from config import load_project
from config.models import SourceSpec
from etl.pipeline import _kept_columns, run_merge
from etl.readers import READERS
from etl.report import feature_hashes
from etl.stores import open_store

RAW = Path("data/raw")


def test_feature_hashes_equal_the_whole_frame_text_hash() -> None:
    """Hashing column by column gives the very hashes of older runs (whole frame as text)."""
    df = pd.DataFrame({
        "id": ["a", "b", None, "d"], "x": [1.5, None, 3.0, 4.25],
        "n": pd.array([1, None, 3, 4], dtype="Int64"), "s": ["あ", None, "c", "d"],
        "b": pd.array([True, False, None, True], dtype="boolean"),
        "t": pd.to_datetime(["2020-01-01", None, "2021-02-03", "2022-03-04"]),
        "run_id": ["r1", "r1", "r1", "r1"]})
    f = gpd.GeoDataFrame(df, geometry=[shapely.Point(1, 2), None, shapely.Point(3, 4),
                                       shapely.LineString([(0, 0), (1, 1)])])
    cols = [c for c in f.columns if c not in ("geometry", "run_id")]
    old = pd.util.hash_pandas_object(f[cols].astype("string"), index=False).to_numpy().copy()
    old = old ^ pd.util.hash_array(pd.array(shapely.to_wkb(f.geometry.values,
                                                           output_dimension=2),
                                            dtype=object).to_numpy())
    got = feature_hashes(SimpleNamespace(frame=f, spec=SimpleNamespace(id_field="id")))
    assert got["hash"].tolist() == old.astype("uint64").tolist()
    assert got["id"].fillna("<NA>").tolist() == ["a", "b", "<NA>", "d"]


def test_merge_releases_written_layers_and_keeps_only_what_later_layers_read(
        mini_project: Path) -> None:
    project = load_project(mini_project)
    res = run_merge(project)
    keep = _kept_columns(project, project.order(None))
    assert keep  # the mini project has joins / references
    store = open_store(load_project(mini_project))
    for lid, r in res.layers.items():
        want = keep.get(lid, set())
        if want:
            assert set(r.frame.columns) <= want | {"geometry"}, lid
        else:
            assert len(r.frame) == 0, lid
        n = len(store.read_layer(lid))
        assert r.features == n == res.manifest["layers"][lid]["features"], lid


LINK_HEAD = (
    "#LINK,,,\n#lang,ja,,\n#attribution_name,テスト市,,\n#license,CC BY 4.0,,\n"
    "#file_name,0001,,\n#download_from,https://example.invalid/,,\n"
    "#property,name,location,note\n#object_type_xsd,string,string,string\n"
    "#property_context,Assertion,Assertion,Assertion\n")

LINK_SPEC = """
spec_version: 1
id: hydrant
title: {ja: 消火栓, en: Hydrants}
geometry_type: Point
source_system: fire
attribution: {ja: テスト市 消防, en: Test City fire department}
id_field: hydrant_no
sources:
  - name: hydrants
    path: fire/0001_hydrant.csv
    reader: csv
    encoding: utf-8-sig
    options: {skiprows: [0, 1, 2, 3, 4, 5, 7, 8]}
    point_field: location
    axis_order: yx
    crs: "EPSG:6668"
    rename: {"#property": hydrant_no}
    data_date: 2025-04-01
fields:
  hydrant_no: {from: hydrant_no, required: true, unique: true}
  name: {from: name}
"""


def test_link_csv_read_directly_with_point_field(mini_project: Path) -> None:
    """6 metadata rows, the #property header, 2 type rows; the point in ONE quoted "lat,lon"
    column. A value that is not two numbers is a record without geometry (quarantined)."""
    t = Transformer.from_crs(6675, 6668, always_xy=True)
    xs = [mini.E0 + 100 * i for i in range(3)]
    lon, lat = t.transform(xs, [mini.N0 + 50] * 3)
    rows = [f'{i + 1},消火栓{i + 1},"{lat[i]:.8f},{lon[i]:.8f}",' for i in range(3)]
    rows.append('4,消火栓4,"不明",位置未確認')
    (mini_project / RAW / "fire").mkdir(parents=True, exist_ok=True)
    (mini_project / RAW / "fire/0001_hydrant.csv").write_bytes(
        ("\ufeff" + LINK_HEAD + "\n".join(rows) + "\n").encode("utf-8"))
    (mini_project / "layers/hydrant.yml").write_text(LINK_SPEC, encoding="utf-8")
    res = run_merge(load_project(mini_project))
    L = res.manifest["layers"]["hydrant"]
    assert (L["read"], L["features"], L["quarantined"]) == (4, 3, 1)
    assert L["sources"][0]["by_reason"] == {"NULL_GEOMETRY": 1}
    got = open_store(load_project(mini_project)).read_layer("hydrant").sort_values("hydrant_no")
    assert got["hydrant_no"].tolist() == ["1", "2", "3"]
    assert got["name"].tolist() == ["消火栓1", "消火栓2", "消火栓3"]
    assert np.allclose(got.geometry.x, xs, atol=0.01)
    assert np.allclose(got.geometry.y, mini.N0 + 50, atol=0.01)


def test_point_field_excludes_x_and_y_fields() -> None:
    with pytest.raises(ValidationError, match="point_field excludes x_field/y_field"):
        SourceSpec(name="a", path="a.csv", reader="csv", point_field="location",
                   x_field="lon", y_field="lat")
    with pytest.raises(ValidationError, match="point_field needs reader csv or ogr"):
        SourceSpec(name="a", path="a.xml", reader="mojxml", point_field="location")


def test_ogr_reader_passes_options_as_gdal_open_options(tmp_path: Path) -> None:
    """``options`` of an ``ogr`` source reach GDAL: HEADERS=NO reads the header as a record."""
    (tmp_path / "t.csv").write_text('no,location\n1,"36.8,137.4"\n', encoding="utf-8")
    spec = SimpleNamespace(id="t")
    plain = READERS["ogr"](spec, SourceSpec(name="t", path="t.csv"), tmp_path)
    assert list(plain.frame.columns) == ["no", "location", "geometry"]
    opened = READERS["ogr"](spec, SourceSpec(name="t", path="t.csv",
                                             options={"HEADERS": False}), tmp_path)
    assert opened.frame[["field_1", "field_2"]].values.tolist() == [
        ["no", "location"], ["1", "36.8,137.4"]]
    pts = READERS["ogr"](spec, SourceSpec(name="t", path="t.csv", point_field="location",
                                          options={"AUTODETECT_TYPE": "NO"}), tmp_path)
    assert pts.has_geometry
    assert shapely.equals_exact(pts.frame.geometry.values[0], shapely.Point(36.8, 137.4))
    assert pts.frame["no"].tolist() == ["1"]
