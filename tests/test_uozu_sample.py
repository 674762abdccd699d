"""The real Uozu specs over the generated exports and the real GSI shelters."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pyogrio
import shapely
from conftest import UOZU_SCALE

from config import load_project
from etl import crs as crsmod
from samples.uozu import planted

REPO = Path(__file__).resolve().parent.parent


def test_planted_errors_are_quarantined_exactly(uozu_merged) -> None:
    _, res = uozu_merged
    layers = res.manifest["layers"]
    for lid, want in planted(UOZU_SCALE).items():
        got: dict[str, int] = {}
        for s in layers[lid]["sources"]:
            for k, v in s["by_reason"].items():
                got[k] = got.get(k, 0) + v
        want = dict(want)
        repaired = want.pop("REPAIRED", 0)
        assert got == want, lid
        assert layers[lid]["repaired"] == repaired, lid
    untouched = set(layers) - set(planted(UOZU_SCALE))
    assert all(layers[lid]["quarantined"] == 0 for lid in untouched)


def test_conservation_per_source(uozu_merged) -> None:
    _, res = uozu_merged
    for lid, L in res.manifest["layers"].items():
        for s in L["sources"]:
            assert s["read"] == s["merged"] + s["quarantined"], (lid, s["file"])
        assert L["read"] == L["merged"] + L["quarantined"]


def test_every_layer_inside_the_city(uozu_merged) -> None:
    root, _ = uozu_merged
    b = crsmod.load_boundary(load_project(root))
    path = root / "data/merged/master.gpkg"
    for lid in load_project(root).specs:
        df = pyogrio.read_dataframe(path, layer=lid)
        assert pyogrio.read_info(path, layer=lid)["crs"] == "EPSG:6675"
        assert crsmod.inside(b, df.geometry.values).all(), lid


def test_sources_record_their_transformation(uozu_merged) -> None:
    _, res = uozu_merged
    L = res.manifest["layers"]
    assert L["sewer_pipe"]["sources"][0]["crs"] == "EPSG:30167"
    assert L["sewer_pipe"]["sources"][0]["transform"]["grids"] == [
        "TKY2JGD.tif", "touhokutaiheiyouoki2011.tif"]
    assert L["water_pipe"]["sources"][0]["transform"]["grids"] == ["touhokutaiheiyouoki2011.tif"]
    assert L["road_segment"]["sources"][0]["transform"]["method"] == "identity"


def test_real_gsi_shelters(uozu_merged) -> None:
    root, res = uozu_merged
    df = pyogrio.read_dataframe(root / "data/merged/master.gpkg", layer="shelter")
    emergency = json.loads((REPO / "data/reference/162043_emergency.json").read_text("utf-8"))
    evac = json.loads((REPO / "data/reference/162043_evacuation.json").read_text("utf-8"))
    assert res.manifest["layers"]["shelter"]["read"] == 56 + 33
    assert len(df) == 56  # the 33 指定避難所 are the same facilities as 33 of the 56 sites
    names = {unicodedata.normalize("NFKC", f["properties"]["施設・場所名"])
             for f in emergency["features"]}  # the spec NFKC-normalizes names (２号 -> 2号)
    assert set(df["name"]) == names
    assert int(df["is_evacuation_shelter"].astype(bool).sum()) == len(evac["features"])
    n_flood = sum(f["properties"]["洪水"] == "1" for f in emergency["features"])
    assert int(df["hz_flood"].astype(bool).sum()) == n_flood
    n_tsunami = sum(f["properties"]["津波"] == "1" for f in emergency["features"])
    assert int(df["hz_tsunami"].astype(bool).sum()) == n_tsunami
    # coordinates: the GSI lon/lat projected to zone VII (exact conversion, same datum)
    row = df[df["name"] == "上中島多目的交流センター"].iloc[0]
    x, y = row.geometry.x, row.geometry.y
    from pyproj import Transformer
    ex, ey = Transformer.from_crs(6668, 6675, always_xy=True).transform(137.410253, 36.776127)
    assert shapely.Point(x, y).distance(shapely.Point(ex, ey)) < 0.01


def test_tax_join_and_confidential_layer(uozu_merged) -> None:
    root, res = uozu_merged
    L = res.manifest["layers"]["parcel_tax"]
    assert L["visibility"] == "confidential"
    q = pyogrio.read_dataframe(root / "data/merged/master.gpkg", layer="_quarantine")
    rows = q[q["reason_code"] == "JOIN_UNMATCHED"]
    assert len(rows) == planted(UOZU_SCALE)["parcel_tax"]["JOIN_UNMATCHED"]
    assert rows["detail"].str.contains("not in parcel").all()


def test_schema_doc_is_current() -> None:
    from etl.docs import schema_markdown
    doc = REPO / "docs/schema.md"
    assert doc.read_text(encoding="utf-8") == schema_markdown(load_project(REPO)), \
        "docs/schema.md is stale: run `uozu-gis schema -o docs/schema.md`"
