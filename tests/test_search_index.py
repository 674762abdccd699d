"""The one search: index built from a public store by role; forgiving, ranked matching."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import Point, box

from config import Project, load_project
from config.models import OazaEntry, SearchConfig
from publish.build import search_index as si
from publish.model import ID_COLUMN, ROWID_COLUMN

PROJECT = """
city: {ja: 魚津市, en: Uozu City}
city_code: "162043"
target_crs: EPSG:6675
publish:
  title: {ja: 公開型GIS, en: Public GIS}
  description: {ja: 説明, en: Description}
  contact_name: 建設課
  contact_url: https://example.jp/
  city_url: https://example.jp/
  search:
    address_prefixes: [富山県魚津市, 魚津市]
    oaza:
      - {name: 三ケ, reading: さんが, en: Sanga, variants: [三ヶ, 三箇]}
      - {name: 大町１丁目, reading: おおまちいっちょうめ}
"""
PARCEL = """
spec_version: 1
id: lots
title: {ja: 地番図, en: Parcels}
geometry_type: MultiPolygon
visibility: public
source_system: tax
attribution: {ja: 地番図, en: Parcel map}
id_field: pid
sources: [{name: s, path: x.shp}]
fields:
  pid: {from: ID, visibility: public}
  town: {from: OAZA, visibility: public}
  lot: {from: CHIBAN, visibility: public}
map:
  role: parcel
  parcel: {oaza_field: town, chiban_field: lot}
"""
SHELTER = """
spec_version: 1
id: refuges
title: {ja: 避難場所, en: Shelters}
geometry_type: Point
visibility: public
source_system: gsi
attribution: {ja: 国土地理院, en: GSI}
id_field: sid
sources: [{name: s, path: x.csv, reader: csv}]
fields:
  sid: {from: ID, visibility: public}
  title: {from: NAME, visibility: public}
  addr: {from: ADDR, visibility: public}
  flood: {from: F, type: bool, visibility: public}
map:
  role: shelter
  label_field: title
  shelter: {name_field: title, address_field: addr, flags: {flood: flood}}
"""
LOTS = [  # (fid, 大字 as the ledger writes it, 地番)
    ("P1", "大町１丁目", "123-4"), ("P2", "大町１丁目", "123-5"), ("P3", "大町１丁目", "1234"),
    ("P4", "大町２丁目", "123-4"), ("P5", "三ケ", "5"), ("P6", "三ケ", "甲7"),
    ("P7", "本町", "123"),
]
REFUGES = [("R1", "大町公民館", "富山県魚津市大町1丁目123-4", True),
           ("R2", "三ケ公民館", "魚津市三ケ5", False), ("R3", "本町公園", "", True)]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Path]:
    root = tmp_path_factory.mktemp("search")
    (root / "config").mkdir()
    (root / "layers").mkdir()
    (root / "config" / "project.yml").write_text(textwrap.dedent(PROJECT), encoding="utf-8")
    (root / "layers" / "lots.yml").write_text(textwrap.dedent(PARCEL), encoding="utf-8")
    (root / "layers" / "refuges.yml").write_text(textwrap.dedent(SHELTER), encoding="utf-8")
    project = load_project(root)
    store = root / "public.gpkg"
    lots = gpd.GeoDataFrame(
        {ID_COLUMN: [r[0] for r in LOTS], "pid": [r[0] for r in LOTS],
         "town": [r[1] for r in LOTS], "lot": [r[2] for r in LOTS]},
        geometry=[box(137.40 + i * 0.001, 36.81, 137.4008 + i * 0.001, 36.8108)
                  for i in range(len(LOTS))], crs="EPSG:4326")
    pyogrio.write_dataframe(lots, store, layer="lots", layer_options={"FID": ROWID_COLUMN})
    refuges = gpd.GeoDataFrame(
        {ID_COLUMN: [r[0] for r in REFUGES], "sid": [r[0] for r in REFUGES],
         "title": [r[1] for r in REFUGES], "addr": [r[2] for r in REFUGES],
         "flood": [r[3] for r in REFUGES]},
        geometry=[Point(137.41 + i * 0.001, 36.82) for i in range(len(REFUGES))],
        crs="EPSG:4326")
    pyogrio.write_dataframe(refuges, store, layer="refuges", layer_options={"FID": ROWID_COLUMN})
    return project, store


@pytest.fixture(scope="module")
def index(city: tuple[Project, Path]) -> dict:
    project, store = city
    return si.build_index(project, store)


def first(index: dict, q: str) -> tuple[str, str, str | None]:
    h = si.search(index, q)[0]
    return h.kind, h.label, h.fid


def test_fold_rules() -> None:
    assert si.fold("大町一丁目") == si.fold("大町１丁目") == si.fold("大町 1 丁目") == "大町1丁目"
    assert si.fold("大町十二丁目") == "大町12丁目"
    assert si.fold("二〇番地") == "20番地"
    assert si.fold("霞ヶ関") == si.fold("霞ケ関") == si.fold("霞ヵ関")
    assert si.kanji_number("百五") == 105 and si.kanji_number("千二百三十四") == 1234
    assert si.chiban_key("１２３－４") == si.chiban_key("123番4") == si.chiban_key("123の4") \
        == "123-4"


def test_oaza_spellings_find_the_town(index: dict) -> None:
    for q in ("大町1丁目", "大町一丁目", "大町１丁目", "おおまちいっちょうめ",
              "オオマチイッチョウメ", "魚津市大町1丁目"):
        assert first(index, q) == ("oaza", "大町１丁目", None), q
    for q in ("三ケ", "三ヶ", "三箇", "さんが", "サンガ"):
        assert first(index, q) == ("oaza", "三ケ", None), q
    # a partial 大字 lists the towns it begins
    assert [h.label for h in si.search(index, "大町")[:2]] == ["大町１丁目", "大町２丁目"]


def test_chiban_variants_find_the_parcel(index: dict) -> None:
    for q in ("大町1丁目123-4", "大町１丁目１２３－４", "大町一丁目123番4", "大町1丁目123の4",
              "大町1丁目 123番地4", "おおまちいっちょうめ123-4",
              "富山県魚津市大町一丁目１２３－４"):
        assert first(index, q) == ("parcel", "大町１丁目 123-4", "P1"), q
    assert first(index, "三ヶ5") == ("parcel", "三ケ 5", "P5")
    assert first(index, "さんが甲7") == ("parcel", "三ケ 甲7", "P6")


def test_banchi_matches_its_branch_parcels_but_not_longer_numbers(index: dict) -> None:
    hits = si.search(index, "大町1丁目123")
    assert [(h.kind, h.fid) for h in hits if h.kind == "parcel"] == [("parcel", "P1"),
                                                                      ("parcel", "P2")]
    assert "P3" not in {h.fid for h in hits}  # 1234 is another 地番


def test_chiban_without_town_ranks_every_town(index: dict) -> None:
    hits = si.search(index, "１２３－４")
    assert [h.fid for h in hits if h.kind == "parcel"] == ["P1", "P4"]
    assert hits[0].score > (1,)  # below an exact match with a 大字


def test_places_and_addresses_ranked(index: dict) -> None:
    assert first(index, "大町公民館") == ("place", "大町公民館", "R1")
    hits = si.search(index, "公民館")  # both contain it: equal rank, then by label
    assert [(h.fid, h.score) for h in hits] == [("R2", (2, 1, 5)), ("R1", (2, 1, 5))]
    # an address query: the parcel (exact) first, then the shelter at that address
    hits = si.search(index, "魚津市大町1丁目123-4")
    assert [(h.kind, h.fid) for h in hits[:2]] == [("parcel", "P1"), ("address", "R1")]
    assert hits[1].label == "大町公民館 (富山県魚津市大町1丁目123-4)"
    assert si.search(index, "") == [] and si.search(index, "存在しない場所") == []


def test_index_file_is_compact_and_complete(city: tuple[Project, Path], tmp_path: Path) -> None:
    project, store = city
    path, counts = si.release_artifact(project, store, tmp_path)
    assert path.name == si.INDEX_FILE
    raw = path.read_text(encoding="utf-8")
    assert ": " not in raw and ", " not in raw.replace("大町公民館 (", "")
    data = json.loads(raw)
    assert counts == {"oaza": 4, "parcels": 7, "places": 3, "bytes": path.stat().st_size}
    assert data["variants"] == {"三箇": "三ケ"} and data["readings"]["さんが"] == "三ケ"
    # sorted by reading where known (おおまち..., さんが), then by name
    assert [e["n"] for e in data["oaza"]][:2] == ["大町１丁目", "三ケ"]
    assert data["oaza"][0]["ch"] == ["123-4", "123-5", "1234"]
    assert data["oaza"][1]["en"] == "Sanga"
    assert data == si.build_index(project, store)


def test_place_layers_override(city: tuple[Project, Path]) -> None:
    project, store = city
    idx = si.build_index(project, store, SearchConfig(place_layers=[],
                                                      oaza=[OazaEntry(name="三ケ",
                                                                      reading="さんが")]))
    assert idx["places"] == [] and len(idx["oaza"]) == 4


@pytest.mark.parametrize("rows", [1, 2, 3, 10_000])
def test_batched_index_equals_whole_layer_index(city: tuple[Project, Path], rows: int) -> None:
    """Reading only the needed columns in batches gives the whole-layer index, to the byte."""
    project, store = city
    whole = si.build_index(project, store, batch_rows=None)
    got = si.build_index(project, store, batch_rows=rows)
    assert json.dumps(got, ensure_ascii=False) == json.dumps(whole, ensure_ascii=False)
    assert sum(len(e["ch"]) for e in got["oaza"]) == 7 and len(got["places"]) == 3
