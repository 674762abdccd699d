"""Static map pages: HTML size and first-render time in headless Chromium.

Why: the project goal for every static map is "< 5 MB of HTML and < 2 s to first render" on the
standard machine (shared/notes/performance-anchors.md §4). One function per page; each builds its
page from default-scale sample data through the real ETL and publication code, then loads it
``--reps`` times, each in a fresh browser (launch time excluded), with the tiles blocked (only
127.0.0.1 is reachable here; the pages must not need tiles to draw).

Render time = navigation start -> ``load`` event + 2 ``requestAnimationFrame`` (what a person sees
first), read in the page as ``performance.now()`` so server and IPC latency before navigation
are not counted; the median of the runs is reported.

    .venv/bin/python bench/bench_maps.py                 # all pages, 3 runs each
    .venv/bin/python bench/bench_maps.py hazard --reps 5 --json bench/work/maps.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
GOAL_MB, GOAL_S = 5.0, 2.0
# navigation start -> load + 2 frames, in ms (performance.now() counts from navigation start)
FIRST_RENDER_JS = """() => new Promise(done => {
    const frames = () => requestAnimationFrame(() => requestAnimationFrame(
        () => done(performance.now())));
    if (document.readyState === 'complete') frames(); else addEventListener('load', frames);
})"""


@contextmanager
def serve(maps_dir: Path) -> Iterator[str]:
    """``/static/`` (publish/static) and ``/maps/`` (the built pages) on a loopback port."""
    from publish.pages.common import STATIC_DIR

    class Handler(SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            path = path.split("?", 1)[0]
            for prefix, base in (("/static/", STATIC_DIR), ("/maps/", maps_dir)):
                if path.startswith(prefix):
                    return str(base / path[len(prefix):])
            return str(maps_dir / "__none__")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def first_render(url: str, reps: int, ready_js: str) -> list[float]:
    """Seconds to first render of ``url``, one fresh browser per run; ``ready_js`` must hold."""
    import re

    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as p:
        for _ in range(reps):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
                page.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/])"), lambda r: r.abort())
                page.goto(url, wait_until="commit")
                ms = page.evaluate(FIRST_RENDER_JS)
                if not page.evaluate(ready_js):
                    raise RuntimeError(f"{url}: page did not draw its data ({ready_js})")
                runs.append(ms / 1000.0)
            finally:
                browser.close()
    return runs


def hazard_public_store(work: Path, scale: float = 1.0) -> tuple[Any, Path, dict[str, str]]:
    """Default-scale sample data -> ETL merge of the hazard layers -> public store."""
    from config import Project, load_project
    from etl.pipeline import run_merge
    from publish.build import public_store as store
    from samples.uozu import generate

    layers = ["flood_zone", "tsunami_zone", "landslide_zone", "shelter"]
    real = load_project(ROOT)
    cfg = real.config.model_copy(update={"raw_dir": str(work / "raw"),
                                         "merged_dir": str(work / "merged"),
                                         "public_dir": str(work / "public")})
    project = Project(root=real.root, config=cfg, specs=real.specs, codelists=real.codelists,
                      spec_hashes=real.spec_hashes)
    generate(work / "raw", scale=scale)
    run_merge(project, only=layers)
    plans = {lid: store.plan_layer(project.specs[lid], project.codelists) for lid in layers}
    path = work / "public.gpkg"
    written = store.write_public_store(project, store.locate_master(project), path, plans)
    return project, path, {lid: lay.data_date for lid, lay in written.items() if lay.data_date}


def bench_hazard_map(work: Path, reps: int = 3, scale: float = 1.0) -> dict[str, Any]:
    """The residents' hazard map (the ``hazard`` page of the project) at a sample scale."""
    from publish.pages.page import build_page

    project, gpkg, dates = hazard_public_store(work, scale)
    t0 = time.perf_counter()
    page = build_page(project, "hazard", gpkg, work / "maps", data_dates=dates)
    build_s = time.perf_counter() - t0
    ready = ("window.GisMap && GisMap.ready && "
             "document.querySelectorAll('path.hz-flood').length > 0")
    with serve(work / "maps") as base:
        runs = first_render(f"{base}/maps/{page.name}", reps, ready)
    size = page.stat().st_size + page.with_suffix(".json").stat().st_size  # page + data file
    return {"page": "hazard", "scale": scale, "html_bytes": size,
            "html_mb": round(size / 1e6, 3), "build_s": round(build_s, 3),
            "first_render_s": round(statistics.median(runs), 3),
            "runs_s": [round(r, 3) for r in runs]}


#: One function per page; the pipe map's function goes here too.
PAGES: dict[str, Callable[..., dict[str, Any]]] = {"hazard": bench_hazard_map}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pages", nargs="*", help=f"pages (default: all of {', '.join(PAGES)})")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="sample data scale (1.0 = city)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    unknown = [p for p in args.pages if p not in PAGES]
    if unknown:
        ap.error(f"unknown page(s) {unknown}; known: {', '.join(PAGES)}")
    results = []
    ok = True
    for name in args.pages or list(PAGES):
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            r = PAGES[name](Path(tmp), reps=args.reps, scale=args.scale)
        r["goal_met"] = r["html_mb"] < GOAL_MB and r["first_render_s"] < GOAL_S
        ok &= r["goal_met"]
        results.append(r)
        print(f"{name:<8} HTML {r['html_mb']:.2f} MB  build {r['build_s']:.2f} s  first render "
              f"{r['first_render_s']:.2f} s (median of {len(r['runs_s'])}: {r['runs_s']})  "
              f"goal <{GOAL_MB:g} MB & <{GOAL_S:g} s: {'met' if r['goal_met'] else 'MISSED'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
