"""The public pipe map (管路図): water and sewer pipes, manholes, hydrants, parcels and roads.

Why the page holds no network data: the city has ~85k public features (performance-anchors §4:
folium pages stop being usable past ~15k embedded features), and a housing firm only ever needs
the few blocks around one parcel. So ``pipe.html`` is a small folium page (vendored Leaflet, GSI
basemap) plus ``/static/pipe/pipe.js``, which fetches the features of the current view from the
OGC API (``{api_base}/collections/{layer}/items?bbox=...``) at zoom >= 16 only, caches them by
map tile and cancels requests the user has panned away from. What *is* embedded is small and
derived from the public store and the specs: the 大字 list for the 地番 search, field titles,
code-list colours and labels, data dates and the terms version.

Nothing here reads the master: the only input is the public store, so an internal field cannot
reach the page (the tests check that with canary values).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
from branca.element import MacroElement
from jinja2 import Template

from config import Project
from publish.model import API_PATH
from publish.pages.common import STATIC_DIR, VENDOR_URL, offline_map, write_page

PAGE_NAME = "pipe.html"
PIPE_STATIC = STATIC_DIR / "pipe"
PIPE_URL = "/static/pipe"
DECORATOR_JS = f"{VENDOR_URL}/leaflet-polylinedecorator/leaflet.polylineDecorator.js"
MIN_ZOOM = 16  # pipes and parcels: below this a view holds too many features to be useful
LABEL_ZOOM = 18  # 地番 labels
MAX_ZOOM = 20  # basemap tiles stop at 18 and are stretched beyond
START_ZOOM = 17
TILE_ZOOM = 16  # coarsest cache tile: a z16 tile is ~490 m square at Uozu
MAX_TILE_ZOOM = 18  # finest (the page caches one level coarser than the view)
MAX_FEATURES_PER_VIEW = 8000  # per layer; more than this asks the user to zoom in
FALLBACK_CENTER = (36.8273, 137.4093)  # Uozu city hall (E 21,644 m, N 91,821 m, zone VII)
STORAGE_KEY = "uozu-gis.pipe-map.terms"

# Layers drawn by the page, bottom to top, with what each popup shows (only columns that exist
# in the public store are used, so a field the spec keeps internal simply does not appear).
LAYER_ORDER = ("parcel", "road_segment", "water_pipe", "sewer_pipe", "sewer_manhole",
               "water_valve")
POPUP_FIELDS: dict[str, tuple[str, ...]] = {
    "parcel": ("oaza_name", "chiban", "parcel_id"),
    "road_segment": ("route_no", "route_name", "road_class", "width_m", "surface"),
    "water_pipe": ("pipe_id", "pipe_class", "material", "diameter_mm", "ledger_length_m",
                   "install_fy", "cover_m"),
    "sewer_pipe": ("pipe_id", "flow_type", "material", "diameter_mm", "ledger_length_m",
                   "slope_permille", "install_fy", "invert_up_m", "invert_down_m",
                   "cover_up_m", "cover_down_m", "up_mh_id", "down_mh_id"),
    "sewer_manhole": ("mh_id", "mh_kind", "flow_type", "ground_elev_m", "invert_elev_m",
                      "depth_m", "install_fy"),
    "water_valve": ("valve_id", "valve_type", "hydrant_form"),
}
# Columns the page styles by (fetched even when not shown in the popup).
STYLE_FIELDS: dict[str, tuple[str, ...]] = {
    "parcel": ("oaza_name", "chiban"),
    "road_segment": (),
    "water_pipe": ("pipe_class", "material", "diameter_mm"),
    "sewer_pipe": ("flow_type", "material", "diameter_mm"),
    "sewer_manhole": ("flow_type",),
    "water_valve": ("valve_type",),
}
# Code columns whose present values the legend lists (a legend never shows 導水/送水).
VALUE_COLUMNS = {"sewer_pipe": ("flow_type", "material"), "water_pipe": ("pipe_class", "material")}
LAYER_MIN_ZOOM = {"road_segment": 16, "water_valve": 15}
DECIMALS = {"width_m": 1, "ledger_length_m": 1, "slope_permille": 1, "ground_elev_m": 2,
            "invert_elev_m": 2, "depth_m": 2, "invert_up_m": 2, "invert_down_m": 2,
            "cover_up_m": 2, "cover_down_m": 2, "cover_m": 2}
# Water pipes by class: greens, so they never share a colour with the sewer flow types
# (汚水 red, 雨水 blue, 合流 purple come from the sewer_flow_type code list).
WATER_CLASS_COLORS = {"distribution_main": "#00897b", "distribution_branch": "#43a047",
                      "service": "#9ccc65", "intake": "#6d4c41", "transmission": "#5e35b1"}
FALLBACK_COLORS = ("#6b6b6b", "#b8860b", "#8b4513", "#2f4f4f", "#800000", "#556b2f",
                   "#483d8b", "#a0522d", "#708090", "#bdb76b")
# Line weight (px) by diameter class (mm): the legend shows the same classes.
WEIGHTS = ((0, 1.5), (100, 2.5), (200, 3.5), (400, 5.0), (800, 7.0))
YEAR_QUALIFIERS = {"approx": {"ja": "頃", "en": "approx."},
                   "before": {"ja": "以前", "en": "or before"},
                   "after": {"ja": "以降", "en": "or after"},
                   "unknown": {"ja": "不明", "en": "unknown"}}

# Every user-facing string of the page (ja, en). Kept here because publish/messages.py belongs
# to the server's owner; the page shows both languages.
TEXT: dict[str, tuple[str, str]] = {
    "title": ("管路図（上下水道・地番）", "Pipe map (water, sewer, parcels)"),
    "terms_title": ("ご利用の前に（利用条件）", "Before you use this map (terms of use)"),
    "terms_ref": (
        "この地図は参考図です。管路の位置・管径・管種・深さなどは台帳に基づく概略で、"
        "実際と異なる場合があります。測量の成果ではなく、境界などの権利関係も示しません。",
        "This map is for reference only. Pipe positions, diameters, materials and depths are "
        "approximate, taken from the ledgers, and may differ on site. It is not a survey and "
        "shows no legal boundaries.",
    ),
    "terms_confirm": (
        "工事・設計・不動産取引の前には、必ず市の担当窓口で台帳を閲覧して確認してください。",
        "Before any construction, design or real-estate transaction, always confirm with the "
        "city by viewing the official ledgers.",
    ),
    "terms_liability": (
        "この地図の利用により生じた損害について、市は責任を負いません。",
        "The city accepts no liability for any damage arising from the use of this map.",
    ),
    "terms_parcel": (
        "地番図は固定資産税の課税用の図面で、登記所備付地図（公図）ではありません。",
        "The parcel map is the property-tax map, not the registry (MOJ) map.",
    ),
    "terms_source": ("出典", "Sources"),
    "terms_dates": ("データ時点", "Data as of"),
    "terms_full": ("利用規約の全文", "Full terms of use"),
    "terms_version": ("第{v}版", "version {v}"),
    "terms_agree": ("同意して地図を表示", "Agree and show the map"),
    "terms_decline": ("同意しない", "Decline"),
    "terms_declined": (
        "同意いただけない場合は地図を表示できません。",
        "The map cannot be shown without your consent.",
    ),
    "contact": ("問い合わせ先", "Contact"),
    "basemap": ("背景地図: 地理院タイル（国土地理院）", "Base map: GSI Tiles"),
    "zoom_hint": (
        "管路・地番はズーム{z}以上で表示されます（拡大してください）",
        "Pipes and parcels show at zoom {z} and above: zoom in",
    ),
    "too_many": ("{layer}: 表示範囲の件数が多すぎます。拡大してください",
                 "{layer}: too many features in view, zoom in"),
    "loading": ("読み込み中…", "Loading…"),
    "load_error": ("データを取得できませんでした（{layer}）。再試行します",
                   "Could not load data ({layer}); will retry"),
    "search_title": ("地番検索", "Lot number search"),
    "search_oaza": ("大字", "Town (oaza)"),
    "search_chiban": ("地番", "Lot number"),
    "search_placeholder": ("例: 123-4, 123番4", "e.g. 123-4"),
    "search_go": ("検索", "Search"),
    "search_empty": ("大字と地番を入力してください", "Choose a town and enter a lot number"),
    "search_found": ("{oaza} {chiban} を表示しています", "Showing {oaza} {chiban}"),
    "search_none": ("{oaza} {chiban} は見つかりません", "{oaza} {chiban} was not found"),
    "search_error": ("検索できませんでした", "Search failed"),
    "locate": ("現在地", "My location"),
    "locate_denied": (
        "位置情報の利用が許可されていません（ブラウザの設定を確認してください）",
        "Location permission was denied (check your browser settings)",
    ),
    "locate_failed": ("現在地を取得できませんでした", "Could not get your location"),
    "locate_found": ("現在地（誤差 約{m} m）", "Your location (±{m} m)"),
    "legend": ("凡例", "Legend"),
    "color_by": ("色分け", "Colour by"),
    "by_type": ("種別", "Type"),
    "by_material": ("管種", "Material"),
    "flow_dir": ("流下方向（下水道）", "Flow direction (sewer)"),
    "diameter": ("管径（線の太さ）", "Diameter (line width)"),
    "manhole": ("マンホール", "Manhole"),
    "hydrant": ("消火栓", "Fire hydrant"),
    "parcel": ("地番図（筆）", "Parcel"),
    "parcel_hit": ("検索した筆", "Parcel found"),
    "road": ("道路（市道）", "Road (city road)"),
    "data_as_of": ("データ時点", "Data as of"),
    "sheet": ("配管参考図PDF", "Pipe sheet PDF"),
    "sheet_making": ("PDFを作成しています…", "Making the PDF…"),
    "sheet_done": ("PDFを作成しました", "PDF ready"),
    "sheet_failed": ("PDFを作成できませんでした", "Could not make the PDF"),
    "fy_unknown": ("不明", "unknown"),
    "water": ("水道", "Water"),
    "sewer": ("下水道", "Sewer"),
}


def t(key: str, **kw: object) -> dict[str, str]:
    """One message in both languages, formatted."""
    ja, en = TEXT[key]
    return {"ja": ja.format(**kw), "en": en.format(**kw)}


@dataclass(frozen=True)
class StoreInfo:
    """What the page needs to know about the public store (read once, at build time)."""

    columns: dict[str, list[str]]  # table -> column names (no rid/geom)
    counts: dict[str, int]
    center: tuple[float, float]  # lat, lon
    oaza: list[str]
    values: dict[str, dict[str, list[str]]]  # table -> styled column -> codes present


def _connect(gpkg: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)


def read_store_info(gpkg: Path) -> StoreInfo:
    """Columns, counts, a sensible start point and the 大字 list, straight from SQLite.

    Why SQLite rather than GDAL: only the R-tree and two columns are read, which takes
    milliseconds even at 10x the city's size.
    """
    con = _connect(gpkg)
    try:
        geo = dict(con.execute(
            "SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
        columns: dict[str, list[str]] = {}
        counts: dict[str, int] = {}
        for table in geo:
            pk = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")') if r[5]}
            columns[table] = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')
                              if r[1] not in pk and r[1] != geo[table]]
            counts[table] = int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
        center = FALLBACK_CENTER
        for table in ("sewer_pipe", "water_pipe", "parcel", *geo):
            if table in geo and counts.get(table):
                rtree = f"rtree_{table}_{geo[table]}"
                rows = con.execute(f'SELECT (minx+maxx)/2, (miny+maxy)/2 FROM "{rtree}"')
                xs, ys = zip(*rows.fetchall(), strict=True)
                # the median point lies in the dense part of the network, not in the sea
                center = (round(statistics.median(ys), 6), round(statistics.median(xs), 6))
                break
        oaza: list[str] = []
        if "parcel" in columns and "oaza_name" in columns["parcel"]:
            order = ("min(oaza_code), oaza_name" if "oaza_code" in columns["parcel"]
                     else "oaza_name")
            rows = con.execute("SELECT oaza_name FROM parcel WHERE oaza_name IS NOT NULL "
                               f"GROUP BY oaza_name ORDER BY {order}")
            oaza = [r[0] for r in rows.fetchall()]
        values: dict[str, dict[str, list[str]]] = {}
        for table, cols in VALUE_COLUMNS.items():
            for col in cols:
                if col in columns.get(table, []):
                    rows = con.execute(f'SELECT DISTINCT "{col}" FROM "{table}" '
                                       f'WHERE "{col}" IS NOT NULL ORDER BY 1')
                    values.setdefault(table, {})[col] = [str(r[0]) for r in rows.fetchall()]
    finally:
        con.close()
    return StoreInfo(columns, counts, center, oaza, values)


def _asset_url(name: str) -> str:
    """``/static/pipe/<name>?v=<content hash>``: a new release never runs a cached old script."""
    data = (PIPE_STATIC / name).read_bytes()
    return f"{PIPE_URL}/{name}?v={hashlib.sha1(data).hexdigest()[:10]}"


def _codelist_styles(project: Project, layer: str, field: str,
                     override: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """code -> {ja, en, color} for the code list of ``layer.field`` (colours filled in)."""
    spec = project.specs.get(layer)
    f = spec.fields.get(field) if spec else None
    cl = project.codelists.get(f.codelist) if f and f.codelist else None
    if cl is None:
        return {}
    out: dict[str, dict[str, str]] = {}
    for i, (code, e) in enumerate(cl.codes.items()):
        color = (override or {}).get(code) or e.color or FALLBACK_COLORS[i % len(FALLBACK_COLORS)]
        out[code] = {"ja": e.ja, "en": e.en, "color": color}
    return out


def _field_conf(project: Project, layer: str, name: str, columns: list[str]) -> dict[str, Any]:
    spec = project.specs[layer]
    f = spec.fields.get(name)
    title = ({"ja": f.title.ja, "en": f.title.en} if f and f.title
             else {"ja": name, "en": name})
    conf: dict[str, Any] = {"name": name, "title": title}
    if f and f.unit:
        conf["unit"] = f.unit
    if f and f.codelist and f"{name}_ja" in columns:
        conf["label"] = f"{name}_ja"
    if name in DECIMALS:
        conf["digits"] = DECIMALS[name]
    if f and any(step.name == "wareki" for step in f.normalize):
        conf["kind"] = "fy"
        conf["raw"] = f"{name}_raw" if f"{name}_raw" in columns else None
        conf["qual"] = f"{name}_qual" if f"{name}_qual" in columns else None
    return conf


def layer_configs(project: Project, info: StoreInfo) -> list[dict[str, Any]]:
    """Per layer: title, zoom, the properties to fetch and the popup fields (public only)."""
    out = []
    for lid in LAYER_ORDER:
        if lid not in info.columns or lid not in project.specs:
            continue
        spec = project.specs[lid]
        cols = info.columns[lid]
        fields = [_field_conf(project, lid, n, cols) for n in POPUP_FIELDS[lid] if n in cols]
        props: list[str] = []
        for fc in fields:
            props += [fc["name"], *(c for c in (fc.get("label"), fc.get("raw"), fc.get("qual"))
                                    if c)]
        props += [c for c in STYLE_FIELDS[lid] if c in cols]
        out.append({
            "id": lid,
            "title": {"ja": spec.title.ja, "en": spec.title.en},
            "geometry": spec.geometry_type,
            "minZoom": LAYER_MIN_ZOOM.get(lid, MIN_ZOOM),
            "properties": sorted(set(props)),
            "fields": fields,
            "count": info.counts.get(lid, 0),
        })
    return out


def page_config(project: Project, info: StoreInfo, *, api_base: str,
                data_dates: dict[str, str] | None, sheet_url: str | None) -> dict[str, Any]:
    """Everything pipe.js needs, as one JSON object (small: no features)."""
    pc = project.config.publish
    layers = layer_configs(project, info)
    shown = [lay["id"] for lay in layers]
    dates = {lid: d for lid, d in (data_dates or {}).items() if lid in shown and d}
    sources: list[dict[str, str]] = []
    for lid in shown:
        a = project.specs[lid].attribution
        entry = {"ja": a.ja, "en": a.en}
        if entry not in sources:
            sources.append(entry)
    city = project.config.city.ja
    short = []
    for src in sources:  # "魚津市 地番図（固定資産税）" -> "地番図"
        name = src["ja"].removeprefix(city).strip().split("（")[0].split("(")[0].strip()
        if name and name not in short:
            short.append(name)
    styles = {
        "sewer_flow": _codelist_styles(project, "sewer_pipe", "flow_type"),
        "sewer_material": _codelist_styles(project, "sewer_pipe", "material"),
        "water_class": _codelist_styles(project, "water_pipe", "pipe_class", WATER_CLASS_COLORS),
        "water_material": _codelist_styles(project, "water_pipe", "material"),
    }
    return {
        "api": api_base.rstrip("/"),
        "maxItems": pc.max_items,
        "maxFeatures": MAX_FEATURES_PER_VIEW,
        "tileZoom": TILE_ZOOM,
        "maxTileZoom": MAX_TILE_ZOOM,
        "minZoom": MIN_ZOOM,
        "labelZoom": LABEL_ZOOM,
        "center": list(info.center),
        "zoom": START_ZOOM,
        "termsVersion": pc.terms_version,
        "termsUrl": "/terms",
        "storageKey": STORAGE_KEY,
        "city": {"ja": project.config.city.ja, "en": project.config.city.en},
        "contact": {"name": pc.contact_name, "phone": pc.contact_phone, "url": pc.contact_url},
        "layers": layers,
        "oaza": info.oaza,
        "dataDates": dates,
        "sources": sources,
        "attribution": f"{city} {'・'.join(short)}" if short else city,
        "styles": styles,
        "present": info.values,
        "weights": [list(w) for w in WEIGHTS],
        "qualifiers": YEAR_QUALIFIERS,
        "sheet": {"url": sheet_url, "scales": [500, 1000], "papers": ["A4", "A3"]}
        if sheet_url else None,
        "text": {k: {"ja": v[0], "en": v[1]} for k, v in TEXT.items()},
    }


def _json_for_html(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``</script>``, ``<!--`` or ``&`` can end or confuse it."""
    s = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class PipeMapElement(MacroElement):
    """Head assets, the config JSON and the ``UozuPipe.init(map, config, control)`` call."""

    _template = Template("""
{% macro header(this, kwargs) %}
<title>{{ this.title }}</title>
<link rel="stylesheet" href="{{ this.css_url }}"/>
{% endmacro %}
{% macro html(this, kwargs) %}
<script type="application/json" id="uozu-pipe-config">{{ this.config_json }}</script>
<noscript><p>{{ this.noscript }}</p></noscript>
{% endmacro %}
{% macro script(this, kwargs) %}
UozuPipe.init({{ this._parent.get_name() }},
  JSON.parse(document.getElementById("uozu-pipe-config").textContent),
  {{ this.control.get_name() }});
{% endmacro %}
""")

    def __init__(self, config: dict[str, Any], control: folium.LayerControl, title: str) -> None:
        super().__init__()
        self._name = "UozuPipeMap"
        self.config_json = _json_for_html(config)
        self.control = control
        self.title = title.replace("<", "&lt;")
        self.css_url = _asset_url("pipe.css")
        self.noscript = ("この地図には JavaScript が必要です。 / "
                         "This map needs JavaScript.")


def build_pipe_map(project: Project, public_gpkg: Path, out_dir: Path, *, api_base: str,
                   data_dates: dict[str, str] | None = None,
                   sheet_url: str | None = "default") -> Path:
    """Write ``out_dir/pipe.html``: a view-loading pipe map over the OGC API at ``api_base``.

    ``sheet_url`` is where the parcel popup POSTs pipe-sheet requests (OGC API - Processes);
    by default ``{api_base}/processes/pipe-sheet/execution``; ``None`` hides the PDF buttons.
    """
    info = read_store_info(public_gpkg)
    if sheet_url == "default":
        sheet_url = f"{api_base.rstrip('/')}/processes/pipe-sheet/execution"
    config = page_config(project, info, api_base=api_base, data_dates=data_dates,
                         sheet_url=sheet_url)
    m = offline_map(info.center, START_ZOOM, max_zoom=MAX_ZOOM)
    # Only Leaflet is needed (jQuery/Bootstrap/Font Awesome would cost ~400 KB per first load).
    m.default_js = [("leaflet", f"{VENDOR_URL}/leaflet/leaflet.js"),
                    ("polylinedecorator", DECORATOR_JS),
                    ("uozu_pipe", _asset_url("pipe.js"))]
    m.default_css = [("leaflet_css", f"{VENDOR_URL}/leaflet/leaflet.css")]
    for child in m._children.values():
        if isinstance(child, folium.TileLayer):
            child.options["max_zoom"] = MAX_ZOOM  # keep showing (stretched) tiles at z19-20
    control = folium.LayerControl(collapsed=True, position="topright")
    control.add_to(m)
    city = project.config.city
    title = f"{city.ja} {TEXT['title'][0]} / {city.en} {TEXT['title'][1]}"
    m.add_child(PipeMapElement(config, control, title))
    return write_page(m.get_root().render(), out_dir, PAGE_NAME)


def site_builder(ctx: Any) -> None:
    """``publish.build`` site builder: ``site/maps/pipe.html`` plus its entry in ``maps.json``.

    The page talks to the same-origin ``/api``. Skips quietly when the release has no pipe
    layer. ``maps.json`` is shared with the other map builders: read, replace our entry, write.
    """
    info = read_store_info(ctx.store)
    if not set(info.columns) & {"water_pipe", "sewer_pipe"}:
        return
    build_pipe_map(ctx.project, ctx.store, ctx.site_dir / "maps", api_base=API_PATH,
                   data_dates=ctx.data_dates)
    ctx.add_page(PAGE_NAME, t("title"))

