"""What goes over the wire (publish/server/transfer.py): compression, cache headers, revalidation
and range requests, for every kind of answer the public server gives.

Two levels: a small Flask app wrapped in the middleware (each rule alone, exact bytes), then the
real server (``create_app``) over a published project with map pages, tiles and pygeoapi: every
kind of response (landing page, terms, map page, its data, its tiles, static files, API JSON,
GeoJSON, HTML, errors, the sheet POST) checked for encoding, caching and validators.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import brotli
import pytest
from flask import Flask, Response, send_from_directory
from publish_fixtures import make_project

from publish.server.transfer import IMMUTABLE, NO_STORE, REVALIDATE, STATIC_DAY, Transfer

BR = {"Accept-Encoding": "gzip, deflate, br"}
GZ = {"Accept-Encoding": "gzip"}
TEXT = ("地番 管路 " * 400).encode("utf-8")  # compressible, > MIN_SIZE


def decode(r: Any) -> bytes:
    enc = r.headers.get("Content-Encoding")
    raw = r.get_data()
    return {"br": brotli.decompress, "gzip": gzip.decompress}.get(enc, lambda b: b)(raw)


@pytest.fixture
def small(tmp_path: Path) -> Any:
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_bytes(b"var x = 1;\n" * 200)
    (static / "pin.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 4)
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    blob = bytes(range(256)) * 400  # 102 400 bytes
    (tiles / "page.0123456789.pmtiles").write_bytes(blob)
    app = Flask(__name__, static_folder=str(static), static_url_path="/static")
    stamp = iter(range(10**6))

    @app.get("/page")
    def page() -> Any:
        return Response(TEXT, mimetype="text/html")

    @app.get("/tiles/<name>")
    def tile(name: str) -> Any:
        return send_from_directory(tiles, name)

    @app.get("/api/items")
    def items() -> Any:  # pygeoapi puts a time stamp in every answer
        body = json.dumps({"features": [{"n": "管路"}] * 100, "timeStamp": next(stamp)})
        return Response(body, mimetype="application/geo+json", headers={"X-Release": "R1"})

    @app.post("/api/run")
    def run() -> Any:
        return Response(b"%PDF-1.4" + b"0" * 2000, mimetype="application/pdf")

    @app.get("/missing")
    def missing() -> Any:
        return Response(TEXT, status=404, mimetype="text/html")

    app.wsgi_app = Transfer(app.wsgi_app)  # type: ignore[method-assign]
    js_hash = hashlib.sha256((static / "app.js").read_bytes()).hexdigest()[:10]
    return app.test_client(), js_hash, blob


def test_text_is_compressed_as_the_client_accepts(small: Any) -> None:
    c, _, _ = small
    br = c.get("/page", headers=BR)
    gz = c.get("/page", headers=GZ)
    plain = c.get("/page", headers={"Accept-Encoding": "identity"})
    assert (br.headers["Content-Encoding"], gz.headers["Content-Encoding"]) == ("br", "gzip")
    assert "Content-Encoding" not in plain.headers
    assert decode(br) == decode(gz) == plain.get_data() == TEXT
    assert int(br.headers["Content-Length"]) == len(br.get_data()) < len(TEXT) // 10
    for r in (br, gz, plain):
        assert r.headers["Vary"] == "Accept-Encoding"
        assert r.headers["Cache-Control"] == REVALIDATE
    # one representation, one tag per encoding
    assert len({br.headers["ETag"], gz.headers["ETag"], plain.headers["ETag"]}) == 3
    assert br.headers["ETag"].endswith('-br"') and gz.headers["ETag"].endswith('-gzip"')


def test_pages_and_data_revalidate_with_304(small: Any) -> None:
    c, _, _ = small
    first = c.get("/page", headers=BR)
    again = c.get("/page", headers={**BR, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Cache-Control"] == REVALIDATE
    # another encoding's tag does not validate this one
    other = c.get("/page", headers={**GZ, "If-None-Match": first.headers["ETag"]})
    assert other.status_code == 200 and decode(other) == TEXT
    # API answers differ byte for byte (time stamps) but are one answer per release and request
    a = c.get("/api/items?limit=5", headers=BR)
    b = c.get("/api/items?limit=5", headers=BR)
    assert a.get_data() != b.get_data() and a.headers["ETag"] == b.headers["ETag"]
    assert c.get("/api/items?limit=5", headers={**BR, "If-None-Match": a.headers["ETag"]}
                 ).status_code == 304
    assert c.get("/api/items?limit=6", headers={**BR, "If-None-Match": a.headers["ETag"]}
                 ).status_code == 200
    assert json.loads(decode(a))["features"][0]["n"] == "管路"


def test_static_files_are_immutable_only_when_fingerprinted(small: Any) -> None:
    c, js_hash, _ = small
    good = c.get(f"/static/app.js?v={js_hash}", headers=BR)
    assert good.headers["Cache-Control"] == IMMUTABLE and good.headers["Content-Encoding"] == "br"
    assert decode(good) == b"var x = 1;\n" * 200
    # a page of an older build names a hash the file no longer has: never cached for a year
    assert c.get("/static/app.js?v=0000000000", headers=BR).headers["Cache-Control"] == REVALIDATE
    assert c.get("/static/app.js", headers=BR).headers["Cache-Control"] == STATIC_DAY
    png = c.get("/static/pin.png", headers=BR)  # binary: never compressed
    assert "Content-Encoding" not in png.headers and png.headers["Cache-Control"] == STATIC_DAY
    # Last-Modified revalidation of a file
    lm = good.headers["Last-Modified"]
    assert c.get("/static/app.js", headers={**BR, "If-Modified-Since": lm}).status_code == 304


def test_tiles_answer_range_requests_uncompressed_and_immutable(small: Any) -> None:
    c, _, blob = small
    r = c.get("/tiles/page.0123456789.pmtiles", headers={**BR, "Range": "bytes=16384-16483"})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes 16384-16483/{len(blob)}"
    assert r.get_data() == blob[16384:16484]
    assert "Content-Encoding" not in r.headers
    assert r.headers["Cache-Control"] == IMMUTABLE
    tail = c.get("/tiles/page.0123456789.pmtiles", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.get_data() == blob[-10:]
    full = c.get("/tiles/page.0123456789.pmtiles", headers=BR)
    assert full.status_code == 200 and full.get_data() == blob
    assert "Content-Encoding" not in full.headers
    bad = c.get("/tiles/page.0123456789.pmtiles", headers={"Range": f"bytes={len(blob)}-"})
    assert bad.status_code == 416


def test_errors_and_posts_are_never_stored(small: Any) -> None:
    c, _, _ = small
    r = c.get("/missing", headers=BR)
    assert r.status_code == 404 and r.headers["Cache-Control"] == NO_STORE
    p = c.post("/api/run", headers=BR)
    assert p.headers["Cache-Control"] == NO_STORE and "Content-Encoding" not in p.headers
    assert p.get_data().startswith(b"%PDF")


# ---------------------------------------------------------------------------------------------
# The real server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from publish.build import publish
    from publish.server.app import create_app

    project = make_project(tmp_path_factory.mktemp("transfer"), roles=True, n_pipes=60)
    res = publish(project)
    return create_app(project).test_client(), res


def test_every_kind_of_answer_of_the_real_server(site: Any) -> None:
    c, res = site
    html = c.get("/maps/pipe.html", headers=BR)
    assert html.status_code == 200 and html.headers["Content-Encoding"] == "br"
    page = decode(html).decode("utf-8")
    manifest = json.loads(decode(c.get("/maps/tiles/pipe.json", headers=BR)))
    tiles = "/maps/" + manifest["url"]
    assert re.search(r"/maps/tiles/pipe\.[0-9a-f]{10}\.pmtiles$", tiles)
    assert f'"url":"{manifest["url"]}"' in page
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert assets and all(re.search(r"\?v=[0-9a-f]{10}$", a) for a in assets), assets
    # every script is deferred (the page paints before any script runs); no data in the page
    scripts = re.findall(r"<script ([^>]*)>", page)
    assert [x for x in scripts if "src=" in x and "defer" not in x] == []
    assert len(page) < 60_000
    expect = {
        "/": ("br", REVALIDATE), "/terms": ("br", REVALIDATE),
        "/maps/pipe.html": ("br", REVALIDATE), "/maps/tiles/pipe.json": ("br", REVALIDATE),
        "/api?f=json": ("br", REVALIDATE), "/api/collections?f=html": ("br", REVALIDATE),
        "/api/collections/sewer_pipes/items?f=json&limit=50": ("br", REVALIDATE),
        "/api/openapi?f=json": ("br", REVALIDATE),
        "/healthz": (None, NO_STORE),
    }
    expect.update({a: ("br", IMMUTABLE) for a in assets})
    for url, (enc, cc) in expect.items():
        r = c.get(url, headers=BR)
        assert r.status_code == 200, url
        assert r.headers["Cache-Control"] == cc, url
        if enc and len(decode(r)) >= 512:
            assert r.headers["Content-Encoding"] == enc, url
            assert r.headers["Vary"] == "Accept-Encoding", url
        if cc == REVALIDATE:
            tag = r.headers["ETag"]
            again = c.get(url, headers={**BR, "If-None-Match": tag})
            assert again.status_code == 304, url
    gz = c.get("/api/collections/sewer_pipes/items?f=json&limit=50", headers=GZ)
    assert gz.headers["Content-Encoding"] == "gzip"
    assert len(json.loads(decode(gz))["features"]) == min(50, res.counts["sewer_pipes"])
    # the tiles: ranges, never compressed, immutable
    head = c.get(tiles, headers={**BR, "Range": "bytes=0-126"})
    assert head.status_code == 206 and head.get_data()[:7] == b"PMTiles"
    assert head.headers["Cache-Control"] == IMMUTABLE and "Content-Encoding" not in head.headers
    size = (res.path / "site" / "maps" / manifest["url"]).stat().st_size
    assert head.headers["Content-Range"] == f"bytes 0-126/{size}"
    # errors: never stored, bilingual
    for url in ("/maps/none.html", "/api/collections/none?f=json", "/static/none.js"):
        r = c.get(url, headers=BR)
        assert r.status_code == 404 and r.headers["Cache-Control"] == NO_STORE, url
