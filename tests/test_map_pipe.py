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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio
import pytest
import requests
import shapely
from map_server import DRAWN, DRAWN_ALL
from test_example_city import copy_example
from test_pipesheet import build_canary_project, canary_hits, fullwidth

from config import Project, i18n, load_project
from etl.normalize import apply_normalizer
from etl.pipeline import run_merge
from examples.takamatsu.samples import generate as gen
from publish.build import publish
from publish.build.tiles import write_page_tiles
from publish.pages.common import assert_offline
from publish.pages.page import build_page
from publish.server.app import ServerProcess, free_port

REPO = Path(__file__).resolve().parent.parent
TERMS = "3"
PAGE = "pipe"  # publish.pages of config/project.yml: the page with the parcel and pipe roles
PAGE_NAME = f"{PAGE}.html"
browser_only = pytest.mark.browser  # Chromium is installed by scripts/setup.sh: never skipped


def Server(project: Project, port: int) -> ServerProcess:
    """``python -m publish.server.app`` (gunicorn, 2 sync workers) on a free loopback port."""
    return ServerProcess(project.root, port, public_dir=project.public_dir)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    port = free_port()
    project, res = build_canary_project(tmp_path_factory.mktemp("pipemap"),
                                        base_url=f"http://127.0.0.1:{port}", terms=TERMS)
    yield from _served(project, res, port)


def _served(project: Project, res: Any, port: int) -> Iterator[dict[str, Any]]:
    """A published project served (gunicorn) with its pipe page and a parcel to print."""
    server = Server(project, port)
    try:
        yield {"project": project, "res": res, "server": server, "base": server.base,
               "url": f"{server.base}/maps/{PAGE_NAME}",
               "parcel": _pick_parcel_by_role(project, res.store)}
    finally:
        server.stop()


CITIES = ["uozu", "takamatsu"]  # the two example cities (examples/takamatsu: other layer ids)


def _role_layers(project: Project, role: str) -> list[str]:
    """The public layers of the pipe page with ``role`` (found by role, never by id)."""
    return sorted(lid for lid, s in project.specs.items() if PAGE in s.map.pages
                  and s.visibility == "public" and s.map.role == role)


def _pick_parcel_by_role(project: Project, store: Path) -> dict[str, Any]:
    """A parcel with a branch number ("123-4") touching a pipe, nearest the network's middle."""
    lid = _role_layers(project, "parcel")[0]
    pc = project.specs[lid].map.parcel
    plane = project.config.target_crs
    df = pyogrio.read_dataframe(store, layer=lid)
    df = df[df[pc.chiban_field].str.fullmatch(r"\d+-\d+", na=False)]
    pipes = pd.concat([pyogrio.read_dataframe(store, layer=p, columns=["fid"]).to_crs(plane)
                           for p in _role_layers(project, "pipe")], ignore_index=True)
    near = df.to_crs(plane)
    touching = near[near.geometry.buffer(3).intersects(pipes.geometry.union_all())]
    assert len(touching) > 10, "the sample's parcels are served by pipes"
    d = touching.geometry.centroid.distance(pipes.geometry.union_all().centroid)
    row = df.loc[d.idxmin()]
    return {"fid": row["fid"], "oaza": row[pc.oaza_field], "chiban": row[pc.chiban_field],
            "geometry": row.geometry}


@pytest.fixture(scope="module")
def takamatsu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The second example city (examples/takamatsu) from its sample exports, published and
    served like the first (gunicorn)."""
    project = load_project(copy_example(tmp_path_factory.mktemp("takamatsu") / "proj"))
    gen.generate(project.raw_dir, scale=0.05)
    run_merge(project)
    yield from _served(project, publish(project), free_port())


@pytest.fixture(params=CITIES)
def city(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each example city's pipe page (the Uozu canary project, then Takamatsu)."""
    env = request.getfixturevalue("env" if request.param == "uozu" else "takamatsu")
    return {**env, "pipes": _role_layers(env["project"], "pipe")}


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
    assert len(html) < 60_000, "features come from the tiles, not the page"
    assert canary_hits(html) == []
    cfg = page_config(html)
    assert cfg["api"] == "/api" and cfg["termsVersion"] == TERMS == cfg["terms"]["version"]
    assert cfg["parcel"]["layer"] == "parcel" and env["parcel"]["oaza"] in cfg["parcel"]["oaza"]
    assert cfg["sheet"]["url"] == "/api/processes/pipe-sheet/execution"
    assert cfg["dataUrl"] is None, "networks and roads are drawn from tiles: nothing embedded"
    assert re.fullmatch(r"tiles/pipe\.[0-9a-f]{10}\.pmtiles", cfg["tiles"]["url"])
    assert "user-scalable" not in html and '<html lang="ja">' in html
    fields = {lay["id"]: [f["name"] for f in lay["fields"]] for lay in cfg["layers"]}
    # popups show public fields only (water cover depth is public by the city's policy; the
    # treatment district and the pipe status are internal)
    assert "cover_m" in fields["water_pipe"] and "cover_up_m" in fields["sewer_pipe"]
    assert not any("treatment_district" in v or "status" in v for v in fields.values())
    assert "user_name" not in fields["water_service"] and "customer_no" not in fields["water_meter"]
    # water pipe classes withheld by the public filter never reach the legend
    assert set(cfg["present"]["water_pipe"]["pipe_class"]) <= {
        "distribution_main", "distribution_branch", "service"}


def test_build_is_standalone(env: dict[str, Any], tmp_path: Path) -> None:
    write_page_tiles(env["project"], PAGE, env["res"].store, tmp_path)
    out = build_page(env["project"], PAGE, env["res"].store, tmp_path, api_base="/api",
                     data_dates={"sewer_pipe": "2025-03-31"}, sheet_url=None)
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
    page.wait_for_function("window.GisMap && GisMap.ready === true", timeout=90_000)
    page.evaluate(DRAWN_ALL)


def _open(browser: Any, env: dict[str, Any], viewport: dict[str, int], url: str,
          init: str | None = None, **kw: Any) -> tuple[Any, Any, list[str], list[str]]:
    """A context with the terms accepted; (context, page, blocked URLs, page errors)."""
    blocked: list[str] = []
    errors: list[str] = []
    context = browser.new_context(viewport=viewport, locale="ja-JP", **kw)
    context.set_default_timeout(90_000)
    _route_offline(context, env, blocked)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    terms = page_config(requests.get(url.split("#")[0], timeout=10).text)["terms"]
    page.add_init_script(f"localStorage.setItem({json.dumps(terms['storageKey'])}, "
                         f"{json.dumps(terms['version'])})")
    if init:
        page.add_init_script(init)
    page.goto(url)
    _wait_loaded(page)
    return context, page, blocked, errors


#: JS: a point on a pipe of ``layer`` in view that a tap there lists: [fid, x, y] (page px)
PIPE_POINT = """layer => { const app = GisMap.app, m = app.map;
  const r = m.getContainer().getBoundingClientRect(), z = m.getZoom();
  const dz = Math.max(0, Math.min(Math.round(z) - 1, app.cfg.tiles.maxDataZoom));
  let out = null;
  app.vt.views.forEach(v => v.tileCache.cache.forEach((e, key) => {
    const k = key.split(':').map(Number);
    if (out || k[2] !== dz) { return; }
    (e.data.get(layer) || []).forEach(f => {
      if (out || f.props.fid === undefined) { return; }
      // points along each segment (its middle first): a phone shows a short stretch of a pipe
      const ts = [8, 4, 12, 2, 6, 10, 14, 1, 3, 5, 7, 9, 11, 13, 15].map(i => i / 16);
      f.geom.forEach(line => { for (let i = 0; !out && i + 1 < line.length; i++) {
        const a = line[i], b = line[i + 1];
        for (const t of ts) {
          const px = k[0] * 512 + a.x + (b.x - a.x) * t, py = k[1] * 512 + a.y + (b.y - a.y) * t;
          const ll = m.unproject([px, py], dz + 1), p = m.latLngToContainerPoint(ll);
          if (p.x < 60 || p.y < 60 || p.x > r.width - 60 || p.y > r.height - 40) { continue; }
          const hits = app.featuresAt(ll).map(h => h.id);
          if (hits.indexOf(f.props.fid) >= 0) { out = [f.props.fid, r.left + p.x, r.top + p.y]; }
          break;
        }
      } });
    });
  }));
  return out; }"""

#: JS: is every element matching ``sel`` the element on top at its own centre?
ON_TOP = """sel => [...document.querySelectorAll(sel)].map(b => {
  b.scrollIntoView({block: 'nearest'});
  const r = b.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
  const hit = document.elementFromPoint(x, y);
  return [b.textContent.trim(), !!hit && (hit === b || b.contains(hit)), r.width, r.height];
})"""


#: a tap's reach in CSS px (map.js REACH_PX): half of the issue's 44 px tap target
REACH_PX = 22
#: px either side of the reach where a feature may or may not be listed: the detail tiles'
#: grid (1/8 px at display zoom 16, 1/2 px at 18) and float rounding; never more
REACH_SLACK = 1.5
WEB_MERCATOR = "EPSG:3857"
WORLD_M = 2 * 20037508.342789244  # metres around the world in Web Mercator


def _px_m(zoom: float) -> float:
    """Web Mercator metres of one CSS pixel at ``zoom`` (256 px tiles)."""
    return WORLD_M / (256 * 2 ** zoom)


def _mercator(store: Path, layers: list[str]) -> dict[str, Any]:
    return {lid: pyogrio.read_dataframe(store, layer=lid, columns=["fid"]).to_crs(WEB_MERCATOR)
            for lid in layers}


def _within_reach(frames: dict[str, Any], lat: float, lon: float, zoom: float
                  ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """What a tap at (lat, lon) reaches at ``zoom``, computed here (pyproj, shapely) from the
    public store: lines and points within REACH_PX, polygons holding the point. Returns
    (surely listed, maybe listed: within REACH_SLACK of the edge of reach)."""
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", WEB_MERCATOR, always_xy=True).transform(lon, lat)
    pt, px = shapely.Point(x, y), _px_m(zoom)
    sure: set[tuple[str, str]] = set()
    unsure: set[tuple[str, str]] = set()
    for lid, df in frames.items():
        near = df.iloc[df.sindex.query(pt.buffer((REACH_PX + 5) * px))]
        for fid, g in zip(near["fid"], near.geometry, strict=True):
            if g.geom_type in ("Polygon", "MultiPolygon"):
                edge = g.boundary.distance(pt) / px
                if edge <= REACH_SLACK:
                    unsure.add((lid, fid))
                elif g.contains(pt):
                    sure.add((lid, fid))
                continue
            d = g.distance(pt) / px
            if d < REACH_PX - REACH_SLACK:
                sure.add((lid, fid))
            elif d <= REACH_PX + REACH_SLACK:
                unsure.add((lid, fid))
    return sure, unsure


def _pickable(page: Any) -> list[str]:
    return page.evaluate("GisMap.app.order.filter(l => l.pickable()).map(l => l.id)")


def _expected_pickable(project: Project, zoom: int) -> set[str]:
    """The page's layers a tap can list at ``zoom``, from the specs: shown, in zoom range."""
    return {lid for lid, s in project.specs.items() if PAGE in s.map.pages
            and s.visibility == "public" and s.map.show and s.map.role != "hazard"
            and s.map.min_zoom <= zoom <= s.map.max_zoom}


def _listed(page: Any) -> set[tuple[str, str]]:
    """(layer, id) of what the sheet lists after a tap (or the one feature it shows)."""
    return set(map(tuple, page.evaluate("""() => {
      const items = [...document.querySelectorAll('#gm-picks .gm-pick')];
      const one = document.querySelector('#gm-picks .gm-detail');
      const all = items.length ? items : (one ? [one] : []);
      return all.map(e => [e.dataset.layer, e.dataset.id]); }""")))


def _crossing(frames: dict[str, Any], zoom: int) -> tuple[float, float, set[tuple[str, str]]]:
    """Where a sewer and a water pipe cross, with nothing at the edge of a tap's reach there:
    (lat, lon, what a tap there must list)."""
    import geopandas as gpd
    from pyproj import Transformer

    back = Transformer.from_crs(WEB_MERCATOR, "EPSG:4326", always_xy=True)
    sew, wat = frames["sewer_pipe"], frames["water_pipe"]
    pairs = gpd.sjoin(sew, wat, predicate="crosses").sort_values(["fid_left", "fid_right"])
    assert len(pairs) > 10, "the sample's sewers and water mains cross"
    wg = wat.set_index("fid").geometry
    for _, row in pairs.iterrows():
        cross = row.geometry.intersection(wg[row["fid_right"]])
        if cross.geom_type != "Point":
            continue
        lon, lat = back.transform(cross.x, cross.y)
        sure, unsure = _within_reach(frames, lat, lon, zoom)
        layers = {lid for lid, _ in sure}
        if not unsure and {"sewer_pipe", "water_pipe"} <= layers and len(sure) >= 4:
            return lat, lon, sure
    raise AssertionError("no sewer-water crossing clear of the edge of reach")


def _tap_at(page: Any, lat: float, lon: float, zoom: int, *, touch: bool = False) -> None:
    """Centre the map on (lat, lon) at ``zoom``, wait for its tiles, tap that pixel."""
    page.evaluate(f"void GisMap.app.map.setView([{lat}, {lon}], {zoom}, {{animate: false}})")
    page.evaluate(DRAWN_ALL)
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    x, y = page.evaluate(f"""(() => {{ const m = GisMap.app.map;
      const p = m.latLngToContainerPoint([{lat}, {lon}]), r = m.getContainer()
        .getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }})()""")
    if touch:
        page.touchscreen.tap(x, y)
    else:
        page.mouse.click(x, y)


@browser_only
def test_pipe_map_in_chromium(env: dict[str, Any], browser: Any, artifacts: Path) -> None:
    store, parcel = env["res"].store, env["parcel"]
    blocked: list[str] = []
    requested: list[str] = []
    ranges: list[tuple[str, int]] = []
    bodies: list[str] = []
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="ja-JP",
                                  accept_downloads=True)
    context.set_default_timeout(90_000)  # a shared, busy machine: generous, never a timing test
    _route_offline(context, env, blocked)
    page = context.new_page()
    page.on("request", lambda r: requested.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))

    def keep(r: Any) -> None:
        if ".pmtiles" in r.url:
            ranges.append((r.request.headers.get("range", ""), r.status))
        if "/api/" in r.url and r.request.method == "GET" and r.ok:
            with contextlib.suppress(Exception):  # a response the page aborted meanwhile
                bodies.append(r.text())

    page.on("response", keep)

    # 1. terms of use: a named modal dialog, focus kept inside, Esc declines; remembered
    key = page_config(requests.get(env["url"], timeout=10).text)["terms"]["storageKey"]
    assert key == f"gis-{env['project'].config.city_code}-{PAGE}-terms"
    page.goto(env["url"])
    page.wait_for_selector("#gm-terms")
    dialog = page.locator("#gm-terms [role=dialog]")
    assert dialog.get_attribute("aria-modal") == "true"
    assert page.locator("#" + dialog.get_attribute("aria-labelledby")).inner_text().strip()
    assert "参考図" in page.inner_text("#gm-terms") and "工事" in page.inner_text("#gm-terms")
    for _ in range(12):  # Tab never leaves the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("document.querySelector('#gm-terms').contains("
                             "document.activeElement)")
    page.keyboard.press("Escape")
    assert page.locator("#gm-declined").is_visible()
    page.screenshot(path=str(artifacts / "pipe_map_terms.png"))
    assert not [u for u in requested if ".pmtiles" in u], "nothing may load before consent"
    page.click("#gm-agree")
    _wait_loaded(page)
    assert page.evaluate(f"localStorage.getItem('{key}')") == TERMS
    page.reload()
    page.wait_for_function("document.body.classList.contains('gm-consented')")
    assert page.locator("#gm-terms").count() == 0
    _wait_loaded(page)

    # 2. the whole network from the vector tiles (range requests), although the basemap failed
    assert any("cyberjapandata.gsi.go.jp" in u for u in blocked), "tiles were not even tried"
    assert ranges and all(r.startswith("bytes=") and s == 206 for r, s in ranges), ranges
    sewers = pyogrio.read_dataframe(store, layer="sewer_pipe")
    w, s_, e, n = sewers.total_bounds
    page.evaluate(f"void GisMap.app.map.fitBounds([[{s_}, {w}], [{n}, {e}]], {{animate: false}})")
    page.evaluate("void GisMap.app.map.setZoom(13, {animate: false})")
    assert page.evaluate("GisMap.app.map.getZoom()") == 13
    page.evaluate(DRAWN_ALL)
    assert page.evaluate(DRAWN, "sewer_pipe") and page.evaluate(DRAWN, "water_pipe")
    page.screenshot(path=str(artifacts / "pipe_map_city.png"))
    # at street level every pipe in view is drawn, with its public id
    lat, lon = float(parcel["geometry"].centroid.y), float(parcel["geometry"].centroid.x)
    page.evaluate(f"void GisMap.app.map.setView([{lat}, {lon}], 17, {{animate: false}})")
    page.evaluate(DRAWN_ALL)
    b = page.evaluate("(() => { const b = GisMap.app.map.getBounds(); return [b.getWest(), "
                      "b.getSouth(), b.getEast(), b.getNorth()]; })()")
    in_view = set(sewers[sewers.intersects(shapely.box(*b))]["fid"])
    assert in_view and in_view <= set(page.evaluate(DRAWN, "sewer_pipe"))
    page.screenshot(path=str(artifacts / "pipe_map_view.png"))

    # 3. the JS 地番 normalizer agrees with the ETL's
    variants = ["123-4", "１２３－４", "123番4", "123の4", "123番地4", "123番地", "１２３",
                "123ー4", " 12 3 - 4 ", "0123-04", "甲123番4", "123-4-5", "地区外", "abc"]
    js = page.evaluate("vs => vs.map(v => GisMap.normalizeChiban(v))", variants)
    py = apply_normalizer("chiban", pd.Series(variants))[""].tolist()
    assert js == [None if v is pd.NA else v for v in py]

    # 4. 地番 search in a variant spelling: the parcel pinned in the sheet, highlighted
    page.select_option("#pp-oaza", parcel["oaza"])
    page.fill("#pp-chiban", fullwidth(parcel["chiban"]))
    page.click("#pp-search-go")
    page.wait_for_function("document.querySelector('.gm-map').dataset.selected")
    assert page.evaluate("document.querySelector('.gm-map').dataset.selected") == parcel["fid"]
    assert parcel["chiban"] in page.inner_text("#pp-search-msg")
    assert page.locator(".leaflet-gm-highlight-pane path").count() >= 1
    assert page.evaluate("GisMap.app.map.getZoom()") >= 18
    assert f"chiban={parcel['chiban']}" in page.evaluate("decodeURIComponent(location.hash)")
    pinned = page.locator(f"#pp-result .gm-detail[data-id='{parcel['fid']}']")
    pinned.wait_for()

    # 5. the pipes within reach of the parcel: the table = an independent computation
    page.wait_for_selector("#pp-pipes tbody tr")
    pcfg = page_config(requests.get(env["url"], timeout=10).text)["parcel"]
    reach = pcfg["reachM"]
    assert {"water_pipe", "sewer_pipe"} <= set(pcfg["pipes"])
    shown = {(tr.get_attribute("data-layer"), tr.get_attribute("data-id")) for tr in
             page.locator("#pp-pipes tbody tr").all()}
    plane = env["project"].config.target_crs
    geom = pyogrio.read_dataframe(store, layer="parcel", where=f"fid = '{parcel['fid']}'"
                                  ).to_crs(plane).geometry.iloc[0]
    want, unsure = set(), set()
    for lid in pcfg["pipes"]:  # every layer with the pipe role
        assert env["project"].specs[lid].map.role == "pipe"
        df = pyogrio.read_dataframe(store, layer=lid).to_crs(plane)
        d = df.distance(geom)
        want |= {(lid, f) for f in df.loc[d <= reach - 0.3, "fid"]}
        unsure |= {(lid, f) for f in df.loc[(d > reach - 0.3) & (d <= reach + 0.3), "fid"]}
    assert want, "the picked parcel has pipes within reach"
    assert want <= shown <= want | unsure
    page.screenshot(path=str(artifacts / "pipe_map_search.png"))

    # 6. the pipe sheet from the pinned parcel (a PDF download)
    with page.expect_download(timeout=60_000) as dl:
        page.click("#pp-result .pp-sheet-btn[data-scale='500'][data-paper='A4']")
    pdf = Path(dl.value.path())
    assert pdf.read_bytes()[:5] == b"%PDF-"
    from pypdf import PdfReader

    assert parcel["chiban"] in PdfReader(pdf).pages[0].extract_text()

    # 7. tap a sewer pipe: every feature within reach is listed; its details = the master
    page.evaluate("void GisMap.app.map.setZoom(18, {animate: false})")
    page.evaluate(DRAWN_ALL)
    hit = page.evaluate(PIPE_POINT, "sewer_pipe")
    assert hit, "no sewer pipe in view"
    pid, x, y = hit
    lat7, lon7 = page.evaluate(f"""(() => {{ const m = GisMap.app.map, r = m.getContainer()
      .getBoundingClientRect(); const ll = m.containerPointToLatLng([{x} - r.left, {y} - r.top]);
      return [ll.lat, ll.lng]; }})()""")
    pickable = _pickable(page)
    assert set(pickable) == _expected_pickable(env["project"], 18)
    sure, unsure = _within_reach(_mercator(store, pickable), lat7, lon7, 18)
    page.mouse.click(x, y)
    item = page.locator(f"#gm-picks [data-layer='sewer_pipe'][data-id='{pid}']")
    item.wait_for()
    listed = _listed(page)
    assert sure <= listed <= sure | unsure, (sorted(sure ^ listed), sorted(unsure))
    if page.locator("#gm-picks .gm-pick-list").count():
        assert page.inner_text("#gm-pick-title").strip() == i18n.tr("map_pick_title", "ja",
                                                                     n=len(listed))
        item.locator("button").click()
    detail = page.locator(f"#gm-picks .gm-detail[data-layer='sewer_pipe'][data-id='{pid}']")
    detail.wait_for()
    cells = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
      '#gm-picks .gm-detail tr[data-field]')].map(tr => [tr.dataset.field,
                                                       tr.querySelector('td').innerText]))""")
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

    # 8. my location: denied, then granted
    page.click("#gm-locate")
    page.wait_for_function("document.getElementById('gm-notice').innerText.includes('許可')",
                           timeout=20_000)
    geo, p2, _, _ = _open(browser, env, {"width": 900, "height": 700}, env["url"],
                          permissions=["geolocation"],
                          geolocation={"latitude": lat, "longitude": lon, "accuracy": 12})
    p2.click("#gm-locate")
    p2.wait_for_function("document.getElementById('gm-notice').innerText.includes('現在地')")
    assert "12 m" in p2.inner_text("#gm-notice")
    p2.screenshot(path=str(artifacts / "pipe_map_location.png"))
    geo.close()

    # 9. nothing internal anywhere the page went
    assert errors == []
    html = page.content() + requests.get(env["url"], timeout=10).text
    assert canary_hits(html) == []
    assert canary_hits("\n".join(requested)) == []
    assert len(bodies) >= 3 and canary_hits("\n".join(bodies)) == []
    assert not [u for u in requested if u.startswith("http") and "127.0.0.1" not in u
                and "cyberjapandata" not in u and "openstreetmap" not in u]
    context.close()


@browser_only
@pytest.mark.parametrize("viewport", [{"width": 360, "height": 740},
                                      {"width": 390, "height": 844}],
                         ids=["360x740", "390x844"])
def test_phone_pdf_buttons_stay_on_top(city: dict[str, Any], browser: Any, artifacts: Path,
                                       viewport: dict[str, int]) -> None:
    """The QR code's deep link opens the parcel with its PDF buttons visible and uncovered,
    and so they stay after a tap on a pipe; every control is a 44 px target; zoom allowed.
    For both example cities."""
    env = city
    name = env["project"].config.city_code
    parcel = env["parcel"]
    url = f"{env['url']}#oaza={parcel['oaza']}&chiban={parcel['chiban']}"
    context, page, _, errors = _open(browser, env, viewport, url, is_mobile=True,
                                     has_touch=True, device_scale_factor=2)
    try:
        page.wait_for_function("!!document.querySelector('#pp-result .pp-sheet-btn') || "
                               "!!document.querySelector('#pp-search-msg .gm-error')")
    except Exception:
        raise AssertionError(page.evaluate("[location.href, document.getElementById("
                                           "'pp-search-msg').innerText, JSON.stringify("
                                           "GisMap.app.hash)]"), errors) from None
    assert page.locator("#pp-search-msg .gm-error").count() == 0, page.inner_text("#pp-search-msg")
    page.wait_for_selector("#pp-result .pp-sheet-btn")
    page.wait_for_timeout(300)  # the sheet opened: the map settled above it
    top = page.evaluate(ON_TOP, "#pp-result .pp-sheet-btn")
    assert len(top) == 4 and all(ok for _, ok, _, _ in top), top
    assert all(w >= 44 and h >= 44 for _, _, w, h in top), top
    # visible without scrolling the sheet: the first button is in the viewport as it opened
    page.evaluate("document.getElementById('gm-sheet-body').scrollTop = 0")
    r = page.evaluate("(() => { const r = document.querySelector('#pp-result .pp-sheet-btn')"
                      ".getBoundingClientRect(); return [r.top, r.bottom]; })()")
    assert r[0] >= 0 and r[1] <= viewport["height"], r
    page.screenshot(path=str(artifacts / f"pipe_map_deeplink_{name}_{viewport['width']}.png"))
    # the parcel is in the map's visible part (above the sheet), not under it
    inside = page.evaluate("""() => { const m = GisMap.app.map;
      const b = GisMap.parcel.pinned.shape.getBounds();
      return m.getBounds().contains(b.getCenter()); }""")
    assert inside
    # a tap on a pipe: listed in the sheet; the parcel's buttons are still on top where drawn
    page.evaluate(DRAWN_ALL)
    hit = next(filter(None, (page.evaluate(PIPE_POINT, lid) for lid in env["pipes"])), None)
    assert hit, "no pipe in the phone's view"
    pid, x, y = hit
    page.touchscreen.tap(x, y)
    page.locator(f"#gm-picks [data-id='{pid}']").first.wait_for()
    top = page.evaluate(ON_TOP, "#pp-result .pp-sheet-btn")
    assert len(top) == 4 and all(ok for _, ok, _, _ in top), top
    listed = page.evaluate(ON_TOP, "#gm-picks button")
    assert listed and all(ok for _, ok, _, _ in listed), listed
    page.screenshot(path=str(artifacts / f"pipe_map_tap_{name}_{viewport['width']}.png"))
    # tap targets, zoom, width
    small = page.evaluate("""() => [...document.querySelectorAll(
          '.gm-btn, .leaflet-control-zoom a, .leaflet-control-layers-toggle, .gm-pick-btn,'
          + ' .pp-pipe-btn, #pp-oaza, #pp-chiban')]
        .filter(e => e.offsetParent !== null)
        .map(e => [e.id || e.className, e.getBoundingClientRect()])
        .filter(([, r]) => r.width < 44 || r.height < 44)
        .map(([n, r]) => `${n} ${r.width}x${r.height}`)""")
    assert small == []
    meta = page.get_attribute("meta[name=viewport]", "content")
    assert "user-scalable" not in meta and "maximum-scale" not in meta
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert errors == []
    context.close()


@browser_only
def test_keyboard_only(city: dict[str, Any], browser: Any, artifacts: Path) -> None:
    """No mouse, keys only (Tab, Shift+Tab, Enter, Esc): to the map, Enter lists what is at its
    centre, Tab to a pipe, Enter for details, Shift+Tab and Enter back to the list; Shift+Tab
    up into the parcel's pipe table and through it row by row (each row shown on the map), Tab
    down again and on back to the list; the legend opened and closed. For both example cities."""
    env = city
    parcel = env["parcel"]
    url = f"{env['url']}#oaza={parcel['oaza']}&chiban={parcel['chiban']}"
    context, page, _, errors = _open(browser, env, {"width": 1024, "height": 768}, url)
    page.wait_for_selector("#pp-pipes tbody tr")
    page.evaluate("document.activeElement && document.activeElement.blur()")

    def focused() -> str:
        return page.evaluate("""(() => { const e = document.activeElement;
          return e ? (e.id || e.className || e.tagName) + '|' + e.textContent.trim().slice(0, 30)
          : ''; })()""")

    def press_until(key: str, js: str, limit: int) -> list[str]:
        """Press ``key`` until ``js`` holds for the focused element; the focus path."""
        path = []
        for _ in range(limit):
            if page.evaluate(f"(e => !!e && ({js}))(document.activeElement)"):
                return path
            page.keyboard.press(key)
            path.append(focused())
        assert page.evaluate(f"(e => !!e && ({js}))(document.activeElement)"), (key, js, path)
        return path

    # set-up, not navigation: a pipe under the map's centre (the cross Enter answers for)
    hit = next(filter(None, (page.evaluate(PIPE_POINT, lid) for lid in env["pipes"])), None)
    assert hit, "no pipe in view"
    pid, x, y = hit
    page.evaluate(f"""void (() => {{ const m = GisMap.app.map, r = m.getContainer()
      .getBoundingClientRect(); m.panTo(m.containerPointToLatLng([{x} - r.left, {y} - r.top]),
      {{animate: false}}); }})()""")
    page.evaluate(DRAWN_ALL)
    # Tab to the map (the skip link comes first), Enter lists what is at the centre
    press_until("Tab", "e.id === 'gm-map'", 40)
    assert page.evaluate("getComputedStyle(document.activeElement, '::after').content") == '"+"'
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('gm-picks').contains(document.activeElement)")
    in_pid = f"!!e.closest(\"[data-id='{pid}']\")"
    listed = page.locator("#gm-picks .gm-pick").count()
    if listed:  # more than one thing within reach: a list, walked with Tab
        press_until("Tab", in_pid, listed + 1)
        # focus shows: an outline is drawn around the focused item
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Enter")
    detail = page.locator(f"#gm-picks .gm-detail[data-id='{pid}']")
    detail.wait_for()
    page.wait_for_function("document.activeElement.matches('#gm-picks .gm-detail h3')")
    if listed:  # Shift+Tab to the back button, Enter: the list again, focus on the same item
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.id") == "gm-back"
        page.keyboard.press("Enter")
        page.wait_for_function(f"(e => {in_pid})(document.activeElement)")
    code = env["project"].config.city_code
    page.screenshot(path=str(artifacts / f"pipe_map_keyboard_list_{code}.png"))
    # up into the parcel's pipe table (above the list in the sheet): its last row first
    rows = page.locator("#pp-pipes tbody tr")
    n = rows.count()
    assert n >= 1
    ids = [rows.nth(i).get_attribute("data-id") for i in range(n)]
    press_until("Shift+Tab", "e.classList.contains('pp-pipe-btn')", 3 * listed + 5)

    def shown_row() -> tuple[str, str]:
        row = page.evaluate("document.activeElement.closest('tr').dataset.id")
        assert page.evaluate("GisMap.parcel.pipeShape.getLayers().length") == 1
        return row, page.evaluate("GisMap.parcel.pipeShape.getLayers()[0].getLayers()[0]"
                                  ".feature.id")

    up = [shown_row()]
    for _ in range(n - 1):
        page.keyboard.press("Shift+Tab")
        up.append(shown_row())
    assert up == [(i, i) for i in reversed(ids)]  # each row, highlighted as it is reached
    down = [shown_row()]
    for _ in range(n - 1):
        page.keyboard.press("Tab")
        down.append(shown_row())
    assert down == [(i, i) for i in ids]
    # and Tab on: back in the list of the tap
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('gm-picks').contains(document.activeElement)")
    # the legend is a dialog: reached with Shift+Tab, opened with Enter, Esc closes it and
    # focus comes back
    press_until("Shift+Tab", "e.id === 'gm-legend-btn'", 200)
    page.keyboard.press("Enter")
    assert page.locator("#gm-legend").is_visible()
    assert page.evaluate("document.getElementById('gm-legend').contains(document.activeElement)")
    page.keyboard.press("Escape")
    assert not page.locator("#gm-legend").is_visible()
    assert page.evaluate("document.activeElement.id") == "gm-legend-btn"
    assert errors == []
    context.close()


@browser_only
@pytest.mark.parametrize("down", ["503", "no answer"])
def test_api_down_is_said_and_the_map_keeps_working(env: dict[str, Any], browser: Any,
                                                    down: str) -> None:
    """The API behind the front is down (nginx answers docs/nginx/api-down.json with 503, or
    nothing answers): 地番 search and the PDF say so in words; the map stays drawn."""
    parcel = env["parcel"]
    context, page, _, errors = _open(browser, env, {"width": 390, "height": 844}, env["url"])
    body = (REPO / "docs" / "nginx" / "api-down.json").read_text(encoding="utf-8")

    def api(route: Any) -> None:
        if down == "503":
            route.fulfill(status=503, content_type="application/json", body=body)
        else:
            route.abort("connectionrefused")

    page.route("**/api/**", api)
    if page.get_attribute("#gm-sheet-toggle", "aria-expanded") == "false":
        page.click("#gm-sheet-toggle")  # on a phone the sheet opens folded
    page.select_option("#pp-oaza", parcel["oaza"])
    page.fill("#pp-chiban", parcel["chiban"])
    page.click("#pp-search-go")
    page.wait_for_selector("#pp-search-msg .gm-error")
    assert page.inner_text("#pp-search-msg").strip() == i18n.tr("map_api_unavailable", "ja")
    assert page.evaluate("GisMap.ready") is True and errors == []
    context.close()


@browser_only
def test_a_tap_lists_every_feature_within_reach(env: dict[str, Any], browser: Any,
                                                artifacts: Path) -> None:
    """A tap where a sewer crosses a water main lists both and everything else within reach
    (REACH_PX), overlapping lines included: the list = a computation here from the store."""
    context, page, _, errors = _open(browser, env, {"width": 1280, "height": 860}, env["url"])
    page.evaluate("void GisMap.app.map.setZoom(18, {animate: false})")
    pickable = _pickable(page)
    assert set(pickable) == _expected_pickable(env["project"], 18)
    assert {"sewer_pipe", "water_pipe", "parcel"} <= set(pickable)
    frames = _mercator(env["res"].store, pickable)
    lat, lon, want = _crossing(frames, 18)
    _tap_at(page, lat, lon, 18)
    page.wait_for_selector("#gm-picks .gm-pick-list")
    listed = _listed(page)
    assert listed == want, (sorted(want - listed), sorted(listed - want))
    assert page.inner_text("#gm-pick-title").strip() == i18n.tr("map_pick_title", "ja",
                                                                 n=len(want))
    # every item is a button: each one opens its details (the one listed), and back
    for lid, fid in sorted(want):
        page.click(f"#gm-picks .gm-pick[data-layer='{lid}'][data-id='{fid}'] button")
        page.locator(f"#gm-picks .gm-detail[data-layer='{lid}'][data-id='{fid}']").wait_for()
        page.click("#gm-back")
        page.wait_for_selector("#gm-picks .gm-pick-list")
    page.screenshot(path=str(artifacts / "pipe_map_crossing.png"))
    # the same spot one zoom out: the reach is twice as far in metres; still the computation
    page.evaluate("void GisMap.app.map.setZoom(17, {animate: false})")
    frames17 = _mercator(env["res"].store, _pickable(page))
    sure, unsure = _within_reach(frames17, lat, lon, 17)
    _tap_at(page, lat, lon, 17)
    page.wait_for_function(f"document.querySelectorAll('#gm-picks .gm-pick').length >= "
                           f"{len(sure)}")
    listed = _listed(page)
    assert sure <= listed <= sure | unsure, (sorted(sure ^ listed), sorted(unsure))
    assert errors == []
    context.close()


#: JS (init script): remember every text drawn on a canvas (the map's labels are canvas text)
RECORD_TEXT = """(() => { window.__drawn = new Set();
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (t, ...rest) {
    window.__drawn.add(String(t)); return fill.call(this, t, ...rest); }; })()"""

#: JS: labels placed at display zoom ``z`` per data layer (protomaps-leaflet's label index)
PLACED = """z => { const vt = GisMap.app.vt, l = vt.labelers.labelers.get(z), out = {};
  if (!l) { return out; }
  l.index.tree.all().forEach(e => { const r = vt.labelRules[e.indexedLabel.order];
    out[r.dataLayer] = (out[r.dataLayer] || 0) + 1; });
  return out; }"""


def _label_texts(project: Project, store: Path, lid: str) -> set[str]:
    """Every label the spec's template makes from the store's values (ja), computed here."""
    spec = project.specs[lid]
    tpl = spec.map.labels.template.ja
    df = pyogrio.read_dataframe(store, layer=lid, read_geometry=False)

    def one(row: Any) -> str:
        def sub(m: re.Match) -> str:
            key, label, n = m.group(1), m.group(2), m.group(3)
            v = row[key]
            if v is None or (isinstance(v, float) and pd.isna(v)) or v == "":
                return "?"
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if label:
                cl = project.codelists[spec.fields[key].codelist]
                v = cl.codes[str(v)].ja if str(v) in cl.codes else v
            s = str(v)
            return s[:int(n)] if n else s

        return re.sub(r"\{(\w+)(\.label)?(?::\.(\d+))?\}", sub, tpl)

    return {one(r) for _, r in df.iterrows()}


@browser_only
def test_pipe_labels_along_lines_at_high_zoom(env: dict[str, Any], browser: Any,
                                              artifacts: Path) -> None:
    """At zoom 19 the sewer and water lines carry their labels (管径, 管種) as the specs' templates
    say; at 18 they do not (labels.min_zoom); a tap still lists the crossing's pipes."""
    project, store = env["project"], env["res"].store
    pipes = ["sewer_pipe", "water_pipe"]
    assert all(project.specs[lid].map.labels.min_zoom == 19 for lid in pipes)
    want = {lid: _label_texts(project, store, lid) for lid in pipes}
    assert all("φ" in t for ts in want.values() for t in ts) and not want["sewer_pipe"] & \
        want["water_pipe"]
    context, page, _, errors = _open(browser, env, {"width": 1024, "height": 768}, env["url"],
                                     init=RECORD_TEXT)
    frames = _mercator(store, pipes)
    lat, lon = _crossing_point(frames)
    drawn = {}
    for z in (18, 19):
        page.evaluate("window.__drawn.clear()")
        page.evaluate(f"void GisMap.app.map.setView([{lat}, {lon}], {z}, {{animate: false}})")
        page.evaluate(DRAWN_ALL)  # protomaps lays labels out as it renders each tile
        if z == 19:
            page.wait_for_function(f"(p => (p.sewer_pipe || 0) > 0 && (p.water_pipe || 0) > 0)"
                                   f"(({PLACED})(19))")
        drawn[z] = set(page.evaluate("[...window.__drawn]"))
        placed = page.evaluate(PLACED, z)
        if z == 18:
            assert not (drawn[z] & (want["sewer_pipe"] | want["water_pipe"])), drawn[z]
            assert not placed.get("sewer_pipe") and not placed.get("water_pipe"), placed
    page.screenshot(path=str(artifacts / "pipe_map_labels_19.png"))
    placed = page.evaluate(PLACED, 19)
    assert placed.get("sewer_pipe", 0) >= 1 and placed.get("water_pipe", 0) >= 1, placed
    shown = {lid: drawn[19] & want[lid] for lid in pipes}
    assert shown["sewer_pipe"] and shown["water_pipe"], (sorted(drawn[19])[:20], shown)
    # every pipe label drawn is one of the templates' (no 取付管 label below its zoom 20)
    pipe_like = {t for t in drawn[19] if "φ" in t}
    assert pipe_like <= want["sewer_pipe"] | want["water_pipe"], sorted(
        pipe_like - want["sewer_pipe"] - want["water_pipe"])
    assert errors == []
    context.close()


def _crossing_point(frames: dict[str, Any]) -> tuple[float, float]:
    """(lat, lon) of the first crossing of a sewer and a water main (by ids)."""
    import geopandas as gpd
    from pyproj import Transformer

    back = Transformer.from_crs(WEB_MERCATOR, "EPSG:4326", always_xy=True)
    sew, wat = frames["sewer_pipe"], frames["water_pipe"]
    pairs = gpd.sjoin(sew, wat, predicate="crosses").sort_values(["fid_left", "fid_right"])
    wg = wat.set_index("fid").geometry
    for _, row in pairs.iterrows():
        cross = row.geometry.intersection(wg[row["fid_right"]])
        if cross.geom_type == "Point":
            lon, lat = back.transform(cross.x, cross.y)
            return lat, lon
    raise AssertionError("no crossing")


@browser_only
def test_a_busy_sheet_says_when_to_retry(env: dict[str, Any], browser: Any) -> None:
    """The PDF pool is full: the server answers 429 with Retry-After; the sheet says exactly
    when to retry, in a live region (announced), and the button works again."""
    parcel = env["parcel"]
    url = f"{env['url']}#oaza={parcel['oaza']}&chiban={parcel['chiban']}"
    context, page, _, errors = _open(browser, env, {"width": 390, "height": 844}, url)
    page.wait_for_selector("#pp-result .pp-sheet-btn")
    asked: list[str] = []

    def busy(route: Any) -> None:
        asked.append(route.request.method)
        route.fulfill(status=429, headers={"Retry-After": "17"},
                      content_type="application/json",
                      body=json.dumps({"code": "ServerBusy", "description": "busy"}))

    page.route("**/processes/pipe-sheet/execution", busy)
    btn = page.locator("#pp-result .pp-sheet-btn").first
    btn.click()
    page.wait_for_selector("#pp-result .pp-sheet-status .gm-error")
    msg = i18n.tr("map_sheet_busy", "ja", s=17)
    status = page.locator("#pp-result .pp-sheet-status")
    assert status.inner_text().strip() == msg
    assert status.get_attribute("role") == "status"  # a live region: screen readers say it
    assert page.get_by_role("status").filter(has_text=msg).count() == 1
    assert asked == ["POST"]
    page.wait_for_function("!document.querySelector('#pp-result .pp-sheet-btn').disabled")
    assert errors == []
    context.close()
