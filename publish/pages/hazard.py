"""The residents' hazard map: flood, tsunami, landslide zones, shelters and "what about this spot?".

One static page (``hazard.html``) built with folium from the public store only. Why static: the
page must work with no API and no tiles (a phone on a weak network, a shelter with no internet):
the hazard polygons are embedded as compact GeoJSON (a few hundred polygons), and the per-tap
spatial work runs in the browser with vendored libraries, because the tapped point is arbitrary:

* point-in-polygon: Turf (``/static/vendor/turf/turf.min.js``);
* distances: GeographicLib's geodesic on the ellipsoid (``/static/vendor/geographiclib/``).
  Turf's ``distance`` is spherical, 0.2 % off at Uozu's latitude (4-5 m at 2 km), which would
  misrank near-equal shelters; the geodesic is exact to the millimetre.

Colours come from the code lists (``flood_depth_rank``: the MLIT 水害ハザードマップ作成の手引き
table; ``landslide_phenomenon``: the yellow of each warning zone). The red of a special warning zone
per phenomenon is not in any code list, so it is :data:`SPECIAL_WARNING_COLORS` (GSI hazard map
portal). Every UI string is in :data:`UI_STRINGS` (Japanese and English); the page embeds it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import pyogrio
import shapely
from branca.element import Element, MacroElement
from folium.template import Template
from markupsafe import Markup, escape

from config import Project
from config.models import CodeList, LayerSpec
from publish.pages.common import STATIC_DIR, VENDOR_URL, offline_map, write_page

PAGE_FILE = "hazard.html"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
HAZARD_STATIC = STATIC_DIR / "hazard"
#: Public-store tables this page reads (each optional: the page shows what is there).
FLOOD, TSUNAMI, LANDSLIDE, SHELTER = "flood_zone", "tsunami_zone", "landslide_zone", "shelter"
DEPTH_CODES = "flood_depth_rank"
PHENOMENON_CODES = "landslide_phenomenon"
LEVEL_CODES = "landslide_zone_level"
HAZARD_CODES = "shelter_hazard"
DECIMALS = 6  # ~0.1 m: plenty for a hazard map, and 40 % less JSON than the store's 7
MAX_HTML_BYTES = 5_000_000  # the project's goal for every static map page
#: 特別警戒区域 (red) colour per phenomenon; the warning (yellow) colour is the code list's.
SPECIAL_WARNING_COLORS = {"steep_slope": "#fa2800", "debris_flow": "#a50021",
                          "landslide": "#b40028"}
SPECIAL_LEVEL = "special_warning"
#: Which shelter flag answers which hazard found at a spot; "none" = the spot is in no zone.
SHELTER_FLAGS_FOR = {"flood": ["hz_flood"], "tsunami": ["hz_tsunami"],
                     "landslide": ["hz_landslide"], "none": ["hz_earthquake", "hz_large_fire"]}
N_NEAREST = 3
LANG_DEFAULT = "ja"

# One table for every UI string (data labels come from the specs and code lists).
# ``{name}`` placeholders are filled by the page script.
UI_STRINGS: dict[str, dict[str, str]] = {
    "page_title": {"ja": "魚津市 防災ハザードマップ", "en": "Uozu City hazard map"},
    "page_short": {"ja": "魚津市 防災マップ", "en": "Uozu hazard map"},
    "lang_switch": {"ja": "English", "en": "日本語"},
    "lang_switch_label": {"ja": "Switch to English", "en": "日本語に切り替える"},
    "legend_button": {"ja": "凡例・出典", "en": "Legend"},
    "locate_button": {"ja": "現在地", "en": "My location"},
    "centre_button": {"ja": "中心を調べる", "en": "Check centre"},
    "close": {"ja": "閉じる", "en": "Close"},
    "map_label": {
        "ja": "地図（タップした地点の災害リスクを下に表示）",
        "en": "Map (tap a spot to see its hazards below)",
    },
    "hint": {
        "ja": "地図をタップするか「現在地」を押すと、"
              "その地点の洪水・津波・土砂災害の想定と、近くの避難場所を表示します。",
        "en": "Tap the map or press “My location” to see the flood, tsunami and landslide "
              "hazards at that spot and the nearest shelters.",
    },
    "card_title": {"ja": "この地点の災害リスク", "en": "Hazards at this spot"},
    "point_tap": {"ja": "タップした地点", "en": "The spot you tapped"},
    "point_centre": {"ja": "地図の中心", "en": "The centre of the map"},
    "point_gps": {"ja": "現在地（誤差 約{acc} m）", "en": "Your location (within about {acc} m)"},
    "coords": {"ja": "北緯 {lat}°・東経 {lon}°", "en": "{lat}° N, {lon}° E"},
    "outside_area": {
        "ja": "この地点は、この地図のデータの範囲（魚津市）の外です。",
        "en": "This spot is outside the area this map covers (Uozu City).",
    },
    "flood": {"ja": "洪水", "en": "Flood"},
    "flood_in": {
        "ja": "浸水深ランク{rank}：{label}（{range}）",
        "en": "Depth rank {rank}: {label} ({range})",
    },
    "flood_river": {
        "ja": "{river}が氾濫した場合（想定最大規模）",
        "en": "If the {river} floods (maximum assumed rainfall)",
    },
    "flood_none": {"ja": "浸水想定区域の外です", "en": "Outside the flood inundation zones"},
    "tsunami": {"ja": "津波", "en": "Tsunami"},
    "tsunami_in": {
        "ja": "浸水深 {label}（{range}、ランク{rank}）",
        "en": "Inundation depth {range} (rank {rank})",
    },
    "tsunami_none": {
        "ja": "津波浸水想定区域の外です",
        "en": "Outside the tsunami inundation zones",
    },
    "landslide": {"ja": "土砂災害", "en": "Landslide"},
    "landslide_in": {"ja": "{phenomenon}の{level}", "en": "{level} for {phenomenon_lc}"},
    "landslide_zone_name": {"ja": "区域名：{name}", "en": "Zone: {name}"},
    "landslide_pre": {
        "ja": "（指定前・基礎調査の結果）",
        "en": "(not yet designated: survey result)",
    },
    "landslide_none": {
        "ja": "土砂災害警戒区域の外です",
        "en": "Outside the sediment-disaster zones",
    },
    "range_m": {"ja": "{min}〜{max} m", "en": "{min}–{max} m"},
    "range_open_m": {"ja": "{min} m以上", "en": "{min} m or more"},
    "range_below_m": {"ja": "{max} m未満", "en": "less than {max} m"},
    "unknown": {"ja": "不明", "en": "unknown"},
    "none_all": {
        "ja": "この地点は、洪水・津波の浸水想定区域にも、土砂災害警戒区域にも入っていません。",
        "en": "This spot is not in any flood or tsunami inundation zone or sediment-disaster "
              "zone.",
    },
    "none_note": {
        "ja": "想定を超える災害も起こりえます。"
              "地震や大規模な火事のときの避難場所も確かめておきましょう。",
        "en": "Disasters can exceed the assumptions. Check the shelters for earthquakes and "
              "large fires too.",
    },
    "shelters_for": {
        "ja": "{hazard}のときの避難場所（近い順）",
        "en": "Shelters for {hazard} (nearest first)",
    },
    "shelter_distance": {"ja": "直線で {d} m", "en": "{d} m in a straight line"},
    "shelters_none": {
        "ja": "この災害に対応する避難場所はデータにありません。",
        "en": "No shelter in the data is designated for this hazard.",
    },
    "show_on_map": {"ja": "地図で見る", "en": "Show on map"},
    "distance_note": {
        "ja": "距離は直線距離です。実際の道のりはもっと長くなります。"
              "避難の際は市の防災情報と避難指示に従ってください。",
        "en": "Distances are straight-line; the way there is longer. When evacuating, follow "
              "the city's disaster information and evacuation orders.",
    },
    "reference_note": {
        "ja": "この地図は想定にもとづく参考図です。色の付いていない所が安全とは限りません。",
        "en": "This map shows assumptions, for reference. Places with no colour are not "
              "necessarily safe.",
    },
    "geo_locating": {"ja": "現在地を調べています…", "en": "Finding your location…"},
    "geo_unsupported": {
        "ja": "この端末やブラウザでは現在地を使えません"
              "（暗号化されていない接続では使えないことがあります）。地図をタップしてください。",
        "en": "Location is not available on this device or browser (it may need a secure "
              "connection). Please tap the map instead.",
    },
    "geo_denied": {
        "ja": "現在地の利用が許可されませんでした。地図をタップして地点を選んでください。",
        "en": "Permission to use your location was denied. Please tap the map to choose a spot.",
    },
    "geo_unavailable": {
        "ja": "現在地を取得できませんでした。地図をタップして地点を選んでください。",
        "en": "Your location could not be found. Please tap the map to choose a spot.",
    },
    "geo_timeout": {
        "ja": "現在地の取得に時間がかかりすぎました。もう一度試すか、地図をタップしてください。",
        "en": "Finding your location took too long. Try again or tap the map.",
    },
    "tiles_failed": {
        "ja": "背景地図を読み込めませんでした。災害の区域と地点の判定はそのまま使えます。",
        "en": "The background map could not load. The hazard zones and the spot check still "
              "work.",
    },
    "legend_title": {"ja": "凡例", "en": "Legend"},
    "legend_tsunami_note": {
        "ja": "津波の区域は青い破線で囲んで表示（色は洪水と同じ基準）。",
        "en": "Tsunami zones have a dashed blue outline (same colours as floods).",
    },
    "legend_landslide_warning_note": {
        "ja": "警戒区域は破線、特別警戒区域は実線の枠。",
        "en": "Warning zones: dashed outline; special warning zones: solid outline.",
    },
    "legend_shelter_note": {
        "ja": "避難場所の下の文字は、対象とする災害です（空欄は対象外）。",
        "en": "The letters under a shelter show the hazards it is designated for (a blank box: "
              "not designated).",
    },
    "legend_shelter_zoom": {
        "ja": "文字は地図を拡大すると表示されます。",
        "en": "The letters appear when you zoom in.",
    },
    "sources_title": {"ja": "出典・データ時点", "en": "Sources and data dates"},
    "as_of": {"ja": "{date}時点", "en": "as of {date}"},
    "date_unknown": {"ja": "時点不明", "en": "date unknown"},
    "licence": {"ja": "利用条件", "en": "Licence"},
    "basemap": {"ja": "背景地図", "en": "Basemap"},
    "basemap_attr": {
        "ja": "地理院タイル（国土地理院）",
        "en": "GSI tiles (Geospatial Information Authority of Japan)",
    },
    "shelter_emergency": {"ja": "指定緊急避難場所", "en": "Designated emergency evacuation site"},
    "shelter_evacuation": {"ja": "指定避難所", "en": "Designated evacuation shelter"},
    "shelter_for": {"ja": "対象とする災害", "en": "Designated for"},
    "shelter_yes": {"ja": "対象", "en": "yes"},
    "shelter_no": {"ja": "対象外", "en": "no"},
    "shelter_aria": {
        "ja": "避難場所 {name}。対象とする災害：{list}",
        "en": "Shelter {name}. Designated for: {list}",
    },
    "shelter_aria_none": {"ja": "なし", "en": "none"},
    "attr_toggle": {"ja": "出典をすべて表示／折りたたむ", "en": "Show or fold all sources"},
    "probe_label": {"ja": "調べた地点", "en": "Checked spot"},
    "list_sep": {"ja": "、", "en": ", "},
    # one-letter pictograms of the eight hazards (shelter badges): text, not colour alone
    "glyph_hz_flood": {"ja": "洪", "en": "Fl"},
    "glyph_hz_landslide": {"ja": "崖", "en": "Ls"},
    "glyph_hz_storm_surge": {"ja": "潮", "en": "Ss"},
    "glyph_hz_earthquake": {"ja": "震", "en": "Eq"},
    "glyph_hz_tsunami": {"ja": "津", "en": "Ts"},
    "glyph_hz_large_fire": {"ja": "火", "en": "Fi"},
    "glyph_hz_inland_flood": {"ja": "内", "en": "In"},
    "glyph_hz_volcano": {"ja": "山", "en": "Vo"},
}


@dataclass(frozen=True)
class DepthColumns:
    """Where a depth-zone table keeps its rank, bounds and (optional) raw label."""

    rank: str
    lo: str | None
    hi: str | None
    label: str | None


def depth_columns(spec: LayerSpec | None, columns: list[str]) -> DepthColumns:
    """Find rank / min / max / label in a flood or tsunami table from its spec.

    Why from the spec: the flood spec has a ``depth_rank`` field on the rank code list, the
    tsunami spec a ``depth_range`` normalizer whose siblings are ``X_rank``, ``X_min_m``,
    ``X_max_m``. Conventional names are the fallback when there is no spec.
    """
    rank = label = None
    if spec is not None:
        for name, f in spec.fields.items():
            if f.codelist == DEPTH_CODES and name in columns:
                rank = name
                break
            if any(n.name == "depth_range" for n in f.normalize) and f"{name}_rank" in columns:
                rank, label = f"{name}_rank", name
                break
    if rank is None:
        rank = next((c for c in ("depth_rank", *columns) if c in columns
                     and (c == "depth_rank" or c.endswith("_rank"))), None)
    if rank is None:
        raise ValueError(f"no depth rank column in {columns}")
    base = rank[:-len("_rank")] if rank.endswith("_rank") else rank
    lo = next((c for c in (f"{base}_min_m", f"{label}_min_m", "depth_min_m") if c in columns), None)
    hi = next((c for c in (f"{base}_max_m", f"{label}_max_m", "depth_max_m") if c in columns), None)
    return DepthColumns(rank, lo, hi, label)


def _codelist_field(spec: LayerSpec | None, codelist: str, fallback: str) -> str:
    if spec is not None:
        for name, f in spec.fields.items():
            if f.codelist == codelist:
                return name
    return fallback


def _round_geoms(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda xy: np.round(xy, DECIMALS))


def _num(v: Any) -> float | None:
    """A JSON-safe float (None for NA/NaN)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _text(v: Any) -> str | None:
    """A stripped string, None for missing values (None, NaN, pd.NA, NaT) and blanks."""
    if v is None or (np.ndim(v) == 0 and pd.isna(v)):
        return None
    s = str(v).strip()
    return s or None


def _features(gdf: gpd.GeoDataFrame, props: list[dict[str, Any]]) -> list[dict[str, Any]]:
    geoms = _round_geoms(np.asarray(gdf.geometry.values, dtype=object))
    out = []
    for g, p in zip(geoms, props, strict=True):
        if g is None or g.is_empty:
            continue
        out.append({"type": "Feature", "properties": {k: v for k, v in p.items()
                                                      if v is not None},
                    "geometry": shapely.geometry.mapping(g)})
    return out


def read_store(public_gpkg: Path) -> dict[str, gpd.GeoDataFrame]:
    """The hazard and shelter tables present in the public store (CRS84)."""
    have = {str(n) for n in pyogrio.list_layers(public_gpkg)[:, 0]}
    out = {}
    for lid in (FLOOD, TSUNAMI, LANDSLIDE, SHELTER):
        if lid in have:
            gdf = pyogrio.read_dataframe(public_gpkg, layer=lid, use_arrow=True)
            out[lid] = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    return out


def _depth_payload(gdf: gpd.GeoDataFrame, spec: LayerSpec | None, label_col: str) -> list[dict]:
    cols = depth_columns(spec, [c for c in gdf.columns if c != "geometry"])
    ranks = [int(r) if _num(r) is not None else None for r in gdf[cols.rank]]
    props = []
    for i, r in enumerate(ranks):
        p: dict[str, Any] = {"r": r}
        if cols.lo:
            p["a"] = _num(gdf[cols.lo].iloc[i])
        if cols.hi:
            p["b"] = _num(gdf[cols.hi].iloc[i])
        if cols.label:
            p["l"] = _text(gdf[cols.label].iloc[i])
        if label_col and label_col in gdf.columns:
            p["n"] = _text(gdf[label_col].iloc[i])
        props.append(p)
    order = np.argsort([r or 0 for r in ranks], kind="stable")  # deeper drawn on top
    return _features(gdf.iloc[order], [props[i] for i in order])


def _landslide_payload(gdf: gpd.GeoDataFrame, spec: LayerSpec | None,
                       codelists: dict[str, CodeList]) -> list[dict]:
    pcol = _codelist_field(spec, PHENOMENON_CODES, "phenomenon")
    lcol = _codelist_field(spec, LEVEL_CODES, "zone_level")
    name_col = spec.map.label_field if spec and spec.map.label_field else "zone_name"
    levels = list(codelists[LEVEL_CODES].codes) if LEVEL_CODES in codelists else []
    props = []
    for i in range(len(gdf)):
        row = gdf.iloc[i]
        p = {"p": _text(row[pcol]), "v": _text(row[lcol]),
             "n": _text(row[name_col]) if name_col in gdf.columns else None}
        if "designated" in gdf.columns and _text(row["designated"]) is not None:
            p["d"] = bool(row["designated"])
        props.append(p)
    # special warning zones (inside warning zones) drawn last, i.e. on top
    rank = [levels.index(p["v"]) if p["v"] in levels else 0 for p in props]
    order = np.argsort(rank, kind="stable")
    return _features(gdf.iloc[order], [props[i] for i in order])


def _shelter_payload(gdf: gpd.GeoDataFrame, spec: LayerSpec | None,
                     flags: list[str]) -> list[dict]:
    name_col = spec.map.label_field if spec and spec.map.label_field else "name"
    pts = _round_geoms(np.asarray(gdf.geometry.representative_point().values, dtype=object))
    out = []
    for i, pt in enumerate(pts):
        row = gdf.iloc[i]
        hz = [f for f in flags if f in gdf.columns and _text(row[f]) is not None and bool(row[f])]
        out.append({
            "id": _text(row["fid"]) if "fid" in gdf.columns else str(i),
            "n": _text(row[name_col]) or "",
            "ad": _text(row["address"]) if "address" in gdf.columns else None,
            "lat": float(pt.y), "lon": float(pt.x), "hz": hz,
            "em": bool(row["is_emergency_site"]) if "is_emergency_site" in gdf.columns
            and _text(row["is_emergency_site"]) is not None else None,
            "ev": bool(row["is_evacuation_shelter"]) if "is_evacuation_shelter" in gdf.columns
            and _text(row["is_evacuation_shelter"]) is not None else None,
        })
    return sorted(out, key=lambda s: (-s["lat"], s["lon"]))  # north first: stacking order


def _i18n(text: Any) -> dict[str, str]:
    return {"ja": text.ja, "en": text.en} if text is not None else {"ja": "", "en": ""}


def _layer_meta(project: Project, lid: str, date: str | None) -> dict[str, Any]:
    spec = project.specs.get(lid)
    if spec is None:
        return {"id": lid, "title": {"ja": lid, "en": lid}, "attribution": {"ja": "", "en": ""},
                "license": "", "license_url": "", "date": date}
    return {"id": lid, "title": _i18n(spec.title), "attribution": _i18n(spec.attribution),
            "license": spec.license, "license_url": spec.license_url, "date": date}


def _data_date(gdf: gpd.GeoDataFrame) -> str | None:
    if "data_date" in gdf.columns:
        vals = [v for v in (_text(x) for x in gdf["data_date"]) if v]
        return max(vals) if vals else None
    return None


def codes_payload(codelists: dict[str, CodeList]) -> dict[str, Any]:
    """Labels, colours and depth bounds of the code lists the page uses."""
    out: dict[str, Any] = {}
    for key, cid in (("depth", DEPTH_CODES), ("phenomenon", PHENOMENON_CODES),
                     ("level", LEVEL_CODES), ("hazard", HAZARD_CODES)):
        cl = codelists.get(cid)
        out[key] = {code: {"ja": e.ja, "en": e.en, "color": e.color, "min": e.min, "max": e.max}
                    for code, e in (cl.codes.items() if cl else [])}
    out["title"] = {key: _i18n(codelists[cid].title) if cid in codelists else {"ja": "", "en": ""}
                    for key, cid in (("depth", DEPTH_CODES), ("phenomenon", PHENOMENON_CODES),
                                     ("level", LEVEL_CODES), ("hazard", HAZARD_CODES))}
    return out


def landslide_palette(codelists: dict[str, CodeList]) -> dict[str, dict[str, str]]:
    """Fill colour per phenomenon and zone level (warning = code list colour, special = red)."""
    phen = codelists.get(PHENOMENON_CODES)
    levels = list(codelists[LEVEL_CODES].codes) if LEVEL_CODES in codelists else [
        "warning", SPECIAL_LEVEL]
    out: dict[str, dict[str, str]] = {}
    for code, e in (phen.codes.items() if phen else []):
        special = SPECIAL_WARNING_COLORS.get(code, "#fa2800")
        out[code] = {lv: (special if lv == SPECIAL_LEVEL else (e.color or "#fae600"))
                     for lv in levels}
    return out


def hazard_payload(project: Project, tables: dict[str, gpd.GeoDataFrame],
                   data_dates: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything the page script needs, JSON-ready: features, meta, code lists, strings."""
    cls = project.codelists
    flags = list(cls[HAZARD_CODES].codes) if HAZARD_CODES in cls else [
        "hz_flood", "hz_landslide", "hz_storm_surge", "hz_earthquake", "hz_tsunami",
        "hz_large_fire", "hz_inland_flood", "hz_volcano"]
    dates = dict(data_dates or {})
    layers: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    kinds = {FLOOD: "flood", TSUNAMI: "tsunami", LANDSLIDE: "landslide", SHELTER: "shelter"}
    for lid, gdf in tables.items():
        kind = kinds[lid]
        spec = project.specs.get(lid)
        meta[kind] = _layer_meta(project, lid, dates.get(lid) or _data_date(gdf))
        if kind == "flood":
            label = spec.map.label_field if spec and spec.map.label_field else "river_name"
            layers[kind] = _depth_payload(gdf, spec, label)
        elif kind == "tsunami":
            layers[kind] = _depth_payload(gdf, spec, "")
        elif kind == "landslide":
            layers[kind] = _landslide_payload(gdf, spec, cls)
        else:
            layers[kind] = _shelter_payload(gdf, spec, flags)
    bounds = [gdf.total_bounds for gdf in tables.values() if len(gdf)]
    extent = ([float(min(b[0] for b in bounds)), float(min(b[1] for b in bounds)),
               float(max(b[2] for b in bounds)), float(max(b[3] for b in bounds))]
              if bounds else [137.38, 36.72, 137.6, 36.86])
    return {"v": 1, "lang_default": LANG_DEFAULT, "strings": UI_STRINGS, "layers": layers,
            "meta": meta, "codes": codes_payload(cls), "landslide_colors": landslide_palette(cls),
            "special_level": SPECIAL_LEVEL, "flag_order": flags,
            "shelter_flags_for": SHELTER_FLAGS_FOR, "n_nearest": N_NEAREST,
            "extent": [round(v, DECIMALS) for v in extent]}


# ---------------------------------------------------------------------------------------------
# folium glue


class HazardLayer(folium.map.Layer):
    """A Leaflet layer made by the page script from the embedded data (one JSON for all).

    Why not ``folium.GeoJson``: it would embed each layer again (pretty-printed, with ids and
    per-feature styles), and the risk card needs the same features anyway.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = UozuHazard.layer({{ this.kind|tojson }});
        {% endmacro %}
    """)

    def __init__(self, kind: str, name: str, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "HazardLayer"
        self.kind = kind


class HazardInit(MacroElement):
    """Starts the page script once the map, the layers and the layer control exist."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        UozuHazard.init({{ this._parent.get_name() }}, {
            {%- for kind, layer in this.layers.items() %}
            {{ kind|tojson }}: {{ layer }},
            {%- endfor %}
        }, [{% for t in this.tiles %}{{ t }}, {% endfor %}]);
        {% endmacro %}
    """)

    def __init__(self, layers: dict[str, str], tiles: list[str]) -> None:
        super().__init__()
        self._name = "HazardInit"
        self.layers = layers
        self.tiles = tiles


def _static_url(rel: str) -> str:
    """``/static/<rel>?v=<hash>``: a new release's page never runs yesterday's cached script."""
    digest = hashlib.sha256((STATIC_DIR / rel).read_bytes()).hexdigest()[:10]
    return f"/static/{rel}?v={digest}"


def _bi(key: str, tag: str = "span", **kw: Any) -> Markup:
    """Both languages of a UI string; CSS shows the one matching ``<html lang>``."""
    s = UI_STRINGS[key]
    return bilingual({"ja": s["ja"].format(**kw), "en": s["en"].format(**kw)}, tag)


def bilingual(text: dict[str, str], tag: str = "span") -> Markup:
    """Japanese and English spans of one text (language-switched by CSS, no re-render)."""
    return Markup(f'<{tag} class="hz-ja" lang="ja">{escape(text["ja"])}</{tag}>'
                  f'<{tag} class="hz-en" lang="en">{escape(text["en"])}</{tag}>')


def _legend(payload: dict[str, Any]) -> dict[str, Any]:
    """Rows of the legend, straight from the code lists the map is styled with."""
    codes = payload["codes"]
    depth = [{"code": c, "color": e["color"], "label": {"ja": e["ja"], "en": e["en"]}}
             for c, e in codes["depth"].items()]
    levels = codes["level"]
    land = [{"code": p, "label": {"ja": e["ja"], "en": e["en"]},
             "levels": [{"code": lv, "color": payload["landslide_colors"][p][lv],
                         "label": {"ja": levels[lv]["ja"], "en": levels[lv]["en"]}}
                        for lv in levels]}
            for p, e in codes["phenomenon"].items()]
    flags = [{"code": f, "glyph": UI_STRINGS.get(f"glyph_{f}", {"ja": "?", "en": "?"}),
              "label": {"ja": codes["hazard"].get(f, {}).get("ja", f),
                        "en": codes["hazard"].get(f, {}).get("en", f)}}
             for f in payload["flag_order"]]
    return {"depth": depth, "landslide": land, "flags": flags}


def render_panel(payload: dict[str, Any]) -> str:
    """The page's own HTML (top bar, risk card, legend, sources) from ``templates/hazard*``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    tpl = env.get_template("hazard_panel.html")
    return tpl.render(bi=_bi, bilingual=bilingual, as_of=as_of, meta=payload["meta"],
                      legend=_legend(payload), codes=payload["codes"])


def as_of(date: str | None) -> Markup:
    """"2025-03-31時点" / "as of 2025-03-31" (or "unknown")."""
    if not date:
        return bilingual(UI_STRINGS["date_unknown"])
    return bilingual({lang: UI_STRINGS["as_of"][lang].format(date=date) for lang in ("ja", "en")})


def _layer_name(meta: dict[str, Any], kind: str) -> str:
    return str(Markup('<span class="hz-layer-name" data-layer="{}">{}</span>').format(
        kind, bilingual(meta["title"])))


def _json_for_script(obj: Any) -> str:
    """Compact JSON that is safe inside ``<script>`` (no ``</script>`` break-out)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build_hazard_map(project: Project, public_gpkg: Path, out_dir: Path, *,
                     data_dates: dict[str, str] | None = None) -> Path:
    """Write ``out_dir/hazard.html`` from the public store; return its path.

    ``data_dates`` maps layer id -> "as of" date (the release's manifest dates); without it a
    ``data_date`` column is used if the table has one, else the page says "unknown".
    """
    tables = read_store(Path(public_gpkg))
    if not tables:
        raise ValueError(f"{public_gpkg}: no hazard or shelter layer to map")
    payload = hazard_payload(project, tables, data_dates)
    x0, y0, x1, y1 = payload["extent"]
    m = offline_map(((y0 + y1) / 2, (x0 + x1) / 2), zoom_start=13)
    # SVG, not canvas: a few hundred polygons draw as fast, and paths stay in the DOM (testable,
    # inspectable); markers are DOM elements anyway.
    m.options["prefer_canvas"] = False
    m.default_js = [*m.default_js,
                    ("turf", f"{VENDOR_URL}/turf/turf.min.js"),
                    ("geodesic", f"{VENDOR_URL}/geographiclib/geographiclib-geodesic.min.js"),
                    ("hazard_js", _static_url("hazard/hazard.js"))]
    m.default_css = [*m.default_css, ("hazard_css", _static_url("hazard/hazard.css"))]
    root = m.get_root()
    root.title = f"{UI_STRINGS['page_title']['ja']} / {UI_STRINGS['page_title']['en']}"
    root.html.add_child(Element(render_panel(payload)), name="hazard_panel")
    root.html.add_child(Element(
        f'<script type="application/json" id="hz-data">{_json_for_script(payload)}</script>'),
        name="hazard_data")
    shown = {"flood": True, "tsunami": False, "landslide": True, "shelter": True}
    layers: dict[str, str] = {}
    for kind in ("flood", "tsunami", "landslide", "shelter"):
        if kind in payload["layers"]:
            lay = HazardLayer(kind, _layer_name(payload["meta"][kind], kind), show=shown[kind])
            lay.add_to(m)
            layers[kind] = lay.get_name()
    # the page script fits the map to the data without animation (no zoom still running when
    # the first tap comes)
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    tiles = [c.get_name() for c in m._children.values() if isinstance(c, folium.TileLayer)]
    HazardInit(layers, tiles).add_to(m)
    html = root.render()
    return write_page(_finish_html(html), out_dir, PAGE_FILE)


def _finish_html(html: str) -> str:
    """Document language, and a viewport that lets people zoom the page (WCAG 1.4.4)."""
    html = html.replace("<html>", f'<html lang="{LANG_DEFAULT}">', 1)
    html = html.replace("<head>", '<head>\n<meta charset="utf-8" />', 1)  # before the title
    html = re.sub(r'<meta name="viewport"[^>]*/>',
                  '<meta name="viewport" content="width=device-width, initial-scale=1" />',
                  html, count=1)
    return html


# ---------------------------------------------------------------------------------------------
# publish integration


def site_builder(ctx: Any) -> None:
    """``publish.build`` site builder: ``site/maps/hazard.html`` plus its entry in ``maps.json``.

    Skips quietly when the release has no hazard or shelter layer (e.g. a pipes-only city).
    """
    have = {str(n) for n in pyogrio.list_layers(ctx.store)[:, 0]}
    if not have & {FLOOD, TSUNAMI, LANDSLIDE, SHELTER}:
        return
    build_hazard_map(ctx.project, ctx.store, ctx.site_dir / "maps", data_dates=ctx.data_dates)
    ctx.add_page(PAGE_FILE, UI_STRINGS["page_title"])

