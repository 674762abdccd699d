"""A tiny, complete project built in tmp_path: config, specs, code lists and raw exports.

Why: ETL tests need inputs they can break one way at a time (pyogrio's ``prepare_testfile``
model). Every raw file is written from inline GeoDataFrames, in the formats and encodings the
real systems use (cp932 DBF without .cpg, Tokyo datum without .prj, ...).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer

REPO = Path(__file__).resolve().parent.parent
GRIDS = REPO / "data" / "grids"
E0, N0 = 21600.0, 91300.0  # near Uozu city hall, JGD2011 zone VII (EPSG:6675)

TOKYO_PIPE = (
    "+proj=pipeline +step +inv +proj=tmerc +lat_0=36 +lon_0=137.166666666667 +k=0.9999 "
    "+x_0=0 +y_0=0 +ellps=bessel +step +proj=hgridshift +grids={g}/TKY2JGD.tif "
    "+step +proj=hgridshift +grids={g}/touhokutaiheiyouoki2011.tif +step +proj=tmerc "
    "+lat_0=36 +lon_0=137.166666666667 +k=0.9999 +x_0=0 +y_0=0 +ellps=GRS80"
)

PROJECT_YML = """
city: {ja: テスト市, en: Test City}
city_code: "999999"
target_crs: EPSG:6675
boundary: {path: boundary.gpkg, margin_m: 200}
grids_dir: GRIDS
transforms:
  - from_datum: EPSG:6301
    grids: [TKY2JGD.tif, {file: touhokutaiheiyouoki2011.tif, outside: unchanged}]
    accuracy_m: 0.2
    title: {ja: 旧日本測地系→JGD2011, en: Tokyo datum to JGD2011 (TKY2JGD + PatchJGD)}
  - from_datum: EPSG:6612
    grids: [{file: touhokutaiheiyouoki2011.tif, outside: unchanged}]
    accuracy_m: 0.05
    title: {ja: JGD2000→JGD2011, en: JGD2000 to JGD2011 (PatchJGD)}
corrections:
  - id: noto2024
    grids: [noto2024_BL.tif]
    accuracy_m: 0.02
    title: {ja: 令和6年能登半島地震の座標補正, en: 2024 Noto earthquake correction (PatchJGD)}
    epoch: {ja: 測地成果2011 (令和6年改定), en: JGD2011 (2024 revision)}
publish:
  title: {ja: テスト公開GIS, en: Test public GIS}
  description: {ja: テスト, en: test}
  contact_name: テスト市 建設課
  contact_url: https://example.org/
  city_url: https://example.org/
"""

SPECS = {
    "road_segment": """
spec_version: 1
id: road_segment
title: {ja: 道路, en: Roads}
geometry_type: LineString
visibility: public
source_system: road_ledger
attribution: {ja: テスト市 道路台帳, en: Test City road ledger}
id_field: route_no
sources:
  - {name: roads, path: road/ROAD.shp, encoding: cp932, id_field: 路線番号,
     data_date: dbf_header}
fields:
  route_no: {from: 路線番号, normalize: [nfkc, {zfill: {width: 5}}], required: true,
             unique: true, visibility: public}
  road_class: {from: 道路種別, codelist: road_class, visibility: public}
  width_m: {from: 幅員, type: float, normalize: [number], range: [0.5, 60], visibility: public}
""",
    "sewer_manhole": """
spec_version: 1
id: sewer_manhole
title: {ja: マンホール, en: Manholes}
geometry_type: Point
visibility: public
source_system: sewer_ledger
attribution: {ja: テスト市 下水道台帳, en: Test City sewer ledger}
id_field: mh_id
datum_check: {reference: road_segment}
sources:
  - {name: manholes, path: sewer/MH.shp, encoding: cp932, crs: "EPSG:30167", id_field: 人孔番号,
     data_date: dbf_header}
fields:
  mh_id: {from: 人孔番号, normalize: [nfkc], required: true, unique: true, visibility: public}
  ground_elev_m: {from: 地盤高, type: float, sentinels: [9999, 999.99], visibility: public}
  cover_type: {from: 蓋種別}
""",
    "sewer_pipe": """
spec_version: 1
id: sewer_pipe
title: {ja: 下水道管きょ, en: Sewer pipes}
geometry_type: LineString
visibility: public
source_system: sewer_ledger
attribution: {ja: テスト市 下水道台帳, en: Test City sewer ledger}
id_field: pipe_id
datum_check: {reference: road_segment}
sources:
  - {name: pipes, path: sewer/PIPE.shp, encoding: cp932, crs: "EPSG:30167", id_field: 管渠番号,
     data_date: dbf_header}
fields:
  pipe_id: {from: 管渠番号, normalize: [nfkc], required: true, unique: true, visibility: public}
  up_mh_id: {from: 上流人孔, normalize: [nfkc], visibility: public}
  down_mh_id: {from: 下流人孔, normalize: [nfkc], visibility: public}
  material: {from: 管種, codelist: sewer_material, visibility: public}
  diameter_mm: {from: 管径, type: int, range: [50, 3000], visibility: public}
  install_fy: {from: 布設年度, type: int, normalize: [wareki], visibility: public}
  cover_up_m: {from: 上流土被, type: float, sentinels: [999.99], range: [0.1, 15],
               visibility: public}
  district: {from: 処理区}
references:
  - {field: up_mh_id, layer: sewer_manhole, key: mh_id, endpoint: start, tolerance_m: 1.0}
  - {field: down_mh_id, layer: sewer_manhole, key: mh_id, endpoint: end, tolerance_m: 1.0}
""",
    "parcel": """
spec_version: 1
id: parcel
title: {ja: 地番, en: Parcels}
geometry_type: MultiPolygon
visibility: public
source_system: property_tax
attribution: {ja: テスト市 地番図, en: Test City parcel map}
id_field: parcel_id
sources:
  - {name: parcels, path: tax/CHIBAN.shp, encoding: cp932, id_field: 筆ID,
     data_date: dbf_header}
fields:
  parcel_id: {from: 筆ID, required: true, unique: true, visibility: public}
  oaza_name: {from: 大字名, normalize: [nfkc], required: true, visibility: public}
  chiban: {from: 地番, normalize: [chiban], required: true, visibility: public}
  land_cat: {from: 地目}
""",
    "parcel_tax": """
spec_version: 1
id: parcel_tax
title: {ja: 課税台帳, en: Tax ledger}
geometry_type: MultiPolygon
visibility: internal
source_system: property_tax
attribution: {ja: テスト市 課税台帳, en: Test City tax ledger}
id_field: tax_id
join: {layer: parcel, keys: [oaza_name, chiban]}
sources:
  - {name: tax, path: tax/KAZEI.csv, reader: csv, encoding: cp932, id_field: 納税番号,
     data_date: 2025-01-01}
fields:
  tax_id: {from: 納税番号, required: true, unique: true}
  oaza_name: {from: 大字名, normalize: [nfkc]}
  chiban: {from: 地番, normalize: [chiban]}
  owner_name: {from: 所有者氏名}
  assessed_value_jpy: {from: 評価額, type: int}
""",
}

CODELISTS = {
    "road_class": """
id: road_class
title: {ja: 道路種別, en: Road class}
codes:
  class1: {ja: 1級, en: Class 1, aliases: [一級]}
  class2: {ja: 2級, en: Class 2, aliases: [二級]}
  other: {ja: その他, en: Other}
""",
    "sewer_material": """
id: sewer_material
title: {ja: 下水道管種, en: Sewer pipe material}
codes:
  HP: {ja: ヒューム管, en: Hume pipe}
  VU: {ja: 塩ビ管(薄肉), en: PVC (thin)}
  VP: {ja: 塩ビ管(厚肉), en: PVC (thick)}
""",
}


def to_tokyo(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    """JGD2011 zone VII -> Tokyo zone VII with the exact inverse of the GSI grid pipeline."""
    t = Transformer.from_pipeline(TOKYO_PIPE.format(g=GRIDS))

    def fn(xy):
        import numpy as np
        x, y = t.transform(xy[:, 0], xy[:, 1], direction="INVERSE")
        return np.column_stack([x, y])

    return gpd.GeoSeries(shapely.transform(geoms.values, fn), index=geoms.index)


def write_shp(gdf: gpd.GeoDataFrame, path: Path, *, encoding: str = "cp932",
              prj: bool = True, cpg: bool = False) -> None:
    """Write like a Japanese municipal export: cp932, no .cpg, LDID 0, optional .prj."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(gdf, path, encoding=encoding)
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    if not prj:
        path.with_suffix(".prj").unlink(missing_ok=True)
    with open(path.with_suffix(".dbf"), "r+b") as f:
        f.seek(29)
        f.write(b"\x00")


def roads() -> gpd.GeoDataFrame:
    lines = [shapely.LineString([(E0 + i * 100, N0), (E0 + i * 100 + 100, N0)]) for i in range(5)]
    lines += [shapely.LineString([(E0, N0 + i * 100), (E0, N0 + i * 100 + 100)]) for i in range(3)]
    n = len(lines)
    return gpd.GeoDataFrame({
        "路線番号": [str(i + 1) for i in range(n)],
        "道路種別": ["1級", "2級", "その他", "一級"] * (n // 4) + ["1級"] * (n % 4),
        "幅員": ["5.5m", "６．０ｍ", "W=4.0", "7"] * (n // 4) + ["3m"] * (n % 4),
    }, geometry=lines, crs=6675)


def manholes() -> gpd.GeoDataFrame:
    pts = [shapely.Point(E0 + i * 100, N0 + 2) for i in range(6)]
    return gpd.GeoDataFrame({
        "人孔番号": [f"MH{i:03d}" for i in range(6)],
        "地盤高": [5.1, 5.2, 9999.0, 5.4, 5.5, 5.6],
        "蓋種別": ["CANARY-COVER"] * 6,
    }, geometry=pts, crs=6675)


def pipes() -> gpd.GeoDataFrame:
    lines = [shapely.LineString([(E0 + i * 100, N0 + 2), (E0 + i * 100 + 100, N0 + 2)])
             for i in range(5)]
    return gpd.GeoDataFrame({
        "管渠番号": [f"P{i:03d}" for i in range(5)],
        "上流人孔": [f"MH{i:03d}" for i in range(5)],
        "下流人孔": [f"MH{i + 1:03d}" for i in range(5)],
        "管種": ["HP", "ＶＵ", "VP", "ヒューム管", "HP"],
        "管径": [200, 250, 300, 200, 150],
        "布設年度": ["S55", "Ｈ１２", "平成元年度", "S40頃", "不明"],
        "上流土被": [1.2, 999.99, 1.5, 1.1, 2.0],
        "処理区": ["CANARY-DISTRICT"] * 5,
    }, geometry=lines, crs=6675)


def parcels() -> gpd.GeoDataFrame:
    polys = [shapely.box(E0 + i * 50, N0 + 10, E0 + i * 50 + 45, N0 + 60) for i in range(4)]
    return gpd.GeoDataFrame({
        "筆ID": [f"F{i}" for i in range(4)],
        "大字名": ["本町", "本町", "新宿", "新宿"],
        "地番": ["123番4", "１２３－５", "10の1", "11"],
        "地目": ["宅地"] * 4,
    }, geometry=polys, crs=6675)


def tax() -> pd.DataFrame:
    return pd.DataFrame({
        "納税番号": ["T1", "T2", "T3", "T4", "T5"],
        "大字名": ["本町", "本町", "新宿", "新宿", "新宿"],
        "地番": ["123-4", "123の5", "10-1", "11番", "999"],
        "所有者氏名": ["CANARY-OWNER-1", "魚津 太郎", "魚津 花子", "㈱魚津", "不明"],
        "評価額": ["1000000", "2000000", "3000000", "4000000", "5000000"],
    })


def build(root: Path, *, specs: dict[str, str] | None = None) -> Path:
    """Write the whole mini project under ``root`` and return it."""
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "layers" / "codelists").mkdir(parents=True, exist_ok=True)
    (root / "config" / "project.yml").write_text(
        PROJECT_YML.replace("GRIDS", str(GRIDS)), encoding="utf-8")
    for lid, y in (specs or SPECS).items():
        (root / "layers" / f"{lid}.yml").write_text(textwrap.dedent(y), encoding="utf-8")
    for cid, y in CODELISTS.items():
        (root / "layers" / "codelists" / f"{cid}.yml").write_text(y, encoding="utf-8")
    b = gpd.GeoDataFrame(geometry=[shapely.box(E0 - 1000, N0 - 1000, E0 + 2000, N0 + 2000)],
                         crs=6675)
    b.to_file(root / "boundary.gpkg")
    raw = root / "data" / "raw"
    write_shp(roads(), raw / "road" / "ROAD.shp")
    mh = manholes()
    mh = mh.set_geometry(to_tokyo(mh.geometry))
    write_shp(mh.set_crs(None, allow_override=True), raw / "sewer" / "MH.shp", prj=False)
    p = pipes()
    p = p.set_geometry(to_tokyo(p.geometry))
    write_shp(p.set_crs(None, allow_override=True), raw / "sewer" / "PIPE.shp", prj=False)
    write_shp(parcels(), raw / "tax" / "CHIBAN.shp")
    tax().to_csv(raw / "tax" / "KAZEI.csv", index=False, encoding="cp932")
    return root


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
