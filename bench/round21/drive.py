"""Merge one project once, recording the RSS at every progress tick (per layer: max current
RSS seen and the process high-water mark when the layer is written). Usage: drive.py PROJECT OUT.json"""
import json
import sys
import time

from rss import status  # this folder (the script's own, first on sys.path)

import etl.pipeline as pl
from config import load_project

proj, out = sys.argv[1], sys.argv[2]
rows = []
t0 = time.perf_counter()


def progress(stage, layer, done, total):
    rss, hwm = status()
    rows.append({"t": round(time.perf_counter() - t0, 1), "stage": stage, "layer": layer,
                 "done": done, "total": total, "rss": rss, "hwm": hwm})


res = pl.run_merge(load_project(proj), progress=progress, jobs=1)
m = res.manifest
per = {}
for r in rows:
    d = per.setdefault(r["layer"] or "-", {"max_rss": 0, "hwm_end": 0, "t_end": 0})
    d["max_rss"] = max(d["max_rss"], r["rss"])
    d["hwm_end"] = max(d["hwm_end"], r["hwm"])
    d["t_end"] = r["t"]
layers = {k: {"read": sum(s.get("read", 0) for s in v.get("sources", [])),
              "merged": v.get("merged"), "change": v.get("change")}
          for k, v in m["layers"].items()}
json.dump({"pl": pl.__file__, "seconds": m.get("seconds"), "per_layer": per,
           "layers": layers, "ticks": rows}, open(out, "w"), indent=1, default=str)
print(json.dumps({"pl": pl.__file__, "seconds": m.get("seconds"), "per_layer": per}, indent=1))
