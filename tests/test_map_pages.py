"""Map pages declared, not coded: another town's pages from its configuration alone.

The town (``tests/map_variant.py``) has its own layer ids and field names, plane zone VIII, an
inland-flood hazard with its own rank code list and a third page with fire stations only. It is
published by the real ``publish()`` (vector tiles included); the pages are opened in real
headless Chromium, served by a loopback server with range requests (``tests/map_server.py``:
``/static/`` = publish/static, ``/maps/`` = the release's pages); every request to anything but
127.0.0.1 is aborted (no basemap). Expected answers are computed here
independently (pyproj, shapely), never by the page's code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from map_server import DRAWN, DRAWN_ALL, serve_maps
from map_variant import (
    CODELISTS,
    CRS,
    DATE,
    E0,
    N0,
    OAZA,
    SPECS,
    build_variant,
    frames,
    write_variant,
)
from publish_fixtures import readable
from pyproj import Geod, Transformer

from config import load_project
from config.errors import ConfigErrors
from config.messages import text
from publish.pages.common import STATIC_DIR, assert_offline

REPO = Path(__file__).resolve().parent.parent
TO_LONLAT = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
GEOD = Geod(ellps="GRS80")
SECRETS = ("内部メモ", "内部担当者")  # values of internal fields in the master


def lonlat(e: float, n: float) -> tuple[float, float]:
    return TO_LONLAT.transform(e, n)


def rgb(hexcolor: str) -> str:
    h = hexcolor.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))


def page_config(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="gm-config">(.*?)</script>', html, re.S)
    assert m, "no embedded configuration"
    return json.loads(m.group(1))


# ---------------------------------------------------------------------------------------------
# Configuration checks: every problem named with its file and fix, all at once


def test_map_declarations_are_checked(tmp_path: Path) -> None:
    specs = dict(SPECS)
    # a public layer with no map block, one naming an undeclared page, an internal popup field,
    # an unknown field, colours from a field without a code list, an unknown emphasis code
    specs["shobosho"] = specs["shobosho"].split("\nmap:")[0]
    specs["hinanjo"] = specs["hinanjo"].replace("pages: [bosai]", "pages: [bosai, gakku]")
    specs["kanro_josui"] = specs["kanro_josui"].replace("popup: [kanro_no, kei_mm]",
                                                        "popup: [kanro_no, kei_mm, suii]")
    specs["kanro_gesui"] = specs["kanro_gesui"].replace(
        "popup: [kanro_no, haijo, kei_mm, zairyo]", "popup: [kanro_no, shori]").replace(
        "color_by: haijo", "color_by: zairyo")
    specs["naisui"] = specs["naisui"].replace(
        "hazard: {kind: inland_flood, rank_field: shinsui_rank}",
        "hazard: {kind: inland_flood, rank_field: shinsui_rank, emphasis: {'9': '#ff0000'}}")
    root = write_variant(tmp_path, specs=specs)
    with pytest.raises(ConfigErrors) as e:
        load_project(root)
    msgs = [str(x) for x in e.value.errors]
    f = {lid: str(root / "layers" / f"{lid}.yml") for lid in specs}
    want = [
        text("mapcfg_no_page", file=f["shobosho"], first="kanro"),
        text("mapcfg_unknown_page", file=f["hinanjo"], page="gakku",
             known="kanro, bosai, shisetsu"),
        text("mapcfg_field_unknown", file=f["kanro_josui"], key="popup", field="suii",
             known="kanro_no, kei_mm"),
        text("mapcfg_field_internal", file=f["kanro_gesui"], key="popup", field="shori",
             visibility="internal"),
        text("mapcfg_no_codelist", file=f["kanro_gesui"], key="color_by", field="zairyo"),
        text("mapcfg_unknown_code", file=f["naisui"], key="hazard.emphasis", code="9",
             codelist="naisui_rank", known="1, 2, 3"),
        text("mapcfg_page_empty", page="shisetsu"),
    ]
    assert sorted(msgs) == sorted(want)
    assert "map: {pages: [kanro]}" in want[0] and "map: {pages: []}" in want[0]


def test_page_declarations_are_checked(tmp_path: Path) -> None:
    """A page twice, consent asked without terms, two parcel layers on one page."""
    from map_variant import PROJECT_YML

    yml = PROJECT_YML.replace("  terms:\n    paragraphs:", "  notes:\n    paragraphs:")
    yml = yml.split("  notes:")[0] + "  pages:" + yml.split("  pages:")[1]
    yml += """    - id: bosai
      title: {ja: 二つ目, en: Second}
"""
    specs = dict(SPECS)
    specs["hikki2"] = specs["hikki"].replace("id: hikki", "id: hikki2")
    root = write_variant(tmp_path, specs=specs, project_yml=yml)
    with pytest.raises(ConfigErrors) as e:
        load_project(root)
    assert sorted(str(x) for x in e.value.errors) == sorted([
        text("mapcfg_page_twice", page="bosai"),
        text("mapcfg_terms_missing", page="kanro"),
        text("mapcfg_two_parcels", page="kanro", layers="hikki, hikki2"),
    ])


def test_a_layer_may_stay_off_the_maps(tmp_path: Path) -> None:
    """``pages: []`` keeps a public layer off every page; a page with no layer left is named."""
    specs = dict(SPECS)
    specs["shobosho"] = specs["shobosho"].replace("pages: [shisetsu]", "pages: []")
    root = write_variant(tmp_path, specs=specs)
    with pytest.raises(Exception) as e:
        load_project(root)
    assert str(e.value) == text("mapcfg_page_empty", page="shisetsu")
    yml = (root / "config" / "project.yml").read_text(encoding="utf-8")
    start = yml.index("    - id: shisetsu")
    (root / "config" / "project.yml").write_text(yml[:start], encoding="utf-8")
    project = load_project(root)
    assert [p.id for p in project.config.publish.pages] == ["kanro", "bosai"]
    assert project.specs["shobosho"].map.pages == []


# ---------------------------------------------------------------------------------------------
# The published town


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    return build_variant(tmp_path_factory.mktemp("town"))


def test_every_declared_page_is_built_from_the_roles(town: tuple[Any, Any]) -> None:
    project, res = town
    site = res.path / "site"
    index = json.loads((site / "maps.json").read_text(encoding="utf-8"))
    assert index == [{"file": f"{p.id}.html", "title": {"ja": p.title.ja, "en": p.title.en}}
                     for p in project.config.publish.pages]
    cfgs = {}
    for p in project.config.publish.pages:
        html = (site / "maps" / f"{p.id}.html").read_text(encoding="utf-8")
        assert_offline(html)
        for script in re.findall(r'src="(/static/[^"?]+)', html):
            assert (STATIC_DIR / script[len("/static/"):]).is_file(), script
        cfgs[p.id] = page_config(html)
    assert [lay["id"] for lay in cfgs["kanro"]["layers"]] == ["hikki", "kanro_josui",
                                                            "kanro_gesui"]
    assert [lay["id"] for lay in cfgs["bosai"]["layers"]] == ["naisui", "hinanjo"]
    assert [lay["id"] for lay in cfgs["shisetsu"]["layers"]] == ["shobosho"]
    # behaviours follow the roles: search + sheet, risk card, neither
    assert cfgs["kanro"]["parcel"]["layer"] == "hikki"
    assert cfgs["kanro"]["parcel"]["oaza"] == sorted(OAZA)  # no 大字コード: by name
    assert cfgs["kanro"]["sheet"]["url"] == "/api/processes/pipe-sheet/execution"
    assert cfgs["kanro"]["terms"]["version"] == "7" and cfgs["kanro"]["dataUrl"] is None
    assert cfgs["bosai"]["hazard"]["kinds"]["inland_flood"]["title"] == {
        "ja": "内水氾濫", "en": "Inland flooding"}
    assert cfgs["bosai"]["parcel"] is None and cfgs["bosai"]["sheet"] is None
    assert cfgs["shisetsu"]["hazard"] is None and cfgs["shisetsu"]["parcel"] is None
    assert cfgs["shisetsu"]["terms"] is None
    for lay in cfgs["shisetsu"]["layers"] + cfgs["bosai"]["layers"]:
        # drawn from the page's tiles; shelters are markers from the data file
        assert lay["date"] == DATE
        assert lay["source"] == ("data" if lay["role"] == "shelter" else "tiles")
    assert cfgs["bosai"]["dataUrl"].startswith("bosai.json?v=")
    # the start view: the town's boundary (read and reprojected at build time)
    w, s = lonlat(E0 - 400, N0 - 400)
    e, n = lonlat(E0 + 700, N0 + 600)
    assert cfgs["shisetsu"]["view"]["bounds"] == pytest.approx([w, s, e, n], abs=2e-5)
    # nothing internal anywhere in the site; the pages name no other city
    for path in site.rglob("*"):
        if path.suffix == ".pmtiles":  # binary: read back through GDAL, every layer, every value
            for lid, _ in pyogrio.list_layers(path):
                df = pyogrio.read_dataframe(path, layer=lid, read_geometry=False,
                                            ZOOM_LEVEL="15")
                body = df.to_csv()
                assert not [x for x in SECRETS if x in body], (path, lid)
        elif path.is_file():
            body = readable(path.name, path.read_bytes()).decode("utf-8")
            assert not [x for x in SECRETS if x in body], path
            assert "魚津" not in body and "Uozu" not in body, path


# ---------------------------------------------------------------------------------------------
# In Chromium


@pytest.fixture(scope="module")
def base(town: tuple[Any, Any]) -> Iterator[str]:
    with serve_maps(town[1].path / "site" / "maps") as url:
        yield url




def open_page(browser: Any, url: str) -> Any:
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/])"), lambda r: r.abort())
    page.goto(url)
    page.wait_for_function("window.GisMap && GisMap.ready === true")
    page.evaluate(DRAWN_ALL)
    return page


def close(page: Any) -> None:
    errors = page.errors
    page.context.close()
    assert errors == [], errors


def click_at(page: Any, lat: float, lon: float, zoom: int) -> None:
    """Centre the map on (lat, lon) and click that pixel."""
    page.evaluate(f"void GisMap.app.map.setView([{lat}, {lon}], {zoom}, {{animate: false}})")
    page.evaluate(DRAWN_ALL)  # what a tap lists comes from the tiles of the view
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    x, y = page.evaluate(f"""(() => {{
        const m = GisMap.app.map, p = m.latLngToContainerPoint([{lat}, {lon}]);
        const r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }})()""")
    page.mouse.click(x, y)


def test_third_page_renders_legend_popups_and_labels(browser: Any, base: str, town: Any,
                                                     artifacts: Path) -> None:
    project = town[0]
    codes = project.codelists["shobo_shubetsu"].codes
    stations = frames()["shobosho"]
    page = open_page(browser, f"{base}/maps/shisetsu.html")
    assert set(page.evaluate(DRAWN, "shobosho")) == set(stations["shobo_id"])
    assert len(stations) == 3
    assert page.locator("#hz-card").count() == 0 and page.locator(".pp-search").count() == 0
    assert page.locator(".leaflet-control-layers-overlays [data-layer=shobosho]").count() == 1
    # labels from the spec (names), at the spec's labels.min_zoom: placed by the vector layer
    lons, lats = zip(*(lonlat(g.x, g.y) for g in stations.geometry), strict=True)
    page.evaluate(f"void GisMap.app.map.fitBounds([[{min(lats)}, {min(lons)}], [{max(lats)}, "
                  f"{max(lons)}]], {{maxZoom: 15, animate: false}})")
    assert page.evaluate("GisMap.app.map.getZoom()") == 15  # labels.min_zoom of the spec
    page.evaluate(DRAWN_ALL)
    placed = page.evaluate("""() => { const l = GisMap.app.vt.labelers.labelers.get(15);
      return l ? l.index.tree.all().length : 0; }""")
    assert placed >= 3, "the names are placed on the map at the labels' zoom"
    texts = page.evaluate("""() => { const out = []; const lay = GisMap.app.layers.shobosho;
      GisMap.app.vt.labelRules.forEach(r => { if (r.dataLayer === 'shobosho') {
        GisMap.app.vt.views.forEach(v => v.tileCache.cache.forEach(e =>
          (e.data.get('shobosho') || []).forEach(f => out.push(r.symbolizer.text(f.props))))); }});
      return [...new Set(out)]; }""")
    assert sorted(texts) == sorted(stations["meisho"])
    # legend: the code-list colours of the codes present (no 分署 in the data)
    page.click("#gm-legend-btn")
    rows = page.locator("#gm-legend [data-legend=shobosho] li[data-code]")
    got = {}
    for i in range(rows.count()):
        sw = rows.nth(i).locator(".gm-swatch")
        got[rows.nth(i).get_attribute("data-code")] = (
            sw.get_attribute("data-color"), sw.evaluate("e => getComputedStyle(e).backgroundColor"),
            rows.nth(i).inner_text().strip())
    assert got == {c: (codes[c].color, rgb(codes[c].color), codes[c].ja)
                   for c in ("honsho", "shussho")}
    assert f"{DATE}時点" in page.locator("#gm-sources").inner_text()
    assert project.specs["shobosho"].attribution.ja in page.locator("#gm-sources").inner_text()
    page.screenshot(path=str(artifacts / "town_facilities_legend.png"))
    page.click("#gm-legend-close")
    # a popup with the spec's titles and the code list's label
    st = stations[stations.shubetsu == "shussho"].iloc[0]
    lon, lat = lonlat(st.geometry.x, st.geometry.y)
    click_at(page, lat, lon, 16)
    popup = page.locator(f"#gm-picks .gm-detail[data-layer=shobosho][data-id='{st.shobo_id}']")
    popup.wait_for()
    cells = dict(zip(popup.locator("th").all_inner_texts(),
                     popup.locator("td").all_inner_texts(), strict=True))
    assert cells == {"名称": st.meisho, "種別": f"{codes['shussho'].ja} (shussho)",
                     "電話": st.denwa}
    page.screenshot(path=str(artifacts / "town_facilities_popup.png"))
    # English: titles and labels from the same spec and code list
    page.select_option("#gm-lang", "en")  # the switch: ja, en, やさしい日本語
    click_at(page, lat, lon, 16)
    popup.wait_for()
    assert popup.locator("th").all_inner_texts() == ["Name", "Type", "Phone"]
    assert popup.locator("td").nth(1).inner_text() == f"{codes['shussho'].en} (shussho)"
    close(page)


def test_inland_flood_in_the_risk_card(browser: Any, base: str, town: Any,
                                       artifacts: Path) -> None:
    project = town[0]
    ranks = project.codelists["naisui_rank"].codes
    shelters = frames()["hinanjo"]
    page = open_page(browser, f"{base}/maps/bosai.html")
    assert len(page.evaluate(DRAWN, "naisui")) == 3

    def nearest(flag: str, lon: float, lat: float) -> list[tuple[str, float]]:
        sh = shelters[shelters[flag]]
        out = []
        for _, s in sh.iterrows():
            slon, slat = lonlat(s.geometry.x, s.geometry.y)
            out.append((s.meisho, GEOD.inv(lon, lat, slon, slat)[2]))
        return sorted(out, key=lambda t: t[1])

    def card_shelters(flag: str) -> list[tuple[str, int]]:
        items = page.locator(f"#hz-card section[data-flag={flag}] li")
        return [(items.nth(i).locator(".hz-sh-name").inner_text(),
                 int(re.sub(r"\D", "", items.nth(i).locator(".hz-sh-dist").inner_text())))
                for i in range(items.count())]

    # in rank 2 (Z2) and not in rank 3 (Z3)
    lon, lat = lonlat(E0 + 50, N0 + 50)
    click_at(page, lat, lon, 17)
    page.wait_for_selector("#hz-card[data-state=result]")
    card = page.locator("#hz-card")
    risk = card.locator("[data-hazard=inland_flood][data-layer=naisui]")
    assert risk.get_attribute("data-rank") == "2"
    assert risk.locator("dt").inner_text() == "内水氾濫"
    line = risk.locator(".hz-line").inner_text()
    assert ranks["2"].ja in line and "0.2〜0.5 m" in line
    chip = risk.locator(".hz-chip")
    assert chip.inner_text() == "2"
    assert chip.evaluate("e => getComputedStyle(e).backgroundColor") == rgb(ranks["2"].color)
    clat, clon = page.evaluate("[GisMap.hazard.lastPoint().lat, GisMap.hazard.lastPoint().lng]")
    want = nearest("f_naisui", clon, clat)[:3]
    got = card_shelters("f_naisui")
    assert [n for n, _ in got] == [n for n, _ in want]
    for (_, shown), (_, metres) in zip(got, want, strict=True):
        assert abs(shown - metres) <= 1.0
    assert card.locator("section[data-flag=f_jishin]").count() == 0
    page.screenshot(path=str(artifacts / "town_inland_flood_card.png"))
    # outside every zone: the default kinds' shelters (earthquake)
    lon, lat = lonlat(E0 + 500, N0 + 500)
    click_at(page, lat, lon, 17)
    page.wait_for_function("document.querySelector('#hz-card [data-hazard]')"
                           ".getAttribute('data-rank') === '0'")
    assert "入っていません" in card.inner_text()
    clat, clon = page.evaluate("[GisMap.hazard.lastPoint().lat, GisMap.hazard.lastPoint().lng]")
    assert [n for n, _ in card_shelters("f_jishin")] == [n for n, _ in nearest(
        "f_jishin", clon, clat)][:3]
    assert card.locator("section[data-flag=f_naisui]").count() == 0
    # the legend shows the rank code list: every rank, its colour
    page.click("#gm-legend-btn")
    rows = page.locator("#gm-legend [data-legend=naisui] li[data-code]")
    assert {rows.nth(i).get_attribute("data-code"): rows.nth(i).locator(".gm-swatch")
            .get_attribute("data-color") for i in range(rows.count())} == {
        c: e.color for c, e in ranks.items()}
    close(page)


# ---------------------------------------------------------------------------------------------
# Engine code names no city


def test_pages_name_no_city() -> None:
    """publish/pages, the page scripts and templates: no first-city literal, zone or CRS code."""
    pattern = re.compile(r"魚津|Uozu|uozu_|162043|EPSG:6675|第VII系")
    roots = [REPO / "publish" / "pages", REPO / "publish" / "templates",
             *(p for p in (REPO / "publish" / "static").iterdir() if p.name != "vendor")]
    hits = []
    for root in roots:
        for path in ([root] if root.is_file() else sorted(root.rglob("*"))):
            if path.is_file() and path.suffix in (".py", ".js", ".css", ".html"):
                for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if pattern.search(line):
                        hits.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert hits == []


def test_codelists_of_the_town_are_its_own() -> None:
    """The fixture really differs from the first city (ids, zone): the tests above mean it."""
    first = load_project(REPO)
    assert not set(SPECS) & set(first.specs)
    assert not set(CODELISTS) & set(first.codelists)
    assert first.config.target_crs != CRS
