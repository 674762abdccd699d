"""Issue 17: the merge writes each layer as soon as it passed and lets it go; large layers are
read, checked and written in batches with the very same result as read whole; the change
summary hashes one column at a time; the readers take GDAL open options and one "lat,lon"
column (the second city's CKAN LINK CSVs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import mini
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import make_uozu_project
from pydantic import ValidationError
from pyproj import Transformer
from test_example_city import copy_example

from config import load_project
from config.errors import SourceError
from config.models import SourceSpec
from etl.pipeline import _kept_columns, run_merge
from etl.readers import READERS, MojibakeTally, _check_mojibake
from etl.report import feature_hashes
from etl.stores import open_store
from examples.takamatsu.samples import generate as gen

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


# ------------------------------------------------------------------ streamed layers (batches)

VOLATILE = {"run_id", "started_at", "finished_at", "seconds", "stage_seconds", "peak_rss_mb",
            "previous_run", "argv"}


def _strip(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _merged(root: Path, batch: int | None, dst: Path) -> Path:
    """A fresh merge of ``root`` with ``batch`` records per batch, its run folder kept."""
    shutil.rmtree(root / "data" / "merged", ignore_errors=True)
    res = run_merge(load_project(root), batch_size=batch)
    assert res.run_dir is not None
    shutil.copytree(res.run_dir, dst)
    return dst


def assert_same_run(a: Path, b: Path) -> None:
    """Every master table (schema, rows, geometry bytes), the change hashes, the manifest,
    report.json and quarantine.csv of two runs are equal (run ids and timings aside)."""
    la = [str(n) for n, _ in pyogrio.list_layers(a / "master.gpkg")]
    assert la == [str(n) for n, _ in pyogrio.list_layers(b / "master.gpkg")]
    for layer in la:
        ia, ib = (pyogrio.read_info(d / "master.gpkg", layer=layer) for d in (a, b))
        for k in ("crs", "geometry_type", "fields", "dtypes", "features"):
            assert str(ia[k]) == str(ib[k]), (layer, k)
        da, db = (pyogrio.read_dataframe(d / "master.gpkg", layer=layer, use_arrow=True)
                  for d in (a, b))
        assert len(da) == ia["features"], layer
        da, db = (d.drop(columns=[c for c in ("run_id",) if c in d.columns]) for d in (da, db))
        if "geometry" in da.columns:
            assert (da.pop("geometry").to_wkb() == db.pop("geometry").to_wkb()).all(), layer
        pd.testing.assert_frame_equal(pd.DataFrame(da), pd.DataFrame(db), obj=layer)
    hashes = sorted(p.name for p in (a / "hashes").glob("*.parquet"))
    assert hashes == sorted(p.name for p in (b / "hashes").glob("*.parquet"))
    for name in hashes:
        pd.testing.assert_frame_equal(pd.read_parquet(a / "hashes" / name),
                                      pd.read_parquet(b / "hashes" / name), obj=name)
    for name in ("manifest.json", "report.json"):
        ja, jb = (_strip(json.loads((d / name).read_text(encoding="utf-8"))) for d in (a, b))
        assert ja == jb, name
    qa, qb = (pd.read_csv(d / "quarantine.csv").drop(columns="run_id") for d in (a, b))
    pd.testing.assert_frame_equal(qa, qb)


@pytest.mark.parametrize("city", ["uozu", "takamatsu"])
def test_batches_of_7_records_give_the_very_same_run(city: str, tmp_path: Path) -> None:
    """A layer read, checked and written 7 records at a time gives the same master, change
    hashes, quarantine, lineage, manifest and report as the layer read whole: batch borders
    fall inside duplicate ids, references, the join, sentinels and code lists of the sample
    (both cities' planted errors), and the report rows keep their order."""
    root = tmp_path / "city"
    if city == "uozu":
        make_uozu_project(root, scale=0.002)
    else:
        copy_example(root)
        gen.generate(root / "data" / "raw", scale=0.005)
    whole = _merged(root, None, tmp_path / "whole")
    streamed = _merged(root, 7, tmp_path / "streamed")
    manifest = json.loads((streamed / "manifest.json").read_text(encoding="utf-8"))
    reasons = {r for L in manifest["layers"].values() for s in L["sources"]
               for r in s["by_reason"]}
    assert {"DUPLICATE_ID", "MISSING_REFERENCE", "JOIN_UNMATCHED"} <= reasons
    big = [lid for lid, L in manifest["layers"].items() if L["read"] > 7]
    assert len(big) >= 10
    assert_same_run(whole, streamed)


def test_streamed_layer_keeps_only_what_later_layers_read(mini_project: Path) -> None:
    """Streamed: the batches are written and let go; the result holds the reference/join
    columns only, and counts what was written."""
    project = load_project(mini_project)
    res = run_merge(project, batch_size=2)
    keep = _kept_columns(project, project.order(None))
    store = open_store(load_project(mini_project))
    streamed = [lid for lid, r in res.layers.items() if r.streamed]
    assert streamed
    for lid in streamed:
        r = res.layers[lid]
        n = len(store.read_layer(lid))
        assert r.features == r.written == n == res.manifest["layers"][lid]["features"], lid
        want = keep.get(lid, set())
        assert set(r.frame.columns) <= want | {"geometry"}, lid
        assert len(r.frame) == 0 or (want and len(r.frame) == n), lid


def test_mojibake_tally_judges_like_the_whole_column_check() -> None:
    """The text check over batches samples the same values as the whole-frame check: a
    column with Latin-1 soup in the sampled values fails, one with it only between the
    sampled positions passes, in both forms."""
    n = 10_001  # one null (the last): 10,000 non-null values, every 5th one sampled
    good = ["水道管" + str(i) for i in range(n)]
    hidden = [("Ã¤Â½Â" if i % 5 == 2 else v) for i, v in enumerate(good)]
    shown = [("Ã¤Â½Â" if i % 5 == 0 else v) for i, v in enumerate(good)]
    for values, fails in ((good, False), (hidden, False), (shown, True)):
        df = pd.DataFrame({"name": pd.array(values, dtype="str"), "n": range(n)})
        df.loc[n - 1, "name"] = None
        verdicts = []
        try:
            _check_mojibake(df, "l", "f.shp", "cp932")
            verdicts.append(False)
        except SourceError:
            verdicts.append(True)
        tally = MojibakeTally()
        for i in range(0, n, 997):
            tally.add(df.iloc[i:i + 997])
        try:
            tally.check("l", "f.shp", "cp932")
            verdicts.append(False)
        except SourceError as e:
            assert "column name" in str(e)
            verdicts.append(True)
        assert verdicts == [fails, fails], values[:3]
