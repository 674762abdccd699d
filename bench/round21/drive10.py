"""Merge a project once (optionally only some layers), appending the RSS at every progress
tick to TICKS.jsonl as it goes (a partial run still leaves its numbers).
Usage: drive10.py PROJECT TICKS.jsonl [LAYER ...]"""
import json
import sys
import time

import etl.pipeline as pl
from config import load_project

proj, out, only = sys.argv[1], sys.argv[2], sys.argv[3:] or None
log = open(out, "a", buffering=1)
t0 = time.perf_counter()


def status() -> tuple[int, int]:
    got = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            got[k] = int(v.split()[0]) // 1024
    return got["VmRSS"], got["VmHWM"]


def progress(stage, layer, done, total):
    rss, hwm = status()
    log.write(json.dumps({"t": round(time.perf_counter() - t0, 1), "stage": stage,
                          "layer": layer, "done": done, "total": total, "rss": rss,
                          "hwm": hwm}) + "\n")


log.write(json.dumps({"start": pl.__file__, "only": only}) + "\n")
res = pl.run_merge(load_project(proj), only=only, progress=progress, jobs=1)
m = res.manifest
layers = {k: {"read": sum(s.get("read", 0) for s in v.get("sources", [])),
              "merged": v.get("merged"), "change": v.get("change")}
          for k, v in m["layers"].items()}
rss, hwm = status()
log.write(json.dumps({"end": True, "seconds": m.get("seconds"), "hwm": hwm,
                      "layers": layers}, default=str) + "\n")
