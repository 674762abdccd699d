"""What every public map page shares: vendored assets and safe, atomic writing.

Why vendored: the server network and CI reach no CDN; without local copies Leaflet never loads
and no map renders. Pages reference ``/static/vendor/...``, which ``uozu-gis serve`` serves from
``publish/static/``; the basemap (GSI tiles) is the only thing fetched from outside, and every
page works without it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from markupsafe import Markup

from publish.errors import PublishError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
VENDOR_URL = "/static/vendor"
EXTERNAL_ASSET = re.compile(r'(?:src|href)="(https?://[^"]+\.(?:js|css))"')


def asset_url(rel: str) -> str:
    """``/static/<rel>?v=<hash>``: a new release never runs yesterday's cached script."""
    digest = hashlib.sha256((STATIC_DIR / rel).read_bytes()).hexdigest()[:10]
    return f"/static/{rel}?v={digest}"


def lang_script() -> Markup:
    """``static/lang.js``, to inline in ``<head>``: every page (map pages and the server's) is
    in its language from the first paint, chosen the same way (``?lang=``, the remembered
    choice, the browser's). Read again only when the file changes."""
    path = STATIC_DIR / "lang.js"
    return _lang_script(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _lang_script(path: Path, mtime_ns: int) -> Markup:
    """The script's text, checked: a ``</`` in it would end the inline ``<script>`` early, so
    such a file is refused with a clear error naming the file and the fix, never inlined (a
    real check, not an ``assert``: ``python -O`` strips those)."""
    src = path.read_text(encoding="utf-8")
    if "</" in src:
        raise PublishError("inline_script_unsafe", path=path)
    return Markup(src)


def assert_offline(html: str) -> None:
    """Fail loudly if a page would fetch a script or stylesheet from outside the server."""
    for url in EXTERNAL_ASSET.findall(html):
        raise AssertionError(f"page depends on an external asset: {url}")


def write_page(html: str, out_dir: Path, name: str) -> Path:
    """Check a page is offline-safe, then write it atomically (a server may be serving it)."""
    assert_offline(html)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
