"""The page archive's merge of single-layer archives, streamed tile by tile (issue 17): the same
bytes as merging with every tile held in memory (the former :func:`publish.build.tiles._merge`).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from publish.build import tiles as vtiles


def _held_merge(parts: list[Path], out: Path, metadata: dict) -> tuple[int, int, int]:
    """The former merge: every part's tiles decompressed into one dict, then written sorted."""
    tiles: dict[int, list[bytes]] = {}
    zooms: set[int] = set()
    bounds = [180.0, 90.0, -180.0, -90.0]
    for part in parts:
        with part.open("rb") as f:
            reader = Reader(MmapSource(f))
            h = reader.header()
            bounds = [min(bounds[0], h["min_lon_e7"] / 1e7), min(bounds[1], h["min_lat_e7"] / 1e7),
                      max(bounds[2], h["max_lon_e7"] / 1e7), max(bounds[3], h["max_lat_e7"] / 1e7)]
            for (z, x, y), data in all_tiles(reader.get_bytes):
                tiles.setdefault(zxy_to_tileid(z, x, y), []).append(gzip.decompress(data))
                zooms.add(z)
    with out.open("wb") as f:
        w = Writer(f)
        for tid in sorted(tiles):
            w.write_tile(tid, gzip.compress(b"".join(tiles[tid]), compresslevel=9, mtime=0))
        lo, hi = min(zooms), max(zooms)
        w.finalize({
            "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
            "min_lon_e7": int(bounds[0] * 1e7), "min_lat_e7": int(bounds[1] * 1e7),
            "max_lon_e7": int(bounds[2] * 1e7), "max_lat_e7": int(bounds[3] * 1e7),
            "center_zoom": max(lo, min(hi, vtiles.CITY_DATA_ZOOM)),
            "center_lon_e7": int((bounds[0] + bounds[2]) / 2 * 1e7),
            "center_lat_e7": int((bounds[1] + bounds[3]) / 2 * 1e7)}, metadata)
    return lo, hi, len(tiles)


def _parts(tmp: Path) -> list[Path]:
    """Three single-layer archives over one town: lines (two zoom bands) and points."""
    rng = np.random.default_rng(7)
    x0, y0 = 137.40, 36.80
    xs, ys = x0 + rng.random(300) * 0.05, y0 + rng.random(300) * 0.04
    lines = gpd.GeoDataFrame(
        {"fid": [f"L{i}" for i in range(300)], "kind": [f"k{i % 3}" for i in range(300)]},
        geometry=shapely.linestrings(np.stack([np.stack([xs, ys], 1),
                                               np.stack([xs + 0.002, ys + 0.001], 1)], 1)),
        crs="OGC:CRS84")
    points = gpd.GeoDataFrame({"fid": [f"P{i}" for i in range(200)]},
                              geometry=shapely.points(xs[:200], ys[:200]), crs="OGC:CRS84")
    out = []
    for name, gdf, lo, hi, general in (("lines.detail", lines, 13, 15, False),
                                       ("lines.general", lines, 10, 12, True),
                                       ("points.detail", points, 12, 15, False)):
        p = tmp / f"{name}.pmtiles"
        vtiles._write_band(gdf, p, name.split(".")[0], lo, hi, general=general)
        out.append(p)
    return out


def test_streamed_merge_writes_the_bytes_of_the_held_merge(tmp_path: Path) -> None:
    parts = _parts(tmp_path)
    meta = {"name": "t", "vector_layers": [{"id": "lines"}, {"id": "points"}]}
    for order in (parts, parts[::-1]):  # each tile's layers concatenated in the parts' order
        want = _held_merge(order, tmp_path / "held.pmtiles", meta)
        got = vtiles._merge(order, tmp_path / "streamed.pmtiles", meta)
        assert got == want and want[2] > 10
        assert (tmp_path / "streamed.pmtiles").read_bytes() == \
            (tmp_path / "held.pmtiles").read_bytes()
