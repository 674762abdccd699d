"""Serving benchmark, GeoPackage vs PostGIS, side by side on the same ≈100k-pipe city.

What one run does (issues 6 and 7):

1. **Data** (cached in ``bench/work/serve_stores/proj``, not timed): the real Uozu config and
   specs over ``samples.uozu.generate(scale=S, seed=42)`` (``tests/conftest.py::
   make_uozu_project``). The default scale 5.1 gives ≥100k ``water_pipe`` segments.
2. **Merge and publish, once per store** (timed): into GeoPackage (``gpkg``) and into a fresh
   database on a throwaway PostgreSQL + PostGIS cluster (``tests/pgserver.py::pg_server``),
   each with its own ``merged_dir`` and ``public_dir``. The PostGIS release is served by
   ``publish.server.providers_pg.PublicPostgreSQLProvider`` (role ``uozu_public_reader``), the
   GeoPackage release by ``publish.server.providers.PublicOGRProvider``.
3. **Cross-check**: both servers must report the same ``numberMatched`` for the collection and
   for every one of the 100 boxes, the same ids inside a few boxes and the same ids on a few
   pages. Differences are reported (``checks`` in the JSON), not fixed.
4. **Load**, both servers up (gunicorn, 2 sync workers each; an idle server costs nothing), on
   ``water_pipe``, with ``bench/load_api.py``'s :func:`run` and the *same* boxes and offsets for
   both stores. Per round and per cell the two stores run back to back, and which one goes first
   alternates, so machine noise hits both alike:

   * ``bbox``: a 500 m box around a random pipe (100 fixed boxes), ``limit=500``;
   * ``page``: ``limit=10`` at a uniformly random ``offset`` over the whole collection;
   * concurrency 1: ``--seq-requests`` sequential requests after ``--warmup`` discarded ones;
   * concurrency 4: 4 clients for ``--seconds`` seconds.

5. **Report**: medians and ranges over ``--rounds`` rounds, the PG/GPKG ratio taken per round,
   as a Markdown table on stdout and a JSON file (``bench/work/serve_stores/results-*.json``).

Everything runs on loopback. Servers and the PostgreSQL cluster are stopped on exit, also on
Ctrl-C, SIGTERM or an error. The default run takes about 8–9 minutes on the 2-core machine.

``--vs-stock N`` instead measures our PostGIS provider (pages serialised in SQL) against stock
pygeoapi's PostgreSQL provider on the same published table (see :func:`vs_stock`).

Usage::

    .venv/bin/python bench/bench_serve_stores.py                 # the full run (RESULTS.md)
    .venv/bin/python bench/bench_serve_stores.py --vs-stock 100000 --rounds 3 --seq-requests 60
    .venv/bin/python bench/bench_serve_stores.py --scale 0.3 --rounds 1 --seq-requests 30 \\
        --seconds 5                                              # smoke test, about 1 minute
    .venv/bin/python bench/bench_serve_stores.py --report bench/work/serve_stores/results-X.json
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
WORK = BENCH / "work" / "serve_stores"
COLLECTION = "water_pipe"
STORE_NAMES = ("gpkg", "postgis")
CELLS = (("bbox", 1), ("page", 1), ("bbox", 4), ("page", 4))

for _p in (str(REPO), str(REPO / "tests"), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import load_api  # noqa: E402  (bench/load_api.py: the load engine)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- data

def prepare_data(scale: float, seed: int) -> tuple[Path, dict[str, Any]]:
    """The project with generated raw data, reused when scale and seed match."""
    root = WORK / "proj"
    marker = root / "sample.json"
    want = {"scale": scale, "seed": seed}
    if marker.exists():
        info = json.loads(marker.read_text())
        if {k: info.get(k) for k in want} == want:
            info["cached"] = True
            return root, info
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    from conftest import make_uozu_project  # tests/conftest.py

    from samples.uozu import generate

    t0 = time.perf_counter()
    make_uozu_project(root, scale=scale)  # seed 42
    if seed != 42:
        shutil.rmtree(root / "data" / "raw")
        generate(root / "data" / "raw", scale=scale, seed=seed)
    info = {**want, "generate_s": round(time.perf_counter() - t0, 1),
            "raw_water_pipe": _raw_count(root / "data" / "raw" / "water" / "SUIDO_KANRO.shp")}
    marker.write_text(json.dumps(info))
    info["cached"] = False
    return root, info


def _raw_count(path: Path) -> int | None:
    try:
        import pyogrio

        return int(pyogrio.read_info(path)["features"])
    except Exception:  # informational only
        return None


def store_project(root: Path, name: str, store: str) -> Any:
    """The project with its own merged/public dirs (emptied) and ``store:`` set."""
    from config import Project, load_project

    base = load_project(root)
    d = WORK / name
    for sub in ("merged", "public"):
        shutil.rmtree(d / sub, ignore_errors=True)
        (d / sub).mkdir(parents=True)
    cfg = base.config.model_copy(update={"store": store, "merged_dir": str(d / "merged"),
                                         "public_dir": str(d / "public")})
    return Project(base.root, cfg, base.specs, base.codelists, base.spec_hashes)


def merge_and_publish(project: Any, url: str) -> dict[str, Any]:
    from etl.pipeline import run_merge
    from etl.stores import open_store
    from publish.build import publish

    t0, c0 = time.perf_counter(), time.process_time()
    result = run_merge(project, store=open_store(project, url))
    merge_s, merge_cpu = time.perf_counter() - t0, time.process_time() - c0
    manifest = result.manifest
    del result
    t0, c0 = time.perf_counter(), time.process_time()
    res = publish(project, store_url=url)
    pub_s, pub_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"merge_s": round(merge_s, 1), "merge_cpu_s": round(merge_cpu, 1),
            "publish_s": round(pub_s, 1), "publish_cpu_s": round(pub_cpu, 1),
            "merge_stages_s": {k: round(float(v), 2)
                               for k, v in (manifest.get("stage_seconds") or {}).items()},
            "publish_stages_s": {k: round(v, 2) for k, v in res.timings.items()},
            "release": res.release_id, "public_features": res.counts.get(COLLECTION),
            "config": str(res.config)}


# ------------------------------------------------------------------------------------ checks

def _get_json(base: str, path: str, **q: Any) -> tuple[int, Any]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.request("GET", f"{path}?{urlencode({'f': 'json', **q})}",
                     headers={"Accept": "application/geo+json"})
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    try:
        return r.status, json.loads(body)
    except ValueError:
        return r.status, body[:300].decode("utf-8", "replace")


def cross_check(bases: dict[str, str], setup: load_api.Setup, total: dict[str, int]
                ) -> dict[str, Any]:
    """Same counts, same ids in boxes and pages on both stores; lists every difference."""
    _, _, boxes, _ = setup
    items = f"/api/collections/{COLLECTION}/items"
    problems: list[str] = []
    if len(set(total.values())) != 1:
        problems.append(f"numberMatched of the collection differs: {total}")
    hits: dict[str, list[int]] = {s: [] for s in bases}
    for i, b in enumerate(boxes):
        bbox = ",".join(f"{v:.7f}" for v in b)
        got = {}
        for s, base in bases.items():
            st, doc = _get_json(base, items, bbox=bbox, resulttype="hits")
            n = doc.get("numberMatched") if st == 200 and isinstance(doc, dict) else None
            got[s] = n
            hits[s].append(n if isinstance(n, int) else -1)
            if st != 200:
                problems.append(f"box {i} hits on {s}: HTTP {st} {str(doc)[:200]}")
        if len(set(got.values())) != 1:
            problems.append(f"box {i} ({bbox}) numberMatched differs: {got}")
    for i in range(0, len(boxes), 10):  # 10 boxes: same ids
        bbox = ",".join(f"{v:.7f}" for v in boxes[i])
        ids = {}
        for s, base in bases.items():
            st, doc = _get_json(base, items, bbox=bbox, limit=500)
            ids[s] = (sorted(str(f["id"]) for f in doc["features"])
                      if st == 200 and isinstance(doc, dict) else [f"HTTP {st}"])
        if len({tuple(v) for v in ids.values()}) != 1:
            a, b = (set(v) for v in ids.values())
            problems.append(f"box {i} ({bbox}) ids differ: only gpkg {sorted(a - b)[:5]}, "
                            f"only postgis {sorted(b - a)[:5]} ({len(a)} vs {len(b)})")
    n = min(total.values())
    for off in (0, 1, n // 3, n // 2, n - 10):  # pages: same ids in the same order
        pages = {}
        for s, base in bases.items():
            st, doc = _get_json(base, items, limit=10, offset=off)
            pages[s] = ([str(f["id"]) for f in doc["features"]]
                        if st == 200 and isinstance(doc, dict) else [f"HTTP {st}"])
        if len({tuple(v) for v in pages.values()}) != 1:
            problems.append(f"page offset={off} limit=10 differs: {pages}")
    return {"boxes": len(boxes), "mean_matched": {s: round(statistics.fmean(v), 1)
                                                  for s, v in hits.items()},
            "problems": problems}


# -------------------------------------------------------------------------------------- load

def measure(base: str, setup: load_api.Setup, kind: str, conc: int, args: argparse.Namespace,
            seed: int) -> dict[str, Any]:
    share = 1.0 if kind == "bbox" else 0.0
    common = {"collection": COLLECTION, "seed": seed, "box_m": args.box_m,
              "bbox_limit": args.bbox_limit, "page_limit": args.page_limit,
              "bbox_share": share, "setup": setup}
    # warm-up on 2 connections, so that both gunicorn workers have this query path warm
    load_api.run(base, 120, 2, max_requests=args.warmup, **{**common, "seed": seed + 500})
    load1 = os.getloadavg()[0]
    if conc == 1:
        rep = load_api.run(base, args.seq_timeout, 1, max_requests=args.seq_requests, **common)
    else:
        rep = load_api.run(base, args.seconds, conc, **common)
    k = rep["by_kind"][kind]
    return {"requests": k["requests"], "errors": k["errors"], "req_per_s": k["req_per_s"],
            "p50_ms": k["p50_ms"], "p95_ms": k["p95_ms"], "p99_ms": rep["p99_ms"],
            "mean_ms": k["mean_ms"], "seconds": rep["seconds"],
            "features_per_response": rep["bbox_mean_returned"] if kind == "bbox" else None,
            "mb_received": rep["mb_received"], "error_samples": rep["error_samples"],
            "loadavg_1m": round(load1, 2)}


def _med_range(values: list[float | None], nd: int = 1) -> dict[str, Any]:
    v = [x for x in values if x is not None]
    if not v:
        return {"median": None, "min": None, "max": None, "runs": values}
    return {"median": round(statistics.median(v), nd), "min": round(min(v), nd),
            "max": round(max(v), nd), "runs": values}


def summarise(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for kind, conc in CELLS:
        key = f"{kind}_c{conc}"
        per = {s: [r[key][s] for r in rounds if key in r] for s in STORE_NAMES}
        for s in STORE_NAMES:
            runs = per[s]
            row: dict[str, Any] = {
                "kind": kind, "conc": conc, "store": s,
                "requests": [x["requests"] for x in runs],
                "errors": sum(x["errors"] for x in runs),
                "req_per_s": _med_range([x["req_per_s"] for x in runs]),
                "p50_ms": _med_range([x["p50_ms"] for x in runs]),
                "p95_ms": _med_range([x["p95_ms"] for x in runs]),
                "features_per_response": _med_range([x["features_per_response"] for x in runs]),
            }
            if s == "postgis":
                g = per["gpkg"]
                row["ratio_pg_gpkg"] = {
                    m: _med_range([p[m] / q[m] if p[m] and q[m] else None
                                   for p, q in zip(runs, g, strict=True)], 2)
                    for m in ("p50_ms", "p95_ms", "req_per_s")}
            rows.append(row)
    return rows


def _fmt(mr: dict[str, Any], nd: int = 1) -> str:
    if mr["median"] is None:
        return "–"
    if len([x for x in mr["runs"] if x is not None]) == 1:
        return f"{mr['median']:.{nd}f}"
    return f"**{mr['median']:.{nd}f}** ({mr['min']:.{nd}f}–{mr['max']:.{nd}f})"


def markdown(results: dict[str, Any]) -> str:
    label = {"bbox": "bbox 500 m, limit 500", "page": "page limit 10, random offset"}
    out = ["| request | conc | store | requests per round | errors | req/s | p50 ms | p95 ms "
           "| features per response | PG/GPKG p50 | PG/GPKG p95 | PG/GPKG req/s |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["summary"]:
        ratio = r.get("ratio_pg_gpkg")
        rs = ([_fmt(ratio[m], 2) for m in ("p50_ms", "p95_ms", "req_per_s")] if ratio
              else ["", "", ""])
        reqs = "/".join(str(x) for x in r["requests"])
        feats = _fmt(r["features_per_response"]) if r["kind"] == "bbox" else "10"
        out.append(f"| {label[r['kind']]} | {r['conc']} | {r['store']} | {reqs} | {r['errors']} "
                   f"| {_fmt(r['req_per_s'])} | {_fmt(r['p50_ms'])} | {_fmt(r['p95_ms'])} "
                   f"| {feats} | {' | '.join(rs)} |")
    prep = results["prepare"]
    out += ["", "| store | public water_pipe | merge s (CPU s of this process) "
            "| publish s (CPU s of this process) | publish stages s |",
            "|---|---|---|---|---|"]
    for s in STORE_NAMES:
        p = prep[s]
        stages = ", ".join(f"{k} {v}" for k, v in p["publish_stages_s"].items() if k != "total")
        out.append(f"| {s} | {p['public_features']:,} | {p['merge_s']} ({p['merge_cpu_s']}) "
                   f"| {p['publish_s']} ({p['publish_cpu_s']}) | {stages} |")
    if results.get("anatomy"):
        out += ["", "| store | request | features | provider.query ms | to_json ms "
                "| SQL COUNT ms | SQL rows ms | end-to-end p50 ms (conc 1) |",
                "|---|---|---|---|---|---|---|---|"]
        e2e = {(r["store"], r["kind"]): r["p50_ms"]["median"] for r in results["summary"]
               if r["conc"] == 1}
        for s, cells in results["anatomy"].items():
            for kind, c in cells.items():
                out.append(f"| {s} | {label[kind]} | {c['features_mean']} "
                           f"| {c['provider_query_ms_median']} | {c['to_json_ms_median']} "
                           f"| {c.get('pg_count_ms_median', '–')} "
                           f"| {c.get('pg_rows_ms_median', '–')} | {e2e.get((s, kind))} |")
        srid = results["anatomy"].get("postgis", {}).get("bbox", {}).get("srid_lookup_ms_median")
        if srid is not None:
            out += ["", "PostGIS bbox: `get_crs_from_uri(storage_crs).to_epsg()`, run by "
                    "pygeoapi's `PostgreSQLProvider._get_bbox_filter` on every bbox request: "
                    f"{srid} ms (median of 20)."]
    return "\n".join(out)


# ---------------------------------------------------------------------------------- anatomy

def _pg_statement_ms(logfile: Path, offset: int) -> dict[str, list[float]]:
    """Durations logged since ``offset`` (log_min_duration_statement = 0), by statement kind.

    A logged statement spans several lines (SQLAlchemy breaks lines); continuation lines start
    with a tab, a new log entry with the timestamp of ``log_line_prefix``.
    """
    out: dict[str, list[float]] = {"count": [], "rows": [], "other": []}
    with logfile.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    entries: list[str] = []
    for line in text.splitlines():
        if line.startswith(("\t", " ")) and entries:
            entries[-1] += " " + line.strip()
        else:
            entries.append(line)
    for e in entries:
        if "duration:" not in e or "statement:" not in e:
            continue
        ms = float(e.split("duration:", 1)[1].split("ms", 1)[0])
        stmt = " ".join(e.split("statement:", 1)[1].lower().split())
        if stmt.startswith("select count("):
            out["count"].append(ms)
        elif stmt.startswith("select") and " limit " in stmt:
            out["rows"].append(ms)
        else:
            out["other"].append(ms)
    return out


def anatomy(configs: dict[str, Path], setup: load_api.Setup, pg: Any, n: int, seed: int
            ) -> dict[str, Any]:
    """Where a request's time goes, measured in this process on the servers' own providers.

    ``provider.query()`` (database + building the feature dicts) and pygeoapi's ``to_json``,
    the same 100 boxes and random offsets as the load, sequential; with PostGIS also the
    statement durations from the server log (log_min_duration_statement = 0, for this phase
    only): the per-request ``COUNT`` and the row query.
    """
    import random

    import yaml
    from pygeoapi.plugin import load_plugin
    from pygeoapi.util import to_json

    _, total, boxes, _ = setup
    out: dict[str, Any] = {}
    for s, cfg_path in configs.items():
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        pdef = cfg["resources"][COLLECTION]["providers"][0]
        provider = load_plugin("provider", pdef)
        res: dict[str, Any] = {}
        for kind in ("bbox", "page"):
            rng = random.Random(seed)
            calls = []
            for _ in range(n + 5):  # 5 warm-up calls
                if kind == "bbox":
                    kw = {"bbox": list(rng.choice(boxes)), "limit": 500}
                else:
                    kw = {"offset": rng.randrange(0, total - 10), "limit": 10}
                calls.append(kw)
            for kw in calls[:5]:
                provider.query(**kw)
            log_offset = pg.logfile.stat().st_size if s == "postgis" else 0
            if s == "postgis":
                pg.psql("ALTER SYSTEM SET log_min_duration_statement = 0")
                pg.psql("SELECT pg_reload_conf()")
                time.sleep(0.5)
            q_ms, j_ms, feats = [], [], []
            try:
                for kw in calls[5:]:
                    t0 = time.perf_counter()
                    doc = provider.query(**kw)
                    t1 = time.perf_counter()
                    to_json(doc, False)
                    t2 = time.perf_counter()
                    q_ms.append(1000 * (t1 - t0))
                    j_ms.append(1000 * (t2 - t1))
                    feats.append(len(doc["features"]))
            finally:
                if s == "postgis":
                    pg.psql("ALTER SYSTEM RESET log_min_duration_statement")
                    pg.psql("SELECT pg_reload_conf()")
            cell = {"calls": n, "features_mean": round(statistics.fmean(feats), 1),
                    "provider_query_ms_median": round(statistics.median(q_ms), 2),
                    "to_json_ms_median": round(statistics.median(j_ms), 2)}
            if s == "postgis":
                stm = _pg_statement_ms(pg.logfile, log_offset)
                cell.update({f"pg_{k}_ms_median": round(statistics.median(v), 2)
                             for k, v in stm.items() if v})
                cell["pg_statements"] = {k: len(v) for k, v in stm.items()}
            res[kind] = cell
        if s == "postgis":
            # pygeoapi 0.21 PostgreSQLProvider._get_bbox_filter runs this on every bbox request
            from pygeoapi.util import get_crs_from_uri

            ts = []
            for _ in range(20):
                t0 = time.perf_counter()
                get_crs_from_uri(provider.storage_crs).to_epsg()
                ts.append(1000 * (time.perf_counter() - t0))
            res["bbox"]["srid_lookup_ms_median"] = round(statistics.median(ts), 2)
        with contextlib.suppress(Exception):
            provider._engine.dispose()
        out[s] = res
    return out


# ------------------------------------------------------------------------------------ facts

def machine_facts(pg: Any | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "nproc": os.cpu_count(), "machine": platform.machine(),
        "python": platform.python_version(), "kernel": platform.release(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    from importlib.metadata import version

    for dist in ("pygeoapi", "gunicorn", "SQLAlchemy", "psycopg2-binary", "psycopg2",
                 "GeoAlchemy2", "pyogrio", "Flask", "shapely"):
        with contextlib.suppress(Exception):
            facts[dist.lower()] = version(dist)
    with contextlib.suppress(Exception):
        from osgeo import gdal

        facts["gdal_osgeo_server"] = gdal.__version__
    with contextlib.suppress(Exception):
        import pyogrio

        facts["gdal_pyogrio_etl"] = pyogrio.__gdal_version_string__
    if pg is not None:
        with contextlib.suppress(Exception):
            facts["postgresql"] = pg.psql("SHOW server_version").strip()
            facts["postgis"] = pg.psql("SELECT postgis_lib_version()").strip()
            facts["pg_shared_buffers"] = pg.psql("SHOW shared_buffers").strip()
            facts["pg_jit"] = pg.psql("SHOW jit").strip()
    return facts


# -------------------------------------------------------------------------------------- main

@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM/SIGHUP -> KeyboardInterrupt, so every ``finally`` below stops what it started."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _server(root: Path, public_dir: Path, workers: int, logfile: Path) -> Any:
    """``ServerProcess`` that also stops its gunicorn if start-up is interrupted."""
    from publish.server.app import ServerProcess

    class _Server(ServerProcess):
        def __init__(self) -> None:
            try:
                super().__init__(root, workers=workers, public_dir=public_dir, log=logfile,
                                 warm=2)
            except BaseException:
                if getattr(self, "proc", None) is not None:
                    self.stop()
                raise

    return _Server()


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from pgserver import pg_server  # tests/pgserver.py

    t_all = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    root, data = prepare_data(args.scale, args.seed)
    log(f"data: scale {args.scale}, seed {args.seed}, raw water pipes "
        f"{data.get('raw_water_pipe')} ({'cached' if data['cached'] else 'generated'})")
    results: dict[str, Any] = {"args": vars(args), "data": data, "prepare": {}, "rounds": []}
    servers: dict[str, Any] = {}
    os.environ.pop("UOZU_GIS_STORE", None)  # the URLs below decide
    with pg_server(dbname="uozu_bench") as pg:  # a fresh cluster and database
        try:
            results["machine"] = machine_facts(pg)
            urls = {"gpkg": "gpkg", "postgis": pg.url()}
            projects = {}
            for s in STORE_NAMES:
                projects[s] = store_project(root, s, urls[s])
                log(f"{s}: merge + publish ...")
                results["prepare"][s] = merge_and_publish(projects[s], urls[s])
                log(f"{s}: {results['prepare'][s]}")
            for s in STORE_NAMES:
                servers[s] = _server(root, projects[s].public_dir, args.workers,
                                     WORK / s / "server.log")
                log(f"{s}: serving at {servers[s].base}")
            bases = {s: servers[s].base for s in STORE_NAMES}
            setups = {s: load_api.prepare(bases[s], COLLECTION, args.seed_load, args.box_m)
                      for s in STORE_NAMES}
            total = {s: setups[s][1] for s in STORE_NAMES}
            # the same 100 boxes for both stores (from the GeoPackage server's first page)
            boxes = setups["gpkg"][2]
            results["same_boxes_from_both_first_pages"] = setups["postgis"][2] == boxes
            run_setup = {s: (COLLECTION, total[s], boxes, setups["gpkg"][3])
                         for s in STORE_NAMES}
            results["features"] = total
            log(f"collection {COLLECTION}: numberMatched {total}; cross-checking ...")
            results["checks"] = cross_check(bases, run_setup["gpkg"], total)
            for p in results["checks"]["problems"][:20]:
                log(f"CHECK: {p}")
            for r in range(args.rounds):
                rnd: dict[str, Any] = {"round": r + 1}
                for i, (kind, conc) in enumerate(CELLS):
                    order = STORE_NAMES if (r + i) % 2 == 0 else STORE_NAMES[::-1]
                    cell: dict[str, Any] = {"order": list(order)}
                    for s in order:
                        cell[s] = measure(bases[s], run_setup[s], kind, conc, args,
                                          args.seed_load + r)
                        m = cell[s]
                        log(f"round {r + 1} {kind} c{conc} {s}: {m['requests']} req, "
                            f"{m['errors']} err, {m['req_per_s']} req/s, p50 {m['p50_ms']} "
                            f"p95 {m['p95_ms']} ms, load {m['loadavg_1m']}")
                    rnd[f"{kind}_c{conc}"] = cell
                results["rounds"].append(rnd)
            if args.anatomy:
                log("anatomy: provider.query / to_json / PostgreSQL statement times ...")
                results["anatomy"] = anatomy(
                    {s: Path(results["prepare"][s]["config"]) for s in STORE_NAMES},
                    run_setup["gpkg"], pg, args.anatomy, args.seed_load)
                log(f"anatomy: {results['anatomy']}")
            for s in STORE_NAMES:  # any 5xx or traceback in the server logs
                text = servers[s].output()
                results.setdefault("server_log_errors", {})[s] = [
                    ln for ln in text.splitlines() if "Traceback" in ln or "ERROR" in ln][:20]
        finally:
            for s, srv in servers.items():
                with contextlib.suppress(Exception):
                    srv.stop()
                    log(f"{s}: server stopped")
    log("PostgreSQL cluster stopped")
    results["summary"] = summarise(results["rounds"])
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.monotonic() - t_all, 1)
    return results


# ------------------------------------------------------- our PostGIS provider vs stock pygeoapi

def stock_pg_server(pg: Any, dbname: str, schema: str, table: str, port: int, workers: int,
                    tmp: Path) -> Any:
    """Stock pygeoapi 0.21 with its own ``PostgreSQL`` provider on our release table."""
    import subprocess

    import bench_api_pages
    import yaml

    ogr_cfg = tmp / "stock-ogr.yml"  # bench_api_pages' stock config, with a PostgreSQL provider
    cfg = {
        "server": {"bind": {"host": "127.0.0.1", "port": port},
                   "url": f"http://127.0.0.1:{port}",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8",
                   "language": "en-US", "cors": False, "pretty_print": False,
                   "limits": {"default_items": 10, "max_items": 10000},
                   "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
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
                                 "hours": "x", "instructions": "x",
                                 "role": "pointOfContact"}},
        "resources": {"pg": {
            "type": "collection", "title": "PG", "description": "PG", "keywords": ["x"],
            "links": [], "extents": {"spatial": {
                "bbox": [-180, -90, 180, 90],
                "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [{"type": "feature", "name": "PostgreSQL", "id_field": "fid",
                           "table": table, "geom_field": "geom",
                           "data": {"host": "127.0.0.1", "port": pg.port, "dbname": dbname,
                                    "user": "postgres", "search_path": [schema]}}]}},
    }
    ogr_cfg.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PYGEOAPI_CONFIG=str(ogr_cfg),
               PYGEOAPI_OPENAPI=str(tmp / "stock-oas.yml"))
    bindir = Path(sys.executable).parent
    subprocess.run([str(bindir / "pygeoapi"), "openapi", "generate", str(ogr_cfg),
                    "--output-file", env["PYGEOAPI_OPENAPI"]], env=env, check=True,
                   capture_output=True)
    logfile = tmp / "stock-pg.log"
    proc = subprocess.Popen([str(bindir / "gunicorn"), "-w", str(workers), "-b",
                             f"127.0.0.1:{port}", "--timeout", "300", "pygeoapi.flask_app:APP"],
                            env=env, stdout=subprocess.DEVNULL, stderr=logfile.open("w"))
    bench_api_pages.wait_up(port, "/collections/pg/items?f=json&limit=1", proc, logfile)
    return proc


def vs_stock(args: argparse.Namespace) -> None:
    """``--vs-stock N``: PublicPostgreSQLProvider (SQL serialisation) against stock pygeoapi's
    PostgreSQL provider on the same release table, A/B alternated per round.

    Data: the test fixture project (``tests/publish_fixtures.make_project``, N sewer pipes)
    published into a fresh PostGIS database (no merge: the fixture writes its master).
    Cells (c=1): ``page1000`` (limit 1000 at a random offset), ``page1000_first`` and
    ``bbox500`` (a 500 m box around a random pipe, limit 500). Both servers answer
    uncompressed JSON; the first answer of each cell is compared (ids and properties).
    """
    import random
    import tempfile

    import bench_api_pages as bap
    from pgserver import pg_server
    from publish_fixtures import isolated_site_builders, make_project

    from publish.build import publish
    from publish.build.pgpublic import public_schema
    from publish.server.app import ServerProcess, free_port

    layer = bap.LAYER
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="vs_stock-", dir=WORK))
    stock = ours = None
    with pg_server(dbname="uozu_bench") as pg:
        try:
            url = pg.url()
            t0 = time.perf_counter()
            with isolated_site_builders():
                project = make_project(tmp / "proj", n_pipes=args.vs_stock,
                                       n_shelters=max(9, args.vs_stock // 50), store=url)
                res = publish(project)
            schema = public_schema(project.config.postgis.schema_prefix, res.release_id)
            total = res.counts[layer]
            log(f"published {total} {layer} into PostGIS in {time.perf_counter() - t0:.1f} s")
            rng = random.Random(args.seed_load)
            bb = bap.boxes(res.store, args.seq_requests, args.seed_load)
            offsets = [rng.randrange(0, max(1, total - 1000)) for _ in range(args.seq_requests)]
            prefix = {"ours": f"/api/collections/{layer}/items", "stock": "/collections/pg/items"}
            cells = {
                "page1000": lambda s: [f"{prefix[s]}?f=json&limit=1000&offset={o}"
                                       for o in offsets],
                "page1000_first": lambda s: [f"{prefix[s]}?f=json&limit=1000"] * len(offsets),
                "bbox500": lambda s: [f"{prefix[s]}?f=json&limit=500&bbox={b}" for b in bb],
            }
            ours = ServerProcess(tmp / "proj", workers=args.workers, log=tmp / "ours.log",
                                 warm=2)
            stock = stock_pg_server(pg, "uozu_bench", schema, layer, free_port(),
                                    args.workers, tmp)
            ports = {"ours": ours.port, "stock": int(stock.args[4].rsplit(":", 1)[1])}
            same = {}
            for c, mk in cells.items():  # the same features, property for property
                docs = {}
                for s in ports:
                    path, query = mk(s)[0].split("?")
                    st, doc = _get_json(f"http://127.0.0.1:{ports[s]}", path,
                                        **dict(q.split("=") for q in query.split("&")))
                    if st != 200:
                        raise SystemExit(f"{s} {c}: HTTP {st} {str(doc)[:300]}")
                    docs[s] = {f["id"]: {k: v for k, v in f["properties"].items()
                                         if k != "geom"} for f in doc["features"]}
                same[c] = docs["ours"] == docs["stock"]
            log(f"same answers: {same}")
            for s in ports:
                for mk in cells.values():
                    bap.load(ports[s], mk(s)[:6], 2)
            rows = []
            for rnd in range(args.rounds):
                order = ["ours", "stock"] if rnd % 2 == 0 else ["stock", "ours"]
                for cell, mk in cells.items():
                    for s in order:
                        r = bap.load(ports[s], mk(s), 1)
                        r.update(server=s, cell=cell, round=rnd, load=os.getloadavg()[0])
                        rows.append(r)
                        log(f"round {rnd} {cell} {s}: p50 {r['p50_ms']:.1f} "
                            f"p95 {r['p95_ms']:.1f} ms, {r['errors']} errors")
        finally:
            if ours is not None:
                ours.stop()
            if stock is not None:
                stock.terminate()  # by PID
                stock.wait(30)
    out = {"features": total, "rounds": args.rounds, "n": args.seq_requests,
           "same_answers": same, "rows": rows}
    path = WORK / f"vs-stock-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"\n{total} {layer} features in PostGIS, {args.workers} workers, {args.rounds} "
          f"rounds × {args.seq_requests} sequential requests per cell\n")
    print("| request | server | p50 ms | p95 ms | req/s | KB/resp | errors/requests | "
          "ours/stock p50 (per round) |")
    print("|---|---|---|---|---|---|---|---|")
    for cell in cells:
        for s in ("ours", "stock"):
            rs = [r for r in rows if (r["server"], r["cell"]) == (s, cell)]
            ratio = ""
            if s == "ours":
                per = [r["p50_ms"] / next(x["p50_ms"] for x in rows if (
                    x["server"], x["cell"], x["round"]) == ("stock", cell, r["round"]))
                    for r in rs]
                ratio = f"{statistics.median(per):.2f} ({', '.join(f'{x:.2f}' for x in per)})"
            print(f"| {cell} | {s} PostgreSQL | "
                  f"{statistics.median(r['p50_ms'] for r in rs):.1f} | "
                  f"{statistics.median(r['p95_ms'] for r in rs):.1f} | "
                  f"{statistics.median(r['rps'] for r in rs):.1f} | "
                  f"{statistics.median(r['kb'] for r in rs):.0f} | "
                  f"{sum(r['errors'] for r in rs)}/{sum(r['n'] for r in rs)} | {ratio} |")
    print(f"\nJSON: {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=5.1,
                    help="sample scale (5.1 gives >= 100k water_pipe segments)")
    ap.add_argument("--seed", type=int, default=42, help="sample data seed")
    ap.add_argument("--seed-load", type=int, default=1, help="boxes and offsets seed")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seq-requests", type=int, default=200,
                    help="requests per concurrency-1 measurement")
    ap.add_argument("--seq-timeout", type=float, default=180.0,
                    help="upper bound in seconds for a concurrency-1 measurement")
    ap.add_argument("--warmup", type=int, default=20, help="discarded requests before each")
    ap.add_argument("--seconds", type=float, default=30.0,
                    help="duration of a concurrency-4 measurement")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    ap.add_argument("--box-m", type=float, default=500.0)
    ap.add_argument("--bbox-limit", type=int, default=500)
    ap.add_argument("--page-limit", type=int, default=10)
    ap.add_argument("--anatomy", type=int, default=100, metavar="N",
                    help="in-process provider/to_json/SQL timing calls per kind (0: skip)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON results (default bench/work/serve_stores/results-<time>.json)")
    ap.add_argument("--report", type=Path, default=None, metavar="JSON",
                    help="only print the Markdown tables of an earlier results file")
    ap.add_argument("--vs-stock", type=int, default=0, metavar="N",
                    help="only: our PostGIS provider vs stock pygeoapi's PostgreSQL provider "
                         "on a published fixture layer of N pipes (see vs_stock)")
    args = ap.parse_args(argv)
    if args.vs_stock:
        vs_stock(args)
        return
    if args.report:
        print(markdown(json.loads(args.report.read_text(encoding="utf-8"))))
        return
    try:
        with _sigterm_as_interrupt():
            results = bench(args)
    except KeyboardInterrupt:
        log("interrupted: servers and the PostgreSQL cluster were stopped")
        sys.exit(130)
    out = args.out or WORK / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    results["args"]["out"] = str(out)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str),
                   encoding="utf-8")
    print(json.dumps({"machine": results["machine"], "data": results["data"],
                      "features": results["features"], "checks": results["checks"],
                      "wall_s": results["wall_s"]}, ensure_ascii=False, indent=2))
    print()
    print(markdown(results))
    print(f"\nJSON: {out}")
    errors = sum(r["errors"] for r in results["summary"])
    if errors or results["checks"]["problems"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
