"""Route fuzz: every public route with NUL, huge, malformed and non-UTF-8 input is a 4xx.

Also the crawl of those error answers: none may contain a path of this machine (the project,
the release folder, the code, the virtualenv, the temporary folder), on either store.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import store_for
from flask.testing import FlaskClient
from publish_fixtures import isolated_site_builders, make_project
from stores import STORES

from config import Project
from publish.build import PublishResult, publish
from publish.server.app import create_app

REPO = Path(__file__).resolve().parent.parent

#: values put into path segments, query values and process inputs
BAD = [
    "\x00", "a\x00b", "%00", "x" * 5000, "日本語" * 700, "%", "%zz", "%ff%fe", "\u00ff\ufffe",
    "../../../../etc/passwd", "..%2f..%2fconfig", "'\"<script>{}[]", "-1", "1e999", "NaN",
    "９９", ",,,", " ", "\r\nX-Injected: 1",
]
ITEM_PARAMS = ["f", "lang", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "sortby",
               "properties", "filter", "filter-lang", "filter-crs", "skipGeometry", "q",
               "district", "diameter_mm", "resulttype"]
PAGES = ["/", "/terms", "/healthz", "/api", "/api/openapi", "/api/conformance",
         "/api/collections", "/api/collections/sewer_pipes", "/api/collections/shelters/items",
         "/api/collections/sewer_pipes/queryables", "/api/collections/sewer_pipes/schema",
         "/api/processes", "/api/processes/pipe-sheet", "/maps/sewer.html"]
SEGMENTS = ["/maps/{v}", "/maps/{v}.html", "/static/{v}", "/api/static/{v}", "/{v}", "/api/{v}",
            "/api/collections/{v}", "/api/collections/{v}/items",
            "/api/collections/sewer_pipes/items/{v}", "/api/collections/shelters/items/{v}",
            "/api/collections/{v}/queryables", "/api/collections/{v}/schema",
            "/api/processes/{v}"]
# a path of this machine: /tmp/..., /work/..., /usr/... (not inside a URL or after '..')
ABS_PATH = re.compile(r"(?<![\w.:/%-])/(?:tmp|work|home|srv|var|usr|opt|root|etc|proc)/")


@pytest.fixture(scope="module", autouse=True)
def _only_our_site_builders() -> Iterator[None]:
    with isolated_site_builders():
        yield


def one_page(ctx: Any) -> None:
    (ctx.site_dir / "maps" / "sewer.html").write_text("<html>下水道</html>", encoding="utf-8")


@pytest.fixture(scope="module", params=STORES)
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> tuple[Project, PublishResult, FlaskClient]:
    project = make_project(tmp_path_factory.mktemp("fuzz"), base_url=None, roles=True,
                           store=store_for(request, request.param))
    res = publish(project, site_builders=[one_page])
    return project, res, create_app(project).test_client()


def machine_paths(project: Project) -> list[str]:
    return sorted({str(p) for p in (project.root, project.public_dir, REPO, Path(sys.prefix),
                                    Path(tempfile.gettempdir()))}, key=len, reverse=True)


def check(client: FlaskClient, project: Project, method: str, url: str, seen: list[str],
          **kw: Any) -> None:
    r = client.open(url, method=method, **kw)
    body = r.get_data()
    text = body.decode("utf-8", "replace")
    where = f"{method} {url[:120]!r} -> {r.status_code}"
    assert r.status_code < 500, (where, text[:400])
    for p in machine_paths(project):
        assert p not in text, (where, p)
    assert not ABS_PATH.search(text), (where, ABS_PATH.search(text))
    assert "X-Injected" not in r.headers
    seen.append(where)


def test_every_route_answers_bad_input_with_a_4xx(env: tuple[Project, PublishResult,
                                                             FlaskClient]) -> None:
    project, _, client = env
    seen: list[str] = []
    for v in BAD:
        for seg in SEGMENTS:
            check(client, project, "GET", seg.format(v=v), seen)
        for p in ITEM_PARAMS:
            check(client, project, "GET", "/api/collections/sewer_pipes/items",
                  seen, query_string={p: v})
        for page in PAGES:
            check(client, project, "GET", page, seen, query_string={"f": v, "lang": v})
        header = v.replace("\r", "").replace("\n", "").encode("utf-8").decode("latin-1")
        check(client, project, "GET", "/api/collections/sewer_pipes/items", seen,
              headers={"Accept-Language": header, "Accept": header})
        raw = v.encode("utf-8")
        for body in (raw, b"\xff\xfe" + raw, b'{"inputs": {"oaza": "\xff\xfe"}}',
                     b'{"inputs": {"oaza": "' + raw + b'", "chiban": "' + raw + b'"}}',
                     b'{"inputs": {"oaza": "x", "chiban": "1", "scale": "' + raw + b'"}}',
                     b'{"inputs": {"oaza": "x", "chiban": "1", "paper": "' + raw + b'"}}'):
            check(client, project, "POST", "/api/processes/pipe-sheet/execution", seen,
                  data=body, content_type="application/json")
    for body in (b"\xff" * 4096, b"{" * 4000, b"[" * 4000, b'{"inputs": ' * 400 + b"}"):
        check(client, project, "POST", "/api/processes/pipe-sheet/execution", seen, data=body,
              content_type="application/json")
    for method in ("PUT", "DELETE", "PATCH", "POST", "TRACE"):
        check(client, project, method, "/api/collections/sewer_pipes/items", seen,
              data=b"\x00\xff")
    assert len(seen) > 800, len(seen)


def test_a_nul_in_a_map_path_is_a_404(env: tuple[Project, PublishResult, FlaskClient]) -> None:
    _, _, client = env
    for url in ("/maps/sewer.html%00.gpkg", "/maps/sewer.html\x00.gpkg", "/maps/%00",
                "/maps/" + "a" * 4000 + ".html"):
        r = client.get(url)
        assert r.status_code == 404, url
        page = r.get_data(as_text=True)
        assert "ページがありません" in page and "page not found" in page


def test_process_errors_name_no_server_path(env: tuple[Project, PublishResult, FlaskClient]
                                            ) -> None:
    """The sheet of an unknown parcel: a bilingual 400 without the store's path."""
    project, res, client = env
    r = client.post("/api/processes/pipe-sheet/execution",
                    json={"inputs": {"oaza": "存在しない町", "chiban": "1"}})
    assert r.status_code == 400
    desc = r.get_json()["description"]
    assert " / " in desc and str(res.path) not in desc and str(project.root) not in desc
    assert not ABS_PATH.search(desc), desc


# ---------------------------------------------------------------- what a release answers
# (open data, change feeds, changes since, the walk-route process): a real city's release,
# published twice so the change feed has a previous release to compare with

ANSWER_SEGMENTS = ["/opendata/{v}", "/opendata/{v}.csv", "/opendata/{v}.gpkg",
                   "/opendata/{v}.geojson", "/changes/{v}", "/changes/{v}.atom",
                   "/changes/{v}.json"]
ANSWER_PAGES = ["/opendata/index.json", "/changes/changes.json", "/api/processes/walk-route"]
ROUTE_URL = "/api/processes/walk-route/execution"


@pytest.fixture(scope="module", params=STORES)
def answers_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Project, PublishResult, FlaskClient]:
    from conftest import make_uozu_project
    from stores import set_store_in_file

    from config import load_project
    from etl.pipeline import run_merge

    root = make_uozu_project(tmp_path_factory.mktemp("fuzz-answers"), scale=0.05)
    set_store_in_file(root, store_for(request, request.param))
    project = load_project(root)
    run_merge(project)
    publish(project)
    res = publish(project)
    assert {"walk-route"} <= set(json.loads((res.path / "release.json").read_text())
                                 ["processes"])
    return project, res, create_app(project).test_client()


def _changes_layer(res: PublishResult) -> str:
    return sorted(p.stem for p in (res.path / "changes").glob("*.atom"))[0]


def test_answer_routes_answer_bad_input_with_a_4xx(
        answers_env: tuple[Project, PublishResult, FlaskClient]) -> None:
    """/opendata/<file>, /changes/<file>, /api/changes?since=&bbox=&layers= and the walk-route
    process with NUL, huge, malformed and non-UTF-8 input: a 2xx or a 4xx, never a 5xx, never a
    path of this machine."""
    project, res, client = answers_env
    layer = _changes_layer(res)
    seen: list[str] = []

    def ok(method: str, url: str, **kw: Any) -> None:
        check(client, project, method, url, seen, **kw)
        code = int(seen[-1].rsplit(" ", 1)[1])
        assert 200 <= code < 300 or 400 <= code < 500, seen[-1]

    for v in BAD:
        for seg in ANSWER_SEGMENTS:
            ok("GET", seg.format(v=v))
        for page in ANSWER_PAGES:
            ok("GET", page, query_string={"f": v, "lang": v})
        for q in ({"since": v}, {"since": "2020-01-01", "bbox": v},
                  {"since": "2020-01-01", "layers": v}, {"since": "2020-01-01", "limit": v},
                  {"since": v, "bbox": v, "layers": v}, {"since": "2020-01-01",
                                                         "layers": ",".join([layer] * 60)},
                  {"since": "2020-01-01", "layers": layer, "bbox": f"{v},{v},{v},{v}"}):
            ok("GET", "/api/changes", query_string=q)
        raw = v.encode("utf-8")
        for body in (raw, b"\xff\xfe" + raw, b"[]", b"null", b'"' + raw + b'"',
                     b'{"inputs": ' + raw + b"}", b'{"inputs": {"lon": "\xff\xfe"}}',
                     b'{"inputs": {"lon": "' + raw + b'", "lat": "' + raw + b'", "kind": "'
                     + raw + b'"}}',
                     b'{"inputs": {"lon": 137.4, "lat": 36.8, "kind": "' + raw + b'"}}',
                     b'{"inputs": {"lon": 1e400, "lat": -1e400, "kind": null}}',
                     b'{"inputs": {"lon": [137.4], "lat": {"a": 1}, "kind": []}}'):
            ok("POST", ROUTE_URL, data=body, content_type="application/json")
            ok("POST", ROUTE_URL, data=body, content_type="text/plain")
    for body in (b"\xff" * 4096, b"{" * 4000, b"[" * 4000, b'{"inputs": ' * 400 + b"}",
                 b'{"inputs": {"lon": ' + b"9" * 5000 + b', "lat": 36.8, "kind": "x"}}',
                 b'{"inputs": {"lon": 137.4, "lat": 36.8, "kind": "' + b"x" * 200_000 + b'"}}'):
        ok("POST", ROUTE_URL, data=body, content_type="application/json")
    for method in ("PUT", "DELETE", "PATCH", "POST"):
        ok(method, "/api/changes", data=b"\x00\xff")
        ok(method, f"/opendata/{layer}.csv", data=b"\x00\xff")
        ok(method, f"/changes/{layer}.atom", data=b"\x00\xff")
    assert len(seen) > 700, len(seen)
    # the well-formed requests still answer (the fuzz did not break the worker)
    assert client.get(f"/changes/{layer}.atom").status_code == 200
    assert client.get("/api/changes", query_string={"since": "2020-01-01"}).status_code == 200
    assert client.get("/opendata/index.json").status_code == 200
