"""The map pages answer residents: one search box and three languages, in real Chromium, on both
example cities (one real publish each, served by the real server with its API).

* the top bar's search box finds what the reference search (``search_index.search``) finds, a
  地番 typed on a phone with full-width digits included; Enter shows the parcel in the sheet with
  the map centred on it; a hit on another page opens that page, which selects the feature;
* the page language follows the browser (ja-* -> ja, else en), ``?lang=`` wins, and the switch
  offers やさしい日本語 (the catalogue's .po translation), remembered for the server pages too;
* the parcel page's 大字 list is in the order of the readings the city's config gives.

Expected values come from the catalogue (config.i18n), the release's own files and the
reference search, never from the page's code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pyogrio
import pytest
import requests
from test_answers_e2e import CITIES, FW, _city_root

from config import i18n, load_project
from etl.pipeline import run_merge
from publish.build import publish
from publish.build import search_index as si
from publish.server.app import ServerProcess

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 740}
LIMIT = 8  # hits the box lists (as on the landing page)


@pytest.fixture(scope="module", params=CITIES)
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Any]:
    """One release of the city (sample data), its search index and its pages."""
    root = _city_root(request.param, tmp_path_factory.mktemp(request.param))
    project = load_project(root)
    run_merge(project)
    res = publish(project)
    maps = res.path / "site" / "maps"
    index = json.loads((maps / si.INDEX_FILE).read_text(encoding="utf-8"))
    return {"name": request.param, "project": project, "res": res, "maps": maps, "index": index}


@pytest.fixture(scope="module")
def server(city: dict[str, Any]) -> Iterator[Any]:
    with ServerProcess(city["project"].root, workers=1) as srv:
        yield srv




def _context(browser: Any, server: Any, locale: str = "ja-JP",
             viewport: dict[str, int] | None = None) -> Any:
    """A phone context: only the server's own URLs load (basemap tiles fail fast)."""
    ctx = browser.new_context(locale=locale, viewport=viewport or PHONE, is_mobile=True,
                              has_touch=True, device_scale_factor=2)
    ctx.set_default_timeout(60_000)  # a shared, busy machine: never a timing test
    ctx.route("**/*", lambda route: route.continue_()
              if route.request.url.startswith(server.base) else route.abort())
    return ctx


def _open(ctx: Any, url: str) -> Any:
    """A map page, its terms agreed when it asks, ready (data loaded)."""
    page = ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.requested = []
    page.on("request", lambda r: page.requested.append(r.url))
    page.goto(url)
    page.wait_for_function("window.GisMap && GisMap.app && (GisMap.ready || "
                           "document.getElementById('gm-agree'))")
    if page.locator("#gm-agree").count():
        page.click("#gm-agree")
    page.wait_for_function("window.GisMap && GisMap.ready === true")
    return page


def _page_of(city: dict[str, Any], layer: str) -> str:
    return city["index"]["pages"][layer]


def _parcel_query(index: dict[str, Any]) -> tuple[str, si.Hit]:
    """A 地番 as typed on a phone (full-width digits, 番) and the reference's first hit."""
    e = index["oaza"][len(index["oaza"]) // 2]
    ch = next(c for c in e["ch"] if "-" in c) if any("-" in c for c in e["ch"]) else e["ch"][0]
    query = f"{e['n']}{ch.replace('-', '番')}".translate(FW)
    hit = si.search(index, query, LIMIT)[0]
    assert (hit.kind, hit.label) == ("parcel", f"{e['n']} {ch}")
    return query, hit


def _status(page: Any) -> str:
    return page.locator("#gm-q-status").inner_text().strip()


# ------------------------------------------------------------------------------ the search box


def test_map_search_shows_a_parcel_typed_on_a_phone(city: dict[str, Any], server: Any,
                                                    browser: Any) -> None:
    index = city["index"]
    query, hit = _parcel_query(index)
    want = si.search(index, query, LIMIT)
    ctx = _context(browser, server)
    try:
        page = _open(ctx, f"{server.base}/maps/{_page_of(city, hit.layer)}")
        # the index is not part of the first paint: it loads on the first focus
        assert not [u for u in page.requested if u.endswith(si.INDEX_FILE)]
        page.tap("#gm-q")
        page.keyboard.type(query)
        page.wait_for_selector("#gm-q-list [role=option]")
        assert [u for u in page.requested if u.endswith(f"/maps/{si.INDEX_FILE}")]
        labels = page.locator("#gm-q-list [role=option] .gs-label").all_inner_texts()
        assert labels == [h.label for h in want]
        assert page.get_attribute("#gm-q", "role") == "combobox"
        assert page.get_attribute("#gm-q", "aria-expanded") == "true"
        assert _status(page) == i18n.tr("search_count", "ja", n=len(want))
        first = page.get_attribute("#gm-q", "aria-activedescendant")
        page.keyboard.press("ArrowDown")
        if len(want) > 1:
            assert page.get_attribute("#gm-q", "aria-activedescendant") != first
        page.keyboard.press("ArrowUp")  # back to the first: keyboard only
        assert page.get_attribute("#gm-q", "aria-activedescendant") == first
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#gm-map[data-hit='{hit.layer}/{hit.fid}']")
        assert page.get_attribute("#gm-q", "aria-expanded") == "false"
        # the parcel is shown in the sheet (pinned with its pipe-sheet buttons) ...
        shown = page.locator(f"#gm-sheet [data-layer='{hit.layer}'][data-id='{hit.fid}']")
        shown.first.wait_for()
        assert hit.label.split(" ")[-1] in shown.first.locator("h3").inner_text()
        # ... and the map is centred on it
        lots = pyogrio.read_dataframe(city["res"].store, layer=hit.layer)
        lot = lots[lots["fid"].astype(str) == hit.fid]
        assert len(lot) == 1
        lon0, lat0, lon1, lat1 = lot.geometry.iloc[0].bounds
        page.wait_for_function("!GisMap.app.vtLoading")
        c = page.evaluate("(() => { const c = GisMap.app.map.getCenter(); "
                          "return [c.lng, c.lat]; })()")
        assert lon0 <= c[0] <= lon1 and lat0 <= c[1] <= lat1, (c, (lon0, lat0, lon1, lat1))
        assert page.errors == []
    finally:
        ctx.close()


def test_map_search_hit_on_another_page_opens_it_selected(city: dict[str, Any], server: Any,
                                                          browser: Any) -> None:
    index = city["index"]
    _, parcel = _parcel_query(index)
    here = _page_of(city, parcel.layer)
    place = next(p for p in index["places"] if index["pages"].get(p["layer"]) not in (None, here)
                 and si.search(index, p["n"], LIMIT)[0].fid == p["id"])
    hit = si.search(index, place["n"], LIMIT)[0]
    there = _page_of(city, hit.layer)
    ctx = _context(browser, server)
    try:
        page = _open(ctx, f"{server.base}/maps/{here}")
        page.fill("#gm-q", place["n"])
        page.wait_for_selector("#gm-q-list [role=option]")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.startswith(f"{server.base}/maps/{there}?at=")
        q = dict(kv.split("=", 1) for kv in page.url.split("?", 1)[1].split("#")[0].split("&"))
        assert (q["layer"], q["fid"]) == (hit.layer, hit.fid)
        assert [float(v) for v in q["at"].split(",")] == pytest.approx([hit.lat, hit.lon],
                                                                       abs=1e-6)
        page.wait_for_function("window.GisMap && GisMap.ready === true")
        page.wait_for_selector(f"#gm-map[data-hit='{hit.layer}/{hit.fid}']")
        detail = page.locator(f"#gm-picks [data-layer='{hit.layer}'][data-id='{hit.fid}']")
        assert place["n"] in detail.inner_text()
        c = page.evaluate("(() => { const c = GisMap.app.map.getCenter(); "
                          "return [c.lat, c.lng]; })()")
        assert c == pytest.approx([hit.lat, hit.lon], abs=2e-4)
        # the query is dropped once shown: a reload keeps the view (#map=), not the jump
        assert "at=" not in page.url
        # the landing page's box links the same way (layer and feature included)
        page.goto(f"{server.base}/")
        page.fill("#site-q", place["n"])
        page.wait_for_selector("#site-q-list [role=option]")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.wait_for_function("window.GisMap && GisMap.ready === true")
        page.wait_for_selector(f"#gm-map[data-hit='{hit.layer}/{hit.fid}']")
        assert place["n"] in page.locator(f"#gm-picks [data-id='{hit.fid}']").inner_text()
        assert page.errors == []
    finally:
        ctx.close()


def test_hazard_page_answers_a_searched_lot_with_the_risk_card(city: dict[str, Any],
                                                              server: Any, browser: Any) -> None:
    """A 地番 typed on the hazard map stays there: the risk card answers for it."""
    index = city["index"]
    query, hit = _parcel_query(index)
    pages = city["res"].path / "site" / "maps"
    hazard = next(p for p in sorted(set(index["pages"].values()))
                  if '"hazard":{' in (pages / p).read_text(encoding="utf-8"))
    assert hazard != _page_of(city, hit.layer)
    ctx = _context(browser, server)
    try:
        page = _open(ctx, f"{server.base}/maps/{hazard}")
        page.fill("#gm-q", query)
        page.wait_for_selector("#gm-q-list [role=option]")
        page.keyboard.press("Enter")
        page.wait_for_selector("#gm-map[data-hit=place]")
        page.wait_for_selector("#hz-card[data-state=result]")
        assert page.url.startswith(f"{server.base}/maps/{hazard}")
        got = page.evaluate("[GisMap.hazard.lastPoint().lat, GisMap.hazard.lastPoint().lng]")
        assert got == pytest.approx([hit.lat, hit.lon], abs=1e-9)
        assert page.errors == []
    finally:
        ctx.close()


def test_map_search_says_no_hits_and_closes_on_escape(city: dict[str, Any], server: Any,
                                                      browser: Any) -> None:
    index = city["index"]
    query, _ = _parcel_query(index)
    page_file = _page_of(city, index["places"][0]["layer"])
    ctx = _context(browser, server, locale="en-US", viewport=SMALL_PHONE)
    try:
        page = _open(ctx, f"{server.base}/maps/{page_file}")
        # the box has its own row above the map: it covers none of the map's buttons, and the
        # bar fits a 360 px screen
        box = page.locator("#gm-search").bounding_box()
        mp = page.locator("#gm-map").bounding_box()
        assert box["y"] + box["height"] <= mp["y"] + 0.5
        assert page.evaluate("document.documentElement.scrollWidth") <= SMALL_PHONE["width"]
        for sel in ("#gm-q", "#gm-lang", "#gm-locate", "#gm-legend-btn"):
            assert page.locator(sel).bounding_box()["height"] >= 44, sel
        assert page.get_attribute("#gm-q", "placeholder") == i18n.tr("search_placeholder", "en")
        page.fill("#gm-q", "ｚｚｚ")
        page.wait_for_function("document.getElementById('gm-q-status').textContent !== '' && "
                               "!document.getElementById('gm-q-status').textContent"
                               ".includes('…')")
        assert _status(page) == i18n.tr("search_none", "en", q="ｚｚｚ")
        assert page.get_attribute("#gm-q", "aria-expanded") == "false"
        page.fill("#gm-q", query)
        page.wait_for_selector("#gm-q-list [role=option]")
        assert page.get_attribute("#gm-q", "aria-expanded") == "true"
        page.keyboard.press("Escape")
        assert page.get_attribute("#gm-q", "aria-expanded") == "false"
        assert page.locator("#gm-q-list").is_hidden()
        assert page.errors == []
    finally:
        ctx.close()


def test_search_index_is_cached_like_the_pages(city: dict[str, Any], server: Any) -> None:
    """One file for the landing page and every map page: compressed, revalidated (304)."""
    url = f"{server.base}/maps/{si.INDEX_FILE}"
    r = requests.get(url, headers={"Accept-Encoding": "br, gzip"}, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "br"
    assert r.headers["Cache-Control"] == "no-cache" and r.headers["ETag"]
    assert r.json() == city["index"]
    again = requests.get(url, headers={"Accept-Encoding": "br, gzip",
                                       "If-None-Match": r.headers["ETag"]}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    for page in sorted(set(city["index"]["pages"].values())):
        html = (city["maps"] / page).read_text(encoding="utf-8")
        cfg = json.loads(re.search(r'id="gm-config">(.*?)</script>', html, re.S).group(1))
        assert cfg["search"] == {"url": si.INDEX_FILE}  # relative: the landing page's URL
        assert re.search(r'<script defer src="/static/map/search\.js\?v=[0-9a-f]{10}"', html)


# ---------------------------------------------------------------------------------- languages


def _easy_key() -> str:
    """A key of the top bar whose やさしい日本語 (.po) differs from its Japanese."""
    key = "map_legend_button"
    assert i18n.tr(key, i18n.EASY) != i18n.tr(key, "ja"), "translate it in the .po"
    return key


def test_map_language_follows_the_browser_the_switch_and_the_link(
        city: dict[str, Any], server: Any, browser: Any) -> None:
    index = city["index"]
    page_file = _page_of(city, index["places"][0]["layer"])
    url = f"{server.base}/maps/{page_file}"
    title = next(p.title for p in city["project"].config.publish.pages
                 if f"{p.id}.html" == page_file)
    for locale, want in (("en-US", "en"), ("ja-JP", "ja"), ("vi-VN", "en")):
        ctx = _context(browser, server, locale=locale)
        try:
            page = _open(ctx, url)
            assert page.evaluate("document.documentElement.dataset.lang") == want
            assert page.evaluate("document.documentElement.lang") == want
            assert page.locator("#gm-sheet-title").inner_text().strip() == i18n.tr(
                "map_sheet_label", want)
            assert page.locator("#gm-legend-btn").inner_text().strip() == i18n.tr(
                "map_legend_button", want)
            assert page.input_value("#gm-lang") == want
            assert page.title() == (title.en if want == "en" else title.ja)
            assert page.errors == []
        finally:
            ctx.close()
    key = _easy_key()
    ctx = _context(browser, server, locale="ja-JP")
    try:
        page = _open(ctx, url)
        page.select_option("#gm-lang", i18n.EASY)
        assert page.evaluate("document.documentElement.dataset.lang") == i18n.EASY
        assert page.evaluate("document.documentElement.lang") == "ja"
        assert page.locator("#gm-legend-btn").inner_text().strip() == i18n.tr(key, i18n.EASY)
        # texts the script writes follow too (a missing translation is the Japanese)
        assert page.get_attribute("#gm-q", "placeholder") == i18n.tr("search_placeholder",
                                                                      i18n.EASY)
        assert page.locator("#gm-sheet-toggle").inner_text().strip() in (
            i18n.tr("map_sheet_open", i18n.EASY), i18n.tr("map_sheet_close", i18n.EASY))
        assert page.title() == (title.easy or title.ja)
        # a tap on the map works in every language (behaviours hear the switch)
        box = page.locator("#gm-map").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        # remembered on this device: the server pages open in it
        page.goto(f"{server.base}/")
        assert page.evaluate("document.documentElement.dataset.lang") == i18n.EASY
        assert page.locator("#maps h2").inner_text().strip() == i18n.tr("page_maps", i18n.EASY)
        page = _open(ctx, url)
        assert page.input_value("#gm-lang") == i18n.EASY
        # a link may ask for a language: ?lang= wins over the remembered one
        page = _open(ctx, url + "?lang=en")
        assert page.evaluate("document.documentElement.dataset.lang") == "en"
        assert page.locator("#gm-legend-btn").inner_text().strip() == i18n.tr(key, "en")
        # switching back on the page is remembered for the landing page
        page.select_option("#gm-lang", "ja")
        page.goto(f"{server.base}/")
        assert page.evaluate("document.documentElement.dataset.lang") == "ja"
        assert page.errors == []
    finally:
        ctx.close()


# ------------------------------------------------------------------------ 大字 by reading


def _natural(reading: str) -> list[Any]:
    """ばんちょう2ちょうめ before ばんちょう10ちょうめ: numbers compared as numbers."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|\D+", reading)]


def test_oaza_list_is_in_reading_order(city: dict[str, Any], server: Any,
                                       browser: Any) -> None:
    project = city["project"]
    layer = next(lid for lid, s in project.specs.items() if s.map.role == "parcel")
    role = project.specs[layer].map.parcel
    df = pyogrio.read_dataframe(city["res"].store, layer=layer, read_geometry=False)
    readings = {o.name: o for o in project.config.publish.search.oaza}
    names = sorted(set(df[role.oaza_field].dropna()))
    known = sorted((n for n in names if n in readings),
                   key=lambda n: _natural(readings[n].reading))
    rest = [n for n in names if n not in readings]
    if role.oaza_code_field:
        first_code = df.groupby(role.oaza_field)[role.oaza_code_field].min()
        rest.sort(key=lambda n: (first_code[n], n))
    want = known + rest
    assert len(known) >= 5
    ctx = _context(browser, server, locale="en-US")
    try:
        page = _open(ctx, f"{server.base}/maps/{_page_of(city, layer)}")
        options = page.locator("#pp-oaza option")
        assert [options.nth(i).get_attribute("value") for i in range(options.count())] == want
        # in English the romanised name comes first; in やさしい日本語 the reading is given
        n = known[0]
        assert options.nth(0).inner_text() == f"{readings[n].en} ({n})"
        page.select_option("#gm-lang", i18n.EASY)
        assert options.nth(0).inner_text() == f"{n}（{readings[n].reading}）"
        assert page.errors == []
    finally:
        ctx.close()


def test_easy_japanese_page_with_search_and_parcel_passes_axe(city: dict[str, Any], server: Any,
                                                              browser: Any) -> None:
    """やさしい日本語 is still lang="ja" everywhere (BCP 47 has no tag for it); the open search
    list and a pinned parcel have nothing critical or serious for axe."""
    from test_a11y import AXE, RUN_AXE

    index = city["index"]
    query, hit = _parcel_query(index)
    ctx = _context(browser, server)
    try:
        page = _open(ctx, f"{server.base}/maps/{_page_of(city, hit.layer)}?lang={i18n.EASY}")
        assert page.evaluate("document.documentElement.dataset.lang") == i18n.EASY
        page.fill("#gm-q", query)
        page.wait_for_selector("#gm-q-list [role=option]")
        page.add_script_tag(path=str(AXE))
        assert page.evaluate(RUN_AXE) == []
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#gm-map[data-hit='{hit.layer}/{hit.fid}']")
        page.locator(f"#gm-sheet [data-layer='{hit.layer}'][data-id='{hit.fid}']").first.wait_for()
        # (protomaps-leaflet's tile canvases carry an unset lang of their own)
        langs = page.evaluate("[...document.querySelectorAll('[lang]:not(canvas)')]"
                              ".map(e => e.lang)")
        assert set(langs) <= {"ja", "en"}, set(langs)
        assert page.evaluate(RUN_AXE) == []
        assert page.errors == []
    finally:
        ctx.close()
