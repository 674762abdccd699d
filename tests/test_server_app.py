"""The composed app through Flask's test client: pages, OGC API behaviour, leaks, disk safety."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pyogrio
import pytest
import shapely
from conftest import store_for
from flask.testing import FlaskClient
from publish_fixtures import (
    OTHER_CITY,
    QUOTE_DISTRICT,
    SECRETS,
    isolated_site_builders,
    make_project,
    public_copy,
    sample_frames,
    write_master,
    write_project,
)
from stores import STORES

from config import Project
from config.messages import text
from config.models import I18nText
from publish.build import PublishResult, SiteContext, publish
from publish.errors import PublishError
from publish.server.app import create_app, serve

BASE = "http://127.0.0.1:5000"

@pytest.fixture(scope="module", autouse=True)
def _only_our_site_builders() -> Iterator[None]:
    with isolated_site_builders():
        yield



def demo_maps(ctx: SiteContext) -> None:
    """Stands in for publish/maps*: one page, an index, and a booby trap."""
    maps = ctx.site_dir / "maps"
    (maps / "sewer.html").write_text("<html><body>下水道マップ</body></html>", encoding="utf-8")
    (ctx.site_dir / "maps.json").write_text(json.dumps(
        [{"file": "sewer.html", "title": {"ja": "下水道マップ", "en": "Sewer map"}}]),
        encoding="utf-8")
    os.symlink(ctx.project.merged_dir / "master.gpkg", maps / "evil.html")
    (maps / ".hidden.html").write_text("hidden", encoding="utf-8")


@pytest.fixture(scope="module", params=STORES)
def env(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, PublishResult, FlaskClient]:
    project = make_project(tmp_path_factory.mktemp("app"), store=store_for(request, request.param),
                           roles=True)
    res = publish(project, site_builders=[demo_maps])
    return project, res, create_app(project).test_client()


def get_json(client: FlaskClient, url: str, status: int = 200, **kw: Any) -> Any:
    r = client.get(url, **kw)
    assert r.status_code == status, (url, r.status_code, r.get_data(as_text=True)[:300])
    return r.get_json(force=True)


def path_of(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def walk(client: FlaskClient, url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow ``next`` links to the end; return all features and every page."""
    feats, pages = [], []
    while url:
        page = get_json(client, url)
        pages.append(page)
        feats += page["features"]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        assert len(nxt) <= 1
        url = path_of(nxt[0]) if nxt else ""
        assert len(pages) < 500
    return feats, pages


def store_kind(env: tuple[Project, PublishResult, FlaskClient]) -> str:
    """``gpkg`` or ``postgresql``: the store the fixture published from."""
    from etl.stores.url import scheme
    return scheme(env[0].config.store)


def store_frame(res: PublishResult, lid: str) -> Any:
    return pyogrio.read_dataframe(res.store, layer=lid)


# ---------------------------------------------------------------- pages

def test_landing_terms_and_health(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    project, res, client = env
    home = client.get("/")
    assert home.status_code == 200 and home.content_type.startswith("text/html")
    html = home.get_data(as_text=True)
    for s in ("魚津市 公開型GIS", "Uozu City public GIS", "参考図", "reference only",
              "/api/collections?f=html", "/terms", "下水道マップ", "/maps/sewer.html",
              res.release_id, "出典", "Source"):
        assert s in html, s
    for lid, lay in res.layers.items():
        assert f'id="layer-{lid}"' in html and (lay.data_date or "—") in html
    terms = client.get("/terms").get_data(as_text=True)
    for s in ("利用規約", "Terms of use", "参考図", "reference maps", "CC-BY-4.0",
              "魚津市 下水道台帳", "Uozu City sewer ledger",
              f"第{project.config.publish.terms_version}版"):
        assert s in terms, s
    assert get_json(client, "/healthz") == {"status": "ok", "release": res.release_id,
                                            "created_at": res.path.joinpath("release.json")
                                            and json.loads((res.path / "release.json")
                                                           .read_text())["created_at"]}
    assert client.get("/static/site.css").status_code == 200
    assert client.get("/maps/sewer.html").get_data(as_text=True).count("下水道マップ") == 1
    assert client.get("/maps/").status_code in (301, 302, 308)


@pytest.mark.parametrize("url", [
    "/maps/../public.gpkg", "/maps/..%2fpublic.gpkg", "/maps/%2e%2e/%2e%2e/releases",
    "/maps/evil.html", "/maps/.hidden.html", "/maps/../../../data/merged/master.gpkg",
    "/static/../server.py", "/static/..%2f..%2fconfig%2fproject.yml", "/static/%2e%2e/store.py",
    "/releases/x/public.gpkg", "/current/public.gpkg", "/public.gpkg", "/pygeoapi.yml",
    "/data/merged/master.gpkg", "/merged/master.gpkg", "/api/static/../../../config.py",
    "/api/schemas/../pygeoapi.yml", "/api/collections/../../public.gpkg", "/..%2f..%2fetc/passwd",
    "/api/admin/config", "/api/processes/hello-world", "/api/jobs",
])
def test_nothing_else_on_disk_is_reachable(env: tuple[Project, PublishResult, FlaskClient],
                                           url: str) -> None:
    _, _, client = env
    r = client.get(url)
    body = r.get_data()
    assert r.status_code in (400, 404), (url, r.status_code)
    assert b"SQLite format" not in body and b"source_file" not in body


def test_api_is_read_only(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, _, client = env
    url = "/api/collections/sewer_pipes/items"
    for method in ("post", "put", "delete", "patch"):
        r = getattr(client, method)(url, data=b'{"type": "Feature"}',
                                    content_type="application/geo+json")
        assert r.status_code == 405, method
        assert "読み取り専用" in r.get_json()["description"]
    r = client.options(url)
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get(url).headers["Access-Control-Allow-Origin"] == "*"


def test_no_release_yet_is_503(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    with pytest.raises(PublishError, match="uozu-gis publish"):
        serve(project, port=1)  # refuses before binding anything
    client = create_app(project).test_client()
    assert client.get("/").status_code == 503
    assert client.get("/healthz").status_code == 503
    r = client.get("/api/collections")
    assert r.status_code == 503 and "uozu-gis publish" in r.get_json()["description"]


def test_lang_script_that_would_close_the_inline_script_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real check (not an ``assert``, gone under ``python -O``): the exact bilingual error,
    for the server's pages and the map pages alike (one implementation)."""
    from publish.pages import common
    from publish.server import app

    (tmp_path / "lang.js").write_text('var s = "</script>";\n', encoding="utf-8")
    monkeypatch.setattr(common, "STATIC_DIR", tmp_path)
    try:
        with pytest.raises(PublishError) as ei:
            app._lang_js()
        path = tmp_path / "lang.js"
        assert str(ei.value) == text("inline_script_unsafe", path=path)
        assert str(ei.value).endswith(f"{path} cannot be inlined in a page's <script>: it "
                                      "contains '</' (which would close the script). Fix: "
                                      "write '</' inside strings as '<\\/'")
        path.write_text('var s = "<\\/script>";\n', encoding="utf-8")
        os.utime(path, ns=(1, 1))  # another mtime: read again
        assert app._lang_js() == common.lang_script() == 'var s = "<\\/script>";\n'
    finally:
        common._lang_script.cache_clear()


# ---------------------------------------------------------------- OGC API

def test_landing_conformance_collections(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, res, client = env
    landing = get_json(client, "/api?f=json")
    assert any(link["href"] == f"{BASE}/api/conformance?f=json" or
               link["href"].startswith(f"{BASE}/api/conformance") for link in landing["links"])
    conf = get_json(client, "/api/conformance?f=json")["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    cols = get_json(client, "/api/collections?f=json")["collections"]
    assert {c["id"] for c in cols} == set(res.layers)
    pipes = get_json(client, "/api/collections/sewer_pipes?f=json")
    assert pipes["extent"]["spatial"]["bbox"] == [list(res.layers["sewer_pipes"].bbox)]
    assert "http://www.opengis.net/def/crs/EPSG/0/6675" in pipes["crs"]
    date = res.layers["sewer_pipes"].data_date
    if date:  # the data date is the collection's temporal extent; datetime= is checked against it
        assert pipes["extent"]["temporal"]["interval"][0][0].startswith(date)
        assert client.get(f"/api/collections/sewer_pipes/items?datetime={date}").status_code == 200
        assert client.get("/api/collections/sewer_pipes/items?datetime=1900-01-01"
                          ).status_code == 400
    assert client.get("/api/collections?f=html").status_code == 200


@pytest.mark.parametrize("url", [
    "/api/collections/parcel_tax", "/api/collections/parcel_tax/items",
    "/api/collections/parcel_tax/items/100-0", "/api/collections/parcel_tax/queryables",
    "/api/collections/parcel_tax/schema", "/api/collections/_quarantine/items",
    "/api/collections/_code_table/items", "/api/collections/sewer_pipes/items/SP-00004",
])
def test_internal_ids_are_404(env: tuple[Project, PublishResult, FlaskClient], url: str) -> None:
    _, _, client = env
    assert client.get(url).status_code == 404


def test_items_item_and_html(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, res, client = env
    n = res.layers["sewer_pipes"].features
    fc = get_json(client, "/api/collections/sewer_pipes/items?f=json&limit=5")
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 5
    assert fc["numberMatched"] == n and fc["numberReturned"] == 5
    first = fc["features"][0]
    assert set(first["properties"]) == set(res.layers["sewer_pipes"].columns) - {"fid"}
    sel = get_json(client, "/api/collections/sewer_pipes/items?limit=3&properties=material,"
                   "diameter_mm")
    assert all(set(f["properties"]) == {"material", "diameter_mm"} for f in sel["features"])
    assert [f["id"] for f in sel["features"]] == [f["id"] for f in fc["features"][:3]]
    assert client.get("/api/collections/sewer_pipes/items?q=本町").status_code == 400
    one = get_json(client, f"/api/collections/sewer_pipes/items/{first['id']}?f=json")
    assert one["id"] == first["id"] and one["geometry"] == first["geometry"]
    assert client.get("/api/collections/sewer_pipes/items/nope?f=json").status_code == 404
    assert client.get(f"/api/collections/sewer_pipes/items/{quote(chr(39) + ' OR 1=1 --')}"
                      ).status_code == 404
    html = client.get("/api/collections/sewer_pipes/items?f=html&lang=ja&limit=5")
    assert html.status_code == 200 and html.content_type.startswith("text/html")
    page = html.get_data(as_text=True)
    assert '<html lang="ja" dir="ltr"' in page and "次へ" in page and first["id"] in page
    assert client.get(f"/api/collections/sewer_pipes/items/{first['id']}?f=html"
                      ).status_code == 200


@pytest.mark.parametrize(("lid", "limit"), [("sewer_pipes", 7), ("sewer_pipes", 10),
                                            ("shelters", 3), ("shelters", 9), ("shelters", 50)])
def test_paging_follows_next_to_the_end(env: tuple[Project, PublishResult, FlaskClient],
                                        lid: str, limit: int) -> None:
    _, res, client = env
    feats, pages = walk(client, f"/api/collections/{lid}/items?f=json&limit={limit}")
    ids = [f["id"] for f in feats]
    expected = sorted(store_frame(res, lid)["fid"])
    assert ids == expected  # complete, no duplicates, stable order
    assert len(pages) == -(-len(expected) // limit)  # no empty trailing page, even at n % limit==0
    assert all(p["numberMatched"] == len(expected) for p in pages)
    assert not [link for link in pages[-1]["links"] if link["rel"] == "next"]
    if len(pages) > 1:
        assert [link for link in pages[-1]["links"] if link["rel"] == "prev"]
    last = (len(pages) - 1) * limit
    html = client.get(f"/api/collections/{lid}/items?f=html&lang=ja&limit={limit}&offset={last}")
    assert html.status_code == 200 and "次へ" not in html.get_data(as_text=True)
    if len(pages) > 1:
        html = client.get(f"/api/collections/{lid}/items?f=html&lang=en&limit={limit}")
        assert ">Next</a>" in html.get_data(as_text=True)


def test_bbox_is_exact_and_pages(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, res, client = env
    gdf = store_frame(res, "sewer_pipes")
    minx, miny, maxx, maxy = gdf.total_bounds
    box = (minx + (maxx - minx) * 0.3, miny - 0.001, minx + (maxx - minx) * 0.6, maxy + 0.001)
    expected = sorted(gdf.loc[gdf.intersects(shapely.box(*box)), "fid"])
    assert 0 < len(expected) < len(gdf)
    bbox = ",".join(f"{v:.7f}" for v in box)
    feats, pages = walk(client, f"/api/collections/sewer_pipes/items?bbox={bbox}&limit=4")
    assert [f["id"] for f in feats] == expected
    assert pages[0]["numberMatched"] == len(expected)
    # a tiny box inside a sloped pipe's envelope but off the line: the R-tree selects it,
    # the exact test must drop it
    slope = gdf.geometry.apply(lambda g: abs(g.coords[-1][1] - g.coords[0][1]))
    line = gdf.geometry.loc[slope.idxmax()]
    (ax, ay), (bx, by) = line.coords[0], line.coords[-1]
    cx, cy = ax + 0.1 * (bx - ax), by + 0.1 * (ay - by)  # near the corner the line avoids
    eps = abs(by - ay) * 0.02
    tiny = shapely.box(cx - eps, cy - eps, cx + eps, cy + eps)
    assert tiny.intersects(shapely.box(*line.bounds)) and not tiny.intersects(line)
    fc = get_json(client, "/api/collections/sewer_pipes/items?bbox="
                  + ",".join(f"{v:.9f}" for v in tiny.bounds))
    assert [f["id"] for f in fc["features"]] == sorted(gdf.loc[gdf.intersects(tiny), "fid"])
    assert gdf.loc[slope.idxmax(), "fid"] not in {f["id"] for f in fc["features"]}
    # the same box given in EPSG:6675 (bbox-crs) finds the same features
    from pyproj import Transformer

    t = Transformer.from_crs("OGC:CRS84", "EPSG:6675", always_xy=True)
    e0, n0 = t.transform(box[0], box[1])
    e1, n1 = t.transform(box[2], box[3])
    crs = "http://www.opengis.net/def/crs/EPSG/0/6675"
    fc = get_json(client, f"/api/collections/sewer_pipes/items?limit=1000&bbox-crs={crs}"
                  f"&bbox={n0},{e0},{n1},{e1}")  # EPSG:6675 axis order: northing, easting
    assert {f["id"] for f in fc["features"]} >= set(expected[1:-1])


def test_property_filters_are_typed_and_escaped(
        env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, res, client = env
    gdf = store_frame(res, "sewer_pipes")
    url = "/api/collections/sewer_pipes/items?f=json&limit=1000&"
    fc = get_json(client, url + "district=" + quote(QUOTE_DISTRICT))
    assert fc["numberMatched"] == int((gdf["district"] == QUOTE_DISTRICT).sum()) > 0
    fc = get_json(client, url + "district=" + quote("' OR '1'='1"))
    assert fc["numberMatched"] == 0 and fc["features"] == []
    fc = get_json(client, url + "district=" + quote('本町" OR 1=1; DROP TABLE sewer_pipes; --'))
    assert fc["numberMatched"] == 0
    fc = get_json(client, url + "diameter_mm=200&material=HP")
    exp = gdf[(gdf["diameter_mm"] == 200) & (gdf["material"] == "HP")]
    assert sorted(f["id"] for f in fc["features"]) == sorted(exp["fid"])
    fc = get_json(client, "/api/collections/shelters/items?flood=true")
    assert fc["numberMatched"] == 4 and all(f["properties"]["flood"] for f in fc["features"])
    bads = ["diameter_mm=abc", "diameter_mm=1e999", "flood=maybe", "install_fy=1990",
            "sortby=secret_column"]
    if store_kind(env) == "gpkg":  # CQL2 runs on PostGIS only (tests/test_pg_store.py)
        bads.append("filter=" + quote("diameter_mm > 100"))
    for bad in bads:
        lid = "shelters" if bad.startswith("flood") else "sewer_pipes"
        r = client.get(f"/api/collections/{lid}/items?{bad}")
        assert r.status_code == 400, (bad, r.status_code)
    assert "絞り込みできません" in client.get(url + "install_fy=1990").get_json()["description"]
    assert get_json(client, url + "pipe_id=" + quote("SP-00000\x00x"), 400)


def test_empty_results_in_every_format(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    """Regression: an empty last page in JSON-LD (invalid JSON from pygeoapi) was a 500."""
    _, _, client = env
    for f in ("json", "jsonld", "html", "csv"):
        r = client.get(f"/api/collections/sewer_pipes/items?f={f}&district=nowhere&offset=99")
        assert r.status_code == 200, f


def test_sortby(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, res, client = env
    gdf = store_frame(res, "sewer_pipes")
    fc = get_json(client, "/api/collections/sewer_pipes/items?limit=1000&sortby=-diameter_mm,fid")
    got = [(f["properties"]["diameter_mm"], f["id"]) for f in fc["features"]]
    assert got == sorted(zip(gdf["diameter_mm"], gdf["fid"], strict=True),
                         key=lambda t: (-t[0], t[1]))
    feats, _ = walk(client, "/api/collections/sewer_pipes/items?limit=6&sortby=district")
    districts = [f["properties"]["district"] for f in feats]
    assert districts == sorted(districts) and len(feats) == len(gdf)


def test_queryables_schema_and_language(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    project, res, client = env
    plan_q = json.loads((res.path / "release.json").read_text())["layers"]["sewer_pipes"][
        "queryables"]
    q = get_json(client, "/api/collections/sewer_pipes/queryables?f=json")
    assert set(q["properties"]) == {"geometry", *plan_q}
    schema = get_json(client, "/api/collections/sewer_pipes/schema?f=json")
    assert set(schema["properties"]) == {"geometry", *res.layers["sewer_pipes"].columns}
    spec = project.specs["sewer_pipes"]
    en_ = get_json(client, "/api/collections/sewer_pipes?f=json&lang=en")
    ja_ = get_json(client, "/api/collections/sewer_pipes?f=json&lang=ja")
    default = get_json(client, "/api/collections/sewer_pipes?f=json")
    assert en_["title"] == spec.title.en and ja_["title"] == spec.title.ja
    assert default["title"] == spec.title.ja  # Japanese is the default language
    hdr = get_json(client, "/api/collections/sewer_pipes?f=json",
                   headers={"Accept-Language": "en-US,en;q=0.8"})
    assert hdr["title"] == spec.title.en
    assert q["properties"]["diameter_mm"]["title"] == "管径 / Diameter [mm]"
    html = client.get("/api/collections?f=html&lang=ja").get_data(as_text=True)
    assert "データ一覧" in html and spec.title.ja in html
    html_en = client.get("/api/collections?f=html&lang=en").get_data(as_text=True)
    assert "Collections" in html_en and spec.title.en in html_en


def test_output_crs(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    project, res, client = env
    fid = sorted(store_frame(res, "shelters")["fid"])[0]
    base = f"/api/collections/shelters/items/{fid}?f=json"
    crs84 = get_json(client, base)["geometry"]["coordinates"]
    r = client.get(base + "&crs=http://www.opengis.net/def/crs/EPSG/0/6675")
    assert r.status_code == 200
    assert r.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/6675>"
    n, e = r.get_json()["geometry"]["coordinates"]  # EPSG:6675 order is (northing, easting)
    from publish.build.public_store import locate_master
    master = locate_master(project).read_layer("shelters")
    pt = master.set_index(master["shelter_id"].astype(str)).geometry.loc[fid]
    assert abs(e - pt.x) < 0.02 and abs(n - pt.y) < 0.02
    lat, lon = get_json(client, base + "&crs=http://www.opengis.net/def/crs/EPSG/0/4326")[
        "geometry"]["coordinates"]
    assert (lon, lat) == pytest.approx(tuple(crs84), abs=1e-9)


def test_no_secret_in_any_response(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, _, client = env
    urls = ["/", "/terms", "/api", "/api?f=html", "/api/openapi?f=json", "/api/collections",
            "/api/collections?f=html"]
    for lid in ("sewer_pipes", "shelters"):
        urls += [f"/api/collections/{lid}{s}" for s in (
            "", "?f=html", "/items?limit=1000", "/items?limit=1000&f=html", "/queryables",
            "/schema", "/items?limit=1000&f=jsonld", "/items?limit=1000&f=csv")]
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, url
        body = r.get_data(as_text=True)
        for secret in (*SECRETS, "remarks", "manager_phone", "owner_name", "source_file",
                       "quality_flags", "parcel_tax", "abandoned"):
            assert secret not in body, (secret, url)


def test_new_release_is_served_without_restart(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    first = publish(project)
    client = create_app(project).test_client()
    r = client.get("/api/collections/sewer_pipes/items?limit=1000")
    assert r.headers["X-Release"] == first.release_id
    write_master(project, sample_frames(n_pipes=60, generation=1), data_date="2025-06-30")
    second = publish(project)
    r = client.get("/api/collections/sewer_pipes/items?limit=1000")
    assert r.headers["X-Release"] == second.release_id
    fc = r.get_json()
    assert fc["numberMatched"] == second.layers["sewer_pipes"].features > \
        first.layers["sewer_pipes"].features
    assert all(f["properties"]["install_fy"] >= 2080 for f in fc["features"])
    coll = get_json(client, "/api/collections/sewer_pipes?f=json&lang=ja")
    assert "2025-06-30" in coll["description"]
    assert "2025-06-30" in client.get("/").get_data(as_text=True)
    assert "2025-06-30" in client.get("/api/collections?f=html&lang=ja").get_data(as_text=True)


def test_base_url_override_rewrites_links(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    project, _, _ = env
    other = "http://localhost:8123/gis"
    client = create_app(project, base_url=other).test_client()
    landing = get_json(client, "/api?f=json")
    assert all(link["href"].startswith(f"{other}/api") for link in landing["links"]
               if link["rel"] in ("self", "alternate", "data", "conformance"))
    fc = get_json(client, "/api/collections/shelters/items?limit=2")
    assert next(link for link in fc["links"] if link["rel"] == "next")["href"].startswith(
        f"{other}/api/collections/shelters/items?offset=2")
    assert get_json(client, "/api/openapi?f=json")["servers"][0]["url"] == f"{other}/api"
    assert f"{other}/api/collections?f=html" in client.get("/").get_data(as_text=True)
    with pytest.raises(PublishError, match="base_url"):
        create_app(project, base_url="ftp://x")


def test_only_the_pipe_sheet_process_is_exposed(
        env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, _, client = env
    r = client.get("/api/processes?f=json")
    assert r.status_code == 200
    assert [p["id"] for p in r.get_json()["processes"]] == ["pipe-sheet"]
    assert client.post("/api/processes/hello-world/execution", json={}).status_code == 404
    big = client.post("/api/processes/pipe-sheet/execution", data="x" * 5000,
                      content_type="application/json")
    assert big.status_code == 413
    assert big.get_json()["description"] == text("err_body_too_large", limit=4096)
    assert 'id="pipe-sheet"' in client.get("/").get_data(as_text=True)


EXAMPLE = '{"inputs": {"oaza": "...", "chiban": "123-4"}}'


@pytest.mark.parametrize(("body", "key", "kw"), [
    (b"", "err_body_missing", {}),
    (b"[]", "err_body_object", {"got": "list"}),
    (b"null", "err_body_object", {"got": "null"}),
    (b"42", "err_body_object", {"got": "int"}),
    (b'"oaza"', "err_body_object", {"got": "str"}),
    ("{\"inputs\": {\"oaza\": \"本町\"}}".encode("cp932"), "err_body_encoding", {}),
    (b"\xff\xfe{\x00}", "err_body_encoding", {}),
    (b'{"inputs": [1, 2]}', "err_inputs_object", {}),
    (b'{"inputs": null}', "err_inputs_object", {}),
    (b'{"inputs": {"oaza": ["a"]}}', "err_input_value", {"key": "oaza"}),
    (b'{"inputs": {}, "subscriber": {"successUri": "http://127.0.0.1:9/x"}}', "err_body_key",
     {"key": "subscriber", "allowed": "inputs, outputs, response"}),
    (b'{"inputs": {}, "response": 7}', "err_body_key",
     {"key": "response", "allowed": "inputs, outputs, response"}),
])
def test_process_body_is_checked(env: tuple[Project, PublishResult, FlaskClient], body: bytes,
                                 key: str, kw: dict[str, str]) -> None:
    """Bodies pygeoapi 0.21 answers with a 500 are a 400 naming the problem and an example."""
    _, _, client = env
    r = client.post("/api/processes/pipe-sheet/execution", data=body,
                    content_type="application/json")
    assert r.status_code == 400, (body, r.get_data()[:300])
    assert r.get_json()["description"] == text(key, example=EXAMPLE, **kw)


def test_process_bad_json_and_missing_inputs(
        env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, _, client = env
    r = client.post("/api/processes/pipe-sheet/execution", data=b'{"inputs": {',
                    content_type="application/json")
    assert r.status_code == 400
    assert r.get_json()["description"] == text(
        "err_body_json", detail="JSONDecodeError: line 1", example=EXAMPLE)
    r = client.post("/api/processes/pipe-sheet/execution", json={"inputs": {"oaza": "本町"}})
    assert r.status_code == 400
    assert text("err_input_missing", key="chiban") in r.get_json()["description"]


# ---------------------------------------------------------------- links follow the request

@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, PublishResult]:
    """A default publish: no base_url, no pipe-sheet roles."""
    project = make_project(tmp_path_factory.mktemp("plain"), base_url=None)
    return project, publish(project, site_builders=[demo_maps])


def hrefs(doc: Any) -> list[str]:
    """Every link of a JSON document into this service (``href`` and OpenAPI ``servers.url``
    values that contain ``/api`` or ``/terms``; contact and licence URLs are the city's own)."""
    out: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if (k in ("href", "url") and isinstance(v, str) and v.startswith("http")
                    and ("/api" in v or "/terms" in v)):
                out.append(v)
            else:
                out += hrefs(v)
    elif isinstance(doc, list):
        for v in doc:
            out += hrefs(v)
    return out


def test_links_follow_the_host(plain: tuple[Project, PublishResult]) -> None:
    project, _ = plain
    client = create_app(project).test_client()
    for host, root in (("example.test", "http://example.test"),
                       ("127.0.0.1:8123", "http://127.0.0.1:8123")):
        hdr = {"Host": host}
        links = hrefs(get_json(client, "/api?f=json", headers=hdr))
        assert f"{root}/api/conformance" in links and f"{root}/api?f=html" in links
        assert all(h.startswith(f"{root}/") for h in links), links
        fc = get_json(client, "/api/collections/sewer_pipes/items?limit=2", headers=hdr)
        nxt = next(link["href"] for link in fc["links"] if link["rel"] == "next")
        assert nxt.startswith(f"{root}/api/collections/sewer_pipes/items?")
        assert get_json(client, "/api/openapi?f=json", headers=hdr)["servers"][0]["url"] \
            == f"{root}/api"
        coll = get_json(client, "/api/collections/sewer_pipes?f=json", headers=hdr)
        assert f"{root}/terms" in hrefs(coll)
        html = client.get("/api/collections?f=html", headers=hdr).get_data(as_text=True)
        assert f'href="{root}/api/collections/sewer_pipes"' in html
        landing = client.get("/", headers=hdr).get_data(as_text=True)
        assert f'href="{root}/api/collections?f=html"' in landing
        assert f'href="{root}/maps/sewer.html"' in landing
        for url in ("/api?f=json", "/api/collections?f=html", "/api/openapi?f=html", "/"):
            assert "public-url.invalid" not in client.get(url, headers=hdr).get_data(
                as_text=True), url


def test_forwarded_headers_only_from_a_trusted_proxy(plain: tuple[Project, PublishResult]
                                                     ) -> None:
    project, _ = plain
    fwd = {"Host": "127.0.0.1:5000", "X-Forwarded-Proto": "https",
           "X-Forwarded-Host": "gis.example.test", "X-Forwarded-Prefix": "/gis"}
    untrusted = create_app(project).test_client()
    links = hrefs(get_json(untrusted, "/api?f=json", headers=fwd))
    assert links and all(h.startswith("http://127.0.0.1:5000/api") for h in links)
    proxied = public_copy(project, project.public_dir, trusted_proxies=["127.0.0.0/8"])
    client = create_app(proxied).test_client()
    links = hrefs(get_json(client, "/api?f=json", headers=fwd))
    assert links and all(h.startswith("https://gis.example.test/gis/api") for h in links)
    # a proxy address that is not the peer's: ignored again
    other = public_copy(project, project.public_dir, trusted_proxies=["10.1.2.3"])
    links = hrefs(get_json(create_app(other).test_client(), "/api?f=json", headers=fwd))
    assert all(h.startswith("http://127.0.0.1:5000/api") for h in links)
    with pytest.raises(PublishError, match="trusted_proxies"):
        create_app(public_copy(project, project.public_dir, trusted_proxies=["proxy.lan"]))


@pytest.mark.parametrize("host", ['evil.test"><script>', "a b", "x/y", "[::1", "-x.test"])
def test_a_bad_host_header_is_a_400(plain: tuple[Project, PublishResult], host: str) -> None:
    project, _ = plain
    client = create_app(project).test_client()
    for url in ("/", "/api?f=json", "/api/collections"):
        r = client.get(url, headers={"Host": host})
        assert r.status_code == 400, (host, url)
        assert "<script>" not in r.get_data(as_text=True)


def test_no_roles_no_process(plain: tuple[Project, PublishResult]) -> None:
    """Without a parcel and a pipe layer there is no pipe sheet anywhere."""
    project, res = plain
    client = create_app(project).test_client()
    assert get_json(client, "/api/processes?f=json")["processes"] == []
    assert client.get("/api/processes/pipe-sheet?f=json").status_code == 404
    r = client.post("/api/processes/pipe-sheet/execution", json={"inputs": {"oaza": "x"}})
    assert r.status_code == 404
    assert not any("/processes" in p for p in get_json(client, "/api/openapi?f=json")["paths"])
    assert "pipe-sheet" not in res.config.read_text(encoding="utf-8")
    assert 'id="pipe-sheet"' not in client.get("/").get_data(as_text=True)
    assert json.loads((res.path / "release.json").read_text())["processes"] == []


def test_pygeoapi_pages_follow_each_release(tmp_path: Path) -> None:
    """pygeoapi caches the translated config per locale for its HTML: each release's own."""
    project = make_project(tmp_path, base_url=None)
    first = publish(project)
    client = create_app(project).test_client()
    assert "魚津市 公開型GIS" in client.get("/api?f=html&lang=ja").get_data(as_text=True)
    assert "Uozu City public GIS" in client.get("/api?f=html&lang=en").get_data(as_text=True)
    assert client.get("/api/collections/nope?f=html").status_code == 404  # cached, first release
    renamed = public_copy(project, project.public_dir,
                          title=I18nText(ja="改名後GIS", en="Renamed GIS"))
    second = publish(renamed)
    assert second.release_id != first.release_id
    ja_ = client.get("/api?f=html&lang=ja").get_data(as_text=True)
    en_ = client.get("/api?f=html&lang=en").get_data(as_text=True)
    assert "改名後GIS" in ja_ and "魚津市 公開型GIS" not in ja_
    assert "Renamed GIS" in en_ and "Uozu City public GIS" not in en_
    err = client.get("/api/collections/nope?f=html")
    assert err.status_code == 404 and "Renamed GIS" in err.get_data(as_text=True)


# ---------------------------------------------------------------- another city

def test_the_citys_own_plane_zone(tmp_path: Path) -> None:
    """A city in zone IV: ``?crs=`` of its zone is a 200 with easting/northing right."""
    from pyproj import Transformer

    project = make_project(tmp_path, city=OTHER_CITY, roles=True)
    res = publish(project)
    client = create_app(project).test_client()
    coll = get_json(client, "/api/collections/shelters?f=json")
    zone = "http://www.opengis.net/def/crs/EPSG/0/6672"
    assert zone in coll["crs"] and "http://www.opengis.net/def/crs/EPSG/0/6675" not in coll["crs"]
    from publish.build.public_store import locate_master
    master = locate_master(project).read_layer("shelters")
    assert master.crs.to_epsg() == 6672
    for _, row in master.head(3).iterrows():
        fid = row["shelter_id"]
        r = client.get(f"/api/collections/shelters/items/{fid}?f=json&crs={zone}")
        assert r.status_code == 200 and r.headers["Content-Crs"] == f"<{zone}>"
        x, y = r.get_json()["geometry"]["coordinates"]  # EPSG:6672 axis order: X north, Y east
        assert abs(x - row.geometry.y) < 0.02 and abs(y - row.geometry.x) < 0.02
        lon, lat = get_json(client, f"/api/collections/shelters/items/{fid}?f=json")[
            "geometry"]["coordinates"]
        e, n = Transformer.from_crs("OGC:CRS84", "EPSG:6672", always_xy=True).transform(lon, lat)
        assert abs(e - row.geometry.x) < 0.02 and abs(n - row.geometry.y) < 0.02
    uozu_zone = quote("http://www.opengis.net/def/crs/EPSG/0/6675")
    assert client.get(f"/api/collections/shelters/items?crs={uozu_zone}").status_code == 400
    for path in (res.config, res.openapi):
        body = path.read_text(encoding="utf-8")
        for literal in ("EPSG/0/6675", "EPSG:6675", "魚津", "Uozu", "uozu", "162043"):
            assert literal not in body, (literal, path)


def sheet_text(client: FlaskClient, tmp_path: Path, host: str) -> str:
    import subprocess

    r = client.post("/api/processes/pipe-sheet/execution",
                    json={"inputs": {"oaza": "本町", "chiban": "10-0"}}, headers={"Host": host})
    assert r.status_code == 200 and r.data.startswith(b"%PDF"), r.get_data()[:300]
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(r.data)
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                         check=True).stdout
    return out.replace("\n", "")  # the printed URL wraps over lines


def test_pipe_sheet_links_follow_the_request(env: tuple[Project, PublishResult, FlaskClient],
                                            tmp_path: Path) -> None:
    """The sheet's printed link (and QR code) names the host the client used, or base_url."""
    project = make_project(tmp_path / "p", base_url=None, roles=True)
    publish(project)
    printed = sheet_text(create_app(project).test_client(), tmp_path, "gis.example.test:8080")
    assert "http://gis.example.test:8080/maps/pipe.html" in printed
    assert "127.0.0.1" not in printed and "public-url.invalid" not in printed
    _, _, fixed = env  # publish.base_url is set there: it wins over the Host header
    printed = sheet_text(fixed, tmp_path, "gis.example.test:8080")
    assert "http://127.0.0.1:5000/maps/pipe.html" in printed and "example.test" not in printed
