"""What a release answers, end to end on both example cities: two real publishes with known
changes between them (raw exports edited, merged again, published again), then the change feed,
``/api/changes``, the downloads read back by GDAL over HTTP, the walk-route process, enclosure
links, the landing page and the OpenAPI document, through the real server.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import pytest
import requests
import shapely
import shapely.geometry
from conftest import make_uozu_project
from flask.testing import FlaskClient
from headless import CHROMIUM, CHROMIUM_ARGS
from test_example_city import copy_example, run

from config import Project, load_project
from config.messages import text
from etl.pipeline import run_merge
from publish.build import PublishResult, answers, changes, opendata, public_store, publish, routing
from publish.server.app import ServerProcess, create_app

ATOM = "{http://www.w3.org/2005/Atom}"
CITIES = ["uozu", "takamatsu"]


def _raw_source(project: Project, lid: str) -> tuple[Path, str | None, str]:
    """(raw file, encoding, raw id column) of a layer's first source."""
    src = project.specs[lid].sources[0]
    return project.raw_dir / src.path, src.encoding, src.id_fields[0]


def _rewrite(path: Path, enc: str | None, edit: Any) -> None:
    """Edit a raw Shapefile the way the source system would write it (no .cpg / .prj added)."""
    had_cpg, had_prj = path.with_suffix(".cpg").exists(), path.with_suffix(".prj").exists()
    df = pyogrio.read_dataframe(path, encoding=enc)
    df = edit(df)
    pyogrio.write_dataframe(df, path, encoding=enc)
    if not had_cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    if not had_prj:
        path.with_suffix(".prj").unlink(missing_ok=True)


def _nfkc(v: Any) -> str:
    return unicodedata.normalize("NFKC", str(v)).strip()


def _city_root(which: str, base: Path) -> Path:
    if which == "uozu":
        return make_uozu_project(base, scale=0.05)
    root = copy_example(base / "proj")
    res = run("--project", str(root), "-q", "--json", "sample", "--scale", "0.1")
    assert res.exit_code == 0, res.output
    return root


@pytest.fixture(scope="module", params=CITIES)
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Any]:
    """Release A; then one road removed and one pipe's diameter changed in the raw exports,
    merged and published again as release B."""
    root = _city_root(request.param, tmp_path_factory.mktemp(request.param))
    project = load_project(root)
    run_merge(project)
    a = publish(project)
    road = routing.network_layers(project)[0]
    pipe = sorted(lid for lid, s in project.specs.items() if s.map.role == "pipe"
                  and s.map.pipe and s.map.pipe.diameter_field and not s.public_filter)[0]
    store_a = {lid: pyogrio.read_dataframe(a.store, layer=lid) for lid in (road, pipe)}
    removed = str(store_a[road]["fid"].sort_values().iloc[len(store_a[road]) // 2])
    dia_field = project.specs[pipe].map.pipe.diameter_field
    pipes = store_a[pipe].dropna(subset=[dia_field]).sort_values("fid")
    changed = str(pipes["fid"].iloc[len(pipes) // 3])
    old_dia = int(pipes.set_index("fid").loc[changed, dia_field])

    path, enc, id_col = _raw_source(project, road)
    _rewrite(path, enc, lambda df: df[df[id_col].map(_nfkc) != removed].reset_index(drop=True))
    path, enc, id_col = _raw_source(project, pipe)
    raw_dia = project.specs[pipe].fields[dia_field].from_
    rename = {v: k for k, v in project.specs[pipe].sources[0].rename.items()}
    raw_dia = rename.get(raw_dia, raw_dia)

    def bump(df: pd.DataFrame) -> pd.DataFrame:
        hit = df[id_col].map(_nfkc) == changed
        assert hit.sum() == 1, changed
        new = old_dia + 50
        df.loc[hit, raw_dia] = str(new) if pd.api.types.is_string_dtype(df[raw_dia]) else new
        return df

    _rewrite(path, enc, bump)
    run_merge(project)
    b = publish(project)
    return {"name": request.param, "project": project, "a": a, "b": b, "road": road,
            "pipe": pipe, "removed": removed, "changed": changed, "dia_field": dia_field,
            "old_dia": old_dia}


@pytest.fixture(scope="module")
def client(city: dict[str, Any]) -> FlaskClient:
    return create_app(city["project"]).test_client()


def _meta(res: PublishResult) -> dict[str, Any]:
    return json.loads((res.path / "release.json").read_text(encoding="utf-8"))


# -------------------------------------------------------------------------------- change feed


def test_first_release_adds_every_feature(city: dict[str, Any]) -> None:
    a = city["a"]
    summary = json.loads((a.path / "changes" / "changes.json").read_text(encoding="utf-8"))
    assert summary["previous"] is None
    for lid, n in a.counts.items():
        d = summary["layers"][lid]
        assert (len(d["added"]), d["removed"], d["changed"]) == (n, [], []), lid
    assert _meta(a)["changes"]["layers"][city["road"]]["added"] == a.counts[city["road"]]


def test_second_release_holds_exactly_the_known_changes(city: dict[str, Any]) -> None:
    a, b = city["a"], city["b"]
    summary = json.loads((b.path / "changes" / "changes.json").read_text(encoding="utf-8"))
    assert summary["previous"] == a.release_id and summary["release"] == b.release_id
    got = {lid: {op: d[op] for op in changes.OPS if d[op]}
           for lid, d in summary["layers"].items() if any(d[op] for op in changes.OPS)}
    assert got == {city["road"]: {"removed": [city["removed"]]},
                   city["pipe"]: {"changed": [city["changed"]]}}
    assert b.counts[city["road"]] == a.counts[city["road"]] - 1
    assert _meta(b)["changes"]["layers"][city["pipe"]] == {"added": 0, "removed": 0,
                                                            "changed": 1}


def test_api_changes_since_bbox_and_layers(city: dict[str, Any], client: FlaskClient) -> None:
    b = city["b"]
    at_b = _meta(b)["changes"]["at"]
    r = client.get(f"/api/changes?since={at_b}")
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    body = r.get_json()
    assert body["complete"] is True and body["release"] == b.release_id
    assert {lid: {op: ids for op, ids in d.items() if ids} for lid, d in body["layers"].items()
            } == {city["road"]: {"removed": [city["removed"]]},
                  city["pipe"]: {"changed": [city["changed"]]}}
    # the changed pipe's own box finds it; a box elsewhere in the city does not
    pipe = pyogrio.read_dataframe(b.store, layer=city["pipe"]).set_index("fid")
    x0, y0, x1, y1 = pipe.loc[city["changed"]].geometry.bounds
    r = client.get(f"/api/changes?since={at_b}&bbox={x0},{y0},{x1},{y1}&layers={city['pipe']}")
    assert r.get_json()["layers"] == {city["pipe"]: {"added": [], "removed": [],
                                                     "changed": [city["changed"]]}}
    r = client.get(f"/api/changes?since={at_b}&bbox={x1 + 0.01},{y1 + 0.01},{x1 + 0.02},"
                   f"{y1 + 0.02}&layers={city['pipe']}")
    assert r.get_json()["layers"] == {}
    # since the day before the first release: everything the first one added, said incomplete
    day = (dt.date.fromisoformat(_meta(city["a"])["changes"]["at"][:10])
           - dt.timedelta(days=1)).isoformat()
    body = client.get(f"/api/changes?since={day}&layers={city['pipe']}").get_json()
    assert body["complete"] is False
    assert body["note"] == {"ja": text("changes_history_from",
                                       first=_meta(city["a"])["changes"]["at"]).split(" / ")[0],
                            "en": text("changes_history_from",
                                       first=_meta(city["a"])["changes"]["at"]).split(" / ")[1]}
    assert len(body["layers"][city["pipe"]]["added"]) == b.counts[city["pipe"]]


@pytest.mark.parametrize(("query", "key", "kw"), [
    ("", "err_changes_since", {"value": ""}),
    ("since=2026-13-01", "err_changes_since", {"value": "2026-13-01"}),
    ("since=2026-04-01&bbox=1,2,3", "err_changes_bbox", {"value": "1,2,3"}),
    ("since=2026-04-01&bbox=137,36,136,37", "err_changes_bbox", {"value": "137,36,136,37"}),
    ("since=2026-04-01&limit=5", "err_changes_param", {"name": "limit"}),
])
def test_api_changes_bad_input_is_a_bilingual_400(city: dict[str, Any], client: FlaskClient,
                                                   query: str, key: str,
                                                   kw: dict[str, str]) -> None:
    r = client.get(f"/api/changes?{query}")
    assert r.status_code == 400
    assert r.get_json() == {"code": "InvalidParameterValue", "description": text(key, **kw)}


def test_api_changes_unknown_layer_names_the_known_ones(city: dict[str, Any],
                                                        client: FlaskClient) -> None:
    r = client.get("/api/changes?since=2026-04-01&layers=parcel_tax")
    known = ", ".join(sorted(city["b"].counts))
    assert r.status_code == 400
    assert r.get_json()["description"] == text("err_changes_layers", layer="parcel_tax",
                                               known=known)


def test_atom_and_json_feeds_link_to_the_requested_host(city: dict[str, Any],
                                                        client: FlaskClient) -> None:
    a, b, pipe = city["a"], city["b"], city["pipe"]
    r = client.get(f"/changes/{pipe}.atom", base_url="https://gis.example.jp")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/atom+xml"
    root = ET.fromstring(r.data)
    entries = root.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}id").text.rsplit("/", 1)[1] for e in entries] == [b.release_id,
                                                                            a.release_id]
    assert city["changed"] in entries[0].find(f"{ATOM}content").text
    self_link = [x.get("href") for x in root.findall(f"{ATOM}link") if x.get("rel") == "self"]
    assert self_link == [f"https://gis.example.jp/changes/{pipe}.atom"]
    j = client.get(f"/changes/{pipe}.json").get_json()
    assert [r["release"] for r in j["releases"]] == [b.release_id, a.release_id]
    assert j["releases"][0]["changed"] == [city["changed"]]
    for bad in ("history.json", "../release.json", ".changes.json.tmp", "x.gpkg"):
        assert client.get(f"/changes/{bad}").status_code == 404, bad


# --------------------------------------------------------------------------------- downloads


@pytest.fixture(scope="module")
def server(city: dict[str, Any]) -> Any:
    with ServerProcess(city["project"].root, workers=1) as srv:
        yield srv


def test_downloads_read_back_by_gdal_over_http(city: dict[str, Any], server: Any) -> None:
    b, project = city["b"], city["project"]
    index = requests.get(f"{server.base}/opendata/index.json", timeout=30).json()["layers"]
    assert set(index) == set(b.counts)
    for lid, n in b.counts.items():
        store = pyogrio.read_dataframe(b.store, layer=lid)
        for fmt in ("gpkg", "geojson"):
            url = f"/vsicurl/{server.base}/opendata/{lid}.{fmt}"
            got = pyogrio.read_dataframe(url)
            assert len(got) == n == len(store), (lid, fmt)
            assert sorted(got["fid"].astype(str)) == sorted(store["fid"].astype(str))
        r = requests.get(f"{server.base}/opendata/{lid}.csv", timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert r.content.startswith(codecs.BOM_UTF8)
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
        plan = opendata.plan_layer(project.specs[lid], project.codelists)
        titles = list(opendata._titles(plan).values())
        geo = (["緯度", "経度"] if project.specs[lid].geometry_type == "Point" else ["WKT"])
        assert rows[0] == titles + geo, lid
        assert len(rows) - 1 == n
    # the standard layout of the shelter list: its columns, one row per listed site
    std = opendata.standards()["evacuation_space"]
    code = project.config.city_code
    r = requests.get(f"{server.base}/opendata/{code}_evacuation_space.csv", timeout=30)
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert r.content.startswith(codecs.BOM_UTF8) and rows[0] == std.columns
    shelter = next(lid for lid, s in project.specs.items() if s.opendata)
    od = project.specs[shelter].opendata
    sh = pyogrio.read_dataframe(b.store, layer=shelter)
    listed = int(sh[od.where].fillna(False).astype(bool).sum()) if od.where else len(sh)
    assert len(rows) - 1 == listed
    assert {r[0] for r in rows[1:]} == {code}
    g = pyogrio.read_dataframe(f"/vsicurl/{server.base}/opendata/{code}_evacuation_space.gpkg")
    assert list(g.columns[:-1]) == std.columns and len(g) == listed


def test_landing_lists_downloads_and_feeds(city: dict[str, Any], client: FlaskClient) -> None:
    html = client.get("/", base_url="https://gis.example.jp").get_data(as_text=True)
    root = "https://gis.example.jp"
    for lid in city["b"].counts:
        assert f'id="opendata-{lid}"' in html
        for fmt in ("gpkg", "geojson", "csv"):
            assert f'href="{root}/opendata/{lid}.{fmt}"' in html
        assert f'href="{root}/changes/{lid}.atom"' in html
    code = city["project"].config.city_code
    assert f'href="{root}/opendata/{code}_evacuation_space.csv"' in html
    assert f'action="{root}/api/changes"' in html


def test_collections_link_their_downloads_as_enclosures(city: dict[str, Any],
                                                        client: FlaskClient) -> None:
    b = city["b"]
    sizes = {f["file"]: f["bytes"] for e in _meta(b)["opendata"]["layers"].values()
             for f in e["files"]}
    for lid in b.counts:
        links = client.get(f"/api/collections/{lid}?f=json",
                           base_url="https://gis.example.jp").get_json()["links"]
        enc = {x["href"]: x for x in links if x["rel"] == "enclosure"}
        own = {f"https://gis.example.jp/opendata/{lid}.{fmt}" for fmt in ("gpkg", "geojson",
                                                                          "csv")}
        assert own <= set(enc), lid
        for href, x in enc.items():
            assert x["length"] == sizes[href.rsplit("/", 1)[1]]
        assert enc[f"https://gis.example.jp/opendata/{lid}.csv"]["type"] == \
            "text/csv; charset=utf-8"


def test_openapi_documents_changes_and_walk_route(city: dict[str, Any],
                                                  client: FlaskClient) -> None:
    oas = client.get("/api/openapi?f=json").get_json()
    params = {p["name"] for p in oas["paths"]["/changes"]["get"]["parameters"]}
    assert params == {"since", "bbox", "layers"}
    assert "/processes/walk-route/execution" in oas["paths"]
    assert _meta(city["b"])["processes"] == ["pipe-sheet", "walk-route"]


# ------------------------------------------------------------------------------- walk route


def _start_near_a_shelter(b: PublishResult) -> tuple[float, float, str, str]:
    """A point 10 m off the road nearest to a shelter on the network: (lon, lat, kind, fid)."""
    g = routing.load_graph(b.path / routing.GRAPH_FILE)
    sh = g.shelters
    for j, kind in enumerate(sh.kinds):
        on = np.flatnonzero(sh.flags[:, j] & (sh.edge >= 0))
        if len(on):
            i = int(on[0])
            e = int(sh.edge[i])
            c = g.edge_coords(e)
            mid = c[len(c) // 2] + np.array([0.0, 10.0])
            lon, lat = g.to_lonlat.transform(*mid)
            return float(lon), float(lat), kind, str(sh.fid[i])
    raise AssertionError("no shelter on the network")


def test_walk_route_process_answers_with_routes_and_directions(city: dict[str, Any],
                                                               client: FlaskClient) -> None:
    b = city["b"]
    lon, lat, kind, _ = _start_near_a_shelter(b)
    r = client.post("/api/processes/walk-route/execution",
                    json={"inputs": {"lon": lon, "lat": lat, "kind": kind}})
    assert r.status_code == 200, r.get_data(as_text=True)
    fc = r.get_json()
    assert fc["type"] == "FeatureCollection" and fc["kind"] == kind
    feats = fc["features"]
    assert 1 <= len(feats) <= city["project"].config.publish.routing.results
    dists = [f["properties"]["distance_m"] for f in feats]
    assert dists == sorted(dists) and dists[0] > 0
    first = feats[0]["properties"]
    assert first["steps"][-1]["turn"] == "arrive" and first["steps"][-1]["name"] == first["name"]
    assert all(set(s["text"]) == {"ja", "en"} for s in first["steps"])
    start = feats[0]["geometry"]["coordinates"][0]
    assert start == pytest.approx([lon, lat], abs=1e-6)


def test_walk_route_off_the_network_says_how_far(city: dict[str, Any],
                                                 client: FlaskClient) -> None:
    b = city["b"]
    g = routing.load_graph(b.path / routing.GRAPH_FILE)
    x, y = g.node_xy.min(axis=0) - 3000.0  # 3 km beyond the network's south-west corner
    lon, lat = g.to_lonlat.transform(x, y)
    near = routing.snap(g, (x, y), None)
    r = client.post("/api/processes/walk-route/execution",
                    json={"inputs": {"lon": lon, "lat": lat, "kind": g.shelters.kinds[0]}})
    assert r.status_code == 400
    limit = round(city["project"].config.publish.routing.snap_m)
    assert r.get_json()["description"] == text("route_snap_far", limit=limit,
                                               dist=round(near.off))


def test_answers_hold_only_public_columns(city: dict[str, Any]) -> None:
    """The downloads' self-check passed at publish; a tampered download would fail it."""
    b, project = city["b"], city["project"]
    expected = public_store.expected_tables(project)
    catalog = json.loads((b.path / "opendata" / "index.json").read_text())["layers"]
    answers.check_downloads(project, b.path / "opendata", catalog, expected)
    lid = city["pipe"]
    gdf = pyogrio.read_dataframe(b.path / "opendata" / f"{lid}.gpkg")
    gdf["secret"] = "x"
    tampered = b.path.parent / "tampered"
    tampered.mkdir(exist_ok=True)
    for p in (b.path / "opendata").iterdir():
        (tampered / p.name).write_bytes(p.read_bytes())
    (tampered / f"{lid}.gpkg").unlink()
    pyogrio.write_dataframe(gdf, tampered / f"{lid}.gpkg", layer_options={"FID": "rid"})
    with pytest.raises(Exception) as e:
        answers.check_downloads(project, tampered, catalog, expected)
    assert e.value.key == "leak_check_failed" and "secret" in str(e.value)


# ------------------------------------------------------------------ search: page = reference

SEARCH_JS = Path(__file__).resolve().parent.parent / "publish/static/map/search.js"
FW = str.maketrans("0123456789-", "０１２３４５６７８９－")
KANJI = "〇一二三四五六七八九"


def _queries(index: dict[str, Any], prefixes: list[str]) -> list[str]:
    """Queries as people type them: ledger spellings, widths, readings, prefixes, parts."""
    qs: list[str] = []
    for e in index["oaza"][::3]:
        ch = e["ch"][len(e["ch"]) // 2]
        main, _, branch = ch.partition("-")
        qs += [f"{e['n']}{ch}", f"{e['n']} {main}番{branch}" if branch else f"{e['n']}{main}番地",
               f"{e['n']}{ch}".translate(FW), f"{e['n']}{main}の{branch}" if branch else e["n"],
               e.get("r", e["n"]) + ch, e["n"][:1], ch]
        for p in prefixes:
            qs.append(f"{p}{e['n']}{main}")
        qs.append(re_kanji_chome(e["n"]))
    for p in index["places"][::max(1, len(index["places"]) // 25)]:
        qs += [p["n"], p["n"][: max(1, len(p["n"]) // 2)], p["a"][-6:] if p["a"] else p["n"]]
    return [q for q in dict.fromkeys(qs) if q]


def re_kanji_chome(name: str) -> str:
    """番町1丁目 -> 番町一丁目 (how it is written in addresses)."""
    out = []
    for i, c in enumerate(name):
        out.append(KANJI[int(c)] if c.isdigit() and name[i + 1:i + 3] == "丁目" else c)
    return "".join(out)


def test_page_search_finds_what_the_reference_finds(city: dict[str, Any]) -> None:
    """search.js (in Chromium) and search_index.search give the same hits in the same order."""
    from playwright.sync_api import sync_playwright

    from publish.build import search_index as si
    b = city["b"]
    index = json.loads((b.path / "site" / "maps" / si.INDEX_FILE).read_text(encoding="utf-8"))
    queries = _queries(index, city["project"].config.publish.search.address_prefixes)
    assert len(queries) > 60
    want = [[[h.kind, h.label, h.fid] for h in si.search(index, q, 10)] for q in queries]
    assert sum(1 for w in want if w) > 0.8 * len(queries)  # the queries do find things
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><meta charset=utf-8><body></body>")
            page.add_script_tag(path=str(SEARCH_JS))
            got = page.evaluate(
                "([idx, qs]) => qs.map(q => GisSearch.search(idx, q, 10)"
                ".map(h => [h.kind, h.label, h.fid]))", [index, queries])
        finally:
            browser.close()
    for q, w, g in zip(queries, want, got, strict=True):
        assert g == w, q


# ------------------------------------------------- server pages: languages and the search box


def _browser_page(p: Any, base: str, locale: str) -> Any:
    browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    ctx = browser.new_context(locale=locale, viewport={"width": 390, "height": 844})
    ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
              else route.abort())
    return browser, ctx.new_page()


@pytest.mark.browser
def test_landing_language_follows_the_browser_and_the_switch(city: dict[str, Any],
                                                             server: Any) -> None:
    from playwright.sync_api import sync_playwright

    from config import i18n
    with sync_playwright() as p:
        for locale, want in (("en-US", "en"), ("ja-JP", "ja"), ("vi-VN", "en")):
            browser, page = _browser_page(p, server.base, locale)
            try:
                page.goto(server.base + "/")
                assert page.evaluate("document.documentElement.dataset.lang") == want
                h2 = page.locator("#maps h2")
                assert h2.inner_text().strip() == i18n.tr("page_maps", want)
            finally:
                browser.close()
        browser, page = _browser_page(p, server.base, "ja-JP")
        try:
            page.goto(server.base + "/")
            page.click(f'button[data-set-lang="{i18n.EASY}"]')
            assert page.locator("#maps h2").inner_text().strip() == i18n.tr("page_maps",
                                                                              i18n.EASY)
            assert page.get_attribute(f'button[data-set-lang="{i18n.EASY}"]',
                                      "aria-pressed") == "true"
            page.goto(server.base + "/terms")  # remembered on every page of the site
            assert page.evaluate("document.documentElement.dataset.lang") == i18n.EASY
            assert page.evaluate("document.documentElement.lang") == "ja"
            page.goto(server.base + "/?lang=en")  # a link may ask for a language
            assert page.locator("#maps h2").inner_text().strip() == "Maps"
        finally:
            browser.close()


@pytest.mark.browser
def test_landing_search_box_opens_the_map_at_the_hit(city: dict[str, Any], server: Any) -> None:
    from playwright.sync_api import sync_playwright

    from publish.build import search_index as si
    b = city["b"]
    index = json.loads((b.path / "site" / "maps" / si.INDEX_FILE).read_text(encoding="utf-8"))
    e = index["oaza"][len(index["oaza"]) // 2]
    ch = e["ch"][0]
    query = f"{e['n']} {ch.replace('-', '番')}".translate(FW)  # as typed on a phone
    hit = si.search(index, query, 8)[0]
    assert (hit.kind, hit.label) == ("parcel", f"{e['n']} {ch}")
    with sync_playwright() as p:
        browser, page = _browser_page(p, server.base, "ja-JP")
        try:
            page.goto(server.base + "/")
            page.fill("#site-q", query)
            page.wait_for_selector("#site-q-list [role=option]")
            options = page.locator("#site-q-list [role=option] .gs-label").all_inner_texts()
            assert options == [h.label for h in si.search(index, query, 8)]
            assert page.get_attribute("#site-q", "aria-expanded") == "true"
            page.keyboard.press("ArrowDown")
            page.keyboard.press("ArrowUp")  # back to the first: keyboard only
            with page.expect_navigation():
                page.keyboard.press("Enter")
            url = page.url
            assert url.startswith(f"{server.base}/maps/{index['pages'][hit.layer]}?at=")
            at = url.split("at=")[1].split("&")[0].split(",")
            assert [float(at[0]), float(at[1])] == pytest.approx([hit.lat, hit.lon], abs=1e-6)
        finally:
            browser.close()


def test_walk_route_description_example_is_a_point_of_the_city(city: dict[str, Any],
                                                               client: FlaskClient) -> None:
    desc = client.get("/api/processes/walk-route?f=json").get_json()
    ex = desc["example"]["inputs"]
    r = client.post("/api/processes/walk-route/execution", json={"inputs": ex})
    assert r.status_code == 200 and r.get_json()["features"], ex
    lon0, lat0, lon1, lat1 = _meta(city["b"])["layers"][city["road"]]["bbox"]
    assert lon0 <= ex["lon"] <= lon1 and lat0 - 0.001 <= ex["lat"] <= lat1 + 0.001


# ---------------------------------------------- risk-card facts and the pipe sheet's tables


def test_shelters_inside_their_own_hazard_zone_are_found(city: dict[str, Any]) -> None:
    """hazard_facts against an independent spatial join (geopandas)."""
    import geopandas as gpd

    from publish.pages import hazard_facts
    b, project = city["b"], city["project"]
    got = hazard_facts.shelters_in_zones(project, b.store)
    want: dict[str, set[tuple[str, str]]] = {}
    for sid, spec in project.specs.items():
        if spec.map.shelter is None:
            continue
        sh = pyogrio.read_dataframe(b.store, layer=sid)
        want[sid] = set()
        for kind, flag in spec.map.shelter.flags.items():
            for zid, zspec in project.specs.items():
                if zspec.map.hazard is None or zspec.map.hazard.kind != kind:
                    continue
                zones = pyogrio.read_dataframe(b.store, layer=zid)
                j = gpd.sjoin(sh[sh[flag].fillna(False).astype(bool)], zones[["geometry"]],
                              predicate="intersects")
                want[sid] |= {(str(f), kind) for f in j["fid"]}
    assert {sid: {(f, e["kind"]) for f, es in v.items() for e in es} for sid, v in got.items()
            } == want
    n = {"uozu": 15, "takamatsu": None}[city["name"]]  # the Uozu sample: 15 of 56 sites
    if n is not None:
        assert len(got["shelter"]) == n


def test_partial_studies_have_a_coverage_area(city: dict[str, Any]) -> None:
    from publish.pages import hazard_facts
    b, project = city["b"], city["project"]
    cov = hazard_facts.coverage_areas(project, b.store)
    partial = {lid for lid, s in project.specs.items()
               if s.map.hazard and s.map.hazard.coverage == "zones"}
    assert set(cov) == partial == ({"naisui_shinsui"} if city["name"] == "takamatsu" else set())
    for lid, geom in cov.items():
        zones = pyogrio.read_dataframe(b.store, layer=lid)
        area = shapely.geometry.shape(geom)
        assert shapely.contains(area, zones.geometry.values).all()
        lon0, lat0, lon1, lat1 = _meta(b)["layers"][city["road"]]["bbox"]
        assert not area.contains(shapely.box(lon0, lat0, lon1, lat1))  # part of the city


def test_sheet_tables_list_the_frame_and_the_parcels_connections(city: dict[str, Any]) -> None:
    from publish.pages import roles, sheet_table
    b, project = city["b"], city["project"]
    sr = roles.sheet_roles(project)
    assert sr is not None
    serves = [lid for lid, s in project.specs.items() if s.map.serves]
    pr = sr.parcel.map.parcel
    parcels = pyogrio.read_dataframe(b.store, layer=sr.parcel.id)
    if serves:  # a parcel with connections (Uozu)
        svc = pyogrio.read_dataframe(b.store, layer=serves[0])
        o, c = svc["oaza"].iloc[0], svc["chiban"].iloc[0]
    else:
        o, c = parcels[pr.oaza_field].iloc[0], parcels[pr.chiban_field].iloc[0]
    conn = sheet_table.connection_tables(project, b.store, o, c)
    assert [t.title["ja"] for t in conn] == [
        text("sheet_table_connections", layer=project.specs[lid].title.ja, n=len(t.rows))
        .split(" / ")[0] for lid, t in zip(serves, conn, strict=True)]
    for lid, t in zip(serves, conn, strict=True):
        s = project.specs[lid].map.serves
        ids = pyogrio.read_dataframe(b.store, layer=lid, read_geometry=False)
        ids = ids[(ids[s.oaza_field] == o) & (ids[s.chiban_field] == c)]["fid"]
        assert [r[0] for r in t.rows] == sorted(ids) and len(t.rows) >= 1, lid
    lot = parcels[(parcels[pr.oaza_field] == o) & (parcels[pr.chiban_field] == c)]
    crs = project.config.target_crs
    x0, y0, x1, y1 = lot.to_crs(crs).total_bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    extent = (cx - 100.0, cy - 140.0, cx + 100.0, cy + 140.0)
    tables = sheet_table.pipe_tables(project, b.store, list(sr.pipes), extent, crs)
    assert len(tables) == len(sr.pipes)
    frame = shapely.box(*extent)
    for spec, t in zip(sr.pipes, tables, strict=True):
        gdf = pyogrio.read_dataframe(b.store, layer=spec.id).to_crs(crs)
        inside = gdf[shapely.length(shapely.intersection(gdf.geometry.values, frame)) > 0]
        assert sorted(r[0] for r in t.rows) == sorted(inside["fid"]), spec.id
        role = spec.map.pipe
        row = dict(zip([h["en"] for h in t.header], t.rows[0], strict=True)) if t.rows else {}
        if t.rows and role.depth_field:
            first = inside.set_index("fid").loc[t.rows[0][0]]
            v = first[role.depth_field]
            assert t.rows[0][4] == ("—" if v is None or v != v else f"{v:.2f}"), row
