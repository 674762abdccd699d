"""QA report per run: HTML for people (ja/en), JSON for machines, plus the change summary.

The change summary compares per-feature hashes (attributes + geometry WKB) with the previous run,
keyed by the layer's id field, so staff see added / changed / deleted per layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from jinja2 import Environment, PackageLoader, select_autoescape

from config import Project
from config.messages import REASONS, text
from etl.results import LayerResult

if TYPE_CHECKING:
    from etl.stores import MasterStore, StagedRun

LINEAGE_SKIP = {"run_id", "source_hash", "spec_version", "source_record", "source_file"}


def _combine_hashes(columns: list[np.ndarray], n: int) -> np.ndarray:
    """pandas' row hash of a frame from its columns' hashes (``hash_pandas_object`` of a
    DataFrame folds them like this), so hashes stay those of earlier runs."""
    out = np.full(n, 0x345678, dtype=np.uint64)
    mult = np.uint64(1000003)
    k = len(columns)
    with np.errstate(over="ignore"):
        for i, h in enumerate(columns):
            inv = k - i
            out ^= h
            out *= mult
            mult += np.uint64(82520 + inv + inv)
        out += np.uint64(97531)
    return out


def feature_hashes(res: LayerResult) -> pd.DataFrame:
    """(id, hash) per feature; lineage columns that change every run are left out.

    One column is cast to text at a time (not the whole layer), with the same result as
    hashing the whole text frame, so a run compares with the hashes of older runs.
    """
    f = res.frame
    idf = res.spec.id_field
    cols = [c for c in f.columns if c not in LINEAGE_SKIP and c != "geometry"]
    n = len(f)
    if cols:
        h = _combine_hashes([pd.util.hash_pandas_object(f[c].astype("string"), index=False)
                             .to_numpy() for c in cols], n)
    else:
        h = pd.util.hash_pandas_object(pd.DataFrame(index=f.index), index=False).to_numpy()
    if "geometry" in f.columns and f.geometry.notna().any():
        wkb = shapely.to_wkb(f.geometry.values, output_dimension=2)
        gh = pd.util.hash_array(pd.array(wkb, dtype=object).to_numpy())
        h = h ^ gh
    return pd.DataFrame({"id": f[idf].astype("string").to_numpy(),
                         "hash": h.astype("uint64")})


def change_summary(store: MasterStore, prev: dict | None, staged: StagedRun, lid: str,
                   res: LayerResult) -> dict[str, int]:
    """Added / changed / deleted against the previous run's hashes (stored with each run)."""
    return change_counts(store, prev, staged, lid, feature_hashes(res))


def change_counts(store: MasterStore, prev: dict | None, staged: StagedRun, lid: str,
                  cur: pd.DataFrame) -> dict[str, int]:
    """``change_summary`` from the layer's (id, hash) rows (a streamed layer's batches)."""
    staged.write_hashes(lid, cur)
    old = store.read_hashes(prev["run_id"], lid) if prev else None
    if old is None:
        return {"added": len(cur), "changed": 0, "deleted": 0, "unchanged": 0,
                "previous_run": (prev or {}).get("run_id")}
    old = old.drop_duplicates("id")
    cur = cur.drop_duplicates("id")
    m = cur.merge(old, on="id", how="outer", suffixes=("", "_old"), indicator=True)
    both = m["_merge"] == "both"
    changed = int((both & (m["hash"] != m["hash_old"])).sum())
    return {"added": int((m["_merge"] == "left_only").sum()), "changed": changed,
            "deleted": int((m["_merge"] == "right_only").sum()),
            "unchanged": int(both.sum()) - changed, "previous_run": prev["run_id"]}


_env = Environment(loader=PackageLoader("etl", "templates"),
                   autoescape=select_autoescape(["html"]))


def write_reports(project: Project, manifest: dict[str, Any],
                  layers: dict[str, LayerResult], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` (the manifest plus quarantine samples) and ``report.html``."""
    samples: dict[str, list[dict]] = {}
    for lid, r in layers.items():
        if not r.quarantine.empty:
            samples[lid] = r.quarantine.drop(columns=["geometry_wkt"]).head(50).to_dict("records")
    by_reason: dict[str, int] = {}
    for info in manifest["layers"].values():
        for s in info["sources"]:
            for k, v in s["by_reason"].items():
                by_reason[k] = by_reason.get(k, 0) + v
    data = {**manifest, "quarantine_by_reason": by_reason, "quarantine_samples": samples}
    jp = out_dir / "report.json"
    jp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    html = _env.get_template("report.html.j2").render(m=data, reasons=REASONS,
                                                      city=project.config.city)
    hp = out_dir / "report.html"
    hp.write_text(html, encoding="utf-8")
    if any(not r.quarantine.empty for r in layers.values()):
        q = pd.concat([r.quarantine for r in layers.values()], ignore_index=True)
        q.to_csv(out_dir / "quarantine.csv", index=False, encoding="utf-8-sig")
    return hp, jp


def summary_text(manifest: dict[str, Any], *, top: int = 3) -> str:
    """What ``validate`` and ``merge`` print: the per-layer counts, then for each layer its top
    quarantine reasons with one example record, the datum-grid coverage per source and the
    warnings. The same text for the prediction (validate) and the run (merge)."""
    head = (f"{'layer':<16}{'read':>9}{'merged':>9}{'features':>9}{'quarant.':>9}"
            f"{'repaired':>9}")
    lines = [head]
    layers = manifest.get("layers", {})
    for lid, L in layers.items():
        lines.append(f"{lid:<16}{L['read']:>9}{L['merged']:>9}{L['features']:>9}"
                     f"{L['quarantined']:>9}{L['repaired']:>9}")
    reasons, grids, warns = [], [], []
    for lid, L in layers.items():
        by: dict[str, int] = {}
        for s in L.get("sources", []):
            for k, v in s.get("by_reason", {}).items():
                by[k] = by.get(k, 0) + v
            cov = (s.get("transform") or {}).get("grid_coverage") or {}
            if cov and s.get("read"):
                parts = [f"{g} " + text("summary_points", covered=c["covered"],
                                        points=c["points"]).split(" / ")[-1]
                         for g, c in cov.items()]
                grids.append(f"  {lid} / {s['name']}: " + ", ".join(parts))
        examples = L.get("examples", {})
        for code, n in sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            ja, en = REASONS.get(code, (code, code))
            eg = examples.get(code, "")
            reasons.append(f"  {lid}: {code} ×{n} ({ja} / {en})" + (f" — {eg}" if eg else ""))
        warns += [f"  {lid}: {w}" for w in L.get("warnings", [])]
    warns += [f"  {w}" for w in manifest.get("warnings", [])]
    for title, block in (("summary_reasons", reasons), ("summary_grids", grids),
                         ("summary_warnings", warns)):
        if block:
            lines += [f"{text(title)}:", *block]
    return "\n".join(lines)
