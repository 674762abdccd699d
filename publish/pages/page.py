"""The one map-page builder: any page of ``publish.pages`` from the layers that name it.

A page is ``maps/<id>.html`` (small: chrome, config, scripts) plus, when some of its layers are
embedded, ``maps/<id>.json`` next to it. What a page does follows from the roles on it
(``map.role`` of its layers, see :mod:`publish.pages.roles`):

* every page: layers (colours from code lists, widths, labels, popups with the specs' titles,
  zoom ranges), legend, sources and dates, ja / en / やさしい日本語 (config.i18n), my location,
  the release's search box (``search.json``), terms when the page asks;
* ``parcel`` (+ ``pipe``): 地番 search and the pipe-sheet buttons (``/static/map/parcel.js``);
* ``hazard`` / ``shelter``: the point risk card and the nearest suitable shelters
  (``/static/map/hazard.js``).

How a layer reaches the browser: every layer is drawn from the page's vector tiles
(``tiles/<page>.<hash>.pmtiles`` next to the page, written by the build before the pages from
what :func:`page_tile_requests` asks, described by ``tiles/<page>.json``): the whole
network from city zoom, every feature with its attributes from the detail zoom. Shelters (and
layers with ``map.embed: true``) come in the data file as focusable markers; hazard layers are
drawn from the tiles *and* carried in the data file, because the risk card must work with no API
(a phone at a shelter).

Nothing here reads the master: the only input is the public store, so an internal field cannot
reach a page.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sqlite3
import statistics
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import pyogrio
import shapely
from markupsafe import Markup, escape

from config import Project, i18n
from config.messages import MESSAGES
from config.models import KNOWN_HAZARD_KINDS, LayerSpec, PageConfig
from etl.schema import Column, public_columns
from publish.errors import PublishError
from publish.model import API_PATH, ID_COLUMN, LABEL_LANGS, SiteContext
from publish.pages import hazard_facts, roles
from publish.pages.common import VENDOR_URL, asset_url, lang_script, write_page

MAP_STATIC = "map"  # /static/map/: the page scripts and style
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DETAIL_ZOOM = 16  # display zoom from which large layers' tiles hold every feature and its data
PARCEL_REACH_M = 10  # the pipes "of" a parcel: within this distance (front road, service pipes)
TILE_DIR = "tiles"  # next to the pages: <page>.<hash>.pmtiles and its manifest <page>.json
DECIMALS = 6  # ~0.1 m: plenty for a web map, and 40 % less JSON than the store's 7
MAX_DATA_BYTES = 5_000_000  # the project's goal for a page and its data file
LANG_DEFAULT = "ja"
SHEET_SCALES = (500, 1000)
SHEET_PAPERS = ("A4", "A3")
#: Catalogue keys the page script gets (errors of the build stay out).
PAGE_TEXT = tuple(k for k in MESSAGES if k.startswith("map_") and k not in (
    "map_page_no_layers", "map_column_missing", "map_data_too_big"))


# ---------------------------------------------------------------------------------------------
# The public store


@dataclass(frozen=True)
class TableInfo:
    """One table of the public store: columns (no key, no geometry), size, extent."""

    columns: tuple[str, ...]
    count: int
    bbox: tuple[float, float, float, float] | None  # CRS84
    geom: str


def _connect(gpkg: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)


def read_tables(gpkg: Path) -> dict[str, TableInfo]:
    """Every feature table of the store, straight from SQLite (milliseconds at any size)."""
    con = _connect(gpkg)
    try:
        geo = dict(con.execute(
            "SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
        out: dict[str, TableInfo] = {}
        for table, gcol in geo.items():
            info = con.execute(f'PRAGMA table_info("{table}")').fetchall()
            cols = tuple(r[1] for r in info if not r[5] and r[1] != gcol)
            count = int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
            bbox = None
            if count:
                row = con.execute(f'SELECT min(minx), min(miny), max(maxx), max(maxy) '
                                  f'FROM "rtree_{table}_{gcol}"').fetchone()
                bbox = tuple(float(v) for v in row) if row[0] is not None else None
            out[table] = TableInfo(cols, count, bbox, gcol)  # type: ignore[arg-type]
    finally:
        con.close()
    return out


def _distinct(gpkg: Path, table: str, cols: list[str]) -> dict[str, list[str]]:
    """Codes present per column (what a legend of view-loaded data may list)."""
    con = _connect(gpkg)
    try:
        return {c: [_code(r[0]) for r in con.execute(
            f'SELECT DISTINCT "{c}" FROM "{table}" WHERE "{c}" IS NOT NULL ORDER BY 1')]
            for c in cols}
    finally:
        con.close()


def _dense_point(gpkg: Path, table: str, info: TableInfo,
                 bounds: tuple[float, float, float, float]) -> tuple[float, float] | None:
    """(lat, lon) of the median feature centre in ``bounds``: where the data is dense."""
    con = _connect(gpkg)
    try:
        w, s, e, n = bounds
        rows = con.execute(
            f'SELECT (minx+maxx)/2, (miny+maxy)/2 FROM "rtree_{table}_{info.geom}" '
            "WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?", (w, e, s, n)).fetchall()
    finally:
        con.close()
    if not rows:
        return None
    xs, ys = zip(*rows, strict=True)
    return round(statistics.median(ys), 6), round(statistics.median(xs), 6)


@functools.lru_cache(maxsize=8)
def _boundary(path: str, mtime: float, crs: str,
              margin_m: float) -> tuple[shapely.Geometry, shapely.Geometry] | None:
    """(boundary, boundary + margin) in CRS84, simplified to ~10 m (GDAL reads, PROJ reprojects)."""
    gdf = gpd.read_file(path)
    if gdf.empty or gdf.crs is None:
        return None
    geom = gdf.to_crs(crs).geometry.union_all()
    both = gpd.GeoSeries([geom.simplify(10.0), geom.buffer(margin_m).simplify(10.0)], crs=crs)
    raw, wide = both.to_crs("OGC:CRS84")
    return raw, wide


def city_area(project: Project) -> tuple[shapely.Geometry, shapely.Geometry] | None:
    """The city boundary in lon/lat, and with the project's margin (``boundary.margin_m``)."""
    b = project.config.boundary
    if b is None:
        return None
    path = project.path(b.path)
    if not path.is_file():
        return None
    return _boundary(str(path), path.stat().st_mtime, project.config.target_crs, b.margin_m)


# ---------------------------------------------------------------------------------------------
# Small helpers


def _code(v: Any) -> str:
    """A code as text: 2 and 2.0 are both "2" (an int rank read as float is the same rank)."""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _json_value(v: Any) -> Any:
    """A JSON-safe scalar (None for NA/NaN, ISO text for dates, int for integral numbers)."""
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if isinstance(v, bool | int | str):
        return v
    if np.ndim(v) == 0 and pd.isna(v):
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()[:10] if getattr(v, "hour", 0) == 0 else v.isoformat()
    return str(v)


def _round(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda xy: np.round(xy, DECIMALS))


def _json(data: Any) -> str:
    """Compact JSON that is safe inside ``<script>`` (no ``</script>`` break-out)."""
    s = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def text(key: str, **kw: object) -> dict[str, str]:
    ja, en = MESSAGES[key]
    return {"ja": ja.format(**kw), "en": en.format(**kw)}


def bilingual(t: dict[str, str], tag: str = "span") -> Markup:
    """Both languages of a text; CSS shows the one matching ``<html lang>``."""
    return Markup(f'<{tag} class="gm-ja" lang="ja">{escape(t["ja"])}</{tag}>'
                  f'<{tag} class="gm-en" lang="en">{escape(t["en"])}</{tag}>')


def _geometry_kind(spec: LayerSpec) -> str:
    g = spec.geometry_type
    return "point" if "Point" in g else "line" if "Line" in g else "polygon"


@dataclass(frozen=True)
class TileRequest:
    """What a page needs in its vector tiles for one layer (the build writes them)."""

    id: str
    columns: tuple[str, ...]  # every feature's properties at the detail zooms (+ the public id)
    style: tuple[str, ...]  # what drawing needs: kept by the generalised zooms too
    geometry: str  # point | line | polygon
    count: int
    min_zoom: int  # display zoom where the layer starts
    detail_zoom: int  # display zoom from which a large layer's features are single, with data


def tile_manifest(maps_dir: Path, page_id: str) -> Path:
    """``<maps>/tiles/<page>.json``: the archive of a page and its layers' zoom bands."""
    return Path(maps_dir) / TILE_DIR / f"{page_id}.json"


def read_tile_manifest(maps_dir: Path, page_id: str) -> dict[str, Any] | None:
    path = tile_manifest(maps_dir, page_id)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# One layer


class PageLayer:
    """One layer of a page: its spec, its public columns and how the page gets it."""

    def __init__(self, project: Project, page_id: str, spec: LayerSpec, info: TableInfo,
                 date: str | None) -> None:
        self.project, self.page_id, self.spec, self.info, self.date = (
            project, page_id, spec, info, date)
        self.map = spec.map
        cols: dict[str, Column] = {c.name: c for c in public_columns(spec)}
        self.columns = cols
        role = self.map.role
        # drawn from the tiles unless the page needs the features as markers
        self.source = "data" if role == "shelter" or self.map.embed else "tiles"
        # the risk card works without the API: hazard and shelter layers are in the data file
        self.embedded = self.source == "data" or role == "hazard"

    @property
    def id(self) -> str:
        return self.spec.id

    def need(self, name: str | None) -> str | None:
        """``name`` if the public table has it, else a PublishError that names the fix."""
        if name is None:
            return None
        if name not in self.info.columns:
            raise PublishError("map_column_missing", page=self.page_id, layer=self.id,
                               column=name, known=", ".join(self.info.columns))
        return name

    def has_labels(self, name: str) -> bool:
        return all(f"{name}_{lang}" in self.info.columns for lang in LABEL_LANGS)

    def label_columns(self, name: str) -> list[str]:
        return [f"{name}_{lang}" for lang in LABEL_LANGS] if self.has_labels(name) else []

    # ---- colours

    def color_fields(self) -> list[str]:
        return [f for f in (self.map.color_by, *self.map.color_by_options) if f]

    def color_by(self) -> list[dict[str, Any]]:
        """The colourings a user may choose (the first is the default)."""
        out = []
        for f in self.color_fields():
            self.need(f)
            out.append({"field": f, "title": roles.field_title(self.spec, f),
                        "codes": roles.code_styles(self.project, roles.codelist_of(self.spec, f))})
        return out

    # ---- popups

    def field_conf(self, name: str) -> dict[str, Any]:
        """What the popup needs to show one column (title, unit, code labels, 和暦)."""
        self.need(name)
        col = self.columns.get(name)
        base = self.spec.fields.get(col.field if col else name)
        conf: dict[str, Any] = {"name": name, "title": roles.field_title(self.spec, name)
                                if name in self.spec.fields else
                                roles.i18n(col.title if col else None, name),
                                "type": col.type if col else "str"}
        if col and col.unit:
            conf["unit"] = col.unit
        codes = roles.code_styles(self.project, roles.codelist_of(self.spec, name))
        if codes:  # labels from the code list (the tiles carry the code only)
            conf["codes"] = {k: {"ja": v["ja"], "en": v["en"]} for k, v in codes.items()}
        if base is not None and name in self.spec.fields and any(
                step.name == "wareki" for step in base.normalize):
            conf["kind"] = "fy"
            conf["raw"] = f"{name}_raw" if f"{name}_raw" in self.info.columns else None
            conf["qual"] = f"{name}_qual" if f"{name}_qual" in self.info.columns else None
        return conf

    def fields(self) -> list[dict[str, Any]]:
        return [self.field_conf(n) for n in self.map.popup]

    def properties(self) -> list[str]:
        """Columns the page reads: popup, colours, widths, labels, roles (code labels come from
        the code lists in the page config, so no ``*_ja``/``*_en`` column is needed)."""
        names: list[str] = []
        for fc in self.fields():
            names += [fc["name"], *(c for c in (fc.get("raw"), fc.get("qual")) if c)]
        names += self.style_columns()
        if self.map.labels:
            names += self.map.labels.fields
        if self.map.label_field:
            names.append(self.map.label_field)
        if self.map.parcel:
            names += [self.map.parcel.oaza_field, self.map.parcel.chiban_field]
        if self.map.pipe:
            names += [f for f in self.pipe_fields() if f]
        for n in names:
            self.need(n)
        return sorted(set(names))

    def pipe_fields(self) -> list[str]:
        """The pipe role's key fields (管径, 管種, 布設年度) that the layer has."""
        pr = self.map.pipe
        if pr is None:
            return []
        return [f for f in (pr.diameter_field, pr.material_field, pr.year_field)
                if f and f in self.info.columns]

    def style_columns(self) -> list[str]:
        """What drawing needs (colours, width, hazard rank and group): the general tiles keep
        only these."""
        names = list(self.color_fields())
        if self.map.width_by:
            names.append(self.map.width_by.field)
        hz = self.map.hazard
        if hz:
            names += [c for c in (self.map.rank_field, hz.group_field) if c]
        for n in names:
            self.need(n)
        return list(dict.fromkeys(names))

    def tile_request(self) -> TileRequest:
        """What the page's tiles hold for this layer (hazard zones: their style only)."""
        cols = self.style_columns() if self.map.hazard else self.properties()
        return TileRequest(self.id, tuple(cols), tuple(self.style_columns()),
                           _geometry_kind(self.spec), self.info.count, self.map.min_zoom,
                           DETAIL_ZOOM)

    # ---- the layer's entry in the page config

    def conf(self) -> dict[str, Any]:
        m, spec = self.map, self.spec
        out: dict[str, Any] = {
            "id": self.id, "title": roles.i18n(spec.title), "role": m.role,
            "geometry": _geometry_kind(spec), "source": self.source,
            "minZoom": m.min_zoom, "maxZoom": m.max_zoom, "show": m.show, "z": m.z_order,
            "legend": m.legend, "count": self.info.count,
            "style": {"color": m.color, "fill": m.fill, "outline": m.outline,
                      "weight": m.weight, "fillOpacity": m.fill_opacity, "dash": m.dash,
                      "radius": m.radius, "arrows": m.arrows},
            "colorBy": self.color_by(), "fields": self.fields(),
            "attribution": roles.i18n(spec.attribution), "license": spec.license,
            "licenseUrl": spec.license_url, "date": self.date,
        }
        if m.width_by:
            self.need(m.width_by.field)
            unit = self.columns[m.width_by.field].unit if m.width_by.field in self.columns \
                else None
            out["widthBy"] = {"field": m.width_by.field, "unit": unit,
                              "title": roles.field_title(spec, m.width_by.field),
                              "classes": [list(c) for c in m.width_by.classes]}
        if m.labels:
            out["labels"] = {"fields": m.labels.fields, "minZoom": m.labels.min_zoom,
                             "template": roles.i18n(m.labels.template) if m.labels.template
                             else None}
            out["codes"] = {f: {k: {"ja": v["ja"], "en": v["en"]} for k, v in c.items()}
                            for f in m.labels.fields
                            if (c := roles.code_styles(self.project,
                                                       roles.codelist_of(spec, f)))}
        if self.source == "tiles":
            out["properties"] = self.properties()
        if m.label_field:
            out["labelField"] = m.label_field
        if m.parcel:
            out["parcel"] = {"oaza": m.parcel.oaza_field, "chiban": m.parcel.chiban_field}
        if m.pipe:
            out["pipe"] = {"utility": m.pipe.utility,
                           "title": roles.i18n(m.pipe.utility_title, m.pipe.utility),
                           "fields": self.pipe_fields()}
        if m.hazard:
            out["hazard"] = self.hazard_conf()
        if m.shelter:
            out["shelter"] = self.shelter_conf()
        return out

    # ---- hazards and shelters

    def rank_codelist(self) -> str | None:
        hz = self.map.hazard
        assert hz is not None
        return hz.rank_codelist or roles.codelist_of(self.spec, self.map.rank_field)

    def hazard_conf(self) -> dict[str, Any]:
        hz = self.map.hazard
        assert hz is not None
        ranks = roles.code_styles(self.project, self.rank_codelist())
        groups = (roles.code_styles(self.project, roles.codelist_of(self.spec, hz.group_field))
                  if hz.group_field else {})
        return {
            "kind": hz.kind, "ranks": ranks, "rankOrder": list(ranks), "groups": groups,
            "rankField": self.map.rank_field, "groupField": hz.group_field,
            "groupOrder": list(groups), "emphasis": hz.emphasis,
            # zones coloured by their group (e.g. 現象) unless a rank is emphasised
            "colorGroup": bool(hz.group_field and self.map.color_by == hz.group_field),
            "rankTitle": roles.field_title(self.spec, self.map.rank_field or ""),
            "card": roles.i18n(hz.card) if hz.card else None,
            "cardName": roles.i18n(hz.card_name) if hz.card_name else None,
            "cardNone": roles.i18n(hz.card_none) if hz.card_none else None,
            # what to do there (the spec's text only: nothing is invented when it has none)
            "guidance": hazard_facts.guidance(hz),
        }

    def shelter_conf(self) -> dict[str, Any]:
        sh = self.map.shelter
        assert sh is not None
        return {"flags": [{"kind": k, "field": f, "title": roles.field_title(self.spec, f)}
                          for k, f in sh.flags.items()],
                "defaultKinds": sh.default_kinds, "nearest": sh.nearest,
                "types": [{"field": f, "title": roles.field_title(self.spec, f)}
                          for f in sh.type_fields]}

    # ---- embedded features

    def read(self, store: Path, columns: list[str]) -> gpd.GeoDataFrame:
        for c in columns:
            self.need(c)
        cols = sorted({ID_COLUMN, *columns} & set(self.info.columns))
        gdf = pyogrio.read_dataframe(store, layer=self.id, columns=cols)
        return gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]

    def features(self, store: Path) -> list[dict[str, Any]]:
        if self.map.hazard:
            return self._hazard_features(store)
        if self.map.shelter:
            return self._shelter_features(store)
        cols = self.properties()
        gdf = self.read(store, cols)
        props = [{c: _json_value(row[c]) for c in cols} for _, row in gdf.iterrows()]
        return self._pack(gdf, props)

    def _pack(self, gdf: gpd.GeoDataFrame, props: list[dict[str, Any]]) -> list[dict[str, Any]]:
        geoms = _round(np.asarray(gdf.geometry.values, dtype=object))
        ids = gdf[ID_COLUMN].tolist() if ID_COLUMN in gdf.columns else list(range(len(gdf)))
        out = []
        for fid, g, p in zip(ids, geoms, props, strict=True):
            if g is None or g.is_empty:
                continue
            out.append({"type": "Feature", "id": _json_value(fid),
                        "properties": {k: v for k, v in p.items() if v is not None},
                        "geometry": shapely.geometry.mapping(g)})
        return out

    def _hazard_features(self, store: Path) -> list[dict[str, Any]]:
        m, hz = self.map, self.map.hazard
        assert hz is not None
        rank = m.rank_field
        extra = sorted(hz.field_keys())
        extra_cols = [c for f in extra for c in (f, *self.label_columns(f))]
        cols = [c for c in (rank, hz.group_field, hz.min_field, hz.max_field, hz.name_field,
                            hz.designated_field, *extra_cols) if c]
        gdf = self.read(store, cols)
        order = list(roles.code_styles(self.project, self.rank_codelist()))
        props = []
        for _, row in gdf.iterrows():
            r = _json_value(row[rank])
            p: dict[str, Any] = {"r": None if r is None else _code(r)}
            if hz.group_field:
                p["g"] = _json_value(row[hz.group_field])
            if hz.min_field:
                p["a"] = _json_value(row[hz.min_field])
            if hz.max_field:
                p["b"] = _json_value(row[hz.max_field])
            if hz.name_field:
                p["n"] = _json_value(row[hz.name_field])
            if hz.designated_field and _json_value(row[hz.designated_field]) is False:
                p["u"] = 1
            x = {c: _json_value(row[c]) for c in extra_cols}
            if any(v is not None for v in x.values()):
                p["x"] = {k: v for k, v in x.items() if v is not None}
            props.append(p)
        # the worst rank drawn last (on top)
        key = [order.index(p["r"]) if p["r"] in order else -1 for p in props]
        idx = np.argsort(key, kind="stable")
        return self._pack(gdf.iloc[idx], [props[i] for i in idx])

    def _shelter_features(self, store: Path) -> list[dict[str, Any]]:
        sh = self.map.shelter
        assert sh is not None
        flags, types = list(sh.flags.values()), list(sh.type_fields)
        cols = [c for c in (sh.name_field, sh.address_field, *flags, *types) if c]
        gdf = self.read(store, cols)
        gdf = gdf.set_geometry(gdf.geometry.representative_point())
        # designated for a hazard but inside a zone of it: flagged on the page (k, l, r, lb)
        inside = hazard_facts.shelters_in_zones(self.project, store).get(self.id, {})
        props = []
        for _, row in gdf.iterrows():
            iz = [{"k": e["kind"], "l": e["layer"], "r": e["rank"], "lb": e["label"]}
                  for e in inside.get(str(_json_value(row.get(ID_COLUMN))), [])]
            props.append({
                "n": _json_value(row[sh.name_field]) or "",
                "ad": _json_value(row[sh.address_field]) if sh.address_field else None,
                "hz": [f for f in flags if _json_value(row[f]) is True],
                "ty": [f for f in types if _json_value(row[f]) is True],
                "iz": iz or None,
            })
        out = self._pack(gdf, props)
        # north first: southern markers are drawn over northern ones (stacking order)
        return sorted(out, key=lambda f: (-f["geometry"]["coordinates"][1],
                                          f["geometry"]["coordinates"][0]))

    def present(self, store: Path, features: list[dict[str, Any]] | None) -> dict[str, list]:
        """Codes of the colour fields present in the data (legends never list absent ones)."""
        cols = [c for c in self.color_fields() if c in self.info.columns]
        if not cols:
            return {}
        if features is not None and not self.map.hazard and not self.map.shelter:
            return {c: sorted({_code(f["properties"][c]) for f in features
                               if f["properties"].get(c) is not None}) for c in cols}
        return _distinct(store, self.id, cols)


# ---------------------------------------------------------------------------------------------
# The page


def _kinds(layers: list[PageLayer]) -> dict[str, dict[str, Any]]:
    """Name and shelter badge of every hazard kind on the page (hazard layers, shelter flags)."""
    out: dict[str, dict[str, Any]] = {}

    def add(kind: str, title: dict[str, str] | None) -> None:
        if kind in out:
            return
        if title is None:
            title = text(f"map_kind_{kind}") if kind in KNOWN_HAZARD_KINDS else {
                "ja": kind, "en": kind}
        glyph = (text(f"map_glyph_{kind}") if kind in KNOWN_HAZARD_KINDS
                 else {"ja": title["ja"][:1], "en": title["en"][:2]})
        out[kind] = {"title": title, "glyph": glyph}

    for lay in layers:
        hz = lay.map.hazard
        if hz:
            add(hz.kind, roles.i18n(hz.title) if hz.title else (
                None if hz.kind in KNOWN_HAZARD_KINDS else roles.i18n(lay.spec.title)))
    for lay in layers:
        sh = lay.map.shelter
        if sh:
            for kind, field in sh.flags.items():
                add(kind, None if kind in KNOWN_HAZARD_KINDS
                    else roles.field_title(lay.spec, field))
    return out


def _view(project: Project, page: PageConfig, store: Path, layers: list[PageLayer],
          area: shapely.Geometry | None) -> dict[str, Any]:
    """Start view: the city boundary (or the data); at ``start_zoom`` (or when the boundary
    needs a zoom where no layer is drawn yet), where the data is dense."""
    boxes = [lay.info.bbox for lay in layers if lay.info.bbox]
    if area is not None:
        bounds = tuple(round(float(v), 6) for v in area.bounds)
    elif boxes:
        bounds = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                  max(b[2] for b in boxes), max(b[3] for b in boxes))
    else:
        bounds = None
    shown = [lay.map.min_zoom for lay in layers if lay.map.show]
    # never open on a map where nothing is drawn yet: at least the zoom of the first layer shown
    view: dict[str, Any] = {"bounds": list(bounds) if bounds else None, "center": None,
                            "zoom": page.start_zoom, "maxZoom": page.max_zoom,
                            "minStartZoom": min(shown) if shown else 0}
    if bounds:
        densest = max(layers, key=lambda lay: lay.info.count)
        view["center"] = (_dense_point(store, densest.id, densest.info, bounds)
                          or [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2])
    return view


def page_config(project: Project, page_id: str, store: Path, *, api_base: str = API_PATH,
                data_dates: dict[str, str] | None = None, sheet_url: str | None = "default",
                tiles: dict[str, Any] | None = None, search_url: str | None = None
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config for the page script, data file content) of page ``page_id``.

    ``search_url`` is the release's search index relative to the page (:data:`SEARCH_FILE`):
    the page gets the search box when it is given.

    ``tiles`` is the page's tile manifest (:func:`read_tile_manifest`): the archive's URL and
    every tiled layer's zoom bands; layers drawn from tiles are absent from a page without one.
    """
    page = roles.page(project, page_id)
    tables = read_tables(Path(store))
    specs = roles.page_layers(project, page_id)
    dates = data_dates or {}
    layers = [PageLayer(project, page_id, s, tables[s.id], dates.get(s.id)) for s in specs
              if s.id in tables]
    if not layers:
        raise PublishError("map_page_no_layers", page=page_id,
                           layers=", ".join(s.id for s in specs))
    pc = project.config.publish
    data: dict[str, Any] = {"v": 2, "layers": {}}
    confs, present = [], {}
    bands = (tiles or {}).get("layers", {})
    for lay in layers:
        feats = lay.features(store) if lay.embedded else None
        if feats is not None:
            data["layers"][lay.id] = feats
        present[lay.id] = lay.present(store, feats)
        conf = lay.conf()
        if lay.source == "tiles":
            if tiles is None:  # the build writes the tiles before the pages
                raise PublishError("map_tiles_missing", page=page_id, layer=lay.id)
            band = bands.get(lay.id)
            if band is None:
                continue  # no tiles for it (no feature with a geometry): nothing to draw
            conf["detailZoom"] = band["detailzoom"] + 1  # display zoom = data zoom + 1
        confs.append(conf)
    hazards = [lay for lay in layers if lay.map.role in ("hazard", "shelter")]
    city = city_area(project)
    area = city[0] if city else None
    if hazards:
        if city is not None:  # "outside the area": beyond the boundary and its margin
            data["area"] = shapely.geometry.mapping(_round(np.asarray([city[1]],
                                                                      dtype=object))[0])
        else:
            boxes = [lay.info.bbox for lay in layers if lay.info.bbox]
            if boxes:
                data["area"] = shapely.geometry.mapping(shapely.box(
                    min(b[0] for b in boxes), min(b[1] for b in boxes),
                    max(b[2] for b in boxes), max(b[3] for b in boxes)))
    sources: list[dict[str, str]] = []
    for lay in layers:
        a = roles.i18n(lay.spec.attribution)
        if a not in sources:
            sources.append(a)
    sheet = roles.sheet_roles(project)
    if sheet_url == "default":
        sheet_url = (f"{api_base.rstrip('/')}/processes/pipe-sheet/execution"
                     if sheet is not None and sheet.page == page_id else None)
    parcels = [lay for lay in layers if lay.map.parcel]
    parcel = None
    if parcels:
        pl = parcels[0]
        pr = pl.map.parcel
        assert pr is not None
        oaza = _oaza_list(store, pl)
        parcel = {"layer": pl.id, "oazaField": pl.need(pr.oaza_field),
                  "chibanField": pl.need(pr.chiban_field),
                  "oaza": oaza, "oazaNames": _oaza_names(pl, oaza),
                  "reachM": PARCEL_REACH_M,
                  "pipes": [lay.id for lay in layers if lay.map.role == "pipe"]}
    terms = None
    if page.terms and pc.terms is not None:
        terms = {"version": pc.terms_version,
                 "storageKey": f"gis-{project.config.city_code}-{page_id}-terms",
                 "paragraphs": [roles.i18n(p) for p in pc.terms.paragraphs],
                 "url": pc.terms.full_url or "/terms"}
    config: dict[str, Any] = {
        "v": 2,
        "page": {"id": page.id, "title": _names(page.title),
                 "shortTitle": _names(page.short_title or page.title),
                 "description": _names(page.description) if page.description else None},
        "city": _names(project.config.city), "lang": LANG_DEFAULT,
        "langs": [{"code": c, "name": i18n.LANGUAGE_NAMES[c], "html": _html_lang(c)}
                  for c in i18n.LANGUAGES],
        "search": {"url": search_url} if search_url else None,
        "api": api_base.rstrip("/"), "basemap": page.basemap,
        "view": _view(project, page, store, layers, area),
        "maxItems": pc.max_items,
        "tiles": {"url": tiles["url"], "maxDataZoom": tiles["maxDataZoom"]} if tiles else None,
        "layers": confs, "present": present, "sources": sources,
        "contact": {"name": pc.contact_name, "phone": pc.contact_phone, "url": pc.contact_url},
        "terms": terms, "termsVersion": pc.terms_version,
        "parcel": parcel,
        "sheet": {"url": sheet_url, "scales": list(SHEET_SCALES), "papers": list(SHEET_PAPERS)}
        if sheet_url and parcel else None,
        "hazard": {"kinds": _kinds(layers), **hazard_facts.page_facts(
            project, store, api_base, data)} if hazards else None,
        "text": _page_text(bool(hazards)),
    }
    return config, data


def _oaza_key(name: str) -> str:
    """How a 大字 of the layer meets the config's spelling (width, spaces)."""
    return unicodedata.normalize("NFKC", name).replace(" ", "").replace("\u3000", "")


def _oaza_readings(project: Project) -> dict[str, Any]:
    """The config's 大字 (``publish.search.oaza``) by name and variant: the entry."""
    out: dict[str, Any] = {}
    for o in project.config.publish.search.oaza:
        for n in (o.name, *o.variants):
            out.setdefault(_oaza_key(n), o)
    return out


def _oaza_list(store: Path, lay: PageLayer) -> list[str]:
    """The 大字 of the parcel layer as the 大字 list shows them: by the reading the config gives
    (``publish.search.oaza``; kana order, 2丁目 before 10丁目), then those without a reading in
    大字コード order when the role names that field, else by name."""
    pr = lay.map.parcel
    assert pr is not None
    field, code = lay.need(pr.oaza_field), lay.need(pr.oaza_code_field)
    order = f'min("{code}"), "{field}"' if code else f'"{field}"'
    con = _connect(store)
    try:
        rows = con.execute(f'SELECT "{field}" FROM "{lay.id}" WHERE "{field}" IS NOT NULL '
                           f'GROUP BY "{field}" ORDER BY {order}').fetchall()
    finally:
        con.close()
    names = [str(r[0]) for r in rows]
    known = _oaza_readings(lay.project)
    read = sorted((n for n in names if _oaza_key(n) in known),
                  key=lambda n: (i18n.reading_key(known[_oaza_key(n)].reading), n))
    return read + [n for n in names if _oaza_key(n) not in known]


def _oaza_names(lay: PageLayer, names: list[str]) -> dict[str, dict[str, str]]:
    """Reading and romanised name of each 大字 the config knows (the list's labels in English
    and やさしい日本語)."""
    known = _oaza_readings(lay.project)
    out = {}
    for n in names:
        o = known.get(_oaza_key(n))
        if o is not None:
            out[n] = {"r": o.reading, **({"en": o.en} if o.en else {})}
    return out


def _vendor(rel: str) -> str:
    return asset_url(f"{VENDOR_URL[len('/static/'):]}/{rel}")


def _scripts(config: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(script URLs, stylesheet URLs, scripts loaded later) the page needs, vendored only and
    fingerprinted (``?v=``: cached for a year, never stale)."""
    js = [_vendor("leaflet/leaflet.js")]
    css = [_vendor("leaflet/leaflet.css")]
    if config["tiles"]:
        js.append(_vendor("protomaps-leaflet/protomaps-leaflet.js"))
    later: list[str] = []
    if config["hazard"]:
        # point in polygon (Turf) and ellipsoidal distances (GeographicLib: Turf's are
        # spherical, 0.2 % off, enough to misrank near-equal shelters); only the risk card
        # needs them, so they load after the map is drawn
        later += [_vendor("turf/turf.min.js"),
                  _vendor("geographiclib/geographiclib-geodesic.min.js")]
    js.append(asset_url(f"{MAP_STATIC}/map.js"))
    if config.get("search"):  # the box's script; its index loads on the first focus
        js.append(asset_url(f"{MAP_STATIC}/search.js"))
    if config["parcel"]:
        js.append(asset_url(f"{MAP_STATIC}/parcel.js"))
    if config["hazard"]:
        js.append(asset_url(f"{MAP_STATIC}/hazard.js"))
    css.append(asset_url(f"{MAP_STATIC}/map.css"))
    return js, css, later


#: the release's search index, next to the pages (written by publish.build.search_index
#: before the pages; the landing page's box reads the same file, so one download serves both)
SEARCH_FILE = "search.json"
#: keys of the catalogue every page script gets beyond :data:`PAGE_TEXT` (the search box and
#: the language switch), and those of the hazard page (walking routes, the risk card)
_TEXT_PREFIXES = ("search_", "lang_")
_HAZARD_TEXT_PREFIXES = ("route_", "card_")
#: texts only the risk card shows (hazard.js): left out of other pages (a lean page)
_HAZARD_ONLY = ("map_hz_", "map_kind_", "map_glyph_")


def _html_lang(code: str) -> str:
    """The BCP 47 tag of a page language (やさしい日本語 has none: it is Japanese)."""
    return "en" if code == "en" else "ja"


def _trim(entry: dict[str, str]) -> dict[str, str]:
    """``{ja, en[, ja@easy]}``: the やさしい日本語 only where it differs from the Japanese (the
    page falls back to the Japanese, as :func:`config.i18n.tr` does)."""
    out = {"ja": entry["ja"], "en": entry["en"]}
    if entry.get(i18n.EASY) and entry[i18n.EASY] != entry["ja"]:
        out[i18n.EASY] = entry[i18n.EASY]
    return out


def _names(named: Any) -> dict[str, str]:
    """A name from the city's files (page title, city) in every page language."""
    return _trim(i18n.labels(named))


def _page_text(hazard: bool) -> dict[str, dict[str, str]]:
    """Every catalogue text the page's scripts may show, unformatted, in every page language."""
    public = set(i18n.public_keys())
    prefixes = _TEXT_PREFIXES + (_HAZARD_TEXT_PREFIXES if hazard else ())
    keys = [*(k for k in PAGE_TEXT if hazard or not k.startswith(_HAZARD_ONLY)),
            *(k for k in MESSAGES if k.startswith(prefixes) and k in public)]
    return {k: _trim(i18n.templates(k)) for k in dict.fromkeys(keys)}


def _spans(entry: dict[str, str]) -> Markup:
    """A text in every page language; CSS shows the one ``<html data-lang>`` names (the
    Japanese without JavaScript), so switching needs no re-render."""
    ja, en = entry["ja"], entry["en"]
    easy = entry.get(i18n.EASY) or entry.get("easy") or ja
    return Markup(f'<span class="gm-ja" lang="ja">{escape(ja)}</span>'
                  f'<span class="gm-en" lang="en">{escape(en)}</span>'
                  f'<span class="gm-easy" lang="ja">{escape(easy)}</span>')


def render_page(config: dict[str, Any], data_url: str | None) -> str:
    """The page's HTML (``templates/map_page.html``): chrome, config JSON, scripts."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    js, css, later = _scripts(config)
    config = {**config, "dataUrl": data_url, "later": later}
    return env.get_template("map_page.html").render(
        cfg=config, config_json=Markup(_json(config)), js=js, css=css, bi=_spans,
        t=lambda key, **kw: _spans(i18n.langs(key, **kw)),
        lang_js=lang_script())


def build_page(project: Project, page_id: str, store: Path, out_dir: Path, *,
               api_base: str = API_PATH, data_dates: dict[str, str] | None = None,
               sheet_url: str | None = "default") -> Path:
    """Write ``out_dir/<page_id>.html`` (and ``<page_id>.json`` when it embeds data).

    ``sheet_url`` is where the parcel popup POSTs pipe-sheet requests (OGC API - Processes);
    by default ``{api_base}/processes/pipe-sheet/execution`` on the page holding the sheet's
    roles; ``None`` hides the PDF buttons.
    """
    out_dir = Path(out_dir)
    config, data = page_config(project, page_id, Path(store), api_base=api_base,
                               data_dates=data_dates, sheet_url=sheet_url,
                               tiles=read_tile_manifest(out_dir, page_id),
                               search_url=SEARCH_FILE if (out_dir / SEARCH_FILE).is_file()
                               else None)
    data_url = None
    if data["layers"]:
        blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
        if len(blob) > MAX_DATA_BYTES:
            raise PublishError("map_data_too_big", page=page_id, mb=f"{len(blob) / 1e6:.1f}",
                               limit=f"{MAX_DATA_BYTES / 1e6:.0f}")
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{page_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_bytes(blob)
        tmp.replace(path)
        data_url = f"{page_id}.json?v={hashlib.sha256(blob).hexdigest()[:10]}"
    return write_page(render_page(config, data_url), out_dir, f"{page_id}.html")


def page_tile_requests(project: Project, page_id: str, store: Path) -> list[TileRequest]:
    """What the page's vector tiles must hold: every layer drawn from tiles, bottom to top."""
    tables = read_tables(Path(store))
    out = []
    for spec in roles.page_layers(project, page_id):
        if spec.id in tables:
            lay = PageLayer(project, page_id, spec, tables[spec.id], None)
            if lay.source == "tiles":
                out.append(lay.tile_request())
    return out


def site_page(ctx: SiteContext, page_id: str) -> Path:
    """Build one page into ``site/maps/`` and list it in ``site/maps.json``."""
    page = roles.page(ctx.project, page_id)
    path = build_page(ctx.project, page_id, ctx.store, ctx.site_dir / "maps",
                      api_base=API_PATH, data_dates=ctx.data_dates)
    ctx.add_page(path.name, roles.i18n(page.title))
    return path
