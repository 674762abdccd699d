"""Accessibility of every public page, pygeoapi's HTML included, for both example cities.

axe-core (vendored from its npm package: publish/static/vendor/axe-core) runs in real headless
Chromium over each page the public server answers with HTML: the landing page, the terms, every
map page (with its terms dialog open, then with the map and a feature's details shown) and the
API's HTML (landing, collections, a collection, its items, one item, conformance, OpenAPI,
processes). Nothing critical or serious may be found. The pages must also work offline: no
request leaves 127.0.0.1 but the basemap's (which is aborted).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from test_example_city import copy_example
from werkzeug.serving import make_server

from config import Project, load_project
from publish.build import publish
from publish.pages.common import STATIC_DIR

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
AXE = STATIC_DIR / "vendor" / "axe-core" / "axe.min.js"
BASEMAP_HOSTS = ("cyberjapandata.gsi.go.jp",)
RUN_AXE = """() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
  .filter(v => v.impact === 'critical' || v.impact === 'serious')
  .map(v => ({id: v.id, impact: v.impact,
              nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"""


def _uozu(root: Path) -> Project:
    from conftest import make_uozu_project

    from etl.pipeline import run_merge

    make_uozu_project(root, scale=0.05)
    project = load_project(root)
    run_merge(project)
    return project


def _takamatsu(root: Path) -> Project:
    from etl.pipeline import run_merge
    from examples.takamatsu.samples import generate as gen

    project = load_project(copy_example(root))
    gen.generate(project.raw_dir, scale=0.05)
    run_merge(project)
    return project


@pytest.fixture(scope="module", params=["uozu", "takamatsu"])
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Project, str]]:
    from publish.server.app import create_app

    build = {"uozu": _uozu, "takamatsu": _takamatsu}[request.param]
    project = build(tmp_path_factory.mktemp(request.param))
    publish(project)
    server = make_server("127.0.0.1", 0, create_app(project), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield project, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()




def _urls(project: Project, base: str) -> list[str]:
    """Every kind of HTML page the public server answers."""
    first = next(s.id for s in project.specs.values() if s.visibility == "public"
                 and s.map.pages)
    store = project.public_dir / "current" / "public.gpkg"
    fid = pyogrio.read_dataframe(store, layer=first, columns=["fid"], read_geometry=False,
                                 max_features=1)["fid"].iloc[0]
    api = f"{base}/api"
    urls = [f"{base}/", f"{base}/terms", f"{api}?f=html", f"{api}/collections?f=html",
            f"{api}/collections/{first}?f=html", f"{api}/collections/{first}/items?f=html",
            f"{api}/collections/{first}/items/{fid}?f=html", f"{api}/conformance?f=html",
            f"{api}/openapi?f=html", f"{api}/processes?f=html"]
    return urls + [f"{base}/maps/{p.id}.html" for p in project.config.publish.pages]


def _check(page: Any, url: str) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


def test_axe_finds_nothing_critical_or_serious(city: tuple[Project, str], browser: Any,
                                               artifacts: Path) -> None:
    project, base = city
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP")
    outside: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith("http://127.0.0.1"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    found: dict[str, Any] = {}
    for url in _urls(project, base):
        page.goto(url)
        page.wait_for_load_state("load")
        if "/maps/" in url:
            page.wait_for_function("window.GisMap && GisMap.app")
            if page.locator("#gm-terms").count():  # the terms dialog, as a first visit sees it
                found[url + " (terms)"] = _check(page, url)
                page.click("#gm-agree")
            page.wait_for_function("GisMap.ready === true")
            page.evaluate("""() => { const app = GisMap.app, c = app.map.getCenter();
              app.tap(c, true); }""")  # the sheet with a list or details, as after a tap
            page.wait_for_timeout(300)
            page.screenshot(path=str(artifacts / f"a11y_{project.config.city_code}_"
                                                  f"{url.rsplit('/', 1)[1]}.png"))
        elif "openapi" in url:
            page.wait_for_selector("#swagger-ui .info", timeout=20_000)  # drawn offline
        found[url] = _check(page, url)
        assert page.evaluate("document.documentElement.lang") in ("ja", "en"), url
        assert page.title().strip(), url
    bad = {u: v for u, v in found.items() if v}
    assert bad == {}, bad
    assert [u for u in outside if not any(h in u for h in BASEMAP_HOSTS)] == []
    assert errors == [], errors
    context.close()
