"""A loopback server for map pages built outside a release (tests of pages on their own).

Why not ``http.server``: the pages read their vector tiles with HTTP range requests (PMTiles),
which the standard library's handler does not answer. This is a small Flask app with the same
rules as the public server: ``/static/`` = publish/static, ``/maps/`` = a folder of built pages,
werkzeug's ``send_file`` for ranges and validators, the transfer middleware for compression and
caching. It runs in a thread on 127.0.0.1 until the context ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from flask import Flask, abort, send_from_directory
from werkzeug.serving import make_server

from publish.pages.common import STATIC_DIR
from publish.server.transfer import Transfer


def maps_app(maps_dir: Path) -> Flask:
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    base = Path(maps_dir).resolve()

    @app.get("/maps/<path:name>")
    def maps(name: str) -> object:
        target = (base / name).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            abort(404)
        return send_from_directory(base, str(target.relative_to(base)))

    app.wsgi_app = Transfer(app.wsgi_app)  # type: ignore[method-assign]
    return app


@contextlib.contextmanager
def serve_maps(maps_dir: Path) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` serving ``maps_dir`` and the static files."""
    server = make_server("127.0.0.1", 0, maps_app(maps_dir), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


#: JS: ids of ``layer``'s features drawn at the current view (after the vector tiles loaded)
DRAWN = "id => GisMap.app.drawnIds(id)"
#: JS: resolves when the vector layer has drawn every tile of the view
DRAWN_ALL = """() => new Promise(done => {
  const app = GisMap.app;
  const ok = () => app.vt && !app.vtLoading && Object.keys(app.vt._tiles).length > 0 &&
    Object.values(app.vt._tiles).every(t => t.current === false || t.loaded);
  if (ok()) { done(true); return; }
  app.vt.once('load', () => done(true));
})"""
