"""The pygeoapi configuration and OpenAPI document of one release (public store only).

Why generate rather than hand-edit: everything pygeoapi says about a collection (titles, sources,
licence, bbox, data date, queryables) comes from the layer specs and the data just written, so it
cannot drift. pygeoapi 0.21 traps handled here (performance-anchors §3):

* ``server.limits.max_items`` defaults to 10: always set from ``publish.max_items``;
* ``metadata.license.url`` and the provider/contact URLs are required in practice (the OpenAPI
  build crashes with ``KeyError: 'url'`` on a config that ``validate_config`` accepts);
* a JGD2011 plane CRS as ``storage_crs`` gets axis-mangled: storage is CRS84, and the city's own
  plane zone (``target_crs``) is only offered as an *output* CRS (``?crs=``), where pygeoapi
  transforms correctly (authority axis order: northing, easting);
* building the OpenAPI document instantiates every provider, so one broken collection kills it:
  it is built at publish time, and a failure aborts the publish (the running release stays).

Links: every URL in the config starts with :data:`publish.model.LINK_ORIGIN`, a placeholder the
server replaces per request by the URL the client used (or ``publish.base_url``), so one release
serves correct links on any host, port or proxy prefix.

The pipe-sheet process is named here by id and dotted path only (:data:`PROCESS_ID`,
:data:`PROCESSOR`); it is defined in :mod:`publish.server.process_pipesheet` (the build never
imports the server). It is registered only if the project publishes a layer with map role
``parcel`` and at least one with role ``pipe``.

Japanese UI: pygeoapi ships no ``ja`` catalogue, so :func:`write_locale` compiles
``config.messages.PYGEOAPI_UI_JA`` into the release's ``locale/ja/LC_MESSAGES/messages.mo``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from pyproj import CRS
from pyproj.exceptions import CRSError

from config import Project
from config import messages as msg
from config.models import LayerSpec
from publish.build.pgpublic import PgTarget
from publish.errors import PublishError
from publish.model import (
    API_PATH,
    GEOM_COLUMN,
    ID_COLUMN,
    LINK_ORIGIN,
    LayerPlan,
    StoreLayer,
)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
PROVIDER = "publish.server.providers.PublicOGRProvider"
PG_PROVIDER = "publish.server.providers_pg.PublicPostgreSQLProvider"
#: the pipe-sheet process: its id and the dotted path pygeoapi loads it by (defined by the server)
PROCESS_ID = "pipe-sheet"
PROCESSOR = "publish.server.process_pipesheet.PipeSheetProcessor"
# pygeoapi routes the public API serves (below API_PATH); jobs, STAC, tiles, EDR and admin stay
# closed, and are left out of the OpenAPI document. A process is served only if the release's
# config registers it (pygeoapi answers 404 for any other id).
API_ROUTES = re.compile(
    r"^/(?:openapi|conformance|changes|collections(?:/.*)?|processes(?:/[A-Za-z0-9_-]{1,64})?"
    r"|static/.+)?$")
# The one write-like route: executing a registered process (it only computes an answer).
PROCESS_EXECUTION = re.compile(r"^/processes/([A-Za-z0-9_-]{1,64})/execution/?$")
MAX_PROCESS_BODY = 4096
#: pygeoapi's default log format names each source file by its absolute path: not on our stderr
LOG_FORMAT = "[%(asctime)s] %(name)s %(levelname)s - %(message)s"
LANGUAGES = ["ja", "en-US"]  # first = default; babel parses both, pygeoapi negotiates ?lang=
# GSI tiles: the Japanese base map (pygeoapi requires server.map for its HTML pages).
BASEMAP_URL = "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png"
BASEMAP_ATTRIBUTION = ('<a href="https://maps.gsi.go.jp/development/ichiran.html">'
                       "地理院タイル / GSI Tiles</a>")
WORLD = [-180.0, -90.0, 180.0, 90.0]
DOWNLOAD_NAMES = {"gpkg": "GeoPackage", "geojson": "GeoJSON", "csv": "CSV"}
LOGGER = logging.getLogger(__name__)
#: pygeoapi's HTML with vendored assets only (its own templates fetch Bootstrap, Leaflet and
#: Swagger UI from CDNs: blank pages offline); templates not overridden are pygeoapi's
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "pygeoapi"


def api_url(base_url: str) -> str:
    """pygeoapi's ``server.url``: the public base URL plus the mount point."""
    return base_url.rstrip("/") + API_PATH


def crs_uri(crs: str) -> str:
    """The OGC URI of a CRS given as ``EPSG:xxxx`` (or any pyproj input with an authority)."""
    try:
        auth = CRS.from_user_input(crs).to_authority()
    except CRSError:
        auth = None
    if not auth:
        raise PublishError("publish_crs_unsupported", crs=crs)
    name, code = auth
    return f"http://www.opengis.net/def/crs/{name}/0/{code}"


def output_crs(project: Project) -> list[str]:
    """CRSs a client may ask for with ``?crs=``: CRS84, EPSG:4326 and the city's own plane zone."""
    return list(dict.fromkeys([CRS84, EPSG4326, crs_uri(project.config.target_crs)]))


def sheet_layers(project: Project) -> tuple[list[str], list[str]]:
    """Public layers playing the roles the pipe sheet needs: (parcel layers, pipe layers)."""
    public = [s for s in project.specs.values() if s.visibility == "public"]
    return ([s.id for s in public if s.map.role == "parcel"],
            [s.id for s in public if s.map.role == "pipe"])


def has_pipe_sheet(project: Project) -> bool:
    """The process exists only where its roles exist: a parcel layer and a pipe layer."""
    parcels, pipes = sheet_layers(project)
    return bool(parcels and pipes)


def sheet_page(project: Project) -> str | None:
    """The map page (file name) that hosts the parcel search, for the sheet's QR code."""
    parcels, _ = sheet_layers(project)
    for lid in parcels:
        for page in project.specs[lid].map.pages:
            return f"{page}.html"
    return None


def process_resource(store: Path, project_root: Path, map_page: str | None) -> dict[str, Any]:
    """The ``resources`` entry of the pipe-sheet process (loaded by pygeoapi by dotted path)."""
    return {"type": "process",
            "processor": {"name": PROCESSOR, "store": str(store),
                          "project_root": str(project_root), "map_page": map_page}}


def _i18n(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


def _as_datetime(date: str | None) -> dt.datetime | None:
    """The data date as an aware datetime (start of day, UTC), or None if absent/unparsable."""
    if not date:
        return None
    try:
        day = dt.date.fromisoformat(str(date)[:10])
    except ValueError:
        LOGGER.warning("data_date %r is not YYYY-MM-DD; no temporal extent", date)
        return None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _as_of(date: str | None) -> dict[str, str]:
    return msg.both("data_as_of", date=date) if date else msg.both("data_date_unknown")


def collection_description(spec: LayerSpec, date: str | None) -> dict[str, str]:
    """Description with the data date ("as of") and the source, in both languages."""
    base = spec.description or spec.title
    as_of = _as_of(date)
    return _i18n(
        f"{base.ja} ({as_of['ja']})。{msg.ja('link_source', source=spec.attribution.ja)}",
        f"{base.en} ({as_of['en']}). {msg.en('link_source', source=spec.attribution.en)}",
    )


def _enclosures(lid: str, files: list[dict[str, Any]], root: str) -> list[dict[str, Any]]:
    """``rel=enclosure`` links to the layer's open-data files (served under ``/opendata``)."""
    out = []
    for f in files:
        key = "link_download_standard" if f.get("standard") else "link_download"
        out.append({"type": f["type"], "rel": "enclosure", "href": f"{root}/opendata/{f['file']}",
                    "title": msg.text(key, format=DOWNLOAD_NAMES.get(f["format"], f["format"]),
                                      file=f["file"]),
                    "length": int(f["bytes"])})
    return out


def _links(spec: LayerSpec, base_url: str,
           downloads: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    root = base_url.rstrip("/")
    return [*_enclosures(spec.id, downloads or [], root),
        {"type": "text/html", "rel": "license", "href": spec.license_url,
         "title": msg.text("link_license", license=spec.license)},
        {"type": "text/html", "rel": "related", "href": f"{root}/terms#layer-{spec.id}",
         "title": f"{msg.ja('link_source', source=spec.attribution.ja)} / "
                  f"{msg.en('link_source', source=spec.attribution.en)}"},
        {"type": "text/html", "rel": "terms-of-service", "href": f"{root}/terms",
         "title": msg.text("link_terms")},
    ]


def _title_field(spec: LayerSpec, plan: LayerPlan) -> str | None:
    label = spec.map.label_field
    return label if label and label in plan.names else None


def build_config(project: Project, store: Path, layers: dict[str, StoreLayer],
                 plans: dict[str, LayerPlan], *, locale_dir: Path,
                 pg: PgTarget | None = None,
                 processes: dict[str, dict[str, Any]] | None = None,
                 downloads: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The pygeoapi config dict for one release (absolute paths into the release directory).

    With ``pg`` the collections read the release's PostGIS schema as the SELECT-only reader role
    (CQL2 ``filter`` works there); otherwise the release's public GeoPackage. URLs start with
    :data:`LINK_ORIGIN` (replaced by the server per request). ``processes`` are further OGC API
    processes of this release (id -> ``resources`` entry naming the processor by dotted path),
    registered besides the pipe sheet. ``downloads``: the layer's open-data files (``file``,
    ``format``, ``type``, ``bytes``, ``standard``), linked from its collection as enclosures.
    """
    pc = project.config.publish
    base = LINK_ORIGIN
    crs_list = output_crs(project)
    licenses = {(s.license, s.license_url) for s in (p.spec for p in plans.values())}
    if len(licenses) == 1:
        (lic_name, lic_url), = licenses
        license_ = {"name": lic_name, "url": lic_url}
    else:
        license_ = {"name": _i18n("データごとに異なります (利用規約参照)",
                                  "differs per data set (see the terms of use)"),
                    "url": f"{base}/terms"}
    city = project.config.city
    keywords = list(dict.fromkeys([*pc.keywords, city.ja, city.en]))
    all_bboxes = [lay.bbox for lay in layers.values() if lay.bbox]
    union = ([min(b[0] for b in all_bboxes), min(b[1] for b in all_bboxes),
              max(b[2] for b in all_bboxes), max(b[3] for b in all_bboxes)]
             if all_bboxes else WORLD)
    resources: dict[str, Any] = {}
    for lid, plan in plans.items():
        spec, lay = plan.spec, layers[lid]
        titles = {c.name: (f"{c.title.ja} / {c.title.en}" if c.title else c.name)
                  + (f" [{c.unit}]" if c.unit else "") for c in plan.columns}
        provider: dict[str, Any] = {"type": "feature"}
        if pg is None:
            provider |= {"name": PROVIDER, "layer": lid,
                         "data": {"source_type": "GPKG", "source": str(store),
                                  "source_options": {}}}
        else:
            provider |= {"name": PG_PROVIDER, "table": lid, "geom_field": GEOM_COLUMN,
                         "data": pg.provider_data()}
        provider |= {
            "id_field": ID_COLUMN,
            "storage_crs": CRS84,
            "crs": crs_list,
            "queryables": plan.queryables,
            "field_titles": titles,
        }
        if tf := _title_field(spec, plan):
            provider["title_field"] = tf
        res: dict[str, Any] = {
            "type": "collection",
            "title": _i18n(spec.title.ja, spec.title.en),
            "description": collection_description(spec, lay.data_date),
            "keywords": list(dict.fromkeys([*spec.keywords, spec.title.ja, spec.title.en])),
            "links": _links(spec, base, (downloads or {}).get(lid)),
            "extents": {"spatial": {"bbox": list(lay.bbox or union), "crs": CRS84}},
            "providers": [provider],
        }
        stamp = _as_datetime(lay.data_date)
        if stamp is not None:
            # datetime objects, not strings: pygeoapi's datetime= validation calls .tzinfo
            res["extents"]["temporal"] = {"begin": stamp, "end": stamp, "trs": GREGORIAN}
        resources[lid] = res
    # The printable pipe sheet (配管図) as an OGC API process: built from the public store only,
    # and only where the roles it needs are published.
    if has_pipe_sheet(project):
        resources[PROCESS_ID] = process_resource(store, project.root, sheet_page(project))
    for pid, res in (processes or {}).items():
        if not re.match(r"^[A-Za-z0-9_-]{1,64}$", pid) or pid in resources:
            raise PublishError("pygeoapi_config_invalid", detail=f"process id {pid!r}")
        resources[pid] = res
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 5000},  # unused: the server module binds
            "url": api_url(base),
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": LANGUAGES,
            "locale_dir": str(locale_dir),
            "cors": False,  # flask-cors is not installed; the server adds CORS headers itself
            "pretty_print": False,
            "admin": False,
            "limits": {"max_items": pc.max_items, "default_items": pc.default_items,
                       "on_exceed": "throttle"},
            "map": {"url": BASEMAP_URL, "attribution": BASEMAP_ATTRIBUTION},
            "templates": {"path": str(TEMPLATES), "static": str(TEMPLATES / "static")},
        },
        "logging": {"level": "ERROR", "logformat": LOG_FORMAT},
        "metadata": {
            "identification": {
                "title": _i18n(pc.title.ja, pc.title.en),
                "description": _i18n(pc.description.ja, pc.description.en),
                "keywords": keywords,
                "keywords_type": "theme",
                "terms_of_service": _i18n(msg.ja("service_terms", url=f"{base}/terms"),
                                          msg.en("service_terms", url=f"{base}/terms")),
                "url": pc.city_url,
            },
            "license": license_,
            "provider": {"name": _i18n(city.ja, city.en), "url": pc.city_url},
            "contact": {k: v for k, v in {
                "name": pc.contact_name,
                "position": pc.contact_name,
                "city": city.ja,
                "country": "Japan",
                "phone": pc.contact_phone,
                "email": pc.contact_email,
                "url": pc.contact_url,
                "role": "pointOfContact",
            }.items() if v},
        },
        "resources": resources,
    }


def validate(config: dict[str, Any]) -> None:
    """pygeoapi's own JSON-Schema validation; a failure is a bilingual PublishError."""
    from jsonschema.exceptions import ValidationError
    from pygeoapi.config import validate_config

    try:
        validate_config(config)
    except ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise PublishError("pygeoapi_config_invalid", detail=f"{where}: {e.message}") from e


def build_openapi(config: dict[str, Any], queryables: dict[str, list[str]]) -> dict[str, Any]:
    """The OpenAPI document, exactly as ``pygeoapi openapi generate`` builds it (``get_oas``).

    Then: only the routes the server opens stay (no processes/jobs), and only the declared
    queryables stay advertised as ``?property=value`` parameters (the provider answers 400 for
    the others). Fails with a PublishError naming the collection.
    """
    from pygeoapi.openapi import get_oas
    from pygeoapi.plugin import load_plugin

    for lid, res in config["resources"].items():  # find *which* collection is broken first
        if res.get("type") != "collection":
            continue
        try:
            load_plugin("provider", res["providers"][0])
        except Exception as e:
            raise PublishError("openapi_failed", collection=lid,
                               detail=f"{type(e).__name__}: {e}") from e
    try:
        oas = get_oas(config, fail_on_invalid_collection=True)
    except Exception as e:
        raise PublishError("openapi_failed", collection="*",
                           detail=f"{type(e).__name__}: {e}") from e
    oas["paths"] = {p: v for p, v in oas.get("paths", {}).items()
                    if API_ROUTES.match(p) or PROCESS_EXECUTION.match(p)}
    oas["paths"]["/changes"] = changes_openapi(sorted(
        lid for lid, r in config["resources"].items() if r.get("type") == "collection"))
    used = {t for op in oas["paths"].values() for o in op.values() if isinstance(o, dict)
            for t in o.get("tags", [])}
    oas["tags"] = [t for t in oas.get("tags", []) if t.get("name") in used]
    for lid, names in queryables.items():
        fields = set(config["resources"][lid]["providers"][0].get("field_titles", {}))
        op = oas.get("paths", {}).get(f"/collections/{lid}/items", {}).get("get")
        if op:
            op["parameters"] = [p for p in op["parameters"]
                                if not (isinstance(p, dict) and p.get("in") == "query"
                                        and p.get("name") in fields and p["name"] not in names)]
    return oas


def changes_openapi(layers: list[str]) -> dict[str, Any]:
    """The OpenAPI path item of ``GET /changes`` (served by :mod:`publish.server.answers`)."""
    ids = {"type": "array", "items": {"type": "string"}}
    return {"get": {
        "summary": msg.text("oas_changes_summary"),
        "description": msg.text("oas_changes_description"),
        "operationId": "getChanges",
        "tags": ["server"],
        "parameters": [
            {"name": "since", "in": "query", "required": True,
             "description": msg.text("oas_changes_since"),
             "schema": {"type": "string", "example": "2026-04-01"}},
            {"name": "bbox", "in": "query", "required": False, "style": "form",
             "explode": False, "description": msg.text("oas_changes_bbox"),
             "schema": {"type": "array", "minItems": 4, "maxItems": 4,
                        "items": {"type": "number"}}},
            {"name": "layers", "in": "query", "required": False, "style": "form",
             "explode": False, "description": msg.text("oas_changes_layers"),
             "schema": {"type": "array", "items": {"type": "string", "enum": layers}}},
        ],
        "responses": {
            "200": {"description": msg.text("oas_changes_200"), "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "since": {"type": "string"}, "release": {"type": "string"},
                    "complete": {"type": "boolean"},
                    "layers": {"type": "object", "additionalProperties": {
                        "type": "object", "properties": {
                            "added": ids, "removed": ids, "changed": ids}}}}}}}},
            "400": {"description": msg.text("oas_changes_400")},
        },
    }}


def write_locale(locale_dir: Path) -> Path:
    """Compile pygeoapi UI catalogues (gettext .mo) into ``locale_dir``; returns the ja one.

    ``en`` gets a one-entry catalogue: without any, pygeoapi renders ``dir="text_direction"``.
    """
    out = locale_dir / "ja" / "LC_MESSAGES" / "messages.mo"
    for lang, table in (("ja", msg.PYGEOAPI_UI_JA), ("en", {"text_direction": "ltr"})):
        cat = Catalog(locale=lang, domain="messages", charset="utf-8")
        for msgid, text in table.items():
            cat.add(msgid, text)
        path = locale_dir / lang / "LC_MESSAGES" / "messages.mo"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_mo(fh, cat)
    return out


def dump_yaml(data: dict[str, Any], path: Path) -> None:
    """YAML with real UTF-8 Japanese (staff read these files)."""
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False,
                                   default_flow_style=False), encoding="utf-8")
