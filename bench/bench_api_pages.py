"""API serialisation benchmark (issue 17 item 3): our server vs stock pygeoapi, same file, one run.

What one run does:

1. **Data** (not timed): the test fixture project (``tests/publish_fixtures.make_project``) with
   ``--pipes`` sewer pipes, published once; its ``public.gpkg`` is the one file both servers read.
2. **Servers**, both gunicorn with ``--workers`` sync workers on loopback:
   ``ours`` = ``python -m publish.server.app`` (what ``uozu-gis serve`` runs: PublicOGRProvider,
   api.py, links, compression by the server when the client asks for it), and ``stock`` =
   ``pygeoapi.flask_app:APP`` with pygeoapi 0.21's own ``OGR`` provider on the same layer
   (the anchor's set-up, ``../shared/bench-anchors/pygeoapi_config.py``).
3. **Load**, per round, cells alternated A/B (which server goes first flips every round):

   * ``page1000``: ``limit=1000`` at a random offset (the 1000-feature page, target ≤ 0.5×);
   * ``page1000_first``: ``limit=1000``, no offset (the first page; stock's best case);
   * ``bbox500``: a 500 m box around a random pipe, ``limit=500`` (target p95 ≤ 30 ms at c=1);
   * ``bbox500`` at concurrency ``--conc`` (target: no error at c=8 on 2 workers).

   Requests ask for ``application/geo+json`` without ``Accept-Encoding`` (both servers then
   send the same uncompressed JSON); one extra request per cell asks for gzip and its size is
   reported.
4. **Report**: medians over rounds of p50/p95 per cell, the ours/stock ratio of the page1000
   median per round, errors, as Markdown on stdout and JSON in ``bench/work/api_pages/``.

Usage::

    .venv/bin/python bench/bench_api_pages.py                       # RESULTS.md run, ~3 min
    .venv/bin/python bench/bench_api_pages.py --pipes 3000 --rounds 1 --n 20   # smoke, ~40 s
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyogrio
import shapely
import yaml

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / "work" / "api_pages"
LAYER = "sewer_pipes"
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def cells_of(conc: int) -> list[tuple[str, int]]:
    return [("page1000", 1), ("page1000_first", 1), ("bbox500", 1), ("bbox500", conc)]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fetch(port: int, paths: list[str], gzip: bool = False) -> list[tuple[float, int, int]]:
    """(seconds, status, body bytes) per request on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Accept": "application/geo+json"}
    if gzip:
        headers["Accept-Encoding"] = "gzip"
    out = []
    for p in paths:
        t = time.perf_counter()
        try:
            conn.request("GET", p, headers=headers)
            r = conn.getresponse()
            body = r.read()
            out.append((time.perf_counter() - t, r.status, len(body)))
        except (OSError, http.client.HTTPException):
            out.append((time.perf_counter() - t, 599, 0))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.close()
    return out


def load(port: int, paths: list[str], conc: int) -> dict[str, Any]:
    chunks = [paths[i::conc] for i in range(conc)]
    t = time.perf_counter()
    with ThreadPoolExecutor(conc) as ex:
        res = [x for part in ex.map(lambda c: fetch(port, c), chunks) for x in part]
    wall = time.perf_counter() - t
    lat = sorted(r[0] for r in res)
    return {"n": len(res), "rps": len(res) / wall, "p50_ms": 1000 * statistics.median(lat),
            "p95_ms": 1000 * lat[max(0, int(len(lat) * 0.95) - 1)],
            "errors": sum(r[1] != 200 for r in res),
            "kb": statistics.mean(r[2] for r in res) / 1024}


def wait_up(port: int, path: str, proc: subprocess.Popen[bytes], logfile: Path) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"server exited: {logfile.read_text()[-2000:]}")
        try:
            if fetch(port, [path])[0][1] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"server did not start: {logfile.read_text()[-2000:]}")


def stock_server(store: Path, port: int, workers: int, tmp: Path) -> subprocess.Popen[bytes]:
    """Stock pygeoapi 0.21 + its OGR provider on ``store`` (as the anchor configures it)."""
    cfg = {
        "server": {"bind": {"host": "127.0.0.1", "port": port}, "url": f"http://127.0.0.1:{port}",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8",
                   "language": "en-US", "cors": False, "pretty_print": False, "limits": {
                       "default_items": 10, "max_items": 10000}, "map": {
                       "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                       "attribution": "x"}},
        "logging": {"level": "ERROR"},
        "metadata": {"identification": {"title": "stock", "description": "stock",
                                        "keywords": ["x"], "keywords_type": "theme",
                                        "terms_of_service": "x", "url": "http://127.0.0.1"},
                     "license": {"name": "x", "url": "http://127.0.0.1"},
                     "provider": {"name": "x", "url": "http://127.0.0.1"},
                     "contact": {"name": "x", "position": "x", "address": "x", "city": "x",
                                 "stateorprovince": "x", "postalcode": "x", "country": "x",
                                 "phone": "x", "fax": "x", "email": "x", "url": "x",
                                 "hours": "x", "instructions": "x", "role": "pointOfContact"}},
        "resources": {"ogr": {
            "type": "collection", "title": "OGR", "description": "OGR", "keywords": ["x"],
            "links": [], "extents": {"spatial": {"bbox": [-180, -90, 180, 90],
                                                 "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [{"type": "feature", "name": "OGR", "id_field": "fid", "layer": LAYER,
                           "data": {"source_type": "GPKG", "source": str(store),
                                    "source_capabilities": {"paging": True}}}]}},
    }
    conf = tmp / "stock.yml"
    conf.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PYGEOAPI_CONFIG=str(conf), PYGEOAPI_OPENAPI=str(tmp / "stock-oas.yml"))
    bindir = Path(sys.executable).parent
    subprocess.run([str(bindir / "pygeoapi"), "openapi", "generate", str(conf), "--output-file",
                    env["PYGEOAPI_OPENAPI"]], env=env, check=True, capture_output=True)
    logfile = tmp / "stock.log"
    proc = subprocess.Popen([str(bindir / "gunicorn"), "-w", str(workers), "-b",
                             f"127.0.0.1:{port}", "--timeout", "300", "pygeoapi.flask_app:APP"],
                            env=env, stdout=subprocess.DEVNULL, stderr=logfile.open("w"))
    wait_up(port, "/collections/ogr/items?f=json&limit=1", proc, logfile)
    return proc


def boxes(store: Path, n: int, seed: int) -> list[str]:
    """500 m boxes (CRS84) around random pipes of the public store."""
    g = pyogrio.read_dataframe(store, layer=LAYER, columns=[]).geometry.values
    rng = random.Random(seed)
    out = []
    for i in rng.sample(range(len(g)), min(n, len(g))):
        x, y = shapely.get_coordinates(shapely.centroid(g[i]))[0]
        dx, dy = 250 / 89_500, 250 / 111_000  # metres to degrees near 37° N; ~500 m square
        out.append(f"{x - dx:.6f},{y - dy:.6f},{x + dx:.6f},{y + dy:.6f}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pipes", type=int, default=20_000)
    ap.add_argument("--n", type=int, default=60, help="requests per cell and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    from publish_fixtures import make_project  # the test fixture builder (tests/)

    from publish.build import publish
    from publish.server.app import ServerProcess, free_port

    WORK.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="api_pages-", dir=WORK))
    t0 = time.perf_counter()
    project = make_project(tmp / "proj", n_pipes=a.pipes, n_shelters=max(9, a.pipes // 50))
    res = publish(project)
    store = Path(res.config).parent / "public.gpkg"
    total = pyogrio.read_info(store, layer=LAYER)["features"]
    log(f"published {total} {LAYER} in {time.perf_counter() - t0:.1f} s: {store}")
    rng = random.Random(a.seed)
    bb = boxes(store, a.n, a.seed)
    offsets = [rng.randrange(0, max(1, total - 1000)) for _ in range(a.n)]
    prefix = {"ours": f"/api/collections/{LAYER}/items", "stock": "/collections/ogr/items"}
    cells = {
        "page1000": lambda s: [f"{prefix[s]}?f=json&limit=1000&offset={o}" for o in offsets],
        "page1000_first": lambda s: [f"{prefix[s]}?f=json&limit=1000"] * a.n,
        "bbox500": lambda s: [f"{prefix[s]}?f=json&limit=500&bbox={b}" for b in bb],
    }
    ours = ServerProcess(tmp / "proj", workers=a.workers, log=tmp / "ours.log", warm=2)
    stock = None
    try:
        stock = stock_server(store, free_port(), a.workers, tmp)
        ports = {"ours": ours.port, "stock": int(stock.args[4].rsplit(":", 1)[1])}
        for s in ports:  # warm both workers of both servers; sizes with and without gzip
            for mk in cells.values():
                load(ports[s], mk(s)[:6], 2)
        sizes = {s: {c: [fetch(ports[s], mk(s)[:1], gzip=z)[0][2] for z in (False, True)]
                     for c, mk in cells.items()} for s in ports}
        rows: list[dict[str, Any]] = []
        for rnd in range(a.rounds):
            order = ["ours", "stock"] if rnd % 2 == 0 else ["stock", "ours"]
            for cell, conc in cells_of(a.conc):
                for s in order:
                    r = load(ports[s], cells[cell](s), conc)
                    r.update(server=s, cell=cell, conc=conc, round=rnd)
                    rows.append(r)
                    log(json.dumps({k: round(v, 1) if isinstance(v, float) else v
                                    for k, v in r.items()}))
    finally:
        ours.stop()
        if stock is not None:
            stock.terminate()  # by PID
            stock.wait(30)
    summary = []
    for cell, conc in cells_of(a.conc):
        for s in ("ours", "stock"):
            rs = [r for r in rows if (r["server"], r["cell"], r["conc"]) == (s, cell, conc)]
            summary.append({"server": s, "cell": cell, "conc": conc,
                            **{k: statistics.median(r[k] for r in rs)
                               for k in ("p50_ms", "p95_ms", "rps", "kb")},
                            "errors": sum(r["errors"] for r in rs), "n": sum(r["n"] for r in rs)})
    def p50(server: str, cell: str, k: int) -> float:
        return next(r["p50_ms"] for r in rows
                    if (r["server"], r["cell"], r["round"]) == (server, cell, k))

    ratios = {cell: [p50("ours", cell, k) / p50("stock", cell, k) for k in range(a.rounds)]
              for cell in ("page1000", "page1000_first")}
    out = {"pipes": total, "workers": a.workers, "rounds": a.rounds, "n": a.n, "rows": rows,
           "summary": summary, "ratio_per_round": ratios, "sizes_plain_gzip": sizes}
    path = WORK / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"\n{total} features, {a.workers} workers, {a.rounds} rounds × {a.n} requests per cell\n")
    print("| server | request | conc | p50 ms | p95 ms | req/s | KB/resp | errors/requests |")
    print("|---|---|---|---|---|---|---|---|")
    for r in summary:
        print(f"| {r['server']} | {r['cell']} | {r['conc']} | {r['p50_ms']:.1f} | "
              f"{r['p95_ms']:.1f} | {r['rps']:.1f} | {r['kb']:.0f} | {r['errors']}/{r['n']} |")
    for cell, rs in ratios.items():
        print(f"\n{cell} ours/stock (p50, per round): {', '.join(f'{x:.2f}' for x in rs)}; "
              f"median {statistics.median(rs):.2f}")
    print(f"bytes plain/gzip (first request): {json.dumps(sizes)}")
    print(f"json: {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
