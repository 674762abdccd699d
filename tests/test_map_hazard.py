"""The residents' hazard map (the ``hazard`` page of publish/pages) in real headless Chromium.

The data is the real thing end to end, for both example cities: Uozu's sample raw hazard files and
GSI shelter lists (``samples/uozu.py``) with the real ``layers/*.yml`` specs, and Takamatsu's
inland-flood study (partial coverage) and real shelter list (``examples/takamatsu``), merged by
the ETL, written to a public store by ``publish.build.public_store``. What is city-independent
runs on both (``city_site``), finding layers by their roles; Uozu's river-flood, tsunami and
sediment specifics and Takamatsu's inland-flood specifics have their own tests. Expected answers
(which zone a spot is in, which shelter is nearest and how far) are computed here independently
with shapely and pyproj, never by the page's code.

The page and its vector tiles are served by a loopback server with range requests
(``tests/map_server.py``: ``/static/`` = publish/static, ``/maps/`` = the output dir); every
request to anything but 127.0.0.1 is aborted, so the basemap tiles fail fast and the tests prove
the page works without them. Zones are drawn from the vector tiles (canvas): what is drawn is
read from the tiles the page loaded (``GisMap.app.drawnIds``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely
from map_server import DRAWN, DRAWN_ALL, serve_maps
from pyproj import Geod, Transformer

from config import Project, load_project
from config.messages import MESSAGES, text
from publish.build import public_store as store
from publish.build import tiles as vtiles
from publish.errors import PublishError
from publish.model import SiteContext
from publish.pages import page as mp
from publish.pages import roles
from publish.pages.common import STATIC_DIR, assert_offline
from publish.pages.roles import page_layers, role_layers

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
PHONE = {"width": 390, "height": 844}
# The city's layers and code lists (the page finds them by their roles; the test names them)
FLOOD, TSUNAMI, LANDSLIDE, SHELTER = "flood_zone", "tsunami_zone", "landslide_zone", "shelter"
DEPTH_CODES, HAZARD_CODES = "flood_depth_rank", "shelter_hazard"
PHENOMENON_CODES, LEVEL_CODES = "landslide_phenomenon", "landslide_zone_level"
PAGE = "hazard"
PAGE_FILE = f"{PAGE}.html"
N_NEAREST = 3  # shelter.nearest of layers/shelter.yml (the default)
# shelters on the page: Uozu's GSI sample list, Takamatsu's real list (as published)
N_SHELTERS = {"uozu": 56, "takamatsu": 193}
HAZARD_LAYERS = [FLOOD, TSUNAMI, LANDSLIDE, SHELTER]
DATES = {FLOOD: "2025-03-31", TSUNAMI: "2024-06-01", LANDSLIDE: "2025-01-10",
         SHELTER: "2025-04-01"}
TILE_HOSTS = ("cyberjapandata.gsi.go.jp", "tile.openstreetmap.org")
# The MLIT table (水害ハザードマップ作成の手引き, H28) and the GSI sediment-zone colours, written
# out here on purpose: the page takes its colours from the code lists, this checks them.
MLIT_DEPTH = {"1": "#F7F5A9", "2": "#FFD8C0", "3": "#FFB7B7", "4": "#FF9191", "5": "#F285C9",
              "6": "#DC7ADC"}
SEDIMENT = {("steep_slope", "warning"): "#fae600", ("steep_slope", "special_warning"): "#fa2800",
            ("debris_flow", "warning"): "#e6c832", ("debris_flow", "special_warning"): "#a50021",
            ("landslide", "warning"): "#ff9900", ("landslide", "special_warning"): "#b40028"}
GEOD = Geod(ellps="GRS80")
TO_PLANE = Transformer.from_crs("EPSG:4326", "EPSG:6675", always_xy=True)
TO_LONLAT = Transformer.from_crs("EPSG:6675", "EPSG:4326", always_xy=True)


# ---------------------------------------------------------------------------------------------
# fixtures: the public store, the page, a loopback server, a browser


def build_public_store(root: Path) -> tuple[Project, Path]:
    """sample raw data -> ETL merge of the hazard layers -> public store, all under ``root``.

    Hazard polygons and shelters do not depend on the sample ``scale``; a small scale keeps the
    other raw files (roads, parcels) quick to write.
    """
    from etl.pipeline import run_merge
    from samples.uozu import generate

    real = load_project(REPO)
    cfg = real.config.model_copy(update={"raw_dir": str(root / "raw"),
                                         "merged_dir": str(root / "merged"),
                                         "public_dir": str(root / "public")})
    project = Project(root=real.root, config=cfg, specs=real.specs, codelists=real.codelists,
                      spec_hashes=real.spec_hashes)
    generate(root / "raw", scale=0.02)
    run_merge(project, only=HAZARD_LAYERS)
    source = store.locate_master(project)
    plans = {lid: store.plan_layer(project.specs[lid], project.codelists)
             for lid in HAZARD_LAYERS}
    path = root / "public.gpkg"
    store.write_public_store(project, source, path, plans)
    return project, path


@dataclass
class Site:
    project: Project
    store: Path
    page: Path
    base: str
    blocked: list[str]
    name: str = "uozu"
    dates: dict[str, str | None] = field(default_factory=lambda: dict(DATES))

    @property
    def url(self) -> str:
        return f"{self.base}/maps/{PAGE_FILE}"

    @property
    def layers(self) -> list[str]:
        """The page's layers, bottom to top (as the specs declare them)."""
        return [spec.id for spec in page_layers(self.project, PAGE)]

    @property
    def hazards(self) -> list[Any]:
        return role_layers(self.project, "hazard", PAGE)

    @property
    def shelter(self) -> Any:
        return role_layers(self.project, "shelter", PAGE)[0]

    def to_plane(self) -> Transformer:
        return Transformer.from_crs("EPSG:4326", self.project.config.target_crs, always_xy=True)

    def to_lonlat(self) -> Transformer:
        return Transformer.from_crs(self.project.config.target_crs, "EPSG:4326", always_xy=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("hazard")
    project, gpkg = build_public_store(root)
    vtiles.write_page_tiles(project, PAGE, gpkg, root / "maps")
    page = mp.build_page(project, PAGE, gpkg, root / "maps", data_dates=DATES)
    with serve_maps(root / "maps") as base:
        yield Site(project, gpkg, page, base, [])




def build_takamatsu_store(root: Path) -> tuple[Project, Path, dict[str, str | None]]:
    """The second example city (test_example_city's copy): its sample exports and real open data,
    the hazard page's layers merged, written to a public store; returns the data dates too."""
    from test_example_city import copy_example

    from etl.pipeline import run_merge
    from examples.takamatsu.samples import generate as gen

    project = load_project(copy_example(root / "proj"))
    gen.generate(project.raw_dir, scale=0.02)
    lids = [spec.id for spec in page_layers(project, PAGE)]
    res = run_merge(project, only=lids)
    source = store.locate_master(project)
    plans = {lid: store.plan_layer(project.specs[lid], project.codelists) for lid in lids}
    path = root / "public.gpkg"
    store.write_public_store(project, source, path, plans)
    return project, path, {lid: res.manifest["layers"][lid]["data_date"] for lid in lids}


@pytest.fixture(scope="module")
def takamatsu_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("hazard-takamatsu")
    project, gpkg, dates = build_takamatsu_store(root)
    vtiles.write_page_tiles(project, PAGE, gpkg, root / "maps")
    page = mp.build_page(project, PAGE, gpkg, root / "maps", data_dates=dates)
    with serve_maps(root / "maps") as base:
        yield Site(project, gpkg, page, base, [], "takamatsu", dates)


#: the two example cities: what does not depend on the city runs on both
CITIES = ["uozu", "takamatsu"]


@pytest.fixture(scope="module", params=CITIES)
def city_site(request: pytest.FixtureRequest) -> Site:
    """Uozu's site (``site``) or Takamatsu's (one build per module each)."""
    return request.getfixturevalue("site" if request.param == "uozu" else "takamatsu_site")


def open_page(browser: Any, site: Site, *, lang: str | None = None, **ctx_kw: Any) -> Any:
    """A fresh phone context (390×844, touch) on the hazard page, tiles blocked, ready."""
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                              has_touch=True, locale="ja-JP", **ctx_kw)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors

    def block(r: Any) -> None:
        site.blocked.append(r.request.url)
        r.abort()

    # only non-loopback URLs go through Python (the page's own files load untouched)
    page.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/])"), block)
    page.goto(site.url + (f"?lang={lang}" if lang else ""))
    page.wait_for_function("window.GisMap && GisMap.ready === true")
    # settle the layout before any pixel maths: the tile notice (tiles are blocked) and the icon
    # web font both change the height of the sheet, hence of the map
    page.wait_for_selector("#gm-tiles-notice")
    page.evaluate("document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(r)))")
    page.evaluate(DRAWN_ALL)
    return page


def drawn(page: Any, layer: str) -> set[str]:
    page.evaluate(DRAWN_ALL)
    return set(page.evaluate(DRAWN, layer))


def repainted(page: Any, layer: str, *, shown: bool) -> None:
    """Wait for the vector layer's repaint after a toggle (it is asynchronous: on a loaded
    machine the tiles of the view may still show the state before the tap)."""
    page.wait_for_function(f"() => (GisMap.app.drawnIds({json.dumps(layer)}).length > 0) "
                           f"=== {json.dumps(shown)}")


def close(page: Any) -> None:
    errors = page.errors
    page.context.close()
    assert errors == [], errors


def tap_at(page: Any, lat: float, lon: float, zoom: int = 16) -> None:
    """Centre the map on (lat, lon) and tap that pixel like a finger would."""
    # (``void``: returning the Leaflet map would make playwright serialise its whole graph)
    page.evaluate(f"void GisMap.app.map.setView([{lat}, {lon}], {zoom}, {{animate: false}})")
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    x, y = page.evaluate(f"""(() => {{
        const m = GisMap.app.map, p = m.latLngToContainerPoint([{lat}, {lon}]);
        const r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }})()""")
    page.touchscreen.tap(x, y)
    page.wait_for_selector("#hz-card[data-state=result]")


# ---------------------------------------------------------------------------------------------
# independent expectations


def tables(site: Site) -> dict[str, gpd.GeoDataFrame]:
    return {lid: pyogrio.read_dataframe(site.store, layer=lid) for lid in site.layers}


def inner_point(area_lonlat: shapely.Geometry, inset_m: float = 6.0,
                site: Site | None = None) -> tuple[float, float]:
    """A point well inside an area (so a tap a pixel off still lands inside): lon, lat."""
    to_plane, to_lonlat = (site.to_plane(), site.to_lonlat()) if site else (TO_PLANE, TO_LONLAT)
    plane = shapely.transform(area_lonlat, lambda c: _xy(to_plane, c))
    parts = sorted(shapely.get_parts(plane), key=lambda g: -g.area)
    inner = parts[0].buffer(-inset_m)
    pt = (inner if not inner.is_empty else parts[0]).representative_point()
    lon, lat = to_lonlat.transform(pt.x, pt.y)
    return lon, lat


def _xy(tr: Transformer, c: Any) -> Any:
    import numpy as np
    x, y = tr.transform(c[:, 0], c[:, 1])
    return np.column_stack([x, y])


@dataclass
class Spot:
    lon: float
    lat: float
    phenomenon: str
    level: str


def flood2_landslide_spot(site: Site) -> Spot:
    """A spot in flood depth rank 2 (and no other rank) and inside a landslide zone."""
    t = tables(site)
    flood, land = t[FLOOD], t[LANDSLIDE]
    rank2 = flood[flood.depth_rank == 2].union_all()
    other = flood[flood.depth_rank != 2].union_all()
    best = None
    for _, z in land.iterrows():
        x = z.geometry.intersection(rank2).difference(other)
        if not x.is_empty and (best is None or x.area > best.area):
            best = x
    assert best is not None, "the sample data has no flood-rank-2 / landslide overlap"
    lon, lat = inner_point(best)
    p = shapely.Point(lon, lat)
    assert flood[flood.contains(p)].depth_rank.tolist() == [2]
    here = land[land.contains(p)]
    assert len(here)
    levels = list(site.project.codelists[LEVEL_CODES].codes)
    worst = max(here.itertuples(), key=lambda r: levels.index(r.zone_level))
    return Spot(lon, lat, worst.phenomenon, worst.zone_level)


def quiet_spot(site: Site) -> tuple[float, float]:
    """A spot inside the data's extent that is in no hazard zone (lon, lat)."""
    t = tables(site)
    zones = shapely.union_all([t[k].union_all() for k in (FLOOD, TSUNAMI, LANDSLIDE)])
    for _, s in t[SHELTER].iterrows():  # next to a shelter: certainly a place people live
        p = shapely.Point(s.geometry.x + 0.002, s.geometry.y)  # ~180 m east
        if not zones.buffer(0.0005).intersects(p):  # and ~50 m from any zone
            return p.x, p.y
    raise AssertionError("no quiet spot found")


def nearest_shelters(site: Site, flag: str, lon: float, lat: float) -> list[tuple[str, float]]:
    """(name, geodesic metres) of the shelters flagged for ``flag``, nearest first."""
    sh = tables(site)[site.shelter.id]
    sh = sh[sh[flag].fillna(False).astype(bool)]
    name = site.shelter.map.shelter.name_field
    to_plane = site.to_plane()
    out = []
    for _, s in sh.iterrows():
        _, _, d = GEOD.inv(lon, lat, s.geometry.x, s.geometry.y)
        x0, y0 = to_plane.transform(lon, lat)
        x1, y1 = to_plane.transform(s.geometry.x, s.geometry.y)
        # geodesic ≈ the city's plane zone (its scale factor: ≤ 1 m in 10 km)
        assert abs(d - ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5) < 1.0 + d * 1e-4
        out.append((s[name], d))
    return sorted(out, key=lambda t: t[1])


def card_shelters(page: Any, flag: str) -> list[tuple[str, int]]:
    items = page.locator(f"#hz-card section[data-flag={flag}] li")
    out = []
    for i in range(items.count()):
        li = items.nth(i)
        dist = li.locator(".hz-sh-dist").inner_text()
        out.append((li.locator(".hz-sh-name").inner_text(), int(re.sub(r"\D", "", dist))))
    return out


def page_config(html: str) -> dict[str, Any]:
    """The configuration the page embeds."""
    m = re.search(r'<script type="application/json" id="gm-config">(.*?)</script>', html, re.S)
    assert m, "no embedded configuration"
    return json.loads(m.group(1))


def page_data(page: Path) -> dict[str, Any]:
    """The data file next to the page (features of the embedded layers)."""
    cfg = page_config(page.read_text(encoding="utf-8"))
    assert cfg["dataUrl"].startswith(f"{page.stem}.json?v=")
    return json.loads((page.parent / f"{page.stem}.json").read_text(encoding="utf-8"))


def labels(site: Site, codelist: str, code: str) -> tuple[str, str]:
    e = site.project.codelists[codelist].codes[code]
    return e.ja, e.en


# ---------------------------------------------------------------------------------------------
# the page file itself


def test_page_is_small_offline_and_lean(city_site: Site) -> None:
    site = city_site
    html = site.page.read_text(encoding="utf-8")
    data_file = site.page.with_suffix(".json")
    assert site.page.stat().st_size < 60_000, "features go to the data file, not the page"
    assert data_file.stat().st_size < mp.MAX_DATA_BYTES
    assert_offline(html)
    assert '<html lang="ja">' in html and "user-scalable=no" not in html
    cfg, data = page_config(html), page_data(site.page)
    # the card's libraries load after the map is drawn; every script is deferred, fingerprinted
    for lib in ("vendor/turf/turf.min.js", "vendor/geographiclib/geographiclib-geodesic.min.js"):
        assert [u for u in cfg["later"] if u.startswith(f"/static/{lib}?v=")]
        assert f'src="/static/{lib}' not in html and (STATIC_DIR / lib).is_file()
    for script in re.findall(r'src="(/static/[^"?]+)', html):
        assert (STATIC_DIR / script[len("/static/"):]).is_file(), script
    assert "fontawesome/css" not in html, "one icon is an SVG, not a web font"
    assert re.findall(r"<script (?![^>]*defer)[^>]*src=", html) == []
    assert cfg["tiles"]["url"].startswith("tiles/hazard.")
    t = tables(site)
    for spec in site.hazards:  # every zone, with only the properties the page uses
        assert len(data["layers"][spec.id]) == len(t[spec.id]), spec.id
        # rank, and what the role declares: group, bounds, name, not designated, card fields
        hz = spec.map.hazard
        used = {"r", "x"} | {k for k, f in (("g", hz.group_field), ("a", hz.min_field),
                                            ("b", hz.max_field), ("n", hz.name_field),
                                            ("u", hz.designated_field)) if f}
        props = [f["properties"] for f in data["layers"][spec.id]]
        assert {k for p in props for k in p} <= used, spec.id
        assert {k for p in props for k in p.get("x", {})} <= set(spec.public_fields()), spec.id
    sh = site.shelter
    assert len(data["layers"][sh.id]) == len(t[sh.id]) == N_SHELTERS[site.name]
    for flag in sh.map.shelter.flags.values():
        assert sum(flag in s["properties"]["hz"] for s in data["layers"][sh.id]) == int(
            t[sh.id][flag].fillna(False).sum()), flag
    # 6 decimals
    first = site.hazards[0].id
    coords = re.findall(r"\d+\.(\d+)", json.dumps(data["layers"][first][0]["geometry"]))
    assert coords and max(len(c) for c in coords) <= 6
    # every string the UI shows is the catalogue's ja and en (やさしい日本語 where translated)
    assert cfg["text"] and all(set(v) - {"ja@easy"} == {"ja", "en"} and v["en"]
                               and (v["ja"], v["en"]) == MESSAGES[k]
                               for k, v in cfg["text"].items())
    assert {lay["id"]: lay["date"] for lay in cfg["layers"]}[first] == site.dates[first]
    # the page names the layers it shows, nothing else of the store
    assert [lay["id"] for lay in cfg["layers"]] == site.layers
    if site.name == "uozu":
        assert site.layers == HAZARD_LAYERS


def test_site_builder_writes_page_and_index(city_site: Site, tmp_path: Path) -> None:
    site = city_site
    first = site.layers[0]
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps.json").write_text(json.dumps([{"file": "pipes.html", "title": {
        "ja": "管路", "en": "Pipes"}}]), encoding="utf-8")
    lay = SimpleNamespace(data_date="2025-05-05")
    ctx = SiteContext(project=site.project, release_id="test", site_dir=tmp_path,
                      store=site.store, layers={first: lay}, plans={},
                      base_url="http://127.0.0.1")
    with pytest.raises(PublishError) as e:  # pages come after their tiles
        mp.site_page(ctx, PAGE)
    assert str(e.value) == text("map_tiles_missing", page=PAGE, layer=first)
    vtiles.write_page_tiles(site.project, PAGE, site.store, tmp_path / "maps")
    mp.site_page(ctx, PAGE)
    pages = json.loads((tmp_path / "maps.json").read_text(encoding="utf-8"))
    assert [p["file"] for p in pages] == ["pipes.html", PAGE_FILE]
    title = roles.page(site.project, PAGE).title
    assert pages[1]["title"] == {"ja": title.ja, "en": title.en, "ja@easy": title.easy}
    assert "2025-05-05" in (tmp_path / "maps" / PAGE_FILE).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# in the browser


def test_draws_everything_without_tiles(browser: Any, city_site: Site, artifacts: Path) -> None:
    site = city_site
    site.blocked.clear()
    page = open_page(browser, site)
    t = tables(site)
    for spec in site.hazards:  # drawn from the tiles: every zone, or none while switched off
        assert drawn(page, spec.id) == (set(t[spec.id].fid) if spec.map.show else set()), spec.id
    if site.name == "uozu":
        assert drawn(page, TSUNAMI) == set()  # off by default
    assert page.locator(".leaflet-marker-icon.hz-shelter").count() == len(t[site.shelter.id])
    # the blocked tiles are announced, and they are the only thing that was blocked
    assert page.locator("#gm-tiles-notice").is_visible()
    assert site.blocked, "the basemap should have asked for tiles"
    assert all(any(h in u for h in TILE_HOSTS) for u in site.blocked), site.blocked
    # 出典 of every visible layer + the basemap on screen, with its date
    attr = page.locator(".leaflet-control-attribution").inner_text()
    assert "地理院タイル" in attr
    for spec in [*site.hazards, site.shelter]:
        if spec.map.show:
            assert spec.attribution.ja in attr, spec.id
            assert site.dates[spec.id] and site.dates[spec.id] in attr, spec.id
    prefix = "" if site.name == "uozu" else f"{site.name}_"
    page.screenshot(path=str(artifacts / f"hazard_{prefix}overview_ja.png"))
    close(page)


def test_layer_control_toggles_paths(browser: Any, site: Site) -> None:
    page = open_page(browser, site)
    n_flood = len(drawn(page, FLOOD))
    assert n_flood > 0
    page.tap(".leaflet-control-layers-toggle")
    flood = page.locator(".leaflet-control-layers-overlays label",
                         has=page.locator(f"[data-layer={FLOOD}]"))
    tsunami = page.locator(".leaflet-control-layers-overlays label",
                           has=page.locator(f"[data-layer={TSUNAMI}]"))
    flood.tap()
    repainted(page, FLOOD, shown=False)
    assert drawn(page, FLOOD) == set()
    tsunami.tap()
    repainted(page, TSUNAMI, shown=True)
    assert drawn(page, TSUNAMI) == set(tables(site)[TSUNAMI].fid)
    flood.tap()
    repainted(page, FLOOD, shown=True)
    assert len(drawn(page, FLOOD)) == n_flood
    attr = page.locator(".leaflet-control-attribution").inner_text()
    assert site.project.specs[TSUNAMI].attribution.ja in attr
    close(page)


def test_tap_flood_rank2_in_landslide_zone(browser: Any, site: Site, artifacts: Path) -> None:
    spot = flood2_landslide_spot(site)
    page = open_page(browser, site)
    tap_at(page, spot.lat, spot.lon)
    card = page.locator("#hz-card")
    text = card.inner_text()
    assert "浸水深ランク2" in text and "0.5〜3.0 m" in text
    assert labels(site, DEPTH_CODES, "2")[0] in text  # 0.5m以上3.0m未満
    ph_ja, _ = labels(site, PHENOMENON_CODES, spot.phenomenon)
    lv_ja, _ = labels(site, LEVEL_CODES, spot.level)
    assert f"{ph_ja}の{lv_ja}" in text
    assert card.locator("[data-hazard=flood]").get_attribute("data-rank") == "2"
    line = card.locator(f"[data-hazard=landslide] [data-group={spot.phenomenon}]")
    assert line.get_attribute("data-rank") == spot.level
    assert card.get_attribute("aria-live") == "polite"
    # the tap went through the map (what a finger does), close to the intended spot
    lat, lng = page.evaluate("[GisMap.hazard.lastPoint().lat, GisMap.hazard.lastPoint().lng]")
    assert GEOD.inv(spot.lon, spot.lat, lng, lat)[2] < 3.0

    # nearest shelter for flood, and for landslides: names and distances as computed here
    for flag in ("hz_flood", "hz_landslide"):
        want = nearest_shelters(site, flag, lng, lat)[:N_NEAREST]
        got = card_shelters(page, flag)
        assert got[0][0] == want[0][0], (flag, got, want)
        assert [n for n, _ in got] == [n for n, _ in want]
        for (_, shown), (_, metres) in zip(got, want, strict=True):
            assert abs(shown - metres) <= 5.0, (flag, shown, metres)
    assert card.locator("section[data-flag=hz_tsunami]").count() == 0
    page.screenshot(path=str(artifacts / "hazard_card_ja.png"))

    # English, remembered across a reload
    page.select_option("#gm-lang", "en")  # the switch: ja, en, やさしい日本語
    assert page.evaluate("document.documentElement.lang") == "en"
    text = card.inner_text()
    assert "Depth rank 2" in text and "0.5–3.0 m" in text
    _, ph_en = labels(site, PHENOMENON_CODES, spot.phenomenon)
    _, lv_en = labels(site, LEVEL_CODES, spot.level)
    assert f"{lv_en} for {ph_en.lower()}" in text
    assert "Shelters for Flood" in text and "in a straight line" in text
    assert "浸水深" not in text
    page.screenshot(path=str(artifacts / "hazard_card_en.png"))
    page.reload()
    page.wait_for_function("window.GisMap && GisMap.ready === true")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.input_value("#gm-lang") == "en"
    assert "Tap the map" in page.locator("#hz-card").inner_text()
    close(page)


def test_quiet_spot_lists_earthquake_and_fire_shelters(browser: Any, site: Site) -> None:
    lon, lat = quiet_spot(site)
    page = open_page(browser, site)
    tap_at(page, lat, lon)
    text = page.locator("#hz-card").inner_text()
    assert "入っていません" in text
    assert "浸水想定区域の外です" in text and "土砂災害警戒区域の外です" in text
    lat, lng = page.evaluate("[GisMap.hazard.lastPoint().lat, GisMap.hazard.lastPoint().lng]")
    for flag in ("hz_earthquake", "hz_large_fire"):
        want = nearest_shelters(site, flag, lng, lat)
        got = card_shelters(page, flag)
        assert got and got[0][0] == want[0][0]
        assert abs(got[0][1] - want[0][1]) <= 5.0
    assert page.locator("#hz-card section[data-flag=hz_flood]").count() == 0
    close(page)


def test_tsunami_spot(browser: Any, site: Site) -> None:
    t = tables(site)
    ts = t[TSUNAMI]
    deep = ts[ts.depth_label_rank == ts.depth_label_rank.max()].iloc[0]
    others = shapely.union_all([*ts[ts.fid != deep.fid].geometry, t[FLOOD].union_all()])
    lon, lat = inner_point(deep.geometry.difference(others))
    page = open_page(browser, site, lang="en")
    tap_at(page, lat, lon)
    card = page.locator("#hz-card")
    text = card.inner_text()
    lo, hi = deep.depth_label_min_m, deep.depth_label_max_m
    assert f"Inundation depth {lo:.1f}–{hi:.1f} m (rank {deep.depth_label_rank})" in text
    assert card.locator("[data-hazard=tsunami]").get_attribute("data-rank") == str(
        deep.depth_label_rank)
    lat, lng = page.evaluate("[GisMap.hazard.lastPoint().lat, GisMap.hazard.lastPoint().lng]")
    want = nearest_shelters(site, "hz_tsunami", lng, lat)
    got = card_shelters(page, "hz_tsunami")
    assert got[0][0] == want[0][0] and abs(got[0][1] - want[0][1]) <= 5.0
    page.select_option("#gm-lang", "ja")  # back to Japanese: the raw class label as published
    assert f"浸水深 {deep.depth_label}" in card.inner_text()
    close(page)


def test_my_location_and_denied(browser: Any, site: Site) -> None:
    spot = flood2_landslide_spot(site)
    page = open_page(browser, site, permissions=["geolocation"],
                     geolocation={"latitude": spot.lat, "longitude": spot.lon, "accuracy": 12})
    page.tap("#gm-locate")
    page.wait_for_selector("#hz-card[data-state=result]")
    text = page.locator("#hz-card").inner_text()
    assert "現在地" in text and "浸水深ランク2" in text
    assert card_shelters(page, "hz_flood")[0][0] == nearest_shelters(
        site, "hz_flood", spot.lon, spot.lat)[0][0]
    close(page)

    page = open_page(browser, site)  # no permission granted: the browser denies
    page.tap("#gm-locate")
    notice = page.locator("#gm-notice")
    notice.wait_for(state="visible")
    page.wait_for_function("!document.getElementById('gm-notice').textContent.includes('調べて')")
    assert "許可されませんでした" in notice.inner_text()
    assert notice.get_attribute("role") == "status"
    close(page)


def test_legend_colours_are_the_mlit_table(browser: Any, site: Site, artifacts: Path) -> None:
    page = open_page(browser, site)
    page.tap("#gm-legend-btn")
    legend = page.locator("#gm-legend")
    assert legend.is_visible()

    def rgb(hexcolor: str) -> str:
        h = hexcolor.lstrip("#")
        return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))

    for lid in (FLOOD, TSUNAMI):
        rows = legend.locator(f"[data-legend={lid}] li")
        got = {}
        for i in range(rows.count()):
            sw = rows.nth(i).locator(".gm-swatch")
            got[rows.nth(i).get_attribute("data-code")] = (
                sw.get_attribute("data-color"),
                sw.evaluate("e => getComputedStyle(e).backgroundColor"))
        assert {k: v[0].upper() for k, v in got.items()} == MLIT_DEPTH
        assert {k: v[1] for k, v in got.items()} == {k: rgb(v) for k, v in MLIT_DEPTH.items()}
    rows = legend.locator("[data-legend=landslide_zone] li")
    got = {}
    for i in range(rows.count()):
        r = rows.nth(i)
        sw = r.locator(".gm-swatch")
        key = (r.get_attribute("data-group"), r.get_attribute("data-rank"))
        got[key] = sw.get_attribute("data-color").lower()
        assert sw.evaluate("e => getComputedStyle(e).backgroundColor") == rgb(got[key])
    assert got == SEDIMENT
    # the zones are painted in the same colours: the fill of each zone in the loaded tiles
    fills = page.evaluate("""id => { const app = GisMap.app, lay = app.layers[id], out = [];
      app.vt.views.forEach(v => v.tileCache.cache.forEach(e => (e.data.get(id) || [])
        .forEach(f => out.push(lay.colorOf(f.props))))); return [...new Set(out)]; }""", FLOOD)
    assert fills and {f.upper() for f in fills} <= set(MLIT_DEPTH.values())
    fills = page.evaluate("""id => { const app = GisMap.app, lay = app.layers[id], out = [];
      app.vt.views.forEach(v => v.tileCache.cache.forEach(e => (e.data.get(id) || [])
        .forEach(f => out.push(lay.colorOf(f.props))))); return [...new Set(out)]; }""",
                          LANDSLIDE)
    assert fills and {f.lower() for f in fills} <= set(SEDIMENT.values())
    # sources and dates for every layer
    sources = legend.locator("#gm-sources").inner_text()
    for lid in HAZARD_LAYERS:
        assert site.project.specs[lid].attribution.ja in sources
        assert f"{DATES[lid]}時点" in sources
    page.screenshot(path=str(artifacts / "hazard_legend_ja.png"))
    legend.evaluate("e => { e.scrollTop = e.scrollHeight; }")
    page.screenshot(path=str(artifacts / "hazard_legend_sources_ja.png"))
    page.tap("#gm-legend-close")
    assert not legend.is_visible()
    close(page)


def test_shelter_badges_and_tap_targets(browser: Any, city_site: Site, artifacts: Path) -> None:
    site = city_site
    spec = site.shelter
    sh = tables(site)[spec.id]
    flags = list(spec.map.shelter.flags.values())  # hazard kind -> flag field, by the role
    if site.name == "uozu":
        assert flags == list(site.project.codelists[HAZARD_CODES].codes)
    name = spec.map.shelter.name_field
    sh = sh.assign(n=sh[flags].fillna(False).astype(bool).sum(axis=1)).sort_values("n")
    sh = sh[sh.n < len(flags)]  # (one not designated for every hazard: its details say so)
    s = sh.iloc[-1]  # the shelter designated for the most hazards
    page = open_page(browser, site)
    page.evaluate(f"void GisMap.app.map.setView([{s.geometry.y}, {s.geometry.x}], 16, "
                  "{animate: false})")
    marker = page.locator(f".hz-shelter[data-shelter-id='{s.fid}']")
    on = {f for f in flags if bool(s[f]) is True}
    assert marker.locator(".hz-badge.hz-on").count() == len(on)
    assert marker.locator(".hz-badge.hz-off").count() == len(flags) - len(on)
    assert marker.locator(".hz-badges").is_visible()
    label = marker.get_attribute("aria-label")
    assert s[name] in label
    for f in on:  # text alternative names every hazard (not colour alone)
        assert spec.fields[f].title.ja in label
    marker.tap()
    detail = page.locator(f"#gm-picks .hz-popup[data-id='{s.fid}']")
    detail.wait_for()
    assert s[name] in detail.inner_text() and "対象外" in detail.inner_text()
    # the details are in the sheet, never over the map: nothing covers them
    assert detail.evaluate("""e => { const r = e.getBoundingClientRect();
      const hit = document.elementFromPoint(r.left + 10, r.top + 10);
      return e.contains(hit); }""")
    prefix = "" if site.name == "uozu" else f"{site.name}_"
    page.screenshot(path=str(artifacts / f"hazard_{prefix}shelter_ja.png"))
    # every control a finger needs is at least 44×44 CSS px
    small = page.evaluate("""() => [...document.querySelectorAll(
          '.gm-btn, .leaflet-control-zoom a, .leaflet-control-layers-toggle, .hz-shelter')]
        .filter(e => e.offsetParent !== null)
        .map(e => [e.id || e.className, e.getBoundingClientRect()])
        .filter(([, r]) => r.width < 44 || r.height < 44)
        .map(([n, r]) => `${n} ${r.width}x${r.height}`)""")
    assert small == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    close(page)


def test_build_refuses_store_without_hazard_layers(tmp_path: Path, city_site: Site) -> None:
    site = city_site
    gdf = gpd.GeoDataFrame({"x": [1]}, geometry=[shapely.Point(137.4, 36.8)], crs="EPSG:4326")
    pyogrio.write_dataframe(gdf, tmp_path / "none.gpkg", layer="no_such_layer")
    with pytest.raises(PublishError, match=f"none of the layers of map page '{PAGE}'"):
        mp.build_page(site.project, PAGE, tmp_path / "none.gpkg", tmp_path / "out")
    # a store with only shelters still makes a page (the card lists shelters only)
    shelter = site.shelter.id
    only = tmp_path / "only.gpkg"
    pyogrio.write_dataframe(tables(site)[shelter], only, layer=shelter,
                            layer_options={"FID": "rid"})
    page = mp.build_page(site.project, PAGE, only, tmp_path / "out")
    data, cfg = page_data(page), page_config(page.read_text(encoding="utf-8"))
    assert set(data["layers"]) == {shelter} and [lay["id"] for lay in cfg["layers"]] == [shelter]
    assert cfg["hazard"] is not None


def test_legend_colours_are_the_code_lists(browser: Any, city_site: Site) -> None:
    """Each hazard layer's legend and the zones drawn: the colours of its rank code list."""
    site = city_site
    page = open_page(browser, site)
    page.tap("#gm-legend-btn")
    legend = page.locator("#gm-legend")
    assert legend.is_visible()
    for spec in site.hazards:
        hz = spec.map.hazard
        if hz.group_field:  # colours per group and rank: Uozu's sediment zones (test above)
            continue
        codelist = hz.rank_codelist or spec.fields[hz.rank_field or spec.map.color_by].codelist
        want = {c: e.color.upper() for c, e in site.project.codelists[codelist].codes.items()}
        rows = legend.locator(f"[data-legend={spec.id}] li")
        got = {rows.nth(i).get_attribute("data-code"):
               rows.nth(i).locator(".gm-swatch").get_attribute("data-color").upper()
               for i in range(rows.count())}
        assert got == want, spec.id
        if spec.map.show:  # and the zones are painted in them (the loaded tiles)
            fills = page.evaluate("""id => { const app = GisMap.app, lay = app.layers[id],
              out = []; app.vt.views.forEach(v => v.tileCache.cache.forEach(e =>
              (e.data.get(id) || []).forEach(f => out.push(lay.colorOf(f.props)))));
              return [...new Set(out)]; }""", spec.id)
            assert fills and {f.upper() for f in fills} <= set(want.values()), spec.id
    sources = legend.locator("#gm-sources").inner_text()
    for spec in [*site.hazards, site.shelter]:
        assert spec.attribution.ja in sources and f"{site.dates[spec.id]}時点" in sources
    close(page)


# ---------------------------------------------------------------------------------------------
# Takamatsu: an inland-flood study of the central lowland only (``coverage: zones``)


def inland(site: Site) -> Any:
    spec = site.hazards[0]
    assert (len(site.hazards), spec.map.hazard.kind) == (1, "inland_flood")
    return spec


def test_inland_flood_spot(browser: Any, takamatsu_site: Site, artifacts: Path) -> None:
    """A spot in the deepest inland-flood zone: its rank and label as the city's card text says,
    the guidance for that rank, the nearest shelters flagged for inland flooding."""
    site = takamatsu_site
    spec = inland(site)
    hz = spec.map.hazard
    t = tables(site)
    zones = t[spec.id]
    deep = zones[zones[hz.rank_field] == zones[hz.rank_field].max()].iloc[0]
    others = zones[zones.fid != deep.fid].union_all()
    # away from the page's point markers (a tap on one opens its details instead)
    points = shapely.union_all([g.buffer(0.0006) for lid in site.layers for g in t[lid].geometry
                                if g.geom_type == "Point"])
    lon, lat = inner_point(deep.geometry.difference(others).difference(points), site=site)
    rank = str(int(deep[hz.rank_field]))
    entry = site.project.codelists[spec.fields[hz.rank_field].codelist].codes[rank]
    page = open_page(browser, site)
    tap_at(page, lat, lon)
    card = page.locator("#hz-card")
    body = card.inner_text()
    assert card.locator("[data-hazard=inland_flood]").get_attribute("data-rank") == rank
    assert hz.card.ja.format(rank=rank, label=entry.ja) in body
    advice = hz.guidance_by_rank.get(rank, hz.guidance)
    assert advice.ja in body
    assert "入っていません" not in body
    lat, lng = page.evaluate("[GisMap.hazard.lastPoint().lat, GisMap.hazard.lastPoint().lng]")
    flag = spec_flag(site, "inland_flood")
    want = nearest_shelters(site, flag, lng, lat)[:N_NEAREST]
    got = card_shelters(page, flag)
    assert [n for n, _ in got] == [n for n, _ in want]
    for (_, shown), (_, metres) in zip(got, want, strict=True):
        assert abs(shown - metres) <= 5.0, (shown, metres)
    page.screenshot(path=str(artifacts / "hazard_takamatsu_card_ja.png"))
    page.select_option("#gm-lang", "en")
    assert hz.card.en.format(rank=rank, label=entry.en) in card.inner_text()
    close(page)


def spec_flag(site: Site, kind: str) -> str:
    return site.shelter.map.shelter.flags[kind]


def _plane(site: Site, g: shapely.Geometry) -> shapely.Geometry:
    tr = site.to_plane()
    return shapely.transform(g, lambda c: _xy(tr, c))


def _lonlat(site: Site, pt: shapely.Point) -> tuple[float, float]:
    return site.to_lonlat().transform(pt.x, pt.y)


def test_inland_flood_outside_the_zones_within_the_study(browser: Any,
                                                          takamatsu_site: Site) -> None:
    """100 m from a zone, in none: the card's "outside" line of the layer and the all-clear."""
    site = takamatsu_site
    spec = inland(site)
    zones = _plane(site, tables(site)[spec.id].union_all())
    ring = zones.buffer(120).difference(zones.buffer(80))
    lon, lat = _lonlat(site, ring.representative_point())
    page = open_page(browser, site)
    tap_at(page, lat, lon)
    card = page.locator("#hz-card")
    risk = card.locator(f"[data-layer={spec.id}]")
    assert risk.get_attribute("data-rank") == "0" and risk.get_attribute("data-nodata") is None
    body = card.inner_text()
    assert spec.map.hazard.card_none.ja in body and "入っていません" in body
    default = [spec_flag(site, k) for k in site.shelter.map.shelter.default_kinds]
    assert [card.locator(f"section[data-flag={f}]").count() for f in default] == [1] * len(default)
    assert card.locator(f"section[data-flag={spec_flag(site, 'inland_flood')}]").count() == 0
    close(page)


def test_inland_flood_no_data_beyond_the_study(browser: Any, takamatsu_site: Site) -> None:
    """Far beyond the surveyed area (the hull of the zones + its margin): "no data", never
    "outside the zones" nor the all-clear; the shelters for any hazard are still listed."""
    site = takamatsu_site
    spec = inland(site)
    hz = spec.map.hazard
    zones = _plane(site, tables(site)[spec.id].union_all())
    surveyed = zones.convex_hull.buffer(hz.coverage_margin_m)
    city = site.project.config.boundary
    assert city is not None
    area = _plane(site, gpd.read_file(site.project.path(city.path)).union_all())
    sh = tables(site)[site.shelter.id]
    spot = None
    for g in sh.geometry:  # ~150 m east of a shelter well beyond the study, in the city
        p = shapely.Point(*site.to_plane().transform(g.x, g.y))
        p = shapely.Point(p.x + 150, p.y)
        if surveyed.distance(p) > 2_000 and area.buffer(-200).contains(p):
            spot = p
            break
    assert spot is not None
    lon, lat = _lonlat(site, spot)
    page = open_page(browser, site)
    tap_at(page, lat, lon)
    card = page.locator("#hz-card")
    risk = card.locator(f"[data-layer={spec.id}]")
    assert risk.get_attribute("data-nodata") == "coverage"
    body = card.inner_text()
    title = spec.title  # the layer's (the page's layer configuration)
    assert MESSAGES["card_no_data"][0].format(title=title.ja, title_en=title.en) in body
    assert hz.card_none.ja not in body and "入っていません" not in body
    lat, lng = page.evaluate("[GisMap.hazard.lastPoint().lat, GisMap.hazard.lastPoint().lng]")
    for kind in site.shelter.map.shelter.default_kinds:
        flag = spec_flag(site, kind)
        want = nearest_shelters(site, flag, lng, lat)
        got = card_shelters(page, flag)
        assert got and got[0][0] == want[0][0] and abs(got[0][1] - want[0][1]) <= 5.0, kind
    close(page)
