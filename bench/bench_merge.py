#!/usr/bin/env python3
"""Merge benchmark: ``uozu-gis merge`` against bare GDAL ``ogr2ogr`` on the same raw exports.

For each scale (default ≈100k and ≈1M raw records) the script generates the sample raw exports
once (``uozu-gis sample --scale S --seed N``, not timed) into a throw-away project folder under
``bench/work/`` (git-ignored), then runs, per repeat and interleaved (the order of the methods
rotates every repeat):

* ``merge``   -- ``uozu-gis --project P -q --json merge`` under ``/usr/bin/time -v`` into an empty
  ``data/merged`` (every repeat is a first merge, so every repeat does the same work): wall time,
  peak RSS, and the in-process ``seconds`` / ``stage_seconds`` of the run manifest.
* ``ogr2ogr`` -- the floor a GIS engineer would reach for: one ``ogr2ogr`` call per raw file
  named by the layer specs (sources and lookup tables) into one GeoPackage, ``-t_srs EPSG:6675``,
  ``-s_srs`` where the spec declares the CRS (no .prj / overridden), ``-oo ENCODING=…`` for the
  Shapefile DBFs, and ``iconv -f CP932 | ogr2ogr CSV:/vsistdin/`` for cp932 CSVs (GDAL's CSV
  driver has no encoding option). Wall time is summed over the calls, RSS is the largest call.
  Debian ogr2ogr (GDAL 3.6.2) uses PROJ's default Helmert for Tokyo→JGD2011 (≈3 m off); the
  merge applies the GSI grids, validates, quarantines, writes lineage and reports, and fsyncs.

``--variant NAME=DIR`` runs the merge with ``PYTHONPATH=DIR`` as well (e.g. a copy of the
original ``etl/`` package for before/after ratios measured side by side in the same run).
``--batch-variant NAME=N`` runs this tree's merge with ``UOZU_GIS_BATCH=N`` (records per batch
of a streamed layer; ``0`` reads every layer whole), e.g. ``whole=0`` beside the default.

Every run is appended as one JSON line to ``--out`` (default ``bench/work/merge.jsonl``);
``--report`` prints the Markdown tables of ``bench/RESULTS.md`` from that file.

Examples::

    .venv/bin/python bench/bench_merge.py                         # 100k + 1M, 3 repeats
    .venv/bin/python bench/bench_merge.py --scales 0.886 --reps 5 # 100k only
    .venv/bin/python bench/bench_merge.py --variant before=bench/work/before --tag cmp
    .venv/bin/python bench/bench_merge.py --report [--tag cmp]
    .venv/bin/python bench/bench_merge.py --variant before=bench/work/before --check-identical
    .venv/bin/python bench/bench_merge.py --spy-summary spy.txt    # py-spy record -f raw output
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
UOZU = BIN / "uozu-gis"
# `uozu-gis sample --scale` that give ≈100k and ≈1M raw records (sum over the 13 raw files,
# seed 42): 0.886 -> 100,066 and 8.94 -> 999,857 (1.0 -> 113,078).
DEFAULT_SCALES = [0.886, 8.94]
STAGES = ("read", "normalize", "transform", "validate", "write")
TARGET_CRS = "EPSG:6675"


# ----------------------------------------------------------------------------------- data


def project_dir(work: Path, scale: float, seed: int) -> Path:
    return work / f"proj_s{scale:g}_seed{seed}"


def prepare(work: Path, scale: float, seed: int) -> tuple[Path, dict[str, int]]:
    """A project folder (config/ and layers/ of this repo) with generated raw data (cached)."""
    p = project_dir(work, scale, seed)
    stamp = p / "raw_counts.json"
    if stamp.exists():
        return p, json.loads(stamp.read_text())["files"]
    (p / "data").mkdir(parents=True, exist_ok=True)
    # the specs and the generator are copied, not linked: a spec edited in the tree later must
    # not change what a cached project's raw data is merged with (it would stop matching)
    (p / "config").mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "config" / "project.yml", p / "config" / "project.yml")
    for name in ("layers", "samples"):
        if not (p / name).exists():
            shutil.copytree(ROOT / name, p / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
    for name, target in (("data/grids", ROOT / "data/grids"),
                         ("data/reference", ROOT / "data/reference")):
        link = p / name
        if not link.is_symlink():
            link.symlink_to(target)
    raw = p / "data" / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    t0 = time.perf_counter()
    out = subprocess.run([str(UOZU), "--project", str(p), "-q", "--json", "sample",
                          "--scale", str(scale), "--seed", str(seed), "--out", str(raw)],
                         check=True, capture_output=True, text=True).stdout
    files = json.loads(out)["files"]
    stamp.write_text(json.dumps({"scale": scale, "seed": seed, "files": files,
                                 "total": sum(files.values()),
                                 "generate_s": round(time.perf_counter() - t0, 1)}, indent=1))
    return p, files


# ----------------------------------------------------------------------------------- timing


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        out.append(q)
        for t in Path(f"/proc/{q}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in t.read_text().split()]
    return out


def _pss_kb(pids: list[int]) -> int:
    """The sum of the proportional set sizes of ``pids`` (shared pages counted once overall:
    what a run of several processes really holds)."""
    total = 0
    for q in pids:
        try:
            for line in Path(f"/proc/{q}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total


def timed(cmd: list[str], *, env: dict | None = None, shell: bool = False,
          pss: bool = False) -> dict:
    """Run under /usr/bin/time -v: wall s, peak RSS MB (of the largest single process),
    user+sys s, stdout; with ``pss`` also the peak of the PSS summed over the process tree
    (sampled every 0.1 s: a merge with child processes holds more than its largest one)."""
    full = ["/usr/bin/time", "-v"] + (["sh", "-c", cmd] if shell else cmd)  # type: ignore[operator]
    proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    peak = 0
    if pss:
        while proc.poll() is None:
            peak = max(peak, _pss_kb(_tree(proc.pid)[1:]))  # not /usr/bin/time itself
            time.sleep(0.1)
    out, err = proc.communicate()
    p = subprocess.CompletedProcess(full, proc.returncode, out, err)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({p.returncode}):\n{err[-3000:]}")
    h, m, s = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", err).groups()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", err).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", err).group(1))
    r = {"wall_s": int(h or 0) * 3600 + int(m) * 60 + float(s), "rss_mb": rss / 1024,
         "cpu_s": user + sys_, "stdout": p.stdout}
    if pss:
        r["pss_sum_mb"] = round(peak / 1024, 1)
    return r


def run_merge(p: Path, pythonpath: str | None, batch: str | None = None,
              jobs: str | None = None) -> dict:
    """One merge of project ``p`` (``pythonpath``: another ``etl/``; ``batch``: the
    ``UOZU_GIS_BATCH`` records per batch of a streamed layer, "0" = every layer whole;
    ``jobs``: ``UOZU_GIS_JOBS``, layers merged at once in child processes)."""
    shutil.rmtree(p / "data" / "merged", ignore_errors=True)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("UOZU_GIS_BATCH", None)
    env.pop("UOZU_GIS_JOBS", None)
    if pythonpath:
        env["PYTHONPATH"] = str(Path(pythonpath).resolve())
    if batch is not None:
        env["UOZU_GIS_BATCH"] = batch
    if jobs is not None:
        env["UOZU_GIS_JOBS"] = jobs
    r = timed([str(UOZU), "--project", str(p), "-q", "--json", "merge"], env=env, pss=True)
    r.pop("stdout")
    m = json.loads((p / "data" / "merged" / "manifest.json").read_text(encoding="utf-8"))
    r.update(inproc_s=m["seconds"], stages=m["stage_seconds"], inproc_rss_mb=m["peak_rss_mb"],
             totals=m["totals"])
    return r


def ogr2ogr_commands(p: Path, out: Path) -> list[tuple[str, str | list[str]]]:
    """(label, command) per raw file the layer specs read; a str command runs through sh."""
    sys.path.insert(0, str(ROOT))
    from config import load_project

    project = load_project(p)
    raw = project.raw_dir
    cmds: list[tuple[str, str | list[str]]] = []
    seen: set[str] = set()
    for lid, spec in project.specs.items():
        for src in spec.sources:
            items = [(f"{lid}__{src.name}", src.path, src.encoding, src.crs, src.reader, True)]
            items += [(f"{lid}__lookup_{k}", lk.path, lk.encoding, None, "csv", False)
                      for k, lk in src.lookups.items()]
            for name, rel, enc, crs, reader, spatial in items:
                if rel in seen:
                    continue
                seen.add(rel)
                path = raw / rel
                base = ["ogr2ogr", "-f", "GPKG", "-append", str(out)]
                if reader == "csv":
                    geo = bool(getattr(src, "x_field", None)) and spatial
                    opts = ["-oo", f"X_POSSIBLE_NAMES={src.x_field}",
                            "-oo", f"Y_POSSIBLE_NAMES={src.y_field}",
                            "-s_srs", crs or TARGET_CRS, "-t_srs", TARGET_CRS] if geo else []
                    tail = ["-nln", name, *opts]
                    if enc and enc.lower().replace("-", "") not in ("utf8", "utf8sig"):
                        cmd = (f"iconv -f {shlex.quote(enc.upper())} -t UTF-8 "
                               f"{shlex.quote(str(path))} | "
                               + shlex.join([*base, "CSV:/vsistdin/", *tail]))
                        cmds.append((name, cmd))
                    else:
                        cmds.append((name, [*base, str(path), *tail]))
                    continue
                cmd = [*base, str(path), "-nln", name, "-t_srs", TARGET_CRS]
                if crs:
                    cmd += ["-s_srs", crs]
                if enc and path.suffix.lower() == ".shp":
                    cmd += ["-oo", f"ENCODING={enc.upper()}"]
                cmds.append((name, cmd))
    return cmds


def run_ogr2ogr(p: Path, cmds: list[tuple[str, str | list[str]]]) -> dict:
    out = p / "ogr2ogr.gpkg"
    if out.exists():
        out.unlink()
    per, wall, cpu, rss = {}, 0.0, 0.0, 0.0
    env = dict(os.environ, CPL_LOG="/dev/null")
    for name, cmd in cmds:
        r = timed(cmd, env=env, shell=isinstance(cmd, str))
        per[name] = round(r["wall_s"], 2)
        wall += r["wall_s"]
        cpu += r["cpu_s"]
        rss = max(rss, r["rss_mb"])
    return {"wall_s": round(wall, 2), "rss_mb": rss, "cpu_s": round(cpu, 2), "per_file": per}


def check_ogr2ogr(p: Path, files: dict[str, int]) -> dict:
    """Feature count of the ogr2ogr GeoPackage (must equal the raw count) and a text check."""
    import pyogrio

    out = p / "ogr2ogr.gpkg"
    counts = _layer_counts(out)
    no_japanese = []
    for name, _ in counts:
        df = pyogrio.read_dataframe(out, layer=name, max_features=50, read_geometry=False)
        txt = df.select_dtypes(include=["object", "string"]).astype(str)
        cjk = txt.apply(lambda c: c.str.contains(r"[\u3040-\u30ff\u4e00-\u9fff]"))
        if not cjk.to_numpy().any():
            no_japanese.append(name)
    return {"features": sum(c for _, c in counts), "raw_records": sum(files.values()),
            "layers": len(counts), "layers_without_japanese_text": no_japanese}


def _layer_counts(path: Path) -> list[tuple[str, int]]:
    import pyogrio

    return [(str(name), pyogrio.read_info(path, layer=str(name))["features"])
            for name, _ in pyogrio.list_layers(path)]


# ----------------------------------------------------------------------------------- identity

VOLATILE = {"run_id", "started_at", "finished_at", "seconds", "stage_seconds", "peak_rss_mb",
            "argv", "previous_run"}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def compare_runs(a: Path, b: Path) -> list[str]:
    """Differences between two merged run folders, ignoring run ids and timings."""
    import pandas as pd
    import pyogrio

    diffs = []
    ma, mb = a / "master.gpkg", b / "master.gpkg"
    la = [str(n) for n, _ in pyogrio.list_layers(ma)]
    lb = [str(n) for n, _ in pyogrio.list_layers(mb)]
    if la != lb:
        diffs.append(f"layers {la} != {lb}")
    for layer in la:
        if layer not in lb:
            continue
        ia, ib = pyogrio.read_info(ma, layer=layer), pyogrio.read_info(mb, layer=layer)
        for k in ("crs", "geometry_type", "fields", "dtypes", "features", "total_bounds"):
            va, vb = ia.get(k), ib.get(k)
            if str(va) != str(vb):
                diffs.append(f"{layer}: info {k} {va} != {vb}")
        da = pyogrio.read_dataframe(ma, layer=layer, use_arrow=True)
        db = pyogrio.read_dataframe(mb, layer=layer, use_arrow=True)
        da, db = (d.drop(columns=[c for c in ("run_id",) if c in d.columns]) for d in (da, db))
        if "geometry" in da.columns:
            ga, gb = da.pop("geometry"), db.pop("geometry")
            if not (ga.to_wkb() == gb.to_wkb()).all():
                diffs.append(f"{layer}: geometry differs")
        try:
            pd.testing.assert_frame_equal(da, db)
        except AssertionError as e:
            diffs.append(f"{layer}: {str(e)[:300]}")
    for name in ("manifest.json", "report.json"):
        ja = _strip(json.loads((a / name).read_text(encoding="utf-8")))
        jb = _strip(json.loads((b / name).read_text(encoding="utf-8")))
        if ja != jb:
            diffs.append(f"{name} differs")
    for p in sorted((a / "hashes").glob("*.parquet")):
        if not pd.read_parquet(p).equals(pd.read_parquet(b / "hashes" / p.name)):
            diffs.append(f"hashes/{p.name} differs")
    qa, qb = a / "quarantine.csv", b / "quarantine.csv"
    if qa.exists() != qb.exists() or (qa.exists() and not pd.read_csv(qa).drop(
            columns="run_id").equals(pd.read_csv(qb).drop(columns="run_id"))):
        diffs.append("quarantine.csv differs")
    ha = (a / "report.html").read_text(encoding="utf-8")
    hb = (b / "report.html").read_text(encoding="utf-8")
    if len(ha.splitlines()) != len(hb.splitlines()):
        diffs.append("report.html line count differs")
    return diffs


def check_identical(p: Path, variants: dict[str, str | None], work: Path,
                    batches: dict[str, str] | None = None,
                    jobs: dict[str, str] | None = None) -> dict:
    """Run the merge once per variant on project ``p`` and compare every output with the first."""
    dirs = {}
    batches = batches or {}
    jobs = jobs or {}
    for name, pp in variants.items():
        run_merge(p, pp, batches.get(name), jobs.get(name))
        cur = (p / "data" / "merged" / "current").resolve()
        dst = work / f"identity_{p.name}_{name}"
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(cur, dst)
        dirs[name] = dst
    names = list(dirs)
    return {f"{names[0]} vs {n}": compare_runs(dirs[names[0]], dirs[n]) or "identical"
            for n in names[1:]}


# ----------------------------------------------------------------------------------- report


def _fmt_runs(xs: list[float], nd: int = 1) -> str:
    return "/".join(f"{x:.{nd}f}" for x in xs)


def _med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _ratio(rs: list[dict], base: dict[int, dict], key: str) -> str:
    """Median and range of the per-repeat ratio to ogr2ogr (same repeat = measured side by side)."""
    x = [r[key] / base[r["rep"]][key] for r in rs if r["rep"] in base]
    return f"{statistics.median(x):.2f} ({min(x):.2f}–{max(x):.2f})" if x else "–"


def report(rows: list[dict], tag: str | None) -> str:
    """The Markdown tables of bench/RESULTS.md (medians over repeats, per-repeat ratios)."""
    rows = [r for r in rows if tag is None or r.get("tag") == tag]
    if not rows:
        return "(no runs)"
    scales = sorted({r["scale"] for r in rows})
    methods = sorted({r["method"] for r in rows}, key=lambda m: (m != "ogr2ogr", m))
    sel = {(s, m): sorted((r for r in rows if r["scale"] == s and r["method"] == m),
                          key=lambda r: r["rep"]) for s in scales for m in methods}
    sel = {k: v for k, v in sel.items() if v}
    lines = ["| raw records | method | wall s (median) | runs (s) | wall × ogr2ogr | "
             "CPU s (median) | CPU × ogr2ogr | peak RSS MB | PSS sum MB | load1 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in scales:
        base = {r["rep"]: r for r in sel.get((s, "ogr2ogr"), [])}
        for m in methods:
            rs = sel.get((s, m))
            if rs:
                lines.append(
                    f"| {rs[0]['raw_records']:,} | {m} | **{_med(rs, 'wall_s'):.1f}** | "
                    f"{_fmt_runs([r['wall_s'] for r in rs])} | {_ratio(rs, base, 'wall_s')} | "
                    f"{_med(rs, 'cpu_s'):.1f} | {_ratio(rs, base, 'cpu_s')} | "
                    f"{_med(rs, 'rss_mb'):.0f} | "
                    + (f"{_med(rs, 'pss_sum_mb'):.0f}" if all("pss_sum_mb" in r for r in rs)
                       else "–")
                    + f" | {_fmt_runs([r.get('load1', 0) for r in rs])} |")
    lines += ["", "Stage seconds inside the merge process (manifest `stage_seconds`, medians). "
              "`other` = manifest `seconds` − stages (lineage, quarantine rows, file hashes, "
              "boundary: work outside the stage timers); wall − `seconds` = interpreter start, "
              "imports, project load, reports and the commit with fsync:", "",
              "| raw records | method | read | normalize | transform | validate | write | other | "
              "`seconds` | wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (_s, m), rs in sel.items():
        rs = [r for r in rs if "stages" in r]
        if not rs:
            continue
        st = " | ".join(f"{statistics.median(r['stages'][k] for r in rs):.2f}" for k in STAGES)
        other = statistics.median(r["inproc_s"] - sum(r["stages"].values()) for r in rs)
        lines.append(f"| {rs[0]['raw_records']:,} | {m} | {st} | {other:.2f} | "
                     f"{_med(rs, 'inproc_s'):.2f} | {_med(rs, 'wall_s'):.1f} |")
    if len(scales) >= 2:
        lo, hi = scales[0], scales[-1]
        n_lo, n_hi = (next(r["raw_records"] for r in rows if r["scale"] == x) for x in (lo, hi))
        lines += ["", f"Growth from {n_lo:,} to {n_hi:,} raw records (×{n_hi / n_lo:.2f}), "
                  "ratio of medians:", "",
                  "| method | wall × | CPU × | peak RSS × | " + " | ".join(STAGES) + " |",
                  "|---|---|---|---|" + "---|" * len(STAGES)]
        for m in methods:
            a, b = sel.get((lo, m)), sel.get((hi, m))
            if not (a and b):
                continue
            cells = [f"{_med(b, k) / _med(a, k):.2f}" for k in ("wall_s", "cpu_s", "rss_mb")]
            for k in STAGES:
                sa = [r["stages"][k] for r in a if "stages" in r]
                sb = [r["stages"][k] for r in b if "stages" in r]
                cells.append(f"{statistics.median(sb) / statistics.median(sa):.1f}"
                             if sa and sb and statistics.median(sa) > 0 else "–")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# Inclusive shares of a py-spy profile (``py-spy record -f raw``) for the buckets that matter.
SPY_BUCKETS = {
    "Python imports (CLI start and lazy imports)": "_find_and_load (<frozen importlib._bootstrap>",
    "read: pyogrio read_dataframe (GDAL + WKB)": "read_dataframe (pyogrio/geopandas.py",
    "CSV read (pandas)": "read_csv (etl/readers.py",
    "normalizers (etl/normalize.py)": "apply_normalizer (etl/normalize.py",
    "coordinate transform (pyproj)": "transform_geoms (etl/crs.py",
    "geometry checks": "check_geometries (etl/validate.py",
    "references (sewer ends)": "reference_check (etl/validate.py",
    "join (parcel_tax ← parcel)": "_join (etl/pipeline.py",
    "lineage columns": "_lineage (etl/pipeline.py",
    "write: pyogrio write_dataframe (GDAL GPKG + R-tree)": "write_dataframe (pyogrio/geopandas.py",
    "change summary (feature hashes)": "change_summary (etl/report.py",
    "reports (json/html/csv)": "write_reports (etl/report.py",
    "commit (fsync + switch)": "commit (etl/load.py",
}


def spy_summary(path: Path) -> str:
    total, hits = 0, dict.fromkeys(SPY_BUCKETS, 0)
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        total += int(n)
        for name, frame in SPY_BUCKETS.items():
            if frame in stack:
                hits[name] += int(n)
    rows = [f"{total} samples", "", "| bucket (inclusive) | share of samples |", "|---|---|"]
    rows += [f"| {k} | {v / total * 100:.0f} % |" for k, v in hits.items()]
    return "\n".join(rows)


def environment() -> dict:
    import geopandas
    import pandas
    import pyarrow
    import pyogrio
    import shapely

    gdal = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout.strip()
    return {"python": platform.python_version(), "geopandas": geopandas.__version__,
            "pyogrio": pyogrio.__version__, "pyogrio_gdal": pyogrio.__gdal_version_string__,
            "shapely": shapely.__version__, "pandas": pandas.__version__,
            "pyarrow": pyarrow.__version__, "ogr2ogr": gdal, "cpus": os.cpu_count(),
            "machine": platform.machine(), "kernel": platform.release()}


# ----------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=DEFAULT_SCALES)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=["merge", "ogr2ogr"],
                    help="merge, ogr2ogr and/or variant names (see --variant)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=DIR",
                    help="also run the merge with PYTHONPATH=DIR under the method name NAME")
    ap.add_argument("--batch-variant", action="append", default=[], metavar="NAME=N",
                    help="also run this tree's merge with UOZU_GIS_BATCH=N (0 = layers read "
                    "whole) under the method name NAME")
    ap.add_argument("--jobs-variant", action="append", default=[], metavar="NAME=N",
                    help="also run this tree's merge with UOZU_GIS_JOBS=N (layers at once in "
                    "child processes; 1 = one after the other) under the method name NAME")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    ap.add_argument("--out", type=Path, default=None, help="JSONL log (default WORK/merge.jsonl)")
    ap.add_argument("--tag", default=None, help="label stored with every run (filter for --report)")
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--report", action="store_true", help="only print the tables from --out")
    ap.add_argument("--spy-summary", type=Path, metavar="RAW",
                    help="print bucket shares of a `py-spy record -f raw` profile and exit")
    ap.add_argument("--check-identical", action="store_true",
                    help="merge once with each --variant and with this tree, compare the outputs")
    a = ap.parse_args()
    out = a.out or a.work / "merge.jsonl"
    if a.spy_summary:
        print(spy_summary(a.spy_summary))
        return
    if a.report:
        rows = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
        print(report([r for r in rows if "method" in r], a.tag))
        return
    variants: dict[str, str | None] = dict(v.split("=", 1) for v in a.variant)
    batches = dict(v.split("=", 1) for v in a.batch_variant)
    variants.update({k: None for k in batches})
    jobs = dict(v.split("=", 1) for v in a.jobs_variant)
    variants.update({k: None for k in jobs})
    methods = list(a.methods) + [v for v in variants if v not in a.methods]
    a.work.mkdir(parents=True, exist_ok=True)
    data = {}
    for s in a.scales:
        p, files = prepare(a.work, s, a.seed)
        data[s] = (p, files)
        print(f"scale {s}: {sum(files.values()):,} raw records in {p}", file=sys.stderr)
    if a.prepare_only:
        return
    if a.check_identical:
        for s, (p, _) in data.items():
            res = check_identical(p, {**variants, "current": None}, a.work, batches, jobs)
            print(f"scale {s}: {json.dumps(res, ensure_ascii=False)}")
        return
    cmds = {s: ogr2ogr_commands(p, p / "ogr2ogr.gpkg") for s, (p, _) in data.items()}
    rows = []
    with open(out, "a") as log:
        log.write(json.dumps({"env": environment(), "tag": a.tag, "argv": sys.argv,
                              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
        for rep in range(a.reps):
            for s in a.scales:
                p, files = data[s]
                k = rep % len(methods)
                for m in methods[k:] + methods[:k]:
                    r = run_ogr2ogr(p, cmds[s]) if m == "ogr2ogr" else run_merge(
                        p, variants.get(m), batches.get(m), jobs.get(m))
                    r.update(method=m, scale=s, rep=rep, raw_records=sum(files.values()),
                             tag=a.tag, load1=round(os.getloadavg()[0], 2))
                    rows.append(r)
                    log.write(json.dumps(r) + "\n")
                    log.flush()
                    print(f"rep {rep} scale {s} {m}: {r['wall_s']:.1f} s, {r['cpu_s']:.1f} CPU s, "
                          f"{r['rss_mb']:.0f} MB" + (f", stages {r['stages']}" if "stages" in r
                                                     else ""), file=sys.stderr)
        for s, (p, files) in data.items():
            if "ogr2ogr" in methods:
                c = check_ogr2ogr(p, files)
                print(f"ogr2ogr output check scale {s}: {c}", file=sys.stderr)
                log.write(json.dumps({"check": c, "scale": s, "tag": a.tag}) + "\n")
    print(report(rows, a.tag))


if __name__ == "__main__":
    main()
