"""What every public map page shares: vendored assets, GSI basemap, attribution.

Why vendored: the server network and CI reach no CDN, and folium's defaults pull 10 files from
4 CDN hosts; without them Leaflet never loads and no map renders. Pages reference
``/static/vendor/...``, which ``uozu-gis serve`` serves from ``publish/static/``.
"""

from __future__ import annotations

from pathlib import Path

import folium

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
VENDOR_URL = "/static/vendor"

OFFLINE_JS = [
    ("leaflet", f"{VENDOR_URL}/leaflet/leaflet.js"),
    ("jquery", f"{VENDOR_URL}/jquery/jquery.min.js"),
    ("bootstrap", f"{VENDOR_URL}/bootstrap/bootstrap.bundle.min.js"),
    ("awesome_markers", f"{VENDOR_URL}/awesome-markers/leaflet.awesome-markers.js"),
]
OFFLINE_CSS = [
    ("leaflet_css", f"{VENDOR_URL}/leaflet/leaflet.css"),
    ("bootstrap_css", f"{VENDOR_URL}/bootstrap/bootstrap.min.css"),
    ("awesome_markers_font_css", f"{VENDOR_URL}/fontawesome/css/all.min.css"),
    ("awesome_markers_css", f"{VENDOR_URL}/awesome-markers/leaflet.awesome-markers.css"),
]

GSI_STD = "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png"
GSI_PALE = "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png"
GSI_ATTR = ('<a href="https://maps.gsi.go.jp/development/ichiran.html" target="_blank">'
            "地理院タイル</a>")
OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTR = ('&copy; <a href="https://www.openstreetmap.org/copyright" target="_blank">'
            "OpenStreetMap</a> contributors")


def offline_map(location: tuple[float, float], zoom_start: int = 15, **kw: object) -> folium.Map:
    """A folium map with local assets and the GSI basemap (OSM as an alternative).

    The page still works when tiles cannot load: data layers never depend on the basemap.
    """
    m = folium.Map(location=location, zoom_start=zoom_start, tiles=None, prefer_canvas=True,
                   control_scale=True, **kw)
    m.default_js = list(OFFLINE_JS)
    m.default_css = list(OFFLINE_CSS)
    folium.TileLayer(GSI_PALE, attr=GSI_ATTR, name="地理院タイル (淡色) / GSI pale",
                     max_zoom=18, max_native_zoom=18).add_to(m)
    folium.TileLayer(GSI_STD, attr=GSI_ATTR, name="地理院タイル (標準) / GSI standard",
                     max_zoom=18, show=False).add_to(m)
    folium.TileLayer(OSM_URL, attr=OSM_ATTR, name="OpenStreetMap", max_zoom=19,
                     show=False).add_to(m)
    return m


def assert_offline(html: str) -> None:
    """Fail loudly if a page would fetch a script or stylesheet from outside the server."""
    import re
    for url in re.findall(r'(?:src|href)="(https?://[^"]+\.(?:js|css))"', html):
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
