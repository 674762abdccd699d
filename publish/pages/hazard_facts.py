"""What the risk card must say besides the zones at a spot, computed once when pages are built.

* **Shelters inside the zone of a hazard they are designated for** (e.g. a 洪水 site in the flood
  zone): :func:`shelters_in_zones` gives, per shelter, each such hazard with the worst rank
  there, so the card and the shelter list can flag it (text, not colour alone).
* **Where a hazard was assessed** (``hazard.coverage`` of the spec): a study of part of the city
  (``coverage: zones``) covers the convex hull of its zones widened by ``coverage_margin_m``;
  outside it the card says "no data here", never "outside the zones". :func:`coverage_areas`.
* **What to do** (``hazard.guidance`` / ``guidance_by_rank``): :func:`guidance` in every page
  language.
* **What the hazard page gets** (:func:`page_facts`): the coverage outlines go into the page's
  data file (next to the zones), the walking-route settings into its config (only when the
  release has a walking network, so a page never offers a route nobody can answer).

Read from the public store only (CRS84); distances and hulls in the city's plane CRS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
from pyproj import Transformer

from config import Project
from config.i18n import labels
from config.models import HazardRole, LayerSpec
from publish.model import ID_COLUMN
from publish.pages.common import asset_url

DECIMALS = 6  # coverage outlines: ~0.1 m
ROUTE_SCRIPT = "map/route.js"  # under /static/: the walking-route panel (GisRoute)
SIMPLIFY_M = 10.0  # coverage outlines are simplified by up to this (never more than margin / 4)


def hazard_layers(project: Project, store: Path) -> list[LayerSpec]:
    have = {str(n) for n in pyogrio.list_layers(store)[:, 0]}
    return [s for s in project.specs.values() if s.visibility == "public"
            and s.map.hazard is not None and s.id in have]


def _rank_order(project: Project, spec: LayerSpec) -> tuple[str | None, list[str]]:
    hz = spec.map.hazard
    assert hz is not None
    rank = spec.map.rank_field
    cl = hz.rank_codelist or (spec.fields[rank].codelist if rank in spec.fields else None)
    codes = list(project.codelists[cl].codes) if cl in project.codelists else []
    return cl, codes


def shelters_in_zones(project: Project, store: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{shelter layer: {fid: [{kind, layer, rank, label}]}}``: shelters lying inside a zone of a
    hazard kind they are designated for, with the worst rank of that layer there."""
    have = {str(n) for n in pyogrio.list_layers(store)[:, 0]}
    zones: dict[str, list[tuple[LayerSpec, Any]]] = {}
    for spec in hazard_layers(project, store):
        hz = spec.map.hazard
        assert hz is not None
        rank = spec.map.rank_field
        gdf = pyogrio.read_dataframe(store, layer=spec.id, columns=[rank] if rank else [])
        zones.setdefault(hz.kind, []).append((spec, gdf))
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for sspec in project.specs.values():
        role = sspec.map.shelter
        if sspec.visibility != "public" or role is None or sspec.id not in have:
            continue
        cols = [ID_COLUMN, *role.flags.values()]
        sh = pyogrio.read_dataframe(store, layer=sspec.id, columns=list(dict.fromkeys(cols)))
        pts = sh.geometry.values
        found: dict[str, list[dict[str, Any]]] = {}
        for kind, field in role.flags.items():
            designated = sh[field].astype("boolean").fillna(False).to_numpy(dtype=bool)
            for spec, gdf in zones.get(kind, []):
                cl, codes = _rank_order(project, spec)
                rank = spec.map.rank_field
                tree = shapely.STRtree(gdf.geometry.values)
                si, zi = tree.query(pts, predicate="intersects")
                worst: dict[int, int] = {}
                for s, z in zip(si.tolist(), zi.tolist(), strict=True):
                    if not designated[s]:
                        continue
                    code = str(gdf[rank].iloc[z]) if rank else ""
                    order = codes.index(code) if code in codes else -1
                    worst[s] = max(worst.get(s, -1), order)
                for s, order in sorted(worst.items()):
                    code = codes[order] if order >= 0 else None
                    entry = project.codelists[cl].codes[code] if cl and code else None
                    found.setdefault(str(sh[ID_COLUMN].iloc[s]), []).append({
                        "kind": kind, "layer": spec.id, "rank": code,
                        "label": labels(entry) if entry else None})
        out[sspec.id] = found
    return out


def coverage_areas(project: Project, store: Path) -> dict[str, dict[str, Any]]:
    """``{hazard layer: GeoJSON polygon}`` for layers assessed over part of the city only."""
    crs = project.config.target_crs
    back = Transformer.from_crs(crs, "OGC:CRS84", always_xy=True)

    def to_lonlat(c: np.ndarray) -> np.ndarray:
        return np.column_stack(back.transform(c[:, 0], c[:, 1]))

    out: dict[str, dict[str, Any]] = {}
    for spec in hazard_layers(project, store):
        hz = spec.map.hazard
        assert hz is not None
        if hz.coverage != "zones":
            continue
        gdf = pyogrio.read_dataframe(store, layer=spec.id, columns=[])
        if not len(gdf):
            continue
        plane = gdf.to_crs(crs).geometry.values
        hull = shapely.convex_hull(shapely.union_all(plane)).buffer(hz.coverage_margin_m)
        # a few dozen vertices are enough: the simplified outline stays outside every zone
        hull = hull.simplify(min(SIMPLIFY_M, hz.coverage_margin_m / 4))
        ll = shapely.transform(hull, to_lonlat)
        # rounded like the page's other outlines (6 decimals written as 6 decimals in JSON)
        out[spec.id] = shapely.geometry.mapping(
            shapely.transform(ll, lambda xy: np.round(xy, DECIMALS)))
    return out


def guidance(hz: HazardRole) -> dict[str, Any] | None:
    """``{"all": {lang: text}, "byRank": {code: {lang: text}}}`` or None."""
    if hz.guidance is None and not hz.guidance_by_rank:
        return None
    return {"all": labels(hz.guidance) if hz.guidance else None,
            "byRank": {code: labels(t) for code, t in hz.guidance_by_rank.items()}}


def route_conf(project: Project, store: Path, api_base: str) -> dict[str, Any] | None:
    """``{"api", "speed", "script"}`` for the hazard page's route buttons (walking speed in
    m/s, as ``walk-route`` counts), or None when no walking network is in the release."""
    have = {str(n) for n in pyogrio.list_layers(store)[:, 0]}
    net = [lid for lid, s in project.specs.items() if s.map.network == "walk"
           and s.visibility == "public" and lid in have]
    if not net:
        return None
    return {"api": api_base.rstrip("/"),
            "speed": project.config.publish.routing.walk_speed_mps,
            # loaded with the card's libraries, after the map is drawn (fingerprinted)
            "script": asset_url(ROUTE_SCRIPT)}


def page_facts(project: Project, store: Path, api_base: str,
               data: dict[str, Any]) -> dict[str, Any]:
    """The hazard page's extras: adds ``coverage`` (partial studies' outlines) to the page's
    data file ``data`` and returns what its config's ``hazard`` block adds (``route``)."""
    cov = coverage_areas(project, store)
    if cov:
        data["coverage"] = cov
    return {"route": route_conf(project, store, api_base)}
