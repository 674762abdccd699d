"""Vector tiles of the public layers, written at publish: one PMTiles archive per map page.

Why tiles: a phone on a slow network must see a whole city's network (~85k public features) at
city zoom; GeoJSON by view cannot (performance-anchors §4), a tile pyramid can. Why PMTiles: one
immutable file in the release, served by the same server with HTTP range requests (no tile
server), read by the page's vendored ``protomaps-leaflet`` and by GDAL and QGIS alike.

How: every layer is written by GDAL's PMTiles driver (pyogrio's bundled GDAL) in one or two
zoom bands, then the single-layer archives are merged tile by tile into the page's archive with
the ``pmtiles`` package (an MVT tile is a protobuf message whose only top-level field is the
repeated ``layers``, so the concatenation of two tiles is the tile holding both layers):

* **detail** zooms: every feature with the columns the page reads (popups, colours, labels)
  and its public id: what a tap lists comes from here;
* **general** zooms (layers larger than :data:`SMALL_LAYER`, below ``detail_zoom``): features
  dissolved by their style columns and lines merged: the whole network of a city at zoom 12 in
  tens of kilobytes instead of hundreds, drawn exactly as the detail (same colours and widths).

Zooms are *data* zooms: the page draws data tile z at display zoom z + 1 (512 px tiles) and
over-zooms the finest (:data:`MAX_DATA_ZOOM`) to street level.

Nothing here reads the master: the input is the public store (allow-listed), and
:func:`check_tiles` re-opens the archive with GDAL and fails the publish unless it holds exactly
the expected layers, no column outside the allow-list and every public feature at the finest
zoom (tiles are part of the atomic release and of its leak check).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import heapq
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType, tileid_to_zxy, zxy_to_tileid
from pmtiles.writer import Writer
from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError

from config import Project
from publish.errors import LeakCheckError, PublishError
from publish.model import ID_COLUMN
from publish.pages import roles
from publish.pages.page import (
    TileRequest,
    page_tile_requests,
    read_tables,
    tile_manifest,
)

MAX_DATA_ZOOM = 15  # finest data zoom (display 16, ~2 cm per unit); over-zoomed beyond
CITY_DATA_ZOOM = 11  # display 12: a whole city on a phone
REGION_DATA_ZOOM = 8  # display 9: small layers (zones, shelters) show from a region's view
SMALL_LAYER = 2000  # up to this many features a layer carries every feature at every zoom
DETAIL_EXTENT = 4096
GENERAL_EXTENT = 1024  # half a pixel at the general zooms: plenty for a dissolved network
#: up to this data zoom (display 13: a city on a phone) the general tiles use a coarser grid
#: (2 px): a dense network is a mass of lines there, and its bytes decide when it is drawn
#: (10x the sample data: 745 KB -> 365 KB for the whole city at display zoom 13)
COARSE_MAX_ZOOM = 12
COARSE_EXTENT = 256
GENERAL_SIMPLIFY = 1  # tile units (GDAL's SIMPLIFICATION) at the general zooms
#: the column GDAL adds when it reads MVT: the tile's feature id, which we never write (the
#: public id is the ``fid`` property; the store's row id is not served)
GDAL_MVT_ID = "mvt_id"


@dataclass(frozen=True)
class TileLayer:
    """What to write for one layer: its columns, the style columns and its zoom bands."""

    id: str
    columns: tuple[str, ...]  # per feature at detail zooms (public columns; the id is added)
    style: tuple[str, ...]  # what the general zooms keep (colour, width, rank, group)
    min_zoom: int  # data zoom where the layer starts
    detail_zoom: int  # data zoom from which every feature is its own, with ``columns``
    geometry: str  # point | line | polygon
    max_zoom: int = MAX_DATA_ZOOM


@dataclass
class TileSet:
    """The written archive: file, size, zooms and per-layer zoom bands (for the page config)."""

    path: Path
    bytes: int
    min_zoom: int
    max_zoom: int
    layers: dict[str, dict[str, int]] = field(default_factory=dict)
    tiles: int = 0


def data_zoom(display_zoom: int) -> int:
    """The data zoom drawn at ``display_zoom`` (512 px tiles: one level coarser)."""
    return max(0, min(MAX_DATA_ZOOM, display_zoom - 1))


def plan_layer(req: TileRequest) -> TileLayer:
    """Zoom bands of one layer: small layers are detailed everywhere (from a region's zoom),
    large ones generalised below the detail zoom and never below the city zoom (nobody reads a
    country of pipes)."""
    small = req.count <= SMALL_LAYER
    floor = REGION_DATA_ZOOM if small else min(CITY_DATA_ZOOM, data_zoom(req.detail_zoom))
    lo = max(data_zoom(req.min_zoom), floor)
    detail = lo if small else max(lo, data_zoom(req.detail_zoom))
    cols = tuple(dict.fromkeys(c for c in req.columns if c != ID_COLUMN))
    return TileLayer(req.id, cols, tuple(dict.fromkeys(req.style)), lo, detail, req.geometry)


def _read(store: Path, layer: TileLayer, columns: Sequence[str]) -> gpd.GeoDataFrame:
    gdf = pyogrio.read_dataframe(store, layer=layer.id, columns=list(columns))
    return gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]


def _general(gdf: gpd.GeoDataFrame, layer: TileLayer) -> gpd.GeoDataFrame:
    """Features dissolved by the style columns: one feature per style (per merged line)."""
    style = [c for c in layer.style if c in gdf.columns]
    if not style:
        out = gpd.GeoDataFrame(geometry=[shapely.union_all(gdf.geometry.values)], crs=gdf.crs)
    else:
        out = gdf[[*style, "geometry"]].dissolve(by=style, as_index=False, dropna=False)
    if layer.geometry == "line":
        out["geometry"] = shapely.line_merge(out.geometry.values)
        # one feature per merged line: GDAL's MVT writer drops parts of a many-part
        # MultiLineString in some tiles (the whole-network-at-city-zoom test found 0.1-0.6 %
        # of the water mains missing)
        out = out.explode(index_parts=False).reset_index(drop=True)
    return out


def _write_band(gdf: gpd.GeoDataFrame, path: Path, name: str, lo: int, hi: int, *,
                general: bool, extent: int | None = None) -> None:
    opts = {"MINZOOM": str(lo), "MAXZOOM": str(hi), "NAME": name,
            "EXTENT": str(extent or (GENERAL_EXTENT if general else DETAIL_EXTENT))}
    if general:
        opts["SIMPLIFICATION"] = str(GENERAL_SIMPLIFY)
    # GDAL's MVT writer gives up a feature rather than write an oversized tile: the limits are
    # raised here, and check_tiles proves that every feature reached the finest zoom
    opts["MAX_SIZE"] = str(8_000_000)
    opts["MAX_FEATURES"] = str(10_000_000)
    pyogrio.write_dataframe(gdf, path, driver="PMTiles", layer=name, dataset_options=opts)


def _part_tiles(reader: Reader, index: int) -> Iterator[tuple[int, int, bytes]]:
    """(tile id, part index, gzip'd tile) of one part, in tile id order (a PMTiles directory
    is sorted by tile id, and :func:`all_tiles` walks it in order)."""
    for (z, x, y), data in all_tiles(reader.get_bytes):
        yield zxy_to_tileid(z, x, y), index, data


def _merge(parts: list[Path], out: Path, metadata: dict) -> tuple[int, int, int]:
    """One archive from single-layer ones: per tile, the concatenation of the parts' tiles.

    The parts are read side by side in tile id order (a k-way merge), so one tile at a time is
    held, never the archive (at 1M features its decompressed tiles were hundreds of MB); each
    tile's layers are concatenated in the order of ``parts``, as before."""
    zooms: set[int] = set()
    bounds = [180.0, 90.0, -180.0, -90.0]
    count = 0
    tmp = out.with_suffix(".tmp")
    with contextlib.ExitStack() as stack:
        readers = []
        for part in parts:
            f = stack.enter_context(part.open("rb"))
            reader = Reader(MmapSource(f))
            h = reader.header()
            if h["tile_compression"] != Compression.GZIP:
                raise PublishError("tiles_failed", layer=part.stem,
                                   error=f"compression {h['tile_compression']}")
            bounds = [min(bounds[0], h["min_lon_e7"] / 1e7), min(bounds[1], h["min_lat_e7"] / 1e7),
                      max(bounds[2], h["max_lon_e7"] / 1e7), max(bounds[3], h["max_lat_e7"] / 1e7)]
            readers.append(reader)
        merged = heapq.merge(*(_part_tiles(r, i) for i, r in enumerate(readers)))
        with tmp.open("wb") as fo:
            w = Writer(fo)
            for tid, group in itertools.groupby(merged, key=lambda t: t[0]):
                body = b"".join(gzip.decompress(data) for _, _, data in group)
                w.write_tile(tid, gzip.compress(body, compresslevel=9, mtime=0))
                zooms.add(tileid_to_zxy(tid)[0])
                count += 1
            lo, hi = min(zooms), max(zooms)
            centre_zoom = max(lo, min(hi, CITY_DATA_ZOOM))
            w.finalize({
                "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
                "min_lon_e7": int(bounds[0] * 1e7), "min_lat_e7": int(bounds[1] * 1e7),
                "max_lon_e7": int(bounds[2] * 1e7), "max_lat_e7": int(bounds[3] * 1e7),
                "center_zoom": centre_zoom,
                "center_lon_e7": int((bounds[0] + bounds[2]) / 2 * 1e7),
                "center_lat_e7": int((bounds[1] + bounds[3]) / 2 * 1e7)}, metadata)
    tmp.replace(out)
    return lo, hi, count


def write_tiles(store: Path, layers: Sequence[TileLayer], out_dir: Path, name: str, *,
                title: str = "", attribution: str = "") -> TileSet:
    """Write ``out_dir/<name>.<hash>.pmtiles`` (the hash makes the URL immutable) and check it.

    Raises :class:`PublishError` (bilingual, naming the layer) if GDAL cannot write a layer.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out_dir))
    try:
        parts: list[Path] = []
        vector_layers = []
        bands: dict[str, dict[str, int]] = {}
        for lay in layers:
            cols = [ID_COLUMN, *lay.columns]
            try:
                gdf = _read(store, lay, cols)
                if gdf.empty:
                    continue
                if lay.detail_zoom <= lay.max_zoom:
                    p = work / f"{lay.id}.detail.pmtiles"
                    _write_band(gdf, p, lay.id, lay.detail_zoom, lay.max_zoom, general=False)
                    parts.append(p)
                if lay.min_zoom < lay.detail_zoom:
                    general = _general(gdf, lay)
                    hi = lay.detail_zoom - 1
                    coarse_hi = min(hi, COARSE_MAX_ZOOM)
                    if lay.min_zoom <= coarse_hi:
                        p = work / f"{lay.id}.coarse.pmtiles"
                        _write_band(general, p, lay.id, lay.min_zoom, coarse_hi, general=True,
                                    extent=COARSE_EXTENT)
                        parts.append(p)
                    if coarse_hi < hi:
                        p = work / f"{lay.id}.general.pmtiles"
                        _write_band(general, p, lay.id, max(lay.min_zoom, coarse_hi + 1), hi,
                                    general=True)
                        parts.append(p)
            except (DataSourceError, DataLayerError, FieldError, GeometryError, OSError) as e:
                raise PublishError("tiles_failed", layer=lay.id, error=str(e)) from e
            bands[lay.id] = {"minzoom": lay.min_zoom, "detailzoom": lay.detail_zoom,
                             "maxzoom": lay.max_zoom}
            vector_layers.append({"id": lay.id, "minzoom": lay.min_zoom, "maxzoom": lay.max_zoom,
                                  "fields": {c: "String" for c in cols}})
        if not parts:
            raise PublishError("tiles_empty", page=name)
        merged = work / f"{name}.pmtiles"
        meta = {"name": title or name, "attribution": attribution, "type": "overlay",
                "format": "pbf", "vector_layers": vector_layers}
        lo, hi, count = _merge(parts, merged, meta)
        digest = _digest(merged)
        final = out_dir / f"{name}.{digest}.pmtiles"
        for old in out_dir.glob(f"{name}.*.pmtiles"):  # a rebuilt page in the same folder
            if old != final:
                old.unlink()
        os.replace(merged, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return TileSet(final, final.stat().st_size, lo, hi, bands, count)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:10]


def _layer_in_tiles(path: Path, lay: str) -> tuple[set[str], bool, int]:
    """GDAL's reading of one layer at the finest zoom: (its fields, whether a feature carries a
    store row id, how many distinct public ids).

    One read with every field, through Arrow: GDAL then neither counts the features first nor
    is asked for the schema separately (each of those walks every tile of the archive again).
    """
    df = pyogrio.read_dataframe(path, layer=lay, read_geometry=False, use_arrow=True,
                                ZOOM_LEVEL=str(MAX_DATA_ZOOM))
    row_id = GDAL_MVT_ID in df.columns and bool(df[GDAL_MVT_ID].notna().any())
    ids = int(df[ID_COLUMN].nunique()) if ID_COLUMN in df.columns else 0
    return set(df.columns), row_id, ids


def check_tiles(path: Path, allowed: dict[str, set[str]], counts: dict[str, int]) -> None:
    """Leak check and completeness, read back through GDAL (not through our writer).

    ``allowed``: layer -> public columns (the allow-list); ``counts``: layer -> features in the
    public store. Fails unless the archive holds exactly those layers, only allowed columns and,
    at the finest zoom, every public feature id of every layer. Layers are read in parallel
    (GDAL releases the GIL while it decodes tiles); the first failing layer in name order is
    reported, whatever the order they finish in.
    """
    got = {name for name, _ in pyogrio.list_layers(path)}
    if got != set(counts):
        extra = sorted(got - set(counts))
        if extra:
            raise LeakCheckError("tiles_leak", path=path.name, what=", ".join(extra))
        raise PublishError("tiles_incomplete", path=path.name, layer=", ".join(
            sorted(set(counts) - got)), have=0, want=max(counts.values(), default=0))
    names = sorted(got)
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1))) as pool:
        read = list(pool.map(lambda lay: _layer_in_tiles(path, lay), names))
    for lay, (fields, row_id, have) in zip(names, read, strict=True):
        bad = sorted(fields - allowed.get(lay, set()) - {ID_COLUMN, GDAL_MVT_ID})
        if bad:
            raise LeakCheckError("tiles_leak", path=path.name, what=f"{lay}: {', '.join(bad)}")
        if row_id:  # a store row id
            raise LeakCheckError("tiles_leak", path=path.name, what=f"{lay}: {GDAL_MVT_ID}")
        if have != counts[lay]:
            raise PublishError("tiles_incomplete", path=path.name, layer=lay, have=have,
                               want=counts[lay])


def write_page_tiles(project: Project, page_id: str, store: Path, maps_dir: Path, *,
                     allowed: dict[str, set[str]] | None = None,
                     counts: dict[str, int] | None = None) -> dict[str, object] | None:
    """The tiles of one page (``maps/tiles/``), checked, and their manifest for the page builder.

    The leak check compares the archive with ``allowed`` (layer -> allow-listed columns, from
    the specs) and ``counts`` (features per layer in the public store); without them, with the
    public store's own tables. None when nothing of the page is tiled.
    """
    layers = [plan_layer(r) for r in page_tile_requests(project, page_id, store)]
    if not layers:
        return None
    page = roles.page(project, page_id)
    out_dir = Path(maps_dir) / tile_manifest(maps_dir, page_id).parent.name
    ts = write_tiles(store, layers, out_dir, page_id, title=page.title.ja,
                     attribution=project.config.city.ja)
    tables = read_tables(Path(store))
    check_tiles(ts.path, {lid: (allowed or {}).get(lid, set(tables[lid].columns))
                          for lid in ts.layers},
                {lid: (counts or {}).get(lid, tables[lid].count) for lid in ts.layers})
    manifest: dict[str, object] = {
        "url": f"{out_dir.name}/{ts.path.name}", "maxDataZoom": MAX_DATA_ZOOM,
        "bytes": ts.bytes, "tiles": ts.tiles, "layers": ts.layers}
    path = tile_manifest(maps_dir, page_id)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)
    return manifest


def write_site_tiles(project: Project, store: Path, maps_dir: Path, *,
                     allowed: dict[str, set[str]] | None = None,
                     counts: dict[str, int] | None = None) -> dict[str, dict]:
    """Tiles of every declared page (the publish's ``tiles`` stage, before the pages)."""
    out = {}
    for page in project.config.publish.pages:
        m = write_page_tiles(project, page.id, store, maps_dir, allowed=allowed, counts=counts)
        if m is not None:
            out[page.id] = m
    return out
