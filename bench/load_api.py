"""Bounded load test of the public OGC API (loopback only; stops itself).

N concurrent clients (threads, one keep-alive ``http.client`` connection each) mix two requests
for a fixed duration, as in performance-anchors §3:

* **bbox**: a ~500 m box around a random feature of the collection, ``limit=500``;
* **page**: ``limit=10`` at a random ``offset`` (deep paging).

Prints a JSON report (requests, errors, req/s, p50/p95/p99 latency overall and per kind) and a
Markdown table row for ``bench/README.md``.

:func:`run` is also the engine of ``bench/bench_serve_stores.py``, which needs one kind at a time
(``bbox_share`` 1 or 0), a request count instead of a duration (``max_requests``) and the same
boxes for two servers (:func:`prepare`, passed as ``setup``).

Usage::

    # against a running server (e.g. `uozu-gis serve`), first collection by default
    python bench/load_api.py --url http://127.0.0.1:5000 --seconds 60
    # self-contained: synthetic project with N pipes, publish, gunicorn (2 workers), load, stop
    python bench/load_api.py --synthetic 5000 --seconds 60
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

REPO = Path(__file__).resolve().parent.parent
M_PER_DEG_LAT = 111_320.0


@dataclass
class Stats:
    """Latencies (seconds) and errors per request kind; appended from many threads."""

    lat: dict[str, list[float]] = field(default_factory=lambda: {"bbox": [], "page": []})
    errors: dict[str, int] = field(default_factory=lambda: {"bbox": 0, "page": 0})
    nbytes: int = 0
    bbox_returned: list[int] = field(default_factory=list)  # numberReturned per bbox response
    issued: int = 0  # requests started (for max_requests)
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _loopback_only(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ok = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        ok = False
    if parts.scheme != "http" or not ok:
        sys.exit(f"refusing {url}: this load test only runs against http on loopback")
    return host, parts.port or 80, parts.path.rstrip("/")


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Accept": "application/geo+json"})
    r = conn.getresponse()
    return r.status, r.read()


Box = tuple[float, float, float, float]
Setup = tuple[str, int, list[Box], float]  # collection id, features, boxes, mean numberMatched


def _returned(body: bytes) -> int | None:
    """``numberReturned`` of a GeoJSON page without parsing it (pygeoapi writes it last)."""
    i = body.rfind(b'"numberReturned"')
    if i < 0:
        return None
    j = body.find(b":", i) + 1
    k = j
    while k < len(body) and body[k:k + 1] in b" 0123456789":
        k += 1
    try:
        return int(body[j:k])
    except ValueError:
        return None


def prepare(url: str, collection: str | None = None, seed: int = 1, box_m: float = 500.0
            ) -> Setup:
    """The collection, its feature count and the 100 deterministic boxes, for :func:`run`."""
    host, port, prefix = _loopback_only(url)
    return _setup(host, port, prefix, collection, seed, box_m)


def _setup(host: str, port: int, prefix: str, collection: str | None,
           seed: int, box_m: float) -> Setup:
    """Pick the collection, count its features, build 100 deterministic boxes (+ mean hits)."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    status, body = _get(conn, f"{prefix}/api/collections?f=json")
    if status != 200:
        sys.exit(f"GET /api/collections -> {status}")
    ids = [c["id"] for c in json.loads(body)["collections"]]
    cid = collection or ids[0]
    status, body = _get(conn, f"{prefix}/api/collections/{cid}/items?f=json&limit=1000")
    fc = json.loads(body)
    total = int(fc.get("numberMatched", len(fc["features"])))
    rng = random.Random(seed)
    centres = []
    for f in fc["features"]:
        g = f.get("geometry") or {}
        coords = g.get("coordinates")
        while isinstance(coords, list) and coords and isinstance(coords[0], list):
            coords = coords[0]
        if coords:
            centres.append((float(coords[0]), float(coords[1])))
    boxes = []
    hits = []
    for _ in range(100):
        lon, lat = rng.choice(centres)
        dlat = box_m / 2 / M_PER_DEG_LAT
        dlon = box_m / 2 / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
        boxes.append((lon - dlon, lat - dlat, lon + dlon, lat + dlat))
        q = urlencode({"f": "json", "resulttype": "hits",
                       "bbox": ",".join(f"{v:.7f}" for v in boxes[-1])})
        status, body = _get(conn, f"{prefix}/api/collections/{cid}/items?{q}")
        if status == 200:
            hits.append(int(json.loads(body).get("numberMatched", 0)))
    conn.close()
    return cid, total, boxes, (statistics.fmean(hits) if hits else float("nan"))


def _client(k: int, host: str, port: int, prefix: str, cid: str, total: int,
            boxes: list[Box], deadline: float, stats: Stats,
            bbox_limit: int, page_limit: int, seed: int, bbox_share: float = 0.5,
            max_requests: int | None = None) -> None:
    rng = random.Random(seed * 1000 + k)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    base = f"{prefix}/api/collections/{cid}/items"
    while time.monotonic() < deadline:
        if max_requests is not None:
            with stats.lock:
                if stats.issued >= max_requests:
                    break
                stats.issued += 1
        kind = "bbox" if rng.random() < bbox_share else "page"
        if kind == "bbox":
            b = rng.choice(boxes)
            q = {"f": "json", "limit": bbox_limit, "bbox": ",".join(f"{v:.7f}" for v in b)}
        else:
            q = {"f": "json", "limit": page_limit,
                 "offset": rng.randrange(0, max(1, total - page_limit))}
        t0 = time.perf_counter()
        try:
            status, body = _get(conn, f"{base}?{urlencode(q)}")
            ok = status == 200 and body[:1] == b"{"
        except (OSError, http.client.HTTPException) as e:
            status, body, ok = -1, str(e).encode(), False
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
        dt = time.perf_counter() - t0
        with stats.lock:
            stats.lat[kind].append(dt)
            stats.nbytes += len(body)
            if kind == "bbox" and ok:
                n = _returned(body)
                if n is not None:
                    stats.bbox_returned.append(n)
            if not ok:
                stats.errors[kind] += 1
                if len(stats.samples) < 5:
                    stats.samples.append(f"{kind} {status} {body[:120]!r}")
    conn.close()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(1000 * s[min(len(s) - 1, math.ceil(q * len(s)) - 1)], 1)


def run(url: str, seconds: float, clients: int, collection: str | None, seed: int,
        box_m: float, bbox_limit: int, page_limit: int, *, bbox_share: float = 0.5,
        max_requests: int | None = None, setup: Setup | None = None) -> dict[str, Any]:
    """Run the load; returns the report dict.

    ``bbox_share``: probability that a request is a bbox one (1 = bbox only, 0 = paging only).
    ``max_requests``: stop after that many requests in all (``seconds`` stays an upper bound).
    ``setup``: a :func:`prepare` result, to send the same boxes to several servers.
    """
    host, port, prefix = _loopback_only(url)
    if setup is None:
        setup = _setup(host, port, prefix, collection, seed, box_m)
    cid, total, boxes, mean_hits = setup
    stats = Stats()
    t_start = time.monotonic()
    deadline = t_start + seconds
    threads = [threading.Thread(target=_client, daemon=True,
                                args=(k, host, port, prefix, cid, total, boxes, deadline, stats,
                                      bbox_limit, page_limit, seed, bbox_share, max_requests))
               for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)  # bounded: a stuck request cannot keep us forever
    elapsed = time.monotonic() - t_start
    everything = stats.lat["bbox"] + stats.lat["page"]
    report: dict[str, Any] = {
        "url": url, "collection": cid, "features": total, "clients": clients,
        "seconds": round(elapsed, 1), "requests": len(everything),
        "errors": sum(stats.errors.values()),
        "req_per_s": round(len(everything) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": _pct(everything, 0.50), "p95_ms": _pct(everything, 0.95),
        "p99_ms": _pct(everything, 0.99), "mb_received": round(stats.nbytes / 1e6, 1),
        "by_kind": {k: {"requests": len(v), "errors": stats.errors[k],
                        "req_per_s": round(len(v) / elapsed, 1) if elapsed else 0.0,
                        "p50_ms": _pct(v, 0.50), "p95_ms": _pct(v, 0.95),
                        "mean_ms": round(1000 * statistics.fmean(v), 1) if v else None}
                    for k, v in stats.lat.items()},
        "error_samples": stats.samples,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "box_m": box_m, "bbox_limit": bbox_limit, "page_limit": page_limit,
        "bbox_mean_matched": round(mean_hits, 1),
        "bbox_mean_returned": (round(statistics.fmean(stats.bbox_returned), 1)
                               if stats.bbox_returned else None),
    }
    return report


def markdown_row(rep: dict[str, Any], label: str) -> str:
    b, p = rep["by_kind"]["bbox"], rep["by_kind"]["page"]
    return (f"| {label} | {rep['features']:,} | {rep['clients']} | {rep['seconds']} | "
            f"{rep['requests']:,} | {rep['errors']} | {rep['req_per_s']} | {rep['p50_ms']} | "
            f"{rep['p95_ms']} | {b['p50_ms']} / {b['p95_ms']} | {p['p50_ms']} / {p['p95_ms']} |")


MD_HEADER = ("| run | features | clients | s | requests | errors | req/s | p50 ms | p95 ms | "
             "bbox p50/p95 ms | page p50/p95 ms |\n|---|---|---|---|---|---|---|---|---|---|---|")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def synthetic_server(n: int, workers: int, tmp: Path) -> tuple[str, subprocess.Popen[bytes], Path]:
    """Build a synthetic project with ``n`` pipes, publish it and start gunicorn on loopback."""
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from publish_fixtures import make_project  # the test fixture builder (tests/)

    from publish.build import publish

    port = _free_port()
    project = make_project(tmp, base_url=f"http://127.0.0.1:{port}", n_pipes=n,
                           n_shelters=max(9, n // 50))
    res = publish(project)
    print(res.message(), file=sys.stderr)
    log = tmp / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "publish.server.app", "--project", str(tmp), "--port", str(port),
             "--workers", str(workers)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)})
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            if _get(c, "/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.terminate()
        sys.exit(f"server did not start: {log.read_text()[-2000:]}")
    return base, proc, log


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:5000", help="server root (loopback only)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--collection", default=None, help="collection id (default: the first)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--box-m", type=float, default=500.0, help="bbox side in metres")
    ap.add_argument("--bbox-limit", type=int, default=500)
    ap.add_argument("--page-limit", type=int, default=10)
    ap.add_argument("--synthetic", type=int, default=0, metavar="N",
                    help="build, publish and serve a synthetic project with N pipes first")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers for --synthetic")
    ap.add_argument("--label", default=None, help="first column of the Markdown row")
    ap.add_argument("--json-out", default=None, help="also write the JSON report here")
    args = ap.parse_args(argv)
    proc = None
    url = args.url
    with tempfile.TemporaryDirectory(prefix="uozu-load-") as tmp:
        try:
            if args.synthetic:
                url, proc, _ = synthetic_server(args.synthetic, args.workers, Path(tmp))
            rep = run(url, args.seconds, args.clients, args.collection, args.seed, args.box_m,
                      args.bbox_limit, args.page_limit)
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    label = args.label or (f"synthetic {args.synthetic:,} pipes" if args.synthetic else url)
    print(json.dumps(rep, ensure_ascii=False, indent=2))
    print()
    print(MD_HEADER)
    print(markdown_row(rep, label))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rep, ensure_ascii=False, indent=2),
                                       encoding="utf-8")
    if rep["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
