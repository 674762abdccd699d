"""Deterministic sample raw data for Uozu City, written the way the source systems export it.

``generate(out_dir)`` writes one plausible, synthetic copy of every raw input the layer specs in
``layers/`` read: the road ledger (道路台帳), the sewer ledger (下水道台帳, with 取付管 and
公共ます), the water mapping system (水道マッピング, with the 給水装置 service pipes and meters:
``samples/uozu_service.py``), the property-tax parcel map and ledger (地番図 / 課税台帳), the MLIT
hazard datasets (国土数値情報 A31a / A33 / A40) and the real GSI shelter lists.

Why it looks the way it does:

* **Geography.** Everything is placed inside the real Uozu boundary (KSJ N03). The street grids
  (a few rotated grids, one per district) cover the north-western lowland strip along the coast;
  the south-east of the city is mountains. Sewer and water pipes follow the roads a few metres
  off the centre line, manholes sit at pipe ends, parcels are the blocks between roads cut into
  lots. Rivers, flood bands, the tsunami bands and the sediment-disaster zones are hand-drawn
  approximations of the real ones (片貝川, 早月川, 角川, 鴨川, 布施川; the hill foot).
* **As exported.** Shapefile DBFs are cp932 without a ``.cpg`` and with language-driver byte 0,
  field names are at most 10 bytes in cp932, the sewer ledger is in the old Tokyo datum with no
  ``.prj``, the water system in JGD2000, years are 和暦 in many spellings, 地番 is spelled
  differently in the map and in the tax ledger, placeholders such as 999.99 / 9999 stand for
  "unknown". Datum shifts are the exact inverse of the GSI grid pipelines the ETL applies
  (``data/grids/README.md``), so the ETL recovers the truth geometry.
* **Planted errors.** A small, fixed set of bad records the ETL must quarantine (``PLANTED`` /
  ``planted(scale)``), so tests can assert the quarantine counts exactly.
* **Fast and deterministic.** Vectorised numpy/shapely 2, written with pyogrio/Arrow; the same
  ``seed`` and ``scale`` give byte-identical files (the DBF header date is fixed too). The
  hazard layers do not depend on ``seed`` or ``scale`` (``OVERLAP_POINT_LONLAT`` stays valid).

All values (names, owners, amounts) are synthetic, except the shelter files, which are copied
byte-for-byte from ``data/reference`` (GSI 指定緊急避難場所・指定避難所データ).
"""

from __future__ import annotations

import copy
import importlib.util
import math
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import shapely.affinity
from pyproj import Transformer

ROOT = Path(__file__).resolve().parent.parent


def _sibling(name: str) -> ModuleType:
    """A module beside this file. The city's sample code is loaded by path (``sample.generator``
    of the project), not installed, so its own modules are loaded by path too."""
    key = f"uozu_sample_{name}"
    mod = sys.modules.get(key)
    if mod is None:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        mod = sys.modules[key] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return mod


#: 給水装置・取付管・公共ます: the service connections (samples/uozu_service.py)
service = _sibling("uozu_service")
REFERENCE_DIR = ROOT / "data" / "reference"
GRIDS_DIR = ROOT / "data" / "grids"
BOUNDARY_FILE = REFERENCE_DIR / "uozu_boundary_n03.geojson"
TARGET_CRS = "EPSG:6675"  # JGD2011 / Japan Plane Rectangular CS VII (the truth geometry)
EXPORT_DATE = "2024-03-29"  # DBF header "last update" date (fixed for byte-identical output)

# Raw files (relative to out_dir). The layer specs reference these paths.
ROAD = "road/ROAD_LINE.shp"
SEWER_PIPE = "sewer/GESUI_KANKYO.shp"
SEWER_MANHOLE = "sewer/GESUI_MANHOLE.shp"
WATER_PIPE = "water/SUIDO_KANRO.shp"
WATER_VALVE = "water/SUIDO_BENRUI.shp"
WATER_CODES = "water/KANSHU_CODE.csv"
PARCEL = "tax/CHIBAN_ZU.shp"
TAX = "tax/KAZEI_DAICHO.csv"
FLOOD = "hazard/A31a_flood.shp"
LANDSLIDE = "hazard/A33_landslide.geojson"
TSUNAMI = "hazard/A40_tsunami.geojson"
SHELTER_EMERGENCY = "shelter/162043_emergency.json"
SHELTER_EVACUATION = "shelter/162043_evacuation.json"
FILES = (ROAD, SEWER_PIPE, SEWER_MANHOLE, WATER_PIPE, WATER_VALVE, WATER_CODES, PARCEL, TAX,
         *service.FILES, FLOOD, LANDSLIDE, TSUNAMI, SHELTER_EMERGENCY, SHELTER_EVACUATION)

# Default-scale targets (≈ the real city); counts scale linearly with ``scale``.
TARGET_ROAD_SEGMENTS = 8000
TARGET_PARCELS = 25000

# ---------------------------------------------------------------------------------------------
# Planted bad records (counts are per target layer and quarantine reason code, see
# etl/messages.py REASONS). They do not depend on ``scale`` except the unmatched tax rows.
# "REPAIRED" is not a quarantine reason: the self-intersecting parcel is repaired and kept.
# DUPLICATE_ID counts the *extra* records (a later copy of an id already seen).
PLANTED_FIXED: dict[str, dict[str, int]] = {
    "road_segment": {"OUTSIDE_BOUNDARY": 1},
    "sewer_pipe": {"DUPLICATE_ID": 2, "MISSING_REFERENCE": 2, "UNKNOWN_CODE": 1},
    "sewer_manhole": {"NULL_GEOMETRY": 1},
    "water_pipe": {"OUT_OF_RANGE": 1},
    "parcel": {"REPAIRED": 1},
}


def unmatched_tax_rows(scale: float = 1.0) -> int:
    """Tax-ledger rows whose 地番 matches no parcel (≈0.5 % of the default 25,000 parcels)."""
    return max(1, round(0.005 * TARGET_PARCELS * scale))


def planted(scale: float = 1.0) -> dict[str, dict[str, int]]:
    """Planted bad records per layer and reason for a given ``scale`` (see ``PLANTED_FIXED``)."""
    out = copy.deepcopy(PLANTED_FIXED)
    out["parcel_tax"] = {"JOIN_UNMATCHED": unmatched_tax_rows(scale)}
    return out


PLANTED: dict[str, dict[str, int]] = planted(1.0)

# A lon/lat point (JGD2011) inside a flood depth-rank-2 band of 片貝川 (no other flood polygon)
# and inside a 土石流 warning zone. Hazards are independent of seed and scale.
OVERLAP_POINT_LONLAT = (137.46019, 36.80721)  # checked by tests/test_sample.py

# ---------------------------------------------------------------------------------------------
# Geography (lon/lat, JGD2011). Approximate, hand-drawn from the shelter list and the boundary.

LOWLAND_BOX = (137.38, 36.77, 137.47, 36.85)
# Foot of the hills, from south-west to north-east: lowland is north-west of it.
HILL_FOOT = [(137.395, 36.758), (137.425, 36.774), (137.447, 36.789), (137.463, 36.806),
             (137.471, 36.822), (137.474, 36.840), (137.472, 36.862)]

RIVERS = {  # name: (river id, half channel width m, course from mouth upstream)
    "片貝川": ("8506040001", 35.0, [(137.4105, 36.8425), (137.422, 36.8378), (137.437, 36.8300),
                                   (137.452, 36.8180), (137.466, 36.8060), (137.485, 36.7950),
                                   (137.515, 36.7830), (137.550, 36.7700)]),
    "早月川": ("8506030001", 45.0, [(137.3805, 36.8010), (137.3880, 36.7900), (137.3990, 36.7800),
                                   (137.4120, 36.7660), (137.4250, 36.7480), (137.4350, 36.7300)]),
    "角川": ("8506050001", 12.0, [(137.3955, 36.8160), (137.4050, 36.8100), (137.4180, 36.8000),
                                 (137.4300, 36.7900), (137.4450, 36.7780), (137.4600, 36.7650)]),
    "布施川": ("8506040002", 10.0, [(137.4250, 36.8372), (137.4400, 36.8360), (137.4600, 36.8320),
                                   (137.4800, 36.8250), (137.5000, 36.8150)]),
    "鴨川": ("8506060001", 6.0, [(137.4005, 36.8245), (137.4100, 36.8200), (137.4200, 36.8120),
                                (137.4320, 36.8060), (137.4420, 36.8000)]),
}
# Flood: width (m) of the zone with depth rank >= r, r = 1.. (想定最大規模).
FLOOD_WIDTHS = {
    "片貝川": [900.0, 560.0, 230.0, 80.0],
    "早月川": [700.0, 420.0, 170.0, 70.0],
    "角川": [520.0, 300.0, 110.0],
    "布施川": [420.0, 210.0, 60.0],
    "鴨川": [330.0, 150.0],
}
FLOOD_PLAIN_KM = 6.2  # flood zones reach this far from the coast

HARBOUR = (137.3945, 36.8215)  # 魚津港
TSUNAMI_BANDS = [  # (A40_003 free text, outer distance from the coast m); deepest first
    ("5m以上10m未満", 25.0),
    ("2m以上5m未満", 70.0),
    ("1m以上2m未満", 220.0),
    ("0.3m以上 1.0m未満", 480.0),
    ("0.3m未満", 800.0),
]


@dataclass(frozen=True)
class District:
    """One street grid: centre, rotation of the u axis (deg, ccw from east), block shape."""

    name: str
    lon: float
    lat: float
    angle: float
    fu: float  # block length along u (× base spacing)
    fv: float  # block depth along v (× base spacing)
    kind: str  # urban / suburban / farm
    flow: str  # 排除方式 of its sewers
    era: tuple[int, int]  # fiscal years the networks were laid
    district: str  # 処理区


DISTRICTS = [
    District("旧市街", 137.3955, 36.8120, 71, 1.30, 0.75, "urban", "合流", (1962, 1986),
             "魚津処理区"),
    District("駅周辺", 137.4085, 36.8215, 65, 1.25, 0.80, "urban", "汚水", (1974, 1998),
             "魚津処理区"),
    District("道下", 137.4070, 36.8330, 76, 1.30, 0.80, "urban", "汚水", (1978, 2004),
             "魚津処理区"),
    District("経田", 137.4185, 36.8490, 55, 1.35, 0.85, "suburban", "汚水", (1984, 2010),
             "経田処理区"),
    District("加積", 137.4310, 36.8290, 40, 2.10, 1.20, "farm", "汚水", (1994, 2016), "魚津処理区"),
    District("本江", 137.4140, 36.8070, 80, 1.40, 0.90, "suburban", "汚水", (1983, 2010),
             "魚津処理区"),
    District("上中島", 137.4010, 36.7900, 58, 2.00, 1.10, "farm", "汚水", (1997, 2021),
             "魚津処理区"),
    District("天神", 137.4470, 36.8230, 25, 1.60, 1.00, "suburban", "汚水", (1988, 2013),
             "天神野処理区"),
]

# 大字 (town) seeds: every block takes the name of the nearest seed.
OAZA = [
    ("本町", 137.3950, 36.8135), ("大町", 137.3915, 36.8100), ("港町", 137.3965, 36.8195),
    ("中央通り", 137.4010, 36.8170), ("新宿", 137.3965, 36.8085), ("住吉", 137.3955, 36.8030),
    ("文化町", 137.4030, 36.8075), ("友道", 137.4055, 36.8140), ("本江", 137.4120, 36.8160),
    ("駅前新町", 137.4075, 36.8230), ("上村木", 137.4125, 36.8250), ("北鬼江", 137.4050, 36.8300),
    ("沖新町", 137.4090, 36.8375), ("吉島", 137.4190, 36.8285), ("六郎丸", 137.4285, 36.8235),
    ("江口", 137.4270, 36.8380), ("石垣", 137.4380, 36.8410), ("持光寺", 137.4200, 36.8100),
    ("仏田", 137.4235, 36.8015), ("上口", 137.4120, 36.8005), ("浜経田", 137.4190, 36.8505),
    ("吉野", 137.4070, 36.7880), ("川縁", 137.3975, 36.7915), ("大海寺野", 137.4290, 36.8080),
    ("天神野新", 137.4460, 36.8270), ("下椿", 137.4100, 36.7770), ("三ケ", 137.3875, 36.7990),
    ("慶野", 137.4020, 36.8000), ("東尾崎", 137.4320, 36.8460), ("長引野", 137.4620, 36.8320),
]
# Place names at the hill foot, for the sediment-disaster zones.
HILL_PLACES = [
    ("下椿", 137.410, 36.776), ("鹿熊", 137.428, 36.7695), ("坪野", 137.453, 36.776),
    ("島尻", 137.471, 36.7925), ("小川寺", 137.448, 36.827), ("長引野", 137.464, 36.832),
    ("大海寺野", 137.427, 36.807), ("桃山", 137.433, 36.797), ("吉野", 137.409, 36.787),
    ("天神野新", 137.4465, 36.826), ("石垣", 137.472, 36.845), ("片貝", 137.470, 36.805),
]

# Datum pipelines (data/grids/README.md). The ETL applies them forward; we apply the inverse.
TOKYO_PIPELINE = (
    "+proj=pipeline "
    "+step +inv +proj=tmerc +lat_0=36 +lon_0=137.166666666667 +k=0.9999 +x_0=0 +y_0=0 "
    "+ellps=bessel "
    "+step +proj=hgridshift +grids={grids}/TKY2JGD.tif "
    "+step +proj=hgridshift +grids={grids}/touhokutaiheiyouoki2011.tif "
    "+step +proj=tmerc +lat_0=36 +lon_0=137.166666666667 +k=0.9999 +x_0=0 +y_0=0 +ellps=GRS80"
)
JGD2000_PIPELINE = (
    "+proj=pipeline "
    "+step +inv +proj=tmerc +lat_0=36 +lon_0=137.166666666667 +k=0.9999 +x_0=0 +y_0=0 "
    "+ellps=GRS80 "
    "+step +proj=hgridshift +grids={grids}/touhokutaiheiyouoki2011.tif "
    "+step +proj=tmerc +lat_0=36 +lon_0=137.166666666667 +k=0.9999 +x_0=0 +y_0=0 +ellps=GRS80"
)

# 水道 管種コード表 (the water system's own code table, KANSHU_CODE.csv).
WATER_MATERIAL_CODES = [
    (1, "DIP", "ダクタイル鋳鉄管"), (2, "CIP", "鋳鉄管"), (3, "SP", "鋼管"),
    (4, "VP", "硬質塩化ビニル管"), (5, "HIVP", "耐衝撃性硬質塩化ビニル管"),
    (6, "PE", "ポリエチレン管"),
    (7, "ACP", "石綿セメント管"), (8, "SGP", "ライニング鋼管"), (9, "SSP", "ステンレス鋼管"),
    (10, "XPEP", "架橋ポリエチレン管"), (11, "PBP", "ポリブテン管"), (12, "LP", "鉛管"),
    (13, "CU", "銅管"), (99, "OTHER", "その他"),
]
_WCODE = {abbr: code for code, abbr, _ in WATER_MATERIAL_CODES}

SURNAMES = ["山田", "佐藤", "髙橋", "中村", "山﨑", "林", "浜田", "松井", "清水", "吉田", "森",
            "坂井", "金森", "石川", "大浦", "浦田", "澤田", "池田", "長井", "魚住", "広田", "寺崎"]
GIVEN = ["太郎", "一郎", "花子", "洋子", "誠", "修", "裕子", "博", "健一", "由美", "和夫", "幸子",
         "隆", "恵子", "翔太", "美咲", "進", "勝", "直樹", "陽子"]
COMPANIES = ["㈱魚津建設", "株式会社新川産業", "有限会社丸中商店", "魚津漁業協同組合",
             "宗教法人光円寺", "㈲北陸運輸"]
OTHER_ADDRESSES = ["富山県黒部市三日市1301", "富山県滑川市寺家町104", "富山県富山市新桜町7-38",
                   "東京都世田谷区成城2丁目5番3号", "石川県金沢市広坂1-1-1",
                   "大阪府大阪市北区梅田3-1-1"]

FW = str.maketrans("0123456789-.=mABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   "０１２３４５６７８９－．＝ｍＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ")

Progress = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------------------
# Helpers


@lru_cache(maxsize=1)
def _to_plane() -> Transformer:
    return Transformer.from_crs("EPSG:6668", TARGET_CRS, always_xy=True)


@lru_cache(maxsize=1)
def _to_lonlat() -> Transformer:
    return Transformer.from_crs(TARGET_CRS, "EPSG:6668", always_xy=True)


@lru_cache(maxsize=2)
def _pipeline(template: str) -> Transformer:
    return Transformer.from_pipeline(template.format(grids=GRIDS_DIR.resolve().as_posix()))


def _xy(lonlat: list[tuple[float, float]] | tuple[float, float]) -> np.ndarray:
    a = np.atleast_2d(np.asarray(lonlat, dtype=float))
    x, y = _to_plane().transform(a[:, 0], a[:, 1])
    return np.column_stack([x, y])


def _transform(geoms: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], tuple]) -> np.ndarray:
    def f(c: np.ndarray) -> np.ndarray:
        if len(c) == 0:
            return c
        x, y = fn(c[:, 0], c[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, f)


def _truth_to_tokyo(geoms: np.ndarray) -> np.ndarray:
    """JGD2011 plane VII -> Tokyo datum plane VII (inverse of the ETL's grid pipeline), mm."""
    t = _pipeline(TOKYO_PIPELINE)
    g = _transform(geoms, lambda x, y: t.transform(x, y, direction="INVERSE"))
    return shapely.set_precision(g, 0.001)


def _truth_to_jgd2000(geoms: np.ndarray) -> np.ndarray:
    """JGD2011 plane VII -> JGD2000 plane VII (inverse PatchJGD), mm."""
    t = _pipeline(JGD2000_PIPELINE)
    g = _transform(geoms, lambda x, y: t.transform(x, y, direction="INVERSE"))
    return shapely.set_precision(g, 0.001)


def _pick(rng: np.random.Generator, choices: list, p: list[float], n: int) -> np.ndarray:
    p_arr = np.asarray(p, dtype=float)
    idx = rng.choice(len(choices), size=n, p=p_arr / p_arr.sum())
    return np.asarray(choices, dtype=object)[idx]


def _fw(s: str) -> str:
    return s.translate(FW)


def _smooth(x: np.ndarray, y: np.ndarray, phase: float) -> np.ndarray:
    """A smooth pseudo-random field in [-1, 1] (for terrain and depth variation)."""
    return (0.5 * np.sin(x / 370.0 + phase) * np.cos(y / 530.0 - 2 * phase)
            + 0.3 * np.sin((x + y) / 910.0 + 3 * phase) + 0.2 * np.cos((x - y) / 260.0 + phase))


def _era(fy: int) -> tuple[str, str, int]:
    """Fiscal year -> (letter, kanji era, year of era)."""
    if fy >= 2019:
        return "R", "令和", fy - 2018
    if fy >= 1989:
        return "H", "平成", fy - 1988
    return "S", "昭和", fy - 1925


def _wareki_text(fy: int, style: str) -> str:
    """One 和暦 spelling of a fiscal year, as seen in Japanese ledgers."""
    letter, kanji, n = _era(fy)
    if style == "letter":
        return f"{letter}{n}"
    if style == "letter0":
        return f"{letter}{n:02d}"
    if style == "dot":
        return f"{letter}.{n}"
    if style == "fullwidth":
        return _fw(f"{letter}{n}")
    if style == "kanji":
        return f"{kanji}{'元' if n == 1 else n}年度"
    if style == "approx":
        return f"{letter}{n}頃"
    if style == "after":
        return f"{letter}{n}以降"
    if style == "before":
        return f"{letter}{n}以前"
    if style == "unknown":
        return "不明"
    return ""  # blank


WAREKI_STYLES = ["letter", "letter0", "dot", "fullwidth", "kanji", "approx", "after", "before",
                 "unknown", "blank"]
WAREKI_P = [0.73, 0.04, 0.02, 0.06, 0.06, 0.02, 0.015, 0.01, 0.015, 0.03]


def _wareki_column(rng: np.random.Generator, fy: np.ndarray) -> np.ndarray:
    """Vectorised 和暦 spellings for an array of fiscal years."""
    p = np.asarray(WAREKI_P) / sum(WAREKI_P)
    style = rng.choice(len(WAREKI_STYLES), size=len(fy), p=p)
    key = np.asarray(fy, dtype=np.int64) * 16 + style
    uniq, inv = np.unique(key, return_inverse=True)
    texts = np.array([_wareki_text(int(k // 16), WAREKI_STYLES[int(k % 16)]) for k in uniq],
                     dtype=object)
    return texts[inv]


def _wareki_date(fy: int, month: int, day: int) -> str:
    """A 和暦 date such as 'S55.4.1' for a day in fiscal year ``fy``."""
    year = fy if month >= 4 else fy + 1
    letter, _, n = _era_of_year(year, month)
    return f"{letter}{n}.{month}.{day}"


def _era_of_year(year: int, month: int) -> tuple[str, str, int]:
    if (year, month) >= (2019, 5):
        return "R", "令和", year - 2018
    if year >= 1989:
        return "H", "平成", year - 1988
    return "S", "昭和", year - 1925


def _write_shp(gdf: gpd.GeoDataFrame, path: Path, *, encoding: str = "cp932",
               keep_cpg: bool = False) -> None:
    """Write a Shapefile as a Japanese source system does: cp932, no .cpg, LDID byte 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        path.with_suffix(ext).unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "'crs' was not provided" (on purpose)
        pyogrio.write_dataframe(gdf, path, driver="ESRI Shapefile", encoding=encoding,
                                use_arrow=True,
                                # fixed text widths as a ledger system has them (GDAL's 80
                                # bytes), not fitted to the longest value: a value filling its
                                # field is then a sign of a cut the ETL warns about
                                layer_options={"DBF_DATE_LAST_UPDATE": EXPORT_DATE})
    if not keep_cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
        with open(path.with_suffix(".dbf"), "r+b") as f:  # language driver id: "not set"
            f.seek(29)
            f.write(b"\x00")


def _lonlat_valid(gdf: gpd.GeoDataFrame, *, explode: bool = True) -> gpd.GeoDataFrame:
    """Reproject to JGD2011 lon/lat on a 1e-7° grid (≈1 cm), keeping every polygon valid.

    With ``explode`` each part becomes its own record (KSJ style), else a record keeps its
    parts together as a MultiPolygon (so a per-record id stays unique).
    """
    out = gdf.to_crs("EPSG:6668").reset_index(drop=True)
    geom = shapely.make_valid(shapely.set_precision(shapely.make_valid(out.geometry.values), 1e-7))
    parts = [[p for p in shapely.get_parts(shapely.get_parts(g))
              if p.geom_type == "Polygon" and p.area > 1e-9] for g in geom]
    if explode:
        rows = np.repeat(np.arange(len(out)), [len(p) for p in parts])
        res = out.iloc[rows].reset_index(drop=True)
        return res.set_geometry([p for ps in parts for p in ps], crs=out.crs)
    keep = np.array([len(p) > 0 for p in parts])
    res = out[keep].reset_index(drop=True)
    merged = [ps[0] if len(ps) == 1 else shapely.MultiPolygon(ps) for ps in parts if ps]
    return res.set_geometry(merged, crs=out.crs)


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    pyogrio.write_dataframe(gdf, path, driver="GeoJSON", use_arrow=True,
                            layer_options={"COORDINATE_PRECISION": 7, "WRITE_NAME": "NO"})


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, encoding="cp932", lineterminator="\r\n")


# ---------------------------------------------------------------------------------------------
# World: boundary, lowland, coast, rivers (independent of seed and scale)


@dataclass
class World:
    boundary: shapely.Polygon
    lowland: shapely.Geometry
    coast: shapely.LineString
    coast_simple: shapely.LineString
    rivers: dict[str, shapely.LineString]
    channels: shapely.Geometry
    hill_foot: shapely.LineString


@lru_cache(maxsize=1)
def load_world() -> World:
    """Load the real boundary and derive the (synthetic) lowland, coast and rivers, EPSG:6675."""
    b = gpd.read_file(BOUNDARY_FILE)
    if b.crs is None:
        b = b.set_crs("OGC:CRS84")
    poly = shapely.union_all(b.to_crs(TARGET_CRS).geometry.values)
    ring = np.asarray(poly.exterior.coords) if poly.geom_type == "Polygon" else np.asarray(
        max(poly.geoms, key=lambda g: g.area).exterior.coords)
    # The coast is the part of the ring between the 早月川 mouth (west tip) and the north tip.
    lonlat = np.column_stack(_to_lonlat().transform(ring[:, 0], ring[:, 1]))
    i_w, i_n = int(lonlat[:, 0].argmin()), int(lonlat[:, 1].argmax())
    lo, hi = sorted((i_w, i_n))
    coast = shapely.LineString(ring[lo:hi + 1])
    hill = shapely.LineString(_xy(HILL_FOOT))
    box_ll = shapely.box(*LOWLAND_BOX)
    box = shapely.Polygon(_xy(list(box_ll.exterior.coords)))
    # Lowland side of the hill foot: close the hill line through far north-west points.
    far = _xy([(137.472, 36.95), (137.30, 36.95), (137.30, 36.70), (137.395, 36.70)])
    lowside = shapely.Polygon(np.vstack([np.asarray(hill.coords), far])).buffer(0)
    rivers = {name: shapely.LineString(_xy(course)) for name, (_, _, course) in RIVERS.items()}
    channels = shapely.union_all([r.buffer(RIVERS[n][1]) for n, r in rivers.items()])
    lowland = shapely.intersection_all([poly.buffer(-60.0), box, lowside])
    return World(boundary=poly, lowland=lowland, coast=coast, coast_simple=coast.simplify(15.0),
                 rivers=rivers, channels=channels, hill_foot=hill)


def ground_elevation(world: World, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Synthetic ground height (T.P. m): the alluvial fan rises ~9.5 m/km from the coast."""
    d = shapely.distance(shapely.points(x, y), world.coast_simple)
    return 1.2 + 0.0095 * d + 1.2 * _smooth(x, y, 0.7)


# ---------------------------------------------------------------------------------------------
# Street network


@dataclass
class Network:
    nx: np.ndarray  # node x, y (road centre-line intersections, EPSG:6675)
    ny: np.ndarray
    nd: np.ndarray  # node district index
    ea: np.ndarray  # edge start / end node
    eb: np.ndarray
    ed: np.ndarray  # edge district
    edir: np.ndarray  # 0 = along u, 1 = along v
    eline: np.ndarray  # lattice line index (for routes)
    epos: np.ndarray  # position along the line
    blocks: np.ndarray  # (n, 4) node ids: p00, p10, p11, p01
    bd: np.ndarray  # block district
    base: float


def _lattice(world: World, base: float, rng: np.random.Generator) -> Network:
    cen = _xy([(d.lon, d.lat) for d in DISTRICTS])
    minx, miny, maxx, maxy = world.lowland.bounds
    box = np.array([[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy]])
    low = world.lowland
    chan = world.channels
    shapely.prepare(low)
    shapely.prepare(chan)
    xs, ys, ds = [], [], []
    ea, eb, ed, edir, eline, epos = [], [], [], [], [], []
    blocks, bd = [], []
    offset = 0
    for k, dist in enumerate(DISTRICTS):
        th = math.radians(dist.angle)
        eu = np.array([math.cos(th), math.sin(th)])
        ev = np.array([-math.sin(th), math.cos(th)])
        su, sv = base * dist.fu, base * dist.fv
        rel = box - cen[k]
        u, v = rel @ eu, rel @ ev
        ii = np.arange(math.floor(u.min() / su) - 1, math.ceil(u.max() / su) + 2)
        jj = np.arange(math.floor(v.min() / sv) - 1, math.ceil(v.max() / sv) + 2)
        gi, gj = np.meshgrid(ii, jj, indexing="ij")
        gx = cen[k][0] + gi * su * eu[0] + gj * sv * ev[0]
        gy = cen[k][1] + gi * su * eu[1] + gj * sv * ev[1]
        d2 = (gx[..., None] - cen[:, 0]) ** 2 + (gy[..., None] - cen[:, 1]) ** 2
        keep = d2.argmin(axis=-1) == k
        # Gentle warp (streets are not ruler-straight) and a little survey jitter.
        amp = 0.10 * min(su, sv)
        gx = gx + amp * np.sin(gy / 700.0 + k) + rng.normal(0, 0.015 * base, gx.shape)
        gy = gy + amp * np.sin(gx / 900.0 - k) + rng.normal(0, 0.015 * base, gy.shape)
        cand = np.flatnonzero(keep)
        inside = shapely.contains_xy(low, gx.flat[cand], gy.flat[cand])
        inside &= ~shapely.contains_xy(chan, gx.flat[cand], gy.flat[cand])
        keep.flat[cand[~inside]] = False
        # Drop nodes that would have no edge at all.
        nb = np.zeros_like(keep, dtype=np.int8)
        nb[:-1, :] += keep[1:, :]
        nb[1:, :] += keep[:-1, :]
        nb[:, :-1] += keep[:, 1:]
        nb[:, 1:] += keep[:, :-1]
        keep &= nb > 0
        idx = np.full(keep.shape, -1, dtype=np.int64)
        n = int(keep.sum())
        idx[keep] = np.arange(offset, offset + n)
        xs.append(gx[keep])
        ys.append(gy[keep])
        ds.append(np.full(n, k))
        m = keep[:-1, :] & keep[1:, :]
        ea.append(idx[:-1, :][m])
        eb.append(idx[1:, :][m])
        edir.append(np.zeros(int(m.sum()), dtype=np.int8))
        eline.append(gj[:-1, :][m])
        epos.append(gi[:-1, :][m])
        m = keep[:, :-1] & keep[:, 1:]
        ea.append(idx[:, :-1][m])
        eb.append(idx[:, 1:][m])
        edir.append(np.ones(int(m.sum()), dtype=np.int8))
        eline.append(gi[:, :-1][m])
        epos.append(gj[:, :-1][m])
        ed.append(np.full(len(ea[-2]) + len(ea[-1]), k))
        m = keep[:-1, :-1] & keep[1:, :-1] & keep[1:, 1:] & keep[:-1, 1:]
        blocks.append(np.column_stack([idx[:-1, :-1][m], idx[1:, :-1][m], idx[1:, 1:][m],
                                       idx[:-1, 1:][m]]))
        bd.append(np.full(int(m.sum()), k))
        offset += n
    nx, ny = np.concatenate(xs), np.concatenate(ys)
    blk = np.concatenate(blocks)
    bdist = np.concatenate(bd)
    # No parcels in the rivers.
    quads = shapely.polygons(np.stack([np.column_stack([nx[blk[:, c]], ny[blk[:, c]]])
                                       for c in (0, 1, 2, 3, 0)], axis=1))
    wet = shapely.intersects(quads, chan)
    return Network(nx=nx, ny=ny, nd=np.concatenate(ds), ea=np.concatenate(ea),
                   eb=np.concatenate(eb), ed=np.concatenate(ed), edir=np.concatenate(edir),
                   eline=np.concatenate(eline), epos=np.concatenate(epos), blocks=blk[~wet],
                   bd=bdist[~wet], base=base)


def build_network(world: World, scale: float, seed: int) -> Network:
    """Street grids whose edge count is ≈ TARGET_ROAD_SEGMENTS × scale."""
    target = max(150.0, TARGET_ROAD_SEGMENTS * scale)
    base = 95.0 * math.sqrt(TARGET_ROAD_SEGMENTS / target)
    net = _lattice(world, base, np.random.default_rng([seed, 1]))
    base *= math.sqrt(max(len(net.ea), 1) / target)
    return _lattice(world, base, np.random.default_rng([seed, 1]))


def _frames() -> tuple[np.ndarray, np.ndarray]:
    th = np.radians([d.angle for d in DISTRICTS])
    eu = np.column_stack([np.cos(th), np.sin(th)])
    ev = np.column_stack([-np.sin(th), np.cos(th)])
    return eu, ev


def _offset(net: Network, district: np.ndarray, ou: float, ov: float) -> tuple[np.ndarray, ...]:
    eu, ev = _frames()
    return (ou * eu[district, 0] + ov * ev[district, 0],
            ou * eu[district, 1] + ov * ev[district, 1])


def _oaza_index(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    seeds = _xy([(lon, lat) for _, lon, lat in OAZA])
    d2 = (x[:, None] - seeds[:, 0]) ** 2 + (y[:, None] - seeds[:, 1]) ** 2
    return d2.argmin(axis=1)


@dataclass
class Routes:
    route: np.ndarray  # route index per edge
    seq: np.ndarray  # 1-based position of the edge within its route
    road_class: np.ndarray  # per edge: 1級 / 2級 / その他
    fy: np.ndarray  # per edge: fiscal year the road (and its pipes) were built


def _routes(net: Network, rng: np.random.Generator) -> Routes:
    order = np.lexsort((net.epos, net.eline, net.edir, net.ed))
    d, di, li, po = net.ed[order], net.edir[order], net.eline[order], net.epos[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = ((d[1:] != d[:-1]) | (di[1:] != di[:-1]) | (li[1:] != li[:-1])
               | (po[1:] != po[:-1] + 1))
    run = np.cumsum(new) - 1
    run_start = np.flatnonzero(new)
    pos_in_run = np.arange(len(order)) - run_start[run]
    new2 = new | ((pos_in_run % 14) == 0)  # a ledger route is at most ~14 blocks long
    route_sorted = np.cumsum(new2) - 1
    starts = np.flatnonzero(new2)
    seq_sorted = np.arange(len(order)) - starts[route_sorted] + 1
    route = np.empty(len(order), dtype=np.int64)
    seq = np.empty(len(order), dtype=np.int64)
    route[order] = route_sorted
    seq[order] = seq_sorted
    line = net.eline
    cls = np.where(line % 6 == 0, "1級", np.where(line % 3 == 0, "2級", "その他"))
    lo = np.array([DISTRICTS[k].era[0] for k in net.ed])
    hi = np.array([DISTRICTS[k].era[1] for k in net.ed])
    # Routes are built in one go: same year for every edge of a route.
    nroutes = int(route.max()) + 1
    u = rng.random(nroutes)
    fy = (lo + (hi - lo) * u[route]).astype(np.int64)
    return Routes(route=route, seq=seq, road_class=cls.astype(object), fy=fy)


# ---------------------------------------------------------------------------------------------
# Writers, one per source system


def _roads(net: Network, rts: Routes, rng: np.random.Generator) -> gpd.GeoDataFrame:
    n = len(net.ea)
    geom = shapely.linestrings(np.stack([np.column_stack([net.nx[net.ea], net.ny[net.ea]]),
                                         np.column_stack([net.nx[net.eb], net.ny[net.eb]])],
                                        axis=1))
    geom = shapely.set_precision(geom, 0.001)
    length = shapely.length(geom)
    nroutes = int(rts.route.max()) + 1
    route_no = np.array([f"{r + 1:05d}" for r in range(nroutes)], dtype=object)
    # Route name after the town where the route starts.
    first = np.zeros(nroutes, dtype=np.int64)
    first[rts.route[rts.seq == 1]] = np.flatnonzero(rts.seq == 1)
    mx = (net.nx[net.ea[first]] + net.nx[net.eb[first]]) / 2
    my = (net.ny[net.ea[first]] + net.ny[net.eb[first]]) / 2
    oz = _oaza_index(mx, my)
    counter: dict[int, int] = {}
    names = []
    for o in oz:
        counter[o] = counter.get(o, 0) + 1
        names.append(f"{OAZA[o][0]}{counter[o]}号線")
    names_arr = np.array(names, dtype=object)
    # A few names typed with half-width katakana in the old ledger system.
    odd = rng.choice(nroutes, size=min(nroutes, 3), replace=False)
    for i, r in enumerate(odd):
        names_arr[r] = ["駅前ｼﾝﾎﾞﾙﾛｰﾄﾞ線", "ｻﾝｾｯﾄ通り線", "ﾐﾗｰｼﾞｭﾗﾝﾄﾞ線"][i]
    rno = route_no[rts.route].copy()
    strip = rng.random(n) < 0.02  # some route numbers lost their leading zeros
    rno[strip] = [s.lstrip("0") or "0" for s in rno[strip]]
    seg_id = np.array([f"{route_no[r]}-{s:03d}" for r, s in zip(rts.route, rts.seq, strict=True)],
                      dtype=object)
    cls = rts.road_class
    kind = np.array([DISTRICTS[k].kind for k in net.ed])
    width = np.where(cls == "1級", rng.uniform(7.5, 12.0, n),
                     np.where(cls == "2級", rng.uniform(5.5, 8.0, n), rng.uniform(3.0, 6.0, n)))
    width = np.round(width * 2) / 2
    style = rng.choice(4, size=n, p=[0.70, 0.15, 0.10, 0.05])
    wtxt = np.array([f"{w:.1f}m" if s == 0 else _fw(f"{w:.1f}m") if s == 1 else
                     f"W={w:.1f}" if s == 2 else f"{w:.1f}"
                     for w, s in zip(width, style, strict=True)], dtype=object)
    surface = np.where(kind == "farm",
                       _pick(rng, ["アスファルト", "砂利", "未舗装", "コンクリート"],
                             [70, 15, 10, 5], n),
                       _pick(rng, ["アスファルト", "コンクリート", "砂利"], [93, 5, 2], n))
    month = rng.integers(4, 13, n)
    month = np.where(rng.random(n) < 0.5, 4, month)
    day = np.where(month == 4, 1, rng.integers(1, 29, n))
    dates = np.array([_wareki_date(int(f), int(m), int(d))
                      for f, m, d in zip(rts.fy, month, day, strict=True)], dtype=object)
    ledger = np.round(length * (1 + rng.normal(0, 0.02, n)), 1)
    df = gpd.GeoDataFrame({
        "区間番号": seg_id, "路線番号": rno, "路線名": names_arr[rts.route], "道路種別": cls,
        "幅員": wtxt, "延長": ledger, "舗装": surface, "供用開始": dates,
    }, geometry=geom, crs=TARGET_CRS)
    # Planted: one segment digitised far outside the city (a stray copy-paste, ~30 km away).
    far = df.iloc[[n // 2]].copy()
    far["区間番号"] = "99999-001"
    far["路線番号"] = "99999"
    far["路線名"] = "誤入力線"
    far = far.set_geometry([shapely.affinity.translate(far.geometry.values[0], -25000.0,
                                                        -20000.0)], crs=TARGET_CRS)
    return pd.concat([df, far], ignore_index=True)


@dataclass
class Sewer:
    pipes: gpd.GeoDataFrame
    manholes: gpd.GeoDataFrame


def _sewer(world: World, net: Network, rts: Routes, rng: np.random.Generator) -> Sewer:
    kind = np.array([DISTRICTS[k].kind for k in net.ed])
    flow_d = np.array([DISTRICTS[k].flow for k in net.ed], dtype=object)
    sewered = (kind != "farm") | (rng.random(len(net.ea)) < 0.4)
    e = np.flatnonzero(sewered)
    storm = np.flatnonzero(sewered & (rts.road_class == "1級") & (flow_d == "汚水")
                           & (kind != "farm"))
    # Two systems: sanitary/combined along every sewered road, storm along trunk roads.
    systems = [(e, flow_d[e], (2.0, 1.5)), (storm, np.full(len(storm), "雨水", dtype=object),
                                            (-1.5, 3.0))]
    pipe_parts, mh_parts = [], []
    mh_next, pipe_next = 0, 0
    for edges, flow, (ou, ov) in systems:
        if len(edges) == 0:
            continue
        # Manholes: one per node used, one at each edge midpoint.
        nodes, inv_nodes = np.unique(np.concatenate([net.ea[edges], net.eb[edges]]),
                                     return_inverse=True)
        ox_n, oy_n = _offset(net, net.nd[nodes], ou, ov)
        mx_node = net.nx[nodes] + ox_n
        my_node = net.ny[nodes] + oy_n
        a_local = inv_nodes[: len(edges)]
        b_local = inv_nodes[len(edges):]
        mid_x = (mx_node[a_local] + mx_node[b_local]) / 2
        mid_y = (my_node[a_local] + my_node[b_local]) / 2
        mh_x = np.concatenate([mx_node, mid_x])
        mh_y = np.concatenate([my_node, mid_y])
        n_mh = len(mh_x)
        mh_ids = np.array([f"M{mh_next + i + 1:06d}" for i in range(n_mh)], dtype=object)
        mh_next += n_mh
        z = ground_elevation(world, mh_x, mh_y)
        mid_idx = len(nodes) + np.arange(len(edges))
        # Flow runs downhill: the higher end of the road is upstream.
        up_first = z[a_local] >= z[b_local]
        hi = np.where(up_first, a_local, b_local)
        lo = np.where(up_first, b_local, a_local)
        # pipe 1: high node -> mid, pipe 2: mid -> low node
        p_up = np.concatenate([hi, mid_idx])
        p_dn = np.concatenate([mid_idx, lo])
        p_edge = np.concatenate([edges, edges])
        p_flow = np.concatenate([flow, flow])
        cls = rts.road_class[p_edge]
        npipe = len(p_up)
        if flow[0] == "雨水":
            dia = _pick(rng, [400, 500, 600, 800, 1000, 1200], [15, 25, 25, 20, 10, 5], npipe)
        else:
            comb = p_flow == "合流"
            dia_s = np.where(cls == "1級", _pick(rng, [250, 300, 350], [30, 50, 20], npipe),
                             _pick(rng, [150, 200, 250], [5, 80, 15], npipe))
            big = _pick(rng, [600, 700, 800, 1000], [30, 30, 25, 15], npipe)
            mid = _pick(rng, [400, 450, 500], [40, 30, 30], npipe)
            small = _pick(rng, [250, 300, 350], [40, 40, 20], npipe)
            dia_c = np.where(cls == "1級", big, np.where(cls == "2級", mid, small))
            dia = np.where(comb, dia_c, dia_s)
        dia = dia.astype(np.int64)
        fy = rts.fy[p_edge] + rng.integers(0, 3, npipe)
        fy = np.minimum(fy, 2023)
        mat = _sewer_material(rng, fy, dia, p_flow)
        # Manhole depth and inverts (T.P.), keeping every pipe sloping downstream.
        depth = 1.3 + 0.35 * (_smooth(mh_x, mh_y, 2.1) + 1) + np.zeros(n_mh)
        big = np.zeros(n_mh)
        np.maximum.at(big, p_up, dia / 1000.0)
        np.maximum.at(big, p_dn, dia / 1000.0)
        depth = depth + big
        inv_mh = z - depth
        length = np.hypot(mh_x[p_dn] - mh_x[p_up], mh_y[p_dn] - mh_y[p_up])
        inv_up = inv_mh[p_up] + 0.02
        min_slope = np.where(dia >= 400, 0.0015, 0.003)
        inv_dn = np.minimum(inv_mh[p_dn], inv_up - min_slope * length)
        slope = (inv_up - inv_dn) / length * 1000.0
        inv_node = inv_mh.copy()
        np.minimum.at(inv_node, p_dn, inv_dn)
        cover_up = z[p_up] - inv_up - dia / 1000.0
        cover_dn = z[p_dn] - inv_dn - dia / 1000.0
        cover_up = np.where(rng.random(npipe) < 0.004, 999.99, np.round(cover_up, 2))
        cover_dn = np.where(rng.random(npipe) < 0.004, 999.99, np.round(cover_dn, 2))
        geom = shapely.linestrings(np.stack([np.column_stack([mh_x[p_up], mh_y[p_up]]),
                                             np.column_stack([mh_x[p_dn], mh_y[p_dn]])], axis=1))
        pipe_ids = np.array([f"K{pipe_next + i + 1:06d}" for i in range(npipe)], dtype=object)
        pipe_next += npipe
        pipes = gpd.GeoDataFrame({
            "管渠番号": pipe_ids, "上流人孔": mh_ids[p_up], "下流人孔": mh_ids[p_dn],
            "排除方式": p_flow, "管種": mat, "管径": dia,
            "延長": np.round(length * (1 + rng.normal(0, 0.003, npipe)), 2),
            "勾配": np.round(slope, 1), "上流管底": np.round(inv_up, 3),
            "下流管底": np.round(inv_dn, 3), "上流土被": cover_up, "下流土被": cover_dn,
            "布設年度": _wareki_column(rng, fy),
            "処理区": np.array([DISTRICTS[k].district for k in net.ed[p_edge]], dtype=object),
        }, geometry=geom)
        # Manhole attributes: year and type from the pipes that leave / enter it.
        mh_fy = np.full(n_mh, 2100)
        np.minimum.at(mh_fy, p_up, fy)
        np.minimum.at(mh_fy, p_dn, fy)
        mh_dia = np.zeros(n_mh)
        np.maximum.at(mh_dia, p_up, dia)
        degree = np.bincount(np.concatenate([p_up, p_dn]), minlength=n_mh)
        mh_kind = np.where((degree >= 4) & (mh_dia >= 600), "特殊",
                           np.where((mh_dia <= 200) & (rng.random(n_mh) < 0.12), "小型", "標準"))
        special = rng.random(n_mh) < 0.02
        mh_kind = np.where(special, "特殊", mh_kind)
        ground = np.where(rng.random(n_mh) < 0.003, 9999.0, np.round(z, 2))
        mh_flow = np.full(n_mh, "", dtype=object)
        mh_flow[p_up] = p_flow
        mh_flow[p_dn] = p_flow
        manholes = gpd.GeoDataFrame({
            "人孔番号": mh_ids, "種別": mh_kind.astype(object), "排除方式": mh_flow,
            "地盤高": ground, "管底高": np.round(inv_node, 3), "深さ": np.round(z - inv_node, 2),
            "布設年度": _wareki_column(rng, mh_fy),
            "蓋種別": _pick(rng, ["鋳鉄製T-25", "鋳鉄製T-14", "鋳鉄製T-25(転落防止)", "FRP製",
                                "コンクリート製"], [55, 20, 15, 5, 5], n_mh),
        }, geometry=shapely.points(mh_x, mh_y))
        pipe_parts.append(pipes)
        mh_parts.append(manholes)
    pipes = pd.concat(pipe_parts, ignore_index=True)
    manholes = pd.concat(mh_parts, ignore_index=True)
    # --- planted problems (each record has exactly one)
    n = len(pipes)
    pick = rng.choice(n, size=5, replace=False)
    dup_src, bad_ref, bad_code = pick[:2], pick[2:4], pick[4]
    pipes.loc[bad_ref, "上流人孔"] = ["M999990", "M999991"]  # manholes that do not exist
    pipes.loc[bad_code, "管種"] = "XX"  # not a material code
    dups = pipes.loc[dup_src].copy()  # keyed in twice (the later copy differs in year)
    dups["布設年度"] = ["H3", "S61"]
    pipes = pd.concat([pipes, dups], ignore_index=True)
    # One manhole card without coordinates (not referenced by any pipe).
    ghost = manholes.iloc[[0]].copy()
    ghost["人孔番号"] = f"M{mh_next + 1:06d}"
    ghost["布設年度"] = "不明"
    ghost = ghost.set_geometry([None])
    manholes = pd.concat([manholes, ghost], ignore_index=True)
    return Sewer(pipes=gpd.GeoDataFrame(pipes, geometry="geometry"),
                 manholes=gpd.GeoDataFrame(manholes, geometry="geometry"))


def _sewer_material(rng: np.random.Generator, fy: np.ndarray, dia: np.ndarray,
                    flow: np.ndarray) -> np.ndarray:
    n = len(fy)
    r = rng.random(n)
    small = dia < 300
    old = np.where(r < 0.7, "CP", "HP")
    mid = np.where(r < 0.6, "VU", np.where(r < 0.85, "VP", "HP"))
    new = np.where(r < 0.95, "VU", np.where(r < 0.99, "PE", "DIP"))
    out = np.where(small,
                   np.where(fy < 1975, old, np.where(fy < 1990, mid, new)),
                   np.where(fy < 1990, np.where(r < 0.8, "HP", "RC"),
                            np.where(r < 0.55, "HP", np.where(r < 0.85, "FRPM", "RC"))))
    out = out.astype(object)
    # Alias spellings typed by hand over the years.
    a = rng.random(n)
    out[(out == "HP") & (a < 0.04)] = "ヒューム管"
    out[(out == "VU") & (a < 0.04)] = "ＶＵ"
    out[(out == "VU") & (a > 0.995)] = "vu"
    out[(out == "CP") & (a < 0.05)] = "陶管"
    return out


@dataclass
class Water:
    pipes: gpd.GeoDataFrame
    valves: gpd.GeoDataFrame


def _water_material(rng: np.random.Generator, fy: np.ndarray, main: np.ndarray) -> tuple:
    n = len(fy)
    r = rng.random(n)
    mat = np.where(fy < 1970, np.where(r < 0.45, "CIP", np.where(r < 0.85, "ACP", "SP")),
                   np.where(fy < 1990, np.where(main | (r < 0.35), "DIP", "VP"),
                            np.where(fy < 2006, np.where(main | (r < 0.5), "DIP", "HIVP"),
                                     np.where(main | (r < 0.55), "DIP",
                                              np.where(r < 0.8, "PE", "HIVP"))))).astype(object)
    joint = np.full(n, "", dtype=object)
    dip = mat == "DIP"
    joint[dip] = np.where(fy[dip] < 1985, "K", np.where(fy[dip] < 1995, "T",
                                                       np.where(fy[dip] < 2012, "NS", "GX")))
    joint[(mat == "VP") | (mat == "HIVP")] = "RR"
    joint[mat == "CIP"] = "K"
    joint[mat == "PE"] = "EF"
    return mat, joint


def _water(world: World, net: Network, rts: Routes, parcels_n: int,
           rng: np.random.Generator) -> Water:
    ne = len(net.ea)
    ox, oy = _offset(net, net.nd, -2.5, -2.0)
    wx, wy = net.nx + ox, net.ny + oy
    mid_x, mid_y = (wx[net.ea] + wx[net.eb]) / 2, (wy[net.ea] + wy[net.eb]) / 2
    main = rts.road_class == "1級"
    dia_e = np.where(main, _pick(rng, [150, 200, 250, 300], [40, 30, 15, 15], ne),
                     _pick(rng, [50, 75, 100, 150], [15, 35, 35, 15], ne)).astype(np.int64)
    fy_e = np.minimum(rts.fy + rng.integers(-2, 4, ne), 2023)
    cls_e = np.where(main, "配水本管", "配水支管").astype(object)
    # Two pipes per road edge, split at the middle.
    p_x0 = np.concatenate([wx[net.ea], mid_x])
    p_y0 = np.concatenate([wy[net.ea], mid_y])
    p_x1 = np.concatenate([mid_x, wx[net.eb]])
    p_y1 = np.concatenate([mid_y, wy[net.eb]])
    p_e = np.concatenate([np.arange(ne), np.arange(ne)])
    dia, fy, cls = dia_e[p_e], fy_e[p_e], cls_e[p_e]
    # Service pipes (給水): short stubs from the main into the lots.
    ns = max(1, int(0.15 * parcels_n))
    se = rng.choice(ne, size=ns)
    f = rng.uniform(0.15, 0.85, ns)
    eu, ev = _frames()
    normal = np.where(net.edir[se, None] == 0, ev[net.ed[se]], eu[net.ed[se]])
    normal = normal * np.where(rng.random(ns) < 0.5, -1.0, 1.0)[:, None]
    slen = rng.uniform(4.0, 11.0, ns)
    sx0 = wx[net.ea[se]] + f * (wx[net.eb[se]] - wx[net.ea[se]])
    sy0 = wy[net.ea[se]] + f * (wy[net.eb[se]] - wy[net.ea[se]])
    s_fy = np.minimum(fy_e[se] + rng.integers(0, 30, ns), 2023)
    # Trunk lines: intake (導水) -> treatment plant -> (送水) -> reservoir -> town (配水本管).
    trunk = [("導水", 500, 1968, [(137.4790, 36.7975), (137.4700, 36.8010), (137.4620, 36.8045),
                                  (137.4550, 36.8080)]),
             ("送水", 400, 1972, [(137.4550, 36.8080), (137.4530, 36.8130), (137.4500, 36.8190),
                                  (137.4460, 36.8240)]),
             ("配水本管", 400, 1974, [(137.4460, 36.8240), (137.4350, 36.8235), (137.4250, 36.8230),
                                     (137.4150, 36.8228)])]
    tx0, ty0, tx1, ty1, tdia, tfy, tcls = [], [], [], [], [], [], []
    for c, d_mm, year, course in trunk:
        pts = _xy(course)
        line = shapely.LineString(pts)
        k = max(2, int(line.length // 150))
        cut = shapely.line_interpolate_point(line, np.linspace(0, line.length, k + 1))
        c_xy = shapely.get_coordinates(cut)
        tx0 += list(c_xy[:-1, 0])
        ty0 += list(c_xy[:-1, 1])
        tx1 += list(c_xy[1:, 0])
        ty1 += list(c_xy[1:, 1])
        tdia += [d_mm] * k
        tfy += [year] * k
        tcls += [c] * k
    x0 = np.concatenate([p_x0, sx0, tx0])
    y0 = np.concatenate([p_y0, sy0, ty0])
    x1 = np.concatenate([p_x1, sx0 + slen * normal[:, 0], tx1])
    y1 = np.concatenate([p_y1, sy0 + slen * normal[:, 1], ty1])
    dia = np.concatenate([dia, _pick(rng, [20, 25, 30, 40, 50], [45, 25, 10, 12, 8], ns),
                          np.array(tdia)]).astype(np.int64)
    fy = np.concatenate([fy, s_fy, np.array(tfy)])
    cls = np.concatenate([cls, np.full(ns, "給水", dtype=object), np.array(tcls, dtype=object)])
    is_main = np.isin(cls, ["配水本管", "導水", "送水"])
    mat, joint = _water_material(rng, fy, is_main)
    svc = cls == "給水"
    r = rng.random(len(fy))
    mat[svc] = np.where(fy[svc] < 1980, np.where(r[svc] < 0.4, "LP", "SGP"),
                        np.where(r[svc] < 0.55, "PE", np.where(r[svc] < 0.7, "VP",
                                 np.where(r[svc] < 0.8, "XPEP", np.where(r[svc] < 0.88, "PBP",
                                          np.where(r[svc] < 0.95, "SSP", "CU"))))))
    joint[svc] = ""
    trunk_mask = np.isin(cls, ["導水", "送水"])
    mat[trunk_mask] = np.where(r[trunk_mask] < 0.7, "DIP", "SP")
    joint[trunk_mask & (mat == "DIP")] = "K"
    joint[trunk_mask & (mat == "SP")] = ""
    status = np.full(len(fy), "使用中", dtype=object)
    old = np.flatnonzero(np.isin(mat, ["ACP", "CIP"]) & ~svc)
    abandoned = old[rng.random(len(old)) < 0.12]
    status[abandoned] = "廃止"
    # The replacement laid beside each abandoned pipe (1.2 m over, recent DIP/HIVP).
    eu_, ev_ = _frames()
    pe = np.concatenate([p_e, se, np.zeros(len(tfy), dtype=np.int64)])
    shift = np.where(net.edir[pe[abandoned], None] == 0, ev_[net.ed[pe[abandoned]]],
                     eu_[net.ed[pe[abandoned]]]) * 1.2
    rx0, ry0 = x0[abandoned] + shift[:, 0], y0[abandoned] + shift[:, 1]
    rx1, ry1 = x1[abandoned] + shift[:, 0], y1[abandoned] + shift[:, 1]
    r_fy = rng.integers(2008, 2024, len(abandoned))
    r_mat = np.where(dia[abandoned] >= 100, "DIP", "HIVP").astype(object)
    r_joint = np.where(r_mat == "DIP", np.where(r_fy < 2012, "NS", "GX"), "RR").astype(object)
    x0 = np.concatenate([x0, rx0])
    y0 = np.concatenate([y0, ry0])
    x1 = np.concatenate([x1, rx1])
    y1 = np.concatenate([y1, ry1])
    dia = np.concatenate([dia, dia[abandoned]])
    fy = np.concatenate([fy, r_fy])
    cls = np.concatenate([cls, cls[abandoned]])
    mat = np.concatenate([mat, r_mat])
    joint = np.concatenate([joint, r_joint])
    status = np.concatenate([status, np.full(len(abandoned), "使用中", dtype=object)])
    n = len(x0)
    geom = shapely.linestrings(np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])],
                                        axis=1))
    length = shapely.length(geom)
    cover = np.round(np.where(dia >= 300, rng.uniform(1.0, 1.5, n), rng.uniform(0.6, 1.2, n)), 1)
    code = np.array([_WCODE[m] for m in mat], dtype=np.int64)
    pipes = gpd.GeoDataFrame({
        "管路番号": np.array([f"W{i + 1:07d}" for i in range(n)], dtype=object),
        "管路区分": cls, "管種コード": code, "口径": dia,
        "延長": np.round(length * (1 + rng.normal(0, 0.01, n)), 2),
        "布設年度": _wareki_column(rng, fy), "継手": joint, "土被り": cover, "状態": status,
    }, geometry=geom)
    # Planted: a diameter typed as 99999 mm.
    bad = int(rng.choice(np.flatnonzero(cls == "配水支管")))
    pipes.loc[bad, "口径"] = 99999
    # --- valves
    node_dia = np.zeros(len(net.nx), dtype=np.int64)
    np.maximum.at(node_dia, net.ea, dia_e)
    np.maximum.at(node_dia, net.eb, dia_e)
    node_fy = np.full(len(net.nx), 2100)
    np.minimum.at(node_fy, net.ea, fy_e)
    np.minimum.at(node_fy, net.eb, fy_e)
    nn = len(net.nx)
    gate_nodes = np.flatnonzero(rng.random(nn) < 0.55)
    gate_mid = np.flatnonzero(rng.random(ne) < 0.08)
    hyd = np.flatnonzero((dia_e >= 75) & (rng.random(ne) < 0.26))
    air = np.flatnonzero(main & (rng.random(ne) < 0.05))
    drain = np.flatnonzero(rng.random(nn) < 0.015)
    vx = np.concatenate([wx[gate_nodes], mid_x[gate_mid], mid_x[hyd] + 0.6, mid_x[air] - 0.6,
                         wx[drain] + 0.8])
    vy = np.concatenate([wy[gate_nodes], mid_y[gate_mid], mid_y[hyd] + 0.6, mid_y[air] - 0.6,
                         wy[drain] + 0.8])
    g_dia = np.concatenate([node_dia[gate_nodes], dia_e[gate_mid]])
    g_type = np.where(g_dia >= 300, "バタフライ弁", "仕切弁").astype(object)
    nh = len(hyd)
    h_form = _pick(rng, ["地下式単口", "地下式双口", "地上式"], [70, 15, 15], nh)
    vtype = np.concatenate([g_type, np.full(nh, "消火栓", dtype=object),
                            np.full(len(air), "空気弁", dtype=object),
                            np.full(len(drain), "排水弁", dtype=object)])
    vdia = np.concatenate([g_dia, np.where(h_form == "地下式双口", 100, 75),
                           _pick(rng, [25, 75], [60, 40], len(air)),
                           np.minimum(node_dia[drain], 150)]).astype(np.int64)
    vfy = np.concatenate([node_fy[gate_nodes], fy_e[gate_mid], fy_e[hyd], fy_e[air],
                          node_fy[drain]])
    form = np.concatenate([np.full(len(g_type), "", dtype=object), h_form,
                           np.full(len(air) + len(drain), "", dtype=object)])
    # Pressure-reducing valves where the hill district joins the town network (fixed spots).
    prv = _xy([(137.4415, 36.8236), (137.4380, 36.8180), (137.4460, 36.8200)])
    vx = np.concatenate([vx, prv[:, 0]])
    vy = np.concatenate([vy, prv[:, 1]])
    vtype = np.concatenate([vtype, np.full(len(prv), "減圧弁", dtype=object)])
    vdia = np.concatenate([vdia, np.array([150, 100, 100])])
    vfy = np.concatenate([vfy, np.array([1996, 2004, 2015])])
    form = np.concatenate([form, np.full(len(prv), "", dtype=object)])
    nv = len(vx)
    state = np.where((vtype == "仕切弁") & (rng.random(nv) < 0.02), "閉", "開").astype(object)
    valves = gpd.GeoDataFrame({
        "弁番号": np.array([f"V{i + 1:07d}" for i in range(nv)], dtype=object),
        "種別": vtype, "口径": vdia, "消火栓形式": form, "常時開閉": state,
        "布設年度": _wareki_column(rng, np.minimum(vfy, 2023)),
    }, geometry=shapely.points(vx, vy))
    return Water(pipes=pipes, valves=valves)


@dataclass
class Parcels:
    gdf: gpd.GeoDataFrame  # 地番図 (truth geometry)
    key_oaza: np.ndarray  # per parcel: oaza index
    main: np.ndarray
    branch: np.ndarray  # 0 = no branch
    land: np.ndarray  # registered 地目
    kind: np.ndarray  # district kind


def _chiban_text(main: np.ndarray, branch: np.ndarray, rng: np.random.Generator,
                 p_branch: list[float], p_plain: list[float]) -> np.ndarray:
    """地番 in the spellings the source systems use (normalised to '123-4' by the ETL)."""
    n = len(main)
    sb = rng.choice(4, size=n, p=np.asarray(p_branch) / sum(p_branch))
    sp = rng.choice(3, size=n, p=np.asarray(p_plain) / sum(p_plain))
    out = np.empty(n, dtype=object)
    for i in range(n):
        m, b = int(main[i]), int(branch[i])
        if b:
            s = sb[i]
            out[i] = (f"{m}-{b}" if s == 0 else f"{m}番{b}" if s == 1 else
                      _fw(f"{m}-{b}") if s == 2 else f"{m}の{b}")
        else:
            s = sp[i]
            out[i] = f"{m}" if s == 0 else f"{m}番地" if s == 1 else _fw(f"{m}番地")
    return out


def _parcels(net: Network, rng: np.random.Generator, scale: float) -> Parcels:
    blk = net.blocks
    nb = len(blk)
    kind_b = np.array([DISTRICTS[k].kind for k in net.bd])
    target = max(400.0, TARGET_PARCELS * scale)
    per_block = target / max(nb, 1)
    nv = np.where(kind_b == "farm", 1, 2)
    nu = np.maximum(1, np.round(per_block / nv + rng.normal(0, 0.7, nb))).astype(np.int64)
    counts = nu * nv
    # Block corners (road centre lines) and inset by half a road + verge.
    p = [np.column_stack([net.nx[blk[:, c]], net.ny[blk[:, c]]]) for c in range(4)]
    len_u = np.hypot(*(p[1] - p[0]).T)
    len_v = np.hypot(*(p[3] - p[0]).T)
    inset = 3.5
    mu = np.minimum(inset / len_u, 0.15)
    mv = np.minimum(inset / len_v, 0.15)
    b_of = np.repeat(np.arange(nb), counts)
    k_in = np.arange(len(b_of)) - np.repeat(np.cumsum(counts) - counts, counts)
    iu = k_in % nu[b_of]
    iv = k_in // nu[b_of]
    # Cut positions: equal shares with jitter, shared by neighbouring lots.
    jit = rng.uniform(-0.25, 0.25, (nb, 2))

    def cut(i: np.ndarray, n: np.ndarray, j: np.ndarray) -> np.ndarray:
        t = i / n
        interior = (i > 0) & (i < n)
        return np.where(interior, t + j * np.sin(i * 2.3 + 1.0) / n, t)

    u0 = cut(iu, nu[b_of], jit[b_of, 0])
    u1 = cut(iu + 1, nu[b_of], jit[b_of, 0])
    v0 = cut(iv, nv[b_of], jit[b_of, 1])
    v1 = cut(iv + 1, nv[b_of], jit[b_of, 1])

    def scale_to(t: np.ndarray, m: np.ndarray) -> np.ndarray:
        return m + t * (1 - 2 * m)

    u0, u1 = scale_to(u0, mu[b_of]), scale_to(u1, mu[b_of])
    v0, v1 = scale_to(v0, mv[b_of]), scale_to(v1, mv[b_of])
    P = [q[b_of] for q in p]

    def bil(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        u, v = u[:, None], v[:, None]
        return (1 - u) * (1 - v) * P[0] + u * (1 - v) * P[1] + u * v * P[2] + (1 - u) * v * P[3]

    ring = np.stack([bil(u0, v0), bil(u1, v0), bil(u1, v1), bil(u0, v1), bil(u0, v0)], axis=1)
    geom = shapely.polygons(ring)
    n = len(geom)
    # A few 飛び地 parcels: lot 0 and lot 2 of the first row are one parcel (MultiPolygon).
    cand = np.flatnonzero((nu >= 3) & (nv == 2))
    multi_b = rng.choice(cand, size=min(len(cand), max(1, n // 500)), replace=False)
    first = np.cumsum(counts) - counts
    drop = np.zeros(n, dtype=bool)
    geom = geom.astype(object)
    for b in multi_b:
        i0, i2 = first[b], first[b] + 2
        geom[i0] = shapely.MultiPolygon([geom[i0], geom[i2]])
        drop[i2] = True
    keep = ~drop
    geom, b_of = geom[keep], b_of[keep]
    n = len(geom)
    # 大字 by block centre; 地番 numbered per 大字 in block order.
    cx = (P[0][keep, 0] + P[2][keep, 0]) / 2
    cy = (P[0][keep, 1] + P[2][keep, 1]) / 2
    bcx = np.zeros(nb)
    bcy = np.zeros(nb)
    bcx[b_of], bcy[b_of] = cx, cy
    oz_b = _oaza_index(bcx, bcy)
    oz = oz_b[b_of]
    split_mode = rng.random(nb) < 0.5  # True: one 本番 with 枝番, False: separate 本番
    main = np.zeros(n, dtype=np.int64)
    branch = np.zeros(n, dtype=np.int64)
    nxt = {o: int(rng.integers(1, 40)) for o in range(len(OAZA))}
    lots_per_block = np.bincount(b_of, minlength=nb)
    start_of = np.searchsorted(b_of, np.arange(nb))
    no_one = rng.random(nb) < 0.3
    for b in range(nb):
        k = int(lots_per_block[b])
        if k == 0:
            continue
        o = int(oz_b[b])
        s = start_of[b]
        if split_mode[b] and k > 1:
            m = nxt[o]
            main[s:s + k] = m
            branch[s:s + k] = np.arange(1, k + 1)
            if no_one[b]:
                branch[s] = 0
            nxt[o] = m + int(rng.integers(1, 4))
        else:
            m0 = nxt[o]
            steps = rng.integers(1, 3, k)
            main[s:s + k] = m0 + np.cumsum(steps) - steps[0]
            nxt[o] = int(main[s + k - 1]) + int(rng.integers(1, 4))
    kind = kind_b[b_of]
    land = np.where(kind == "farm",
                    _pick(rng, ["田", "畑", "宅地", "雑種地", "用悪水路", "山林"],
                          [68, 12, 13, 4, 1, 2], n),
                    np.where(kind == "suburban",
                             _pick(rng, ["宅地", "田", "畑", "雑種地", "山林", "墓地"],
                                   [72, 13, 7, 5, 2, 1], n),
                             _pick(rng, ["宅地", "雑種地", "田", "畑", "公園", "境内地", "墓地"],
                                   [89, 5, 2, 1.5, 1, 1, 0.5], n))).astype(object)
    chiban = _chiban_text(main, branch, rng, [50, 30, 10, 10], [60, 30, 10])
    gdf = gpd.GeoDataFrame({
        "筆ID": np.array([f"{i + 1:08d}" for i in range(n)], dtype=object),
        "大字コード": np.array([f"{o + 1:03d}" for o in oz], dtype=object),
        "大字名": np.array([OAZA[o][0] for o in oz], dtype=object),
        "地番": chiban, "地目": land,
    }, geometry=geom, crs=TARGET_CRS)
    # Planted: one lot digitised as a bow-tie (self-intersecting; repairable).
    i = int(rng.integers(0, n))
    while gdf.geometry.values[i].geom_type != "Polygon":
        i = (i + 1) % n
    c = np.asarray(gdf.geometry.values[i].exterior.coords)
    gdf.loc[i, "geometry"] = shapely.Polygon([c[0], c[1], c[3], c[2], c[0]])
    return Parcels(gdf=gdf, key_oaza=oz, main=main, branch=branch, land=land, kind=kind)


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Synthetic owner names (surname, full-width space, given name)."""
    sur = np.asarray(SURNAMES, dtype=object)[rng.integers(0, len(SURNAMES), n)]
    giv = np.asarray(GIVEN, dtype=object)[rng.integers(0, len(GIVEN), n)]
    return sur + "　" + giv


def _addresses(rng: np.random.Generator, n: int) -> np.ndarray:
    """Synthetic owner addresses in Uozu ('富山県魚津市本町1234番地')."""
    town = np.asarray([o[0] for o in OAZA], dtype=object)[rng.integers(0, len(OAZA), n)]
    num = rng.integers(1, 3000, n).astype(str).astype(object)
    return "富山県魚津市" + town + num + "番地"


def _tax(par: Parcels, rng: np.random.Generator, scale: float) -> pd.DataFrame:
    g = par.gdf
    n = len(g)
    area = shapely.area(shapely.make_valid(g.geometry.values))
    land_tax = par.land.copy()
    r = rng.random(n)
    land_tax[(par.land == "田") & (r < 0.08)] = "宅地"
    land_tax[(par.land == "畑") & (r < 0.05)] = "宅地"
    land_tax[(par.land == "宅地") & (r < 0.01)] = "雑種地"
    land_tax[(par.land == "田") & (r > 0.97)] = "介在田"
    reg_area = area * (1 + rng.normal(0, 0.03, n))
    chiseki = np.where(np.isin(par.land, ["宅地"]), np.round(reg_area, 2), np.round(reg_area, 0))
    unit = np.select(
        [land_tax == "宅地", land_tax == "雑種地", np.isin(land_tax, ["田", "介在田"]),
         land_tax == "畑", land_tax == "山林", land_tax == "用悪水路"],
        [np.where(par.kind == "urban", rng.uniform(28000, 56000, n),
                  np.where(par.kind == "suburban", rng.uniform(14000, 30000, n),
                           rng.uniform(6000, 15000, n))),
         rng.uniform(2000, 9000, n), rng.uniform(60, 160, n), rng.uniform(40, 110, n),
         rng.uniform(20, 60, n), np.zeros(n)],
        default=np.zeros(n))  # 公園・境内地・墓地: 非課税
    value = (np.floor(chiseki * unit / 1000) * 1000).astype(np.int64)
    resid = (land_tax == "宅地") & (rng.random(n) < 0.8)
    small = np.minimum(chiseki, 200.0) / np.maximum(chiseki, 1.0)
    base = np.where(resid, value * (small / 6 + (1 - small) / 3), value)
    base = (np.floor(base / 1000) * 1000).astype(np.int64)
    owner = _names(rng, n)
    corp = rng.random(n) < 0.05
    owner[corp] = _pick(rng, COMPANIES, [1] * len(COMPANIES), int(corp.sum()))
    co = rng.random(n) < 0.04
    owner[co] = [f"{o} 外{k}名" for o, k in zip(owner[co], rng.integers(1, 4, int(co.sum())),
                                               strict=True)]
    oz_names = np.array([o[0] for o in OAZA], dtype=object)
    addr = _addresses(rng, n)
    away = rng.random(n) < 0.06
    addr[away] = _pick(rng, OTHER_ADDRESSES, [1] * len(OTHER_ADDRESSES), int(away.sum()))
    chiban = _chiban_text(par.main, par.branch, rng, [30, 45, 15, 10], [40, 50, 10])
    df = pd.DataFrame({"大字名": g["大字名"].to_numpy(), "地番": chiban, "所有者氏名": owner,
                       "所有者住所": addr, "課税地目": land_tax, "評価額": value,
                       "課税標準額": base, "地積": chiseki})
    # Planted: rows for 地番 that are not on the map (split / merged since the map update).
    k = unmatched_tax_rows(scale)
    oz = rng.integers(0, len(OAZA), k)
    top = np.zeros(len(OAZA), dtype=np.int64)
    np.maximum.at(top, par.key_oaza, par.main)
    extra = pd.DataFrame({
        "大字名": oz_names[oz],
        "地番": _chiban_text(top[oz] + 100 + np.arange(k), rng.integers(0, 4, k), rng,
                           [30, 45, 15, 10], [40, 50, 10]),
        "所有者氏名": _names(rng, k),
        "所有者住所": _addresses(rng, k),
        "課税地目": _pick(rng, ["宅地", "田", "畑"], [60, 30, 10], k),
        "評価額": (rng.integers(100, 5000, k) * 1000).astype(np.int64),
        "課税標準額": (rng.integers(50, 900, k) * 1000).astype(np.int64),
        "地積": np.round(rng.uniform(80, 900, k), 2),
    })
    df = pd.concat([df, extra], ignore_index=True)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    df.insert(0, "物件番号", [f"{i + 1:09d}" for i in range(len(df))])
    return df


# ---------------------------------------------------------------------------------------------
# Hazards (independent of seed and scale)


def _variable_band(line: shapely.LineString, width: float, phase: float,
                   step: float = 30.0) -> shapely.Geometry:
    """Union of discs along ``line`` with a smoothly varying radius around ``width``."""
    s = np.arange(0.0, line.length + step, step)
    pts = shapely.line_interpolate_point(line, np.minimum(s, line.length))
    mod = 0.8 + 0.14 * np.sin(s / 2300.0 * 2 * np.pi + phase) + 0.06 * np.sin(s / 650.0 + 2 * phase)
    return shapely.union_all(shapely.buffer(pts, width * mod, quad_segs=8))


def _explode(geoms: list[shapely.Geometry], attrs: list[dict], min_area: float = 200.0) -> tuple:
    out_g, out_a = [], []
    for g, a in zip(geoms, attrs, strict=True):
        if g is None or g.is_empty:
            continue
        parts = shapely.get_parts(shapely.get_parts(g))
        for p in parts:
            if p.geom_type == "Polygon" and p.area >= min_area:
                out_g.append(p)
                out_a.append(a)
    return out_g, out_a


@lru_cache(maxsize=1)
def _hazards() -> dict[str, gpd.GeoDataFrame]:
    w = load_world()
    b = w.boundary
    plain = w.coast_simple.buffer(FLOOD_PLAIN_KM * 1000.0)
    # --- flood (A31a): nested bands per river, rivers do not overlap each other
    geoms, attrs = [], []
    taken = shapely.Polygon()
    for ri, (name, widths) in enumerate(FLOOD_WIDTHS.items()):
        rid, _, _ = RIVERS[name]
        line = w.rivers[name]
        zones = [shapely.intersection_all([_variable_band(line, wd, ri * 1.7), b, plain])
                 for wd in widths]
        foot = zones[0].difference(taken)
        for r in range(len(widths)):
            band = zones[r] if r + 1 == len(widths) else zones[r].difference(zones[r + 1])
            band = band.intersection(foot)
            geoms.append(band)
            attrs.append({"A31a_201": rid, "A31a_202": name, "A31a_203": 2,
                          "A31a_204": "富山県", "A31a_205": r + 1})
        taken = taken.union(zones[0])
    g, a = _explode(geoms, attrs)
    flood = gpd.GeoDataFrame(a, geometry=g, crs=TARGET_CRS)
    # --- tsunami (A40): bands along the coast, deepest first
    harbour = shapely.Point(_xy(HARBOUR)[0]).buffer(260.0)
    geoms, attrs = [], []
    inner = shapely.Polygon()
    for k, (label, wd) in enumerate(TSUNAMI_BANDS):
        zone = _variable_band(w.coast, wd, 0.4, step=20.0).intersection(b)
        if k == 0:
            zone = zone.intersection(harbour)
        band = zone.difference(inner)
        geoms.append(band)
        attrs.append({"A40_001": "富山県", "A40_002": "16", "A40_003": label})
        inner = inner.union(zone)
    g, a = _explode(geoms, attrs, min_area=50.0)
    tsunami = gpd.GeoDataFrame(a, geometry=g, crs=TARGET_CRS)
    # --- sediment disasters (A33) along the hill foot
    landslide = _landslide_zones(w)
    return {"flood": flood, "tsunami": tsunami, "landslide": landslide}


def _landslide_zones(w: World) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(33)  # fixed: zones do not move with seed
    hill = w.hill_foot
    b_in = w.boundary.buffer(-30.0)
    s_all = np.arange(250.0, hill.length - 150.0, 330.0)
    s_all = s_all + rng.uniform(-60, 60, len(s_all))
    # Debris flows where rivers leave the hills.
    crossings = []
    for name in ("片貝川", "角川"):
        x = hill.intersection(w.rivers[name])
        if not x.is_empty:
            crossings.append(hill.project(shapely.get_parts(x)[0]))
    s_all = np.concatenate([s_all[[min(abs(s - c) for c in crossings) > 250 for s in s_all]],
                            crossings])
    is_cross = np.concatenate([np.zeros(len(s_all) - len(crossings), dtype=bool),
                               np.ones(len(crossings), dtype=bool)])
    places = _xy([(lon, lat) for _, lon, lat in HILL_PLACES])
    geoms, attrs = [], []
    counters: dict[str, int] = {}
    site = 0
    for s, cross in zip(s_all, is_cross, strict=True):
        p = np.asarray(shapely.line_interpolate_point(hill, s).coords[0])
        q = np.asarray(shapely.line_interpolate_point(hill, min(s + 20, hill.length)).coords[0])
        o = np.asarray(shapely.line_interpolate_point(hill, max(s - 20, 0)).coords[0])
        t = (q - o) / np.hypot(*(q - o))
        n = np.array([t[1], -t[0]])  # right of the SW->NE line = hill side (south-east)
        kind = 2 if cross else int(rng.choice([1, 2, 3], p=[0.6, 0.28, 0.12]))
        if kind == 1:
            L, d0, d1 = rng.uniform(150, 350), -30.0, rng.uniform(50, 90)
            warn = shapely.Polygon([p - t * L / 2 + n * d0, p + t * L / 2 + n * d0,
                                    p + t * L / 2 + n * d1, p - t * L / 2 + n * d1])
            spec = shapely.Polygon([p - t * L * 0.4 - n * 10, p + t * L * 0.4 - n * 10,
                                    p + t * L * 0.4 + n * d1 * 0.5, p - t * L * 0.4 + n * d1 * 0.5])
            p_spec = 0.75
        elif kind == 2:
            apex = p + n * rng.uniform(250, 400)
            spread = 380.0 if cross else rng.uniform(150, 260)
            reach = 420.0 if cross else rng.uniform(200, 350)
            arc = [p - n * reach + t * spread * math.sin(a) + n * 0.3 * reach * (1 - math.cos(a))
                   for a in np.linspace(-1.2, 1.2, 9)]
            warn = shapely.Polygon([apex, *arc[::-1]])
            spec = shapely.affinity.scale(warn, 0.45, 0.45, origin=shapely.Point(p + n * 60))
            p_spec = 1.0 if cross else 0.6
        else:
            c = p + n * rng.uniform(120, 220)
            warn = shapely.affinity.rotate(
                shapely.affinity.scale(shapely.Point(c).buffer(1.0), rng.uniform(140, 220),
                                       rng.uniform(90, 140)),
                float(np.degrees(np.arctan2(t[1], t[0]))), origin=shapely.Point(c))
            spec = shapely.affinity.scale(warn, 0.5, 0.5)
            p_spec = 0.3
        warn = warn.intersection(b_in)
        if warn.is_empty or warn.area < 500:
            continue
        pre = (not cross) and rng.random() < 0.1
        pl = HILL_PLACES[int(np.argmin(np.hypot(*(places - p).T)))][0]
        counters[pl] = counters.get(pl, 0) + 1
        num = counters[pl]
        site += 1
        zone_no = f"204-{'ⅠⅡⅢ'[kind - 1]}-{site:03d}"
        year = int(rng.integers(2008, 2020))
        month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
        date = "" if pre else f"{year}/{month:02d}/{day:02d}"
        base = {"A33_001": kind, "A33_003": "16", "A33_005": f"{pl}{num}",
                "A33_006": f"富山県魚津市{pl}", "A33_007": date or None}
        geoms.append(warn)
        attrs.append({**base, "A33_002": 3 if pre else 1, "A33_004": zone_no})
        if rng.random() < p_spec:
            sp = spec.intersection(warn)
            if not sp.is_empty and sp.area > 200:
                geoms.append(sp)
                attrs.append({**base, "A33_002": 4 if pre else 2, "A33_004": zone_no + "R"})
    cols = ["A33_001", "A33_002", "A33_003", "A33_004", "A33_005", "A33_006", "A33_007"]
    df = gpd.GeoDataFrame(attrs, geometry=geoms, crs=TARGET_CRS)[[*cols, "geometry"]]
    df["geometry"] = shapely.make_valid(df.geometry.values)
    return df


def hazard_layers() -> dict[str, gpd.GeoDataFrame]:
    """The flood / tsunami / landslide truth polygons (EPSG:6675), e.g. for tests."""
    return {k: v.copy() for k, v in _hazards().items()}


# ---------------------------------------------------------------------------------------------
# Entry point


def generate(out_dir: Path, *, scale: float = 1.0, seed: int = 42,
             progress: Progress | None = None) -> dict[str, int]:
    """Write the sample raw data under ``out_dir``; return record counts per file written.

    ``scale`` multiplies the network and parcel counts (1.0 ≈ the real city); ``seed`` makes
    a different but equally deterministic city. ``progress(file, done, total)`` is called after
    each file is written.
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0 (got {scale})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = load_world()
    net = build_network(world, scale, seed)
    rts = _routes(net, np.random.default_rng([seed, 2]))
    counts: dict[str, int] = {}
    total = len(FILES)

    def done(rel: str, n: int) -> None:
        counts[rel] = n
        if progress:
            progress(rel, len(counts), total)

    roads = _roads(net, rts, np.random.default_rng([seed, 3]))
    _write_shp(roads, out / ROAD)
    done(ROAD, len(roads))

    sewer = _sewer(world, net, rts, np.random.default_rng([seed, 4]))
    pipes = gpd.GeoDataFrame(sewer.pipes.drop(columns="geometry"),
                             geometry=_truth_to_tokyo(sewer.pipes.geometry.values), crs=None)
    _write_shp(pipes, out / SEWER_PIPE)
    done(SEWER_PIPE, len(pipes))
    mh = gpd.GeoDataFrame(sewer.manholes.drop(columns="geometry"),
                          geometry=_truth_to_tokyo(sewer.manholes.geometry.values), crs=None)
    _write_shp(mh, out / SEWER_MANHOLE)
    done(SEWER_MANHOLE, len(mh))

    par = _parcels(net, np.random.default_rng([seed, 6]), scale)
    water = _water(world, net, rts, len(par.gdf), np.random.default_rng([seed, 5]))
    for rel, gdf in ((WATER_PIPE, water.pipes), (WATER_VALVE, water.valves)):
        g = gpd.GeoDataFrame(gdf.drop(columns="geometry"),
                             geometry=_truth_to_jgd2000(gdf.geometry.values), crs="EPSG:2449")
        _write_shp(g, out / rel)
        done(rel, len(g))
    codes = pd.DataFrame(WATER_MATERIAL_CODES, columns=["コード", "略号", "名称"])
    _write_csv(codes, out / WATER_CODES)
    done(WATER_CODES, len(codes))

    parcels = par.gdf.copy()
    parcels["geometry"] = shapely.set_precision(parcels.geometry.values, 0.001, mode="pointwise")
    _write_shp(parcels, out / PARCEL)
    done(PARCEL, len(parcels))
    tax = _tax(par, np.random.default_rng([seed, 7]), scale)
    _write_csv(tax, out / TAX)
    done(TAX, len(tax))

    # 給水装置 (service pipes, meters) and sewer 公共ます / 取付管, from the lots to the mains
    svc = service.frames(par.gdf, water.pipes, sewer.pipes, np.random.default_rng([seed, 8]))
    for rel, n in service.write(out, svc, to_jgd2000=_truth_to_jgd2000,
                                to_tokyo=_truth_to_tokyo, write_shp=_write_shp).items():
        done(rel, n)

    hz = _hazards()
    flood = _lonlat_valid(hz["flood"])
    # KSJ polygons carry no id of their own; the exporter numbers them (the public API needs a
    # unique feature id per layer).
    seq = flood.groupby(["A31a_201", "A31a_205"]).cumcount() + 1
    flood.insert(0, "ZONE_ID", [f"{r}-{k}-{n:03d}" for r, k, n in
                                zip(flood["A31a_201"], flood["A31a_205"], seq, strict=True)])
    _write_shp(flood, out / FLOOD, encoding="UTF-8", keep_cpg=True)
    done(FLOOD, len(flood))
    landslide = _lonlat_valid(hz["landslide"], explode=False)
    _write_geojson(landslide, out / LANDSLIDE)
    done(LANDSLIDE, len(landslide))
    tsunami = _lonlat_valid(hz["tsunami"])
    tsunami.insert(0, "ZONE_ID", [f"16-{i + 1:04d}" for i in range(len(tsunami))])
    _write_geojson(tsunami, out / TSUNAMI)
    done(TSUNAMI, len(tsunami))

    for rel, src in ((SHELTER_EMERGENCY, "162043_emergency.json"),
                     (SHELTER_EVACUATION, "162043_evacuation.json")):
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REFERENCE_DIR / src, dst)
        done(rel, len(gpd.read_file(dst)))
    return counts
