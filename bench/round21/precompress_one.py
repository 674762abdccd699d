import resource
import sys
import time
from pathlib import Path

from publish.build import precompress

t=time.perf_counter(); w=precompress.write_copies(Path(sys.argv[1])); n=precompress.check_copies(Path(sys.argv[1]))
print(sys.argv[1], len(w), n, round(time.perf_counter()-t,1), "s", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss//1024, "MB", [p.stat().st_size for p in w])
