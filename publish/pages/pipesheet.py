"""One-page pipe sheets (配管参考図) at a true, fixed scale, for housing and real-estate firms.

Why a server-side PDF at a fixed scale: peers hand out A4 1/500 copies at the counter
(peer-systems.md), and a browser print of a web map has no reliable scale. Here the map is drawn
in JGD2011 / zone VII metres (EPSG:6675), so 1 m on the ground is exactly ``1000 / scale`` mm on
paper when printed at 100 % ("actual size"); the scale bar, the corner coordinates and a
``SheetLayout`` returned by :func:`render_pipe_sheet` say the same.

Only the **public store** is read (allow-listed columns, public rows), so an internal field or a
withheld pipe cannot appear on a sheet whatever this module does.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import shapely.affinity
from pyproj import Proj, Transformer
from shapely.geometry import LineString, MultiLineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from config import Project
from config.errors import EtlError
from etl.normalize import apply_normalizer
from etl.normalize import nfkc as nfkc_series

PLANE_CRS = "EPSG:6675"  # JGD2011 / Japan Plane Rectangular CS VII (Toyama)
STORE_CRS = "EPSG:4326"
MM = 72.0 / 25.4  # PDF points per millimetre
PAPERS_MM = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
SCALES = (250, 500, 1000, 2500)
IPAEX_FONT = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
CID_FONT = "HeiseiKakuGo-W5"  # reportlab built-in; needs no file, not embedded
TARGET_FILL = "#fff176"  # the searched parcel's fill (tests find its path by this colour)
WATER_PREFIX = "水"

# (ja, en) messages of this module (publish/messages.py belongs to another owner).
MESSAGES: dict[str, tuple[str, str]] = {
    "sheet_store_missing": (
        "公開ストア {path} がありません。修正: 先に 'uozu-gis publish' を実行",
        "the public store {path} does not exist. Fix: run 'uozu-gis publish' first",
    ),
    "sheet_no_parcels": (
        "公開ストア {path} に地番図 (parcel) がありません",
        "the public store {path} has no parcel layer",
    ),
    "sheet_bad_scale": (
        "縮尺 1/{scale} には対応していません。使える縮尺: {allowed}",
        "scale 1:{scale} is not supported. Supported: {allowed}",
    ),
    "sheet_bad_paper": (
        "用紙 '{paper}' には対応していません。使える用紙: A4, A3（横向きは A4-landscape など）",
        "paper '{paper}' is not supported. Use A4 or A3 (landscape: A4-landscape, ...)",
    ),
    "sheet_bad_chiban": (
        "地番 '{raw}' を読み取れません。例: 123-4, 123番4",
        "cannot read the lot number '{raw}'. Example: 123-4",
    ),
    "sheet_unknown_oaza": (
        "大字 '{oaza}' は地番図にありません。{hint}",
        "there is no town (oaza) '{oaza}' in the parcel map. {hint_en}",
    ),
    "sheet_unknown_chiban": (
        "大字{oaza}に地番 {chiban}（入力: {raw}）はありません。{hint}",
        "lot {chiban} (entered: {raw}) does not exist in {oaza}. {hint_en}",
    ),
}
HINTS = {"oaza": ("候補: {v}", "Did you mean: {v}"),
         "chiban": ("近い地番: {v}", "Nearby lots: {v}"),
         "none": ("", "")}


class PipeSheetError(EtlError):
    """A pipe sheet cannot be made (unknown parcel, bad scale...): bilingual, CLI exit 1."""

    def __init__(self, key: str, **kw: object) -> None:
        self.key = key
        self.params = kw
        ja, en = MESSAGES[key]
        Exception.__init__(self, f"{ja.format(**kw)} / {en.format(**kw)}")


# Sheet text (ja, en).
TEXT = {
    "title": ("上下水道 配管参考図", "Reference sheet of water and sewer pipes"),
    "stamp": ("参考図", "REFERENCE ONLY"),
    "disclaimer": (
        "この図は参考図です。管路の位置・管径・管種・深さ等は台帳に基づく概略で、現地と異なる"
        "場合があります。測量成果ではなく、境界などの権利関係を示すものでもありません。地番図は"
        "固定資産税の課税用図面で、登記所備付地図（公図）ではありません。工事・設計・不動産取引等"
        "の前には、必ず市の担当窓口で台帳を閲覧して確認してください。本図の利用により生じた損害に"
        "ついて、市は責任を負いません。",
        "Reference only. Pipe positions, diameters, materials and depths are approximate, taken "
        "from the ledgers, and may differ on site. This is not a survey and shows no legal "
        "boundaries; the parcel map is the property-tax map, not the registry map. Before any "
        "construction, design or real-estate transaction, confirm with the city by viewing the "
        "official ledgers. The city accepts no liability for damage arising from its use.",
    ),
}


@dataclass(frozen=True)
class SheetLayout:
    """Where everything is on the page, in PDF points (origin bottom-left), and the scale.

    ``pt_per_m`` is the whole point of the sheet: ground metres -> paper points at 100 %.
    """

    paper: str
    landscape: bool
    page_w: float
    page_h: float
    scale: int
    frame: tuple[float, float, float, float]  # x, y, width, height
    center: tuple[float, float]  # E, N in EPSG:6675 metres (the frame's centre)
    bar_m: float  # scale bar length on the ground
    bar_xy: tuple[float, float]  # bar origin on the page
    bar_h: float

    @property
    def pt_per_m(self) -> float:
        return 1000.0 / self.scale * MM

    @property
    def bar_pt(self) -> float:
        return self.bar_m * self.pt_per_m

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """Ground extent of the frame (E0, N0, E1, N1) in metres."""
        _, _, w, h = self.frame
        hw, hh = w / self.pt_per_m / 2, h / self.pt_per_m / 2
        return (self.center[0] - hw, self.center[1] - hh, self.center[0] + hw,
                self.center[1] + hh)

    def to_page(self, e: float, n: float) -> tuple[float, float]:
        x, y, w, h = self.frame
        return (x + w / 2 + (e - self.center[0]) * self.pt_per_m,
                y + h / 2 + (n - self.center[1]) * self.pt_per_m)


@dataclass
class SheetResult:
    """What was written: the file, its layout and what it shows (for tests and the CLI)."""

    path: Path
    layout: SheetLayout
    oaza: str
    chiban: str
    parcel_ids: list[str]
    url: str
    data_dates: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def parse_paper(paper: str) -> tuple[str, bool]:
    """"A4", "a3", "A4-landscape", "A4L", "A3 横" -> (size, landscape)."""
    s = str(paper).strip().upper().replace("_", "-").replace(" ", "-")
    landscape = False
    for suffix in ("-LANDSCAPE", "LANDSCAPE", "-横", "横", "L"):
        if s.endswith(suffix) and s[: -len(suffix)].rstrip("-") in PAPERS_MM:
            s, landscape = s[: -len(suffix)].rstrip("-"), True
            break
    for suffix in ("-PORTRAIT", "PORTRAIT", "-縦", "縦", "P"):
        if s.endswith(suffix) and s[: -len(suffix)].rstrip("-") in PAPERS_MM:
            s = s[: -len(suffix)].rstrip("-")
            break
    if s not in PAPERS_MM:
        raise PipeSheetError("sheet_bad_paper", paper=paper)
    return s, landscape


def normalize_oaza(oaza: str) -> str:
    """The ETL's ``nfkc`` (the parcel spec normalizes 大字名 with it)."""
    out = nfkc_series(pd.Series([oaza], dtype="object")).iloc[0]
    return "" if out is None or pd.isna(out) else str(out)


def normalize_chiban(chiban: str) -> str | None:
    """The ETL's ``chiban`` normalizer: "１２３－４", "123番4", "123の4" -> "123-4"."""
    frame = apply_normalizer("chiban", pd.Series([chiban], dtype="object"))
    value = frame[""].iloc[0]
    if value is None or pd.isna(value) or bool(frame["!bad"].iloc[0]):
        return None
    return str(value)


def _connect(gpkg: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)


def _chiban_key(c: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in str(c).replace("-", " - ").split())


def find_parcel(gpkg: Path, oaza: str, chiban: str) -> tuple[str, str, gpd.GeoDataFrame]:
    """(oaza, chiban, parcels in EPSG:6675) for user input, or a PipeSheetError with hints."""
    if not gpkg.is_file():
        raise PipeSheetError("sheet_store_missing", path=gpkg)
    oz = normalize_oaza(oaza)
    cb = normalize_chiban(chiban)
    if cb is None:
        raise PipeSheetError("sheet_bad_chiban", raw=chiban)
    con = _connect(gpkg)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
        if "parcel" not in tables:
            raise PipeSheetError("sheet_no_parcels", path=gpkg)
        pk = next(r[1] for r in con.execute('PRAGMA table_info("parcel")') if r[5])
        rids = [int(r[0]) for r in con.execute(
            f'SELECT "{pk}" FROM parcel WHERE oaza_name = ? AND chiban = ?', (oz, cb))]
        if not rids:
            known = [r[0] for r in con.execute(
                "SELECT DISTINCT oaza_name FROM parcel WHERE oaza_name IS NOT NULL")]
            if oz not in known:
                close = difflib.get_close_matches(oz, known, n=5, cutoff=0.3)
                raise PipeSheetError("sheet_unknown_oaza", oaza=oz, **_hint("oaza", close))
            main = cb.split("-")[0]
            near = [r[0] for r in con.execute(
                "SELECT chiban FROM parcel WHERE oaza_name = ? AND (chiban = ? OR chiban LIKE ?)",
                (oz, main, f"{main}-%"))]
            near = sorted(set(near), key=_chiban_key)[:10]
            raise PipeSheetError("sheet_unknown_chiban", oaza=oz, chiban=cb, raw=chiban,
                                 **_hint("chiban", near))
    finally:
        con.close()
    gdf = pyogrio.read_dataframe(gpkg, layer="parcel", fids=rids)
    return oz, cb, gdf.to_crs(PLANE_CRS)


def _hint(kind: str, values: Sequence[str]) -> dict[str, str]:
    if not values:
        return {"hint": "", "hint_en": ""}
    ja, en = HINTS[kind]
    v = ", ".join(values)
    return {"hint": ja.format(v=v), "hint_en": en.format(v=v)}


def read_data_dates(gpkg: Path) -> dict[str, str]:
    """Per-layer data dates from the release's ``release.json`` next to the store, if any."""
    meta = gpkg.parent / "release.json"
    try:
        layers = json.loads(meta.read_text(encoding="utf-8")).get("layers", {})
    except (OSError, ValueError):
        return {}
    return {lid: v["data_date"] for lid, v in layers.items()
            if isinstance(v, dict) and v.get("data_date")}


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------

def plan_layout(paper: str, scale: int, center: tuple[float, float]) -> SheetLayout:
    """Page, frame and scale-bar geometry for a paper size and scale (no drawing)."""
    if int(scale) not in SCALES:
        raise PipeSheetError("sheet_bad_scale", scale=scale,
                             allowed=", ".join(f"1/{s}" for s in SCALES))
    size, landscape = parse_paper(paper)
    w_mm, h_mm = PAPERS_MM[size]
    if landscape:
        w_mm, h_mm = h_mm, w_mm
    margin = 10.0
    title_h = 16.0 if size == "A4" else 19.0
    if landscape:
        side = 82.0 if size == "A4" else 100.0
        frame_mm = (margin, margin, w_mm - 2 * margin - side - 4.0, h_mm - 2 * margin - title_h)
    else:
        frame_w = w_mm - 2 * margin
        frame_h = h_mm - 2 * margin - title_h - (64.0 if size == "A4" else 88.0)
        frame_mm = (margin, h_mm - margin - title_h - frame_h, frame_w, frame_h)
    frame = tuple(v * MM for v in frame_mm)
    bar_m = scale / 50.0  # always 20 mm on paper: 10 m at 1/500, 20 m at 1/1000
    bar_xy = (frame[0] + 8 * MM, frame[1] + 8 * MM)
    return SheetLayout(size, landscape, w_mm * MM, h_mm * MM, int(scale),
                       frame, center, bar_m, bar_xy, 1.6 * MM)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Data in the frame
# ---------------------------------------------------------------------------------------------

LAYER_COLUMNS = {
    "parcel": ["oaza_name", "chiban"],
    "road_segment": ["route_name", "width_m"],
    "water_pipe": ["pipe_id", "pipe_class", "material", "diameter_mm"],
    "sewer_pipe": ["pipe_id", "flow_type", "flow_type_ja", "material", "diameter_mm"],
    "sewer_manhole": ["mh_id", "flow_type"],
    "water_valve": ["valve_id", "valve_type"],
}


def read_extent(gpkg: Path, extent: tuple[float, float, float, float]
                ) -> dict[str, gpd.GeoDataFrame]:
    """Public features intersecting the frame, in EPSG:6675 and clipped to it."""
    e0, n0, e1, n1 = extent
    to_ll = Transformer.from_crs(PLANE_CRS, STORE_CRS, always_xy=True)
    xs, ys = to_ll.transform([e0, e1, e0, e1], [n0, n0, n1, n1])
    bbox = (min(xs), min(ys), max(xs), max(ys))
    frame = box(e0, n0, e1, n1)
    have = {str(n) for n in pyogrio.list_layers(gpkg)[:, 0]}
    out: dict[str, gpd.GeoDataFrame] = {}
    for lid, cols in LAYER_COLUMNS.items():
        if lid not in have:
            continue
        fields = set(pyogrio.read_info(gpkg, layer=lid)["fields"])
        use = [c for c in cols if c in fields]
        gdf = pyogrio.read_dataframe(gpkg, layer=lid, columns=use, bbox=bbox)
        for c in cols:
            if c not in gdf.columns:
                gdf[c] = None
        gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)].to_crs(PLANE_CRS)
        if lid != "parcel":  # parcels are clipped by the PDF clip path (labels need the whole)
            gdf = gdf.set_geometry(gdf.geometry.intersection(frame))
            gdf = gdf[~gdf.geometry.is_empty]
        out[lid] = gdf
    return out


# ---------------------------------------------------------------------------------------------
# Drawing helpers
# ---------------------------------------------------------------------------------------------

_FONT: str | None = None


def sheet_font() -> str:
    """An embedded IPAex Gothic subset when installed (prints anywhere), else a CID font."""
    global _FONT
    if _FONT:
        return _FONT
    from reportlab.pdfbase import pdfmetrics

    if IPAEX_FONT.is_file():
        from reportlab.pdfbase.ttfonts import TTFont

        pdfmetrics.registerFont(TTFont("IPAexGothic", str(IPAEX_FONT)))
        _FONT = "IPAexGothic"
    else:
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont

        pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
        _FONT = CID_FONT
    return _FONT


def _lines(geom: BaseGeometry) -> list[LineString]:
    if isinstance(geom, LineString):
        return [geom] if not geom.is_empty else []
    if isinstance(geom, MultiLineString):
        return [g for g in geom.geoms if not g.is_empty]
    if hasattr(geom, "geoms"):
        return [g for part in geom.geoms for g in _lines(part)]
    return []


def _rings(geom: BaseGeometry) -> list[list[tuple[float, float]]]:
    polys = [geom] if isinstance(geom, Polygon) else list(getattr(geom, "geoms", []))
    out = []
    for p in polys:
        if isinstance(p, Polygon) and not p.is_empty:
            out.append(list(p.exterior.coords))
            out += [list(r.coords) for r in p.interiors]
    return out


def weight_pt(diameter: Any) -> float:
    """Printed line width by diameter (mm): the same classes as the web map."""
    try:
        d = float(diameter)
    except (TypeError, ValueError):
        return 0.6
    if math.isnan(d):
        return 0.6
    for lim, w in ((800, 2.6), (400, 1.9), (200, 1.4), (100, 1.0)):
        if d >= lim:
            return w
    return 0.7


def _valid(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and v is not pd.NA


class Sheet:
    """Draws one sheet on a reportlab canvas (one instance per PDF)."""

    def __init__(self, canvas: Any, layout: SheetLayout, font: str) -> None:
        self.c = canvas
        self.L = layout
        self.font = font
        self.placed: list[Polygon] = []  # label boxes on the page, to avoid overlaps

    # ---- primitives
    def color(self, hexcolor: str, *, fill: bool = False, stroke: bool = False) -> None:
        from reportlab.lib.colors import HexColor

        if fill:
            self.c.setFillColor(HexColor(hexcolor))
        if stroke:
            self.c.setStrokeColor(HexColor(hexcolor))

    def polyline(self, coords: Iterable[tuple[float, float]], *, close: bool = False,
                 fill: bool = False, stroke: bool = True) -> None:
        pts = [self.L.to_page(x, y) for x, y, *_ in coords]
        if len(pts) < 2:
            return
        p = self.c.beginPath()
        p.moveTo(*pts[0])
        for xy in pts[1:]:
            p.lineTo(*xy)
        if close:
            p.close()
        self.c.drawPath(p, stroke=int(stroke), fill=int(fill))

    def text(self, x: float, y: float, s: str, size: float, *, angle: float = 0.0,
             anchor: str = "middle", color: str = "#000000", halo: bool = False) -> None:
        c = self.c
        c.saveState()
        c.translate(x, y)
        if angle:
            c.rotate(angle)
        c.setFont(self.font, size)
        w = c.stringWidth(s, self.font, size)
        dx = {"start": 0.0, "middle": -w / 2, "end": -w}[anchor]
        if halo:
            self.color("#ffffff", fill=True)
            c.rect(dx - 0.6, -size * 0.22, w + 1.2, size * 1.02, stroke=0, fill=1)
        self.color(color, fill=True)
        c.drawString(dx, -size * 0.05, s)
        c.restoreState()

    def free(self, x: float, y: float, w: float, h: float, angle: float,
             anchor: str = "middle") -> Polygon | None:
        """The label's page polygon if it overlaps nothing placed and lies in the frame."""
        dx = {"start": 0.0, "middle": -w / 2, "end": -w}[anchor]
        rect = Polygon([(dx, -h * 0.25), (dx + w, -h * 0.25), (dx + w, h), (dx, h)])
        poly = shapely.affinity.translate(shapely.affinity.rotate(rect, angle, origin=(0, 0)),
                                          x, y)
        fx, fy, fw, fh = self.L.frame
        if not box(fx + 1, fy + 1, fx + fw - 1, fy + fh - 1).contains(poly):
            return None
        if self.placed and bool(np.any(shapely.intersects(np.array(self.placed), poly))):
            return None
        return poly

    def label_on_line(self, line: LineString, s: str, size: float, color: str,
                      offset: float) -> bool:
        """Place ``s`` along the longest segment of ``line`` (upright, beside the line)."""
        coords = [self.L.to_page(x, y) for x, y, *_ in line.coords]
        best, blen = None, 0.0
        for a, b in itertools.pairwise(coords):
            seg = math.dist(a, b)
            if seg > blen:
                best, blen = (a, b), seg
        if best is None:
            return False
        w = self.c.stringWidth(s, self.font, size)
        if blen < w * 0.8:
            return False
        (x0, y0), (x1, y1) = best
        ang = math.degrees(math.atan2(y1 - y0, x1 - x0))
        if ang > 90 or ang <= -90:
            ang -= 180 if ang > 0 else -180
        rad = math.radians(ang)
        nx, ny = -math.sin(rad), math.cos(rad)
        for side in (1, -1):
            mx = (x0 + x1) / 2 + nx * offset * side
            my = (y0 + y1) / 2 + ny * offset * side - (size * 0.35 if side < 0 else 0) * ny
            poly = self.free(mx, my, w, size, ang)
            if poly is not None:
                self.placed.append(poly)
                self.text(mx, my, s, size, angle=ang, color=color, halo=True)
                return True
        return False

    def arrow(self, line: LineString, color: str, size: float) -> None:
        """A filled triangle at the middle of the line, pointing downstream (line direction)."""
        if line.length <= 0:
            return
        mid = line.interpolate(0.5, normalized=True)
        a = line.interpolate(max(0.0, line.length / 2 - 0.01))
        b = line.interpolate(min(line.length, line.length / 2 + 0.01))
        (x, y), (ax, ay), (bx, by) = (self.L.to_page(mid.x, mid.y), self.L.to_page(a.x, a.y),
                                      self.L.to_page(b.x, b.y))
        ang = math.atan2(by - ay, bx - ax)
        tip = (x + math.cos(ang) * size * 0.6, y + math.sin(ang) * size * 0.6)
        back = (x - math.cos(ang) * size * 0.4, y - math.sin(ang) * size * 0.4)
        left = (back[0] - math.sin(ang) * size * 0.45, back[1] + math.cos(ang) * size * 0.45)
        right = (back[0] + math.sin(ang) * size * 0.45, back[1] - math.cos(ang) * size * 0.45)
        self.color(color, fill=True)
        p = self.c.beginPath()
        p.moveTo(*tip)
        p.lineTo(*left)
        p.lineTo(*right)
        p.close()
        self.c.drawPath(p, stroke=0, fill=1)

    def paragraph(self, html: str, x: float, top: float, width: float, size: float,
                  color: str = "#000000", leading: float | None = None) -> float:
        """CJK-wrapped text block; returns its height."""
        from reportlab.lib.colors import HexColor
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.platypus import Paragraph

        style = ParagraphStyle("s", fontName=self.font, fontSize=size,
                               leading=leading or size * 1.3, wordWrap="CJK",
                               textColor=HexColor(color))
        para = Paragraph(html, style)
        _, h = para.wrapOn(self.c, width, 10000)
        para.drawOn(self.c, x, top - h)
        return h


def _esc(s: Any) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------------------------
# The sheet
# ---------------------------------------------------------------------------------------------

def sheet_url(map_url: str, oaza: str, chiban: str, lat: float, lon: float) -> str:
    """The online map at the parcel (the page reads ``#map=z/lat/lon&oaza=..&chiban=..``)."""
    base = map_url.split("#", 1)[0]
    return (f"{base}#map=18/{lat:.6f}/{lon:.6f}&oaza={quote(oaza, safe='')}"
            f"&chiban={quote(chiban, safe='')}")


def _styles(project: Project) -> dict[str, dict[str, dict[str, str]]]:
    from publish.pages.pipe import WATER_CLASS_COLORS, _codelist_styles

    return {
        "sewer_flow": _codelist_styles(project, "sewer_pipe", "flow_type"),
        "sewer_material": _codelist_styles(project, "sewer_pipe", "material"),
        "water_class": _codelist_styles(project, "water_pipe", "pipe_class", WATER_CLASS_COLORS),
        "water_material": _codelist_styles(project, "water_pipe", "material"),
    }


def render_pipe_sheet(project: Project, public_gpkg: Path, *, oaza: str, chiban: str,
                      scale: int = 500, paper: str = "A4", out: Path, map_url: str,
                      data_dates: dict[str, str] | None = None,
                      today: dt.date | None = None) -> SheetResult:
    """Draw the sheet and return what was drawn (see :func:`make_pipe_sheet`)."""
    import qrcode
    from reportlab.pdfgen import canvas as pdfcanvas

    public_gpkg = Path(public_gpkg)
    oz, cb, parcels = find_parcel(public_gpkg, oaza, chiban)
    target = shapely.union_all(np.asarray(parcels.geometry.values))
    e0, n0, e1, n1 = target.bounds
    layout = plan_layout(paper, scale, ((e0 + e1) / 2, (n0 + n1) / 2))
    data = read_extent(public_gpkg, layout.extent)
    dates = data_dates if data_dates is not None else read_data_dates(public_gpkg)
    styles = _styles(project)
    font = sheet_font()
    to_ll = Transformer.from_crs(PLANE_CRS, STORE_CRS, always_xy=True)
    lon, lat = to_ll.transform(*layout.center)
    url = sheet_url(map_url, oz, cb, lat, lon)
    city = project.config.city
    today = today or dt.date.today()

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    c = pdfcanvas.Canvas(str(tmp), pagesize=(layout.page_w, layout.page_h), pageCompression=1)
    c.setTitle(f"{city.ja} {TEXT['title'][0]} {oz} {cb} (1/{layout.scale})")
    c.setAuthor(city.ja)
    c.setSubject(TEXT["disclaimer"][1])
    s = Sheet(c, layout, font)
    fx, fy, fw, fh = layout.frame
    k = layout.pt_per_m
    small = layout.scale >= 1000

    # ---- map content, clipped to the frame
    c.saveState()
    clip = c.beginPath()
    clip.rect(fx, fy, fw, fh)
    c.clipPath(clip, stroke=0, fill=0)
    c.setLineJoin(1)
    roads = data.get("road_segment")
    if roads is not None and len(roads):
        s.color("#e9e9e9", stroke=True)
        c.setLineCap(0)
        for geom, width in zip(roads.geometry, roads["width_m"], strict=True):
            wm = float(width) if _valid(width) else 4.0
            c.setLineWidth(max(0.5, wm * k))
            for line in _lines(geom):
                s.polyline(line.coords)
    c.setLineCap(1)
    pars = data.get("parcel")
    if pars is not None and len(pars):
        s.color("#8a8a8a", stroke=True)
        c.setLineWidth(0.35)
        for geom in pars.geometry:
            for ring in _rings(geom):
                s.polyline(ring, close=True)
    # the searched parcel: fill + strong outline (tests find it by TARGET_FILL)
    s.color(TARGET_FILL, fill=True)
    s.color("#e65100", stroke=True)
    c.setLineWidth(1.6)
    for ring in _rings(target):
        s.polyline(ring, close=True, fill=True)
    water = data.get("water_pipe")
    wclass = styles["water_class"]
    if water is not None and len(water):
        for geom, cls, dia in zip(water.geometry, water["pipe_class"], water["diameter_mm"],
                                  strict=True):
            s.color(wclass.get(cls, {}).get("color", "#00897b"), stroke=True)
            c.setLineWidth(weight_pt(dia))
            for line in _lines(geom):
                s.polyline(line.coords)
    sewer = data.get("sewer_pipe")
    sflow = styles["sewer_flow"]
    if sewer is not None and len(sewer):
        for geom, flow, dia in zip(sewer.geometry, sewer["flow_type"], sewer["diameter_mm"],
                                   strict=True):
            col = sflow.get(flow, {}).get("color", "#d62728")
            s.color(col, stroke=True)
            c.setLineWidth(weight_pt(dia))
            for line in _lines(geom):
                s.polyline(line.coords)
                s.arrow(line, col, (2.4 if small else 3.2) * MM)
    mhs = data.get("sewer_manhole")
    r_mh = (0.75 if small else 1.0) * MM
    if mhs is not None and len(mhs):
        c.setLineWidth(0.7)
        for geom, flow in zip(mhs.geometry, mhs["flow_type"], strict=True):
            if isinstance(geom, Point):
                x, y = layout.to_page(geom.x, geom.y)
                s.color("#ffffff", fill=True)
                s.color(sflow.get(flow, {}).get("color", "#555555"), stroke=True)
                c.circle(x, y, r_mh, stroke=1, fill=1)
    hyd = data.get("water_valve")
    if hyd is not None and len(hyd):
        c.setLineWidth(0.6)
        for geom in hyd.geometry:
            if isinstance(geom, Point):
                x, y = layout.to_page(geom.x, geom.y)
                s.color("#d32f2f", fill=True)
                s.color("#ffffff", stroke=True)
                c.circle(x, y, 1.3 * MM, stroke=1, fill=1)
    c.restoreState()

    # ---- labels (collision-checked, most important first)
    tc = target.representative_point()
    tx, ty = layout.to_page(tc.x, tc.y)
    tlabel = f"{oz} {cb}"
    tw = c.stringWidth(tlabel, font, 9)
    s.placed.append(box(tx - tw / 2 - 2, ty - 4, tx + tw / 2 + 2, ty + 11))
    # keep labels off the stamp, the north arrow and the scale bar (drawn after the labels)
    nax, nay = fx + fw - 12 * MM, fy + fh - 20 * MM
    bx, by = layout.bar_xy
    s.placed += [box(fx, fy + fh - 18 * MM, fx + 36 * MM, fy + fh),
                 box(nax - 10 * MM, nay - 7 * MM, nax + 10 * MM, nay + 16 * MM),
                 box(bx - 3 * MM, by - 5 * MM, bx + layout.bar_pt + 32 * MM,
                     by + layout.bar_h + 5.5 * MM)]
    fsize = 5.2 if small else 6.0
    labelled = {"sewer_pipe": 0, "water_pipe": 0}
    if sewer is not None:
        for geom, flow_ja, mat, dia in zip(sewer.geometry, sewer["flow_type_ja"],
                                           sewer["material"], sewer["diameter_mm"], strict=True):
            pre = str(flow_ja)[0] if _valid(flow_ja) and str(flow_ja) else ""
            lab = f"{pre}φ{int(dia)}" if _valid(dia) else f"{pre}φ?"
            lab += f" {mat}" if _valid(mat) else ""
            for line in _lines(geom)[:1]:
                if s.label_on_line(line, lab, fsize, "#222222", weight_pt(dia) / 2 + 1.5 * MM):
                    labelled["sewer_pipe"] += 1
    if water is not None:
        for geom, mat, dia in zip(water.geometry, water["material"], water["diameter_mm"],
                                  strict=True):
            lab = f"{WATER_PREFIX}φ{int(dia)}" if _valid(dia) else f"{WATER_PREFIX}φ?"
            lab += f" {mat}" if _valid(mat) else ""
            for line in _lines(geom)[:1]:
                if s.label_on_line(line, lab, fsize, "#004d40", weight_pt(dia) / 2 + 1.2):
                    labelled["water_pipe"] += 1
    if mhs is not None and not small:
        for geom, mid in zip(mhs.geometry, mhs["mh_id"], strict=True):
            if isinstance(geom, Point) and _valid(mid):
                x, y = layout.to_page(geom.x, geom.y)
                w = c.stringWidth(str(mid), font, 4.5)
                poly = s.free(x + r_mh + 0.8, y + r_mh * 0.4, w, 4.5, 0.0, "start")
                if poly is not None:
                    s.placed.append(poly)
                    s.text(x + r_mh + 0.8, y + r_mh * 0.4, str(mid), 4.5, anchor="start",
                           color="#5d4037")
    if pars is not None:
        for geom, lab in zip(pars.geometry, pars["chiban"], strict=True):
            if not _valid(lab) or geom.equals(target):
                continue
            pt = geom.representative_point()
            x, y = layout.to_page(pt.x, pt.y)
            w = c.stringWidth(str(lab), font, 5.5)
            poly = s.free(x, y - 2, w, 5.5, 0.0)
            if poly is not None:
                s.placed.append(poly)
                s.text(x, y - 2, str(lab), 5.5, color="#616161")
    s.text(tx, ty, tlabel, 9, color="#bf360c", halo=True)

    # ---- frame furniture: border, corner coordinates, north arrow, scale bar, stamp
    c.setLineWidth(0.8)
    s.color("#000000", stroke=True)
    c.rect(fx, fy, fw, fh, stroke=1, fill=0)
    ex0, en0, ex1, en1 = layout.extent
    s.text(fx, fy - 3.2 * MM, f"X={en0:,.1f}  Y={ex0:,.1f}", 5.5, anchor="start",
           color="#444444")
    s.text(fx + fw, fy + fh + 1.2 * MM, f"X={en1:,.1f}  Y={ex1:,.1f}", 5.5, anchor="end",
           color="#444444")
    conv = _convergence(lon, lat)
    _north_arrow(s, nax, nay, conv)
    _scale_bar(s, layout)
    _stamp(s, fx + 4 * MM, fy + fh - 4 * MM)

    # ---- title block
    top = layout.page_h - 10 * MM
    c.setFont(font, 14 if layout.paper == "A4" else 17)
    s.color("#000000", fill=True)
    c.drawString(10 * MM, top - 6.5 * MM,
                 f"{city.ja} {TEXT['title'][0]}　大字 {oz}　地番 {cb}")
    c.setFont(font, 7.5)
    s.color("#333333", fill=True)
    c.drawString(10 * MM, top - 11 * MM,
                 f"{city.en} — {TEXT['title'][1]}: {oz} lot {cb}")
    scale_txt = (f"縮尺 1/{layout.scale}（{layout.paper}・100%印刷時）"
                 f"  Scale 1:{layout.scale} on {layout.paper} at 100 % (actual size)")
    c.setFont(font, 7.5)
    c.drawString(10 * MM, top - 14.5 * MM, scale_txt)

    # ---- legend, notes, QR
    counts = {lid: len(g) for lid, g in data.items()}
    _panel(s, layout, data, styles, dates, url, project, oz, cb, today, qrcode)
    c.showPage()
    c.save()
    tmp.replace(out)
    return SheetResult(out, layout, oz, cb, [str(v) for v in parcels.get("fid", [])], url,
                       dates, counts)


def make_pipe_sheet(project: Project, public_gpkg: Path, *, oaza: str, chiban: str,
                    scale: int = 500, paper: str = "A4", out: Path, map_url: str,
                    data_dates: dict[str, str] | None = None) -> Path:
    """Write a one-page pipe sheet PDF for the parcel ``oaza`` + ``chiban``; returns ``out``.

    ``chiban`` may be spelled any way the ETL understands ("123-4", "１２３－４", "123番4",
    "123の4"); ``paper`` is A4 or A3, portrait unless it ends in ``-landscape``. Unknown parcels
    raise :class:`PipeSheetError` with close matches. ``map_url`` is the online pipe map; the QR
    code links there, centred on the parcel.
    """
    return render_pipe_sheet(project, public_gpkg, oaza=oaza, chiban=chiban, scale=scale,
                             paper=paper, out=out, map_url=map_url, data_dates=data_dates).path


def _convergence(lon: float, lat: float) -> float:
    """Meridian convergence (degrees) of zone VII at the sheet: grid north vs true north."""
    try:
        return float(Proj(PLANE_CRS).get_factors(lon, lat).meridian_convergence)
    except Exception:  # pyproj raises several types for odd input; the arrow still works
        return 0.0


def _north_arrow(s: Sheet, x: float, y: float, conv: float) -> None:
    c = s.c
    h = 12 * MM
    c.saveState()
    s.color("#ffffff", fill=True)
    c.setStrokeAlpha(0)
    c.circle(x, y + h * 0.45, 7.5 * MM, stroke=0, fill=1)
    c.restoreState()
    s.color("#000000", fill=True)
    s.color("#000000", stroke=True)
    c.setLineWidth(0.6)
    p = c.beginPath()
    p.moveTo(x, y + h)
    p.lineTo(x - 2.6 * MM, y)
    p.lineTo(x, y + 2.5 * MM)
    p.close()
    c.drawPath(p, stroke=1, fill=1)
    p = c.beginPath()
    p.moveTo(x, y + h)
    p.lineTo(x + 2.6 * MM, y)
    p.lineTo(x, y + 2.5 * MM)
    p.close()
    s.color("#ffffff", fill=True)
    c.drawPath(p, stroke=1, fill=1)
    s.text(x, y + h + 1.2 * MM, "N", 9, color="#000000")
    s.text(x, y - 3 * MM, "座標北 grid north", 4.5, color="#333333")
    s.text(x, y - 5.2 * MM, f"真北との差 {abs(conv):.2f}°", 4.5, color="#333333")


def _scale_bar(s: Sheet, layout: SheetLayout) -> None:
    """Scale bar: one outlined rectangle of exactly ``bar_pt`` (tests measure it), halves filled."""
    c = s.c
    x, y = layout.bar_xy
    w, h = layout.bar_pt, layout.bar_h
    s.color("#ffffff", fill=True)
    c.rect(x - 3 * MM, y - 5 * MM, w + 14 * MM, h + 10.5 * MM, stroke=0, fill=1)
    s.color("#000000", fill=True)
    s.color("#000000", stroke=True)
    c.setLineWidth(0.5)
    c.rect(x, y, w / 2, h, stroke=0, fill=1)
    c.rect(x, y, w, h, stroke=1, fill=0)  # the bar itself: width == bar_pt
    half = layout.bar_m / 2

    def fmt(v: float) -> str:
        return f"{v:g}"

    s.text(x, y - 3 * MM, "0", 6)
    s.text(x + w / 2, y - 3 * MM, fmt(half), 6)
    s.text(x + w, y - 3 * MM, f"{fmt(layout.bar_m)} m", 6)
    s.text(x, y + h + 1.4 * MM, f"縮尺 1/{layout.scale}  Scale 1:{layout.scale}", 6.5,
           anchor="start")
    s.text(x + w + 2 * MM, y + 0.2 * MM,
           f"{fmt(layout.bar_m)} m = {layout.bar_pt / MM:.2f} mm = {layout.bar_pt:.2f} pt",
           4.5, anchor="start", color="#333333")


def _stamp(s: Sheet, x: float, top: float) -> None:
    """The red 「参考図」 stamp (top left of the frame)."""
    c = s.c
    w, h = 30 * MM, 12.5 * MM
    c.saveState()
    s.color("#ffffff", fill=True)
    s.color("#c62828", stroke=True)
    c.setLineWidth(1.6)
    c.roundRect(x, top - h, w, h, 1.5 * MM, stroke=1, fill=1)
    c.setLineWidth(0.5)
    c.roundRect(x + 1 * MM, top - h + 1 * MM, w - 2 * MM, h - 2 * MM, 1 * MM, stroke=1, fill=0)
    c.restoreState()
    s.text(x + w / 2, top - 7.3 * MM, TEXT["stamp"][0], 17, color="#c62828")
    s.text(x + w / 2, top - 10.6 * MM, TEXT["stamp"][1], 6, color="#c62828")


def _legend_line(s: Sheet, x: float, y: float, color: str, width: float, label: str,
                 arrow: bool = False) -> None:
    c = s.c
    s.color(color, stroke=True)
    c.setLineWidth(width)
    c.setLineCap(0)
    c.line(x, y + 1.2, x + 8 * MM, y + 1.2)
    if arrow:
        s.color(color, fill=True)
        p = c.beginPath()
        ax = x + 4 * MM
        p.moveTo(ax + 1.6 * MM, y + 1.2)
        p.lineTo(ax - 0.9 * MM, y + 1.2 + 1.1 * MM)
        p.lineTo(ax - 0.9 * MM, y + 1.2 - 1.1 * MM)
        p.close()
        c.drawPath(p, stroke=0, fill=1)
    s.text(x + 9.5 * MM, y, label, 6, anchor="start")


def _panel(s: Sheet, layout: SheetLayout, data: dict[str, gpd.GeoDataFrame],
           styles: dict[str, dict[str, dict[str, str]]], dates: dict[str, str], url: str,
           project: Project, oaza: str, chiban: str, today: dt.date, qrcode: Any) -> None:
    """Legend, abbreviations, disclaimer, data dates, sources and the QR code."""
    c = s.c
    fx, fy, fw, fh = layout.frame
    if layout.landscape:
        px, ptop, pw = fx + fw + 4 * MM, fy + fh, layout.page_w - 10 * MM - (fx + fw + 4 * MM)
        legend_w = pw
    else:
        px, ptop, pw = fx, fy - 6 * MM, fw
        legend_w = 62 * MM
    y = ptop
    s.text(px, y - 3 * MM, "凡例 Legend", 8, anchor="start")
    y -= 7.5 * MM
    sewer, water = data.get("sewer_pipe"), data.get("water_pipe")
    sflow, wclass = styles["sewer_flow"], styles["water_class"]
    rows: list[tuple[str, float, str, bool]] = []
    for code in (sorted(set(sewer["flow_type"].dropna())) if sewer is not None else []):
        e = sflow.get(code, {"ja": code, "en": code, "color": "#d62728"})
        rows.append((e["color"], 1.4, f"下水道 {e['ja']} {e['en']}（→ 流下方向）", True))
    for code in (sorted(set(water["pipe_class"].dropna())) if water is not None else []):
        e = wclass.get(code, {"ja": code, "en": code, "color": "#00897b"})
        rows.append((e["color"], 1.4, f"水道 {e['ja']} {e['en']}", False))
    if not rows:
        rows.append(("#999999", 0.5, "範囲内に管路なし / no pipes in this sheet", False))
    for color, width, label, arrow in rows:
        _legend_line(s, px, y, color, width, label, arrow)
        y -= 4 * MM
    # symbols
    items = [("mh", "マンホール Manhole"), ("hy", "消火栓 Fire hydrant"),
             ("pa", "筆（地番図） Parcel"), ("tg", "対象の筆 This parcel"),
             ("rd", "道路（幅員） Road (width)")]
    for kind, label in items:
        cx, cy = px + 4 * MM, y + 1.2
        if kind == "mh":
            s.color("#ffffff", fill=True)
            s.color("#555555", stroke=True)
            c.setLineWidth(0.7)
            c.circle(cx, cy, 1.0 * MM, stroke=1, fill=1)
        elif kind == "hy":
            s.color("#d32f2f", fill=True)
            s.color("#ffffff", stroke=True)
            c.circle(cx, cy, 1.3 * MM, stroke=1, fill=1)
        elif kind in ("pa", "tg"):
            s.color(TARGET_FILL if kind == "tg" else "#ffffff", fill=True)
            s.color("#e65100" if kind == "tg" else "#8a8a8a", stroke=True)
            c.setLineWidth(1.2 if kind == "tg" else 0.35)
            c.rect(px, cy - 1.4 * MM, 8 * MM, 2.8 * MM, stroke=1, fill=1)
        else:
            s.color("#e9e9e9", fill=True)
            c.rect(px, cy - 1.4 * MM, 8 * MM, 2.8 * MM, stroke=0, fill=1)
        s.text(px + 9.5 * MM, y, label, 6, anchor="start")
        y -= 4 * MM
    y -= 0.5 * MM
    # label format and material abbreviations present on this sheet
    mats: dict[str, str] = {}
    for lid, key in (("sewer_pipe", "sewer_material"), ("water_pipe", "water_material")):
        g = data.get(lid)
        if g is not None:
            for code in sorted(set(g["material"].dropna())):
                mats.setdefault(str(code), styles[key].get(code, {}).get("ja", str(code)))
    note = ("ラベル: 汚φ200 VU = 汚水・管径200mm・管種VU（雨=雨水, 合=合流, 水=水道）。"
            "線の太さは管径を表す。 Label: flow type, diameter (mm), material.")
    if mats:
        note += "<br/>管種 Material: " + "、".join(f"{_esc(k)} {_esc(v)}"
                                                  for k, v in mats.items())
    y -= s.paragraph(note, px, y, legend_w - 2 * MM, 5.5) + 2 * MM

    # notes column (portrait: next to the legend; landscape: below it)
    qr_mm = 24.0 if layout.paper == "A4" else 30.0
    if layout.landscape:
        nx, ntop, nw = px, y, pw
    else:
        nx, ntop, nw = px + legend_w + 3 * MM, ptop, pw - legend_w - qr_mm * MM - 7 * MM
    pc = project.config.publish
    uniq = sorted(set(dates.values()))
    shown = [lid for lid in ("sewer_pipe", "water_pipe", "water_valve", "sewer_manhole",
                             "parcel", "road_segment") if lid in dates]
    if len(uniq) == 1:
        date_txt = uniq[0]
    elif uniq:
        date_txt = "、".join(f"{project.specs[lid].title.ja} {dates[lid]}" for lid in shown
                            if lid in project.specs)
    else:
        date_txt = "不明 unknown"
    sources = []
    for lid in shown or ("sewer_pipe", "water_pipe", "parcel", "road_segment"):
        spec = project.specs.get(lid)
        if spec and spec.attribution.ja not in sources:
            sources.append(spec.attribution.ja)
    h = s.paragraph(f"<b>注意</b>　{_esc(TEXT['disclaimer'][0])}", nx, ntop, nw, 6.4)
    h += s.paragraph(f"Notice: {_esc(TEXT['disclaimer'][1])}", nx, ntop - h - 1 * MM, nw, 5.4)
    h += 2.5 * MM
    contact = pc.contact_name + (f"（{pc.contact_phone}）" if pc.contact_phone else "")
    facts = (f"データ時点 Data as of: {_esc(date_txt)}<br/>"
             f"出典 Sources: {_esc('、'.join(sources))}<br/>"
             f"座標系: JGD2011 平面直角座標系 第VII系 (EPSG:6675)、図郭座標 X=北 Y=東 [m]<br/>"
             f"作成日 Issued: {today.isoformat()}　問い合わせ Contact: {_esc(contact)}")
    s.paragraph(facts, nx, ntop - h, nw, 6.0)

    # QR code (vector modules) + URL
    q = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_M)
    q.add_data(url)
    q.make(fit=True)
    matrix = q.get_matrix()
    n = len(matrix)
    size = qr_mm * MM
    if layout.landscape:
        qx, qtop = px + pw - size, fy + size + 12 * MM
    else:
        qx, qtop = px + pw - size, ptop
    cell = size / n
    s.color("#000000", fill=True)
    for r, row in enumerate(matrix):
        for col, on in enumerate(row):
            if on:
                c.rect(qx + col * cell, qtop - (r + 1) * cell, cell, cell, stroke=0, fill=1)
    s.text(qx + size / 2, qtop - size - 3 * MM, "オンライン地図 Online map", 5.5)
    s.paragraph(_esc(url), qx, qtop - size - 4.5 * MM, size, 3.6, color="#333333")
