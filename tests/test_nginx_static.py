"""docs/nginx/gis.conf with a real nginx: the hazard map works with the API stopped.

nginx (Debian package, scripts/setup.sh) runs on a free loopback port with the documented config,
its placeholders filled in, in front of a release published from the real Uozu config over the
sample exports (conftest's ``uozu_merged``). With ``uozu-gis serve`` stopped the hazard page, its
data and every asset it links load (right types, caching, range requests); the API and the
landing page answer a bilingual 503. With the server running, /api is proxied, its links follow
the host the client used (nginx is in ``publish.trusted_proxies``), answers are compressed, and a
cached answer survives the server going away. A new release is picked up by the ``current``
switch alone.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from publish_fixtures import public_copy

from config import Project, load_project
from publish.build import publish
from publish.build import release as rel
from publish.pages.common import STATIC_DIR
from publish.server.app import ServerProcess, free_port

REPO = Path(__file__).resolve().parent.parent
NGINX_DIR = REPO / "docs" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HOST = "gis.example.jp"


@dataclass
class Site:
    project: Project
    root: Path
    nginx_port: int
    api_port: int
    hazard: str  # the hazard page's file name


def _get(port: int, path: str, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": f"{HOST}:{port}", **(headers or {})})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def nginx_config(tmp: Path, port: int, public_dir: Path, api_port: int,
                 static_dir: Path = STATIC_DIR) -> Path:
    """The documented gis.conf with its placeholders filled in, inside a minimal nginx.conf."""
    site = (NGINX_DIR / "gis.conf").read_text(encoding="utf-8")
    for key, value in {"LISTEN": f"127.0.0.1:{port}", "SERVER_NAME": HOST,
                       "PUBLIC_DIR": str(public_dir), "STATIC_DIR": str(static_dir),
                       "NGINX_DIR": str(NGINX_DIR), "API": f"127.0.0.1:{api_port}",
                       "CACHE_DIR": str(tmp / "cache")}.items():
        site = site.replace("{{" + key + "}}", value)
    assert "{{" not in site
    (tmp / "gis.conf").write_text(site, encoding="utf-8")
    temp = "\n".join(f"    {k}_temp_path {tmp}/{k};" for k in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp / "nginx.conf"
    main.write_text(f"""daemon off;
worker_processes auto;
user root;  # the test's files live in a private /tmp folder; a real deployment runs as www-data
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
    include {tmp}/gis.conf;
}}
""", encoding="utf-8")
    return main


@pytest.fixture(scope="module")
def site(uozu_merged: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Site]:
    assert Path(NGINX).exists(), "nginx is missing: apt-get install -y nginx (scripts/setup.sh)"
    src, _ = uozu_merged
    tmp = tmp_path_factory.mktemp("nginx")
    root = tmp / "proj"  # the sample project, with nginx's address as a trusted proxy
    root.mkdir()
    shutil.copytree(src / "config", root / "config")
    for d in ("layers", "data"):
        (root / d).symlink_to(src / d)
    yml = root / "config" / "project.yml"
    text = yml.read_text(encoding="utf-8")
    assert "\npublish:\n" in text and "trusted_proxies" not in text
    yml.write_text(text.replace("\npublish:\n", "\npublish:\n  trusted_proxies: [127.0.0.1]\n"),
                   encoding="utf-8")
    project = public_copy(load_project(root), tmp / "public", base_url=None)
    res = publish(project)
    pages = json.loads((project.public_dir / "current" / "site" / "maps.json").read_text())
    hazard = next(p["file"] for p in pages if p["file"].startswith("hazard"))
    port, api_port = free_port(), free_port()
    conf = nginx_config(tmp, port, project.public_dir, api_port)
    (tmp / "cache").mkdir()
    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / k).mkdir()
    check = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([NGINX, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=(tmp / "nginx.out").open("w"))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        assert res.release_id
        yield Site(project, root, port, api_port, hazard)
    finally:
        proc.terminate()  # by PID: the master stops its worker
        proc.wait(30)


def _assets(html: str) -> list[str]:
    """Every local script, style and data URL the page names (absolute or page-relative)."""
    urls = re.findall(r'(?:src|href)="([^"#]+)"', html)
    urls += re.findall(r'"(/static/[^"]+|[A-Za-z0-9_-]+\.json\?v=[0-9a-f]+)"', html)
    out = []
    for u in dict.fromkeys(urls):
        if u.startswith(("http:", "https:", "data:", "mailto:", "javascript:")) or u == "/":
            continue
        out.append(u if u.startswith("/") else f"/maps/{u}")
    return out


TYPES = {".js": "application/javascript", ".css": "text/css", ".json": "application/json",
         ".png": "image/png", ".svg": "image/svg+xml", ".woff2": "font/woff2",
         ".html": "text/html"}


def test_hazard_page_loads_with_the_api_stopped(site: Site) -> None:
    port = site.nginx_port
    status, head, body = _get(port, f"/maps/{site.hazard}")
    assert status == 200 and head["content-type"] == "text/html; charset=utf-8"
    assert head["cache-control"] == "public, max-age=60"
    html = body.decode("utf-8")
    assets = _assets(html)
    data = [a for a in assets if re.search(r"/maps/[^/]+\.json\?v=", a)]
    assert len(data) == 1, assets  # the page's own JSON (hazard and shelter features)
    assert sum(a.startswith("/static/") for a in assets) >= 3, assets
    for a in assets:
        status, head, blob = _get(port, a)
        assert status == 200, (a, status)
        ext = os.path.splitext(a.split("?")[0])[1]
        if ext in TYPES:
            assert head["content-type"].split(";")[0] == TYPES[ext], (a, head["content-type"])
        if "?v=" in a:
            assert head["cache-control"] == "public, max-age=31536000, immutable", a
    status, _, blob = _get(port, data[0])
    layers = json.loads(blob)["layers"]
    assert layers and sum(len(v) for v in layers.values()) > 0
    # range request on a static file: 206 with the exact bytes
    path = data[0].split("?")[0]
    full = (site.project.public_dir / "current" / "site" / path.lstrip("/")).read_bytes()
    status, head, part = _get(port, path, {"Range": "bytes=10-109"})
    assert status == 206 and part == full[10:110]
    assert head["content-range"] == f"bytes 10-109/{len(full)}"
    # compressed for clients that accept it
    status, head, z = _get(port, path, {"Accept-Encoding": "gzip"})
    assert status == 200 and head["content-encoding"] == "gzip" and gzip.decompress(z) == full
    # the API and the landing page say, in both languages, that they are down
    status, head, blob = _get(port, "/api/collections?f=json")
    assert status == 503 and head["retry-after"] == "30"
    desc = json.loads(blob)["description"]
    assert "API は一時的に利用できません" in desc and "The API is temporarily unavailable" in desc
    status, head, blob = _get(port, "/")
    assert status == 503 and "Temporarily unavailable" in blob.decode("utf-8")
    assert head["content-type"].startswith("text/html")


def test_nothing_else_of_a_release_is_reachable(site: Site) -> None:
    port = site.nginx_port
    maps = site.project.public_dir / "current" / "site" / "maps"
    (maps / "leak.html").symlink_to(site.project.public_dir / "current" / "public.gpkg")
    (maps / ".hidden.json").write_text("{}", encoding="utf-8")
    try:
        assert _get(port, "/maps/leak.html")[0] == 404  # disable_symlinks: try_files finds none
        assert _get(port, "/maps/.hidden.json")[0] == 404
        for p in ("/public.gpkg", "/pygeoapi.yml", "/maps/../public.gpkg", "/release.json"):
            status, _, body = _get(port, p)
            assert status != 200 and b"SQLite format" not in body, p
    finally:
        (maps / "leak.html").unlink()
        (maps / ".hidden.json").unlink()


def test_api_proxied_links_follow_the_public_host(site: Site) -> None:
    port = site.nginx_port
    server = ServerProcess(site.root, site.api_port, workers=1,
                           public_dir=site.project.public_dir,
                           log=site.project.public_dir.parent / "server.log")
    try:
        status, head, body = _get(port, "/api/collections?f=json",
                                  {"X-Forwarded-Host": "evil.example", "X-Forwarded-Port": "1"})
        assert status == 200, body[:300]
        hrefs = [ln["href"] for c in json.loads(body)["collections"] for ln in c["links"]]
        site_links = [h for h in hrefs if HOST in h or "evil" in h or "127.0.0.1" in h]
        assert all(h.startswith(f"http://{HOST}:{port}/") for h in site_links), site_links[:3]
        assert any(h.startswith(f"http://{HOST}:{port}/api/collections/") for h in site_links)
        assert head["x-release"] == site.project.public_dir.joinpath("current").resolve().name
        status, head, z = _get(port, "/api/collections?f=json", {"Accept-Encoding": "gzip"})
        assert status == 200 and head["content-encoding"] == "gzip"
        assert json.loads(gzip.decompress(z))["collections"]
        first = json.loads(_get(port, "/api/collections?f=json")[2])
        coll = first["collections"][0]["id"]
        status, _, items = _get(port, f"/api/collections/{coll}/items?f=json&limit=2")
        assert status == 200 and len(json.loads(items)["features"]) == 2
    finally:
        server.stop()
    # the server is gone: what nginx has cached is still answered, anything else is a 503
    status, head, body = _get(port, "/api/collections?f=json")
    assert status == 200 and head["x-cache"] in ("HIT", "STALE") and json.loads(body) == first
    assert _get(port, "/api/collections?f=json&limit=7")[0] == 503
    assert _get(port, f"/maps/{site.hazard}")[0] == 200


def test_current_switch_is_picked_up(site: Site) -> None:
    """A new release is served from the next request on: nginx follows ``current``."""
    public = site.project.public_dir
    old = rel.current_id(public)
    assert old is not None
    new = old[:-1] + ("0" if old[-1] != "0" else "1")
    shutil.copytree(public / "releases" / old, public / "releases" / new, symlinks=True)
    marker = public / "releases" / new / "site" / "maps.json"
    pages = json.loads(marker.read_text(encoding="utf-8"))
    added = {"file": "new.html", "title": {"ja": "新", "en": "new"}}
    marker.write_text(json.dumps([*pages, added]), encoding="utf-8")
    try:
        rel.switch(public, new)
        status, _, body = _get(site.nginx_port, "/maps.json")
        assert status == 200 and json.loads(body)[-1]["file"] == "new.html"
    finally:
        rel.switch(public, old)
        shutil.rmtree(public / "releases" / new)
    status, _, body = _get(site.nginx_port, "/maps.json")
    assert json.loads(body) == pages
