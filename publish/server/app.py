"""The public server: one port, one WSGI app, pygeoapi for the data, plain pages around it.

URL map (nothing else on disk is reachable; there is no route to the master or any internal file)::

    /                         landing page (ja/en): API, maps, data dates, sources, terms
    /terms                    terms of use (参考図, 出典, licences), versioned
    /maps/                    -> /#maps
    /maps/<file>              static map pages from the current release's site/maps/, with
                              their data files and vector tiles (maps/tiles/<page>.<hash>.pmtiles,
                              HTTP range requests: werkzeug's send_file)
    /static/<file>            vendored assets (publish/static/)

Every answer goes through :mod:`publish.server.transfer` (brotli/gzip, immutable caching of
fingerprinted files, ETag revalidation of pages and data); sheet PDFs render in the bounded,
low-priority pool of :mod:`publish.server.pdf_pool` (busy: 429 with Retry-After).
    /opendata/<file>          open-data downloads of the current release (GPKG, GeoJSON, CSV)
    /changes/<file>           change feeds per layer (JSON, Atom); /api/changes?since=...&bbox=
                              answers "what changed since" (:mod:`publish.server.answers`)
    /healthz                  {"status": "ok", "release": ...} for probes and tests
    /api, /api/openapi, /api/conformance, /api/collections/...
                              OGC API - Features (pygeoapi 0.21, :mod:`publish.server.api`),
                              read-only (GET/HEAD/OPTIONS); /api/processes/pipe-sheet where the
                              project has the roles for it (POST .../execution renders a PDF);
                              /api/static/... is pygeoapi's own CSS/images; every other /api
                              path (jobs, STAC, tiles, admin) is a 404

Each request is served from the release ``current`` points at when it arrives (a new publish is
picked up without a restart). Links follow the URL the client used unless ``publish.base_url``
is set (:mod:`publish.server.links`). Bad input of any kind (a NUL byte, an over-long or
non-UTF-8 path, a malformed body) is a 4xx with a bilingual message, never a 500, and no answer
names a file of the server.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
)
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from config import Project, i18n, load_project
from config import messages as msg
from config.console import quiet_warnings
from config.errors import EtlError
from publish.build import release as rel
from publish.build.apiconfig import (
    API_ROUTES,
    MAX_PROCESS_BODY,
    PROCESS_EXECUTION,
    PROCESS_ID,
    api_url,
)
from publish.errors import PublishError
from publish.model import API_PATH
from publish.pages.common import asset_url, lang_script
from publish.server import answers as answers_routes
from publish.server import api as pyapi
from publish.server import pdf_pool
from publish.server.links import ProxyHeaders, check_base_url, request_root, trusted_networks
from publish.server.transfer import Transfer

LOGGER = logging.getLogger(__name__)
PKG_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = PKG_DIR / "static"
TEMPLATES_DIR = PKG_DIR / "templates"
API_METHODS = {"GET", "HEAD", "OPTIONS"}
MAP_SUFFIXES = {".html", ".js", ".css", ".json", ".geojson", ".png", ".jpg", ".jpeg", ".svg",
                ".webp", ".pmtiles", ".woff", ".woff2", ".txt"}
CORS = {"Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Content-Crs, Content-Language, X-Release"}
#: gunicorn recycles a worker after this many requests (+ jitter): bounds what per-release
#: caches (pygeoapi's translated configs, open datasets) can grow to over months of publishes
MAX_REQUESTS = 20000


def _map_pages(r: rel.Release) -> list[dict[str, Any]]:
    """Map pages of a release: ``site/maps.json`` if the builders wrote one, else the files."""
    index = r.site / "maps.json"
    if index.is_file():
        try:
            pages = json.loads(index.read_text(encoding="utf-8"))
            return [p for p in pages if isinstance(p, dict) and p.get("file")]
        except ValueError:
            pass
    d = r.site / "maps"
    if not d.is_dir():
        return []
    return [{"file": p.name, "title": {"ja": p.stem, "en": p.stem}}
            for p in sorted(d.glob("*.html"))]


def _map_file(r: rel.Release, name: str) -> tuple[Path, str] | None:
    """(folder, file) of a servable map asset, or None: no '..', no hidden file, no symlink
    out of the release's ``site/maps``, known suffixes only, and no name the OS refuses."""
    if any(ord(c) < 32 or c == "\x7f" for c in name) or len(name) > 255:
        return None
    try:
        base = (r.site / "maps").resolve()
        target = (base / name).resolve()
        ok = (target.is_relative_to(base) and target.suffix.lower() in MAP_SUFFIXES
              and not any(part.startswith(".") for part in Path(name).parts)
              and target.is_file())
    except (OSError, ValueError):
        return None
    return (base, str(target.relative_to(base))) if ok else None


@functools.lru_cache(maxsize=64)
def _asset_at(rel_path: str, mtime_ns: int) -> str:
    return asset_url(rel_path)


def _asset(rel_path: str) -> str:
    """``/static/<rel>?v=<hash>`` (the pages' one fingerprint, :func:`asset_url`): sent
    ``immutable`` by :mod:`publish.server.transfer`; hashed again only when the file changes."""
    return _asset_at(rel_path, (STATIC_DIR / rel_path).stat().st_mtime_ns)


def _lang_js() -> Markup:
    """``static/lang.js`` inlined in <head> like the map pages: the page paints in its language
    without a blocking request."""
    return lang_script()


def _is_api(path: str) -> bool:
    return path == API_PATH or path.startswith(API_PATH + "/")


def create_app(project: Project, *, base_url: str | None = None) -> Flask:
    """The composed WSGI app: site pages, and ``/api`` through pygeoapi per release.

    ``base_url`` (``serve --base-url``) overrides ``publish.base_url``; with neither, every link
    follows the URL the client used (``X-Forwarded-*`` only from ``publish.trusted_proxies``).
    """
    pc = project.config.publish
    fixed = base_url or pc.base_url
    fixed = check_base_url(fixed) if fixed else None
    trusted = trusted_networks(pc.trusted_proxies)
    apis = pyapi.ReleaseApis(project.public_dir)
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static",
                template_folder=str(TEMPLATES_DIR))
    app.config["JSON_AS_ASCII"] = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_PROCESS_BODY  # the only body: a process execution
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["release_apis"] = apis
    app.jinja_env.globals.update(ja=msg.ja, en=msg.en, langs=i18n.langs,
                                 names=i18n.entry_langs, languages=i18n.LANGUAGES,
                                 asset=_asset, lang_js=_lang_js,
                                 site_text={k: i18n.templates(k) for k in i18n.public_keys()
                                            if k.startswith("search_")})
    app.register_blueprint(pyapi.blueprint())
    app.register_blueprint(answers_routes.blueprint(apis))  # /opendata, /changes, /api/changes

    def api_error(status: int, code: str, key: str, **kw: Any) -> Response:
        return pyapi.json_error(status, code, msg.text(key, **kw), CORS)

    @app.before_request
    def resolve() -> Response | None:
        root = request_root(request.environ, fixed)
        if root is None:
            host = "".join(c if c.isascii() and (c.isalnum() or c in ".:-[]") else "?"
                           for c in str(request.environ.get("HTTP_HOST", ""))[:60])
            return Response(msg.text("err_bad_host", host=host), 400, mimetype="text/plain")
        g.root = root
        path = request.path
        if not _is_api(path):
            return None
        method = request.method
        sub = path[len(API_PATH):] or "/"
        executes = PROCESS_EXECUTION.match(sub) is not None
        if method == "POST" and executes:
            pass
        elif method not in API_METHODS:
            return api_error(405, "MethodNotAllowed", "err_method")
        if method == "OPTIONS":  # CORS preflight; nothing to negotiate on a read-only API
            return Response(b"", 204, {"Allow": "GET, HEAD, OPTIONS",
                                       "Access-Control-Allow-Methods": "GET, HEAD, POST",
                                       "Access-Control-Allow-Headers": "*", **CORS})
        if not executes and not API_ROUTES.match(sub):
            return api_error(404, "NotFound", "err_not_found")
        r = apis.current()
        if r is None:
            return api_error(503, "NoRelease", "no_release", dir=project.public_dir.name)
        try:
            g.api = apis.api(r)
        except Exception:
            LOGGER.exception("cannot load pygeoapi for release %s", r.id)
            return pyapi.json_error(503, "ReleaseUnavailable", r.id, CORS)
        g.release = r
        return None

    @app.after_request
    def api_headers(response: Response) -> Response:
        if _is_api(request.path):
            response.headers.update(CORS)
            r = g.get("release")
            if r is not None:
                response.headers["X-Release"] = r.id
        return response

    def current_or_503() -> rel.Release:
        r = apis.current()
        if r is None:
            abort(503)
        return r

    def page_context(r: rel.Release) -> dict[str, Any]:
        root = g.root
        return {"r": r, "meta": r.meta, "layers": r.meta.get("layers", {}),
                "maps": _map_pages(r), "api": api_url(root), "root": root,
                "processes": r.meta.get("processes", [])}

    @app.get("/")
    def landing() -> Any:
        r = current_or_503()
        return render_template("landing.html", **page_context(r))

    @app.get("/terms")
    def terms() -> Any:
        r = current_or_503()
        return render_template("terms.html", **page_context(r))

    @app.get("/maps/")
    def maps_index() -> Any:
        return redirect(f"{g.root}/#maps")

    @app.get("/maps/<path:name>")
    def map_page(name: str) -> Any:
        r = current_or_503()
        found = _map_file(r, name)
        if found is None:
            abort(404)
        return send_from_directory(*found)

    @app.get("/healthz")
    def healthz() -> Any:
        r = apis.current()
        if r is None:
            return jsonify(status="no_release"), 503
        return jsonify(status="ok", release=r.id, created_at=r.meta.get("created_at"))

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Any:
        code = int(e.code or 500)
        key = {404: "err_not_found", 405: "err_method", 413: "err_body_too_large",
               503: "no_release"}.get(code, "err_server" if code >= 500 else "err_bad_path")
        kw = {"limit": MAX_PROCESS_BODY, "dir": project.public_dir.name}
        if _is_api(request.path):
            return api_error(code, {413: "PayloadTooLarge", 404: "NotFound",
                                    405: "MethodNotAllowed"}.get(code, "InvalidParameterValue"),
                             key, **kw)
        return render_template("error.html", code=code, key=key, kw=kw,
                               root=g.get("root", "")), code

    def is_sheet(method: str, path: str) -> bool:
        m = PROCESS_EXECUTION.match(path[len(API_PATH):]) if _is_api(path) else None
        return method == "POST" and m is not None and m.group(1) == PROCESS_ID

    # outermost first: proxy headers, then transfer (compression, caching, revalidation), then
    # the sheet gate (a bounded, low-priority PDF pool: busy -> 429), then the app
    pool = pdf_pool.pool_for(str(project.public_dir.resolve()))
    inner = pdf_pool.SheetGate(app.wsgi_app, pool, is_sheet)
    app.wsgi_app = ProxyHeaders(Transfer(inner), trusted)  # type: ignore[method-assign]
    return app


def serve(project: Project, host: str = "127.0.0.1", port: int = 5000, workers: int = 2, *,
          threads: int = 1, base_url: str | None = None, pidfile: Path | None = None,
          access_log: bool = False, timeout: int = 60) -> None:
    """Run the public server under gunicorn until stopped (SIGTERM/SIGINT); blocks.

    Sync workers by default (pygeoapi is CPU-bound; 2 workers for 2 cores, see the anchors);
    ``threads > 1`` switches to gthread. No restart is needed after ``publish``.
    """
    from gunicorn.app.base import BaseApplication  # only the serving process needs gunicorn

    if rel.current_release(project.public_dir) is None:
        raise PublishError("no_release", dir=project.public_dir)
    create_app(project, base_url=base_url)  # config errors (base_url, proxies) before binding
    quiet_warnings("pygeoapi")  # e.g. its PostgreSQL provider's shapely.ops.transform
    published = (base_url or project.config.publish.base_url or "").rstrip("/")

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            opts = {
                "bind": f"{host}:{port}", "workers": workers, "threads": threads,
                "worker_class": "gthread" if threads > 1 else "sync", "timeout": timeout,
                "graceful_timeout": 10, "keepalive": 5, "proc_name": "gis-serve",
                "accesslog": "-" if access_log else None, "errorlog": "-", "loglevel": "warning",
                "pidfile": str(pidfile) if pidfile else None,
                "max_requests": MAX_REQUESTS, "max_requests_jitter": MAX_REQUESTS // 10,
            }
            for k, v in opts.items():
                self.cfg.set(k, v)

        def load(self) -> Any:
            return create_app(project, base_url=base_url)

    print(msg.text("serve_start", url=f"http://{host}:{port}/", workers=workers), flush=True)
    print(msg.text("serve_links_follow") if not published else
          msg.text("serve_url_mismatch", base_url=published, bind=f"{host}:{port}"),
          file=sys.stderr, flush=True)
    _App().run()


def main(argv: list[str] | None = None) -> None:
    """``python -m publish.server.app [--project DIR] --port N``: tests, benches, operators.

    The project is found like the CLI finds it: ``--project``, then ``UOZU_GIS_PROJECT``, then
    the current folder. A configuration error prints its bilingual message and exits 1.
    """
    ap = argparse.ArgumentParser(prog="python -m publish.server.app",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--project", default=None,
                    help="project folder (config/project.yml); default: $UOZU_GIS_PROJECT, "
                         "then the current folder")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--public-dir", default=None, help="override config public_dir")
    ap.add_argument("--pidfile", default=None)
    args = ap.parse_args(argv)
    try:
        project = load_project(args.project)
        if args.public_dir:
            cfg = project.config.model_copy(update={"public_dir": args.public_dir})
            project = Project(root=project.root, config=cfg, specs=project.specs,
                              codelists=project.codelists, spec_hashes=project.spec_hashes)
        serve(project, args.host, args.port, args.workers, threads=args.threads,
              base_url=args.base_url, pidfile=Path(args.pidfile) if args.pidfile else None)
    except EtlError as e:
        print(f"Error: {e}", file=sys.stderr)
        raise SystemExit(1) from None


def free_port() -> int:
    """An unused loopback port (for tests, benches and throwaway servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m publish.server.app`` (gunicorn) in a subprocess on loopback (tests, benches).

    Waits for ``/healthz``; the log goes to a file (an unread pipe fills up and blocks the
    server). Use as a context manager, or call :meth:`stop`.
    """

    def __init__(self, root: Path, port: int | None = None, *, workers: int = 2,
                 public_dir: Path | None = None, log: Path | None = None,
                 warm: int = 0, timeout: float = 60, base_url: str | None = None) -> None:
        import requests  # a dev dependency: only tests and benches start servers this way

        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        repo = Path(__file__).resolve().parent.parent.parent
        self.log = log or (Path(public_dir or root / "data") / f"server-{self.port}.log")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "publish.server.app", "--project", str(root), "--port",
               str(self.port), "--workers", str(workers)]
        if base_url:
            cmd += ["--base-url", base_url]
        if public_dir:
            cmd += ["--public-dir", str(public_dir)]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(cmd, cwd=repo, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONPATH": str(repo)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()[-3000:]}")
            try:
                if requests.get(self.base + "/healthz", timeout=2).status_code == 200:
                    for _ in range(warm):  # pygeoapi loads per worker on first use
                        requests.get(self.base + "/api/collections?f=json", timeout=30)
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start within {timeout:.0f} s")

    def stop(self) -> str:
        """Stop our own process (SIGTERM, then SIGKILL) and return its output."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.output()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
