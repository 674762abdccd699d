#!/bin/sh
cd /tmp
echo "== before parcel $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
UOZU_GIS_JOBS=1 PYTHONPATH=/work/h3/before nice -n 10 /usr/bin/time -v /work/main/.venv/bin/python /work/h3/drive10.py /work/h3/p10m_b /work/h3/t10m_before_parcel.jsonl parcel > /work/h3/r10m_before.out 2> /work/h3/r10m_before.time
echo "rc=$? $(date -u +%T) $(grep -E 'Maximum resident|Elapsed|User time|System time' /work/h3/r10m_before.time | tr '\n' ' ')"
