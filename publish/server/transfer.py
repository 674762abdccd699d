"""What goes over the wire: compression, caching and revalidation for every response.

Why: the public pages are read on phones on slow networks. Measured before this module: no
compression anywhere (a 567 KB GeoJSON page is 54 KB gzipped), ``Cache-Control: no-cache`` on
static files that never change, and no validators on pages and data.

One thin WSGI middleware around the whole server (pages, static files, tiles, pygeoapi):

* **compression**: text of any kind (HTML, CSS, JS, JSON, GeoJSON, OpenAPI, XML, SVG) is sent
  with brotli when the client accepts it, else gzip (the ``brotli`` library and the standard
  library's ``gzip`` do the work); ``Vary: Accept-Encoding`` on every compressible response.
  Nothing slow happens in the request path (brotli's best setting runs at about 0.4 MB/s: a
  7 MB GeoJSON took 69 s, past the worker timeout):

  - a release file with a precompressed copy (``<file>.br`` / ``<file>.gz``, written at publish
    by :mod:`publish.build.precompress`, current only while it has its file's mtime) is sent as
    it is, through the server's file wrapper (``sendfile``), with its own length;
  - other files with a validator are compressed once, at the best setting only below
    :data:`BEST_BELOW` (256 KB), and kept (LRU, per worker); above :data:`STREAM_ABOVE` they
    are compressed while they are sent (brotli 4 / gzip 6, chunked), never held whole;
  - answers made per request (API) at a fast setting (brotli 5, 4 above 1 MB; gzip 6),
    streamed above :data:`STREAM_ABOVE`;
* **caching**: fingerprinted files (``/static/...?v=<hash>`` whose body really has that hash,
  and ``<name>.<hash>.pmtiles``) are ``public, max-age=31536000, immutable``; other static files
  (images and fonts named in stylesheets, pygeoapi's ``/api/static/``) a day, then revalidated
  with their ETag / Last-Modified; pages and data ``no-cache`` with an ETag and
  Last-Modified where the app gave one, so a phone revalidates with a 304 instead of
  downloading again; errors and POST answers are ``no-store``;
* **revalidation**: a strong ETag (SHA-256 of the body) is added where the app gave none, per
  encoding (``"<tag>-br"``), and ``If-None-Match`` is answered with ``304`` here;
* **ranges** (tiles): werkzeug's ``send_file`` answers them (``206``); this middleware never
  compresses or buffers a partial or binary response.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

import brotli
from werkzeug.http import parse_accept_header, parse_etags
from werkzeug.wsgi import FileWrapper

from publish.build import precompress

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

IMMUTABLE = "public, max-age=31536000, immutable"
STATIC_DAY = "public, max-age=86400"
REVALIDATE = "no-cache"
NO_STORE = "no-store"
MIN_SIZE = 512  # smaller bodies are not worth a compressor's header
CACHE_BYTES = 64 * 1024 * 1024  # compressed files kept in memory (per worker)
#: brotli 11 / gzip 9 only below this (a file, compressed once per worker and kept); above it
#: the request-time settings (brotli 5, gzip 6): brotli 11 runs at about 0.4 MB/s, so a 7 MB
#: download took longer than the worker timeout. Release files this large have copies
#: compressed at publish (:mod:`publish.build.precompress`) that are sent as they are.
BEST_BELOW = precompress.MIN_SIZE
LARGE = 1024 * 1024  # dynamic answers above this: brotli 4 (about 17 MB/s)
#: answers above this are compressed while they are sent (no Content-Length), never held whole
STREAM_ABOVE = 4 * 1024 * 1024
BLOCK = 256 * 1024
#: media types sent compressed (compared with the type without its parameters): all text, JSON
#: and XML, the structured-syntax suffixes (+json: GeoJSON, JSON Schema, problem details, the
#: OpenAPI document; +xml: Atom feeds, GML), JavaScript, YAML and SVG
COMPRESSIBLE = re.compile(
    r"text/[\w.+-]+|application/(json|javascript|x-javascript|ecmascript|xml|x-yaml|yaml|"
    r"vnd\.oai\.openapi|[\w.-]+\+(json|xml))|image/svg\+xml", re.I)
FINGERPRINT_FILE = re.compile(r"\.[0-9a-f]{10}\.[A-Za-z0-9]+$")
FINGERPRINT_PARAM = "v"
#: URL paths of vendored files (the site's, and pygeoapi's own under the API)
STATIC_PREFIXES = ("/static/", "/api/static/")


def compressible(content_type: str) -> bool:
    """Is an answer of this ``Content-Type`` sent compressed?"""
    return COMPRESSIBLE.fullmatch(content_type.split(";", 1)[0].strip()) is not None


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    low = name.lower()
    for k, v in headers:
        if k.lower() == low:
            return v
    return None


def _set(headers: list[tuple[str, str]], name: str, value: str | None) -> None:
    low = name.lower()
    headers[:] = [(k, v) for k, v in headers if k.lower() != low]
    if value is not None:
        headers.append((name, value))


def _add_vary(headers: list[tuple[str, str]], token: str) -> None:
    cur = _header(headers, "Vary")
    parts = [p.strip() for p in cur.split(",")] if cur else []
    if token.lower() not in (p.lower() for p in parts):
        _set(headers, "Vary", ", ".join([*parts, token]))


def _encoded(headers: list[tuple[str, str]], enc: str, length: int | None) -> None:
    """The headers of a body sent encoded: its encoding, its encoded length (None: chunked, the
    size is known only at the end), no ranges (those of the encoded body are not offered)."""
    _set(headers, "Content-Encoding", enc)
    _set(headers, "Accept-Ranges", None)
    _set(headers, "Content-Length", None if length is None else str(length))


def choose_encoding(accept: str | None) -> str | None:
    """``br`` if the client takes it, else ``gzip``, else None (identity)."""
    if not accept:
        return None
    acc = parse_accept_header(accept)
    for enc in ("br", "gzip"):
        if acc.quality(enc) > 0 or (enc not in acc and acc.quality("*") > 0 and "*" in acc):
            return enc
    return None


def compress(body: bytes, encoding: str, *, best: bool) -> bytes:
    """Brotli or gzip through the libraries.

    ``best`` (a file, compressed once and kept): brotli 11 / gzip 9 below :data:`BEST_BELOW`;
    otherwise, and for answers made per request, brotli 5 (4 above :data:`LARGE`) / gzip 6.
    """
    if best and len(body) < BEST_BELOW:  # the publish copies' settings (brotli 11 / gzip 9)
        return precompress.encode(body, encoding)
    if encoding == "br":
        return brotli.compress(body, quality=5 if len(body) <= LARGE else 4, lgwin=22)
    return gzip.compress(body, compresslevel=6, mtime=0)


def compress_stream(chunks: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """Compress while sending (brotli 4 / gzip 6): a large answer is never held whole."""
    if encoding == "br":
        br = brotli.Compressor(quality=4, lgwin=22)
        for chunk in chunks:
            out = br.process(chunk)
            if out:
                yield out
        yield br.finish()
        return
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
    for chunk in chunks:
        out = gz.compress(chunk)
        if out:
            yield out
    yield gz.flush()


def _etag_value(tag: str) -> tuple[str, bool]:
    """(opaque value, weak) of an ETag header value."""
    weak = tag.startswith("W/")
    return tag[2:].strip('"') if weak else tag.strip('"'), weak


class _LRU:
    """Compressed bodies by (etag, encoding), bounded in bytes."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size = limit, 0
        self.items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self.lock:
            v = self.items.get(key)
            if v is not None:
                self.items.move_to_end(key)
            return v

    def put(self, key: tuple[str, str], value: bytes) -> None:
        if len(value) > self.limit // 8:
            return
        with self.lock:
            if key in self.items:
                return
            self.items[key] = value
            self.size += len(value)
            while self.size > self.limit and self.items:
                _, old = self.items.popitem(last=False)
                self.size -= len(old)


class Transfer:
    """WSGI middleware: compression, cache headers, ETag revalidation (see the module doc).

    ``static_prefixes``: URL paths of vendored files (``/static/``, ``/api/static/``).
    """

    def __init__(self, app: WSGIApp, *, static_prefixes: tuple[str, ...] = STATIC_PREFIXES,
                 min_size: int = MIN_SIZE, cache_bytes: int = CACHE_BYTES) -> None:
        self.app = app
        self.static_prefixes = static_prefixes
        self.min_size = min_size
        self.cache = _LRU(cache_bytes)

    # ---- policy
    def cache_control(self, environ: dict[str, Any], status: int, headers: list[tuple[str, str]],
                      body: bytes | None) -> str:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or status >= 400:
            return NO_STORE
        if status >= 300 and status != 304:
            return REVALIDATE
        if FINGERPRINT_FILE.search(path):
            return IMMUTABLE
        if path.startswith(self.static_prefixes):
            v = parse_qs(environ.get("QUERY_STRING", "")).get(FINGERPRINT_PARAM)
            if v and body is not None and hashlib.sha256(body).hexdigest()[:len(v[0])] == v[0]:
                return IMMUTABLE
            return REVALIDATE if v else STATIC_DAY
        if path == "/healthz":
            return NO_STORE
        return REVALIDATE

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, list(headers)
            captured["exc_info"] = exc_info
            return lambda data: captured.setdefault("written", []).append(data)

        result = self.app(environ, capture)
        status_line: str = captured["status"]
        headers: list[tuple[str, str]] = captured["headers"]
        status = int(status_line.split(" ", 1)[0])
        method = environ.get("REQUEST_METHOD", "GET")
        ctype = _header(headers, "Content-Type") or ""
        can = (method in ("GET", "HEAD") and status in (200, 304) and compressible(ctype)
               and not _header(headers, "Content-Encoding"))
        if not (can and method == "GET" and status == 200):
            if can:
                _add_vary(headers, "Accept-Encoding")
                tag = _header(headers, "ETag")
                enc = choose_encoding(environ.get("HTTP_ACCEPT_ENCODING"))
                if status == 304 and tag and enc:
                    _set(headers, "ETag", self._encoded_tag(tag, enc))
            _set(headers, "Cache-Control", self.cache_control(environ, status, headers, None))
            start_response(status_line, headers, captured.get("exc_info"))
            return self._passthrough(result, captured)
        given = _header(headers, "ETag")
        if given:  # a file (or an answer the app tagged): decided before reading its body
            return self._tagged(environ, start_response, status_line, headers, given, result,
                                captured)
        body = self._collect(result, captured)
        return self._finish(environ, start_response, status_line, headers, body)

    # ---- helpers
    @staticmethod
    def _passthrough(result: Iterable[bytes], captured: dict[str, Any]) -> Iterator[bytes]:
        try:
            yield from captured.get("written", [])
            yield from result
        finally:
            close = getattr(result, "close", None)
            if close:
                close()

    @staticmethod
    def _collect(result: Iterable[bytes], captured: dict[str, Any]) -> bytes:
        try:
            return b"".join([*captured.get("written", []), *result])
        finally:
            close = getattr(result, "close", None)
            if close:
                close()

    @staticmethod
    def _file_name(result: Iterable[bytes], captured: dict[str, Any]) -> str | None:
        """The path of the file a ``send_file`` answer streams (werkzeug's or the server's
        ``wsgi.file_wrapper``), or None."""
        if captured.get("written"):
            return None
        f = getattr(result, "file", None) or getattr(result, "filelike", None)
        name = getattr(f, "name", None)
        return name if isinstance(name, str) else None

    @staticmethod
    def _derived_tag(environ: dict[str, Any], headers: list[tuple[str, str]], body: bytes) -> str:
        """A strong ETag for an answer the app gave none.

        An API answer belongs to one immutable release (``X-Release``) and is fully decided
        by the request (pygeoapi adds a time stamp to the body, so its bytes are not); any
        other answer is tagged by its bytes.
        """
        rel = _header(headers, "X-Release")
        if rel:
            key = "\n".join([rel, environ.get("REQUEST_METHOD", ""), environ.get("HTTP_HOST", ""),
                             environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", ""),
                             environ.get("QUERY_STRING", ""), environ.get("HTTP_ACCEPT", ""),
                             environ.get("HTTP_ACCEPT_LANGUAGE", ""),
                             environ.get("wsgi.url_scheme", "")])
            return f'"r{hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:20]}"'
        return f'"{hashlib.sha256(body).hexdigest()[:20]}"'

    @staticmethod
    def _encoded_tag(tag: str, enc: str) -> str:
        value, weak = _etag_value(tag)
        for e in ("br", "gzip"):
            value = value.removesuffix(f"-{e}")
        return f'{"W/" if weak else ""}"{value}-{enc}"'

    @staticmethod
    def _not_modified(environ: dict[str, Any], tag: str) -> bool:
        inm = environ.get("HTTP_IF_NONE_MATCH")
        return bool(inm) and parse_etags(inm).contains_weak(_etag_value(tag)[0])

    @staticmethod
    def _send_304(start_response: StartResponse, headers: list[tuple[str, str]]) -> list[bytes]:
        for h in ("Content-Length", "Content-Type", "Accept-Ranges", "Content-Encoding"):
            _set(headers, h, None)
        start_response("304 Not Modified", headers)
        return []

    def _tagged(self, environ: dict[str, Any], start_response: StartResponse, status_line: str,
                headers: list[tuple[str, str]], given: str, result: Iterable[bytes],
                captured: dict[str, Any]) -> Iterable[bytes]:
        """A tagged answer (files): 304 before any reading; a release file's precompressed copy
        as it is; a small body compressed at the best setting once and kept; a large one
        compressed while it is sent."""
        length = _header(headers, "Content-Length")
        size = int(length) if length and length.isdigit() else None
        enc = choose_encoding(environ.get("HTTP_ACCEPT_ENCODING"))
        if size is not None and size < self.min_size:
            enc = None
        tag = self._encoded_tag(given, enc) if enc else given
        _set(headers, "ETag", tag)
        _add_vary(headers, "Accept-Encoding")
        if self._not_modified(environ, tag):
            self._collect(result, {})  # closes the file
            _set(headers, "Cache-Control", self.cache_control(environ, 200, headers, None))
            return self._send_304(start_response, headers)
        if enc is None:
            self._start(environ, start_response, status_line, headers)
            return self._passthrough(result, captured)
        name = self._file_name(result, captured)
        copy = precompress.fresh_copy(name, enc) if name else None
        fh = None
        if copy is not None:
            try:
                fh = open(copy, "rb")  # noqa: SIM115 (closed by the server through the wrapper)
            except OSError:
                fh = None
        if fh is not None:
            self._collect(result, {})  # closes the original file unread
            wrapper = environ.get("wsgi.file_wrapper", FileWrapper)
            _encoded(headers, enc, os.fstat(fh.fileno()).st_size)
            self._start(environ, start_response, status_line, headers)
            return wrapper(fh, BLOCK)  # type: ignore[no-any-return]
        if size is not None and size <= STREAM_ABOVE:
            body = self._collect(result, captured)
            key = (given, enc)
            out = self.cache.get(key)
            if out is None:
                out = compress(body, enc, best=True)
                self.cache.put(key, out)
            _encoded(headers, enc, len(out))
            self._start(environ, start_response, status_line, headers, body)
            return [out]
        _encoded(headers, enc, None)
        self._start(environ, start_response, status_line, headers)
        return compress_stream(self._passthrough(result, captured), enc)

    def _start(self, environ: dict[str, Any], start_response: StartResponse, status_line: str,
               headers: list[tuple[str, str]], body: bytes | None = None) -> None:
        """Start a tagged answer: its Cache-Control (``body``: the bytes a fingerprint is
        checked against, when held), then the status and headers."""
        _set(headers, "Cache-Control", self.cache_control(environ, 200, headers, body))
        start_response(status_line, headers)

    def _finish(self, environ: dict[str, Any], start_response: StartResponse, status_line: str,
                headers: list[tuple[str, str]], body: bytes) -> Iterable[bytes]:
        """An untagged answer (made per request): tagged here, compressed at a fast setting."""
        enc = choose_encoding(environ.get("HTTP_ACCEPT_ENCODING"))
        if len(body) < self.min_size:
            enc = None
        base = self._derived_tag(environ, headers, body)
        tag = self._encoded_tag(base, enc) if enc else base
        _set(headers, "ETag", tag)
        _add_vary(headers, "Accept-Encoding")
        _set(headers, "Cache-Control", self.cache_control(environ, 200, headers, body))
        if self._not_modified(environ, tag):
            return self._send_304(start_response, headers)
        if not enc:
            _set(headers, "Content-Length", str(len(body)))
            start_response(status_line, headers)
            return [body]
        if len(body) > STREAM_ABOVE:  # not held twice: encoded block by block as it is sent
            _encoded(headers, enc, None)
            start_response(status_line, headers)
            view = memoryview(body)
            return compress_stream((bytes(view[i:i + BLOCK])
                                    for i in range(0, len(body), BLOCK)), enc)
        out = compress(body, enc, best=False)
        _encoded(headers, enc, len(out))
        start_response(status_line, headers)
        return [out]
