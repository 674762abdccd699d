"""The answers' configuration lives in the project's files (one config): routing, search and open
data in config/project.yml, the walk network, layouts and guidance in the layer specs; every
mistake is a bilingual error naming the file, the key and the fix, before anything is built."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from config import load_project
from config.errors import ConfigError, ConfigErrors
from config.messages import text

PROJECT = """
city: {ja: 例市, en: Example City}
city_code: "999999"
target_crs: EPSG:6675
publish:
  title: {ja: 公開型GIS, en: Public GIS}
  description: {ja: 説明, en: Description}
  contact_name: 建設課
  contact_url: https://example.jp/
  city_url: https://example.jp/
"""
ROADS = """
spec_version: 1
id: roads
title: {ja: 道路, en: Roads}
geometry_type: LineString
visibility: public
source_system: road
attribution: {ja: 道路台帳, en: Road ledger}
id_field: rid
sources: [{name: s, path: r.shp}]
fields:
  rid: {from: ID, visibility: public}
  name: {from: NAME, visibility: public}
map: {label_field: name, network: walk}
"""
SHELTERS = """
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
  flood: {from: F, type: bool, visibility: public}
  phone: {from: TEL}
map:
  role: shelter
  label_field: title
  shelter: {name_field: title, flags: {flood: flood}}
"""
ZONES = """
spec_version: 1
id: zones
title: {ja: 浸水想定, en: Flood zones}
geometry_type: MultiPolygon
visibility: public
source_system: mlit
attribution: {ja: 国交省, en: MLIT}
id_field: zid
sources: [{name: s, path: z.shp}]
fields:
  zid: {from: ID, visibility: public}
  rank: {from: R, codelist: depth, visibility: public}
map:
  role: hazard
  hazard:
    kind: flood
    rank_field: rank
    guidance: {ja: 立退き避難してください, en: Leave for a safe place, easy: にげて ください}
    guidance_by_rank:
      "1": {ja: 2階以上へ, en: Go upstairs}
"""
DEPTH = """
id: depth
title: {ja: 浸水深, en: Depth}
codes:
  "1": {ja: 0.5m未満, en: under 0.5 m, easy: ひざ まで, color: "#F7F5A9"}
  "2": {ja: 0.5m以上, en: 0.5 m or more, color: "#FFD8C0"}
"""


def city(root: Path, *, project: str = PROJECT, **specs: str) -> Path:
    (root / "config").mkdir(parents=True)
    (root / "layers" / "codelists").mkdir(parents=True)
    (root / "config" / "project.yml").write_text(textwrap.dedent(project), encoding="utf-8")
    (root / "layers" / "codelists" / "depth.yml").write_text(DEPTH, encoding="utf-8")
    base = {"roads": ROADS, "refuges": SHELTERS, "zones": ZONES}
    for lid, body in {**base, **specs}.items():
        if body:
            (root / "layers" / f"{lid}.yml").write_text(textwrap.dedent(body), encoding="utf-8")
    return root


def errors(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_project(root)
    errs = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    return [str(x) for x in errs]


def test_a_city_configures_every_answer_in_its_own_files(tmp_path: Path) -> None:
    project = load_project(city(tmp_path, project=PROJECT + """  routing: {walk_speed_mps: 0.8}
  search:
    address_prefixes: [例市]
    oaza: [{name: 本町, reading: ほんまち, variants: [元町]}]
  opendata: {note: {ja: 注記, en: Note}}
"""))
    pc = project.config.publish
    assert (pc.routing.walk_speed_mps, pc.routing.snap_m) == (0.8, 150.0)
    assert pc.search.oaza[0].variants == ["元町"] and pc.opendata.note.en == "Note"
    assert project.specs["roads"].map.network == "walk"
    hz = project.specs["zones"].map.hazard
    assert hz.guidance.easy == "にげて ください" and hz.guidance_by_rank["1"].easy is None
    assert project.codelists["depth"].codes["1"].easy == "ひざ まで"


def test_walk_network_must_be_a_public_line_layer(tmp_path: Path) -> None:
    zones = ZONES.replace("map:\n", "map:\n  network: walk\n")
    got = errors(city(tmp_path, zones=zones))
    assert got == [text("mapcfg_network_layer", file=str(tmp_path / "layers/zones.yml"),
                        geometry="MultiPolygon", visibility="public")]


def test_walk_network_needs_shelters(tmp_path: Path) -> None:
    got = errors(city(tmp_path, refuges=""))
    assert got == [text("mapcfg_network_no_shelter", file=str(tmp_path / "layers/roads.yml"))]


def test_routing_block_without_a_network_is_said(tmp_path: Path) -> None:
    roads = ROADS.replace("map: {label_field: name, network: walk}", "map: {label_field: name}")
    got = errors(city(tmp_path, roads=roads, project=PROJECT + "  routing: {bridge_m: 50}\n"))
    assert got == [text("mapcfg_routing_no_network")]


def test_unknown_keys_and_bad_readings_name_the_key(tmp_path: Path) -> None:
    got = errors(city(tmp_path, project=PROJECT + """  routing: {walk_speed: 1.2}
  search:
    oaza: [{name: 本町, reading: ホンマチ}, {name: 本町, reading: ほんまち}]
"""))
    assert len(got) == 2
    assert "publish.routing.walk_speed" in got[0] and "'walk_speed_mps'" in got[0]
    assert "publish.search.oaza.0.reading" in got[1]  # readings are hiragana
    got = errors(city(tmp_path / "twice", project=PROJECT + """  search:
    oaza: [{name: 本町, reading: ほんまち}, {name: 本町, reading: もとまち}]
"""))
    assert len(got) == 1 and "'publish.search'" in got[0]
    assert "['本町'] listed twice" in got[0]


def test_place_layers_must_be_named_public_layers(tmp_path: Path) -> None:
    got = errors(city(tmp_path, project=PROJECT + "  search: {place_layers: [refuges, roadz]}\n"))
    assert got == [text("mapcfg_place_layer", layer="roadz", known="refuges, roads")]


def test_open_data_layout_reads_public_fields_only(tmp_path: Path) -> None:
    refuges = SHELTERS + """opendata:
  standard: evacuation_space
  where: flood
  columns: {名称: title, 電話番号: phone}
"""
    got = errors(city(tmp_path, refuges=refuges))
    assert got == [text("opendata_field", file=str(tmp_path / "layers/refuges.yml"),
                        key="opendata.columns.電話番号", field="phone",
                        known="sid, title, flood")]


def test_guidance_by_rank_names_real_ranks(tmp_path: Path) -> None:
    zones = ZONES.replace('      "1": {ja: 2階以上へ', '      "7": {ja: 2階以上へ')
    got = errors(city(tmp_path, zones=zones))
    assert got == [text("mapcfg_unknown_code", file=str(tmp_path / "layers/zones.yml"),
                        key="hazard.guidance_by_rank", code="7", codelist="depth",
                        known="1, 2")]


def test_both_example_cities_configure_every_answer() -> None:
    repo = Path(__file__).resolve().parent.parent
    for root, road, shelter in ((repo, "road_segment", "shelter"),
                                (repo / "examples/takamatsu", "doro_kukan", "hinanjo")):
        project = load_project(root)
        assert [lid for lid, s in project.specs.items() if s.map.network == "walk"] == [road]
        assert project.specs[shelter].opendata.standard == "evacuation_space"
        pc = project.config.publish
        assert len(pc.search.oaza) == 30 and pc.search.address_prefixes
        assert all(s.map.hazard.guidance for s in project.specs.values() if s.map.hazard)
        assert not (root / "config" / "services.yml").exists()
