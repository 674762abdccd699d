"""RSS per batch of the 10M parcel runs, before vs after, at the same batch numbers."""
import json


def load(p):
    rows = [json.loads(x) for x in open(p)]
    v = [r for r in rows if r.get("stage") == "validate" and r.get("layer") == "parcel"]
    end = [r for r in rows if r.get("end")]
    last = [r for r in rows if "rss" in r][-1]
    return v, end, last, rows
b, be, bl, br = load("/work/h3/t10m_before_parcel.jsonl")
a, ae, al, ar = load("/work/h3/t10m_after_parcel.jsonl")
print("| batch | records | before RSS / HWM MB | after RSS / HWM MB |")
print("|---|---|---|---|")
for i in (1, 5, 10, 20, 30, 40, 50, 60, 68):
    if i <= max(len(a), len(b)):
        f = lambda v: f"{v[i-1]['rss']} / {v[i-1]['hwm']}" if i <= len(v) else "-"
        print(f"| {i} | {min(i*32768, 2230000):,} | {f(b)} | {f(a)} |")
for name, v, e, l, rows in (("before", b, be, bl, br), ("after", a, ae, al, ar)):
    if len(v) > 20:
        k = len(v)
        slope = (v[k-1]["rss"] - v[9]["rss"]) / ((k - 10) * 32768) * 2**20
        print(f"{name}: batches {k}, RSS growth batch 10->{k}: {slope:.0f} B/record; last tick {l}; end {e}")
