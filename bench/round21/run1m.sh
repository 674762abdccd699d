#!/bin/sh
# 1M: before/after (this helper's change reverted / applied, same snapshot of the rest), first + second merge each
cd /tmp
for v in before after; do
  rm -rf /work/h3/p1m/data/merged
  for k in 1 2; do
    echo "== $v $k $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    UOZU_GIS_JOBS=1 PYTHONPATH=/work/h3/$v /usr/bin/time -v /work/main/.venv/bin/python /work/h3/drive.py /work/h3/p1m /work/h3/r1m_${v}_$k.json > /work/h3/r1m_${v}_$k.out 2> /work/h3/r1m_${v}_$k.time
    echo "rc=$? $(grep -E 'Maximum resident|Elapsed|User time|System time' /work/h3/r1m_${v}_$k.time | tr '\n' ' ')"
  done
done
