"""Which layer plays which role on which page, read from the specs' ``map:`` blocks.

Pages and the pipe sheet never name a layer: they ask here for "the layers of page X", "the
parcel layer", "the pipe layers". Colours of coded values come from the code lists (a code
without a colour gets one from a fixed palette, so the legend and the drawing always agree).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from config import Project
from config.i18n import EASY
from config.models import TEMPLATE_KEY, I18nText, LayerSpec, MapRole, PageConfig

#: Colours for codes whose code list gives none (distinct on a pale basemap).
FALLBACK_COLORS = ("#6b6b6b", "#b8860b", "#8b4513", "#2f4f4f", "#800000", "#556b2f",
                   "#483d8b", "#a0522d", "#708090", "#bdb76b")


def page(project: Project, page_id: str) -> PageConfig:
    """The declaration of page ``page_id`` (``publish.pages``)."""
    for p in project.config.publish.pages:
        if p.id == page_id:
            return p
    raise KeyError(page_id)


def page_layers(project: Project, page_id: str) -> list[LayerSpec]:
    """Public layers that name ``page_id`` in ``map.pages``, bottom to top (``z_order``)."""
    specs = [s for s in project.specs.values()
             if s.visibility == "public" and page_id in s.map.pages]
    order = {lid: i for i, lid in enumerate(project.order())}
    return sorted(specs, key=lambda s: (s.map.z_order, order.get(s.id, 0), s.id))


def role_layers(project: Project, role: MapRole, page_id: str | None = None) -> list[LayerSpec]:
    """Public layers with ``role`` (on ``page_id`` if given), bottom to top."""
    pages = [page_id] if page_id else [p.id for p in project.config.publish.pages]
    out: list[LayerSpec] = []
    for pid in pages:
        out += [s for s in page_layers(project, pid) if s.map.role == role and s not in out]
    return out


@dataclass(frozen=True)
class SheetRoles:
    """What a pipe sheet draws: the page holding the parcel layer, and that page's layers."""

    page: str
    parcel: LayerSpec
    pipes: tuple[LayerSpec, ...]
    layers: tuple[LayerSpec, ...]  # every layer of the page, bottom to top (parcel and pipes too)


def sheet_roles(project: Project) -> SheetRoles | None:
    """The first page with a parcel layer and at least one pipe layer, else None.

    The pipe sheet (and its API process) exists only where these roles exist.
    """
    for p in project.config.publish.pages:
        layers = page_layers(project, p.id)
        parcels = [s for s in layers if s.map.role == "parcel"]
        pipes = tuple(s for s in layers if s.map.role == "pipe")
        if parcels and pipes:
            return SheetRoles(p.id, parcels[0], pipes, tuple(layers))
    return None


def codelist_of(spec: LayerSpec, field: str | None) -> str | None:
    """The code list attached to ``field`` of ``spec`` (None for a plain or derived column)."""
    f = spec.fields.get(field) if field else None
    return f.codelist if f else None


def code_styles(project: Project, codelist: str | None) -> dict[str, dict[str, Any]]:
    """code -> {ja, en, color, min, max} in code-list order; missing colours from the palette."""
    cl = project.codelists.get(codelist) if codelist else None
    if cl is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for i, (code, e) in enumerate(cl.codes.items()):
        entry: dict[str, Any] = {"ja": e.ja, "en": e.en,
                                 "color": e.color or FALLBACK_COLORS[i % len(FALLBACK_COLORS)]}
        if e.min is not None:
            entry["min"] = e.min
        if e.max is not None:
            entry["max"] = e.max
        out[code] = entry
    return out


def i18n(text: I18nText | None, fallback: str = "") -> dict[str, str]:
    """``{ja, en}`` of a name from the specs, plus ``ja@easy`` where the spec gives one (the
    pages show the Japanese in やさしい日本語 otherwise)."""
    if not text:
        return {"ja": fallback, "en": fallback}
    out = {"ja": text.ja, "en": text.en}
    if text.easy and text.easy != text.ja:
        out[EASY] = text.easy
    return out


def field_title(spec: LayerSpec, name: str) -> dict[str, str]:
    """A field's title (ja/en); the field name when the spec gives none."""
    f = spec.fields.get(name)
    return i18n(f.title if f else None, name)


def width_for(value: Any, classes: list[tuple[float, float]], default: float) -> float:
    """The width of the last class whose lower bound ``value`` reaches (``default`` if none)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return classes[0][1] if classes else default
    if math.isnan(v):
        return classes[0][1] if classes else default
    w = classes[0][1] if classes else default
    for lower, width in classes:
        if v >= lower:
            w = width
    return w


def _plain(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    s = str(v).strip()
    return s or None


def fill_template(template: str, value: Any, label: Any = None) -> str:
    """Fill a label template (:data:`config.models.TEMPLATE_KEY` syntax), as the pages do.

    ``value(key)`` gives a column's value, ``label(key)`` its code-list label; a missing value
    prints as ``?`` (an honest unknown on a reference sheet).
    """
    def one(m: re.Match[str]) -> str:
        key, want_label, n, lower = m.group(1), m.group(2), m.group(3), m.group(4)
        v = _plain(label(key) if want_label and label else value(key))
        s = "?" if v is None else v
        if n:
            s = s[: int(n)]
        return s.lower() if lower else s

    return TEMPLATE_KEY.sub(one, template)
