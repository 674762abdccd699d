"""The pipe map in a real headless Chromium against the real server (gunicorn + pygeoapi).

Every request that is not to 127.0.0.1 is aborted (so no basemap tile ever loads): the page must
still draw the network, search 地番 given in a variant spelling, highlight the parcel and show
popups whose values match the master. Nothing internal may reach the page: the master is full
of ``CANARY-...`` values (see ``test_pipesheet.build_canary_project``). Screenshots go to
``tests/artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio
import pytest
import requests
from test_pipesheet import build_canary_project, canary_hits, fullwidth, pick_parcel

from config import Project
from etl.normalize import apply_normalizer
from publish.pages.common import assert_offline
from publish.pages.page import build_page
from publish.server.app import ServerProcess, free_port

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/lib/chromium/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
TERMS = "3"
PAGE = "pipe"  # publish.pages of config/project.yml: the page with the parcel and pipe roles
PAGE_NAME = f"{PAGE}.html"
browser_only = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")


def Server(project: Project, port: int) -> ServerProcess:
    """``python -m publish.server.app`` (gunicorn, 2 sync workers) on a free loopback port."""
    return ServerProcess(project.root, port, public_dir=project.public_dir)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    port = free_port()
    project, res = build_canary_project(tmp_path_factory.mktemp("pipemap"),
                                        base_url=f"http://127.0.0.1:{port}", terms=TERMS)
    server = Server(project, port)
    try:
        yield {"project": project, "res": res, "server": server, "base": server.base,
               "url": f"{server.base}/maps/{PAGE_NAME}", "parcel": pick_parcel(res.store)}
    finally:
        server.stop()


def page_config(html: str) -> dict[str, Any]:
    """The configuration the page embeds (small: no features)."""
    return json.loads(re.search(r'id="gm-config">(.*?)</script>', html, re.S)[1])


# ---------------------------------------------------------------------------------------------
# Without a browser
# ---------------------------------------------------------------------------------------------

def test_page_embeds_no_network_and_no_internal_value(env: dict[str, Any]) -> None:
    res = env["res"]
    page = res.path / "site" / "maps" / PAGE_NAME
    html = page.read_text(encoding="utf-8")
    assert_offline(html)
    index = json.loads((res.path / "site" / "maps.json").read_text(encoding="utf-8"))
    assert {"file": PAGE_NAME, "title": {"ja": "管路図（上下水道・地番）",
                                         "en": "Pipe map (water, sewer, parcels)"}} in index
    assert len(html) < 60_000, "the page must load features by view, not embed them"
    assert canary_hits(html) == []
    cfg = page_config(html)
    assert cfg["api"] == "/api" and cfg["termsVersion"] == TERMS == cfg["terms"]["version"]
    assert cfg["parcel"]["layer"] == "parcel" and env["parcel"]["oaza"] in cfg["parcel"]["oaza"]
    assert cfg["sheet"]["url"] == "/api/processes/pipe-sheet/execution"
    assert cfg["dataUrl"] is None, "networks and roads load by view: nothing embedded"
    fields = {lay["id"]: [f["name"] for f in lay["fields"]] for lay in cfg["layers"]}
    # popups show public fields only: water cover depth is internal in the spec
    assert "cover_m" not in fields["water_pipe"] and "cover_up_m" in fields["sewer_pipe"]
    assert not any("treatment_district" in v or "status" in v for v in fields.values())
    # water pipe classes withheld by the public filter never reach the legend
    assert set(cfg["present"]["water_pipe"]["pipe_class"]) <= {
        "distribution_main", "distribution_branch", "service"}


def test_build_is_fast_and_standalone(env: dict[str, Any], tmp_path: Path) -> None:
    t0 = time.perf_counter()
    out = build_page(env["project"], PAGE, env["res"].store, tmp_path, api_base="/api",
                     data_dates={"sewer_pipe": "2025-03-31"}, sheet_url=None)
    assert time.perf_counter() - t0 < 5
    html = out.read_text(encoding="utf-8")
    assert '"sheet":null' in html and "2025-03-31" in html


# ---------------------------------------------------------------------------------------------
# In Chromium
# ---------------------------------------------------------------------------------------------

def _expected_fy(raw: Any, fy: Any, qual: Any) -> str:
    """The popup's 布設年度: 和暦 as exported (NFKC) and 西暦, e.g. "S55 (1980)"."""
    import unicodedata

    r = unicodedata.normalize("NFKC", str(raw)).strip() if raw is not None else None
    if fy is None or pd.isna(fy):
        return f"{r} (不明" if r else "—"
    y = str(int(fy))
    y = {"approx": f"c. {y}", "before": f"–{y}", "after": f"{y}–"}.get(qual, y)
    return f"{r} ({y})" if r else y


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _route_offline(context: Any, env: dict[str, Any], blocked: list[str]) -> None:
    """Abort everything not on 127.0.0.1; serve pipe-sheet POSTs in-process if the server
    does not route OGC API - Processes yet (see docs/pipe-map.md)."""
    from publish.server.process_pipesheet import PipeSheetProcessor

    probe = requests.get(env["base"] + "/api/processes/pipe-sheet?f=json", timeout=10)
    proc = None if probe.status_code == 200 else PipeSheetProcessor({
        "name": "pipe-sheet", "store": str(env["res"].store),
        "project_root": str(env["project"].root), "map_url": env["url"]})

    def handle(route: Any) -> None:
        url = route.request.url
        if not url.startswith("http://127.0.0.1"):
            blocked.append(url)
            route.abort()
        elif proc is not None and url.endswith("/processes/pipe-sheet/execution"):
            body = json.loads(route.request.post_data or "{}")
            mime, data = proc.execute(body.get("inputs", {}))
            route.fulfill(status=200, content_type=mime, body=data)
        else:
            route.continue_()

    context.route("**/*", handle)


def _wait_loaded(page: Any) -> None:
    page.wait_for_function(
        "() => { const m = document.querySelector('.gm-map');"
        " return m && m.dataset.loading === '0' && !GisMap.app.queue.length; }",
        timeout=30_000)


@browser_only
def test_pipe_map_in_chromium(env: dict[str, Any], browser: Any, artifacts: Path) -> None:
    store, parcel = env["res"].store, env["parcel"]
    blocked: list[str] = []
    requested: list[str] = []
    bodies: list[str] = []
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="ja-JP",
                                  accept_downloads=True)
    _route_offline(context, env, blocked)
    page = context.new_page()
    page.on("request", lambda r: requested.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))

    def keep_body(r: Any) -> None:
        if "/api/" in r.url and r.request.method == "GET" and r.ok:
            with contextlib.suppress(Exception):  # a response the page aborted meanwhile
                bodies.append(r.text())

    page.on("response", keep_body)

    # 1. terms of use: shown, accepted, remembered on reload, shown again for a new version
    key = page_config(requests.get(env["url"], timeout=10).text)["terms"]["storageKey"]
    assert key == f"gis-{env['project'].config.city_code}-{PAGE}-terms"
    page.goto(env["url"])
    page.wait_for_selector("#gm-terms")
    assert "参考図" in page.inner_text("#gm-terms") and "工事" in page.inner_text("#gm-terms")
    page.screenshot(path=str(artifacts / "pipe_map_terms.png"))
    assert page.evaluate("document.querySelector('.gm-map').dataset.loaded_sewer_pipe"
                         ) is None, "nothing may load before consent"
    page.click("#gm-agree")
    _wait_loaded(page)
    assert page.evaluate(f"localStorage.getItem('{key}')") == TERMS
    page.reload()
    page.wait_for_function("document.body.classList.contains('gm-consented')")
    assert page.locator("#gm-terms").count() == 0
    page.evaluate(f"localStorage.setItem('{key}', 'old')")
    page.reload()
    page.wait_for_selector("#gm-terms")
    page.click("#gm-agree")
    _wait_loaded(page)

    # 2. the network is drawn although every tile request failed
    assert any("cyberjapandata.gsi.go.jp" in u for u in blocked), "tiles were not even tried"
    loaded = page.evaluate("Object.assign({}, document.querySelector('.gm-map').dataset)")
    assert int(loaded.get("loaded_sewer_pipe", 0)) > 0 and int(loaded.get("loaded_parcel", 0)) > 0
    page.screenshot(path=str(artifacts / "pipe_map_view.png"))

    # 2b. below zoom 16 only a hint; requests for a view left at once are aborted; a view
    #     with more features than the page will draw asks to zoom in instead of loading
    app = "GisMap.app"
    page.evaluate(f"void {app}.map.setZoom(14, {{animate: false}})")
    assert "ズーム16以上" in page.inner_text("#gm-status")
    lat, lon = float(parcel["geometry"].centroid.y), float(parcel["geometry"].centroid.x)
    before = page.evaluate(f"{app}.stats.aborted")
    page.evaluate(f"""() => {{ const m = {app}.map;
      m.setView([{lat}, {lon}], 17, {{animate: false}});
      m.setView([{lat + 0.03}, {lon + 0.03}], 17, {{animate: false}}); }}""")
    assert page.evaluate(f"{app}.stats.aborted") > before
    _wait_loaded(page)
    page.evaluate(f"{app}.cfg.maxFeatures = 30; void {app}.map.setView([{lat}, {lon}], 16, "
                  "{animate: false})")
    _wait_loaded(page)
    assert "多すぎ" in page.inner_text("#gm-status")
    page.evaluate(f"{app}.cfg.maxFeatures = 8000; {app}.refresh()")
    _wait_loaded(page)
    assert "多すぎ" not in (page.inner_text("#gm-status") or "")

    # 3. the JS 地番 normalizer agrees with the ETL's
    variants = ["123-4", "１２３－４", "123番4", "123の4", "123番地4", "123番地", "１２３",
                "123ー4", " 12 3 - 4 ", "0123-04", "甲123番4", "123-4-5", "地区外", "abc"]
    js = page.evaluate("vs => vs.map(v => GisMap.normalizeChiban(v))", variants)
    py = apply_normalizer("chiban", pd.Series(variants))[""].tolist()
    assert js == [None if v is pd.NA else v for v in py]

    # 4. 地番 search in a variant spelling: zooms to and highlights the parcel
    page.select_option("#pp-oaza", parcel["oaza"])
    page.fill("#pp-chiban", fullwidth(parcel["chiban"]))
    page.click("#pp-search-go")
    page.wait_for_function("document.querySelector('.gm-map').dataset.selected")
    _wait_loaded(page)
    sel = page.evaluate("document.querySelector('.gm-map').dataset.selected")
    assert sel == parcel["fid"]
    assert parcel["chiban"] in page.inner_text("#pp-search-msg")
    assert page.locator(".leaflet-gm-highlight-pane path").count() >= 1
    assert page.evaluate("GisMap.app.map.getZoom()") >= 18
    assert page.locator(".gm-label-polygon").count() > 0, "地番 labels at close zoom"
    assert f"chiban={parcel['chiban']}" in page.evaluate("decodeURIComponent(location.hash)")
    page.wait_for_selector(".gm-popup[data-layer='parcel']")
    page.wait_for_timeout(400)  # popup fade-in and auto-pan
    page.screenshot(path=str(artifacts / "pipe_map_search.png"))

    # 5. the pipe sheet from the parcel popup (a PDF download)
    with page.expect_download(timeout=60_000) as dl:
        page.click(".gm-popup .pp-sheet-btn[data-scale='500'][data-paper='A4']")
    pdf = Path(dl.value.path())
    assert pdf.read_bytes()[:5] == b"%PDF-"
    from pypdf import PdfReader

    assert parcel["chiban"] in PdfReader(pdf).pages[0].extract_text()

    # 6. click a sewer pipe: popup values = public store = master
    page.evaluate("document.querySelector('.leaflet-popup-close-button').click()")
    # a pipe whose click point is the map canvas (not under the search box) and no other pipe
    # passes within a finger's reach of it (parallel sewers share streets)
    pid, xy = page.evaluate("""() => {
      const app = GisMap.app, m = app.map, r = m.getContainer().getBoundingClientRect();
      const recs = [...app.layers.sewer_pipe.features.values()];
      for (const [id, rec] of app.layers.sewer_pipe.features) {
        const ll = rec.layer.getLatLngs();
        if (ll.length !== 2) { continue; }
        const a = m.latLngToContainerPoint(ll[0]), b = m.latLngToContainerPoint(ll[1]);
        if (a.distanceTo(b) < 60) { continue; }
        const p = a.add(b.subtract(a).multiplyBy(0.35));
        const x = r.left + p.x, y = r.top + p.y;
        const el = document.elementFromPoint(x, y);
        const near = recs.some(o => o !== rec && o.layer.getLatLngs().some((q, i, all) => i > 0
          && L.LineUtil.pointToSegmentDistance(p, m.latLngToContainerPoint(all[i - 1]),
                                               m.latLngToContainerPoint(q)) < 14));
        if (el && el.tagName === 'CANVAS' && !near) { return [id, [x, y]]; }
      }
      return [null, null];
    }""")
    assert pid, "no clickable sewer pipe in view"
    page.mouse.click(*xy)
    page.wait_for_selector(f".gm-popup[data-layer='sewer_pipe'][data-id='{pid}']")
    cells = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
      '.gm-popup tr[data-field]')].map(tr => [tr.dataset.field,
                                              tr.querySelector('td').innerText]))""")
    page.wait_for_timeout(400)
    page.screenshot(path=str(artifacts / "pipe_map_popup.png"))
    pub = pyogrio.read_dataframe(store, layer="sewer_pipe", where=f"fid = '{pid}'").iloc[0]
    master = pyogrio.read_dataframe(env["project"].merged_dir / "master.gpkg",
                                    layer="sewer_pipe", where=f"pipe_id = '{pid}'").iloc[0]
    assert cells["diameter_mm"] == f"{int(master['diameter_mm'])} mm"
    assert int(pub["diameter_mm"]) == int(master["diameter_mm"])
    label = env["project"].codelists["sewer_material"].codes[master["material"]].ja
    assert cells["material"].startswith(label) and f"({master['material']})" in cells["material"]
    assert pub["material_ja"] == label
    assert cells["install_fy"].startswith(_expected_fy(master["install_fy_raw"],
                                                       master["install_fy"],
                                                       master["install_fy_qual"]))
    assert cells["flow_type"].startswith(pub["flow_type_ja"])
    assert cells["up_mh_id"] == master["up_mh_id"]

    # 7. my location: denied, then granted
    page.click("#gm-locate")
    page.wait_for_function("document.getElementById('gm-notice').innerText.includes('許可')",
                           timeout=20_000)
    geo = browser.new_context(viewport={"width": 900, "height": 700},
                              permissions=["geolocation"],
                              geolocation={"latitude": float(parcel["geometry"].centroid.y),
                                           "longitude": float(parcel["geometry"].centroid.x),
                                           "accuracy": 12})
    blocked2: list[str] = []
    _route_offline(geo, env, blocked2)
    p2 = geo.new_page()
    p2.add_init_script(f"localStorage.setItem('{key}', '{TERMS}')")
    p2.goto(env["url"])
    p2.click("#gm-locate")
    p2.wait_for_function("document.getElementById('gm-notice').innerText.includes('現在地')")
    assert "12 m" in p2.inner_text("#gm-notice")
    p2.screenshot(path=str(artifacts / "pipe_map_location.png"))
    geo.close()

    # 8. nothing internal anywhere the page went
    assert errors == []
    html = page.content() + requests.get(env["url"], timeout=10).text
    assert canary_hits(html) == []
    assert canary_hits("\n".join(requested)) == []
    assert len(bodies) > 5 and canary_hits("\n".join(bodies)) == []
    assert not [u for u in requested if u.startswith("http") and "127.0.0.1" not in u
                and "cyberjapandata" not in u and "openstreetmap" not in u]
    context.close()
