"""The hazard map answers a resident honestly, in real Chromium on a 390 px phone, on both example
cities (the release of tests/test_answers_e2e.py's ``city`` fixture, served with its API by
``server``):

* no data is not "safe": outside the area a partial study covers (``coverage: zones``) the card
  says "no data" for that hazard and never the all-clear; outside the city, no data for all;
* shelters designated for a hazard but inside a zone of it are flagged in words, exactly those
  :func:`publish.pages.hazard_facts.shelters_in_zones` reports (list, details, marker label);
* "what to do" is the spec's text for the worst rank found;
* the walking route: the button asks the release's ``walk-route`` process, the page draws one
  line per route and tells the steps as the process phrases them (ja and en), with the walking
  time; with the API gone it says so in words, in the page's language.

Expected values come from the specs, the catalogue (config.i18n), shapely on the public store and
direct requests to the API, never from the page's code.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import requests
import shapely
import shapely.geometry
import test_answers_e2e as e2e
from pyproj import Transformer
from test_a11y import AXE, RUN_AXE

from config import i18n
from config.models import LayerSpec
from publish.build import routing
from publish.pages import hazard_facts, roles

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 740}
INSET_M = 8.0  # spots this far inside an area: the page's 6-decimal outlines still agree

# the release of each example city and its live server (with the API), shared with the e2e tests
city = e2e.city
server = e2e.server


# ---------------------------------------------------------------------------------- fixtures




def hazard_page(project: Any) -> str:
    """The page holding the city's hazard layers (found by role, not by name)."""
    for p in project.config.publish.pages:
        if any(s.map.role == "hazard" for s in roles.page_layers(project, p.id)):
            return p.id
    raise AssertionError("no hazard page")


def open_card(browser: Any, server: Any, project: Any, *, lang: str = "ja",
              viewport: dict[str, int] | None = None, api_route: Any = None) -> Any:
    """The hazard page on a phone, its card's libraries (Turf, GeographicLib, route.js) loaded.
    Only the server's own URLs load; ``api_route`` may stand in for the API."""
    ctx = browser.new_context(locale="ja-JP", viewport=viewport or PHONE, is_mobile=True,
                              has_touch=True, device_scale_factor=2)
    ctx.set_default_timeout(60_000)  # a shared, busy machine: never a timing test
    ctx.route("**/*", lambda route: route.continue_()
              if route.request.url.startswith(server.base) else route.abort())
    if api_route is not None:
        ctx.route("**/api/processes/walk-route/**", api_route)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(f"{server.base}/maps/{hazard_page(project)}.html?lang={lang}")
    page.wait_for_function("window.GisMap && GisMap.ready === true && !!GisMap.hazard")
    assert page.evaluate("GisMap.hazard.loadLibs().then(() => !!window.GisRoute)")
    return page


def close(page: Any) -> None:
    errors = page.errors
    page.context.close()
    assert errors == [], errors


def axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's critical and serious findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


def check(page: Any, lon: float, lat: float) -> dict[str, Any]:
    """The card for (lon, lat), as a tap there makes it; the page's summary of it."""
    return page.evaluate("([lat, lon]) => GisMap.hazard.evaluateNow(lat, lon, 'tap')", [lat, lon])


def page_data(city: dict[str, Any]) -> dict[str, Any]:
    project = city["project"]
    maps = city["b"].path / "site" / "maps"
    return json.loads((maps / f"{hazard_page(project)}.json").read_text(encoding="utf-8"))


def hazard_specs(project: Any) -> list[LayerSpec]:
    return [s for s in roles.page_layers(project, hazard_page(project)) if s.map.hazard]


def shelter_specs(project: Any) -> list[LayerSpec]:
    return [s for s in roles.page_layers(project, hazard_page(project)) if s.map.shelter]


def kind_title(project: Any, kind: str, lang: str) -> str:
    """The hazard kind's name: the spec's own title, else the catalogue's."""
    for s in hazard_specs(project):
        if s.map.hazard.kind == kind and s.map.hazard.title:
            return i18n.label(s.map.hazard.title, lang)
    return i18n.tr(f"map_kind_{kind}", lang)


def planar(project: Any) -> tuple[Transformer, Transformer]:
    crs = project.config.target_crs
    return (Transformer.from_crs("OGC:CRS84", crs, always_xy=True),
            Transformer.from_crs(crs, "OGC:CRS84", always_xy=True))


def inner_point(project: Any, area: shapely.Geometry) -> tuple[float, float] | None:
    """A point ``INSET_M`` inside a lon/lat area (its largest part), or None: lon, lat."""
    fwd, back = planar(project)

    def tr(t: Transformer) -> Any:
        return lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1]))

    plane = shapely.transform(area, tr(fwd))
    parts = sorted(shapely.get_parts(plane), key=lambda g: -g.area)
    if not parts:
        return None
    inner = parts[0].buffer(-INSET_M)
    if inner.is_empty:
        return None
    pt = inner.representative_point()
    lon, lat = back.transform(pt.x, pt.y)
    return float(lon), float(lat)


def zones(city: dict[str, Any], spec: LayerSpec) -> Any:
    return pyogrio.read_dataframe(city["b"].store, layer=spec.id)


def rank_order(project: Any, spec: LayerSpec) -> list[str]:
    """The rank codes, least severe first (the code list's order is the severity)."""
    cl = spec.map.hazard.rank_codelist or roles.codelist_of(spec, spec.map.rank_field)
    return [str(c) for c in project.codelists[cl].codes]


def code(v: Any) -> str:
    return str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v)


# ------------------------------------------------------------------- (a) no data is not safe


def test_outside_a_partial_study_says_no_data_never_all_clear(city: dict[str, Any],
                                                              server: Any, browser: Any) -> None:
    project, data = city["project"], page_data(city)
    partial = [s for s in hazard_specs(project) if s.map.hazard.coverage == "zones"]
    want_cov = hazard_facts.coverage_areas(project, city["b"].store)
    assert [s.id for s in partial] == sorted(want_cov) == (
        ["naisui_shinsui"] if city["name"] == "takamatsu" else [])
    # the outline travels in the data file, small and rounded like the zones
    assert data.get("coverage", {}) == json.loads(json.dumps(want_cov))
    for geom in want_cov.values():
        assert len(shapely.get_coordinates(shapely.geometry.shape(geom))) < 200
    decimals = re.findall(r"\d+\.(\d+)", json.dumps(data.get("coverage", {})))
    assert max((len(d) for d in decimals), default=0) <= 6
    area = shapely.geometry.shape(data["area"])
    all_zones = shapely.union_all([zones(city, s).union_all() for s in hazard_specs(project)])
    covered = shapely.union_all([shapely.geometry.shape(g) for g in want_cov.values()]) \
        if want_cov else None
    # a shelter of the city (a place people go) in no zone, beyond every partial study
    spot = None
    for s in shelter_specs(project):
        for g in zones(city, s).geometry:
            p = g.representative_point()
            if area.buffer(-0.002).contains(p) and not all_zones.buffer(0.001).intersects(p) and (
                    covered is None or not covered.buffer(0.001).intersects(p)):
                spot = p
                break
        if spot is not None:
            break
    assert spot is not None
    page = open_card(browser, server, project)
    try:
        got = check(page, spot.x, spot.y)
        assert got["inside"] is True
        card = page.locator("#hz-card")
        for s in hazard_specs(project):
            risk = card.locator(f".hz-risk[data-layer={s.id}]")
            dd = risk.locator("dd").inner_text().strip()
            if s in partial:
                assert risk.get_attribute("data-nodata") == "coverage"
                assert dd == i18n.tr("card_no_data", "ja", title=s.title.ja, title_en=s.title.en)
            else:
                assert risk.get_attribute("data-nodata") is None
                assert dd == (s.map.hazard.card_none.ja if s.map.hazard.card_none else
                              i18n.tr("map_hz_none", "ja", title=s.title.ja))
        all_clear = i18n.tr("map_hz_none_all", "ja")
        if partial:  # Takamatsu: its only hazard has no data here: no all-clear, no "partly"
            assert card.locator(".hz-none").count() == 0 and all_clear not in card.inner_text()
            assert card.locator(".hz-partial").count() == (
                0 if len(partial) == len(hazard_specs(project)) else 1)
        else:  # Uozu: every hazard assessed city-wide, so the same spot gets the all-clear
            assert card.locator(".hz-none").inner_text().strip() == all_clear
        # inside the partial study's area but in none of its zones: "outside the zones" there
        for s in partial:
            inside = inner_point(project, shapely.geometry.shape(want_cov[s.id]).difference(
                all_zones.buffer(0.0005)))
            assert inside is not None
            got = check(page, *inside)
            risk = card.locator(f".hz-risk[data-layer={s.id}]")
            assert risk.get_attribute("data-nodata") is None
            assert risk.locator("dd").inner_text().strip() == s.map.hazard.card_none.ja
            assert card.locator(".hz-none").inner_text().strip() == all_clear
        # English: the same answer in English
        page.evaluate("GisMap.app.setLang('en')")
        check(page, spot.x, spot.y)
        for s in partial:
            assert card.locator(f".hz-risk[data-layer={s.id}] dd").inner_text().strip() == \
                i18n.tr("card_no_data", "en", title=s.title.en, title_en=s.title.en)
    finally:
        close(page)


def test_outside_the_city_no_data_for_every_hazard(city: dict[str, Any], server: Any,
                                                   browser: Any) -> None:
    project, data = city["project"], page_data(city)
    x0, y0, _, _ = shapely.geometry.shape(data["area"]).bounds
    page = open_card(browser, server, project)
    try:
        got = check(page, x0 - 0.05, y0 - 0.05)
        assert got["inside"] is False
        assert {r["layer"]: r["nodata"] for r in got["risks"]} == {
            s.id: "outside" for s in hazard_specs(project)}
        card = page.locator("#hz-card")
        assert card.locator(".hz-warn").inner_text().strip() == i18n.tr(
            "map_outside", "ja", city=project.config.city.ja)
        for s in hazard_specs(project):
            assert card.locator(f".hz-risk[data-layer={s.id}] dd").inner_text().strip() == \
                i18n.tr("card_no_data_outside", "ja", title=s.title.ja)
        assert card.locator(".hz-none, .hz-partial, .hz-guidance").count() == 0
        assert i18n.tr("map_hz_none_all", "ja") not in card.inner_text()
    finally:
        close(page)


# ------------------------------------------------------- (b) shelters inside their own zone


def test_shelters_in_their_own_zone_are_flagged_in_words(city: dict[str, Any], server: Any,
                                                         browser: Any, artifacts: Path) -> None:
    project, b = city["project"], city["b"]
    facts = hazard_facts.shelters_in_zones(project, b.store)
    flagged = {(lid, fid, e["kind"]): e for lid, by in facts.items() for fid, es in by.items()
               for e in es}
    if city["name"] == "uozu":
        assert len(facts["shelter"]) == 15  # the Uozu sample: 15 of 56 sites
    data = page_data(city)
    for s in shelter_specs(project):  # the data file flags exactly those, with their zones
        assert {f["id"]: [(e["k"], e["l"], e["r"]) for e in f["properties"]["iz"]]
                for f in data["layers"][s.id] if f["properties"].get("iz")} == {
            fid: [(e["kind"], e["layer"], e["rank"]) for e in es]
            for fid, es in facts.get(s.id, {}).items()}
    # the spot: a flagged shelter's own place (in the zone; it is the nearest for that kind);
    # a city without one: a point in a zone of each layer (then nothing may be flagged)
    spots: list[tuple[float, float]] = []
    for (lid, fid, _kind), _e in sorted(flagged.items())[:2]:
        sh = zones(city, project.specs[lid]).set_index("fid")
        g = sh.loc[fid].geometry
        spots.append((g.x, g.y))
    if not spots:
        for s in hazard_specs(project):
            p = inner_point(project, zones(city, s).geometry.iloc[0])
            assert p is not None
            spots.append(p)
    page = open_card(browser, server, project)
    try:
        card = page.locator("#hz-card")
        n_flags = 0
        for lon, lat in spots:
            got = check(page, lon, lat)
            assert got["shelters"], got
            for grp in got["shelters"]:
                kind = grp["kind"]
                sec = card.locator(f"section.hz-shelters[data-kind={kind}]")
                items = sec.locator("li")
                ids = [items.nth(i).get_attribute("data-shelter-id")
                       for i in range(items.count())]
                assert ids == [x["id"] for x in grp["list"]]
                shown = {items.nth(i).get_attribute("data-shelter-id")
                         for i in range(items.count())
                         if items.nth(i).get_attribute("data-inzone") == "true"}
                want = {x["id"] for x in grp["list"] if (x["layer"], x["id"], kind) in flagged}
                assert shown == want, (kind, shown, want)
                for i in range(items.count()):
                    x = grp["list"][i]
                    e = flagged.get((x["layer"], x["id"], kind))
                    warn = items.nth(i).locator(".hz-inzone-text")
                    if e is None:
                        assert warn.count() == 0
                        continue
                    n_flags += 1
                    text = i18n.tr("card_shelter_in_zone", "ja",
                                   kind=kind_title(project, kind, "ja"),
                                   kind_en=kind_title(project, kind, "en").lower(),
                                   label=e["label"]["ja"])
                    assert warn.inner_text().strip() == i18n.tr("card_in_zone_mark", "ja",
                                                                text=text)
                    # the marker's label and the shelter's details say it too
                    page.evaluate("id => GisMap.hazard.showShelter(id)", x["id"])
                    marker = page.locator(f".hz-shelter[data-shelter-id='{x['id']}']")
                    assert text in marker.get_attribute("aria-label")
                    detail = page.locator(f".hz-popup[data-id='{x['id']}']")
                    every = sorted(i18n.tr("card_in_zone_mark", "ja", text=i18n.tr(
                        "card_shelter_in_zone", "ja", kind=kind_title(project, f["kind"], "ja"),
                        kind_en=kind_title(project, f["kind"], "en").lower(),
                        label=f["label"]["ja"])) for f in facts[x["layer"]][x["id"]])
                    assert sorted(t.strip() for t in detail.locator(
                        ".hz-inzone-text").all_inner_texts()) == every
                    check(page, lon, lat)  # the card again
                    if n_flags == 1:
                        warn.scroll_into_view_if_needed()
                        page.screenshot(path=str(artifacts / f"hazard_inzone_{city['name']}.png"))
        assert n_flags >= (1 if flagged else 0)
        # the card never lists one kind twice (one titled list per hazard kind)
        kinds = page.locator("#hz-card section.hz-shelters").evaluate_all(
            "els => els.map(e => e.dataset.kind)")
        assert len(kinds) == len(set(kinds))
    finally:
        close(page)


# ----------------------------------------------------------------------- (c) what to do


def test_guidance_is_the_specs_text_for_the_worst_rank(city: dict[str, Any], server: Any,
                                                       browser: Any) -> None:
    project = city["project"]
    cases: list[tuple[LayerSpec, tuple[float, float], str]] = []
    for s in hazard_specs(project):
        hz = s.map.hazard
        if hz.guidance is None and not hz.guidance_by_rank:
            continue
        z = zones(city, s)
        order = rank_order(project, s)
        z["rk"] = [order.index(code(v)) for v in z[s.map.rank_field]]
        for rk in sorted(set(z["rk"]))[:3] + sorted(set(z["rk"]))[-1:]:
            here = z[z.rk == rk].union_all().difference(z[z.rk > rk].union_all()) \
                if (z.rk > rk).any() else z[z.rk == rk].union_all()
            p = inner_point(project, here)
            if p is not None:
                cases.append((s, p, order[rk]))
    assert cases
    assert any(r in s.map.hazard.guidance_by_rank for s, _, r in cases)  # a per-rank text
    page = open_card(browser, server, project)
    try:
        for s, (lon, lat), worst in cases:
            got = check(page, lon, lat)
            hits = next(r["hits"] for r in got["risks"] if r["layer"] == s.id)
            order = rank_order(project, s)
            assert max(order.index(h["r"]) for h in hits) == order.index(worst)
            hz = s.map.hazard
            want = hz.guidance_by_rank.get(worst) or hz.guidance
            box = page.locator(f"#hz-card .hz-risk[data-layer={s.id}] .hz-guidance")
            assert box.locator("strong").inner_text().strip() == i18n.tr("card_guidance", "ja")
            assert box.locator("p").inner_text().strip() == want.ja, (s.id, worst)
        page.evaluate("GisMap.app.setLang('en')")  # re-rendered in English
        s, _, worst = cases[-1]
        want = s.map.hazard.guidance_by_rank.get(worst) or s.map.hazard.guidance
        assert page.locator(f"#hz-card .hz-risk[data-layer={s.id}] .hz-guidance p"
                            ).inner_text().strip() == want.en
        page.evaluate(f"GisMap.app.setLang('{i18n.EASY}')")  # やさしい日本語: the spec's easy text
        box = page.locator(f"#hz-card .hz-risk[data-layer={s.id}] .hz-guidance")
        assert box.locator("p").inner_text().strip() == i18n.label(want, i18n.EASY)
        assert box.locator("strong").inner_text().strip() == i18n.tr("card_guidance", i18n.EASY)
    finally:
        close(page)


# ---------------------------------------------------------------------- (d) walking route


def _route_spot(city: dict[str, Any], server: Any, page: Any
                ) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A spot near a road whose card offers a route the API answers with routes:
    (the card's summary, the kind, the API's answer for the page's own point)."""
    g = routing.load_graph(city["b"].path / routing.GRAPH_FILE)
    sh = g.shelters
    for i in np.flatnonzero(sh.edge >= 0)[:12]:
        c = g.edge_coords(int(sh.edge[i]))
        lon, lat = g.to_lonlat.transform(*(c[len(c) // 2] + np.array([0.0, 10.0])))
        got = check(page, float(lon), float(lat))
        kinds = page.locator("#hz-card .hz-route-btn").evaluate_all(
            "els => els.map(e => e.dataset.kind)")
        assert kinds == [grp["kind"] for grp in got["shelters"] if grp["list"]]
        here = page.evaluate("GisMap.hazard.lastPoint()")
        for kind in kinds:
            r = requests.post(f"{server.base}/api/processes/walk-route/execution", timeout=60,
                              json={"inputs": {"lon": here["lng"], "lat": here["lat"],
                                               "kind": kind}})
            if r.status_code == 200 and r.json()["features"]:
                return got, kind, r.json()
    raise AssertionError("no spot with a route")


def _summary(fc: dict[str, Any], i: int, lang: str) -> str:
    pr = fc["features"][i]["properties"]
    return i18n.tr("route_summary", lang, name=pr["name"],
                   d=max(10, round(pr["distance_m"] / 10) * 10), min=pr["walk_min"])


def test_walking_route_drawn_and_told(city: dict[str, Any], server: Any, browser: Any,
                                      artifacts: Path) -> None:
    project = city["project"]
    page = open_card(browser, server, project)
    try:
        _, kind, fc = _route_spot(city, server, page)
        btn = page.locator(f"#hz-card .hz-route-btn[data-kind={kind}]")
        assert btn.inner_text().strip() == i18n.tr("card_route_button", "ja",
                                                   kind=kind_title(project, kind, "ja"))
        btn.focus()
        page.keyboard.press("Enter")  # keyboard only
        box = page.locator(f"#hz-card section[data-kind={kind}] #hz-route")
        box.locator(".rt-routes").wait_for()
        n = len(fc["features"])
        assert 1 <= n <= project.config.publish.routing.results
        assert page.locator("path.rt-line").count() == n
        assert page.locator("path.rt-line-0").get_attribute("stroke-width") == "6"  # bold
        routes = box.locator(".rt-route")
        assert routes.count() == n
        for i, f in enumerate(fc["features"]):
            r = routes.nth(i)
            assert r.locator(".rt-summary").inner_text().strip() == _summary(fc, i, "ja")
            assert r.locator(".rt-steps li").all_text_contents() == [
                s["text"]["ja"] for s in f["properties"]["steps"]]
        assert box.locator(".rt-note").all_text_contents() == [
            "⚠ " + nt["ja"] for nt in fc.get("notes", [])]
        assert box.locator(".rt-caution").inner_text().strip() == " ".join((
            i18n.tr("route_caution", "ja"), i18n.tr(
                "route_speed_note", "ja",
                speed=_num(project.config.publish.routing.walk_speed_mps))))
        assert box.locator("[role=alert]").count() == 0
        assert page.evaluate("document.activeElement.classList.contains('rt-title')")
        assert axe(page) == []  # the card with its route: nothing critical or serious
        # the language switch re-tells the same route
        page.evaluate("GisMap.app.setLang('en')")
        box = page.locator(f"#hz-card section[data-kind={kind}] #hz-route")
        assert box.locator(".rt-route").nth(0).locator(".rt-summary").inner_text().strip() == \
            _summary(fc, 0, "en")
        assert box.locator(".rt-route").nth(0).locator(".rt-steps li").all_text_contents() == [
            s["text"]["en"] for s in fc["features"][0]["properties"]["steps"]]
        assert page.locator("path.rt-line").count() == n
        # clear: lines and text gone
        box.locator(".rt-clear").click()
        assert page.locator("path.rt-line").count() == 0
        assert page.locator("#hz-route").count() == 0 or not page.locator(
            "#hz-route").is_visible()
    finally:
        close(page)


def _num(v: float) -> str:
    """A number as JavaScript's String() writes it (1.0 -> "1")."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def test_route_readable_on_a_small_phone(city: dict[str, Any], server: Any, browser: Any,
                                         artifacts: Path) -> None:
    project = city["project"]
    page = open_card(browser, server, project, viewport=SMALL_PHONE)
    try:
        _, kind, fc = _route_spot(city, server, page)
        page.locator(f"#hz-card .hz-route-btn[data-kind={kind}]").click()
        first = page.locator("#hz-route .rt-route-0 .rt-steps li").first
        first.wait_for()
        first.scroll_into_view_if_needed()
        assert first.is_visible()
        body = page.locator("#gm-sheet-body")
        assert body.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # no sideways scroll
        box = first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= SMALL_PHONE["width"]
        font = float(first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
        assert font >= 14.0
        # the route is on the part of the map the phone shows
        line = page.locator("path.rt-line-0").bounding_box()
        view = page.locator("#gm-map").bounding_box()
        assert line is not None and view is not None
        assert line["x"] < view["x"] + view["width"] and line["x"] + line["width"] > view["x"]
        assert line["y"] < view["y"] + view["height"] and line["y"] + line["height"] > view["y"]
        assert len(fc["features"]) == page.locator("path.rt-line").count()
        page.screenshot(path=str(artifacts / f"hazard_route_{city['name']}_360.png"))
    finally:
        close(page)


# ---------------------------------------------------------------- (e) with the API gone


@pytest.mark.parametrize("how", ["dead", "proxy-502", "hang"])
def test_route_with_the_api_down_says_so(city: dict[str, Any], server: Any, browser: Any,
                                         how: str) -> None:
    """A dead API address (nothing listens), a proxy's HTML error page (nginx serving the
    static site with the API down) and an API that never answers: a readable alert in the
    card, in the page's language; never an endless "finding the way"."""
    project = city["project"]

    def proxy_502(route: Any) -> None:
        route.fulfill(status=502, content_type="text/html",
                      body="<html><body><h1>502 Bad Gateway</h1></body></html>")

    def hang(route: Any) -> None:
        """Never answered (a proxy waiting on a dead upstream)."""

    lang = "ja" if how == "proxy-502" else "en"
    page = open_card(browser, server, project, lang=lang,
                     api_route={"proxy-502": proxy_502, "hang": hang}.get(how))
    try:
        if how == "dead":  # nothing listens there: the request fails at once
            page.evaluate("GisMap.hazard.routeConf.api = 'http://127.0.0.1:9/api'")
        if how == "hang":  # the page gives up after its time-out (20 s by default)
            page.evaluate("GisMap.hazard.routeConf.timeoutMs = 1500")
        data = page_data(city)
        x0, y0, x1, y1 = shapely.geometry.shape(data["area"]).bounds
        lon, lat = _a_listed_spot(city)
        got = check(page, lon, lat)
        kind = next(grp["kind"] for grp in got["shelters"] if grp["list"])
        assert x0 <= lon <= x1 and y0 <= lat <= y1
        page.locator(f"#hz-card .hz-route-btn[data-kind={kind}]").click()
        alert = page.locator("#hz-card #hz-route .rt-error[role=alert]")
        alert.wait_for()
        want = (i18n.tr("card_route_status", lang, status=502) if how == "proxy-502"
                else i18n.tr("card_route_offline", lang))
        assert alert.inner_text().strip() == want
        assert page.locator("#hz-route").get_attribute("aria-busy") is None
        assert page.locator("path.rt-line").count() == 0
        assert axe(page) == []
        other = "ja" if lang == "en" else "en"  # the message follows a language switch
        page.evaluate(f"GisMap.app.setLang('{other}')")
        want = (i18n.tr("card_route_status", other, status=502) if how == "proxy-502"
                else i18n.tr("card_route_offline", other))
        assert page.locator("#hz-card #hz-route .rt-error[role=alert]").inner_text().strip() \
            == want
        page.evaluate(f"GisMap.app.setLang('{i18n.EASY}')")  # and in やさしい日本語
        want = (i18n.tr("card_route_status", i18n.EASY, status=502) if how == "proxy-502"
                else i18n.tr("card_route_offline", i18n.EASY))
        assert want != i18n.tr("card_route_offline", "ja")  # translated, not the fallback
        assert page.locator("#hz-card #hz-route .rt-error[role=alert]").inner_text().strip() \
            == want
    finally:
        close(page)


def test_route_error_of_the_process_is_an_alert(city: dict[str, Any], server: Any,
                                               browser: Any) -> None:
    """A spot far from every mapped road: the process's own message (its Japanese side) as an
    alert in the card, the English side after the switch."""
    project = city["project"]
    g = routing.load_graph(city["b"].path / routing.GRAPH_FILE)
    x, y = g.node_xy.min(axis=0) - 3000.0  # 3 km beyond the network's south-west corner
    lon, lat = g.to_lonlat.transform(x, y)
    page = open_card(browser, server, project)
    try:
        got = check(page, float(lon), float(lat))
        kind = next(grp["kind"] for grp in got["shelters"] if grp["list"])
        here = page.evaluate("GisMap.hazard.lastPoint()")
        r = requests.post(f"{server.base}/api/processes/walk-route/execution", timeout=60,
                          json={"inputs": {"lon": here["lng"], "lat": here["lat"],
                                           "kind": kind}})
        assert r.status_code == 400
        limit = round(project.config.publish.routing.snap_m)
        ja, en = r.json()["description"].split(" / ")
        assert ja == i18n.tr("route_snap_far", "ja", limit=limit,
                             dist=round(routing.snap(g, (x, y), None).off))
        page.locator(f"#hz-card .hz-route-btn[data-kind={kind}]").click()
        alert = page.locator("#hz-card #hz-route .rt-error[role=alert]")
        alert.wait_for()
        assert alert.inner_text().strip() == ja
        page.evaluate("GisMap.app.setLang('en')")
        assert page.locator("#hz-card #hz-route .rt-error[role=alert]").inner_text().strip() \
            == en
    finally:
        close(page)


def _a_listed_spot(city: dict[str, Any]) -> tuple[float, float]:
    """A shelter's place, 30 m east (lists shelters whatever the zones there): lon, lat."""
    project = city["project"]
    fwd, back = planar(project)
    s = shelter_specs(project)[0]
    g = zones(city, s).geometry.iloc[0]
    x, y = fwd.transform(g.x, g.y)
    lon, lat = back.transform(x + 30.0, y)
    assert math.isfinite(lon) and math.isfinite(lat)
    return float(lon), float(lat)
