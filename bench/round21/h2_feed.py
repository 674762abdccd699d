"""The change feed alone as a second release (carrying the first release's history): code of
sys.argv[1], previous release folder sys.argv[2], output folder sys.argv[3]."""
import datetime as dt
import json
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from config import load_project
from publish.build import changes

prev = Path(sys.argv[2]); out = Path(sys.argv[3]); shutil.rmtree(out, ignore_errors=True)
project = load_project(Path(sys.argv[4]))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
s = changes.release_changes(project, prev / "public.gpkg", "R2", dt.datetime(2026, 12, 3, tzinfo=dt.UTC), prev, out, previous_id=prev.name)
print(json.dumps({"s": time.perf_counter() - t0, "base_mb": base,
                  "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "counts": {l: {k: len(v) for k, v in d.items() if isinstance(v, list)} for l, d in s["layers"].items()}}))
