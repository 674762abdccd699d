#!/usr/bin/env python3
"""Publish benchmark (issue 17 item 2): ``uozu-gis publish`` at ≈1M master features against a
plain ``ogr2ogr`` copy of the same master, side by side in one run.

Data (cached, not timed): the ≈1M-record sample of ``bench/bench_merge.py`` (``uozu-gis sample
--scale 8.94 --seed 42``: 999,857 raw records) merged once by ``uozu-gis merge`` into
``WORK/proj`` (≈998k master features in 11 layers, 10 of them public). If ``bench/work/
proj_s8.94_seed42`` exists its raw files are hard-linked instead of generated again.

Methods, each one process under ``/usr/bin/time -v`` (wall, peak RSS), order rotated per repeat:

* ``publish``        -- ``uozu-gis --project P -q --json publish``: the whole command, CLI start-up
  and every stage (store, checks, answers, config, OpenAPI, vector tiles, pages, switch);
  the stage timings come from its JSON answer.
* ``publish_notiles`` -- the same ``publish()`` in a child with the vector-tile stage
  (:mod:`publish.build.tiles`) and the map pages built from the tiles replaced by no-ops: what
  the store streaming changes, without the stages it does not touch.
* ``whole_notiles``  -- as ``publish_notiles`` with ``batch_rows=None``: the former whole-layer
  public store, for the before/after ratio in the same run.
* ``store_streamed`` / ``store_whole`` -- only the public store stage and its leak check
  (:func:`publish.build.public_store.write_public_store` + ``check_public_store``), streamed
  (``BATCH_ROWS``) or whole-layer, into a scratch file: the part of publish that is a copy of
  the master, comparable with ogr2ogr's copy.
* ``publish_tiles``  -- the same ``publish()`` in a child with every stage (tiles and pages
  too): the whole command without its CLI, with the stage marks below.
* ``before_notiles`` / ``before_tiles`` -- ``publish_notiles`` / ``publish_tiles`` run with the
  code of ``--before-code DIR`` (e.g. ``git archive HEAD | tar -x -C DIR``) on
  ``WORK/proj_before``: the same master (its ``data/merged`` linked), its own releases, so each
  side's change feed reads the history its own code wrote. Before/after in one run.
* ``ogr2ogr``        -- ``ogr2ogr -f GPKG out.gpkg master.gpkg`` (Debian GDAL): every layer
  copied as is, the floor a GIS engineer would reach for.
* ``answers`` / ``answers_old`` -- the release's answers stages that read the public store
  (search index, open data, change feed), each in its own child (wall, peak RSS of the child
  and its worker processes, CPU s), over a public store of the master built once (not timed)
  and a previous release (that store and its first change feed, built once): the change feed
  is timed as a second release carrying the first one's history. ``answers_old`` runs the
  same stages with the modules in ``--old-modules DIR`` (``old_opendata.py``,
  ``old_changes.py``, ``old_search_index.py`` and ``opendata_standards.yml``, e.g. from
  ``git show REV:publish/build/opendata.py``): the before/after of a change to those stages.

Every in-process ``publish`` child records, at each stage's start, the seconds since it began
and the peak RSS so far of the process and of its (forked) workers (``rss_marks``), so the
peak of each stage is the next mark's. The first run of each project is a warm-up (not timed):
every timed publish is then a second release whose change feed carries the full history.

``--profile`` additionally runs ``publish_notiles`` once under cProfile and prints the top of
the cumulative profile (what stops a missed target). Results: one JSON line per run in
``WORK/runs.jsonl``; the Markdown table of ``bench/RESULTS.md`` on stdout.

Usage::

    .venv/bin/python bench/bench_publish.py --reps 3            # RESULTS.md, ≈25 min
    .venv/bin/python bench/bench_publish.py --reps 1 --methods publish_notiles ogr2ogr
    .venv/bin/python bench/bench_publish.py --report             # tables from runs.jsonl
    .venv/bin/python bench/bench_publish.py --reps 3 --methods answers answers_old \
        --old-modules /tmp/old                                   # answers stages, A/B
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / "work" / "publish_bench"
BIN = Path(sys.executable).parent
SCALE, SEED = 8.94, 42
METHODS = ("publish", "publish_notiles", "whole_notiles", "store_streamed", "store_whole",
           "ogr2ogr", "answers", "answers_old", "publish_tiles", "before_notiles",
           "before_tiles")
#: methods that run the code of ``--before-code`` (another checkout) on ``WORK/proj_before``
BEFORE = {"before_notiles": "publish_notiles", "before_tiles": "publish_tiles"}
ANSWER_STAGES = ("search", "opendata", "changes")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ data

def prepare(work: Path) -> Path:
    """The 1M project with a merged master (reused when present)."""
    proj = work / "proj"
    if (proj / "data" / "merged" / "master.gpkg").exists():
        return proj
    sys.path.insert(0, str(REPO / "bench"))
    import bench_merge

    src = bench_merge.project_dir(REPO / "bench" / "work", SCALE, SEED)
    if not (src / "data" / "raw").exists():
        bench_merge.prepare(REPO / "bench" / "work", SCALE, SEED)
    proj.mkdir(parents=True, exist_ok=True)
    for d in ("config", "layers", "samples"):
        if (src / d).exists() and not (proj / d).exists():
            shutil.copytree(src / d, proj / d)
    (proj / "data").mkdir(exist_ok=True)
    if not (proj / "data" / "raw").exists():
        subprocess.run(["cp", "-al", str(src / "data" / "raw"), str(proj / "data" / "raw")],
                       check=True)
    for d in ("grids", "reference"):
        if not (proj / "data" / d).exists():
            (proj / "data" / d).symlink_to(REPO / "data" / d)
    log("merging the 1M master once (not timed)")
    subprocess.run([str(BIN / "uozu-gis"), "--project", str(proj), "-q", "merge"], check=True)
    return proj


def prepare_before(work: Path, proj: Path) -> Path:
    """``WORK/proj_before``: the project's config with the same merged master (linked) and
    its own public folder, for the ``before_*`` methods."""
    other = work / "proj_before"
    other.mkdir(parents=True, exist_ok=True)
    for d in ("config", "layers", "samples"):
        if (proj / d).exists() and not (other / d).exists():
            shutil.copytree(proj / d, other / d)
    (other / "data").mkdir(exist_ok=True)
    for d in ("merged", "grids", "reference"):
        if not (other / "data" / d).exists():
            (other / "data" / d).symlink_to((proj / "data" / d).resolve())
    return other


# ------------------------------------------------------------------------------- measuring

def timed(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` under /usr/bin/time -v: wall seconds, peak RSS MB, stdout."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"{cmd} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return {"wall": wall, "rss_mb": rss / 1024, "stdout": p.stdout}


def child(mode: str, proj: str, profile: bool) -> None:
    """In-process publish with the tile stage off (and the whole-layer store for ``whole``)."""
    import functools

    if mode.startswith("store_"):
        store_child(mode, proj)
        return

    from config import load_project
    from publish.build import public_store, publish
    from publish.build import tiles as vtiles

    if mode != "publish_tiles":
        vtiles.write_site_tiles = lambda *a, **k: None  # the stage this bench leaves out
        sys.modules["publish.build"].build_site = lambda ctx: None  # pages need the tiles
    if mode == "whole_notiles":
        public_store.write_public_store = functools.partial(  # type: ignore[assignment]
            public_store.write_public_store, batch_rows=None)
    project = load_project(Path(proj))
    # (stage starting, seconds, peak RSS MB so far of this process, of its largest worker)
    marks: list[tuple[str, float, float, float]] = []
    t0 = time.perf_counter()

    def peaks() -> tuple[float, float]:
        return (round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))

    def progress(stage: str, layer: str, done: int, total: int) -> None:
        if not marks or marks[-1][0] != stage:
            marks.append((stage, round(time.perf_counter() - t0, 2), *peaks()))
            print(f"mark {json.dumps(marks[-1])}", file=sys.stderr, flush=True)  # as it goes

    publish = functools.partial(publish, progress=progress)
    if profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        res = publish(project)
        pr.disable()
        pstats.Stats(pr, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    else:
        res = publish(project)
    marks.append(("end", round(time.perf_counter() - t0, 2), *peaks()))
    print(json.dumps({"features": res.features, "timings": res.timings, "rss_marks": marks}))


def store_child(mode: str, proj: str) -> None:
    """The public store stage alone (streamed or whole-layer) into a scratch GeoPackage."""
    from config import load_project
    from publish.build import public_store as store

    project = load_project(Path(proj))
    t0 = time.perf_counter()
    plans = store.plan_store(project)
    source = store.locate_master(project)
    out = Path(proj) / "scratch-store.gpkg"
    batch = store.BATCH_ROWS if mode == "store_streamed" else None
    layers = store.write_public_store(project, source, out, plans, batch_rows=batch)
    counts = {lid: lay.features for lid, lay in layers.items()}
    t_store = time.perf_counter() - t0
    store.check_public_store(out, store.expected_tables(project),
                             store.forbidden_columns(project), counts)
    t_check = time.perf_counter() - t0 - t_store
    out.unlink()
    print(json.dumps({"features": sum(counts.values()),
                      "timings": {"store": t_store, "check": t_check}}))


def answers_inputs(proj: Path, work: Path) -> tuple[Path, Path]:
    """The public store of the master and a previous release (store + first change feed),
    built once (not timed)."""
    store, prev = work / "answers" / "public.gpkg", work / "answers" / "previous"
    if any((prev / "changes" / n).exists() for n in ("history.sqlite", "history.json")):
        return store, prev
    import datetime as dt

    sys.path.insert(0, str(REPO))
    from config import load_project
    from publish.build import changes
    from publish.build import public_store as ps

    log("building the public store and a previous release for the answers stages (not timed)")
    project = load_project(proj)
    store.parent.mkdir(parents=True, exist_ok=True)
    ps.write_public_store(project, ps.locate_master(project), store, ps.plan_store(project))
    prev.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store, prev / "public.gpkg")
    changes.release_changes(project, store, "R1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), None,
                            prev / "changes")
    return store, prev


def answers_child(mode: str, stage: str, proj: str, store: str, prev: str, old: str) -> None:
    """One answers stage over ``store`` into a scratch folder: seconds, CPU s (with workers)."""
    import datetime as dt

    if mode == "answers_old":
        sys.path.insert(0, old)
        import old_changes as changes  # type: ignore[import-not-found]
        import old_opendata as opendata  # type: ignore[import-not-found]
        import old_search_index as search_index  # type: ignore[import-not-found]
    else:
        from publish.build import changes, opendata, search_index
    from config import load_project

    project = load_project(Path(proj))
    out = Path(store).parent / f"out-{mode}-{stage}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    def cpu() -> float:
        a = resource.getrusage(resource.RUSAGE_SELF)
        b = resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c0, t0 = cpu(), time.perf_counter()
    if stage == "search":
        search_index.release_artifact(project, Path(store), out)
    elif stage == "opendata":
        opendata.release_artifact(project, Path(store), out, {})
    else:
        changes.release_changes(project, Path(store), "R2", dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
                                Path(prev), out, previous_id="R1")
    print(json.dumps({"s": time.perf_counter() - t0, "cpu": cpu() - c0, "base_mb": base}))
    shutil.rmtree(out, ignore_errors=True)


def run_method(method: str, proj: Path, work: Path, old: Path | None = None,
               before: Path | None = None) -> dict[str, Any]:
    master = proj / "data" / "merged" / "master.gpkg"
    if method in BEFORE:
        if before is None:
            raise SystemExit(f"{method} needs --before-code DIR")
        r = timed([sys.executable, __file__, "--code", str(before), "--child", BEFORE[method],
                   str(prepare_before(work, proj))])
        ans = json.loads(r["stdout"].strip().splitlines()[-1])
        return {"wall": r["wall"], "rss_mb": r["rss_mb"], "features": ans.get("features"),
                "timings": ans.get("timings"), "rss_marks": ans.get("rss_marks")}
    if method.startswith("answers"):
        if method == "answers_old" and old is None:
            raise SystemExit("answers_old needs --old-modules DIR")
        store, prev = answers_inputs(proj, work)
        timings: dict[str, float] = {}
        stage_rss: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for stage in ANSWER_STAGES:
            r = timed([sys.executable, __file__, "--answers-child", method, stage, str(proj),
                       str(store), str(prev), str(old or "")])
            ans = json.loads(r["stdout"].strip().splitlines()[-1])
            timings[stage], cpu[stage] = ans["s"], ans["cpu"]
            stage_rss[stage] = round(r["rss_mb"])
        return {"wall": sum(timings.values()), "rss_mb": max(stage_rss.values()),
                "timings": timings, "stage_rss": stage_rss, "cpu": cpu}
    if method == "ogr2ogr":
        out = work / "ogr2ogr.gpkg"
        out.unlink(missing_ok=True)
        r = timed(["ogr2ogr", "-f", "GPKG", str(out), str(master.resolve())])
        out.unlink(missing_ok=True)
        return {"wall": r["wall"], "rss_mb": r["rss_mb"]}
    if method == "publish":
        r = timed([str(BIN / "uozu-gis"), "--project", str(proj), "-q", "--json", "publish"])
    else:
        r = timed([sys.executable, __file__, "--child", method, str(proj)])
    out = r["stdout"].strip()
    try:  # the CLI prints one indented JSON document, the child one JSON line
        ans = json.loads(out)
    except ValueError:
        ans = json.loads(out.splitlines()[-1])
    return {"wall": r["wall"], "rss_mb": r["rss_mb"], "features": ans.get("features"),
            "timings": ans.get("timings"), "rss_marks": ans.get("rss_marks")}


# ------------------------------------------------------------------------------- reporting

def _med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.1f}" if xs else "-"


def report(rows: list[dict[str, Any]]) -> str:
    """Medians per method; the ratio to ogr2ogr is taken per repeat (same load), then median."""
    base = {r["rep"]: r["wall"] for r in rows if r["method"] == "ogr2ogr"}
    lines = ["| method | wall s (median) | runs | × ogr2ogr (median, range) | peak RSS MB "
             "(median) | store stage s | tiles stage s |", "|---|---|---|---|---|---|---|"]
    for m in METHODS:
        rs = [r for r in rows if r["method"] == m]
        if not rs:
            continue
        ratios = [r["wall"] / base[r["rep"]] for r in rs if r["rep"] in base]
        ratio = (f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"
                 if ratios else "-")
        runs = "/".join(f"{r['wall']:.1f}" for r in rs)
        store = [r["timings"]["store"] for r in rs if (r.get("timings") or {}).get("store")]
        tiles = [r["timings"]["tiles"] for r in rs if (r.get("timings") or {}).get("tiles")]
        lines.append(f"| {m} | {_med([r['wall'] for r in rs])} | {runs} | {ratio} | "
                     f"{statistics.median(r['rss_mb'] for r in rs):.0f} | {_med(store)} | "
                     f"{_med(tiles)} |")
    ans = [r for r in rows if r["method"].startswith("answers")]
    if ans:
        lines += ["", "| method | stage | s (median) | CPU s (median) | peak RSS MB (median) |",
                  "|---|---|---|---|---|"]
        for m in ("answers_old", "answers"):
            for st in ANSWER_STAGES:
                rs = [r for r in ans if r["method"] == m]
                if rs:
                    lines.append(
                        f"| {m} | {st} | {_med([r['timings'][st] for r in rs])} | "
                        f"{_med([r['cpu'][st] for r in rs])} | "
                        f"{statistics.median(r['stage_rss'][st] for r in rs):.0f} |")
    marked = [r for r in rows if r.get("rss_marks")]
    if marked:
        lines += ["", "Stage marks (first run of each method): seconds in the stage, peak RSS MB "
                  "at its end (process / largest worker so far)", "",
                  "| method | stage | s | peak MB | workers MB |", "|---|---|---|---|---|"]
        for m in METHODS:
            r = next((r for r in marked if r["method"] == m), None)
            if r is None:
                continue
            mk = [list(x) + [0] * (4 - len(x)) for x in r["rss_marks"]]
            for cur, nxt in itertools.pairwise(mk):
                lines.append(f"| {m} | {cur[0]} | {nxt[1] - cur[1]:.1f} | {nxt[2]:.0f} | "
                             f"{nxt[3]:.0f} |")
    stages = [r["timings"] for r in rows if r["method"] == "publish" and r.get("timings")]
    if stages:
        keys = [k for k in stages[0] if k != "total"]
        lines.append("")
        lines.append("publish stages (median s): " + ", ".join(
            f"{k} {statistics.median(s.get(k, 0.0) for s in stages):.1f}" for k in keys))
    feats = next((r.get("features") for r in rows if r.get("features")), None)
    lines.append(f"\npublic features: {feats}")
    return "\n".join(lines)


def warm_up(methods: list[str], proj: Path, work: Path, before: Path | None) -> None:
    """A first (untimed) release of each project a publish method will use, so that every
    timed publish is a second release (a change feed against a previous store and history)."""
    pubs = [m for m in methods if m in ("publish", "publish_notiles", "whole_notiles",
                                         "publish_tiles")]
    if pubs and not list((proj / "data" / "public" / "releases").glob("*")):
        log("warm-up publish (not timed)")
        run_method("publish_notiles", proj, work)
    befores = [m for m in methods if m in BEFORE]
    if befores and before is not None:
        other = prepare_before(work, proj)
        if not list((other / "data" / "public" / "releases").glob("*")):
            log("warm-up publish of proj_before (not timed)")
            run_method("before_notiles", proj, work, before=before)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--old-modules", type=Path, default=None,
                    help="folder of old_opendata.py, old_changes.py, old_search_index.py "
                         "(answers_old)")
    ap.add_argument("--before-code", type=Path, default=None,
                    help="a checkout of the code before (before_notiles, before_tiles)")
    ap.add_argument("--code", type=Path, default=REPO, help=argparse.SUPPRESS)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PROJECT"), help=argparse.SUPPRESS)
    ap.add_argument("--answers-child", nargs=6, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.answers_child:
        sys.path.insert(0, str(REPO))
        answers_child(*a.answers_child)
        return
    if a.child:
        sys.path.insert(0, str(a.code))
        child(a.child[0], a.child[1], a.profile)
        return
    out = a.work / "runs.jsonl"
    if a.report:
        print(report([json.loads(x) for x in out.read_text().splitlines()]))
        return
    a.work.mkdir(parents=True, exist_ok=True)
    proj = prepare(a.work)
    warm_up(a.methods, proj, a.work, a.before_code)
    tag = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for rep in range(a.reps):
        k = rep % len(a.methods)
        for m in a.methods[k:] + a.methods[:k]:
            r = run_method(m, proj, a.work, a.old_modules, a.before_code)
            r.update(method=m, rep=rep, tag=tag, load=os.getloadavg()[0])
            rows.append(r)
            with out.open("a") as fh:
                fh.write(json.dumps(r) + "\n")
            log(f"rep {rep} {m}: {r['wall']:.1f} s, {r['rss_mb']:.0f} MB")
    if a.profile:
        p = subprocess.run([sys.executable, __file__, "--profile", "--child", "publish_notiles",
                            str(proj)], capture_output=True, text=True)
        print(p.stderr[-12000:], file=sys.stderr)
    print(report(rows))


if __name__ == "__main__":
    main()
