"""Deterministic sample exports for Takamatsu City (高松市), plus the city's real open data.

``generate(out_dir)`` writes every raw input that the layer specs in ``../layers`` read:

* **Sample data** (synthetic, placed in the real central lowland of Takamatsu): the road ledger
  (道路台帳), the water-pipe ledger (水道施設台帳), the sewer ledger (下水道台帳: 管きょ and 人孔),
  the property-tax parcel map and land ledger (地番図 / 土地課税台帳) and the inland-flood
  assumption (内水浸水想定区域).
* **Real data** (高松市オープンデータ, CC BY 4.0), copied byte-for-byte from ``data/reference``:
  shelters, tsunami evacuation buildings, sandbag stations, fire stations and fire-brigade posts,
  AEDs and irrigation ponds (the old LINK CSVs are read directly by the specs).

Why it looks the way it does:

* **Geography.** Four street grids (中心市街地, 栗林・花園, 木太・松島, 紫雲・西宝) between 香東川
  and 春日川, clipped to the real boundary (国土数値情報 N03) 60 m inside the coast, with
  詰田川 running through the east grid. 町名 are real town names of central Takamatsu placed
  by hand at their approximate centres; every block takes the nearest one. Inland-flood zones
  are nested rings around hand-placed low spots of the plain (松島町, 木太町, 福岡町 ...).
* **As exported.** Shapefile DBFs are cp932 without a ``.cpg`` and with language-driver byte 0,
  field names fit in 10 bytes of cp932. The road, water and parcel systems write a JGD2011
  zone IV ``.prj``; the sewer ledger writes no ``.prj`` (the spec declares EPSG:6672); the
  inland-flood zones were delivered by a consultant in **JGD2000** zone IV (EPSG:2446). GSI's
  PatchJGD 2011 grid has no correction in Kagawa, so their coordinates equal the JGD2011 truth
  and the ETL must keep them unchanged. Years are 和暦 in many spellings, 地番 is spelled
  differently in the map and in the tax ledger, 999.99 / 9999.999 stand for "unknown".
* **Planted errors.** A fixed set of bad records the ETL must quarantine (:data:`PLANTED`), so
  tests can assert exact counts; they do not depend on ``scale`` or ``seed``.
* **Deterministic and vectorised.** numpy/shapely 2, written with pyogrio; the same ``seed``
  and ``scale`` give byte-identical files.
"""

from __future__ import annotations

import math
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import shapely.affinity
from pyproj import Transformer

ROOT = Path(__file__).resolve().parent.parent  # the project folder (examples/takamatsu)
REFERENCE_DIR = ROOT / "data" / "reference"
BOUNDARY_FILE = REFERENCE_DIR / "takamatsu_boundary_n03.geojson"
TARGET_CRS = "EPSG:6672"  # JGD2011 / Japan Plane Rectangular CS IV (the truth geometry)
JGD2000_CRS = "EPSG:2446"  # JGD2000 / Japan Plane Rectangular CS IV (the consultant's export)
EXPORT_DATE = "2025-03-31"  # DBF header "last update" date (fixed for byte-identical output)

# Raw files (relative to out_dir); the layer specs reference these paths.
ROAD = "doro/DORO_KUKAN.shp"
WATER_PIPE = "suido/KANRO.shp"
SEWER_PIPE = "gesui/KANKYO.shp"
SEWER_MANHOLE = "gesui/JINKO.shp"
PARCEL = "zeimu/CHIBANZU.shp"
TAX = "zeimu/KAZEI_TOCHI.csv"
INLAND_FLOOD = "naisui/NAISUI_SHINSUI.shp"
SAMPLE_FILES = (ROAD, WATER_PIPE, SEWER_PIPE, SEWER_MANHOLE, PARCEL, TAX, INLAND_FLOOD)

# Real open data: raw path -> file in data/reference (byte-for-byte copies).
OPENDATA = "opendata"
REAL_FILES = {
    f"{OPENDATA}/evacuation_space_build_20240918.geojson":
        "evacuation_space_build_20240918.geojson",
    f"{OPENDATA}/tsunami_evacuation_building_data.csv": "tsunami_evacuation_building_data.csv",
    f"{OPENDATA}/sandbag_creation_location_data.csv": "sandbag_creation_location_data.csv",
    f"{OPENDATA}/0058_fire_station.csv": "0058_fire_station.csv",
    f"{OPENDATA}/0057_fire_brigade.csv": "0057_fire_brigade.csv",
    f"{OPENDATA}/0002_aed_location.csv": "0002_aed_location.csv",
    f"{OPENDATA}/0082_reservoir_list.csv": "0082_reservoir_list.csv",
}
# Records per real file, as published (what the tests expect read by the ETL).
REAL_RECORDS = {
    "evacuation_space_build_20240918.geojson": 193,
    "tsunami_evacuation_building_data.csv": 113,
    "sandbag_creation_location_data.csv": 9,
    "0058_fire_station.csv": 13,
    "0057_fire_brigade.csv": 96,
    "0002_aed_location.csv": 514,
    "0082_reservoir_list.csv": 841,
}
FILES = SAMPLE_FILES + tuple(REAL_FILES)

# Default-scale targets (the central lowland, not the whole city); counts scale with ``scale``.
TARGET_ROAD_SEGMENTS = 6000
TARGET_PARCELS = 40000

# ---------------------------------------------------------------------------------------------
# Planted bad records: layer -> quarantine reason code -> count (independent of scale and seed).
# DUPLICATE_ID counts the extra copy. "REPAIRED" is not a quarantine reason: the self-crossing
# parcel is repaired and kept.
PLANTED: dict[str, dict[str, int]] = {
    "doro_kukan": {"OUTSIDE_BOUNDARY": 1},
    "suido_kanro": {"OUT_OF_RANGE": 1, "UNKNOWN_CODE": 1},
    "gesui_kanro": {"DUPLICATE_ID": 1, "MISSING_REFERENCE": 1, "BAD_VALUE": 1},
    "gesui_jinko": {"NULL_GEOMETRY": 1},
    "chiban": {"REPAIRED": 1, "MISSING_REQUIRED": 1},
    "kazei_tochi": {"JOIN_UNMATCHED": 3},
    "naisui_shinsui": {},
}
# 地番 of the tax-ledger rows that match no parcel (lots split or merged, map not yet updated).
UNMATCHED_CHIBAN = ("9001-1", "9002", "9003番5")
# How to recognise each planted record among the quarantined ones: a raw column and its values.
PLANTED_RAW: dict[tuple[str, str], tuple[str, tuple[object, ...]]] = {
    ("doro_kukan", "OUTSIDE_BOUNDARY"): ("区間番号", ("99999-001",)),
    ("suido_kanro", "OUT_OF_RANGE"): ("口径", (99999,)),
    ("suido_kanro", "UNKNOWN_CODE"): ("管種", ("ＸＸ",)),
    ("gesui_kanro", "DUPLICATE_ID"): ("布設年度", ("H3",)),
    ("gesui_kanro", "MISSING_REFERENCE"): ("上流人孔", ("MH999999",)),
    ("gesui_kanro", "BAD_VALUE"): ("管径", ("不明",)),
    ("gesui_jinko", "NULL_GEOMETRY"): ("布設年度", ("不明",)),
    ("chiban", "MISSING_REQUIRED"): ("地番", ("", None)),
    ("kazei_tochi", "JOIN_UNMATCHED"): ("地番", UNMATCHED_CHIBAN),
}

# Points (lon/lat JGD2011) to probe the inland-flood layer: inside the deepest ring of the
# 松島町 low spot (rank "4") and on the higher ground of 仏生山 (no inland-flood zone).
INLAND_FLOOD_PROBE = ((134.0650, 34.3400), "4")
DRY_PROBE = (134.0470, 34.2900)

# ---------------------------------------------------------------------------------------------
# Geography (lon/lat, JGD2011), hand-placed from the real shelter and facility points.


@dataclass(frozen=True)
class District:
    """One street grid: lon/lat box, rotation (deg ccw from east), block size, networks."""

    name: str
    box: tuple[float, float, float, float]
    angle: float
    fu: float  # block length along u (x base spacing)
    fv: float  # block depth along v
    flow: str  # 排除方式 of its sewers
    era: tuple[int, int]  # fiscal years its networks were laid
    district: str  # 処理区


DISTRICTS = [
    District("中心市街地", (134.0330, 34.3345, 134.0620, 34.3540), 2.0, 1.30, 0.80, "合流",
             (1958, 1985), "中部処理区"),
    District("栗林・花園", (134.0380, 34.3120, 134.0620, 34.3345), -3.0, 1.40, 0.90, "汚水",
             (1975, 2005), "中部処理区"),
    District("木太・松島", (134.0620, 34.3150, 134.0900, 34.3480), -9.0, 1.50, 0.95, "汚水",
             (1982, 2012), "東部処理区"),
    District("紫雲・西宝", (134.0200, 34.3250, 134.0330, 34.3500), 8.0, 1.35, 0.85, "汚水",
             (1978, 2008), "中部処理区"),
]

# 町名 seeds (real names, approximate centres): every block takes the nearest.
TOWNS = [
    ("番町1丁目", 134.0440, 34.3440), ("番町4丁目", 134.0420, 34.3405),
    ("丸の内", 134.0480, 34.3490), ("寿町1丁目", 134.0495, 34.3470),
    ("兵庫町", 134.0505, 34.3450), ("片原町", 134.0525, 34.3440),
    ("瓦町1丁目", 134.0560, 34.3400), ("常磐町1丁目", 134.0550, 34.3375),
    ("築地町", 134.0575, 34.3420), ("藤塚町1丁目", 134.0500, 34.3330),
    ("栗林町1丁目", 134.0470, 34.3280), ("桜町1丁目", 134.0520, 34.3270),
    ("花園町1丁目", 134.0580, 34.3330), ("観光町", 134.0585, 34.3360),
    ("多賀町1丁目", 134.0600, 34.3300), ("伏石町", 134.0550, 34.3160),
    ("松縄町", 134.0650, 34.3200), ("今里町", 134.0665, 34.3270),
    ("松島町1丁目", 134.0660, 34.3390), ("塩上町1丁目", 134.0625, 34.3395),
    ("福岡町1丁目", 134.0640, 34.3460), ("上福岡町", 134.0690, 34.3340),
    ("木太町", 134.0790, 34.3300), ("宮脇町1丁目", 134.0370, 34.3385),
    ("紫雲町", 134.0345, 34.3420), ("錦町1丁目", 134.0360, 34.3465),
    ("扇町1丁目", 134.0350, 34.3445), ("昭和町1丁目", 134.0395, 34.3345),
    ("西宝町1丁目", 134.0290, 34.3355), ("西宝町3丁目", 134.0255, 34.3300),
]

# 詰田川 (Tsumeta river) through the east grid, from upstream to the mouth; half width 12 m.
RIVER = [(134.0705, 34.3130), (134.0712, 34.3300), (134.0700, 34.3420), (134.0690, 34.3500)]
RIVER_HALF_WIDTH = 12.0
# The coast (for ground heights): the harbour front of the central lowland.
COAST = [(134.0150, 34.3560), (134.0450, 34.3555), (134.0550, 34.3530), (134.0700, 34.3520),
         (134.0900, 34.3500)]
# 御殿浄水場 (real, 0028 water facilities) -> the centre: the transmission main (internal).
TRANSMISSION = [(134.01533, 34.33337), (134.0240, 34.3340), (134.0330, 34.3365)]

# Inland-flood low spots: (name, lon, lat, radius m, deepest rank, aspect, angle deg).
LOW_SPOTS = [
    ("寿町", 134.0485, 34.3465, 260.0, 3, 1.4, 10.0),
    ("瓦町", 134.0560, 34.3395, 220.0, 3, 1.2, -20.0),
    ("松島町", 134.0650, 34.3400, 330.0, 4, 1.5, 15.0),
    ("福岡町", 134.0630, 34.3465, 280.0, 3, 1.8, 0.0),
    ("木太町北", 134.0780, 34.3380, 430.0, 4, 1.6, -10.0),
    ("木太町南", 134.0800, 34.3250, 300.0, 3, 1.3, 30.0),
    ("今里町", 134.0665, 34.3270, 250.0, 2, 1.2, 0.0),
    ("伏石町", 134.0555, 34.3170, 230.0, 2, 1.5, 60.0),
    ("紫雲町", 134.0355, 34.3440, 260.0, 3, 1.3, -30.0),
    ("花園町", 134.0590, 34.3330, 200.0, 2, 1.1, 0.0),
    ("多賀町", 134.0615, 34.3295, 180.0, 2, 1.4, 45.0),
    ("西宝町", 134.0260, 34.3320, 210.0, 2, 1.2, 20.0),
]
RAINFALL = "想定最大規模降雨（時間最大雨量153mm）"

FW = str.maketrans("0123456789-.=mABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   "０１２３４５６７８９－．＝ｍＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ")

SURNAMES = ["山田", "佐藤", "髙橋", "大西", "香川", "松本", "三好", "十河", "藤井", "山下", "多田",
            "岡田", "植田", "寒川", "安藤", "宮武", "真鍋", "細川", "森", "吉田"]
GIVEN = ["太郎", "一郎", "花子", "洋子", "誠", "修", "裕子", "博", "健一", "由美", "和夫", "幸子"]
COMPANIES = ["㈱高松建設", "株式会社さぬき物産", "有限会社玉藻商店", "宗教法人法然寺",
             "㈲瀬戸内運輸"]
OTHER_ADDRESSES = ["香川県丸亀市大手町2丁目4-21", "香川県坂出市室町2丁目3-5",
                   "岡山県岡山市北区大供1-1-1", "大阪府大阪市北区中之島1-3-20",
                   "東京都千代田区霞が関1-1-1"]

Progress = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------------------
# Helpers


@lru_cache(maxsize=1)
def _to_plane() -> Transformer:
    return Transformer.from_crs("EPSG:6668", TARGET_CRS, always_xy=True)


def _xy(lonlat: list[tuple[float, float]] | tuple[float, float]) -> np.ndarray:
    a = np.atleast_2d(np.asarray(lonlat, dtype=float))
    x, y = _to_plane().transform(a[:, 0], a[:, 1])
    return np.column_stack([x, y])


def _pick(rng: np.random.Generator, choices: list, p: list[float], n: int) -> np.ndarray:
    p_arr = np.asarray(p, dtype=float)
    return np.asarray(choices, dtype=object)[rng.choice(len(choices), size=n,
                                                        p=p_arr / p_arr.sum())]


def _fw(s: str) -> str:
    return s.translate(FW)


def _era(fy: int) -> tuple[str, str, int]:
    """Fiscal year -> (letter, kanji era, year of era); a fiscal year takes its April era."""
    if fy >= 2019:
        return "R", "令和", fy - 2018
    if fy >= 1989:
        return "H", "平成", fy - 1988
    return "S", "昭和", fy - 1925


WAREKI_STYLES = ["letter", "dot", "fullwidth", "kanji", "approx", "unknown", "blank"]
WAREKI_P = [0.78, 0.04, 0.07, 0.05, 0.02, 0.02, 0.02]


def _wareki_text(fy: int, style: str) -> str:
    letter, kanji, n = _era(fy)
    if style == "letter":
        return f"{letter}{n}"
    if style == "dot":
        return f"{letter}.{n}"
    if style == "fullwidth":
        return _fw(f"{letter}{n}")
    if style == "kanji":
        return f"{kanji}{'元' if n == 1 else n}年度"
    if style == "approx":
        return f"{letter}{n}頃"
    if style == "unknown":
        return "不明"
    return ""


def _wareki_column(rng: np.random.Generator, fy: np.ndarray) -> np.ndarray:
    """Vectorised 和暦 spellings of fiscal years (one Python call per distinct year/style)."""
    style = rng.choice(len(WAREKI_STYLES), size=len(fy), p=np.asarray(WAREKI_P) / sum(WAREKI_P))
    key = np.asarray(fy, dtype=np.int64) * 16 + style
    uniq, inv = np.unique(key, return_inverse=True)
    texts = np.array([_wareki_text(int(k // 16), WAREKI_STYLES[int(k % 16)]) for k in uniq],
                     dtype=object)
    return texts[inv]


def _wareki_date(fy: int, month: int, day: int) -> str:
    """A 和暦 date such as 'H3.4.1' for a day in fiscal year ``fy``."""
    year = fy if month >= 4 else fy + 1
    if (year, month) >= (2019, 5):
        letter, n = "R", year - 2018
    elif year >= 1990 or (year == 1989 and month >= 2):
        letter, n = "H", year - 1988
    else:
        letter, n = "S", year - 1925
    return f"{letter}{n}.{month}.{day}"


def _write_shp(gdf: gpd.GeoDataFrame, path: Path, *, crs: str | None) -> None:
    """A Shapefile as a Japanese ledger system writes it: cp932, no .cpg, LDID byte 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        path.with_suffix(ext).unlink(missing_ok=True)
    out = gpd.GeoDataFrame(gdf.drop(columns="geometry"),
                           geometry=np.asarray(gdf.geometry.values, dtype=object), crs=crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "'crs' was not provided" (on purpose)
        # Fixed-width text fields (GDAL's default 80 bytes), as ledger systems export them:
        # shrinking each field to its longest value would make every longest value look cut.
        pyogrio.write_dataframe(out, path, driver="ESRI Shapefile", encoding="cp932",
                                layer_options={"DBF_DATE_LAST_UPDATE": EXPORT_DATE})
    path.with_suffix(".cpg").unlink(missing_ok=True)
    with open(path.with_suffix(".dbf"), "r+b") as f:  # language driver id: "not set"
        f.seek(29)
        f.write(b"\x00")


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, encoding="cp932", lineterminator="\r\n")


# ---------------------------------------------------------------------------------------------
# World (independent of seed and scale)


@dataclass
class World:
    boundary: shapely.Geometry  # the real city, EPSG:6672
    land: shapely.Geometry  # the street area: districts inside the coast, minus the river
    river: shapely.Geometry
    coast: shapely.LineString


@lru_cache(maxsize=1)
def load_world() -> World:
    b = gpd.read_file(BOUNDARY_FILE)
    if b.crs is None:
        b = b.set_crs("OGC:CRS84")
    city = shapely.union_all(b.to_crs(TARGET_CRS).geometry.values)
    boxes = shapely.union_all([shapely.Polygon(_xy(list(shapely.box(*d.box).exterior.coords)))
                               for d in DISTRICTS])
    river = shapely.LineString(_xy(RIVER)).buffer(RIVER_HALF_WIDTH)
    land = shapely.intersection(city.buffer(-60.0), boxes).difference(river)
    return World(boundary=city, land=land, river=river, coast=shapely.LineString(_xy(COAST)))


def ground_elevation(world: World, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Synthetic ground height (T.P. m): a flat plain rising ~3.5 m/km from the harbour."""
    d = shapely.distance(shapely.points(x, y), world.coast)
    return 1.2 + 0.0035 * d + 0.4 * np.sin(x / 410.0) * np.cos(y / 530.0)


# ---------------------------------------------------------------------------------------------
# Street network


@dataclass
class Network:
    nx: np.ndarray  # node x, y (road centre-line intersections)
    ny: np.ndarray
    nd: np.ndarray  # node district
    ea: np.ndarray  # edge start / end node
    eb: np.ndarray
    ed: np.ndarray  # edge district
    edir: np.ndarray  # 0 = along u, 1 = along v
    eline: np.ndarray  # lattice line index
    epos: np.ndarray  # position along the line
    blocks: np.ndarray  # (n, 4) corner nodes p00, p10, p11, p01
    bd: np.ndarray  # block district


def _frames() -> tuple[np.ndarray, np.ndarray]:
    th = np.radians([d.angle for d in DISTRICTS])
    return (np.column_stack([np.cos(th), np.sin(th)]),
            np.column_stack([-np.sin(th), np.cos(th)]))


def _lattice(world: World, base: float, rng: np.random.Generator) -> Network:
    eu_all, ev_all = _frames()
    land = world.land
    shapely.prepare(land)
    xs, ys, ds, ea, eb, ed, edir, eline, epos, blocks, bd = ([] for _ in range(11))
    offset = 0
    for k, dist in enumerate(DISTRICTS):
        box = _xy(list(shapely.box(*dist.box).exterior.coords))
        cen = box[:-1].mean(axis=0)
        eu, ev = eu_all[k], ev_all[k]
        su, sv = base * dist.fu, base * dist.fv
        rel = box - cen
        u, v = rel @ eu, rel @ ev
        ii = np.arange(math.floor(u.min() / su) - 1, math.ceil(u.max() / su) + 2)
        jj = np.arange(math.floor(v.min() / sv) - 1, math.ceil(v.max() / sv) + 2)
        gi, gj = np.meshgrid(ii, jj, indexing="ij")
        gx = cen[0] + gi * su * eu[0] + gj * sv * ev[0]
        gy = cen[1] + gi * su * eu[1] + gj * sv * ev[1]
        gx = gx + rng.normal(0, 0.012 * base, gx.shape)
        gy = gy + rng.normal(0, 0.012 * base, gy.shape)
        # The box of this district only (districts do not overlap), on land, off the river.
        inbox = shapely.contains_xy(shapely.Polygon(box), gx, gy)
        keep = inbox & shapely.contains_xy(land, gx, gy)
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
        for axis in (0, 1):
            if axis == 0:
                m = keep[:-1, :] & keep[1:, :]
                a, b_, line, pos = idx[:-1, :][m], idx[1:, :][m], gj[:-1, :][m], gi[:-1, :][m]
            else:
                m = keep[:, :-1] & keep[:, 1:]
                a, b_, line, pos = idx[:, :-1][m], idx[:, 1:][m], gi[:, :-1][m], gj[:, :-1][m]
            ea.append(a)
            eb.append(b_)
            edir.append(np.full(len(a), axis, dtype=np.int8))
            eline.append(line)
            epos.append(pos)
            ed.append(np.full(len(a), k))
        m = keep[:-1, :-1] & keep[1:, :-1] & keep[1:, 1:] & keep[:-1, 1:]
        blocks.append(np.column_stack([idx[:-1, :-1][m], idx[1:, :-1][m], idx[1:, 1:][m],
                                       idx[:-1, 1:][m]]))
        bd.append(np.full(int(m.sum()), k))
        offset += n
    nx, ny = np.concatenate(xs), np.concatenate(ys)
    ea_, eb_ = np.concatenate(ea), np.concatenate(eb)
    # Edges crossing the river (a node each side) would be bridges: leave them out.
    seg = shapely.linestrings(np.stack([np.column_stack([nx[ea_], ny[ea_]]),
                                        np.column_stack([nx[eb_], ny[eb_]])], axis=1))
    dry = ~shapely.intersects(seg, world.river)
    blk = np.concatenate(blocks)
    quads = shapely.polygons(np.stack([np.column_stack([nx[blk[:, c]], ny[blk[:, c]]])
                                       for c in (0, 1, 2, 3, 0)], axis=1))
    blk_ok = ~shapely.intersects(quads, world.river) & shapely.within(quads, world.land)
    return Network(nx=nx, ny=ny, nd=np.concatenate(ds), ea=ea_[dry], eb=eb_[dry],
                   ed=np.concatenate(ed)[dry], edir=np.concatenate(edir)[dry],
                   eline=np.concatenate(eline)[dry], epos=np.concatenate(epos)[dry],
                   blocks=blk[blk_ok], bd=np.concatenate(bd)[blk_ok])


def build_network(world: World, scale: float, seed: int) -> Network:
    """Street grids with about ``TARGET_ROAD_SEGMENTS * scale`` edges."""
    target = max(120.0, TARGET_ROAD_SEGMENTS * scale)
    base = 80.0 * math.sqrt(TARGET_ROAD_SEGMENTS / target)
    net = _lattice(world, base, np.random.default_rng([seed, 1]))
    base *= math.sqrt(max(len(net.ea), 1) / target)
    return _lattice(world, base, np.random.default_rng([seed, 1]))


def _town_index(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    seeds = _xy([(lon, lat) for _, lon, lat in TOWNS])
    return ((x[:, None] - seeds[:, 0]) ** 2 + (y[:, None] - seeds[:, 1]) ** 2).argmin(axis=1)


@dataclass
class Routes:
    route: np.ndarray  # route index per edge
    seq: np.ndarray  # 1-based position of the edge in its route
    road_class: np.ndarray  # 1級 / 2級 / その他
    fy: np.ndarray  # fiscal year the road (and its pipes) were built


def _routes(net: Network, rng: np.random.Generator) -> Routes:
    order = np.lexsort((net.epos, net.eline, net.edir, net.ed))
    d, di, li, po = net.ed[order], net.edir[order], net.eline[order], net.epos[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = ((d[1:] != d[:-1]) | (di[1:] != di[:-1]) | (li[1:] != li[:-1])
               | (po[1:] != po[:-1] + 1))
    run = np.cumsum(new) - 1
    start = np.flatnonzero(new)
    route = np.empty(len(order), dtype=np.int64)
    route[order] = run
    seq = np.empty(len(order), dtype=np.int64)
    seq[order] = np.arange(len(order)) - start[run] + 1
    nrun = len(start)
    line_of_run = li[start]
    cls_run = np.where(line_of_run % 6 == 0, "1級", np.where(line_of_run % 3 == 0, "2級", "その他"))
    era = np.array([DISTRICTS[k].era for k in d[start]])
    fy_run = rng.integers(era[:, 0], era[:, 1] + 1)
    return Routes(route=route, seq=seq, road_class=cls_run[route].astype(object),
                  fy=fy_run[route] if nrun else np.zeros(0, dtype=np.int64))


def _offset(district: np.ndarray, ou: float, ov: float) -> tuple[np.ndarray, np.ndarray]:
    eu, ev = _frames()
    return (ou * eu[district, 0] + ov * ev[district, 0],
            ou * eu[district, 1] + ov * ev[district, 1])


# ---------------------------------------------------------------------------------------------
# Roads (道路台帳)


def _roads(net: Network, rts: Routes, rng: np.random.Generator) -> gpd.GeoDataFrame:
    n = len(net.ea)
    geom = shapely.set_precision(shapely.linestrings(np.stack(
        [np.column_stack([net.nx[net.ea], net.ny[net.ea]]),
         np.column_stack([net.nx[net.eb], net.ny[net.eb]])], axis=1)), 0.001)
    nroutes = int(rts.route.max()) + 1
    first = np.zeros(nroutes, dtype=np.int64)
    first[rts.route[rts.seq == 1]] = np.flatnonzero(rts.seq == 1)
    town = _town_index((net.nx[net.ea[first]] + net.nx[net.eb[first]]) / 2,
                       (net.ny[net.ea[first]] + net.ny[net.eb[first]]) / 2)
    counter: dict[int, int] = {}
    names = []
    for t in town:
        counter[t] = counter.get(t, 0) + 1
        base = TOWNS[t][0].rstrip("0123456789丁目")  # 番町1丁目 -> 番町
        names.append(f"{base}{counter[t]}号線")
    route_no = np.array([f"{r + 1:05d}" for r in range(nroutes)], dtype=object)
    rno = route_no[rts.route].copy()
    strip = rng.random(n) < 0.02  # leading zeros lost in some rows
    rno[strip] = [s.lstrip("0") or "0" for s in rno[strip]]
    seg_id = np.array([f"{route_no[r]}-{s:03d}" for r, s in zip(rts.route, rts.seq, strict=True)],
                      dtype=object)
    cls = rts.road_class
    width = np.where(cls == "1級", rng.uniform(9.0, 16.0, n),
                     np.where(cls == "2級", rng.uniform(6.0, 9.0, n), rng.uniform(3.5, 6.0, n)))
    width = np.round(width * 2) / 2
    style = rng.choice(4, size=n, p=[0.72, 0.14, 0.09, 0.05])
    wtxt = np.array([f"{w:.1f}m" if s == 0 else _fw(f"{w:.1f}m") if s == 1 else
                     f"W={w:.1f}" if s == 2 else f"{w:.1f}"
                     for w, s in zip(width, style, strict=True)], dtype=object)
    surface = _pick(rng, ["アスファルト", "As", "コンクリート", "砂利"], [88, 6, 5, 1], n)
    month = np.where(rng.random(n) < 0.5, 4, rng.integers(4, 13, n))
    day = np.where(month == 4, 1, rng.integers(1, 29, n))
    dates = np.array([_wareki_date(int(f), int(m), int(d_))
                      for f, m, d_ in zip(rts.fy, month, day, strict=True)], dtype=object)
    df = gpd.GeoDataFrame({
        "区間番号": seg_id, "路線番号": rno, "路線名": np.array(names, dtype=object)[rts.route],
        "道路種別": cls, "幅員": wtxt,
        "延長": np.round(shapely.length(geom) * (1 + rng.normal(0, 0.02, n)), 1),
        "舗装": surface, "供用開始": dates,
    }, geometry=geom)
    # Planted: one segment digitised 20 km north, in the sea off 直島 (outside the city).
    far = df.iloc[[n // 2]].copy()
    far["区間番号"], far["路線番号"], far["路線名"] = "99999-001", "99999", "誤入力線"
    far = far.set_geometry([shapely.affinity.translate(far.geometry.values[0], 0.0, 20000.0)])
    return pd.concat([df, far], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Sewer ledger (下水道台帳): manholes at junctions and mid-block, two pipes per road edge


@dataclass
class Sewer:
    pipes: gpd.GeoDataFrame
    manholes: gpd.GeoDataFrame


def _sewer_material(rng: np.random.Generator, fy: np.ndarray, dia: np.ndarray) -> np.ndarray:
    r = rng.random(len(fy))
    small = dia < 400
    out = np.where(small,
                   np.where(fy < 1975, np.where(r < 0.6, "CP", "HP"),
                            np.where(fy < 1995, np.where(r < 0.7, "VU", "HP"),
                                     np.where(r < 0.85, "VU", "PRP"))),
                   np.where(r < 0.7, "HP", np.where(r < 0.85, "FRPM", "RC"))).astype(object)
    a = rng.random(len(fy))
    out[(out == "HP") & (a < 0.05)] = "ヒューム管"
    out[(out == "VU") & (a < 0.05)] = "ＶＵ"
    out[(out == "CP") & (a < 0.10)] = "陶管"
    return out


def _sewer(world: World, net: Network, rts: Routes, rng: np.random.Generator) -> Sewer:
    flow_d = np.array([DISTRICTS[k].flow for k in net.ed], dtype=object)
    e = np.arange(len(net.ea))
    storm = np.flatnonzero((rts.road_class == "1級") & (flow_d == "汚水"))
    systems = [(e, flow_d[e], (1.5, 1.5)), (storm, np.full(len(storm), "雨水", dtype=object),
                                            (-1.5, 2.5))]
    pipe_parts, mh_parts = [], []
    mh_next = pipe_next = 0
    for edges, flow, (ou, ov) in systems:
        if len(edges) == 0:
            continue
        nodes, inv = np.unique(np.concatenate([net.ea[edges], net.eb[edges]]),
                               return_inverse=True)
        ox, oy = _offset(net.nd[nodes], ou, ov)
        nx_, ny_ = net.nx[nodes] + ox, net.ny[nodes] + oy
        a_l, b_l = inv[:len(edges)], inv[len(edges):]
        mh_x = np.concatenate([nx_, (nx_[a_l] + nx_[b_l]) / 2])
        mh_y = np.concatenate([ny_, (ny_[a_l] + ny_[b_l]) / 2])
        n_mh = len(mh_x)
        mh_ids = np.array([f"MH{mh_next + i + 1:06d}" for i in range(n_mh)], dtype=object)
        mh_next += n_mh
        z = ground_elevation(world, mh_x, mh_y)
        mid = len(nodes) + np.arange(len(edges))
        up_first = z[a_l] >= z[b_l]
        hi, lo = np.where(up_first, a_l, b_l), np.where(up_first, b_l, a_l)
        p_up, p_dn = np.concatenate([hi, mid]), np.concatenate([mid, lo])
        p_edge, p_flow = np.concatenate([edges, edges]), np.concatenate([flow, flow])
        npipe = len(p_up)
        cls = rts.road_class[p_edge]
        if flow[0] == "雨水":
            dia = _pick(rng, [500, 600, 800, 1000, 1200], [20, 30, 25, 15, 10], npipe)
        else:
            comb = p_flow == "合流"
            dia = np.where(comb, np.where(cls == "1級", _pick(rng, [800, 1000, 1200], [40, 40, 20],
                                                               npipe),
                                          _pick(rng, [300, 400, 500], [40, 40, 20], npipe)),
                           np.where(cls == "1級", _pick(rng, [250, 300], [60, 40], npipe),
                                    _pick(rng, [150, 200], [20, 80], npipe)))
        dia = dia.astype(np.int64)
        fy = np.minimum(rts.fy[p_edge] + rng.integers(0, 3, npipe), 2024)
        depth = 1.4 + 0.3 * (np.sin(mh_x / 300.0) + 1)
        big = np.zeros(n_mh)
        np.maximum.at(big, p_up, dia / 1000.0)
        np.maximum.at(big, p_dn, dia / 1000.0)
        inv_mh = z - depth - big
        length = np.hypot(mh_x[p_dn] - mh_x[p_up], mh_y[p_dn] - mh_y[p_up])
        inv_up = inv_mh[p_up] + 0.02
        inv_dn = np.minimum(inv_mh[p_dn], inv_up - np.where(dia >= 400, 0.0012, 0.003) * length)
        inv_node = inv_mh.copy()
        np.minimum.at(inv_node, p_dn, inv_dn)
        unk = rng.random(npipe) < 0.005  # 9999.999: invert not surveyed
        geom = shapely.linestrings(np.stack([np.column_stack([mh_x[p_up], mh_y[p_up]]),
                                             np.column_stack([mh_x[p_dn], mh_y[p_dn]])], axis=1))
        pipes = gpd.GeoDataFrame({
            "管きょ番号": np.array([f"GK{pipe_next + i + 1:06d}" for i in range(npipe)],
                                   dtype=object),
            "上流人孔": mh_ids[p_up], "下流人孔": mh_ids[p_dn], "排除方式": p_flow,
            "管種": _sewer_material(rng, fy, dia), "管径": dia.astype(object),
            "延長": np.round(length * (1 + rng.normal(0, 0.003, npipe)), 2),
            "勾配": np.round((inv_up - inv_dn) / length * 1000.0, 1),
            "上流管底": np.where(unk, 9999.999, np.round(inv_up, 3)),
            "下流管底": np.round(inv_dn, 3),
            "布設年度": _wareki_column(rng, fy),
            "処理区": np.array([DISTRICTS[k].district for k in net.ed[p_edge]], dtype=object),
        }, geometry=shapely.set_precision(geom, 0.001))
        pipe_next += npipe
        mh_fy = np.full(n_mh, 2100)
        np.minimum.at(mh_fy, p_up, fy)
        np.minimum.at(mh_fy, p_dn, fy)
        mh_dia = np.zeros(n_mh)
        np.maximum.at(mh_dia, p_up, dia)
        kind = np.where(mh_dia >= 800, "特殊人孔", np.where(mh_dia >= 500, "2号人孔",
                        np.where(rng.random(n_mh) < 0.15, "小型人孔", "1号人孔")))
        mh_flow = np.full(n_mh, "", dtype=object)
        mh_flow[p_up] = p_flow
        mh_flow[p_dn] = p_flow
        manholes = gpd.GeoDataFrame({
            "人孔番号": mh_ids, "種別": kind.astype(object), "排除方式": mh_flow,
            "地盤高": np.where(rng.random(n_mh) < 0.004, 9999.0, np.round(z, 2)),
            "管底高": np.round(inv_node, 3), "深さ": np.round(z - inv_node, 2),
            "布設年度": _wareki_column(rng, np.minimum(mh_fy, 2024)),
        }, geometry=shapely.set_precision(shapely.points(mh_x, mh_y), 0.001))
        pipe_parts.append(pipes)
        mh_parts.append(manholes)
    pipes = pd.concat(pipe_parts, ignore_index=True)
    manholes = pd.concat(mh_parts, ignore_index=True)
    # Planted (one problem per record): a pipe keyed in twice, an unknown upstream manhole,
    # a diameter typed as text.
    n = len(pipes)
    dup, ref, bad = (int(i) for i in rng.choice(n, size=3, replace=False))
    pipes.loc[ref, "上流人孔"] = "MH999999"
    pipes.loc[bad, "管径"] = "不明"
    pipes = pd.concat([pipes, pipes.loc[[dup]].assign(布設年度="H3")], ignore_index=True)
    # A manhole card without coordinates (no pipe refers to it).
    ghost = manholes.iloc[[0]].copy()
    ghost["人孔番号"] = f"MH{mh_next + 1:06d}"
    ghost["布設年度"] = "不明"
    manholes = pd.concat([manholes, ghost.set_geometry([None])], ignore_index=True)
    return Sewer(pipes=gpd.GeoDataFrame(pipes, geometry="geometry"),
                 manholes=gpd.GeoDataFrame(manholes, geometry="geometry"))


# ---------------------------------------------------------------------------------------------
# Water pipes (水道施設台帳)


def _water(net: Network, rts: Routes, rng: np.random.Generator) -> gpd.GeoDataFrame:
    ne = len(net.ea)
    ox, oy = _offset(net.nd, -2.0, -2.0)
    wx, wy = net.nx + ox, net.ny + oy
    mx, my = (wx[net.ea] + wx[net.eb]) / 2, (wy[net.ea] + wy[net.eb]) / 2
    main = rts.road_class == "1級"
    dia_e = np.where(main, _pick(rng, [200, 250, 300, 400], [35, 30, 25, 10], ne),
                     _pick(rng, [50, 75, 100, 150], [10, 35, 40, 15], ne)).astype(np.int64)
    fy_e = np.minimum(rts.fy + rng.integers(-2, 5, ne), 2024)
    x0 = np.concatenate([wx[net.ea], mx])
    y0 = np.concatenate([wy[net.ea], my])
    x1 = np.concatenate([mx, wx[net.eb]])
    y1 = np.concatenate([my, wy[net.eb]])
    pe = np.concatenate([np.arange(ne), np.arange(ne)])
    dia, fy = dia_e[pe], fy_e[pe]
    cls = np.where(main[pe], "配水本管", "配水支管").astype(object)
    # The transmission main from 御殿浄水場 (internal: not published).
    t = shapely.LineString(_xy(TRANSMISSION))
    k = max(2, int(t.length // 200))
    cxy = shapely.get_coordinates(
        shapely.line_interpolate_point(t, np.linspace(0, t.length, k + 1)))
    x0 = np.concatenate([x0, cxy[:-1, 0]])
    y0 = np.concatenate([y0, cxy[:-1, 1]])
    x1 = np.concatenate([x1, cxy[1:, 0]])
    y1 = np.concatenate([y1, cxy[1:, 1]])
    dia = np.concatenate([dia, np.full(k, 600)])
    fy = np.concatenate([fy, np.full(k, 1965)])
    cls = np.concatenate([cls, np.full(k, "送水管", dtype=object)])
    n = len(x0)
    r = rng.random(n)
    mat = np.where(fy < 1970, np.where(r < 0.5, "CIP", "ACP"),
                   np.where(fy < 1990, np.where(r < 0.7, "DIP", "VP"),
                            np.where(r < 0.6, "DIP", np.where(r < 0.8, "HIVP", "PE"))))
    mat = mat.astype(object)
    mat[cls == "送水管"] = "DIP"
    joint = np.where(mat == "DIP", np.where(fy < 1985, "K", np.where(fy < 2010, "NS", "GX")),
                     np.where(np.isin(mat, ["VP", "HIVP"]), "RR",
                              np.where(mat == "PE", "EF", "K"))).astype(object)
    # Spellings typed over the years in the water mapping system.
    a = rng.random(n)
    mat_txt = mat.copy()
    mat_txt[(mat == "DIP") & (a < 0.10)] = "DCIP"
    mat_txt[(mat == "DIP") & (a > 0.95)] = "ＤＩＰ"
    mat_txt[(mat == "HIVP") & (a < 0.2)] = "HI-VP"
    mat_txt[(mat == "ACP") & (a < 0.3)] = "石綿管"
    status = np.full(n, "使用中", dtype=object)
    status[np.isin(mat, ["ACP", "CIP"]) & (rng.random(n) < 0.15)] = "廃止"
    geom = shapely.linestrings(np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])],
                                        axis=1))
    cover = np.round(np.where(dia >= 300, rng.uniform(1.0, 1.5, n), rng.uniform(0.6, 1.2, n)), 2)
    cover[rng.random(n) < 0.01] = 999.99
    pipes = gpd.GeoDataFrame({
        "管路番号": np.array([f"W{i + 1:07d}" for i in range(n)], dtype=object),
        "管路区分": cls, "管種": mat_txt, "口径": dia.astype(np.int64),
        "延長": np.round(shapely.length(geom) * (1 + rng.normal(0, 0.01, n)), 2),
        "布設年度": _wareki_column(rng, fy), "継手": joint, "土被り": cover, "状態": status,
    }, geometry=shapely.set_precision(geom, 0.001))
    # Planted: a diameter typed as 99999 mm and a material code nobody knows.
    branch = np.flatnonzero((cls == "配水支管") & (status == "使用中"))
    bad_dia, bad_mat = (int(i) for i in rng.choice(branch, size=2, replace=False))
    pipes.loc[bad_dia, "口径"] = 99999
    pipes.loc[bad_mat, "管種"] = "ＸＸ"
    return pipes


# ---------------------------------------------------------------------------------------------
# Parcels (地番図) and the land tax ledger (土地課税台帳)


@dataclass
class Parcels:
    gdf: gpd.GeoDataFrame
    town: np.ndarray
    main: np.ndarray
    branch: np.ndarray
    land: np.ndarray


def _chiban_text(main: np.ndarray, branch: np.ndarray, rng: np.random.Generator,
                 p: list[float]) -> np.ndarray:
    """地番 in the spellings the systems use (the ETL normalises them to "123-4")."""
    s = rng.choice(5, size=len(main), p=np.asarray(p) / sum(p))
    out = np.empty(len(main), dtype=object)
    for i, (m, b, st) in enumerate(zip(main.tolist(), branch.tolist(), s.tolist(), strict=True)):
        if b:
            out[i] = (f"{m}-{b}", f"{m}番{b}", _fw(f"{m}-{b}"), f"{m}の{b}", f"{m}番地{b}")[st]
        else:
            out[i] = (f"{m}", f"{m}番地", _fw(f"{m}"), f"{m}番", f"{m}番地")[st]
    return out


def _parcels(net: Network, rng: np.random.Generator, scale: float) -> Parcels:
    blk = net.blocks
    nb = len(blk)
    per_block = max(400.0, TARGET_PARCELS * scale) / max(nb, 1)
    nv = np.full(nb, 2)
    nu = np.maximum(1, np.round(per_block / 2 + rng.normal(0, 0.7, nb))).astype(np.int64)
    counts = nu * nv
    p = [np.column_stack([net.nx[blk[:, c]], net.ny[blk[:, c]]]) for c in range(4)]
    mu = np.minimum(3.5 / np.hypot(*(p[1] - p[0]).T), 0.15)
    mv = np.minimum(3.5 / np.hypot(*(p[3] - p[0]).T), 0.15)
    b_of = np.repeat(np.arange(nb), counts)
    k_in = np.arange(len(b_of)) - np.repeat(np.cumsum(counts) - counts, counts)
    iu, iv = k_in % nu[b_of], k_in // nu[b_of]

    def corner(fu: np.ndarray, fv: np.ndarray) -> np.ndarray:
        u = mu[b_of] + fu * (1 - 2 * mu[b_of])
        v = mv[b_of] + fv * (1 - 2 * mv[b_of])
        return ((1 - u)[:, None] * (1 - v)[:, None] * p[0][b_of] + u[:, None] * (1 - v)[:, None]
                * p[1][b_of] + u[:, None] * v[:, None] * p[2][b_of] + (1 - u)[:, None]
                * v[:, None] * p[3][b_of])

    u0, u1 = iu / nu[b_of], (iu + 1) / nu[b_of]
    v0, v1 = iv / nv[b_of], (iv + 1) / nv[b_of]
    ring = np.stack([corner(u0, v0), corner(u1, v0), corner(u1, v1), corner(u0, v1),
                     corner(u0, v0)], axis=1)
    geom = shapely.set_precision(shapely.polygons(ring), 0.001, mode="pointwise")
    c = shapely.get_coordinates(shapely.centroid(geom))
    town = _town_index(c[:, 0], c[:, 1])
    # 地番: numbered per town in block order; a third of the lots carry a branch number.
    order = np.lexsort((k_in, b_of, town))
    main = np.zeros(len(geom), dtype=np.int64)
    branch = np.zeros(len(geom), dtype=np.int64)
    has_branch = rng.random(len(geom)) < 0.35
    for t in np.unique(town):
        idx = order[town[order] == t]
        seqn = np.arange(1, len(idx) + 1)
        br = has_branch[idx] & (seqn > 1)
        main_t = np.cumsum(~br)
        main[idx] = main_t + rng.integers(0, 50)  # numbering does not start at 1 everywhere
        # branch numbers count up within one main number
        grp = np.cumsum(~br)
        first = np.r_[0, np.flatnonzero(np.diff(grp)) + 1]
        pos = np.arange(len(idx)) - np.repeat(first, np.diff(np.r_[first, len(idx)]))
        branch[idx] = np.where(pos > 0, pos + 1, 0)
    land = _pick(rng, ["宅地", "宅地", "宅地", "田", "畑", "雑種地", "公衆用道路"],
                 [60, 10, 5, 10, 5, 7, 3], len(geom))
    ids = np.array([f"F{i + 1:07d}" for i in range(len(geom))], dtype=object)
    towns = np.array([TOWNS[t][0] for t in town], dtype=object)
    gdf = gpd.GeoDataFrame({
        "筆ID": ids, "町コード": np.array([f"372013{t + 1:03d}" for t in town], dtype=object),
        "町名": towns, "地番": _chiban_text(main, branch, rng, [70, 12, 8, 6, 4]), "地目": land,
    }, geometry=geom)
    # Planted: one bow-tie parcel (repaired and kept) and one lot whose 地番 was never keyed in.
    bow = int(rng.integers(len(gdf)))
    x0, y0, x1, y1 = shapely.bounds(gdf.geometry.values[bow])
    gdf.loc[bow, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    blank = int((bow + len(gdf) // 2) % len(gdf))
    gdf.loc[blank, "地番"] = ""
    keep = np.ones(len(gdf), dtype=bool)
    keep[blank] = False  # the tax ledger cannot refer to it
    return Parcels(gdf=gdf, town=town, main=np.where(keep, main, -1), branch=branch, land=land)


def _tax(par: Parcels, rng: np.random.Generator) -> pd.DataFrame:
    idx = np.flatnonzero(par.main > 0)
    idx = idx[rng.random(len(idx)) < 0.97]  # public roads and parks are not taxed
    n = len(idx)
    names = np.where(rng.random(n) < 0.08, _pick(rng, COMPANIES, [1] * len(COMPANIES), n),
                     _pick(rng, SURNAMES, [1] * len(SURNAMES), n)
                     + _pick(rng, GIVEN, [1] * len(GIVEN), n))
    towns = np.array([TOWNS[t][0] for t in par.town[idx]], dtype=object)
    addr = np.where(rng.random(n) < 0.85, "香川県高松市" + towns
                    + rng.integers(1, 30, n).astype(str) + "-" + rng.integers(1, 20, n).astype(str),
                    _pick(rng, OTHER_ADDRESSES, [1] * len(OTHER_ADDRESSES), n))
    area = np.round(shapely.area(par.gdf.geometry.values[idx]) * rng.uniform(0.97, 1.03, n), 2)
    unit = np.where(par.land[idx] == "宅地", rng.uniform(60000, 160000, n),
                    rng.uniform(3000, 30000, n))
    value = np.round(area * unit, -2).astype(np.int64)
    town_txt = np.where(rng.random(n) < 0.2, [_fw(t) for t in towns], towns)
    df = pd.DataFrame({
        "物件番号": [f"T{i + 1:08d}" for i in range(n)],
        "町名": town_txt,
        "地番": _chiban_text(par.main[idx], par.branch[idx], rng, [40, 30, 15, 10, 5]),
        "所有者氏名": names, "所有者住所": addr,
        "課税地目": np.where(par.land[idx] == "田", _pick(rng, ["田", "介在田"], [8, 2], n),
                           par.land[idx]),
        "評価額": value, "課税標準額": (value * 0.7).astype(np.int64), "地積": area,
    })
    # Planted: ledger rows whose 地番 matches no parcel (split or merged lots not yet mapped).
    ghosts = df.iloc[:3].copy()
    ghosts["物件番号"] = [f"T{n + i + 1:08d}" for i in range(3)]
    ghosts["地番"] = list(UNMATCHED_CHIBAN)
    return pd.concat([df, ghosts], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Inland-flood assumption (内水浸水想定区域): nested rings around the low spots


def inland_flood_zones() -> gpd.GeoDataFrame:
    """The inland-flood truth polygons (EPSG:6672): one record per connected zone of one rank.

    Rank r covers the union of every low spot's r-th ellipse minus the (r+1)-th, so the zones
    never overlap and a point has one depth, as on the city's map.
    """
    world = load_world()
    land = world.boundary.buffer(-5.0)
    t = np.linspace(0, 2 * np.pi, 73)[:-1]
    spots = _xy([(s[1], s[2]) for s in LOW_SPOTS])
    reach: dict[int, list[shapely.Polygon]] = {r: [] for r in range(1, 6)}
    for n, (_, _, _, radius, deepest, aspect, angle) in enumerate(LOW_SPOTS):
        wobble = 1 + 0.12 * np.sin(3 * t + n) + 0.06 * np.cos(5 * t - n)
        th = math.radians(angle)
        for r in range(1, deepest + 1):
            f = 1.0 - 0.8 * (r - 1) / deepest
            ex, ey = radius * f * aspect * np.cos(t) * wobble, radius * f * np.sin(t) * wobble
            reach[r].append(shapely.Polygon(np.column_stack(
                [spots[n, 0] + ex * math.cos(th) - ey * math.sin(th),
                 spots[n, 1] + ex * math.sin(th) + ey * math.cos(th)])))
    union = {r: shapely.intersection(shapely.union_all(p), land) if p else shapely.Polygon()
             for r, p in reach.items()}
    rows = []
    for r in range(1, 5):
        zone = shapely.set_precision(union[r].difference(union[r + 1]), 0.001)
        parts = sorted((p for p in shapely.get_parts(zone) if p.area > 100.0),
                       key=lambda p: (round(p.centroid.x), round(p.centroid.y)))
        lo, hi = {1: (0.1, 0.2), 2: (0.2, 0.5), 3: (0.5, 1.0), 4: (1.0, 2.0)}[r]
        for k, part in enumerate(parts, start=1):
            c = shapely.get_coordinates(part.centroid)[0]
            near = int(((spots - c) ** 2).sum(axis=1).argmin())
            rows.append({"区域番号": f"NS-{r}-{k:03d}", "地区": LOW_SPOTS[near][0], "ランク": r,
                         "浸水深": f"{lo}m以上{hi}m未満", "想定降雨": RAINFALL,
                         "作成年月": "H30.3", "geometry": part})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=TARGET_CRS)


# ---------------------------------------------------------------------------------------------
# Entry point


def generate(out_dir: Path, *, scale: float = 1.0, seed: int = 42,
             progress: Progress | None = None) -> dict[str, int]:
    """Write the sample exports and the real open data under ``out_dir``; records per file.

    ``scale`` multiplies the network and parcel counts (1.0 ≈ central Takamatsu); ``seed`` gives
    a different but equally deterministic town. ``progress(file, done, total)`` follows each file.
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0 (got {scale})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = load_world()
    net = build_network(world, scale, seed)
    rts = _routes(net, np.random.default_rng([seed, 2]))
    counts: dict[str, int] = {}

    def done(rel: str, n: int) -> None:
        counts[rel] = n
        if progress:
            progress(rel, len(counts), len(FILES))

    roads = _roads(net, rts, np.random.default_rng([seed, 3]))
    _write_shp(roads, out / ROAD, crs=TARGET_CRS)
    done(ROAD, len(roads))
    water = _water(net, rts, np.random.default_rng([seed, 4]))
    _write_shp(water, out / WATER_PIPE, crs=TARGET_CRS)
    done(WATER_PIPE, len(water))
    sewer = _sewer(world, net, rts, np.random.default_rng([seed, 5]))
    _write_shp(sewer.pipes, out / SEWER_PIPE, crs=None)  # the sewer system writes no .prj
    done(SEWER_PIPE, len(sewer.pipes))
    _write_shp(sewer.manholes, out / SEWER_MANHOLE, crs=None)
    done(SEWER_MANHOLE, len(sewer.manholes))
    par = _parcels(net, np.random.default_rng([seed, 6]), scale)
    _write_shp(par.gdf, out / PARCEL, crs=TARGET_CRS)
    done(PARCEL, len(par.gdf))
    tax = _tax(par, np.random.default_rng([seed, 7]))
    _write_csv(tax, out / TAX)
    done(TAX, len(tax))
    # JGD2000 plane IV: PatchJGD has no correction here, so the numbers are the JGD2011 truth.
    zones = inland_flood_zones()
    _write_shp(zones, out / INLAND_FLOOD, crs=JGD2000_CRS)
    done(INLAND_FLOOD, len(zones))
    for rel, name in REAL_FILES.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REFERENCE_DIR / name, out / rel)
        done(rel, REAL_RECORDS[name])
    return counts
