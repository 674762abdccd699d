"""The public server: one port, one WSGI app, pygeoapi for the data, plain pages around it.

URL map (nothing else on disk is reachable; there is no route to the master or any internal file)::

    /                         landing page (ja/en): API, maps, data dates, sources, terms
    /terms                    terms of use (参考図, 出典, licences), versioned
    /maps/                    -> /#maps
    /maps/<file>              static map pages from the current release's site/maps/
    /static/<file>            vendored assets (publish/static/)
    /healthz                  {"status": "ok", "release": ...} for probes and tests
    /api, /api/openapi, /api/conformance, /api/collections/...
                              OGC API - Features (pygeoapi 0.21), read-only (GET/HEAD/OPTIONS);
                              /api/static/... is pygeoapi's own CSS/images; every other /api
                              path (processes, jobs, STAC, tiles, admin) is a 404

Why one pygeoapi Flask app *per release*: ``pygeoapi.flask_app`` reads its config and OpenAPI
document into module globals at import time, so "re-read the config when the release changes"
means "load that module again". :class:`ReleaseApps` execs a private copy of the module per
release (with ``PYGEOAPI_CONFIG``/``PYGEOAPI_OPENAPI`` set for that copy only, under a lock),
caches the last few, and each request is dispatched to the app of the release that ``current``
pointed at when the request arrived. So after ``publish`` switches ``current``, the next request
sees the new data without a restart, and a request never mixes two releases (each release's
config names only its own files).

pygeoapi behaviours adjusted here, per loaded copy, touching pygeoapi's globals only where noted:

* ``/queryables`` lists only the spec's queryables, with bilingual titles (provider view flag);
* a page that ends exactly at ``numberMatched`` gets no ``next`` link, in JSON and HTML (pygeoapi
  adds one whenever a page is full, #1594/#1658);
* ``sortby=`` with an empty entry is a 400 (pygeoapi indexes ``s[0]``: IndexError, 500);
* global: ``pygeoapi.l10n._cfg_cache`` (translated config per locale, process-wide) is replaced by
  a non-caching dict, otherwise HTML pages would keep the first release's metadata forever;
* global: client errors (4xx) are logged by ``pygeoapi.api`` as one line, without traceback.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import itertools
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import yaml
from flask import Flask, abort, jsonify, redirect, render_template, send_from_directory

from config import Project, load_project
from publish import messages as msg
from publish.build import release as rel
from publish.build.apiconfig import (
    API_PATH,
    API_ROUTES,
    MAX_PROCESS_BODY,
    PROCESS_EXECUTION,
    api_url,
)
from publish.errors import PublishError

LOGGER = logging.getLogger(__name__)
PKG_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = PKG_DIR / "static"
TEMPLATES_DIR = PKG_DIR / "templates"
API_METHODS = {"GET", "HEAD", "OPTIONS"}
MAP_SUFFIXES = {".html", ".js", ".css", ".json", ".geojson", ".png", ".jpg", ".jpeg", ".svg",
                ".webp", ".pmtiles", ".woff", ".woff2", ".txt"}
# pygeoapi 0.21's items.html "Next" button (English or our Japanese catalogue).
NEXT_BUTTON = re.compile(r'<a role="button" href="[^"]*">\s*(?:Next|{})\s*</a>'.format(
    re.escape(msg.PYGEOAPI_UI_JA["Next"])))
APP_CACHE = 3  # pygeoapi apps kept per worker: current, previous and one spare
_ENV_LOCK = threading.Lock()
_COUNTER = itertools.count()
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _NoCache(dict):  # type: ignore[type-arg]
    """A dict that forgets: disables pygeoapi's process-wide translated-config cache."""

    def __setitem__(self, key: Any, value: Any) -> None:
        return None


class _ClientErrorFilter(logging.Filter):
    """pygeoapi logs every 4xx at ERROR with a traceback; keep one line for client errors.

    A fuzzer or a scraper would otherwise fill the log with tracebacks of bad query strings.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            status = getattr(exc, "http_status_code", None)
            if isinstance(exc, ValueError) or (status is not None and int(status) < 500):
                record.exc_info, record.exc_text = None, None
        return True


def _quiet_client_errors() -> None:
    log = logging.getLogger("pygeoapi.api")
    if not any(isinstance(f, _ClientErrorFilter) for f in log.filters):
        log.addFilter(_ClientErrorFilter())


def _patch_l10n_cache() -> None:
    from pygeoapi import l10n

    if not isinstance(l10n._cfg_cache, _NoCache):
        l10n._cfg_cache = _NoCache()


class _ItemtypesProxy(ModuleType):
    """Stand-in for ``pygeoapi.api.itemtypes`` inside one loaded flask_app copy."""

    def __init__(self, real: ModuleType) -> None:
        super().__init__(real.__name__)
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def get_collection_queryables(self, api: Any, request: Any, dataset: str) -> Any:
        from pygeoapi.util import to_json

        from publish.server.providers import QUERYABLES_VIEW

        token = QUERYABLES_VIEW.set(True)
        try:
            headers, status, content = self._real.get_collection_queryables(api, request, dataset)
        finally:
            QUERYABLES_VIEW.reset(token)
        if (status == 200 and request.format in (None, "json") and isinstance(content, str)
                and content.startswith("{")):
            try:
                titles = api.config["resources"][dataset]["providers"][0].get("field_titles", {})
                doc = json.loads(content)
                for name, prop in doc.get("properties", {}).items():
                    if name in titles:
                        prop["title"] = titles[name]
                content = to_json(doc, api.pretty_print)
            except (KeyError, IndexError, ValueError):
                pass
        return headers, status, content

    def get_collection_items(self, api: Any, request: Any, dataset: str) -> Any:
        from pygeoapi.util import to_json

        from publish.server.providers import LAST_PAGE

        sortby = request.params.get("sortby")
        if sortby is not None and any(s.strip("+-") == "" for s in sortby.split(",")):
            # pygeoapi indexes s[0] of every entry: "sortby=" would be an IndexError (500)
            headers = request.get_response_headers(**api.api_headers)
            return api.get_exception(HTTPStatus.BAD_REQUEST, headers, request.format,
                                     "InvalidParameterValue", "sortby")
        token = LAST_PAGE.set(None)
        try:
            headers, status, content = self._real.get_collection_items(api, request, dataset)
            page = LAST_PAGE.get()
        finally:
            LAST_PAGE.reset(token)
        if not (page and status == 200 and isinstance(content, str)
                and page[1] + page[2] >= page[0]):
            return headers, status, content
        # Only on the last page: drop the "next" link pygeoapi adds whenever a page is full.
        if request.format in (None, "json") and content.startswith("{"):
            try:
                doc = json.loads(content)
            except ValueError:
                return headers, status, content
            links = doc.get("links", [])
            if any(link.get("rel") == "next" for link in links):
                doc["links"] = [link for link in links if link.get("rel") != "next"]
                content = to_json(doc, api.pretty_print)
        elif "<html" in content[:200]:
            content = NEXT_BUTTON.sub("", content)
        return headers, status, content


def load_pygeoapi_app(config_path: Path, openapi_path: Path) -> Any:
    """A fresh, private copy of ``pygeoapi.flask_app`` bound to one config; returns its Flask app.

    Raises whatever pygeoapi raises for a broken config (the caller answers 503).
    """
    _patch_l10n_cache()
    _quiet_client_errors()
    spec0 = importlib.util.find_spec("pygeoapi.flask_app")
    if spec0 is None or spec0.origin is None:
        raise RuntimeError("pygeoapi.flask_app not found")
    name = f"_uozu_pygeoapi_app_{next(_COUNTER)}"
    spec = importlib.util.spec_from_file_location(name, spec0.origin)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in ("PYGEOAPI_CONFIG", "PYGEOAPI_OPENAPI")}
        os.environ["PYGEOAPI_CONFIG"] = str(config_path)
        os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)
        sys.modules[name] = module  # Flask finds its root path through sys.modules
        try:
            spec.loader.exec_module(module)
        finally:
            sys.modules.pop(name, None)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    module.itemtypes_api = _ItemtypesProxy(module.itemtypes_api)  # type: ignore[attr-defined]
    return module.APP  # type: ignore[attr-defined]


class ReleaseApps:
    """The current release and its pygeoapi app, looked up per request, built once per release."""

    def __init__(self, public_dir: Path, base_url: str | None = None,
                 runtime_dir: Path | None = None) -> None:
        self.public_dir = public_dir
        self.base_url = base_url.rstrip("/") if base_url else None
        self.runtime_dir = runtime_dir
        self._lock = threading.Lock()
        self._releases: dict[str, rel.Release] = {}
        self._apps: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None  # rewritten configs, if any

    def current(self) -> rel.Release | None:
        rid = rel.current_id(self.public_dir)
        if rid is None:
            return None
        r = self._releases.get(rid)
        if r is None:
            r = rel.load_release(self.public_dir, rid)
            if r is None:
                return None
            with self._lock:
                self._releases = {k: v for k, v in self._releases.items() if k in self._apps}
                self._releases[rid] = r
        return r

    def api_app(self, r: rel.Release) -> Any:
        app = self._apps.get(r.id)
        if app is not None:
            return app
        with self._lock:
            app = self._apps.get(r.id)
            if app is None:
                cfg, oas = self._runtime_files(r)
                app = load_pygeoapi_app(cfg, oas)
                self._apps[r.id] = app
                while len(self._apps) > APP_CACHE:
                    old_id, _ = self._apps.popitem(last=False)
                    if self._tmp is not None:
                        shutil.rmtree(Path(self._tmp.name) / old_id, ignore_errors=True)
            else:
                self._apps.move_to_end(r.id)
        return app

    def _runtime_files(self, r: rel.Release) -> tuple[Path, Path]:
        """The release's config, or a copy with ``server.url`` rewritten for ``base_url``."""
        if not self.base_url or self.base_url == r.meta.get("base_url"):
            return r.config, r.openapi
        if self._tmp is None:  # removed with this object (or at interpreter exit)
            self._tmp = tempfile.TemporaryDirectory(prefix="uozu-api-", dir=self.runtime_dir)
        out = Path(self._tmp.name) / r.id
        out.mkdir(exist_ok=True)
        cfg = yaml.safe_load(r.config.read_text(encoding="utf-8"))
        oas = yaml.safe_load(r.openapi.read_text(encoding="utf-8"))
        cfg["server"]["url"] = api_url(self.base_url)
        for server in oas.get("servers", []):
            server["url"] = api_url(self.base_url)
        for name, data in (("pygeoapi.yml", cfg), ("openapi.yml", oas)):
            (out / name).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                    encoding="utf-8")
        return out / "pygeoapi.yml", out / "openapi.yml"


def _json_response(start_response: Callable[..., Any], status: str, body: dict[str, Any],
                   extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    start_response(status, [("Content-Type", "application/json; charset=utf-8"),
                            ("Content-Length", str(len(data))), *(extra or [])])
    return [data]


CORS = [("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", "Content-Crs, Content-Language, X-Release")]


class ApiDispatcher:
    """WSGI middleware: ``/api/*`` -> the current release's pygeoapi app, the rest -> ``site``."""

    def __init__(self, site: WSGIApp, apps: ReleaseApps) -> None:
        self.site = site
        self.apps = apps

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "") or "/"
        if path != API_PATH and not path.startswith(API_PATH + "/"):
            return self.site(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        sub = path[len(API_PATH):] or "/"
        if method == "POST" and sub == PROCESS_EXECUTION:
            try:
                size = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                size = 0
            if not 0 < size <= MAX_PROCESS_BODY:
                return _json_response(start_response, "413 CONTENT TOO LARGE",
                                      {"code": "PayloadTooLarge",
                                       "description": msg.text("err_method")}, CORS)
        elif method not in API_METHODS:
            return _json_response(start_response, "405 METHOD NOT ALLOWED",
                                  {"code": "MethodNotAllowed",
                                   "description": msg.text("err_method")},
                                  [("Allow", "GET, HEAD, OPTIONS"), *CORS])
        if method == "OPTIONS":  # CORS preflight; nothing to negotiate on a read-only API
            start_response("204 NO CONTENT", [("Allow", "GET, HEAD, OPTIONS"),
                                              ("Access-Control-Allow-Methods", "GET, HEAD"),
                                              ("Access-Control-Allow-Headers", "*"), *CORS])
            return [b""]
        if sub != PROCESS_EXECUTION and not API_ROUTES.match(sub):
            return _json_response(start_response, "404 NOT FOUND",
                                  {"code": "NotFound", "description": msg.text("err_not_found")},
                                  CORS)
        r = self.apps.current()
        if r is None:
            return _json_response(start_response, "503 SERVICE UNAVAILABLE",
                                  {"code": "NoRelease", "description": msg.text(
                                      "no_release", dir=self.apps.public_dir.name)})
        try:
            app = self.apps.api_app(r)
        except Exception:
            LOGGER.exception("cannot load pygeoapi for release %s", r.id)
            return _json_response(start_response, "503 SERVICE UNAVAILABLE",
                                  {"code": "ReleaseUnavailable", "release": r.id})
        env = dict(environ)
        env["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + API_PATH
        env["PATH_INFO"] = sub

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [*headers, *CORS, ("X-Release", r.id)]
            return start_response(status, headers, exc_info)

        return app(env, start)


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


def create_app(project: Project, *, base_url: str | None = None) -> Flask:
    """The composed WSGI app (a Flask app; ``/api`` is dispatched to pygeoapi per release).

    ``base_url`` overrides ``publish.base_url`` for the links pygeoapi writes (e.g. when serving
    on another port than the one published); by default the published URL is used.
    """
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PublishError("base_url_invalid", url=base_url)
    apps = ReleaseApps(project.public_dir, base_url)
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static",
                template_folder=str(TEMPLATES_DIR))
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["uozu_release_apps"] = apps
    app.jinja_env.globals.update(ja=msg.ja, en=msg.en)

    def current_or_503() -> rel.Release:
        r = apps.current()
        if r is None:
            abort(503)
        return r

    def page_context(r: rel.Release) -> dict[str, Any]:
        root = (base_url or r.meta.get("base_url") or "").rstrip("/")
        return {"r": r, "meta": r.meta, "layers": r.meta.get("layers", {}),
                "maps": _map_pages(r), "api": api_url(root) if root else API_PATH,
                "root": root}

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
        return redirect("/#maps")

    @app.get("/maps/<path:name>")
    def map_page(name: str) -> Any:
        r = current_or_503()
        base = (r.site / "maps").resolve()
        target = (base / name).resolve()
        # send_from_directory refuses '..'; also refuse symlinks leading out and odd types.
        if (not target.is_relative_to(base) or target.suffix.lower() not in MAP_SUFFIXES
                or any(part.startswith(".") for part in Path(name).parts)
                or not target.is_file()):
            abort(404)
        return send_from_directory(base, str(target.relative_to(base)))

    @app.get("/healthz")
    def healthz() -> Any:
        r = apps.current()
        if r is None:
            return jsonify(status="no_release"), 503
        return jsonify(status="ok", release=r.id, created_at=r.meta.get("created_at"))

    @app.errorhandler(404)
    def not_found(_: Exception) -> Any:
        return render_template("error.html", code=404, key="err_not_found"), 404

    @app.errorhandler(503)
    def unavailable(_: Exception) -> Any:
        return render_template("error.html", code=503, key="no_release",
                               kw={"dir": project.public_dir.name}), 503

    app.wsgi_app = ApiDispatcher(app.wsgi_app, apps)  # type: ignore[method-assign]
    return app


def serve(project: Project, host: str = "127.0.0.1", port: int = 5000, workers: int = 2, *,
          threads: int = 1, base_url: str | None = None, pidfile: Path | None = None,
          access_log: bool = False, timeout: int = 60) -> None:
    """Run the public server under gunicorn until stopped (SIGTERM/SIGINT); blocks.

    Sync workers by default (pygeoapi is CPU-bound; 2 workers for 2 cores, see the anchors);
    ``threads > 1`` switches to gthread. No restart is needed after ``publish``.
    """
    from gunicorn.app.base import BaseApplication

    if rel.current_release(project.public_dir) is None:
        raise PublishError("no_release", dir=project.public_dir)
    published = project.config.publish.base_url.rstrip("/")
    if base_url is None and urlsplit(published).port not in (None, port):
        LOGGER.warning(msg.text("serve_url_mismatch", base_url=published, bind=f"{host}:{port}"))

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            opts = {
                "bind": f"{host}:{port}", "workers": workers, "threads": threads,
                "worker_class": "gthread" if threads > 1 else "sync", "timeout": timeout,
                "graceful_timeout": 10, "keepalive": 5, "proc_name": "uozu-gis-serve",
                "accesslog": "-" if access_log else None, "errorlog": "-", "loglevel": "warning",
                "pidfile": str(pidfile) if pidfile else None,
            }
            for k, v in opts.items():
                self.cfg.set(k, v)

        def load(self) -> Any:
            return create_app(project, base_url=base_url)

    print(msg.text("serve_start", url=f"http://{host}:{port}/", workers=workers), flush=True)
    _App().run()


def main(argv: list[str] | None = None) -> None:
    """``python -m publish.server.app --root PROJECT --port N``: tests, benches, operators."""
    ap = argparse.ArgumentParser(prog="python -m publish.server.app",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--root", default=".", help="project root (config/project.yml)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--public-dir", default=None, help="override config public_dir")
    ap.add_argument("--pidfile", default=None)
    args = ap.parse_args(argv)
    project = load_project(args.root)
    if args.public_dir:
        cfg = project.config.model_copy(update={"public_dir": args.public_dir})
        project = Project(root=project.root, config=cfg, specs=project.specs,
                          codelists=project.codelists, spec_hashes=project.spec_hashes)
    serve(project, args.host, args.port, args.workers, threads=args.threads,
          base_url=args.base_url, pidfile=Path(args.pidfile) if args.pidfile else None)


if __name__ == "__main__":
    main()


def free_port() -> int:
    """An unused loopback port (for tests, benches and throwaway servers)."""
    import socket

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
                 warm: int = 0, timeout: float = 60) -> None:
        import subprocess
        import sys
        import time

        import requests

        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        repo = Path(__file__).resolve().parent.parent.parent
        self.log = log or (Path(public_dir or root / "data") / f"server-{self.port}.log")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "publish.server.app", "--root", str(root), "--port",
               str(self.port), "--workers", str(workers), "--base-url", self.base]
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
        import subprocess

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
