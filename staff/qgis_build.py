"""Write a QGIS project from a plan, then re-open it and report; or probe a written project.

This file runs as its own process (``python staff/qgis_build.py ...``) and imports only the
standard library and PyQGIS. Why: QGIS links the system GDAL/PROJ (Debian 12: GDAL 3.6) while
pyogrio and pyproj carry their own builds; both in one process crash at exit. The parent
(:mod:`staff.qgis_plan`, :mod:`staff.qgis_run`) computes everything from the specs and passes it
as JSON; nothing here knows a city, a layer or a field.

Usage::

    qgis_build.py build PLAN.json OUT.qgz REPORT.json
    qgis_build.py probe PROJECT.qgz REPORT.json [--render DIR] [--pdf DIR] [--size 800x600]
                  [--dpi 96]

``build`` writes the project, then reads it back into a fresh ``QgsProject`` and reports what
QGIS itself finds (layers valid, feature counts, fields, aliases, renderers, layouts).
``probe`` reports the same for any project and can render each map theme to a PNG (counting
the pixels that differ from the background) and export each print layout to a PDF.
Exit status: 0 ok, 2 the plan or project is wrong (report has ``error``), 3 no PyQGIS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

try:
    from qgis.core import (
        Qgis,
        QgsAbstractMetadataBase,
        QgsApplication,
        QgsBasicNumericFormat,
        QgsCategorizedSymbolRenderer,
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsDataSourceUri,
        QgsEditorWidgetSetup,
        QgsExpressionContextUtils,
        QgsFillSymbol,
        QgsLayerTreeGroup,
        QgsLayerTreeLayer,
        QgsLayoutExporter,
        QgsLayoutItemLabel,
        QgsLayoutItemLegend,
        QgsLayoutItemMap,
        QgsLayoutItemPicture,
        QgsLayoutItemScaleBar,
        QgsLayoutPoint,
        QgsLayoutSize,
        QgsLineSymbol,
        QgsMapRendererSequentialJob,
        QgsMapSettings,
        QgsMapThemeCollection,
        QgsMarkerLineSymbolLayer,
        QgsMarkerSymbol,
        QgsNetworkAccessManager,
        QgsPalLayerSettings,
        QgsPrintLayout,
        QgsProject,
        QgsProperty,
        QgsRasterLayer,
        QgsRectangle,
        QgsReferencedRectangle,
        QgsRendererCategory,
        QgsScaleBarSettings,
        QgsSingleSymbolRenderer,
        QgsSymbolLayer,
        QgsTemplatedLineSymbolLayerBase,
        QgsTextBufferSettings,
        QgsTextFormat,
        QgsUnitTypes,
        QgsVectorLayer,
        QgsVectorLayerSimpleLabeling,
        QgsWkbTypes,
    )
    from qgis.PyQt.QtCore import QDateTime, QSize, Qt
    from qgis.PyQt.QtGui import QColor, QFont
    IMPORT_ERROR = ""
except ImportError as _e:  # reported to the parent as a clear, fixable error (exit 3)
    IMPORT_ERROR = f"{type(_e).__name__}: {_e}"

LAYER_KEY = "gis/layer"  # custom property: the spec's layer id
BASEMAP_KEY = "gis/basemap"
NORTH_ARROW = ":/images/north_arrows/layout_default_north_arrow.svg"
PAPER_MM = {"A4": (297.0, 210.0), "A3": (420.0, 297.0)}  # landscape
NETWORK_TIMEOUT_MS = 5000  # offline: basemap tiles fail fast instead of after 60 s


class PlanError(Exception):
    """The plan or the data cannot make a valid project (exit 2, message in the report)."""


# ------------------------------------------------------------------------------- symbols


def _color(hex_: str, alpha: float = 1.0) -> QColor:
    c = QColor(hex_)
    c.setAlphaF(alpha)
    return c


def _symbol(style: dict[str, Any], color: str) -> Any:
    """One symbol for a geometry kind (line / fill / marker) in ``color`` (mm units)."""
    kind = style["kind"]
    if kind == "line":
        sym = QgsLineSymbol.createSimple({})
        sl = sym.symbolLayer(0)
        sl.setColor(_color(color))
        sl.setWidth(style["width"])
        sl.setWidthUnit(QgsUnitTypes.RenderMillimeters)
        if style.get("dash"):
            sl.setUseCustomDashPattern(True)
            sl.setCustomDashVector([float(v) for v in style["dash"]])
            sl.setCustomDashPatternUnit(QgsUnitTypes.RenderMillimeters)
        if style.get("width_expr"):
            sl.setDataDefinedProperty(QgsSymbolLayer.PropertyStrokeWidth,
                                      QgsProperty.fromExpression(style["width_expr"]))
        if style.get("arrows"):  # direction of flow: one arrowhead at the middle of each line
            head = QgsMarkerSymbol.createSimple({"name": "filled_arrowhead", "color": color,
                                                 "outline_style": "no", "size": "2.6"})
            arrow = QgsMarkerLineSymbolLayer(True)
            arrow.setPlacement(QgsTemplatedLineSymbolLayerBase.CentralPoint)
            arrow.setSubSymbol(head)
            sym.appendSymbolLayer(arrow)
        return sym
    if kind == "fill":
        sym = QgsFillSymbol.createSimple({})
        sl = sym.symbolLayer(0)
        sl.setFillColor(_color(style.get("fill") or color, style["fill_opacity"]))
        sl.setStrokeColor(_color(style.get("outline") or color))
        sl.setStrokeWidth(style["width"])
        sl.setStrokeWidthUnit(QgsUnitTypes.RenderMillimeters)
        return sym
    # a point is a circle in the colour with a white outline; with ``fill`` set it is filled
    # so and outlined in the colour (e.g. a manhole); ``outline`` overrides the outline
    sym = QgsMarkerSymbol.createSimple({"name": "circle"})
    sl = sym.symbolLayer(0)
    sl.setColor(_color(style.get("fill") or color))
    sl.setStrokeColor(_color(style.get("outline") or (color if style.get("fill") else "#ffffff")))
    sl.setStrokeWidth(0.3)
    sl.setSize(style["size"])
    sl.setSizeUnit(QgsUnitTypes.RenderMillimeters)
    return sym


def _renderer(style: dict[str, Any]) -> Any:
    if style["kind"] == "none":
        return None
    cats = style.get("categories") or []
    if style.get("field") and cats:
        out = [QgsRendererCategory(c["value"], _symbol(style, c["color"]), c["label"])
               for c in cats]
        # '' = all other values (unknown codes stay visible, in the layer's own colour)
        out.append(QgsRendererCategory("", _symbol(style, style["color"]), style["other"]))
        return QgsCategorizedSymbolRenderer(style["field"], out)
    return QgsSingleSymbolRenderer(_symbol(style, style["color"]))


def _labeling(lab: dict[str, Any], kind: str) -> Any:
    s = QgsPalLayerSettings()
    s.fieldName = lab["expression"]
    s.isExpression = True
    fmt = QgsTextFormat()
    fmt.setSize(lab.get("size", 8.0))
    fmt.setSizeUnit(QgsUnitTypes.RenderPoints)
    fmt.setColor(QColor("#202020"))
    buf = QgsTextBufferSettings()
    buf.setEnabled(True)
    buf.setSize(0.8)
    buf.setColor(QColor("#ffffff"))
    fmt.setBuffer(buf)
    s.setFormat(fmt)
    if kind == "line":
        s.placement = QgsPalLayerSettings.Line
    elif kind == "fill":
        s.placement = QgsPalLayerSettings.OverPoint
    else:
        s.placement = QgsPalLayerSettings.AroundPoint
    s.scaleVisibility = True
    s.minimumScale = float(lab["min_scale"])  # most zoomed out (larger denominator)
    s.maximumScale = float(lab.get("max_scale") or 0)
    return QgsVectorLayerSimpleLabeling(s)


# -------------------------------------------------------------------------------- layers


def _vector_layer(lp: dict[str, Any]) -> Any:
    src = lp["source"]
    if src["provider"] == "ogr":
        layer = QgsVectorLayer(f"{src['path']}|layername={src['table']}", lp["name"], "ogr")
    elif src["provider"] == "postgres":
        uri = QgsDataSourceUri(f"service='{src['service']}'")
        uri.setDataSource(src["schema"], src["table"], src.get("geometry_column"), "",
                          src["key"])
        if src.get("srid"):
            uri.setSrid(str(src["srid"]))
            uri.setWkbType(QgsWkbTypes.parseType(src["geometry_type"]))
        # the key is the spec's id field, unique in every master (duplicates are quarantined):
        # no full-table uniqueness scan each time a view is opened
        uri.setParam("checkPrimaryKeyUnicity", "0")
        layer = QgsVectorLayer(uri.uri(False), lp["name"], "postgres")
    else:
        raise PlanError(f"unknown provider {src['provider']!r}")
    if not layer.isValid():
        raise PlanError(f"layer {lp['id']}: QGIS cannot open it: {layer.error().summary()}")
    layer.setCustomProperty(LAYER_KEY, lp["id"])
    fields = layer.fields()
    for name, alias in lp["aliases"].items():
        idx = fields.indexOf(name)
        if idx >= 0:
            layer.setFieldAlias(idx, alias)
    for name, pairs in lp["value_maps"].items():
        idx = fields.indexOf(name)
        if idx >= 0:  # ValueMap: description -> stored value, in code-list order
            layer.setEditorWidgetSetup(idx, QgsEditorWidgetSetup(
                "ValueMap", {"map": [{label: code} for label, code in pairs]}))
    layer.setDisplayExpression(lp["display"])
    layer.setMapTipTemplate(lp["map_tip"])
    renderer = _renderer(lp["style"])
    if renderer is not None:
        layer.setRenderer(renderer)
    if lp.get("labels"):
        layer.setLabeling(_labeling(lp["labels"], lp["style"]["kind"]))
        layer.setLabelsEnabled(True)
    layer.setReadOnly(True)  # the master comes from the ledgers; edits here would go nowhere
    md = layer.metadata()
    md.setIdentifier(lp["id"])
    md.setTitle(lp["name"])
    md.setAbstract(lp.get("abstract") or "")
    md.setRights([lp["attribution"]])
    md.setLicenses([lp["license"]])
    md.setKeywords({"uozu-gis": lp.get("keywords") or []})
    md.setHistory(lp.get("history") or [])
    layer.setMetadata(md)
    layer.setAttribution(lp["attribution"])
    return layer


def _basemap(bm: dict[str, Any]) -> Any:
    url = bm["url"].replace("{", "%7B").replace("}", "%7D")
    uri = f"type=xyz&url={url}&zmin={bm['zmin']}&zmax={bm['zmax']}"
    layer = QgsRasterLayer(uri, bm["name"], "wms")
    if not layer.isValid():
        raise PlanError(f"basemap: QGIS cannot open it: {layer.error().summary()}")
    layer.setCustomProperty(BASEMAP_KEY, True)
    layer.setAttribution(bm["attribution"])
    layer.setAttributionUrl(bm["attribution_url"])
    md = layer.metadata()
    md.setTitle(bm["name"])
    md.setRights([bm["attribution"]])
    layer.setMetadata(md)
    return layer


def _full_extent(project: Any, layers: list[Any]) -> Any:
    crs = project.crs()
    ext = QgsRectangle()
    ext.setMinimal()
    for layer in layers:
        e = layer.extent()
        if layer.featureCount() == 0 or e.isNull():
            continue
        if layer.crs() != crs:
            e = QgsCoordinateTransform(layer.crs(), crs, project).transformBoundingBox(e)
        ext.combineExtentWith(e)
    if ext.isNull() or ext.isEmpty():
        return None
    ext.scale(1.03)
    return ext


# ------------------------------------------------------------------------------- layouts


def _label(layout: Any, text: str, x: float, y: float, w: float, h: float, size: float,
           *, bold: bool = False, color: str = "#000000") -> Any:
    item = QgsLayoutItemLabel(layout)
    item.setText(text)
    font = QFont()
    font.setPointSizeF(size)
    font.setBold(bold)
    item.setFont(font)
    item.setFontColor(QColor(color))
    item.attemptMove(QgsLayoutPoint(x, y, QgsUnitTypes.LayoutMillimeters))
    item.attemptResize(QgsLayoutSize(w, h, QgsUnitTypes.LayoutMillimeters))
    layout.addLayoutItem(item)
    return item


def _layout(project: Any, lay: dict[str, Any], texts: dict[str, Any], extent: Any) -> Any:
    """A landscape sheet: title, map, legend, scale bar, north arrow, 出典, data date."""
    w, h = PAPER_MM[lay["paper"]]
    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    layout.setName(lay["name"])
    layout.pageCollection().page(0).setPageSize(
        QgsLayoutSize(w, h, QgsUnitTypes.LayoutMillimeters))
    m = 10.0
    side = 70.0 if lay["paper"] == "A4" else 90.0
    _label(layout, texts["title"], m, m - 2, w - 2 * m, 12, 16 if lay["paper"] == "A4" else 20,
           bold=True)
    top = m + 12
    foot = 22.0
    mw, mh = w - 2 * m - side - 4, h - top - m - foot
    mp = QgsLayoutItemMap(layout)
    mp.attemptMove(QgsLayoutPoint(m, top, QgsUnitTypes.LayoutMillimeters))
    mp.attemptResize(QgsLayoutSize(mw, mh, QgsUnitTypes.LayoutMillimeters))
    mp.setCrs(project.crs())
    mp.setFrameEnabled(True)
    layout.addLayoutItem(mp)
    if extent is not None:
        # zoomToExtent keeps the current extent's aspect ratio: give it the item's first
        mp.setExtent(QgsRectangle(0, 0, mw, mh))
        mp.zoomToExtent(extent)
    north = QgsLayoutItemPicture(layout)
    north.setPicturePath(NORTH_ARROW)
    north.setLinkedMap(mp)
    north.setNorthMode(QgsLayoutItemPicture.GridNorth)
    north.attemptMove(QgsLayoutPoint(m + mw - 16, top + 3, QgsUnitTypes.LayoutMillimeters))
    north.attemptResize(QgsLayoutSize(12, 14, QgsUnitTypes.LayoutMillimeters))
    layout.addLayoutItem(north)
    bar = QgsLayoutItemScaleBar(layout)
    bar.setStyle("Single Box")
    bar.setLinkedMap(mp)
    bar.applyDefaultSize(QgsUnitTypes.DistanceMeters)
    bar.setUnitLabel("m")
    bar.setNumberOfSegmentsLeft(0)
    bar.setNumberOfSegments(2)
    bar.setSegmentSizeMode(QgsScaleBarSettings.SegmentSizeFitWidth)
    bar.setMinimumBarWidth(30)
    bar.setMaximumBarWidth(60)
    bar.update()
    bar.attemptMove(QgsLayoutPoint(m, h - m - foot + 2, QgsUnitTypes.LayoutMillimeters))
    layout.addLayoutItem(bar)
    num = QgsLayoutItemScaleBar(layout)
    num.setStyle("Numeric")
    whole = QgsBasicNumericFormat()
    whole.setNumberDecimalPlaces(0)
    whole.setShowThousandsSeparator(True)
    num.setNumericFormat(whole)
    num.setLinkedMap(mp)
    num.attemptMove(QgsLayoutPoint(m + 70, h - m - foot + 4, QgsUnitTypes.LayoutMillimeters))
    layout.addLayoutItem(num)
    legend = QgsLayoutItemLegend(layout)
    legend.setTitle(texts["legend"])
    legend.setLinkedMap(mp)
    legend.setLegendFilterByMapEnabled(True)  # only what the printed map shows
    legend.setResizeToContents(False)
    legend.setColumnCount(1 if lay["paper"] == "A4" else 2)
    legend.attemptMove(QgsLayoutPoint(w - m - side, top, QgsUnitTypes.LayoutMillimeters))
    legend.attemptResize(QgsLayoutSize(side, mh, QgsUnitTypes.LayoutMillimeters))
    legend.setFrameEnabled(True)
    layout.addLayoutItem(legend)
    _label(layout, texts["sources"], m + 110, h - m - foot + 2, w - 2 * m - 110, 13, 6.5)
    _label(layout, texts["date"], m + 110, h - m - 6, w - 2 * m - 110, 6, 7)
    if texts.get("marking"):
        _label(layout, texts["marking"], w - m - 150, m - 2, 150, 8, 9, bold=True,
               color="#c00000")
    return layout


# ------------------------------------------------------------------------------- project


def build(plan: dict[str, Any], out: Path) -> None:
    project = QgsProject.instance()
    project.clear()
    crs = QgsCoordinateReferenceSystem(plan["crs"])
    if not crs.isValid():
        raise PlanError(f"unknown CRS {plan['crs']}")
    project.setCrs(crs)
    project.setTitle(plan["title"])
    meta = plan["metadata"]
    md = project.metadata()
    md.setTitle(plan["title"])
    md.setAbstract(meta["abstract"])
    md.setAuthor(meta["author"])
    md.setLanguage(plan["lang"])
    md.setCreationDateTime(QDateTime.fromString(meta["created"], Qt.ISODate))
    md.setKeywords({"uozu-gis": meta["keywords"]})
    md.setHistory(meta["history"])
    md.setLinks([QgsAbstractMetadataBase.Link(name, "WWW:LINK", url)
                 for name, url in meta["links"]])
    project.setMetadata(md)
    for k, v in plan["variables"].items():
        QgsExpressionContextUtils.setProjectVariable(project, k, v)
    root = project.layerTreeRoot()
    themes: dict[str, list[Any]] = {}
    data_layers = []
    for g in plan["groups"]:
        group = root.addGroup(g["name"])
        themes[g["name"]] = []
        for lp in g["layers"]:
            layer = _vector_layer(lp)
            project.addMapLayer(layer, False)
            group.addLayer(layer)
            themes[g["name"]].append(layer)
            data_layers.append(layer)
    base = None
    if plan.get("basemap"):
        base = _basemap(plan["basemap"])
        project.addMapLayer(base, False)
        root.addLayer(base)  # last in the tree = drawn first, under everything
    coll = project.mapThemeCollection()
    for name, layers in themes.items():
        rec = QgsMapThemeCollection.MapThemeRecord()
        rec.setLayerRecords([QgsMapThemeCollection.MapThemeLayerRecord(x)
                             for x in [*layers, *([base] if base else [])]])
        coll.insert(name, rec)
    extent = _full_extent(project, data_layers)
    if extent is not None:
        project.viewSettings().setDefaultViewExtent(QgsReferencedRectangle(extent, crs))
    for lay in plan["layouts"]:
        project.layoutManager().addLayout(_layout(project, lay, plan["texts"], extent))
    if not project.write(str(out)):
        raise PlanError(f"QGIS could not write {out}: {project.error()}")
    project.clear()


# -------------------------------------------------------------------------------- report


def _colors(sym: Any) -> list[str]:
    """[fill, stroke] of a symbol's first layer (a line's stroke is its colour)."""
    sl = sym.symbolLayer(0)
    stroke = sl.strokeColor() if hasattr(sl, "strokeColor") else sl.color()
    return [sl.color().name(), stroke.name()]


def _renderer_report(layer: Any) -> dict[str, Any]:
    r = layer.renderer()
    out: dict[str, Any] = {"type": r.type() if r else None}
    if r is not None and r.type() == "categorizedSymbol":
        out["field"] = r.classAttribute()
        out["categories"] = [[c.value(), c.label(), *_colors(c.symbol())]
                             for c in r.categories()]
    elif r is not None and r.type() == "singleSymbol":
        out["colors"] = _colors(r.symbol())
    cats = r.categories() if out["type"] == "categorizedSymbol" else []  # owns the symbols
    syms = [c.symbol() for c in cats] or ([r.symbol()] if out["type"] == "singleSymbol" else [])
    widths = {sym.symbolLayer(0).dataDefinedProperties().property(
        QgsSymbolLayer.PropertyStrokeWidth).expressionString() for sym in syms}
    out["width_expressions"] = sorted(w for w in widths if w)
    out["arrows"] = any(sym.symbolLayerCount() > 1 for sym in syms)
    return out


def _layer_report(layer: Any, group: str | None) -> dict[str, Any]:
    rep: dict[str, Any] = {"name": layer.name(), "valid": layer.isValid(),
                           "provider": layer.providerType(), "group": group,
                           "crs": layer.crs().authid(), "attribution": layer.attribution()}
    if isinstance(layer, QgsVectorLayer):
        fields = layer.fields()
        rep.update({
            "features": layer.featureCount(),
            "fields": [f.name() for f in fields],
            "aliases": {f.name(): f.alias() for f in fields if f.alias()},
            "value_maps": {f.name(): [[next(iter(d)), next(iter(d.values()))]
                                      for d in f.editorWidgetSetup().config().get("map", [])]
                           for f in fields if f.editorWidgetSetup().type() == "ValueMap"},
            "renderer": _renderer_report(layer),
            "labels": layer.labelsEnabled(),
            "label_expression": (layer.labeling().settings().fieldName
                                 if layer.labelsEnabled() and layer.labeling() else None),
            "label_min_scale": (layer.labeling().settings().minimumScale
                                if layer.labelsEnabled() and layer.labeling() else None),
            "map_tip": layer.mapTipTemplate(),
            "display": layer.displayExpression(),
            "read_only": layer.readOnly(),
            "rights": layer.metadata().rights(),
            "history": layer.metadata().history(),
        })
    return rep


def report(project: Any) -> dict[str, Any]:
    groups: dict[str, str] = {}
    order: list[dict[str, Any]] = []
    for node in project.layerTreeRoot().children():
        if isinstance(node, QgsLayerTreeGroup):
            ids = [c.layerId() for c in node.children() if isinstance(c, QgsLayerTreeLayer)]
            order.append({"group": node.name(), "layers": [
                project.mapLayer(i).customProperty(LAYER_KEY) for i in ids]})
            for i in ids:
                groups[i] = node.name()
        elif isinstance(node, QgsLayerTreeLayer):
            order.append({"layer": node.layer().name() if node.layer() else None})
    layers: dict[str, Any] = {}
    basemap = None
    for lid, layer in project.mapLayers().items():
        if layer.customProperty(BASEMAP_KEY):
            basemap = {"name": layer.name(), "valid": layer.isValid(),
                       "source": layer.source(), "attribution": layer.attribution()}
            continue
        key = layer.customProperty(LAYER_KEY) or layer.name()
        layers[key] = _layer_report(layer, groups.get(lid))
    md = project.metadata()
    layouts = []
    for lay in project.layoutManager().printLayouts():
        page = lay.pageCollection().page(0).pageSize()
        items = [i for i in lay.items() if hasattr(i, "type")]
        kinds = sorted({type(i).__name__ for i in items})
        texts = [i.text() for i in items if isinstance(i, QgsLayoutItemLabel)]
        layouts.append({"name": lay.name(), "page_mm": [round(page.width(), 1),
                                                          round(page.height(), 1)],
                        "items": kinds, "texts": texts})
    ext = project.viewSettings().defaultViewExtent()
    return {
        "qgis": Qgis.version(), "title": project.title(), "crs": project.crs().authid(),
        "metadata": {"title": md.title(), "abstract": md.abstract(), "author": md.author(),
                     "history": md.history(), "keywords": md.keywords(),
                     "language": md.language()},
        "variables": {k: QgsExpressionContextUtils.projectScope(project).variable(k)
                      for k in QgsExpressionContextUtils.projectScope(project).variableNames()
                      if k.startswith("gis_")},
        "tree": order, "layers": layers, "basemap": basemap,
        "themes": {n: [project.mapLayer(i).customProperty(LAYER_KEY) or "basemap"
                       for i in project.mapThemeCollection().mapThemeVisibleLayerIds(n)]
                   for n in project.mapThemeCollection().mapThemes()},
        "layouts": layouts,
        "extent": [ext.xMinimum(), ext.yMinimum(), ext.xMaximum(), ext.yMaximum()]
        if not ext.isNull() else None,
    }


def _render(project: Any, layers: list[Any], path: Path, size: tuple[int, int]) -> int:
    """Render ``layers`` over the default view to a PNG; return the non-background pixels."""
    ms = QgsMapSettings()
    ms.setLayers(layers)
    ms.setDestinationCrs(project.crs())
    ms.setExtent(project.viewSettings().defaultViewExtent())
    ms.setOutputSize(QSize(*size))
    ms.setBackgroundColor(QColor("#ffffff"))
    ms.setTransformContext(project.transformContext())
    job = QgsMapRendererSequentialJob(ms)
    job.start()
    job.waitForFinished()
    img = job.renderedImage()
    img.save(str(path), "PNG")
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    words = memoryview(bytes(ptr)).cast("I")
    return sum(1 for v in words if v != 0xFFFFFFFF)  # ARGB32 white


def probe(path: Path, render_dir: Path | None, pdf_dir: Path | None,
          size: tuple[int, int], dpi: float | None = None) -> dict[str, Any]:
    project = QgsProject.instance()
    project.clear()
    if not project.read(str(path)):
        raise PlanError(f"QGIS cannot read {path}: {project.error()}")
    rep = report(project)
    if render_dir is not None:
        render_dir.mkdir(parents=True, exist_ok=True)
        rep["renders"] = {}
        coll = project.mapThemeCollection()
        for i, name in enumerate(coll.mapThemes()):
            png = render_dir / f"theme_{i}.png"
            n = _render(project, coll.mapThemeVisibleLayers(name), png, size)
            rep["renders"][name] = {"png": str(png), "non_background": n,
                                    "pixels": size[0] * size[1]}
    if pdf_dir is not None:
        pdf_dir.mkdir(parents=True, exist_ok=True)
        rep["pdfs"] = {}
        for i, lay in enumerate(project.layoutManager().printLayouts()):
            pdf = pdf_dir / f"layout_{i}.pdf"
            settings = QgsLayoutExporter.PdfExportSettings()
            if dpi:  # offline, every basemap tile of a 300 dpi sheet is a failed request
                settings.dpi = dpi
            res = QgsLayoutExporter(lay).exportToPdf(str(pdf), settings)
            rep["pdfs"][lay.name()] = {"pdf": str(pdf), "ok": res == QgsLayoutExporter.Success}
    project.clear()
    return rep


# ---------------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="qgis_build.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("plan", type=Path)
    b.add_argument("out", type=Path)
    b.add_argument("report", type=Path)
    p = sub.add_parser("probe")
    p.add_argument("project", type=Path)
    p.add_argument("report", type=Path)
    p.add_argument("--render", type=Path)
    p.add_argument("--pdf", type=Path)
    p.add_argument("--size", default="800x600")
    p.add_argument("--dpi", type=float, help="PDF resolution (default: the layout's)")
    args = ap.parse_args(argv)
    if IMPORT_ERROR:
        args.report.write_text(json.dumps({"error": IMPORT_ERROR, "kind": "import"}),
                               encoding="utf-8")
        return 3
    app = QgsApplication([], False)
    app.initQgis()
    QgsNetworkAccessManager.setTimeout(NETWORK_TIMEOUT_MS)
    code = 0
    try:
        if args.cmd == "build":
            build(json.loads(args.plan.read_text(encoding="utf-8")), args.out)
            rep = probe(args.out, None, None, (0, 0))
        else:
            w, h = (int(v) for v in args.size.lower().split("x"))
            rep = probe(args.project, args.render, args.pdf, (w, h), args.dpi)
    except PlanError as e:
        rep, code = {"error": str(e), "kind": "plan"}, 2
    except Exception as e:  # a PyQGIS failure: the parent shows it with the traceback's tail
        rep = {"error": f"{type(e).__name__}: {e}", "kind": "qgis",
               "trace": traceback.format_exc()[-2000:]}
        code = 2
    args.report.write_text(json.dumps(rep, ensure_ascii=False, default=str), encoding="utf-8")
    QgsProject.instance().clear()
    app.exitQgis()
    return code


if __name__ == "__main__":
    rc = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)  # skip Qt/GDAL static destructors, which can crash after a clean run
