"""What parcel_tax's join holds of parcel: the kept key columns (+1 byte geometry type per
row) and the join's lookup (as _join builds it). Measured on a real run of parcel's rules.
Usage: joinkeys.py PROJECT"""
import gc
import sys

import numpy as np
import pandas as pd

import etl.pipeline as pl
from config import load_project


def rss() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return 0


project = load_project(sys.argv[1])
ctx = pl.RunContext(project, "x", None)
spec = project.specs["parcel"]
keys = project.specs["parcel_tax"].join.keys
res = pl.process_layer(ctx, spec, batch_size=pl.DEFAULT_BATCH, sink=None, keep=set(keys))
f = res.frame
gc.collect(); pl._trim()
n = len(f)
deep = int(f.memory_usage(deep=True, index=True).sum())
print(f"parcels {n:,}; kept keys {list(f.columns)} dtypes {dict(f.dtypes.astype(str))}")
print(f"kept frame deep {deep/2**20:.1f} MB = {deep/n:.1f} B/row (+1 B/row geometry type)")
r0 = rss()
key = pd.MultiIndex.from_frame(f[keys].astype("string"))
pos = pd.Series(np.arange(len(f)), index=key)
pos = pos[~pos.index.duplicated()]
mine = pd.MultiIndex.from_frame(f[keys].iloc[:32768].astype("string"))
hit = pos.reindex(mine).to_numpy()
del key, mine, hit
gc.collect(); pl._trim()
r1 = rss()
print(f"join lookup (MultiIndex + positions + hash engine): RSS +{r1 - r0} MB = "
      f"{(r1 - r0) * 2**20 / n:.1f} B/row; pos index nbytes {pos.index.nbytes/2**20:.1f} MB")
