"""The pipe sheet's tables: every pipe in the frame, and the parcel's own service connections.

What a firm's clerk copies at the counter: for each pipe of the sheet's frame (every layer with
map role ``pipe``), its id, 管径, 管種, 布設年度 and 土被り (the role's ``diameter_field``,
``material_field``, ``year_field``, ``depth_field``), longest first per utility; and the
connections that serve the parcel (layers whose ``map.serves`` names 大字 and 地番: 給水管,
量水器, 取付管, 公共ます ...). Values come from the public store only; a value the store does not
hold prints as "—" (unknown), never as a guess.

Drawn with reportlab's platypus (tables split over as many pages as they need), after the map
page of :func:`publish.pages.pipesheet.render_pipe_sheet`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Frame, Paragraph, Spacer, TableStyle
from reportlab.platypus import Table as RLTable

from config import Project
from config.messages import en, ja
from config.models import LayerSpec
from publish.model import ID_COLUMN
from publish.pages import roles

STORE_CRS = "EPSG:4326"
DASH = "—"
MAX_ROWS = 400  # per table: a frame at 1:2500 may hold thousands; the rest is counted


@dataclass
class Table:
    """One table of the sheet: a heading (ja/en), column headings, rows, rows left out."""

    title: dict[str, str]
    header: list[dict[str, str]]
    rows: list[list[str]]
    more: int = 0


def _plain(v: Any, digits: int | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return DASH
    if isinstance(v, float):
        return f"{v:.{digits}f}" if digits is not None else (
            str(int(v)) if v.is_integer() else f"{v:g}")
    s = str(v).strip()
    return s or DASH


def _title(spec: LayerSpec, name: str | None, unit: bool = True,
           missing: str | None = None) -> dict[str, str]:
    """A column heading: the field's title (and unit); ``missing``: the catalogue's heading for
    a column the layer does not record (its cells print "—")."""
    if not name:
        return ({"ja": ja(missing), "en": en(missing)} if missing
                else {"ja": DASH, "en": DASH})
    t = roles.field_title(spec, name)
    f = spec.fields.get(name)
    u = f" ({f.unit})" if unit and f and f.unit else ""
    return {"ja": t["ja"] + u, "en": t["en"] + u}


def _label(gdf: gpd.GeoDataFrame, name: str | None) -> pd.Series:
    """A coded column as its Japanese label (the store's ``<field>_ja``), else as stored."""
    if not name or name not in gdf.columns:
        return pd.Series([None] * len(gdf), index=gdf.index, dtype=object)
    lab = f"{name}_ja"
    if lab in gdf.columns:
        return gdf[lab].where(gdf[lab].notna(), gdf[name])
    return gdf[name]


def _bbox(extent: tuple[float, float, float, float], plane: str
          ) -> tuple[float, float, float, float]:
    e0, n0, e1, n1 = extent
    to_ll = Transformer.from_crs(plane, STORE_CRS, always_xy=True)
    xs, ys = to_ll.transform([e0, e1, e0, e1], [n0, n0, n1, n1])
    return min(xs), min(ys), max(xs), max(ys)


def _read(gpkg: Path, spec: LayerSpec, cols: list[str], **kw: Any) -> gpd.GeoDataFrame:
    fields = set(pyogrio.read_info(gpkg, layer=spec.id)["fields"])
    want = [c for c in dict.fromkeys([ID_COLUMN, *cols]) if c and c in fields]
    return pyogrio.read_dataframe(gpkg, layer=spec.id, columns=want, **kw)


def pipe_tables(project: Project, gpkg: Path, pipes: list[LayerSpec],
                extent: tuple[float, float, float, float], plane: str) -> list[Table]:
    """Per pipe layer: the pipes in the frame (clipped), longest in the frame first."""
    frame = shapely.box(*extent)
    have = {str(n) for n in pyogrio.list_layers(gpkg)[:, 0]}
    out = []
    for spec in pipes:
        role = spec.map.pipe
        if role is None or spec.id not in have:
            continue
        fields = [role.diameter_field, role.material_field, role.year_field, role.depth_field]
        cols = [f for f in fields if f] + [f"{role.material_field}_ja"
                                           if role.material_field else ""]
        gdf = _read(gpkg, spec, cols, bbox=_bbox(extent, plane))
        gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)].to_crs(plane)
        inside = shapely.intersection(gdf.geometry.values, frame)
        gdf = gdf.assign(_m=shapely.length(inside))
        gdf = gdf[gdf["_m"] > 0].sort_values(["_m", ID_COLUMN], ascending=[False, True])
        mat = _label(gdf, role.material_field)
        rows = []
        for i, (_, r) in enumerate(gdf.iterrows()):
            if i >= MAX_ROWS:
                break
            rows.append([
                _plain(r[ID_COLUMN]),
                _plain(r.get(role.diameter_field)) if role.diameter_field else DASH,
                _plain(mat.loc[r.name]),
                _plain(r.get(role.year_field)) if role.year_field else DASH,
                _plain(r.get(role.depth_field), 2) if role.depth_field else DASH,
                f"{r['_m']:.1f}",
            ])
        title = roles.i18n(role.utility_title, role.utility)
        out.append(Table(
            {"ja": ja("sheet_table_pipes", utility=title["ja"], layer=spec.title.ja, n=len(gdf)),
             "en": en("sheet_table_pipes", utility=title["en"], layer=spec.title.en, n=len(gdf))},
            [_title(spec, spec.id_field, unit=False),
             _title(spec, role.diameter_field, missing="sheet_col_diameter"),
             _title(spec, role.material_field, missing="sheet_col_material"),
             _title(spec, role.year_field, missing="sheet_col_year"),
             _title(spec, role.depth_field, missing="sheet_col_depth"),
             {"ja": ja("sheet_table_in_frame"), "en": en("sheet_table_in_frame")}],
            rows, max(0, len(gdf) - MAX_ROWS)))
    return out


def connection_tables(project: Project, gpkg: Path, oaza: str, chiban: str) -> list[Table]:
    """The parcel's service connections: features of ``map.serves`` layers naming it.

    ``oaza`` and ``chiban`` as the parcel layer stores them (normalised like the connections').
    """
    have = {str(n) for n in pyogrio.list_layers(gpkg)[:, 0]}
    want_ch = chiban
    out = []
    for spec in project.specs.values():
        sv = spec.map.serves
        if sv is None or spec.visibility != "public" or spec.id not in have:
            continue
        role = spec.map.pipe
        cols = [sv.oaza_field, sv.chiban_field]
        shown: list[str | None] = []
        if role is not None:
            shown = [f for f in (role.diameter_field, role.material_field, role.year_field,
                                 role.depth_field) if f]
        else:
            shown = [f for f in spec.map.popup if f not in (spec.id_field, *cols)][:4]
        where = (f"\"{sv.oaza_field}\" = '{oaza.replace(chr(39), chr(39) * 2)}' AND "
                 f"\"{sv.chiban_field}\" = '{want_ch.replace(chr(39), chr(39) * 2)}'")
        extra = [f"{f}_ja" for f in shown if f]
        gdf = _read(gpkg, spec, [*cols, *[f for f in shown if f], *extra], where=where,
                    read_geometry=False)
        gdf = gdf.sort_values(ID_COLUMN)
        rows = []
        for _, r in gdf.iterrows():
            row = [_plain(r[ID_COLUMN])]
            for f in shown:
                if not f:
                    row.append(DASH)
                    continue
                lab = f"{f}_ja"
                v = r.get(lab) if lab in gdf.columns and r.get(lab) is not None else r.get(f)
                row.append(_plain(v, 2 if f == (role.depth_field if role else None) else None))
            rows.append(row)
        out.append(Table(
            {"ja": ja("sheet_table_connections", layer=spec.title.ja, n=len(gdf)),
             "en": en("sheet_table_connections", layer=spec.title.en, n=len(gdf))},
            [_title(spec, spec.id_field, unit=False), *[_title(spec, f) for f in shown]],
            rows))
    return out


def draw(canvas: Any, page_size: tuple[float, float], font: str, heading: dict[str, str],
         tables: list[Table], note: dict[str, str]) -> int:
    """Draw the tables on new pages of ``canvas`` (split where they must); pages drawn."""
    w, h = page_size
    h1 = ParagraphStyle("h1", fontName=font, fontSize=12, leading=15, spaceAfter=2 * mm)
    h2 = ParagraphStyle("h2", fontName=font, fontSize=9, leading=12, spaceBefore=3 * mm,
                        spaceAfter=1.5 * mm)
    cell = ParagraphStyle("cell", fontName=font, fontSize=7, leading=8.5)
    small = ParagraphStyle("small", fontName=font, fontSize=6.5, leading=8.5,
                           textColor=colors.HexColor("#444444"))

    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    story: list[Any] = [Paragraph(esc(heading["ja"]), h1),
                        Paragraph(esc(heading["en"]), small), Spacer(1, 2 * mm)]
    for t in tables:
        story.append(Paragraph(f"{esc(t.title['ja'])}<br/>"
                               f"<font size=6.5 color='#444444'>{esc(t.title['en'])}</font>", h2))
        if not t.rows:
            story.append(Paragraph(esc(f"{ja('sheet_table_none')} / {en('sheet_table_none')}"),
                                   small))
            continue
        head = [Paragraph(f"{esc(c['ja'])}<br/><font size=5.5>{esc(c['en'])}</font>", cell)
                for c in t.header]
        data = [head, *[[Paragraph(esc(v), cell) for v in r] for r in t.rows]]
        tbl = RLTable(data, repeatRows=1, hAlign="LEFT")
        tbl.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#999999")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ]))
        story.append(tbl)
        if t.more:
            story.append(Paragraph(esc(f"{ja('sheet_table_more', n=t.more)} / "
                                       f"{en('sheet_table_more', n=t.more)}"), small))
    story += [Spacer(1, 3 * mm), Paragraph(esc(note["ja"]), small),
              Paragraph(esc(note["en"]), small)]
    pages = 0
    while story:
        frame = Frame(12 * mm, 12 * mm, w - 24 * mm, h - 24 * mm, showBoundary=0)
        before = len(story)
        frame.addFromList(story, canvas)
        canvas.showPage()
        pages += 1
        if len(story) == before:  # nothing fitted (cannot happen with split tables): stop
            break
    return pages
