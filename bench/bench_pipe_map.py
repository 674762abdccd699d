"""Benchmark of the pipe map: page size, first render and time to data, at 1x and 10x the city.

Usage (from the project root; writes under bench/work/, which git ignores)::

    .venv/bin/python bench/bench_pipe_map.py                 # scales 1 and 10, 3 runs each
    .venv/bin/python bench/bench_pipe_map.py --scales 1 --reps 5

For each scale: sample exports (``samples.uozu.generate``) -> merge -> publish (with the pipe map)
-> the real server (gunicorn, 2 workers) on a free loopback port -> a fresh headless Chromium
per run, every non-loopback request aborted (no basemap tiles; the numbers are the page's own).

Measured per run (median of ``reps``), as in performance-anchors.md §4:

* ``first_render_s``: ``goto()`` -> ``load`` event + 2 ``requestAnimationFrame``s;
* ``data_s``: ``goto()`` -> every feature of the start view (zoom 17, densest area) drawn;
* ``longest_task_ms``: the longest main-thread task while loading (responsiveness);
* ``pan_s``: a half-screen pan -> the newly exposed features drawn;
* ``drawn``: features drawn for the start view, ``requests``: API requests made.
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
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/lib/chromium/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

WAIT_DATA = ("window.GisMap && GisMap.app && GisMap.app.stats.requests > 0"
             " && document.querySelector('.gm-map').dataset.loading === '0'"
             " && !GisMap.app.queue.length")


def _free_port() -> int:
    from publish.server.app import free_port
    return free_port()


def prepare(scale: float, work: Path, port: int, seed: int = 42,
            reuse: bool = False) -> dict[str, Any]:
    """Sample -> merge -> publish (+ pipe map) into ``work/scale_<scale>``; returns timings.

    ``reuse`` keeps an existing merged master (sample and merge are skipped).
    """
    from config import load_project, write_derived_project
    from etl.pipeline import run_merge
    from publish.build import publish
    from samples.uozu import generate

    root = work / f"scale_{scale:g}"
    write_derived_project(root, base=REPO, base_url=f"http://127.0.0.1:{port}")
    project = load_project(root)
    t: dict[str, Any] = {"scale": scale}
    if not (reuse and (project.merged_dir / "current" / "master.gpkg").exists()):
        t0 = time.perf_counter()
        generate(project.raw_dir, scale=scale, seed=seed)
        t["sample_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_merge(project)
        t["merge_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = publish(project)
    t["publish_s"] = time.perf_counter() - t0
    t["features"] = {lid: lay.features for lid, lay in res.layers.items()}
    page = res.path / "site" / "maps" / "pipe.html"
    t["html_bytes"] = page.stat().st_size
    t["root"] = str(root)
    return t


def _Server(root: Path, port: int):
    from publish.server.app import ServerProcess
    return ServerProcess(root, port, warm=4, log=root / f"server-{port}.log")


def measure(url: str, reps: int = 3, zoom: int | None = None) -> dict[str, Any]:
    """Fresh browser per run; medians of the runs (and the raw runs).

    ``zoom`` starts the page at that zoom on its default centre (``#map=z/lat/lon``), as the
    QR code of a pipe sheet does; None = the page's own start view (zoom 17).
    """
    from playwright.sync_api import sync_playwright

    runs: list[dict[str, Any]] = []
    with sync_playwright() as p:
        for _ in range(reps):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                ctx.route("**/*", lambda r: r.continue_()
                          if r.request.url.startswith("http://127.0.0.1") else r.abort())
                terms = _page_config(url)["terms"]
                ctx.add_init_script(
                    f"localStorage.setItem('{terms['storageKey']}', '{terms['version']}');"
                    "window.__longest = 0; try { new PerformanceObserver(l => l.getEntries()"
                    ".forEach(e => { window.__longest = Math.max(window.__longest, e.duration); }))"
                    ".observe({type: 'longtask', buffered: true}); } catch (e) {}")
                page = ctx.new_page()
                target = url
                if zoom is not None:
                    cfg = _page_center(url)
                    target = f"{url}#map={zoom}/{cfg[0]}/{cfg[1]}"
                t0 = time.perf_counter()
                page.goto(target, wait_until="load")
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                              "requestAnimationFrame(r)))")
                first = time.perf_counter() - t0
                page.wait_for_function(WAIT_DATA, timeout=120_000, polling=20)
                data = time.perf_counter() - t0
                stats = page.evaluate("({...GisMap.app.stats, drawn: [...Object.values("
                                      "GisMap.app.layers)].reduce((n, l) => n + "
                                      "l.features.size, 0), longest: window.__longest, "
                                      "status: document.getElementById('gm-status').innerText})")
                t1 = time.perf_counter()
                page.evaluate("void GisMap.app.map.panBy([640, 0], {animate: false})")
                # moveend runs synchronously: the new requests are already under way here
                page.wait_for_function(WAIT_DATA, timeout=120_000, polling=20)
                pan = time.perf_counter() - t1
                runs.append({"first_render_s": first, "data_s": data, "pan_s": pan,
                             "longest_task_ms": stats["longest"], "drawn": stats["drawn"],
                             "requests": stats["requests"], "status": stats["status"]})
            finally:
                browser.close()
    med = {k: statistics.median(r[k] for r in runs)
           for k in ("first_render_s", "data_s", "pan_s", "longest_task_ms", "drawn",
                     "requests")}
    return {**med, "runs": runs}


def _page_config(url: str) -> dict[str, Any]:
    """The configuration the map page embeds (terms key and version, start view)."""
    import re

    import requests

    html = requests.get(url, timeout=10).text
    return json.loads(re.search(r'id="gm-config">(.*?)</script>', html, re.S)[1])


def _page_center(url: str) -> tuple[float, float]:
    import re

    import requests

    html = requests.get(url, timeout=10).text
    m = re.search(r'"center":\[([-\d.]+),([-\d.]+)\]', html)
    if not m:
        raise RuntimeError("no centre in the page config")
    return float(m[1]), float(m[2])


def bench_pipe_map(scales: tuple[float, ...] = (1.0, 10.0), reps: int = 3,
                   work: Path = REPO / "bench" / "work" / "pipe_map",
                   zooms: tuple[int | None, ...] = (None, 18),
                   reuse: bool = False) -> list[dict[str, Any]]:
    """Prepare, serve and measure the pipe map at each scale (and start zoom); one row each."""
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for scale in scales:
        port = _free_port()
        prep = prepare(scale, work, port, reuse=reuse)
        server = _Server(Path(prep["root"]), port)
        try:
            for zoom in zooms:
                m = measure(f"{server.base}/maps/pipe.html", reps, zoom)
                row = {**prep, "zoom": zoom or 17, **m}
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("runs", "root")},
                                 ensure_ascii=False), flush=True)
        finally:
            server.stop()
    (work / "results.json").write_text(json.dumps(rows, ensure_ascii=False, indent=2),
                                       encoding="utf-8")
    print("\n| scale | features (public) | start zoom | pipe.html | first render | data drawn |"
          " pan | longest task | drawn | requests |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scale']:g}x | {sum(r['features'].values()):,} | {r['zoom']}"
              f" | {r['html_bytes']/1024:.1f} KB"
              f" | {r['first_render_s']:.2f} s | {r['data_s']:.2f} s | {r['pan_s']:.2f} s"
              f" | {r['longest_task_ms']:.0f} ms | {r['drawn']:,.0f} | {r['requests']:g} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "pipe_map")
    ap.add_argument("--reuse", action="store_true",
                    help="keep an existing merged master per scale (skip sample and merge)")
    args = ap.parse_args(argv)
    bench_pipe_map(tuple(args.scales), args.reps, args.work, reuse=args.reuse)


if __name__ == "__main__":
    main()
