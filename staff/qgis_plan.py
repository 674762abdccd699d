"""The QGIS project of a department, planned from the specs (PyQGIS writes it: qgis_build.py).

Everything a staff member expects when they open the project is derived here, from the layer
specs, the code lists and the department's allow-list (:mod:`staff.policy`), never from city
facts in code:

* groups = ``theme`` of the specs (道路, 下水道, ...), one QGIS map theme per group; points
  above lines above polygons, ``map.z_order`` within;
* styles = the spec's ``map`` block: colour, code-list categories with their colours
  (``color_by``), line width by a field (``width_by``), dash, flow arrows, fill and outline;
* labels with the spec's template and minimum zoom (as a scale), Japanese field aliases (with
  units), code-list value maps in the attribute forms, map tips with the popup fields;
* project CRS = the city's ``target_crs``; 出典 and data date in the project and layer
  metadata and in A4/A3 print layouts; a GSI tile basemap (offline it simply draws nothing).

Only readable fields are referenced: a style, label or map tip that needs a field the
department may not read falls back to a plain style (the field is not in its data at all).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from config.messages import MESSAGES
from config.models import TEMPLATE_KEY, CodeList, LayerSpec
from etl.sql import literal, qi
from staff.policy import ColumnLevel, DepartmentAccess, LayerAccess, column_levels

if TYPE_CHECKING:
    from config import Project

PX_MM = 25.4 / 96  # a web pixel (CSS, 96 dpi) in millimetres
#: OGC WMTS scale denominator of web zoom 0 (0.28 mm pixels): scale = this / 2**zoom
ZOOM0_SCALE = 559_082_264.028_717_8
LABEL_ZOOM = 17  # labels of a ``label_field`` without a ``labels:`` block (about 1:4,300)
#: colours for codes whose code list has none (deterministic, colour-blind friendly order)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#d62728")
GEOMETRY_KIND = {"Point": "marker", "LineString": "line", "MultiLineString": "line",
                 "Polygon": "fill", "MultiPolygon": "fill", "None": "none"}
KIND_RANK = {"marker": 0, "line": 1, "fill": 2, "none": 3}
GSI_STD = {
    "url": "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png",
    "zmin": 2, "zmax": 18,
    "attribution_url": "https://maps.gsi.go.jp/development/ichiran.html",
}
PAPERS = ("A4", "A3")


def t(key: str, lang: str, **kw: object) -> str:
    """One language of a catalogue message (the project is written in one language)."""
    ja, en = MESSAGES[key]
    return (ja if lang == "ja" else en).format(**kw)


def zoom_scale(zoom: float) -> int:
    return round(ZOOM0_SCALE / 2 ** zoom)


def template_expression(template: str) -> str:
    """A label template (``{field}``, ``{field.label}``, ``{field:.1}``, ``{field|lower}``) as
    a QGIS expression; ``concat`` shows a missing value as nothing."""
    parts: list[str] = []
    pos = 0
    for m in TEMPLATE_KEY.finditer(template):
        if m.start() > pos:
            parts.append(literal(template[pos:m.start()]))
        name, label, nchars, lower = m.groups()
        expr = f"represent_value({qi(name)})" if label else qi(name)
        if nchars:
            expr = f"left(to_string({expr}), {int(nchars)})"
        if lower:
            expr = f"lower(to_string({expr}))"
        parts.append(expr)
        pos = m.end()
    if pos < len(template):
        parts.append(literal(template[pos:]))
    return f"concat({', '.join(parts)})" if len(parts) > 1 else (parts[0] if parts else "''")


def _code_label(code: str, text: str) -> str:
    return text if text == code else f"{text} ({code})"


def column_alias(col: ColumnLevel, spec: LayerSpec, lang: str, *, unit: bool = True) -> str:
    """A column's display name: the field title with its unit (``管径 [mm]``), lineage titles
    from the catalogue, a normalizer's sibling as ``布設年度（区分）``."""
    c = col.column
    if not c.field:
        key = f"lineage_{c.name}"
        return t(key, lang) if key in MESSAGES else c.name
    f = spec.fields[c.field]
    base = getattr(f.title, lang) if f.title else c.field
    if c.name != c.field:  # a normalizer's sibling column, e.g. install_fy_qual
        suffix = c.name[len(c.field):]
        key = f"staff_suffix{suffix}"
        what = t(key, lang) if key in MESSAGES else suffix.lstrip("_")
        return f"{base}（{what}）" if lang == "ja" else f"{base} ({what})"
    return f"{base} [{f.unit}]" if f.unit and unit else base


def _categories(spec: LayerSpec, field: str, codelists: dict[str, CodeList],
                lang: str) -> list[dict[str, str]]:
    fs = spec.fields.get(field)
    cl = codelists.get(fs.codelist or "") if fs else None
    if cl is None:
        return []
    return [{"value": code, "label": _code_label(code, getattr(e, lang)),
             "color": e.color or PALETTE[i % len(PALETTE)]}
            for i, (code, e) in enumerate(cl.codes.items())]


def style_plan(spec: LayerSpec, readable: set[str], codelists: dict[str, CodeList],
               lang: str, geometry_type: str) -> dict[str, Any]:
    """The layer's symbology from its ``map`` block (sizes in millimetres)."""
    ms = spec.map
    kind = GEOMETRY_KIND.get(geometry_type, "none")
    style: dict[str, Any] = {
        "kind": kind, "color": ms.color, "fill": ms.fill, "outline": ms.outline,
        "fill_opacity": ms.fill_opacity, "width": round(max(ms.weight * PX_MM, 0.1), 3),
        "size": round(ms.radius * 2 * PX_MM, 3), "field": None, "categories": [],
        "other": t("staff_other_theme", lang), "width_expr": None,
        "dash": [round(float(v) * PX_MM, 3) for v in ms.dash.split()] if ms.dash else None,
        "arrows": bool(ms.arrows) and kind == "line",
    }
    if ms.color_by and ms.color_by in readable:
        cats = _categories(spec, ms.color_by, codelists, lang)
        if cats:
            style["field"], style["categories"] = ms.color_by, cats
    wb = ms.width_by
    if wb is not None and kind == "line" and wb.field in readable:
        whens = " ".join(f"WHEN {qi(wb.field)} >= {lo:g} THEN {w * PX_MM:.3f}"
                         for lo, w in sorted(wb.classes, reverse=True))
        first = sorted(wb.classes)[0][1] * PX_MM
        style["width_expr"] = (f"CASE WHEN {qi(wb.field)} IS NULL THEN {style['width']} "
                               f"{whens} ELSE {first:.3f} END")
    return style


def label_plan(spec: LayerSpec, readable: set[str], lang: str) -> dict[str, Any] | None:
    ms = spec.map
    if ms.labels and all(f in readable for f in ms.labels.fields):
        tpl = getattr(ms.labels.template, lang) if ms.labels.template else None
        expr = template_expression(tpl) if tpl else (
            "concat(" + ", ' ', ".join(qi(f) for f in ms.labels.fields) + ")"
            if len(ms.labels.fields) > 1 else qi(ms.labels.fields[0]))
        return {"expression": expr, "min_scale": zoom_scale(ms.labels.min_zoom)}
    if ms.label_field and ms.label_field in readable:
        return {"expression": qi(ms.label_field), "min_scale": zoom_scale(LABEL_ZOOM)}
    return None


def map_tip(spec: LayerSpec, cols: dict[str, ColumnLevel], display: str, lang: str) -> str:
    """HTML map tip: the feature's name, the layer title, then the popup fields (or the first
    fields) with their titles, units and code-list labels."""
    names = [f for f in spec.map.popup if f in cols] or \
        [c for c, lv in cols.items() if lv.column.field == c][:8]
    rows = []
    for name in names:
        col = cols[name]
        title = column_alias(col, spec, lang, unit=False)  # the unit follows the value
        if col.column.codelist:
            value = f"represent_value({qi(name)})"
        else:  # a unit only after a value (NULL || ' mm' is NULL: an empty cell)
            unit = col.column.unit
            value = qi(name) + (f" || {literal(' ' + unit)}" if unit else "")
        rows.append(f'<tr><td style="color:#555;padding-right:8px">{title}</td>'
                    f"<td>[% {value} %]</td></tr>")
    return (f"<div><b>[% {display} %]</b> <span style=\"color:#777\">"
            f"{getattr(spec.title, lang)}</span><table>{''.join(rows)}</table></div>")


def layer_plan(project: Project, la: LayerAccess, source: dict[str, Any], lang: str,
               data_date: str | None, run_id: str) -> dict[str, Any]:
    spec = la.spec
    cols = {c.name: c for c in column_levels(spec) if c.name in la.columns}
    readable = set(cols)
    display = next((qi(f) for f in (spec.map.label_field, spec.id_field) if f in readable),
                   "$id")
    value_maps = {}
    for name, c in cols.items():
        cl = project.codelists.get(c.column.codelist or "")
        if cl is not None:
            value_maps[name] = [[_code_label(code, getattr(e, lang)), code]
                                for code, e in cl.codes.items()]
    geometry_type = source.get("geometry_type") or spec.geometry_type
    history = [t("staff_layer_date", lang, date=data_date or "-", run=run_id)]
    return {
        "id": spec.id, "name": getattr(spec.title, lang), "source": source,
        "abstract": getattr(spec.description, lang) if spec.description else "",
        "attribution": getattr(spec.attribution, lang), "license": spec.license,
        "keywords": list(spec.keywords), "history": history,
        "aliases": {n: column_alias(c, spec, lang) for n, c in cols.items()},
        "value_maps": value_maps, "display": display,
        "map_tip": map_tip(spec, cols, display, lang),
        "style": style_plan(spec, readable, project.codelists, lang, geometry_type),
        "labels": label_plan(spec, readable, lang),
        "kind": GEOMETRY_KIND.get(geometry_type, "none"),
        "z_order": spec.map.z_order,
    }


def _date_range(dates: list[str], lang: str) -> str:
    if not dates:
        return "-"
    lo, hi = min(dates), max(dates)
    return lo if lo == hi else (f"{lo}〜{hi}" if lang == "ja" else f"{lo} to {hi}")


def project_plan(project: Project, access: DepartmentAccess, sources: dict[str, dict[str, Any]],
                 manifest: dict[str, Any], *, lang: str = "ja", basemap: bool = True,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """The whole project as JSON-able data for ``qgis_build.py build``.

    ``sources``: layer id -> where QGIS reads it (``{"provider": "ogr", "path", "table"}`` or
    ``{"provider": "postgres", "service", "schema", "table", "key", ...}``); layers without a
    source are left out.
    """
    cfg = project.config
    now = now or dt.datetime.now().astimezone()
    run_id = manifest.get("run_id", "-")
    mlayers = manifest.get("layers", {})
    city, dept = getattr(cfg.city, lang), getattr(access.department.name, lang)
    groups: dict[str, list[dict[str, Any]]] = {}
    order: dict[str, int] = {}
    for i, (lid, la) in enumerate(access.layers.items()):
        if lid not in sources:
            continue
        lp = layer_plan(project, la, sources[lid], lang,
                        (mlayers.get(lid) or {}).get("data_date"), run_id)
        name = getattr(la.spec.theme, lang) if la.spec.theme else t("staff_other_theme", lang)
        groups.setdefault(name, []).append(lp)
        order[lid] = i
    for layers in groups.values():
        layers.sort(key=lambda lp: (KIND_RANK[lp["kind"]], -lp["z_order"], order[lp["id"]]))
    ranked = sorted(groups.items(), key=lambda kv: (
        sum(KIND_RANK[lp["kind"]] for lp in kv[1]) / len(kv[1]), min(order[lp["id"]]
                                                                    for lp in kv[1])))
    included = [lp for _, layers in ranked for lp in layers]
    sep = "、" if lang == "ja" else "; "
    attributions = list(dict.fromkeys(lp["attribution"] for lp in included))
    dates = [d for lp in included if (d := (mlayers.get(lp["id"]) or {}).get("data_date"))]
    data_date = _date_range(dates, lang)
    bm = None
    if basemap:
        bm = {**GSI_STD, "name": t("staff_basemap", lang),
              "attribution": t("staff_basemap_attribution", lang)}
        attributions.append(f"{bm['name']} ({bm['attribution']})")
    sources_text = sep.join(attributions)
    title = t("staff_project_title", lang, city=city, dept=dept)
    created = now.date().isoformat()
    texts = {
        "title": title,
        "legend": t("staff_legend", lang),
        "sources": t("staff_sources", lang, sources=sources_text),
        "date": t("staff_data_date", lang, date=data_date, run=run_id, created=created,
                  dept=dept),
        "marking": t("staff_confidential_mark", lang) if access.has_confidential else None,
    }
    return {
        "title": title, "crs": cfg.target_crs, "lang": lang,
        "metadata": {
            "abstract": t("staff_project_abstract", lang, dept=dept, run=run_id,
                          sources=sources_text),
            "author": f"{city} {dept}", "created": now.isoformat(timespec="seconds"),
            "keywords": [city, dept, *(name for name, _ in ranked)],
            "history": [texts["date"]] + [
                f"{lp['name']}: {(mlayers.get(lp['id']) or {}).get('data_date') or '-'}"
                for lp in included],
            "links": [[city, cfg.publish.city_url]],
        },
        "variables": {"gis_data_date": data_date, "gis_run_id": run_id,
                      "gis_department": dept, "gis_sources": sources_text},
        "groups": [{"name": name, "layers": layers} for name, layers in ranked],
        "basemap": bm,
        "layouts": [{"name": t("staff_layout", lang, paper=p), "paper": p} for p in PAPERS],
        "texts": texts,
    }
