"""Public maps on a phone on a slow network: real Chromium, DevTools "Slow 4G" (issue 15).

For each map page (the pipe map and the hazard map of the first city) at 1x and 10x the sample
data, a cold browser (new context, empty cache) opens the page through the real server
(gunicorn, 2 workers, transfer middleware) with CDP ``Network.emulateNetworkConditions``
(150 ms RTT, 1.6 Mbps down, 750 kbps up) at phone size (390x844), terms already accepted (a
returning visitor; the terms dialog is itself a page of text). Measured per run:

* ``first_paint_s``: navigation start to the first vector tile drawn on the map
  (``GisMap.app.stats.firstPaint``: the tile layer's first ``tileload``);
* ``bytes_before_paint``: bytes on the wire (CDP ``encodedDataLength``) of every response that
  finished before that moment;
* ``network_z13_s``: the whole network in view at zoom 13 (``fitBounds`` of the pipes, zoom 13),
  from ``setView`` to the tile layer's ``load`` (every tile of the view drawn), and its bytes.

Targets (issue 15): first paint <= 2.5 s with <= 400 KB before it; whole network at zoom 13
<= 3 s. Not a test: numbers go to bench/RESULTS.md.

Usage::

    .venv/bin/python bench/bench_slow4g.py --scales 1 10 --runs 3 --out bench/results/slow4g.jsonl
    .venv/bin/python bench/bench_slow4g.py --report bench/results/slow4g.jsonl

Each scale is built once under ``--work`` (sample -> merge -> publish, real Uozu config) and
reused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

CHROMIUM = "/usr/lib/chromium/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
SLOW_4G = {"offline": False, "latency": 150, "downloadThroughput": 1.6e6 / 8,
           "uploadThroughput": 750e3 / 8}
PHONE = {"width": 390, "height": 844}
PAGES = {"pipe": ("sewer_pipe", "water_pipe"), "hazard": ("flood_zone", "landslide_zone")}


def build(work: Path, scale: float) -> Path:
    """Sample -> merge -> publish of the real Uozu config at ``scale``; the project root."""
    from conftest import make_uozu_project

    from config import load_project
    from etl.pipeline import run_merge
    from publish.build import publish

    root = work / f"uozu_x{scale:g}"
    if (root / "data" / "public" / "current" / "release.json").is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    make_uozu_project(root, scale=scale)
    project = load_project(root)
    run_merge(project)
    res = publish(project)
    print(f"built x{scale:g} in {time.perf_counter() - t0:.0f} s: {res.counts} "
          f"(tiles {res.timings.get('tiles', 0):.1f} s)", file=sys.stderr, flush=True)
    return root


def one_run(browser: Any, base: str, page_id: str, key: str | None,
            bounds: list[float]) -> dict[str, Any]:
    ctx = browser.new_context(viewport=PHONE, locale="ja-JP", is_mobile=True, has_touch=True,
                              device_scale_factor=2)
    page = ctx.new_page()
    if key:
        page.add_init_script(f"localStorage.setItem('{key[0]}', '{key[1]}')")
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("http://127.0.0.1")
               else r.abort())
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    finished: list[tuple[float, float]] = []  # (timestamp s, bytes)
    starts: list[float] = []
    cdp.on("Network.requestWillBeSent", lambda e: starts.append(e["timestamp"]))
    cdp.on("Network.loadingFinished",
           lambda e: finished.append((e["timestamp"], e["encodedDataLength"])))
    page.goto(f"{base}/maps/{page_id}.html", wait_until="commit")
    page.wait_for_function("window.GisMap && GisMap.app && GisMap.app.stats.firstPaint !== null",
                           timeout=120_000)
    t_nav = min(starts)
    first_paint = page.evaluate("GisMap.app.stats.firstPaint") / 1000
    before = sum(b for t, b in finished if t - t_nav <= first_paint + 0.01)
    page.wait_for_function("GisMap.ready === true", timeout=120_000)
    page.wait_for_timeout(500)
    n0 = len(finished)
    w, s, e, n = bounds
    t0 = page.evaluate(f"""() => new Promise(done => {{
      const app = GisMap.app, m = app.map, t = performance.now();
      app.vt.once('load', () => done([t, performance.now()]));
      m.fitBounds([[{s}, {w}], [{n}, {e}]], {{animate: false}});
      m.setZoom(13, {{animate: false}});
    }})""")
    z13 = (t0[1] - t0[0]) / 1000
    page.wait_for_timeout(300)
    z13_bytes = sum(b for _, b in finished[n0:])
    total = sum(b for _, b in finished)
    ctx.close()
    return {"first_paint_s": round(first_paint, 3), "bytes_before_paint": int(before),
            "network_z13_s": round(z13, 3), "z13_bytes": int(z13_bytes),
            "total_bytes": int(total)}


def sheet_load(root: Path, n: int = 40) -> dict[str, Any]:
    """Map request latency (p50/p95, s) idle and while two clients ask for sheets back to back
    (issue 15 item 7: before the pool, 0.07 -> 0.70 s); the sheets' status codes."""
    import threading
    from collections import Counter

    import pyogrio
    import requests

    from config import load_project
    from publish.server.app import ServerProcess

    project = load_project(root)
    store = project.public_dir / "current" / "public.gpkg"
    parcel = pyogrio.read_dataframe(store, layer="parcel", max_features=200).iloc[100]
    pipes = pyogrio.read_dataframe(store, layer="sewer_pipe", max_features=2000)
    c = pipes.geometry.iloc[1000].centroid
    bbox = f"{c.x - 0.003},{c.y - 0.002},{c.x + 0.003},{c.y + 0.002}"
    body = {"inputs": {"oaza": parcel["oaza_name"], "chiban": parcel["chiban"], "scale": 500,
                       "paper": "A4"}}
    with ServerProcess(root, public_dir=project.public_dir, warm=4) as srv:
        url = f"{srv.base}/api/collections/sewer_pipe/items?f=json&limit=500&bbox={bbox}"
        s = requests.Session()

        def timed() -> float:
            t0 = time.perf_counter()
            s.get(url, timeout=60).raise_for_status()
            return time.perf_counter() - t0

        for _ in range(5):
            timed()
        idle = [timed() for _ in range(n)]
        stop, statuses = threading.Event(), Counter()

        def sheets() -> None:
            sess = requests.Session()
            while not stop.is_set():
                r = sess.post(f"{srv.base}/api/processes/pipe-sheet/execution", json=body,
                              timeout=120)
                statuses[r.status_code] += 1
                if r.status_code == 429:
                    time.sleep(0.2)

        threads = [threading.Thread(target=sheets) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        busy = [timed() for _ in range(n)]
        stop.set()
        for t in threads:
            t.join()

    def q(xs: list[float], p: float) -> float:
        return round(sorted(xs)[min(len(xs) - 1, int(p * len(xs)))], 3)

    return {"map_p50_idle_s": q(idle, 0.5), "map_p95_idle_s": q(idle, 0.95),
            "map_p50_sheets_s": q(busy, 0.5), "map_p95_sheets_s": q(busy, 0.95),
            "sheet_statuses": dict(statuses)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-slow4g"))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "slow4g.jsonl")
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--sheet-load", action="store_true",
                    help="map latency idle and during sheet PDFs (scale 1), then exit")
    args = ap.parse_args()
    if args.report:
        report(args.report)
        return
    if args.sheet_load:
        print(json.dumps(sheet_load(build(args.work, 1.0))), flush=True)
        return
    import pyogrio
    from playwright.sync_api import sync_playwright

    from config import load_project
    from publish.server.app import ServerProcess

    args.out.parent.mkdir(parents=True, exist_ok=True)
    for scale in args.scales:
        root = build(args.work, scale)
        project = load_project(root)
        store = project.public_dir / "current" / "public.gpkg"
        with ServerProcess(root, public_dir=project.public_dir, warm=2) as srv, \
                sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for page_id, layers in PAGES.items():
                boxes = [pyogrio.read_info(store, layer=lid)["total_bounds"] for lid in layers]
                bounds = [min(b[0] for b in boxes), min(b[1] for b in boxes),
                          max(b[2] for b in boxes), max(b[3] for b in boxes)]
                page_cfg = next(pc for pc in project.config.publish.pages if pc.id == page_id)
                key = ((f"gis-{project.config.city_code}-{page_id}-terms",
                        project.config.publish.terms_version) if page_cfg.terms else None)
                counts = {lid: pyogrio.read_info(store, layer=lid)["features"] for lid in layers}
                for i in range(args.runs):
                    r = one_run(browser, srv.base, page_id, key, [float(v) for v in bounds])
                    r.update({"page": page_id, "scale": scale, "run": i, "features": counts})
                    print(json.dumps(r), flush=True)
                    with args.out.open("a") as f:
                        f.write(json.dumps(r) + "\n")
            browser.close()
    report(args.out)


def report(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["page"], r["scale"]), []).append(r)
    print("| page | data | features | first paint s (median; runs) | KB before paint | "
          "whole network z13 s (median; runs) | KB for z13 | KB total |")
    print("|---|---|---|---|---|---|---|---|")
    for (page, scale), rs in sorted(groups.items()):
        def med(k: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(r[k] for r in rs)
        fp = "/".join(f"{r['first_paint_s']:.2f}" for r in rs)
        z = "/".join(f"{r['network_z13_s']:.2f}" for r in rs)
        feats = sum(rs[0]["features"].values())
        print(f"| {page} | {scale:g}x | {feats} | **{med('first_paint_s'):.2f}** ({fp}) | "
              f"{med('bytes_before_paint') / 1000:.0f} | **{med('network_z13_s'):.2f}** ({z}) | "
              f"{med('z13_bytes') / 1000:.0f} | {med('total_bytes') / 1000:.0f} |")


if __name__ == "__main__":
    main()
