"""Disaster-day load (issue 17 item 5): 1,000 residents open the hazard map within 60 seconds.

Each simulated resident arrives on an open-loop schedule (resident *i* at
``i × seconds / residents``, so a slow server does not slow the arrivals down), fetches the
hazard page, then its data (``<page>.json``) and every local script and style the page links,
with up to ``--parallel`` of them at once (a browser opens 6 connections per host), each on a
new connection (pessimistic: a browser reuses its 6). Nothing is cached between residents:
every one is a first visit.

Targets, one after the other on the same release (loopback only):

* ``nginx-gz``: docs/nginx/gis.conf (placeholders filled in as in tests/test_nginx_static.py)
  in front of the release, **with the API process stopped** — what a CDN or nginx alone serves —
  after the documented deploy step that writes ``<file>.gz`` next to the assets and pages
  (``gzip_static``);
* ``nginx``: the same without that step (nginx gzips every answer on the fly);
* ``serve``: ``uozu-gis serve`` alone (gunicorn, ``--workers`` sync workers; Flask serves the
  pages and /static).

Reported per target: errors (any status ≠ 200 or a connection error / timeout of
``--timeout`` s), p50/p95/max of each request, p50/p95 of a resident's whole first paint
(from the scheduled arrival to the last asset; queueing at the client counts), requests and MB.
The data: the real Uozu config over the sample exports (``--scale``), merged and published once
into ``bench/work/disaster_day`` (reused when the scale matches).

Usage::

    .venv/bin/python bench/bench_disaster_day.py                      # RESULTS.md run, ~3 min
    .venv/bin/python bench/bench_disaster_day.py --residents 100 --seconds 10   # smoke
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / "work" / "disaster_day"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def prepare(scale: float) -> tuple[Path, Path]:
    """(project root, public dir) of a published sample project; reused when the scale matches."""
    from conftest import make_uozu_project  # tests/conftest.py

    from config import load_project
    from etl.pipeline import run_merge
    from publish.build import publish

    root, marker = WORK / "proj", WORK / "proj.json"
    if marker.exists() and json.loads(marker.read_text()).get("scale") == scale:
        return root, root / "data" / "public"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    make_uozu_project(root, scale=scale)
    yml = root / "config" / "project.yml"  # nginx on loopback is the trusted proxy
    yml.write_text(yml.read_text(encoding="utf-8").replace(
        "\npublish:\n", "\npublish:\n  trusted_proxies: [127.0.0.1]\n"), encoding="utf-8")
    project = load_project(root)
    run_merge(project)
    publish(project)
    log(f"sample at scale {scale} merged and published in {time.perf_counter() - t0:.0f} s")
    marker.write_text(json.dumps({"scale": scale}))
    return root, project.public_dir


def page_urls(public_dir: Path) -> tuple[str, list[str]]:
    """The hazard page and the URLs it loads at first paint (its data, scripts, styles)."""
    site = public_dir / "current" / "site"
    pages = json.loads((site / "maps.json").read_text(encoding="utf-8"))
    page = next(p["file"] for p in pages if p["file"].startswith("hazard"))
    html = (site / "maps" / page).read_text(encoding="utf-8")
    urls = re.findall(r'(?:src|href)="([^"#]+)"', html)
    urls += re.findall(r'"(/static/[^"]+|[A-Za-z0-9_-]+\.json\?v=[0-9a-f]+)"', html)
    out = []
    for u in dict.fromkeys(urls):
        if u.startswith(("http:", "https:", "data:", "mailto:", "javascript:")) or u == "/":
            continue
        out.append(u if u.startswith("/") else f"/maps/{u}")
    return f"/maps/{page}", out


class Client:
    """One resident's connections (a browser: one for the page, up to N for its assets)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.local = threading.local()

    def get(self, path: str) -> tuple[float, int, int]:
        conn = getattr(self.local, "conn", None)
        t = time.perf_counter()
        for attempt in (0, 1):  # a keep-alive connection the server closed: reconnect once
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout)
            try:
                conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
                r = conn.getresponse()
                body = r.read()
                return time.perf_counter() - t, r.status, len(body)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = self.local.conn = None
                if attempt:
                    break
        return time.perf_counter() - t, 599, 0


def run(port: int, page: str, assets: list[str], residents: int, seconds: float,
        parallel: int, max_threads: int, timeout: float) -> dict[str, Any]:
    reqs: list[tuple[float, int, int]] = []
    paints: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.5
    asset_pool = ThreadPoolExecutor(max_threads * parallel)

    def resident(i: int) -> None:
        due = start + i * seconds / residents
        time.sleep(max(0.0, due - time.perf_counter()))
        c = Client(port, timeout)
        first = c.get(page)
        got = [first]
        if first[1] == 200:
            got += list(asset_pool.map(lambda a: Client(port, timeout).get(a), assets))
        done = time.perf_counter()
        with lock:
            reqs.extend(got)
            paints.append(done - due if all(g[1] == 200 for g in got) else float("inf"))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_threads) as ex:
        list(ex.map(resident, range(residents)))
    wall = time.perf_counter() - t0
    asset_pool.shutdown()
    lat = sorted(r[0] for r in reqs)
    ok_paints = sorted(p for p in paints if p != float("inf"))

    def pct(v: list[float], q: float) -> float | None:
        return round(1000 * v[min(len(v) - 1, int(len(v) * q))], 1) if v else None

    return {"residents": residents, "seconds": seconds, "wall_s": round(wall, 1),
            "requests": len(reqs), "errors": sum(r[1] != 200 for r in reqs),
            "failed_residents": sum(p == float("inf") for p in paints),
            "req_p50_ms": pct(lat, 0.5), "req_p95_ms": pct(lat, 0.95), "req_max_ms": pct(lat, 1.0),
            "paint_p50_ms": pct(ok_paints, 0.5), "paint_p95_ms": pct(ok_paints, 0.95),
            "mb": round(sum(r[2] for r in reqs) / 1e6, 1),
            "statuses": {str(s): sum(r[1] == s for r in reqs)
                         for s in sorted({r[1] for r in reqs})}}


def precompress(folder: Path) -> int:
    """``<file>.gz`` next to every text file (the deploy step of docs/deploy-nginx.md), so that
    nginx's gzip_static sends them without compressing per request. Returns the file count."""
    n = 0
    for f in folder.rglob("*"):
        if f.is_file() and f.suffix in (".js", ".css", ".json", ".html", ".svg", ".geojson"):
            with f.open("rb") as src, gzip.open(f.with_name(f.name + ".gz"), "wb", 9) as dst:
                shutil.copyfileobj(src, dst)
            n += 1
    return n


def start_nginx(public_dir: Path, api_port: int, static: bool
                ) -> tuple[subprocess.Popen[bytes], int]:
    from test_nginx_static import nginx_config  # the config the test suite checks

    from publish.pages.common import STATIC_DIR
    from publish.server.app import free_port

    tmp = WORK / "nginx"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    static_dir = STATIC_DIR
    if static:  # a copy of the vendored assets, precompressed (the repo's tree stays as it is)
        static_dir = tmp / "static"
        shutil.copytree(STATIC_DIR, static_dir)
        n = precompress(static_dir) + precompress(public_dir / "current" / "site")
        log(f"precompressed {n} files (.gz)")
    else:  # no deploy step: no .gz left over from an earlier nginx-gz run
        for f in (public_dir / "current" / "site").rglob("*.gz"):
            f.unlink()
    for k in ("cache", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / k).mkdir()
    port = free_port()
    conf = nginx_config(tmp, port, public_dir, api_port, static_dir)
    proc = subprocess.Popen([NGINX, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=(tmp / "nginx.out").open("w"))
    for _ in range(100):
        try:
            if Client(port, 2).get("/maps.json")[1] == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    proc.terminate()
    sys.exit(f"nginx did not start: {(tmp / 'error.log').read_text()[-2000:]}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--residents", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--parallel", type=int, default=6, help="asset requests at once per resident")
    ap.add_argument("--threads", type=int, default=64, help="residents in flight at most")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--targets", nargs="+", default=["nginx-gz", "serve", "nginx"],
                    choices=["nginx-gz", "nginx", "serve"])
    a = ap.parse_args(argv)
    from publish.server.app import ServerProcess, free_port

    root, public_dir = prepare(a.scale)
    page, assets = page_urls(public_dir)
    log(f"{page}: {len(assets)} more requests at first paint: {assets}")
    results: dict[str, Any] = {}
    for target in a.targets:
        if target.startswith("nginx"):  # the API port is never started: the API is down
            proc, port = start_nginx(public_dir, free_port(), target == "nginx-gz")
            try:
                results[target] = run(port, page, assets, a.residents, a.seconds, a.parallel,
                                      a.threads, a.timeout)
                results[target]["api_while_down"] = Client(port, 5).get(
                    "/api/collections?f=json")[1]
            finally:
                proc.terminate()  # by PID
                proc.wait(30)
        else:
            server = ServerProcess(root, workers=a.workers, public_dir=public_dir,
                                   log=WORK / "serve.log", warm=2)
            try:
                results[target] = run(server.port, page, assets, a.residents, a.seconds,
                                      a.parallel, a.threads, a.timeout)
            finally:
                server.stop()
        log(f"{target}: {json.dumps(results[target])}")
    out = {"page": page, "assets": assets, "args": vars(a), "results": results}
    path = WORK / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"\n{a.residents} residents in {a.seconds:.0f} s, each {1 + len(assets)} requests "
          f"(page, data, assets; ≤{a.parallel} at once), loopback\n")
    print("| target | requests | errors | failed residents | req p50 ms | req p95 ms | req max ms "
          "| first paint p50 ms | first paint p95 ms | MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t, r in results.items():
        print(f"| {t} | {r['requests']} | {r['errors']} | {r['failed_residents']} | "
              f"{r['req_p50_ms']} | {r['req_p95_ms']} | {r['req_max_ms']} | "
              f"{r['paint_p50_ms']} | {r['paint_p95_ms']} | {r['mb']} |")
    print(f"json: {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
