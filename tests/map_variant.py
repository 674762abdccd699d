"""A second, made-up town for the map pages: other layer ids, another plane zone, a third page.

Why: the pages and the pipe sheet must work for any city from its configuration alone. This
project shares nothing with the first city's files: plane zone VIII (EPSG:6676), its own layer
ids and field names (``kanro_gesui``, ``hikki.chiban_no``, ...), an inland-flood hazard with its
own rank code list, shelters flagged for inland floods and earthquakes, and a third page
(``shisetsu``) holding only fire stations coloured by a code list. Its master is written by hand
through the store API (like ``publish_fixtures``), then published by the real ``publish()``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import geopandas as gpd
from publish_fixtures import write_master
from shapely.geometry import LineString, Point, box

from config import Project, load_project

CRS = "EPSG:6676"  # JGD2011 / Japan Plane Rectangular CS VIII
E0, N0 = 1000.0, 2000.0  # a town near the origin of zone VIII (36°N, 138.5°E)
DATE = "2025-06-30"
OAZA = ("本郷", "新田")

PROJECT_YML = """
city: {ja: 見本町, en: Mihon Town}
city_code: "990001"
target_crs: EPSG:6676
boundary: {path: boundary.gpkg, margin_m: 100}
publish:
  title: {ja: 見本町 公開GIS, en: Mihon Town public GIS}
  description: {ja: 見本町の公開データ, en: Public data of Mihon Town}
  contact_name: 見本町 上下水道課
  contact_url: https://example.org/
  contact_phone: 0000-00-0000
  city_url: https://example.org/
  terms_version: "7"
  terms:
    paragraphs:
      - {ja: 見本町の管路図は参考図です。工事の前には台帳を確認してください。,
         en: "Reference only: Mihon Town's pipe map. Check the ledgers before any works."}
  pages:
    - id: kanro
      title: {ja: 見本町 管路図, en: Mihon pipe map}
      terms: true
      start_zoom: 17
    - id: bosai
      title: {ja: 見本町 内水ハザードマップ, en: Mihon inland-flood map}
    - id: shisetsu
      title: {ja: 見本町 消防施設, en: Mihon fire stations}
      short_title: {ja: 消防施設, en: Fire stations}
"""

SPECS: dict[str, str] = {
    "kanro_gesui": """
spec_version: 1
id: kanro_gesui
title: {ja: 下水管, en: Sewers}
geometry_type: LineString
visibility: public
source_system: gesui
attribution: {ja: 見本町 下水道台帳, en: Mihon sewer ledger}
id_field: kanro_no
sources: [{name: s, path: s.shp}]
fields:
  kanro_no: {from: PNO, required: true, unique: true, visibility: public,
             title: {ja: 管路番号, en: Pipe number}}
  haijo: {from: HJ, codelist: haijo_hoshiki, visibility: public,
          title: {ja: 排除方式, en: System}}
  kei_mm: {from: KEI, type: int, unit: mm, visibility: public, title: {ja: 管径, en: Diameter}}
  zairyo: {from: ZAI, visibility: public, title: {ja: 管種, en: Material}}
  shori: {from: SHORI, title: {ja: 処理区, en: District}}
map:
  pages: [kanro]
  role: pipe
  pipe: {utility: sewer, utility_title: {ja: 下水, en: Sewer}, diameter_field: kei_mm,
         material_field: zairyo}
  color_by: haijo
  width_by: {field: kei_mm, classes: [[0, 2], [250, 4]]}
  arrows: true
  labels: {fields: [haijo, kei_mm, zairyo], min_zoom: 19,
           template: {ja: "{haijo.label:.1}φ{kei_mm} {zairyo}", en: "φ{kei_mm} {zairyo}"}}
  popup: [kanro_no, haijo, kei_mm, zairyo]
  min_zoom: 16
  z_order: 3
""",
    "kanro_josui": """
spec_version: 1
id: kanro_josui
title: {ja: 上水管, en: Water mains}
geometry_type: LineString
visibility: public
source_system: josui
attribution: {ja: 見本町 水道台帳, en: Mihon water ledger}
id_field: kanro_no
sources: [{name: w, path: w.shp}]
fields:
  kanro_no: {from: PNO, required: true, unique: true, visibility: public}
  kei_mm: {from: KEI, type: int, unit: mm, visibility: public, title: {ja: 口径, en: Diameter}}
map:
  pages: [kanro]
  role: pipe
  pipe: {utility: water, utility_title: {ja: 上水, en: Water}, diameter_field: kei_mm}
  color: "#2e7d32"
  labels: {fields: [kei_mm], min_zoom: 19, template: {ja: "上φ{kei_mm}", en: "W φ{kei_mm}"}}
  popup: [kanro_no, kei_mm]
  min_zoom: 16
  z_order: 2
""",
    "hikki": """
spec_version: 1
id: hikki
title: {ja: 筆, en: Lots}
geometry_type: Polygon
visibility: public
source_system: zeimu
attribution: {ja: 見本町 地番参考図, en: Mihon lot map}
id_field: hikki_id
sources: [{name: p, path: p.shp}]
fields:
  hikki_id: {from: ID, required: true, unique: true, visibility: public}
  oaza: {from: OAZA, visibility: public, queryable: true, title: {ja: 大字, en: Town}}
  chiban_no: {from: CB, visibility: public, queryable: true, title: {ja: 地番, en: Lot}}
map:
  pages: [kanro]
  role: parcel
  parcel: {oaza_field: oaza, chiban_field: chiban_no}
  color: "#777777"
  fill: "#ffffff"
  fill_opacity: 0.01
  labels: {fields: [chiban_no], min_zoom: 18}
  popup: [oaza, chiban_no]
  min_zoom: 16
""",
    "naisui": """
spec_version: 1
id: naisui
title: {ja: 内水浸水想定区域, en: Inland flood zones}
geometry_type: Polygon
visibility: public
source_system: bosai
attribution: {ja: 見本町 内水ハザードマップ, en: Mihon inland-flood hazard map}
id_field: kuiki_id
sources: [{name: n, path: n.shp}]
fields:
  kuiki_id: {from: ID, required: true, unique: true, visibility: public}
  shinsui_rank: {from: RANK, codelist: naisui_rank, visibility: public,
                 title: {ja: 浸水深, en: Depth}}
map:
  pages: [bosai]
  role: hazard
  hazard: {kind: inland_flood, rank_field: shinsui_rank}
  color_by: shinsui_rank
  fill_opacity: 0.7
  popup: [shinsui_rank]
""",
    "hinanjo": """
spec_version: 1
id: hinanjo
title: {ja: 避難所, en: Shelters}
geometry_type: Point
visibility: public
source_system: bosai
attribution: {ja: 見本町 避難所一覧, en: Mihon shelter list}
id_field: hinanjo_id
sources: [{name: h, path: h.csv, reader: csv}]
fields:
  hinanjo_id: {from: ID, required: true, unique: true, visibility: public}
  meisho: {from: NAME, visibility: public, title: {ja: 名称, en: Name}}
  f_naisui: {from: NS, type: bool, visibility: public, title: {ja: 内水氾濫, en: Inland flooding}}
  f_jishin: {from: JS, type: bool, visibility: public, title: {ja: 地震, en: Earthquake}}
map:
  pages: [bosai]
  role: shelter
  shelter: {name_field: meisho, flags: {inland_flood: f_naisui, earthquake: f_jishin},
            default_kinds: [earthquake]}
  popup: [meisho]
  z_order: 5
""",
    "shobosho": """
spec_version: 1
id: shobosho
title: {ja: 消防署・出張所, en: Fire stations}
geometry_type: Point
visibility: public
source_system: shobo
attribution: {ja: 見本町 消防本部, en: Mihon fire department}
id_field: shobo_id
sources: [{name: f, path: f.csv, reader: csv}]
fields:
  shobo_id: {from: ID, required: true, unique: true, visibility: public}
  meisho: {from: NAME, visibility: public, title: {ja: 名称, en: Name}}
  shubetsu: {from: KIND, codelist: shobo_shubetsu, visibility: public,
             title: {ja: 種別, en: Type}}
  denwa: {from: TEL, visibility: public, title: {ja: 電話, en: Phone}}
  tantou: {from: STAFF, title: {ja: 担当者, en: Staff}}
map:
  pages: [shisetsu]
  color_by: shubetsu
  radius: 7
  labels: {fields: [meisho], min_zoom: 15}
  popup: [meisho, shubetsu, denwa]
""",
}

CODELISTS = {
    "haijo_hoshiki": """
id: haijo_hoshiki
title: {ja: 排除方式, en: Sewer system}
codes:
  osui: {ja: 汚水, en: Sanitary, color: "#c62828"}
  usui: {ja: 雨水, en: Storm, color: "#1565c0"}
""",
    "naisui_rank": """
id: naisui_rank
title: {ja: 内水の浸水深, en: Inland flood depth}
codes:
  "1": {ja: 0.2m未満, en: less than 0.2 m, color: "#e0f7fa", min: 0.0, max: 0.2}
  "2": {ja: 0.2m以上0.5m未満, en: 0.2 m to less than 0.5 m, color: "#4dd0e1", min: 0.2,
        max: 0.5}
  "3": {ja: 0.5m以上, en: 0.5 m or more, color: "#00838f", min: 0.5}
""",
    "shobo_shubetsu": """
id: shobo_shubetsu
title: {ja: 消防施設の種別, en: Fire station type}
codes:
  honsho: {ja: 本署, en: Headquarters, color: "#b71c1c"}
  shussho: {ja: 出張所, en: Branch, color: "#ef6c00"}
  bunsho: {ja: 分署, en: Sub-station, color: "#6a1b9a"}
""",
}


def write_variant(root: Path, *, specs: dict[str, str] | None = None,
                  project_yml: str = PROJECT_YML) -> Path:
    """Config, specs, code lists and the boundary under ``root`` (not loaded)."""
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "layers" / "codelists").mkdir(parents=True, exist_ok=True)
    (root / "config" / "project.yml").write_text(textwrap.dedent(project_yml), encoding="utf-8")
    for lid, text in (specs if specs is not None else SPECS).items():
        (root / "layers" / f"{lid}.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    for cid, text in CODELISTS.items():
        (root / "layers" / "codelists" / f"{cid}.yml").write_text(textwrap.dedent(text),
                                                                  encoding="utf-8")
    gpd.GeoDataFrame({"name": ["見本町"]}, geometry=[box(E0 - 400, N0 - 400, E0 + 700, N0 + 600)],
                     crs=CRS).to_file(root / "boundary.gpkg")
    return root


def frames() -> dict[str, gpd.GeoDataFrame]:
    """The town's master tables in zone VIII (what its ETL would have produced)."""
    lots, sewers, mains = [], [], []
    for i in range(6):
        for j in range(4):
            x, y = E0 + i * 30.0, N0 + j * 25.0
            lots.append({"hikki_id": f"H{i}{j}", "oaza": OAZA[j % 2],
                         "chiban_no": f"{10 + i}-{j + 1}",
                         "geometry": box(x + 1, y + 1, x + 29, y + 24)})
    for j in range(5):
        y = N0 + j * 25.0
        sewers.append({"kanro_no": f"G{j}", "haijo": ("osui", "usui")[j % 2],
                       "kei_mm": (200, 300)[j % 2], "zairyo": ("VU", "HP")[j % 2],
                       "shori": "内部メモ", "geometry": LineString([(E0 - 20, y), (E0 + 200, y)])})
    for i in range(7):
        x = E0 + i * 30.0
        mains.append({"kanro_no": f"J{i}", "kei_mm": 100 + 25 * (i % 3),
                      "geometry": LineString([(x, N0 - 20), (x, N0 + 120)])})
    zones = [{"kuiki_id": "Z1", "shinsui_rank": "1", "geometry": box(E0 - 300, N0 - 300,
                                                                     E0 + 300, N0 + 300)},
             {"kuiki_id": "Z2", "shinsui_rank": "2", "geometry": box(E0 - 100, N0 - 100,
                                                                     E0 + 100, N0 + 100)},
             {"kuiki_id": "Z3", "shinsui_rank": "3", "geometry": box(E0 - 40, N0 - 40,
                                                                     E0 + 0, N0 + 0)}]
    shelters = [{"hinanjo_id": f"S{i}", "meisho": name, "f_naisui": ns, "f_jishin": js,
                 "geometry": Point(E0 + dx, N0 + dy)}
                for i, (name, ns, js, dx, dy) in enumerate([
                    ("第一小学校", True, True, 150.0, 20.0),
                    ("公民館", True, False, -250.0, 200.0),
                    ("町民体育館", False, True, 400.0, 420.0),
                    ("中学校", True, True, 600.0, -300.0)])]
    stations = [{"shobo_id": f"F{i}", "meisho": name, "shubetsu": kind, "denwa": tel,
                 "tantou": "内部担当者", "geometry": Point(E0 + dx, N0 + dy)}
                for i, (name, kind, tel, dx, dy) in enumerate([
                    ("中央消防署", "honsho", "0000-11-0119", 60.0, 300.0),
                    ("東出張所", "shussho", "0000-22-0119", 450.0, 100.0),
                    ("西出張所", "shussho", "0000-33-0119", -300.0, -100.0)])]
    out = {"hikki": lots, "kanro_gesui": sewers, "kanro_josui": mains, "naisui": zones,
           "hinanjo": shelters, "shobosho": stations}
    return {lid: gpd.GeoDataFrame(rows, crs=CRS) for lid, rows in out.items()}


def build_variant(root: Path, **publish_kw: Any) -> tuple[Project, Any]:
    """Write, load, fill the master and publish the town; returns (project, PublishResult)."""
    from publish.build import publish

    write_variant(root)
    project = load_project(root)
    write_master(project, frames(), data_date=DATE)
    return project, publish(project, **publish_kw)
