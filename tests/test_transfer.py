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
import http.client
import json
import os
import random
import re
from pathlib import Path
from typing import Any

import brotli
import pytest
from flask import Flask, Response, send_from_directory
from publish_fixtures import make_project

from publish.build import precompress
from publish.errors import PublishError
from publish.server import transfer
from publish.server.transfer import (
    BEST_BELOW,
    IMMUTABLE,
    NO_STORE,
    REVALIDATE,
    STATIC_DAY,
    STREAM_ABOVE,
    Transfer,
    compressible,
)

BR = {"Accept-Encoding": "gzip, deflate, br"}
GZ = {"Accept-Encoding": "gzip"}
TEXT = ("地番 管路 " * 400).encode("utf-8")  # compressible, > MIN_SIZE
ATOM = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        + "<entry><title>管路 変更</title></entry>" * 100 + "</feed>").encode("utf-8")


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

    @app.get("/feed.atom")
    def feed() -> Any:
        return Response(ATOM, mimetype="application/atom+xml")

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


def test_text_media_types_of_every_kind_are_compressible() -> None:
    for ctype in ("text/html; charset=utf-8", "text/csv", "application/json",
                  "application/geo+json", "application/atom+xml", "application/rss+xml",
                  "application/atom+xml; charset=utf-8", "application/problem+json",
                  "application/schema+json", "application/ld+json", "application/gml+xml",
                  "application/vnd.oai.openapi+json;version=3.0", "application/vnd.oai.openapi",
                  "application/javascript", "application/xml", "image/svg+xml",
                  "application/x-yaml"):
        assert compressible(ctype), ctype
    for ctype in ("image/png", "application/pdf", "application/vnd.pmtiles", "font/woff2",
                  "application/geopackage+sqlite3", "application/octet-stream",
                  "application/x-protobuf", "application/zip", ""):
        assert not compressible(ctype), ctype


def test_atom_feeds_are_compressed(small: Any) -> None:
    c, _, _ = small
    r = c.get("/feed.atom", headers=BR)
    assert r.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert r.headers["Content-Encoding"] == "br" and r.headers["Vary"] == "Accept-Encoding"
    assert decode(r) == ATOM
    assert c.get("/feed.atom", headers={**BR, "If-None-Match": r.headers["ETag"]}
                 ).status_code == 304


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
    with pytest.MonkeyPatch.context() as mp:  # this small release's pages get copies too
        mp.setattr(precompress, "MIN_SIZE", 8 * 1024)
        res = publish(project)
    return create_app(project).test_client(), res, project


def test_every_kind_of_answer_of_the_real_server(site: Any) -> None:
    c, res, _ = site
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
    # the site's own pages: every asset fingerprinted (immutable), scripts deferred, lang.js
    # inlined (no blocking request before the first paint)
    for url in ("/", "/terms"):
        text = decode(c.get(url, headers=BR)).decode("utf-8")
        own = re.findall(r'(?:src|href)="(?:https?://[^/"]+)?(/static/[^"]+)"', text)
        assert len(own) == 3, own
        assert all(re.search(r"\?v=[0-9a-f]{10}$", a) for a in own), own
        tags = re.findall(r"<script ([^>]*)>", text)
        assert [x for x in tags if "src=" in x and "defer" not in x] == [], tags
        assert "window.GisLang" in text
        expect.update({a: ("br", IMMUTABLE) for a in own})
    # pygeoapi's static files: a day, then revalidated (not no-cache on every view)
    expect["/api/static/vendor/bootstrap/bootstrap.min.css"] = ("br", STATIC_DAY)
    expect["/api/static/css/default.css"] = ("br", STATIC_DAY)
    # change feeds: Atom and JSON
    expect["/changes/sewer_pipes.atom"] = ("br", REVALIDATE)
    expect["/changes/sewer_pipes.json"] = ("br", REVALIDATE)
    for url, (enc, cc) in expect.items():
        r = c.get(url, headers=BR)
        assert r.status_code == 200, url
        assert r.headers["Cache-Control"] == cc, url
        if enc and len(decode(r)) >= 512:
            assert r.headers["Content-Encoding"] == enc, url
            assert r.headers["Vary"] == "Accept-Encoding", url
        if cc in (REVALIDATE, STATIC_DAY):
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
    # the release's precompressed copies (written by publish): sent as they are
    copies = {"/" + str(p.relative_to(res.path / "site"))[:-3]: p
              for p in (res.path / "site").rglob("*.br")}
    copies.update({f"/opendata/{p.name[:-3]}": p for p in (res.path / "opendata").glob("*.br")})
    assert "/maps/pipe.html" in copies and "/opendata/sewer_pipes.geojson" in copies
    assert precompress.check_copies(res.path) == 2 * len(copies)
    for rel_url, copy in copies.items():
        r = c.get(rel_url, headers=BR)
        assert r.get_data() == copy.read_bytes(), rel_url
        assert int(r.headers["Content-Length"]) == copy.stat().st_size
        assert c.get(rel_url, headers={**BR, "If-None-Match": r.headers["ETag"]}
                     ).status_code == 304
    # errors: never stored, bilingual
    for url in ("/maps/none.html", "/api/collections/none?f=json", "/static/none.js"):
        r = c.get(url, headers=BR)
        assert r.status_code == 404 and r.headers["Cache-Control"] == NO_STORE, url


# ---------------------------------------------------------------------------------------------
# Large downloads: precompressed at publish, never compressed at the best setting per request


def geojson(n: int, seed: int) -> bytes:
    """A GeoJSON download of ``n`` pipes (varied numbers, so it compresses like real data)."""
    rnd = random.Random(seed)
    feats = [{"type": "Feature", "id": i,
              "properties": {"rid": i, "管種": rnd.choice(["VU", "HP", "DIP"]),
                             "管径": rnd.choice([150, 200, 250, 300]),
                             "延長": round(rnd.random() * 80, 2)},
              "geometry": {"type": "LineString", "coordinates": [
                  [round(137.4 + rnd.random() * 0.1, 7), round(36.8 + rnd.random() * 0.1, 7)]
                  for _ in range(4)]}} for i in range(n)]
    return json.dumps({"type": "FeatureCollection", "features": feats},
                      ensure_ascii=False).encode("utf-8")


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """A release folder as publish leaves it, with its precompressed copies."""
    rdir = tmp_path_factory.mktemp("rel")
    files = {
        "opendata/big.geojson": geojson(20_000, 1),  # multi-MB, above STREAM_ABOVE
        "opendata/mid.geojson": geojson(3_000, 2),  # between BEST_BELOW and STREAM_ABOVE
        "opendata/small.json": geojson(200, 3),  # below BEST_BELOW (and below MIN_SIZE)
        "opendata/big.gpkg": bytes(range(256)) * 2048,  # binary: no copy
        "changes/pipes.atom": ATOM * 300,  # rewritten per request: no copy
        "site/maps/page.html": TEXT * 60,
        "site/maps/tiles/page.0123456789.pmtiles": bytes(range(256)) * 2048,
        "site/maps/.hidden.json": TEXT * 60,
    }
    for name, body in files.items():
        (rdir / name).parent.mkdir(parents=True, exist_ok=True)
        (rdir / name).write_bytes(body)
    assert len(files["opendata/big.geojson"]) > STREAM_ABOVE
    assert BEST_BELOW < len(files["opendata/mid.geojson"]) <= STREAM_ABOVE
    assert len(files["opendata/small.json"]) < precompress.MIN_SIZE == BEST_BELOW
    written = precompress.write_copies(rdir)
    assert sorted(str(p.relative_to(rdir)) for p in written) == [
        "opendata/big.geojson.br", "opendata/big.geojson.gz",
        "opendata/mid.geojson.br", "opendata/mid.geojson.gz",
        "site/maps/page.html.br", "site/maps/page.html.gz"]
    return rdir, files


def test_release_copies_decode_to_their_files(release_dir: tuple[Path, dict[str, bytes]]
                                              ) -> None:
    rdir, files = release_dir
    for name in ("opendata/big.geojson", "opendata/mid.geojson", "site/maps/page.html"):
        src = rdir / name
        br, gz = Path(f"{src}.br"), Path(f"{src}.gz")
        assert brotli.decompress(br.read_bytes()) == gzip.decompress(gz.read_bytes()) == files[name]
        assert br.stat().st_mtime_ns == gz.stat().st_mtime_ns == src.stat().st_mtime_ns
        assert br.stat().st_size < gz.stat().st_size < len(files[name]) // 3
        assert precompress.fresh_copy(str(src), "br") == str(br)
    assert precompress.check_copies(rdir) == 6
    # a copy that is not its file's bytes stops the publication (the leak check reads the files)
    tampered = rdir.parent / "tampered"
    (tampered / "opendata").mkdir(parents=True)
    body = files["opendata/mid.geojson"]
    (tampered / "opendata" / "mid.geojson").write_bytes(body)
    (tampered / "opendata" / "mid.geojson.gz").write_bytes(gzip.compress(body + b" "))
    with pytest.raises(PublishError) as e:
        precompress.check_copies(tampered)
    assert e.value.key == "precompress_mismatch" and "mid.geojson.gz" in str(e.value)
    # a copy cut short (a full disk, say) decodes to a prefix of its file: refused too
    for enc, suffix in precompress.ENCODINGS.items():
        cut = tampered / "opendata" / f"mid.geojson{suffix}"
        for other in (tampered / "opendata").glob("mid.geojson.*"):
            other.unlink()
        cut.write_bytes(precompress.encode(body, enc)[:-40])
        os.utime(cut, ns=((tampered / "opendata" / "mid.geojson").stat().st_atime_ns,
                          (tampered / "opendata" / "mid.geojson").stat().st_mtime_ns))
        with pytest.raises(PublishError) as e:
            precompress.check_copies(tampered)
        assert e.value.key == "precompress_mismatch" and cut.name in str(e.value)


@pytest.fixture
def downloads(release_dir: tuple[Path, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
              ) -> tuple[Any, dict[str, bytes], Path, list[tuple[str, int, int]]]:
    rdir, files = release_dir
    calls: list[tuple[str, int, int]] = []  # (what, body size, brotli quality or gzip level)
    real_br, real_gz = brotli.compress, gzip.compress

    def spy_br(body: bytes, **kw: Any) -> bytes:
        calls.append(("br", len(body), kw["quality"]))
        return real_br(body, **kw)

    def spy_gz(body: bytes, **kw: Any) -> bytes:
        calls.append(("gzip", len(body), kw["compresslevel"]))
        return real_gz(body, **kw)

    real_stream = transfer.compress_stream

    def spy_stream(chunks: Any, enc: str) -> Any:
        calls.append(("stream-" + enc, 0, 0))
        return real_stream(chunks, enc)

    monkeypatch.setattr(transfer.brotli, "compress", spy_br)
    monkeypatch.setattr(transfer.gzip, "compress", spy_gz)
    monkeypatch.setattr(transfer, "compress_stream", spy_stream)
    app = Flask(__name__)

    @app.get("/opendata/<name>")
    def download(name: str) -> Any:
        return send_from_directory(rdir / "opendata", name, mimetype="application/geo+json")

    @app.get("/api/big")
    def big_answer() -> Any:  # an API answer larger than STREAM_ABOVE (no validator of its own)
        return Response(files["opendata/big.geojson"], mimetype="application/geo+json",
                        headers={"X-Release": "R1"})

    app.wsgi_app = Transfer(app.wsgi_app)  # type: ignore[method-assign]
    return app.test_client(), files, rdir, calls


def test_multi_mb_download_is_sent_from_its_precompressed_copy(downloads: Any) -> None:
    c, files, rdir, calls = downloads
    body = files["opendata/big.geojson"]
    for enc, suffix, unpack in (("br", ".br", brotli.decompress), ("gzip", ".gz", gzip.decompress)):
        copy = (rdir / "opendata" / f"big.geojson{suffix}").read_bytes()
        r = c.get("/opendata/big.geojson", headers={"Accept-Encoding": enc})
        assert r.status_code == 200 and r.headers["Content-Encoding"] == enc
        assert r.headers["Content-Type"] == "application/geo+json"
        assert r.headers["Vary"] == "Accept-Encoding" and r.headers["Cache-Control"] == REVALIDATE
        assert int(r.headers["Content-Length"]) == len(copy) and r.get_data() == copy
        assert unpack(r.get_data()) == body
        assert r.headers["ETag"].endswith(f'-{enc}"') and "Accept-Ranges" not in r.headers
        again = c.get("/opendata/big.geojson",
                      headers={"Accept-Encoding": enc, "If-None-Match": r.headers["ETag"]})
        assert again.status_code == 304 and again.get_data() == b""
        assert again.headers["ETag"] == r.headers["ETag"]
    plain = c.get("/opendata/big.geojson", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.get_data() == body
    part = c.get("/opendata/big.geojson", headers={**BR, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.get_data() == body[100:200]
    assert "Content-Encoding" not in part.headers
    assert calls == []  # nothing was compressed in the request path


def test_large_files_without_copies_are_never_compressed_at_the_best_setting(
        downloads: Any) -> None:
    c, files, rdir, calls = downloads
    big = rdir / "opendata" / "big.geojson"
    st = big.stat()
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # changed after publish
    try:
        assert precompress.fresh_copy(str(big), "br") is None  # a stale copy is never sent
        r = c.get("/opendata/big.geojson", headers=BR)
        assert r.headers["Content-Encoding"] == "br" and "Content-Length" not in r.headers
        assert decode(r) == files["opendata/big.geojson"]
        assert calls == [("stream-br", 0, 0)]  # compressed while sent, never held whole
    finally:
        os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
    calls.clear()
    # a file between BEST_BELOW and STREAM_ABOVE without a copy: the fast setting, then kept
    mid = files["opendata/mid.geojson"]
    (rdir / "opendata" / "nocopy.geojson").write_bytes(mid)
    for _ in range(2):
        r = c.get("/opendata/nocopy.geojson", headers=BR)
        assert decode(r) == mid and int(r.headers["Content-Length"]) == len(r.get_data())
    assert calls == [("br", len(mid), 5)]
    calls.clear()
    # a small file: the best setting, once per worker
    for _ in range(2):
        r = c.get("/opendata/small.json", headers=GZ)
        assert decode(r) == files["opendata/small.json"]
    assert calls == [("gzip", len(files["opendata/small.json"]), 9)]
    calls.clear()
    # an API answer above STREAM_ABOVE: streamed; its ETag (from the request) still validates
    r = c.get("/api/big", headers=GZ)
    assert r.headers["Content-Encoding"] == "gzip" and "Content-Length" not in r.headers
    assert decode(r) == files["opendata/big.geojson"]
    assert calls == [("stream-gzip", 0, 0)]
    assert c.get("/api/big", headers={**GZ, "If-None-Match": r.headers["ETag"]}
                 ).status_code == 304


def raw_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_multi_mb_geojson_from_the_running_server(site: Any) -> None:
    """gunicorn (its own file wrapper, sendfile) sends a release's multi-MB GeoJSON from its
    precompressed copy: the encoded length, the exact decoded bytes, 304 on revalidation."""
    from publish.server.app import ServerProcess

    _, res, project = site
    body = geojson(20_000, 7)
    name = "multi_mb.geojson"
    (res.path / "opendata" / name).write_bytes(body)
    try:
        precompress.write_copies(res.path)  # as publish does
        assert precompress.check_copies(res.path) >= 4
        with ServerProcess(project.root, workers=1,
                           log=res.path.parent.parent / "multi_mb.log") as server:
            for enc, unpack in (("br", brotli.decompress), ("gzip", gzip.decompress)):
                copy = (res.path / "opendata" / f"{name}{precompress.ENCODINGS[enc]}").read_bytes()
                status, head, raw = raw_get(server.port, f"/opendata/{name}",
                                            {"Accept-Encoding": enc})
                assert status == 200 and head["content-encoding"] == enc
                assert head["content-length"] == str(len(copy)) and raw == copy
                assert unpack(raw) == body and len(raw) < len(body) // 4
                assert head["content-disposition"].startswith("attachment")
                status, _, empty = raw_get(server.port, f"/opendata/{name}", {
                    "Accept-Encoding": enc, "If-None-Match": head["etag"]})
                assert status == 304 and empty == b""
            status, head, raw = raw_get(server.port, f"/opendata/{name}", {})
            assert status == 200 and "content-encoding" not in head and raw == body
    finally:
        for p in res.path.glob(f"opendata/{name}*"):
            p.unlink()
