#!/bin/sh
cd /tmp
echo "== after parcel $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
UOZU_GIS_JOBS=1 PYTHONPATH=/work/h3/after10 nice -n 10 /usr/bin/time -v /work/main/.venv/bin/python /work/h3/drive10.py /work/h3/p10m_a /work/h3/t10m_after_parcel.jsonl parcel > /work/h3/r10m_after.out 2> /work/h3/r10m_after.time
echo "rc=$? $(date -u +%T) $(grep -E 'Maximum resident|Elapsed|User time|System time' /work/h3/r10m_after.time | tr '\n' ' ')"
