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
    QUOTE_DISTRICT,
    SECRETS,
    isolated_site_builders,
    make_project,
    sample_frames,
    write_master,
    write_project,
)
from stores import STORES

from config import Project
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
    project = make_project(tmp_path_factory.mktemp("app"), store=store_for(request, request.param))
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
    assert client.post("/api/processes/hello-world/execution", json={}).status_code == 405
    big = client.post("/api/processes/pipe-sheet/execution", data="x" * 5000,
                      content_type="application/json")
    assert big.status_code == 413
