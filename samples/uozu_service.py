"""Uozu sample: the service connections firms ask for at the counter (給水装置, 取付管, 公共ます).

Called by :func:`samples.uozu.generate` with the truth geometry of the parcels and the pipes it
has just made; returns the exports of two more ledgers, written the way their systems write them:

* 給水装置台帳 (the water mapping system's service module, JGD2000 zone VII with ``.prj``):
  ``water/KYUSUI_KAN.shp`` 給水管 (service pipes: from the distribution main to the meter) and
  ``water/RYOSUIKI.shp`` 量水器 (meters, about a metre inside the lot);
* 下水道台帳 (sewer ledger system, Tokyo datum zone VII, no ``.prj``): ``sewer/KOKYO_MASU.shp``
  公共ます (public inlets inside the lot line) and ``sewer/TORITSUKE.shp`` 取付管 (laterals from
  the inlet to the sewer main).

Which lots: built-up lots (地目 宅地, and some 雑種地) within reach of a distribution main in use
(30 m) or of a sanitary / combined sewer (25 m). The meter and the inlet sit on the side of the
lot facing the pipe, 1 m inside its boundary; a service pipe bends at the lot line. Customer
numbers and names are in the exports (as in the real ledgers) and kept internal by the specs.

Deterministic: the same inputs and ``rng`` give the same files. Dates are 和暦 letters (S55,
H12, R3) as these ledgers write them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

# Raw files (relative to out_dir). layers/water_service.yml ... read these paths.
WATER_SERVICE = "water/KYUSUI_KAN.shp"
WATER_METER = "water/RYOSUIKI.shp"
SEWER_INLET = "sewer/KOKYO_MASU.shp"
SEWER_LATERAL = "sewer/TORITSUKE.shp"
FILES = (WATER_SERVICE, WATER_METER, SEWER_INLET, SEWER_LATERAL)

WATER_REACH_M = 30.0  # a lot farther from every distribution main has no service pipe
SEWER_REACH_M = 25.0
INSIDE_M = 1.0  # meters and inlets sit this far inside the lot line
BUILT = {"宅地": 0.96, "雑種地": 0.3}  # share of lots of that 地目 with a connection

SURNAMES = ["山田", "佐藤", "髙橋", "中村", "浜田", "松井", "清水", "吉田", "森", "林"]
GIVEN = ["太郎", "花子", "誠", "修", "裕子", "博", "健一", "由美"]


@dataclass
class ServiceExports:
    """The four exports (truth geometry, target CRS; ``write`` converts the datum)."""

    service_pipes: gpd.GeoDataFrame
    meters: gpd.GeoDataFrame
    inlets: gpd.GeoDataFrame
    laterals: gpd.GeoDataFrame


def wareki(fy: np.ndarray) -> np.ndarray:
    """Fiscal years as the ledgers letter them: 1980 -> S55, 1989 -> H1, 2019 -> R1."""
    out = np.empty(len(fy), dtype=object)
    for i, y in enumerate(fy.tolist()):
        out[i] = (f"R{y - 2018}" if y >= 2019 else f"H{y - 1988}" if y >= 1989
                  else f"S{y - 1925}")
    return out


def _pick(rng: np.random.Generator, choices: list, p: list[float], n: int) -> np.ndarray:
    w = np.asarray(p, dtype=float)
    return np.asarray(choices, dtype=object)[rng.choice(len(choices), size=n, p=w / w.sum())]


def _served(parcels: gpd.GeoDataFrame, rng: np.random.Generator) -> np.ndarray:
    """Indices of the lots with a building (by 地目), in parcel order."""
    share = parcels["地目"].map(BUILT).fillna(0.0).to_numpy(float)
    return np.flatnonzero(rng.random(len(parcels)) < share)


def _connect(lots: np.ndarray, pipes: np.ndarray, reach: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each lot: its nearest pipe within ``reach`` -> (lot index, pipe index, point on the
    pipe, point on the lot line, point ``INSIDE_M`` inside the lot)."""
    tree = shapely.STRtree(pipes)
    li, pi = tree.query_nearest(lots, max_distance=reach, all_matches=False)
    if len(li) == 0:
        z = np.zeros((0, 2))
        return li, pi, z, z, z
    link = shapely.shortest_line(lots[li], pipes[pi])  # lot line -> pipe
    on_lot = shapely.get_coordinates(shapely.get_point(link, 0))
    on_pipe = shapely.get_coordinates(shapely.get_point(link, 1))
    inner = shapely.get_coordinates(shapely.point_on_surface(lots[li]))
    d = inner - on_lot
    norm = np.hypot(d[:, 0], d[:, 1])
    step = np.minimum(INSIDE_M, norm * 0.5)[:, None]
    inside = on_lot + d / np.where(norm > 0, norm, 1.0)[:, None] * step
    # a lot touching the pipe (distance 0): step in from the point anyway
    return li, pi, on_pipe, on_lot, inside


def frames(parcels: gpd.GeoDataFrame, water_pipes: gpd.GeoDataFrame,
           sewer_pipes: gpd.GeoDataFrame, rng: np.random.Generator) -> ServiceExports:
    """The four exports for ``parcels`` (地番図 truth: 大字名, 地番, 地目), the water pipes
    (管路番号, 管路区分, 状態) and the sewer pipes (管渠番号, 排除方式), all in the target CRS."""
    lots_all = parcels.geometry.values
    served = _served(parcels, rng)
    lots = lots_all[served]

    # --- 給水装置: service pipe main -> lot line -> meter; the meter inside the lot
    mains = water_pipes[water_pipes["管路区分"].isin(["配水本管", "配水支管"])
                        & (water_pipes["状態"] == "使用中")].reset_index(drop=True)
    li, pi, on_main, on_line, meter_xy = _connect(lots, mains.geometry.values, WATER_REACH_M)
    n = len(li)
    lot = served[li]
    fy = rng.integers(1962, 2024, n)
    dia = _pick(rng, [13, 20, 25, 40, 50], [45, 38, 11, 4, 2], n).astype(np.int64)
    r = rng.random(n)
    mat = np.where(fy < 1980, np.where(r < 0.35, "LP", "SGP"),
                   np.where(r < 0.5, "PE", np.where(r < 0.65, "HIVP", np.where(
                       r < 0.8, "XPEP", np.where(r < 0.9, "PBP", np.where(r < 0.97, "SSP",
                                                                         "CU"))))))
    geom = shapely.linestrings(np.stack([on_main, on_line, meter_xy], axis=1))
    cust = np.array([f"{7_000_000 + i * 7 + int(rng.integers(0, 7)):08d}" for i in range(n)],
                    dtype=object)
    pipe_ids = np.array([f"KS{i + 1:07d}" for i in range(n)], dtype=object)
    meter_ids = np.array([f"RM{i + 1:07d}" for i in range(n)], dtype=object)
    oaza = parcels["大字名"].to_numpy(object)[lot]
    chiban = parcels["地番"].to_numpy(object)[lot]
    names = np.array([f"{SURNAMES[a]}　{GIVEN[b]}" for a, b in zip(
        rng.integers(0, len(SURNAMES), n), rng.integers(0, len(GIVEN), n), strict=True)],
        dtype=object)
    service = gpd.GeoDataFrame({
        "給水番号": pipe_ids, "取出管路": mains["管路番号"].to_numpy(object)[pi],
        "量水器番号": meter_ids, "口径": dia, "管種": mat.astype(object),
        "延長": np.round(shapely.length(geom), 2),
        "土被り": np.round(rng.uniform(0.3, 0.9, n), 2),
        "布設年度": wareki(fy), "大字名": oaza, "地番": chiban,
        "水栓番号": cust, "使用者名": names,
    }, geometry=geom)
    meter_dia = np.where(dia >= 40, _pick(rng, [25, 40], [30, 70], n), np.minimum(dia, 25))
    m_fy = np.maximum(fy, 2024 - rng.integers(1, 9, n))  # meters are replaced every 8 years
    meters = gpd.GeoDataFrame({
        "量水器番号": meter_ids, "口径": meter_dia.astype(np.int64), "設置年度": wareki(m_fy),
        "大字名": oaza, "地番": chiban, "水栓番号": cust,
    }, geometry=shapely.points(meter_xy))

    # --- 公共ます and 取付管: inlet inside the lot -> the sanitary / combined sewer
    sewers = sewer_pipes[sewer_pipes["排除方式"].isin(["汚水", "合流"])
                         & sewer_pipes.geometry.notna()].drop_duplicates("管渠番号")
    sewers = sewers.reset_index(drop=True)
    keep = rng.random(len(lots)) < 0.93
    s_lots = np.flatnonzero(keep)
    li, pi, on_sewer, _, inlet_xy = _connect(lots[s_lots], sewers.geometry.values,
                                             SEWER_REACH_M)
    k = len(li)
    lot = served[s_lots[li]]
    fy = rng.integers(1975, 2024, k)
    flow = sewers["排除方式"].to_numpy(object)[pi]
    inlet_ids = np.array([f"PM{i + 1:07d}" for i in range(k)], dtype=object)
    inlets = gpd.GeoDataFrame({
        "ます番号": inlet_ids,
        "種別": np.where(flow == "合流", "合流ます", "汚水ます").astype(object),
        "材質": np.where(fy < 1995, _pick(rng, ["コンクリート製", "塩ビ製"], [70, 30], k),
                         _pick(rng, ["塩ビ製", "コンクリート製"], [92, 8], k)).astype(object),
        "内径": _pick(rng, [150, 200, 300], [55, 35, 10], k).astype(np.int64),
        "深さ": np.round(rng.uniform(0.6, 1.3, k), 2),
        "設置年度": wareki(fy),
        "大字名": parcels["大字名"].to_numpy(object)[lot],
        "地番": parcels["地番"].to_numpy(object)[lot],
    }, geometry=shapely.points(inlet_xy))
    geom = shapely.linestrings(np.stack([inlet_xy, on_sewer], axis=1))
    laterals = gpd.GeoDataFrame({
        "取付管番号": np.array([f"TK{i + 1:07d}" for i in range(k)], dtype=object),
        "ます番号": inlet_ids, "接続管渠": sewers["管渠番号"].to_numpy(object)[pi],
        "排除方式": flow,
        "管種": np.where((fy < 1985) & (rng.random(k) < 0.4), "HP", "VU").astype(object),
        "管径": _pick(rng, [150, 200], [88, 12], k).astype(np.int64),
        "延長": np.round(shapely.length(geom), 2),
        "勾配": np.round(rng.uniform(10.0, 30.0, k), 1),
        "布設年度": wareki(fy),
        "大字名": parcels["大字名"].to_numpy(object)[lot],
        "地番": parcels["地番"].to_numpy(object)[lot],
    }, geometry=geom)
    return ServiceExports(service, meters, inlets, laterals)


Transform = Callable[[np.ndarray], np.ndarray]
WriteShp = Callable[[gpd.GeoDataFrame, Path], None]


def write(out: Path, ex: ServiceExports, *, to_jgd2000: Transform, to_tokyo: Transform,
          write_shp: WriteShp) -> dict[str, int]:
    """Write the exports under ``out`` (the water ones in JGD2000 with ``.prj``, the sewer ones
    in the Tokyo datum without): record counts per file."""
    counts: dict[str, int] = {}
    for rel, gdf, to, crs in ((WATER_SERVICE, ex.service_pipes, to_jgd2000, "EPSG:2449"),
                              (WATER_METER, ex.meters, to_jgd2000, "EPSG:2449"),
                              (SEWER_INLET, ex.inlets, to_tokyo, None),
                              (SEWER_LATERAL, ex.laterals, to_tokyo, None)):
        g = gpd.GeoDataFrame(gdf.drop(columns="geometry"), geometry=to(gdf.geometry.values),
                             crs=crs)
        write_shp(g, out / rel)
        counts[rel] = len(g)
    return counts
