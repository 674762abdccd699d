"""Routes for what a release answers besides pygeoapi: downloads, change feeds, changes since.

::

    /opendata/<file>     the current release's open data (GeoPackage, GeoJSON, CSV, README.txt,
                         index.json), built at publish (publish.build.opendata)
    /changes/<file>      per-layer change feeds (<layer>.json, <layer>.atom) and changes.json
    /api/changes?since=YYYY-MM-DD[&bbox=minx,miny,maxx,maxy][&layers=a,b]
                         features added, removed or changed by the releases published since
                         that day (UTC), whose bounding box meets bbox (CRS84): what a firm's
                         clerk asks ("pipes changed since 2026-04-01 in this block")

Files come from the release ``current`` points at when the request arrives, like ``/maps/``;
only names listed in the release's catalogue pattern (no ``..``, no hidden file, known suffixes)
are served. Feed links are written under :data:`publish.model.LINK_ORIGIN` at publish and follow
the URL the client used.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, redirect, request, send_from_directory

from config import messages as msg
from publish.build import changes, opendata
from publish.build import release as rel
from publish.build.answers import MEDIA_TYPES
from publish.model import API_PATH, LINK_ORIGIN
from publish.server.api import ReleaseApis, json_error

OPENDATA_SUFFIXES = {".gpkg", ".geojson", ".csv", ".txt", ".json"}
CHANGES_SUFFIXES = {".json", ".atom"}
MAX_LAYERS = 50


def release_file(base: Path, name: str, suffixes: set[str]) -> tuple[Path, str] | None:
    """(folder, file) of a servable file directly in ``base``, or None: one plain name, known
    suffix, not hidden, no control character, no symlink out of the folder."""
    if (any(ord(c) < 32 or c == "\x7f" for c in name) or len(name) > 255 or "/" in name
            or "\\" in name or name.startswith(".")):
        return None
    try:
        folder = base.resolve()
        target = (folder / name).resolve()
        ok = (target.parent == folder and target.suffix.lower() in suffixes
              and target.is_file())
    except (OSError, ValueError):
        return None
    return (folder, target.name) if ok else None


class _History:
    """The current release's change history, loaded once per release and worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: str | None = None
        self._events: list[list[Any]] = []

    def events(self, r: rel.Release) -> list[list[Any]]:
        with self._lock:
            if self._key != r.id:
                self._events = changes.load_history(r.dir / changes.CHANGES_DIR)
                self._key = r.id
            return self._events


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) != 4:
        raise ValueError(value)
    x0, y0, x1, y1 = (float(p) for p in parts)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or not (
            -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise ValueError(value)
    return x0, y0, x1, y1


def blueprint(apis: ReleaseApis) -> Blueprint:
    """The routes above, reading the release ``apis`` resolves per request."""
    bp = Blueprint("answers", __name__)
    history = _History()

    def current() -> rel.Release:
        r = apis.current()
        if r is None:
            abort(503)
        return r

    @bp.get("/opendata/")
    def opendata_index() -> Any:
        return redirect(f"{g.root}/#opendata")

    @bp.get("/opendata/<path:name>")
    def opendata_file(name: str) -> Any:
        r = current()
        found = release_file(r.dir / opendata.OPENDATA_DIR, name, OPENDATA_SUFFIXES)
        if found is None:
            abort(404)
        suffix = Path(found[1]).suffix.lstrip(".")
        media = MEDIA_TYPES.get(suffix, "application/octet-stream").split(";")[0]
        return send_from_directory(*found, mimetype=media,  # Flask adds text/*'s charset
                                   as_attachment=suffix in ("gpkg", "geojson", "csv"),
                                   max_age=300)

    @bp.get("/changes/")
    def changes_index() -> Any:
        return redirect(f"{g.root}/#changes")

    @bp.get("/changes/<path:name>")
    def changes_file(name: str) -> Any:
        r = current()
        found = release_file(r.dir / changes.CHANGES_DIR, name, CHANGES_SUFFIXES)
        if found is None or found[1] == changes.HISTORY_FILE:
            abort(404)
        body = (found[0] / found[1]).read_bytes().replace(LINK_ORIGIN.encode("ascii"),
                                                          g.root.encode("ascii"))
        suffix = Path(found[1]).suffix.lstrip(".")
        return Response(body, 200, {"Content-Type": MEDIA_TYPES[suffix] + (
            "; charset=utf-8" if suffix == "json" else ""), "Cache-Control": "max-age=300"})

    @bp.get(f"{API_PATH}/changes")
    def changes_since() -> Any:
        r = g.get("release") or current()

        def bad(key: str, **kw: Any) -> Response:
            return json_error(400, "InvalidParameterValue", msg.text(key, **kw))

        unknown = sorted(set(request.args) - {"since", "bbox", "layers", "f"})
        if unknown:
            return bad("err_changes_param", name=unknown[0])
        if request.args.get("f", "json") != "json":
            return bad("err_changes_param", name="f")
        since_raw = request.args.get("since")
        if since_raw is None:
            return bad("err_changes_since", value="")
        try:
            since = changes.parse_since(since_raw)
        except ValueError:
            return bad("err_changes_since", value=since_raw[:40])
        try:
            bbox = _bbox(request.args.get("bbox"))
        except ValueError:
            return bad("err_changes_bbox", value=request.args.get("bbox", "")[:80])
        public = sorted(r.meta.get("layers", {}))
        layers = None
        if request.args.get("layers"):
            layers = [x.strip() for x in request.args["layers"].split(",") if x.strip()]
            wrong = [x for x in layers if x not in public]
            if wrong or len(layers) > MAX_LAYERS:
                return bad("err_changes_layers", layer=(wrong or layers)[0][:64],
                           known=", ".join(public))
        events = history.events(r)
        found = changes.changed_since(None, since, bbox, layers, events=events)
        first = min((e[1] for e in events), default=None)
        root = g.root
        out: dict[str, Any] = {
            "since": since.isoformat(), "bbox": list(bbox) if bbox else None,
            "layers": found,
            "counts": {lid: {op: len(ids) for op, ids in d.items()} for lid, d in found.items()},
            "release": r.id, "history_from": first,
            "complete": first is not None and since.isoformat() >= first,
            "links": [
                {"rel": "self", "type": "application/json",
                 "href": f"{root}{request.full_path.rstrip('?')}"},
                {"rel": "item", "type": "application/geo+json", "templated": True,
                 "href": f"{root}{API_PATH}/collections/{{layer}}/items/{{id}}"},
                *({"rel": "alternate", "type": "application/atom+xml", "title": lid,
                   "href": f"{root}/changes/{lid}.atom"} for lid in (layers or public)),
            ],
        }
        if not out["complete"]:
            out["note"] = msg.both("changes_history_from", first=first or "-")
        return jsonify(out)

    return bp
