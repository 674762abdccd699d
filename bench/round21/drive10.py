"""Merge a project once (optionally only some layers), appending the RSS at every progress
tick to TICKS.jsonl as it goes (a partial run still leaves its numbers).
Usage: drive10.py PROJECT TICKS.jsonl [LAYER ...]"""
import json
import sys
import time

from rss import status  # this folder (the script's own, first on sys.path)

import etl.pipeline as pl
from config import load_project

proj, out, only = sys.argv[1], sys.argv[2], sys.argv[3:] or None
log = open(out, "a", buffering=1)
t0 = time.perf_counter()


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
