"""QA report per run: HTML for people (ja/en), JSON for machines, plus the change summary.

The change summary compares per-feature hashes (attributes + geometry WKB) with the previous run,
keyed by the layer's id field, so staff see added / changed / deleted per layer.

Confidential data stays out of the reports staff are told to read: ``report.json``,
``report.html`` and ``quarantine.csv`` show, for a layer whose ``visibility`` is
``confidential``, only each quarantined record's file, record label and reason (its raw
attributes, detail and geometry are withheld), and for a confidential field of another layer its
raw source column and the details naming it are withheld (a field is as strict as its layer:
``LayerSpec.field_visibility``). The full rows are not lost: they go to
``quarantine_confidential.csv`` (a 取扱注意 first line, readable by the run's owner only) and stay
in the master's ``_quarantine`` table, which the staff access policy filters.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from jinja2 import Environment, PackageLoader, select_autoescape

from config import Project
from config.messages import REASONS, text
from config.models import LayerSpec
from etl.carried import CarriedHashes
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
                  cur: pd.DataFrame | CarriedHashes) -> dict[str, int]:
    """``change_summary`` from the layer's (id, hash) rows: a frame, or a streamed layer's
    :class:`~etl.carried.CarriedHashes` (written and compared chunk by chunk, never whole;
    the same file and the same counts)."""
    if isinstance(cur, CarriedHashes):
        try:
            return _carried_counts(store, prev, staged, lid, cur)
        finally:
            cur.close()
    staged.write_hashes(lid, cur)
    old = store.read_hashes(prev["run_id"], lid) if prev else None
    if old is None:
        return {"added": len(cur), "changed": 0, "deleted": 0, "unchanged": 0,
                "previous_run": (prev or {}).get("run_id")}
    return {**frame_counts(cur, old), "previous_run": prev["run_id"]}


def frame_counts(cur: pd.DataFrame, old: pd.DataFrame) -> dict[str, int]:
    """Added / changed / deleted / unchanged between two whole (id, hash) frames (the first
    row of an id counts; missing ids match each other)."""
    old = old.drop_duplicates("id")
    cur = cur.drop_duplicates("id")
    m = cur.merge(old, on="id", how="outer", suffixes=("", "_old"), indicator=True)
    both = m["_merge"] == "both"
    changed = int((both & (m["hash"] != m["hash_old"])).sum())
    return {"added": int((m["_merge"] == "left_only").sum()), "changed": changed,
            "deleted": int((m["_merge"] == "right_only").sum()),
            "unchanged": int(both.sum()) - changed}


def _carried_counts(store: MasterStore, prev: dict | None, staged: StagedRun, lid: str,
                    cur: CarriedHashes) -> dict[str, int]:
    """``change_counts`` of hashes kept on disk: the file is written in chunks and the
    previous run's hashes are read in chunks (a store that cannot: whole, as before)."""
    if cur.named:
        staged.write_hash_chunks(lid, cur.chunks())
    else:  # no id at all (or no feature): the frame is small and its types are pandas'
        staged.write_hashes(lid, cur.frame())
    old = store.iter_hashes(prev["run_id"], lid) if prev else None
    if old is None:
        return {"added": cur.n, "changed": 0, "deleted": 0, "unchanged": 0,
                "previous_run": (prev or {}).get("run_id")}
    return {**cur.counts(old), "previous_run": prev["run_id"]}  # type: ignore[index]


_env = Environment(loader=PackageLoader("etl", "templates"),
                   autoescape=select_autoescape(["html"]))


#: the full quarantine rows of confidential layers and fields (never in the reports)
CONFIDENTIAL_CSV = "quarantine_confidential.csv"
#: ``<file> <record>: <detail>`` (an example); the detail starts with its reason code
_EXAMPLE = re.compile(r"^(.*?): (?=[A-Z][A-Z_]+: )")


def withheld() -> str:
    """What stands in for a withheld confidential value: 「（取扱注意：非表示）/ withheld: …」."""
    return text("report_withheld")


class Redactor:
    """What of a layer's quarantine rows and report entries is confidential, and its removal.

    A layer whose ``visibility`` is ``confidential``: everything but file, record and reason.
    Another layer: the raw source columns of its confidential fields, and any detail or example
    naming such a field (``field=value``, or the field of a report row).
    """

    def __init__(self, spec: LayerSpec | None, visibility: str | None = None) -> None:
        self.layer = (spec.visibility if spec is not None else visibility) == "confidential"
        fields = ({n for n in spec.fields if spec.field_visibility(n) == "confidential"}
                  if spec is not None else set())
        self.fields = fields
        # raw_attrs keys are the source columns after the source's ``rename``
        self.raw = {spec.fields[n].from_ for n in fields if spec.fields[n].from_} \
            if spec is not None else set()
        self._named = (re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, sorted(fields)))
                                  + r")=") if fields else None)

    @property
    def any(self) -> bool:
        return self.layer or bool(self.fields)

    def names(self, txt: str) -> bool:
        return bool(self._named and self._named.search(str(txt)))

    def detail(self, txt: Any) -> Any:
        if txt is None or txt == "" or (isinstance(txt, float) and np.isnan(txt)):
            return txt
        return withheld() if self.layer or self.names(txt) else txt

    def raw_attrs(self, raw: Any) -> Any:
        if not isinstance(raw, str) or raw == "":
            return raw
        if self.layer:
            return withheld()
        try:
            attrs = json.loads(raw)
        except ValueError:
            return withheld()
        if not isinstance(attrs, dict):
            return withheld()
        hit = [k for k in attrs if k in self.raw and attrs[k] is not None]
        if not hit:
            return raw
        for k in hit:
            attrs[k] = withheld()
        return json.dumps(attrs, ensure_ascii=False, default=str)

    def quarantine(self, q: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The rows with confidential values withheld, and which rows were changed."""
        if q.empty or not self.any:
            return q, np.zeros(len(q), dtype=bool)
        out = q.copy()
        for col, fn in (("raw_attrs", self.raw_attrs), ("detail", self.detail)):
            if col in out.columns:
                out[col] = [fn(v) for v in out[col].tolist()]
        if self.layer and "geometry_wkt" in out.columns:
            g = out["geometry_wkt"]
            out["geometry_wkt"] = g.where(g.isna() | (g == ""), withheld())
        changed = np.zeros(len(q), dtype=bool)
        for col in ("raw_attrs", "detail", "geometry_wkt"):
            if col in q.columns:
                a = q[col].astype(object).to_numpy()
                b = out[col].astype(object).to_numpy()
                changed |= (a != b) & ~(pd.isna(a) & pd.isna(b))
        return out, changed

    def example(self, eg: str) -> str:
        """``<file> <record>: <detail>`` with the detail withheld when confidential."""
        if not eg or not (self.layer or self.names(eg)):
            return eg
        m = _EXAMPLE.match(eg)
        return f"{m.group(1)}: {withheld()}" if m else withheld()

    def problem(self, row: dict[str, Any]) -> dict[str, Any]:
        fields = set(str(row.get("field") or "").split("+")) & self.fields
        if not (self.layer or fields or self.names(row.get("example") or "")):
            return row
        return {**row, "example": withheld()}

    def unmapped(self, codes: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        """Unmapped values of a confidential field: only their count."""
        return {f: ({withheld(): sum(v.values())} if self.layer or f in self.fields else v)
                for f, v in codes.items()}


def redactor(project: Project | None, lid: str, info: dict[str, Any] | None = None) -> Redactor:
    spec = project.specs.get(lid) if project is not None else None
    return Redactor(spec, (info or {}).get("visibility"))


def redact_manifest(project: Project | None, manifest: dict[str, Any]) -> dict[str, Any]:
    """A copy of the manifest for people: confidential examples, report rows and unmapped values
    withheld (counts, files, record labels and reasons kept). ``project`` None: by each layer's
    own ``visibility`` in the manifest only."""
    layers = {}
    for lid, info in manifest.get("layers", {}).items():
        r = redactor(project, lid, info)
        if r.any:
            info = {**info,
                    "examples": {k: r.example(v) for k, v in (info.get("examples") or {}).items()},
                    "problems": [r.problem(p) for p in info.get("problems") or []],
                    "unmapped_codes": r.unmapped(info.get("unmapped_codes") or {})}
        layers[lid] = info
    return {**manifest, "layers": layers}


def write_reports(project: Project, manifest: dict[str, Any],
                  layers: dict[str, LayerResult], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` (the manifest plus quarantine samples), ``report.html`` and
    ``quarantine.csv`` with confidential values withheld, and the full quarantine rows of
    confidential layers and fields to ``quarantine_confidential.csv`` (see the module doc)."""
    samples: dict[str, list[dict]] = {}
    shown: list[pd.DataFrame] = []
    secret: list[pd.DataFrame] = []
    for lid, r in layers.items():
        if r.quarantine.empty:
            continue
        q, changed = Redactor(r.spec).quarantine(r.quarantine)
        shown.append(q)
        if changed.any():
            secret.append(r.quarantine[changed])
        samples[lid] = q.drop(columns=["geometry_wkt"]).head(50).to_dict("records")
    by_reason: dict[str, int] = {}
    for info in manifest["layers"].values():
        for s in info["sources"]:
            for k, v in s["by_reason"].items():
                by_reason[k] = by_reason.get(k, 0) + v
    n_secret = sum(len(x) for x in secret)
    conf = {"file": CONFIDENTIAL_CSV if n_secret else None, "rows": n_secret,
            "layers": {str(x["layer"].iloc[0]): len(x) for x in secret},
            "withheld": withheld()}
    data = {**redact_manifest(project, manifest), "quarantine_by_reason": by_reason,
            "quarantine_samples": samples, "quarantine_confidential": conf}
    jp = out_dir / "report.json"
    jp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    html = _env.get_template("report.html.j2").render(m=data, reasons=REASONS,
                                                      city=project.config.city)
    hp = out_dir / "report.html"
    hp.write_text(html, encoding="utf-8")
    if shown:
        q = pd.concat(shown, ignore_index=True)
        q.to_csv(out_dir / "quarantine.csv", index=False, encoding="utf-8-sig")
    if secret:
        write_confidential_csv(pd.concat(secret, ignore_index=True), out_dir / CONFIDENTIAL_CSV)
    return hp, jp


def write_confidential_csv(rows: pd.DataFrame, path: Path) -> None:
    """The full rows under a 取扱注意 first line (read back with ``skiprows=1``), created
    readable by the run's owner only (0600), as the master itself is the confidential store."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as f:
        f.write("# " + text("report_confidential_header", rows=len(rows)) + "\n")
        rows.to_csv(f, index=False)
    os.chmod(path, 0o600)  # an existing file keeps its mode on O_CREAT


def summary_text(manifest: dict[str, Any], *, top: int = 3,
                 project: Project | None = None) -> str:
    """What ``validate`` and ``merge`` print: the per-layer counts, then for each layer its top
    quarantine reasons with one example record, the datum-grid coverage per source and the
    warnings. The same text for the prediction (validate) and the run (merge).

    Examples of a confidential layer are withheld (by the manifest's ``visibility``); with
    ``project``, also those naming a confidential field of another layer."""
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
        red = redactor(project, lid, L)
        for code, n in sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            ja, en = REASONS.get(code, (code, code))
            eg = red.example(examples.get(code, ""))
            reasons.append(f"  {lid}: {code} ×{n} ({ja} / {en})" + (f" — {eg}" if eg else ""))
        warns += [f"  {lid}: {w}" for w in L.get("warnings", [])]
    warns += [f"  {w}" for w in manifest.get("warnings", [])]
    for title, block in (("summary_reasons", reasons), ("summary_grids", grids),
                         ("summary_warnings", warns)):
        if block:
            lines += [f"{text(title)}:", *block]
    return "\n".join(lines)
