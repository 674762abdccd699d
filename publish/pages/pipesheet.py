"""One-page pipe sheets (配管参考図) at a true, fixed scale, for housing and real-estate firms.

Why a server-side PDF at a fixed scale: peers hand out A4 1/500 copies at the counter
(peer-systems.md), and a browser print of a web map has no reliable scale. Here the map is drawn
in the city's plane zone (``target_crs``, metres), so 1 m on the ground is exactly
``1000 / scale`` mm on paper when printed at 100 % ("actual size"); the scale bar, the corner
coordinates and a ``SheetLayout`` returned by :func:`render_pipe_sheet` say the same. The zone
printed on the sheet is the name pyproj gives the CRS.

What is drawn comes from the roles (:func:`publish.pages.roles.sheet_roles`): the parcel layer
(大字・地番), the pipe layers and every other layer of the page holding them, with the page's
colours (code lists), widths and labels. Only the **public store** is read (allow-listed
columns, public rows), so an internal field or a withheld pipe cannot appear on a sheet.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import json
import math
import re
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
from pyproj import CRS, Proj, Transformer
from shapely.geometry import LineString, MultiLineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from config import Project
from config.errors import EtlError
from config.messages import MESSAGES
from config.models import LayerSpec
from etl.normalize import apply_normalizer
from etl.normalize import nfkc as nfkc_series
from etl.schema import public_columns
from publish.pages import roles, sheet_table

STORE_CRS = "EPSG:4326"
MM = 72.0 / 25.4  # PDF points per millimetre
PAPERS_MM = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
SCALES = (250, 500, 1000, 2500)
IPAEX_FONT = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
CID_FONT = "HeiseiKakuGo-W5"  # reportlab built-in; needs no file, not embedded
TARGET_FILL = "#fff176"  # the searched parcel's fill (tests find its path by this colour)
TARGET_LINE = "#e65100"
GROUND_WIDTH_M = 4.0  # a line drawn at its true width (e.g. a road) with no width recorded
PX_TO_MM = 0.27  # web map point radius (px) -> printed radius (mm)
#: "JGD2011 / Japan Plane Rectangular CS VII" -> "VII" (the zone as pyproj names it)
ZONE_RE = re.compile(r"Plane Rectangular CS ([IVXL]+)\b")


class PipeSheetError(EtlError):
    """A pipe sheet cannot be made (unknown parcel, bad scale...): bilingual, CLI exit 1.

    Messages name the parcel and the fix, never a server path (they reach API clients).
    """


def ja(key: str, **kw: object) -> str:
    return MESSAGES[key][0].format(**kw)


def en(key: str, **kw: object) -> str:
    return MESSAGES[key][1].format(**kw)


def jaen(key: str, sep: str = " ", **kw: object) -> str:
    """Japanese and English of a catalogue entry on one line (the sheet shows both)."""
    return f"{ja(key, **kw)}{sep}{en(key, **kw)}"


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
    center: tuple[float, float]  # E, N in the plane CRS, metres (the frame's centre)
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
    #: the tables printed after the map (pipes in the frame, the parcel's connections)
    tables: list[sheet_table.Table] = field(default_factory=list)
    pages: int = 1


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
    """The ETL's ``nfkc`` (parcel specs normalize 大字名 with it)."""
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


def sheet_layers(project: Project) -> roles.SheetRoles:
    """The sheet's layers by role, or a PipeSheetError saying which roles are missing."""
    found = roles.sheet_roles(project)
    if found is None:
        raise PipeSheetError("sheet_roles_missing")
    return found


def find_parcel(gpkg: Path, oaza: str, chiban: str, parcel: LayerSpec,
                plane: str) -> tuple[str, str, gpd.GeoDataFrame]:
    """(oaza, chiban, parcels in the plane CRS) for user input, or a PipeSheetError with hints."""
    if not gpkg.is_file():
        raise PipeSheetError("sheet_store_missing")
    pr = parcel.map.parcel
    assert pr is not None
    table, fo, fc = parcel.id, pr.oaza_field, pr.chiban_field
    oz = normalize_oaza(oaza)
    cb = normalize_chiban(chiban)
    if cb is None:
        raise PipeSheetError("sheet_bad_chiban", raw=chiban)
    con = _connect(gpkg)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
        if table not in tables:
            raise PipeSheetError("sheet_no_parcels", layer=table)
        pk = next(r[1] for r in con.execute(f'PRAGMA table_info("{table}")') if r[5])
        rids = [int(r[0]) for r in con.execute(
            f'SELECT "{pk}" FROM "{table}" WHERE "{fo}" = ? AND "{fc}" = ?', (oz, cb))]
        if not rids:
            known = [r[0] for r in con.execute(
                f'SELECT DISTINCT "{fo}" FROM "{table}" WHERE "{fo}" IS NOT NULL')]
            if oz not in known:
                close = difflib.get_close_matches(oz, known, n=5, cutoff=0.3)
                raise PipeSheetError("sheet_unknown_oaza", oaza=oz, **_hint("oaza", close))
            main = cb.split("-")[0]
            near = [r[0] for r in con.execute(
                f'SELECT "{fc}" FROM "{table}" WHERE "{fo}" = ? AND ("{fc}" = ? OR "{fc}" LIKE ?)',
                (oz, main, f"{main}-%"))]
            near = sorted(set(near), key=_chiban_key)[:10]
            raise PipeSheetError("sheet_unknown_chiban", oaza=oz, chiban=cb, raw=chiban,
                                 **_hint("chiban", near))
    finally:
        con.close()
    gdf = pyogrio.read_dataframe(gpkg, layer=table, fids=rids)
    return oz, cb, gdf.to_crs(plane)


def _hint(kind: str, values: Sequence[str]) -> dict[str, str]:
    if not values:
        return {"hint_ja": "", "hint_en": ""}
    v = ", ".join(values)
    return {"hint_ja": ja(f"sheet_hint_{kind}", v=v), "hint_en": en(f"sheet_hint_{kind}", v=v)}


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
# The plane CRS, as pyproj names it
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlaneCRS:
    """The sheet's CRS: its name and code (pyproj), the zone, and the axis order."""

    crs: CRS
    name: str  # e.g. "JGD2011 / Japan Plane Rectangular CS VII"
    code: str  # e.g. "EPSG:66xx"
    zone: str | None  # e.g. "VII" (Japanese plane rectangular CS only)
    axes: tuple[tuple[str, str], ...]  # (abbreviation, "north" | "east") in the CRS's order

    @classmethod
    def of(cls, target_crs: str) -> PlaneCRS:
        crs = CRS.from_user_input(target_crs)
        auth = crs.to_authority()
        code = f"{auth[0]}:{auth[1]}" if auth else target_crs
        m = ZONE_RE.search(crs.name)
        axes = tuple((a.abbrev or a.name, "north" if a.direction.lower().startswith("north")
                      else "east") for a in crs.axis_info[:2])
        return cls(crs, crs.name, code, m.group(1) if m else None, axes)

    def corner(self, e: float, n: float) -> str:
        """``X=91,800.0  Y=21,600.0`` in the CRS's own axis names and order."""
        return "  ".join(f"{abbr}={(n if d == 'north' else e):,.1f}" for abbr, d in self.axes)

    def label(self) -> str:
        """The CRS line of the sheet (pyproj's name; the zone in Japanese when it has one)."""
        zone = f"{ja('sheet_zone', zone=self.zone)}, " if self.zone else ""
        axes = " ".join(f"{abbr}={ja('sheet_axis_' + d)}" for abbr, d in self.axes)
        axes_en = " ".join(f"{abbr}={en('sheet_axis_' + d)}" for abbr, d in self.axes)
        return (f"{jaen('sheet_crs')}: {zone}{self.name} ({self.code}), "
                f"{ja('sheet_frame_xy', axes=axes)} / {en('sheet_frame_xy', axes=axes_en)}")



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
# The layers of the sheet and their style (the page's: colours from code lists)
# ---------------------------------------------------------------------------------------------

def _tint(color: str, white: float) -> str:
    """``color`` mixed with white (0..1): a band drawn at ground width stays light."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * white):02x}" for c in rgb)


class SheetLayer:
    """One layer of the sheet: what to read and how to draw it (from its ``map:`` block)."""

    def __init__(self, project: Project, spec: LayerSpec) -> None:
        self.spec, self.map = spec, spec.map
        self.id = spec.id
        g = spec.geometry_type
        self.geometry = "point" if "Point" in g else "line" if "Line" in g else "polygon"
        units = {c.name: c.unit for c in public_columns(spec)}
        self.colors = roles.code_styles(project, roles.codelist_of(spec, self.map.color_by))
        wb = self.map.width_by
        #: drawn at its true width on the ground (e.g. 幅員 of a road, in metres)
        self.ground = bool(wb and units.get(wb.field) == "m" and self.geometry == "line")
        self.title = roles.i18n(spec.title)
        pipe = self.map.pipe
        self.utility = roles.i18n(pipe.utility_title, pipe.utility) if pipe else None

    def columns(self) -> list[str]:
        m = self.map
        cols = [m.color_by, m.width_by.field if m.width_by else None]
        if m.labels:
            for f in m.labels.fields:
                cols += [f, f"{f}_ja"]
        if m.parcel:
            cols += [m.parcel.oaza_field, m.parcel.chiban_field]
        if m.pipe:
            cols += [m.pipe.diameter_field, m.pipe.material_field]
        return sorted({c for c in cols if c})

    def color(self, row: Any) -> str:
        v = row.get(self.map.color_by) if self.map.color_by else None
        if v is not None and not pd.isna(v):
            e = self.colors.get(roles._plain(v) or "")
            if e:
                return str(e["color"])
        return self.map.color

    def width_pt(self, row: Any) -> float:
        """Printed line width: the web width (px) scaled to what reads well on paper."""
        wb = self.map.width_by
        px = roles.width_for(row.get(wb.field), wb.classes, self.map.weight) if wb \
            else self.map.weight
        return 0.3 + 0.33 * px

    def ground_m(self, row: Any) -> float:
        wb = self.map.width_by
        try:
            v = float(row.get(wb.field)) if wb else GROUND_WIDTH_M
        except (TypeError, ValueError):
            return GROUND_WIDTH_M
        return GROUND_WIDTH_M if math.isnan(v) or v <= 0 else v

    def label(self, row: Any) -> str | None:
        lab = self.map.labels
        if lab is None or all(not _valid(row.get(f)) for f in lab.fields):
            return None
        tpl = lab.template.ja if lab.template else " ".join(f"{{{f}}}" for f in lab.fields)
        return roles.fill_template(tpl, lambda k: row.get(k), lambda k: row.get(f"{k}_ja"))


def read_extent(gpkg: Path, extent: tuple[float, float, float, float], layers: list[SheetLayer],
                plane: str) -> dict[str, gpd.GeoDataFrame]:
    """Public features intersecting the frame, in the plane CRS and clipped to it."""
    e0, n0, e1, n1 = extent
    to_ll = Transformer.from_crs(plane, STORE_CRS, always_xy=True)
    xs, ys = to_ll.transform([e0, e1, e0, e1], [n0, n0, n1, n1])
    bbox = (min(xs), min(ys), max(xs), max(ys))
    frame = box(e0, n0, e1, n1)
    have = {str(n) for n in pyogrio.list_layers(gpkg)[:, 0]}
    out: dict[str, gpd.GeoDataFrame] = {}
    for lay in layers:
        if lay.id not in have:
            continue
        cols = lay.columns()
        fields = set(pyogrio.read_info(gpkg, layer=lay.id)["fields"])
        gdf = pyogrio.read_dataframe(gpkg, layer=lay.id, columns=[c for c in cols if c in fields],
                                     bbox=bbox)
        for c in cols:
            if c not in gdf.columns:
                gdf[c] = None
        gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)].to_crs(plane)
        if lay.geometry != "polygon":  # polygons are clipped by the PDF clip path (labels)
            gdf = gdf.set_geometry(gdf.geometry.intersection(frame))
            gdf = gdf[~gdf.geometry.is_empty]
        out[lay.id] = gdf
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


def _rows(gdf: gpd.GeoDataFrame) -> Iterable[tuple[BaseGeometry, dict[str, Any]]]:
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    for geom, *vals in zip(gdf.geometry, *(gdf[c] for c in cols), strict=True):
        yield geom, dict(zip(cols, vals, strict=True))


def render_pipe_sheet(project: Project, public_gpkg: Path, *, oaza: str, chiban: str,
                      scale: int = 500, paper: str = "A4", out: Path, map_url: str,
                      data_dates: dict[str, str] | None = None,
                      today: dt.date | None = None) -> SheetResult:
    """Draw the sheet and return what was drawn (see :func:`make_pipe_sheet`)."""
    import qrcode
    from reportlab.pdfgen import canvas as pdfcanvas

    public_gpkg = Path(public_gpkg)
    found = sheet_layers(project)
    plane = PlaneCRS.of(project.config.target_crs)
    oz, cb, parcels = find_parcel(public_gpkg, oaza, chiban, found.parcel, plane.code)
    target = shapely.union_all(np.asarray(parcels.geometry.values))
    e0, n0, e1, n1 = target.bounds
    layout = plan_layout(paper, scale, ((e0 + e1) / 2, (n0 + n1) / 2))
    layers = [SheetLayer(project, s) for s in found.layers]
    data = read_extent(public_gpkg, layout.extent, layers, plane.code)
    dates = data_dates if data_dates is not None else read_data_dates(public_gpkg)
    font = sheet_font()
    to_ll = Transformer.from_crs(plane.code, STORE_CRS, always_xy=True)
    lon, lat = to_ll.transform(*layout.center)
    url = sheet_url(map_url, oz, cb, lat, lon)
    city = project.config.city
    today = today or dt.date.today()
    pipes = [lay for lay in layers if lay.map.role == "pipe"]
    utilities = "・".join(lay.utility["ja"] for lay in pipes if lay.utility)
    utilities_en = ", ".join(lay.utility["en"] for lay in pipes if lay.utility)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    c = pdfcanvas.Canvas(str(tmp), pagesize=(layout.page_w, layout.page_h), pageCompression=1)
    c.setTitle(f"{city.ja} {utilities} {ja('sheet_title')} {oz} {cb} (1/{layout.scale})")
    c.setAuthor(city.ja)
    c.setSubject(_notice(project)[1])
    s = Sheet(c, layout, font)
    fx, fy, fw, fh = layout.frame
    k = layout.pt_per_m
    small = layout.scale >= 1000

    def present(lay: SheetLayer) -> gpd.GeoDataFrame | None:
        g = data.get(lay.id)
        return g if g is not None and len(g) else None

    # ---- map content, clipped to the frame: ground bands, areas, the parcel, lines, points
    c.saveState()
    clip = c.beginPath()
    clip.rect(fx, fy, fw, fh)
    c.clipPath(clip, stroke=0, fill=0)
    c.setLineJoin(1)
    for lay in layers:
        g = present(lay)
        if g is None or not lay.ground:
            continue
        c.setLineCap(0)
        for geom, row in _rows(g):
            s.color(_tint(lay.color(row), 0.75), stroke=True)
            c.setLineWidth(max(0.5, lay.ground_m(row) * k))
            for line in _lines(geom):
                s.polyline(line.coords)
    c.setLineCap(1)
    for lay in layers:
        g = present(lay)
        if g is None or lay.geometry != "polygon":
            continue
        c.setLineWidth(0.35)
        for geom, row in _rows(g):
            s.color(lay.color(row), stroke=True)
            for ring in _rings(geom):
                s.polyline(ring, close=True)
    # the searched parcel: fill + strong outline (tests find it by TARGET_FILL)
    s.color(TARGET_FILL, fill=True)
    s.color(TARGET_LINE, stroke=True)
    c.setLineWidth(1.6)
    for ring in _rings(target):
        s.polyline(ring, close=True, fill=True)
    for lay in layers:
        g = present(lay)
        if g is None or lay.geometry != "line" or lay.ground:
            continue
        for geom, row in _rows(g):
            col = lay.color(row)
            s.color(col, stroke=True)
            c.setLineWidth(lay.width_pt(row))
            for line in _lines(geom):
                s.polyline(line.coords)
                if lay.map.arrows:
                    s.arrow(line, col, (2.4 if small else 3.2) * MM)
    radius: dict[str, float] = {}
    for lay in layers:
        g = present(lay)
        if g is None or lay.geometry != "point":
            continue
        r = lay.map.radius * PX_TO_MM * MM * (0.75 if small else 1.0)
        radius[lay.id] = r
        st = lay.map
        c.setLineWidth(0.7 if st.fill else 0.6)
        for geom, row in _rows(g):
            if isinstance(geom, Point):
                x, y = layout.to_page(geom.x, geom.y)
                col = lay.color(row)
                s.color(st.fill or col, fill=True)
                s.color(st.outline or (col if st.fill else "#ffffff"), stroke=True)
                c.circle(x, y, r, stroke=1, fill=1)
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
    examples: dict[str, str] = {}
    labelled: dict[str, int] = {}
    for lay in [lay for lay in layers if lay.geometry == "line"] + \
               [lay for lay in layers if lay.geometry == "point"]:
        g = present(lay)
        if g is None or lay.map.labels is None or (lay.geometry == "point" and small):
            continue
        labelled[lay.id] = 0
        for geom, row in _rows(g):
            lab = lay.label(row)
            if not lab:
                continue
            if lay.geometry == "line":
                for line in _lines(geom)[:1]:
                    if s.label_on_line(line, lab, fsize, "#222222",
                                       lay.width_pt(row) / 2 + 1.5 * MM):
                        labelled[lay.id] += 1
                        examples.setdefault(lay.id, lab)
            elif isinstance(geom, Point):
                r = radius.get(lay.id, 1 * MM)
                x, y = layout.to_page(geom.x, geom.y)
                w = c.stringWidth(lab, font, 4.5)
                poly = s.free(x + r + 0.8, y + r * 0.4, w, 4.5, 0.0, "start")
                if poly is not None:
                    s.placed.append(poly)
                    s.text(x + r + 0.8, y + r * 0.4, lab, 4.5, anchor="start", color="#5d4037")
                    labelled[lay.id] += 1
    for lay in layers:
        g = present(lay)
        if g is None or lay.geometry != "polygon" or lay.map.labels is None:
            continue
        for geom, row in _rows(g):
            lab = lay.label(row)
            if not lab or geom.equals(target):
                continue
            pt = geom.representative_point()
            x, y = layout.to_page(pt.x, pt.y)
            w = c.stringWidth(lab, font, 5.5)
            poly = s.free(x, y - 2, w, 5.5, 0.0)
            if poly is not None:
                s.placed.append(poly)
                s.text(x, y - 2, lab, 5.5, color="#616161")
    s.text(tx, ty, tlabel, 9, color="#bf360c", halo=True)

    # ---- frame furniture: border, corner coordinates, north arrow, scale bar, stamp
    c.setLineWidth(0.8)
    s.color("#000000", stroke=True)
    c.rect(fx, fy, fw, fh, stroke=1, fill=0)
    ex0, en0, ex1, en1 = layout.extent
    s.text(fx, fy - 3.2 * MM, plane.corner(ex0, en0), 5.5, anchor="start", color="#444444")
    s.text(fx + fw, fy + fh + 1.2 * MM, plane.corner(ex1, en1), 5.5, anchor="end",
           color="#444444")
    conv = _convergence(plane.code, lon, lat)
    _north_arrow(s, nax, nay, conv)
    _scale_bar(s, layout)
    _stamp(s, fx + 4 * MM, fy + fh - 4 * MM)

    # ---- title block
    top = layout.page_h - 10 * MM
    c.setFont(font, 14 if layout.paper == "A4" else 17)
    s.color("#000000", fill=True)
    util_ja = f"{utilities} " if utilities else ""
    util_en = f"{utilities_en} " if utilities_en else ""
    c.drawString(10 * MM, top - 6.5 * MM, ja("sheet_heading", city=city.ja, utilities=util_ja,
                                              title=ja("sheet_title"), oaza=oz, chiban=cb))
    c.setFont(font, 7.5)
    s.color("#333333", fill=True)
    c.drawString(10 * MM, top - 11 * MM, en("sheet_heading", city=city.en, utilities=util_en,
                                            title=en("sheet_title"), oaza=oz, chiban=cb))
    c.setFont(font, 7.5)
    c.drawString(10 * MM, top - 14.5 * MM,
                 jaen("sheet_scale", sep="  ", scale=layout.scale, paper=layout.paper))

    # ---- legend, notes, QR
    counts = {lid: len(g) for lid, g in data.items()}
    _panel(s, layout, layers, data, examples, dates, url, project, plane, today, qrcode)
    c.showPage()
    # ---- then what the clerk copies: the pipes in the frame and the parcel's connections
    tables = [*sheet_table.pipe_tables(project, public_gpkg, list(found.pipes), layout.extent,
                                       plane.code),
              *sheet_table.connection_tables(project, public_gpkg, oz, cb)]
    pages = 1 + sheet_table.draw(
        c, (layout.page_w, layout.page_h), font,
        {"ja": ja("sheet_table_heading", oaza=oz, chiban=cb),
         "en": en("sheet_table_heading", oaza=oz, chiban=cb)},
        tables, {"ja": ja("sheet_table_note"), "en": en("sheet_table_note")})
    c.save()
    tmp.replace(out)
    return SheetResult(out, layout, oz, cb, [str(v) for v in parcels.get("fid", [])], url,
                       dates, counts, tables, pages)


def make_pipe_sheet(project: Project, public_gpkg: Path, *, oaza: str, chiban: str,
                    scale: int = 500, paper: str = "A4", out: Path, map_url: str,
                    data_dates: dict[str, str] | None = None) -> Path:
    """Write a one-page pipe sheet PDF for the parcel ``oaza`` + ``chiban``; returns ``out``.

    ``chiban`` may be spelled any way the ETL understands ("123-4", "１２３－４", "123番4",
    "123の4"); ``paper`` is A4 or A3, portrait unless it ends in ``-landscape``. Unknown parcels
    raise :class:`PipeSheetError` with close matches. ``map_url`` is the online map of the
    sheet's page; the QR code links there, centred on the parcel.
    """
    return render_pipe_sheet(project, public_gpkg, oaza=oaza, chiban=chiban, scale=scale,
                             paper=paper, out=out, map_url=map_url, data_dates=data_dates).path


def _notice(project: Project) -> tuple[str, str]:
    """The sheet's notice (ja, en): the terms of use the map asks consent to, else generic."""
    terms = project.config.publish.terms
    if terms is None:
        return ja("sheet_notice_default"), en("sheet_notice_default")
    return ("".join(p.ja for p in terms.paragraphs), " ".join(p.en for p in terms.paragraphs))


def _convergence(plane: str, lon: float, lat: float) -> float:
    """Meridian convergence (degrees) of the plane CRS at the sheet: grid vs true north."""
    try:
        return float(Proj(plane).get_factors(lon, lat).meridian_convergence)
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
    s.text(x, y - 3 * MM, jaen("sheet_grid_north"), 4.5, color="#333333")
    s.text(x, y - 5.2 * MM, ja("sheet_convergence", d=f"{abs(conv):.2f}"), 4.5, color="#333333")


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
    s.text(x, y + h + 1.4 * MM, jaen("sheet_scale_short", sep="  ", scale=layout.scale), 6.5,
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
    s.text(x + w / 2, top - 7.3 * MM, ja("sheet_stamp"), 17, color="#c62828")
    s.text(x + w / 2, top - 10.6 * MM, en("sheet_stamp"), 6, color="#c62828")


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


def _legend_symbol(s: Sheet, x: float, y: float, lay: SheetLayer | None, label: str) -> None:
    """One legend row for a point, area or ground-width layer (or the searched parcel)."""
    c = s.c
    cx, cy = x + 4 * MM, y + 1.2
    if lay is None:  # the searched parcel
        s.color(TARGET_FILL, fill=True)
        s.color(TARGET_LINE, stroke=True)
        c.setLineWidth(1.2)
        c.rect(x, cy - 1.4 * MM, 8 * MM, 2.8 * MM, stroke=1, fill=1)
    elif lay.geometry == "point":
        st = lay.map
        s.color(st.fill or st.color, fill=True)
        s.color(st.outline or (st.color if st.fill else "#ffffff"), stroke=True)
        c.setLineWidth(0.7)
        c.circle(cx, cy, st.radius * PX_TO_MM * MM, stroke=1, fill=1)
    elif lay.ground:
        s.color(_tint(lay.map.color, 0.75), fill=True)
        c.rect(x, cy - 1.4 * MM, 8 * MM, 2.8 * MM, stroke=0, fill=1)
    else:
        s.color("#ffffff", fill=True)
        s.color(lay.map.color, stroke=True)
        c.setLineWidth(0.35)
        c.rect(x, cy - 1.4 * MM, 8 * MM, 2.8 * MM, stroke=1, fill=1)
    s.text(x + 9.5 * MM, y, label, 6, anchor="start")


def _panel(s: Sheet, layout: SheetLayout, layers: list[SheetLayer],
           data: dict[str, gpd.GeoDataFrame], examples: dict[str, str], dates: dict[str, str],
           url: str, project: Project, plane: PlaneCRS, today: dt.date, qrcode: Any) -> None:
    """Legend, label key, notice, data dates, sources, CRS and the QR code."""
    fx, fy, fw, fh = layout.frame
    if layout.landscape:
        px, ptop, pw = fx + fw + 4 * MM, fy + fh, layout.page_w - 10 * MM - (fx + fw + 4 * MM)
        legend_w = pw
    else:
        px, ptop, pw = fx, fy - 6 * MM, fw
        legend_w = 62 * MM
    y = ptop
    s.text(px, y - 3 * MM, jaen("sheet_legend"), 8, anchor="start")
    y -= 7.5 * MM
    rows: list[tuple[str, float, str, bool]] = []
    for lay in layers:
        g = data.get(lay.id)
        if lay.geometry != "line" or lay.ground or g is None or not len(g):
            continue
        prefix = f"{lay.utility['ja']} " if lay.utility else ""
        arrow = f"（{ja('sheet_direction')}）" if lay.map.arrows else ""
        if lay.map.color_by and lay.colors:
            for code in sorted({roles._plain(v) for v in g[lay.map.color_by].dropna()}):
                e = lay.colors.get(code or "", {"ja": code, "en": code, "color": lay.map.color})
                rows.append((e["color"], 1.4, f"{prefix}{e['ja']} {e['en']}{arrow}",
                             lay.map.arrows))
        else:
            rows.append((lay.map.color, 1.4, f"{lay.title['ja']} {lay.title['en']}{arrow}",
                         lay.map.arrows))
    if not any(lay.map.role == "pipe" and len(data.get(lay.id, [])) for lay in layers):
        rows.append(("#999999", 0.5, jaen("sheet_no_pipes", sep=" / "), False))
    for color, width, label, arrow in rows:
        _legend_line(s, px, y, color, width, label, arrow)
        y -= 4 * MM
    symbols: list[tuple[SheetLayer | None, str]] = []
    for lay in layers:
        if lay.geometry == "point" or lay.geometry == "polygon" or lay.ground:
            symbols.append((lay, f"{lay.title['ja']} {lay.title['en']}"))
        if lay.map.role == "parcel":
            symbols.append((None, jaen("sheet_target")))
    for lay, label in symbols:
        _legend_symbol(s, px, y, lay, label)
        y -= 4 * MM
    y -= 0.5 * MM
    # label key and the material abbreviations present on this sheet
    mats: dict[str, str] = {}
    for lay in layers:
        pipe, g = lay.map.pipe, data.get(lay.id)
        if pipe is None or not pipe.material_field or g is None:
            continue
        styles = roles.code_styles(project, roles.codelist_of(lay.spec, pipe.material_field))
        for code in sorted({roles._plain(v) for v in g[pipe.material_field].dropna()} - {None}):
            mats.setdefault(str(code), styles.get(str(code), {}).get("ja", str(code)))
    note = ""
    if examples:
        ex = "、".join(examples.values())
        note = f"{ja('sheet_label_note', examples=ex)} {en('sheet_label_note', examples=ex)}"
    if mats:
        note += ("<br/>" if note else "") + f"{jaen('sheet_material')}: " + "、".join(
            f"{_esc(k)} {_esc(v)}" for k, v in mats.items())
    if note:
        y -= s.paragraph(_esc(note).replace("&lt;br/&gt;", "<br/>"), px, y, legend_w - 2 * MM,
                         5.5) + 2 * MM

    # notes column (portrait: next to the legend; landscape: below it)
    qr_mm = 24.0 if layout.paper == "A4" else 30.0
    if layout.landscape:
        nx, ntop, nw = px, y, pw
    else:
        nx, ntop, nw = px + legend_w + 3 * MM, ptop, pw - legend_w - qr_mm * MM - 7 * MM
    pc = project.config.publish
    shown = [lay.id for lay in layers if lay.id in dates]
    uniq = sorted({dates[lid] for lid in shown})
    if len(uniq) == 1:
        date_txt = uniq[0]
    elif uniq:
        date_txt = "、".join(f"{project.specs[lid].title.ja} {dates[lid]}" for lid in shown)
    else:
        date_txt = jaen("sheet_unknown")
    sources: list[str] = []
    for lay in layers:
        if lay.spec.attribution.ja not in sources:
            sources.append(lay.spec.attribution.ja)
    notice_ja, notice_en = _notice(project)
    h = s.paragraph(f"<b>{_esc(ja('sheet_notice'))}</b>　{_esc(notice_ja)}", nx, ntop, nw, 6.4)
    h += s.paragraph(f"{_esc(en('sheet_notice'))}: {_esc(notice_en)}", nx, ntop - h - 1 * MM, nw,
                     5.4)
    h += 2.5 * MM
    contact = pc.contact_name + (f"（{pc.contact_phone}）" if pc.contact_phone else "")
    facts = (f"{_esc(jaen('sheet_dates'))}: {_esc(date_txt)}<br/>"
             f"{_esc(jaen('sheet_sources'))}: {_esc('、'.join(sources))}<br/>"
             f"{_esc(plane.label())}<br/>"
             f"{_esc(jaen('sheet_issued'))}: {today.isoformat()}　"
             f"{_esc(jaen('sheet_contact'))}: {_esc(contact)}")
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
                s.c.rect(qx + col * cell, qtop - (r + 1) * cell, cell, cell, stroke=0, fill=1)
    s.text(qx + size / 2, qtop - size - 3 * MM, jaen("sheet_online"), 5.5)
    s.paragraph(_esc(url), qx, qtop - size - 4.5 * MM, size, 3.6, color="#333333")
