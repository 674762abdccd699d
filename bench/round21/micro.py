"""CPU of the carried state per feature: SeenIds (find + add) and CarriedHashes (append, chunks, counts) over N ids in batches of 32,768."""
import sys
import time

import numpy as np
import pandas as pd

from etl.carried import CarriedHashes, SeenIds

n = int(sys.argv[1]); B = 32768
ids = np.array([f"162043-{i:08d}" for i in range(n)], dtype=object)
h = pd.util.hash_array(ids)
t = time.process_time()
s = SeenIds()
for i in range(0, n, B):
    b = ids[i:i+B]; hb = h[i:i+B]
    f = s.find(hb, b); s.add(hb, b, np.zeros(len(b), int), b)
t1 = time.process_time()
c = CarriedHashes()
for i in range(0, n, B):
    c.append(ids[i:i+B], h[i:i+B])
t2 = time.process_time()
k = sum(len(x) for x in c.chunks())
t3 = time.process_time()
old = pd.DataFrame({"id": ids, "hash": h})
r = c.counts(old.iloc[i:i+65536] for i in range(0, n, 65536))
t4 = time.process_time()
print(f"n={n}: SeenIds {t1-t:.1f}s ({(t1-t)/n*1e6:.2f} us/id); hashes append {t2-t1:.1f}s, chunks {t3-t2:.1f}s, counts {t4-t3:.1f}s; {r}")
