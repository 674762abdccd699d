"""OGC API - Features through pygeoapi's documented core, one ``API`` object per release.

pygeoapi separates its core from the web framework: ``pygeoapi.api.API(config, openapi)`` holds a
configuration, ``APIRequest`` wraps a framework's request, and the API functions
(``pygeoapi.api.landing_page``, ``pygeoapi.api.itemtypes.get_collection_items``, ...) take both
and return ``(headers, status, content)``. ``pygeoapi.flask_app``, ``starlette_app`` and
``django_app`` are thin adapters over that core (the ``APIRequest`` docstring describes them).
``flask_app`` builds its single ``API`` from ``PYGEOAPI_CONFIG`` when the module is imported, so
it serves one configuration per process; this module is a fourth adapter, a Flask blueprint that
picks the ``API`` object of the release ``current`` points at when the request arrives. So after
``publish`` the next request sees the new release without a restart, and a request never mixes
two releases (each release's config names only its own files).

What the public API adds to pygeoapi 0.21, all in the request/response path or the providers:

* ``/queryables`` lists only the spec's queryables, with bilingual titles (providers' view flag);
* a page that ends exactly at ``numberMatched`` gets no ``next`` link, in JSON and HTML (pygeoapi
  adds one whenever a page is full, #1594/#1658);
* ``sortby=`` with an empty entry is a 400 (pygeoapi indexes ``s[0]``: IndexError, 500);
* ``filter-lang=cql2-text``, the standard name, is accepted besides ``cql-text``;
* links follow the request: a release's config writes every URL under
  :data:`publish.model.LINK_ORIGIN`, replaced in each response by the URL the client used
  (:mod:`publish.server.links`);
* a process body is checked before pygeoapi parses it (``[]``, ``null``, non-UTF-8 or a
  non-object body would be a 500 inside pygeoapi 0.21); only ``inputs``/``outputs``/``response``
  are accepted (a ``subscriber`` would make the server call URLs of the client's choosing);
* client errors (4xx) are logged as one line, without a traceback
  (:meth:`ReleaseAPI.get_exception`).

pygeoapi caches the translated configuration for its HTML templates per locale, process-wide
(``l10n.translate_struct(..., is_config=True)``): with one ``API`` per release the first release's
titles and links would stay in every later page. :class:`ReleaseRequest` therefore hands pygeoapi
a :class:`ReleaseLocale`, the same locale plus the release id, so that cache holds one entry per
release and language (a few per publish; workers are recycled by gunicorn's ``max_requests``).
"""

from __future__ import annotations

import collections
import json
import logging
import re
import sys
import threading
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pygeoapi
import pygeoapi.api as core_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.processes as processes_api
from flask import Blueprint, Response, abort, g, request, send_from_directory
from pygeoapi.api import API, F_HTML, FORMAT_TYPES, SYSTEM_LOCALE, APIRequest, apply_gzip
from pygeoapi.l10n import Locale
from pygeoapi.process.base import ProcessorExecuteError
from pygeoapi.util import render_j2_template, to_json, yaml_load

from config.messages import PYGEOAPI_UI_JA, text
from publish.build import release as rel
from publish.build.apiconfig import api_url
from publish.model import API_PATH, LINK_ORIGIN
from publish.server.links import PUBLIC_ROOT
from publish.server.providers import LAST_PAGE, QUERYABLES_VIEW

LOGGER = logging.getLogger(__name__)
PYGEOAPI_STATIC = Path(pygeoapi.__file__).resolve().parent / "static"
SITE_STATIC = Path(__file__).resolve().parent.parent / "static"
API_CACHE = 3  # API objects kept per worker: current, previous and one spare
# pygeoapi 0.21's items.html "Next" button (English or our Japanese catalogue).
NEXT_BUTTON = re.compile(r'<a role="button" href="[^"]*">\s*(?:Next|{})\s*</a>'.format(
    re.escape(PYGEOAPI_UI_JA["Next"])))
LINK_ORIGIN_B = LINK_ORIGIN.encode("ascii")
BODY_KEYS = ("inputs", "outputs", "response")
#: standard filter-lang names -> the names pygeoapi 0.21 accepts
FILTER_LANGS = {"cql2-text": "cql-text"}
BODY_EXAMPLE = '{"inputs": {"oaza": "...", "chiban": "123-4"}}'


class _UserErrorLines(logging.Filter):
    """pygeoapi's process manager logs a processor's user error (a 400) with its traceback;
    keep one line, as for every other client error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ProcessorExecuteError):
            record.exc_info, record.exc_text = None, None
        return True


for _name in ("pygeoapi.process.manager.dummy", "pygeoapi.process.manager.base"):
    if not any(isinstance(f, _UserErrorLines) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_UserErrorLines())


class ReleaseLocale(Locale):
    """A babel ``Locale`` that also names a release (a key of pygeoapi's per-locale cache).

    Equal to another ``ReleaseLocale`` of the same release and language only; never equal to a
    plain ``Locale``, so no cache entry of another configuration is ever taken for it. Its hash
    and its string form are the plain locale's (``Content-Language`` is unchanged).
    """

    def __init__(self, base: Locale, release: str) -> None:
        super().__init__(base.language, base.territory, base.script, base.variant,
                         base.modifier)
        self.release = release

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ReleaseLocale) and other.release == self.release
                and super().__eq__(other))

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return super().__hash__()


class ReleaseRequest(APIRequest):
    """pygeoapi's request wrapper, whose ``locale`` also names the release being served.

    Its ``params`` also accept the standard name of the CQL2 text encoding
    (``filter-lang=cql2-text``, OGC API - Features Part 3), which pygeoapi 0.21 knows only by
    its draft name ``cql-text`` (same parser).
    """

    release = ""
    _params: Any = None

    @property
    def locale(self) -> Locale:
        base = super().locale
        return ReleaseLocale(base, self.release) if self.release else base

    @property
    def params(self) -> Any:
        if self._params is None:
            args = super().params
            lang = args.get("filter-lang")
            if lang in FILTER_LANGS:
                args = args.copy()
                args["filter-lang"] = FILTER_LANGS[lang]
            self._params = args
        return self._params


class ReleaseAPI(API):
    """pygeoapi's ``API`` for one release: its config and OpenAPI document, read once."""

    def __init__(self, r: rel.Release) -> None:
        with r.config.open(encoding="utf-8") as fh:
            config = yaml_load(fh)
        with r.openapi.open(encoding="utf-8") as fh:
            openapi = yaml_load(fh)
        # links are written under LINK_ORIGIN and replaced per response (older releases too)
        config["server"]["url"] = api_url(LINK_ORIGIN)
        for server in openapi.get("servers", []):
            server["url"] = api_url(LINK_ORIGIN)
        super().__init__(config, openapi)
        self.release = r

    def get_exception(self, status: int, headers: dict[str, Any], format_: str | None,
                      code: str, description: str) -> tuple[dict[str, Any], int, str]:
        """pygeoapi's exception answer; a 4xx is logged as one line, a 5xx with its traceback.

        The HTML form is rendered with this release's locale (see :class:`ReleaseLocale`).
        """
        exc_info = sys.exc_info()
        if int(status) < 500:
            LOGGER.info("%s %s: %s", int(status), code, description)
        else:
            LOGGER.error(description, exc_info=exc_info if exc_info[0] is not None else None)
        exception = {"code": code, "type": code, "description": description}
        if format_ == F_HTML:
            headers["Content-Type"] = FORMAT_TYPES[F_HTML]
            content = render_j2_template(
                self.tpl_config, self.config["server"]["templates"], "exception.html",
                exception, ReleaseLocale(SYSTEM_LOCALE, self.release.id))
        else:
            content = to_json(exception, self.pretty_print)
        return headers, status, content


class ReleaseApis:
    """The current release and its pygeoapi ``API``, looked up per request, built once each."""

    def __init__(self, public_dir: Path) -> None:
        self.public_dir = public_dir
        self._lock = threading.Lock()
        self._releases: dict[str, rel.Release] = {}
        self._apis: collections.OrderedDict[str, ReleaseAPI] = collections.OrderedDict()

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
                self._releases = {k: v for k, v in self._releases.items() if k in self._apis}
                self._releases[rid] = r
        return r

    def api(self, r: rel.Release) -> ReleaseAPI:
        api = self._apis.get(r.id)
        if api is not None:
            return api
        with self._lock:
            api = self._apis.get(r.id)
            if api is None:
                api = self._apis[r.id] = ReleaseAPI(r)
                while len(self._apis) > API_CACHE:
                    self._apis.popitem(last=False)
            else:
                self._apis.move_to_end(r.id)
        return api


def json_error(status: int, code: str, description: str,
               headers: dict[str, str] | None = None) -> Response:
    """An OGC-style JSON error (``code`` + bilingual ``description``)."""
    body = json.dumps({"code": code, "description": description}, ensure_ascii=False)
    return Response(body, status, {"Content-Type": "application/json; charset=utf-8",
                                   **(headers or {})})


def _relink(value: str | bytes, root: str) -> str | bytes:
    """Links under LINK_ORIGIN -> the public root of this request."""
    if isinstance(value, bytes):
        return value.replace(LINK_ORIGIN_B, root.encode("ascii"))
    return value.replace(LINK_ORIGIN, root)


def _respond(headers: dict[str, Any], status: int, content: str | bytes) -> Response:
    root = g.root
    content = apply_gzip(headers, _relink(content, root))
    return Response(content, int(status), headers=[
        (k, _relink(v, root) if isinstance(v, str) else v) for k, v in headers.items()])


def _request(api: ReleaseAPI) -> ReleaseRequest:
    req = ReleaseRequest.from_flask(request, api.locales)
    req.release = api.release.id
    return req


def execute(fn: Any, *args: Any, skip_valid_check: bool = False) -> Response:
    """Run one pygeoapi API function for this request (what ``flask_app.execute_from_flask``
    does, with this release's API object)."""
    api: ReleaseAPI = g.api
    req = _request(api)
    if not skip_valid_check and not req.is_valid():
        return _respond(*api.get_format_exception(req))
    return _respond(*fn(api, req, *args))


# ---------------------------------------------------------------- what the public API adds

def collection_queryables(api: ReleaseAPI, req: ReleaseRequest, dataset: str) -> Any:
    """pygeoapi's queryables, restricted to the spec's queryables, with bilingual titles."""
    token = QUERYABLES_VIEW.set(True)
    try:
        headers, status, content = itemtypes_api.get_collection_queryables(api, req, dataset)
    finally:
        QUERYABLES_VIEW.reset(token)
    if (status == HTTPStatus.OK and req.format in (None, "json") and isinstance(content, str)
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


def collection_items(api: ReleaseAPI, req: ReleaseRequest, dataset: str) -> Any:
    """pygeoapi's items; ``sortby=`` with an empty entry is a 400; no ``next`` past the end."""
    sortby = req.params.get("sortby")
    if sortby is not None and any(s.strip("+-") == "" for s in sortby.split(",")):
        headers = req.get_response_headers(**api.api_headers)
        return api.get_exception(HTTPStatus.BAD_REQUEST, headers, req.format,
                                 "InvalidParameterValue", "sortby")
    token = LAST_PAGE.set(None)
    try:
        headers, status, content = itemtypes_api.get_collection_items(api, req, dataset)
        page = LAST_PAGE.get()
    finally:
        LAST_PAGE.reset(token)
    if not (page and status == HTTPStatus.OK and isinstance(content, str)
            and page[1] + page[2] >= page[0]):
        return headers, status, content
    # Only on the last page: drop the "next" link pygeoapi adds whenever a page is full.
    if req.format in (None, "json") and content.startswith("{"):
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


def check_process_body(data: bytes) -> Response | None:
    """A bilingual 400 for a body pygeoapi 0.21 would answer with a 500, else None."""
    def bad(msg_key: str, **kw: Any) -> Response:
        return json_error(400, "InvalidParameterValue",
                          text(msg_key, example=BODY_EXAMPLE, **kw))

    if not data:
        return bad("err_body_missing")
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError:
        return bad("err_body_encoding")
    try:
        body = json.loads(raw)
    except RecursionError:  # "[[[[..." deeper than the interpreter's stack
        return bad("err_body_json", detail="nested too deeply")
    except ValueError as e:
        return bad("err_body_json", detail=f"{type(e).__name__}: line {getattr(e, 'lineno', '?')}")
    if not isinstance(body, dict):
        got = "null" if body is None else type(body).__name__
        return bad("err_body_object", got=got)
    for key in body:
        if key not in BODY_KEYS:
            return bad("err_body_key", key=str(key)[:40], allowed=", ".join(BODY_KEYS))
    inputs = body.get("inputs", {})
    if not isinstance(inputs, dict):
        return bad("err_inputs_object")
    for key, value in inputs.items():
        if value is not None and not isinstance(value, str | int | float):
            return bad("err_input_value", key=str(key)[:40])
    if not isinstance(body.get("response", "raw"), str):
        return bad("err_body_key", key="response", allowed=", ".join(BODY_KEYS))
    return None


# ---------------------------------------------------------------- the blueprint

#: what pygeoapi 0.21's process manager puts before a processor's (bilingual) user message
PROCESS_ERROR_PREFIX = "Error executing process: "


def _plain_process_error(resp: Response) -> Response:
    """A processor's 4xx message as it was written (bilingual), without pygeoapi's English
    prefix: the page shows ``description`` to the resident as is."""
    if 400 <= resp.status_code < 500 and resp.is_json:
        body = resp.get_json(silent=True)
        if isinstance(body, dict) and str(body.get("description", "")).startswith(
                PROCESS_ERROR_PREFIX):
            body["description"] = body["description"][len(PROCESS_ERROR_PREFIX):]
            resp.set_data(json.dumps(body, ensure_ascii=False))
    return resp


def blueprint() -> Blueprint:
    """The ``/api`` routes the public server opens (see ``apiconfig.API_ROUTES``)."""
    bp = Blueprint("api", __name__, url_prefix=API_PATH)

    def route(rule: str, **kw: Any) -> Any:
        return bp.route(rule, strict_slashes=False, **kw)

    @route("/")
    def landing_page() -> Response:
        return execute(core_api.landing_page)

    @route("/openapi")
    def openapi() -> Response:
        return execute(core_api.openapi_)

    @route("/conformance")
    def conformance() -> Response:
        return execute(core_api.conformance)

    @route("/collections")
    @route("/collections/<collection_id>")
    def collections(collection_id: str | None = None) -> Response:
        return execute(core_api.describe_collections, collection_id)

    @route("/collections/<collection_id>/schema")
    def collection_schema(collection_id: str) -> Response:
        return execute(core_api.get_collection_schema, collection_id)

    @route("/collections/<collection_id>/queryables")
    def queryables(collection_id: str) -> Response:
        return execute(collection_queryables, collection_id)

    @route("/collections/<collection_id>/items")
    def items(collection_id: str) -> Response:
        return execute(collection_items, collection_id, skip_valid_check=True)

    @route("/collections/<collection_id>/items/<path:item_id>")
    def item(collection_id: str, item_id: str) -> Response:
        return execute(itemtypes_api.get_collection_item, collection_id, item_id)

    @route("/processes")
    @route("/processes/<process_id>")
    def processes(process_id: str | None = None) -> Response:
        return execute(processes_api.describe_processes, process_id)

    @route("/processes/<process_id>/execution", methods=["POST"])
    def execution(process_id: str) -> Response:
        if process_id not in g.api.manager.processes:
            return json_error(404, "NoSuchProcess", text("err_not_found"))
        data = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413 (app's handler)
        bad = check_process_body(data)
        if bad is not None:
            return bad
        token = PUBLIC_ROOT.set(g.root)  # e.g. the sheet's QR links to the page on this host
        try:
            return _plain_process_error(execute(processes_api.execute_process, process_id))
        finally:
            PUBLIC_ROOT.reset(token)

    @route("/static/<path:filename>")
    def static(filename: str) -> Response:
        """pygeoapi's CSS and images; ``vendor/...``: the site's vendored libraries, which the
        overridden templates (publish/templates/pygeoapi) use instead of CDNs."""
        if "\x00" in filename:
            abort(404)
        if filename.startswith("vendor/"):
            return send_from_directory(SITE_STATIC, filename)
        return send_from_directory(PYGEOAPI_STATIC, filename)

    return bp

