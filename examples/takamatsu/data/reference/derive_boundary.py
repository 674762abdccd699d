"""How ``takamatsu_boundary_n03.geojson`` was derived from the 国土数値情報 N03 file (run once).

The upstream file (kozy4324/gyosei-kuiki-geojson @ 500d65f, ``data/37201.geojson``, 2.96 MB,
sha256 ``2c2924728f83b50a10fdc2c04cf64399209a0d67704e57a48a88ff9b956631f3``) stores the city as
ONE Polygon whose 161 rings are really separate parts (the mainland, 女木島, 男木島, 大島 and
small islets and breakwaters), not holes. This script makes each ring a polygon, keeps the parts
of at least 1,000 m² (17 parts; 0.007 km² of specks dropped), simplifies them by 5 m in the
city's plane zone (far below the ETL's 500 m boundary margin) and writes a MultiPolygon with
seven decimals (≈1 cm). The result: 85 KB, 375.35 km² (the official area is 375.41 km²).

Usage: python derive_boundary.py 37201.geojson takamatsu_boundary_n03.geojson
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer

PLANE = "EPSG:6672"  # JGD2011 / Japan Plane Rectangular CS IV
MIN_AREA_M2 = 1000.0
TOLERANCE_M = 5.0


def derive(src: Path, dst: Path) -> None:
    data = json.loads(src.read_text(encoding="utf-8"))
    feature = data["features"][0]
    fwd = Transformer.from_crs("EPSG:6668", PLANE, always_xy=True)
    inv = Transformer.from_crs(PLANE, "EPSG:6668", always_xy=True)
    parts = []
    for ring in feature["geometry"]["coordinates"]:
        a = np.asarray(ring, dtype=float)
        x, y = fwd.transform(a[:, 0], a[:, 1])
        poly = shapely.Polygon(np.column_stack([x, y]))
        if poly.area >= MIN_AREA_M2:
            parts.append(shapely.simplify(poly, TOLERANCE_M, preserve_topology=True))
    parts.sort(key=lambda p: -p.area)
    coords = []
    for p in parts:
        c = np.asarray(p.exterior.coords)
        lon, lat = inv.transform(c[:, 0], c[:, 1])
        coords.append([[[round(a, 7), round(b, 7)] for a, b in zip(lon, lat, strict=True)]])
    out = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": feature["properties"],
        "geometry": {"type": "MultiPolygon", "coordinates": coords}}]}
    dst.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


if __name__ == "__main__":
    derive(Path(sys.argv[1]), Path(sys.argv[2]))
