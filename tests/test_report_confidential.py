"""The QA reports staff read hold no confidential value; the full rows are kept apart, marked.

The Uozu sample plants unmatched rows in the tax ledger (``parcel_tax``, confidential: owners,
addresses, values). After a merge their owner names and addresses appear in none of the run's
reports (``report.json``, ``report.html``, ``manifest.json``) nor in ``quarantine.csv``, and all
of them in ``quarantine_confidential.csv`` (取扱注意 first line, owner-only); counts add up.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pandas as pd
from conftest import UOZU_SCALE

from config import load_project
from config.messages import text
from etl.report import CONFIDENTIAL_CSV, Redactor, redact_manifest, summary_text
from etl.stores import open_store
from samples.uozu import unmatched_tax_rows

WITHHELD = "（取扱注意：非表示） / withheld: confidential"
OWNER_COLUMNS = ("所有者氏名", "所有者住所")


def read_confidential(path: Path) -> tuple[str, pd.DataFrame]:
    first = path.read_text(encoding="utf-8-sig").splitlines()[0]
    return first, pd.read_csv(path, skiprows=1, dtype=str, keep_default_na=False,
                              encoding="utf-8-sig")


def test_reports_hold_no_owner_and_the_confidential_file_all(uozu_merged) -> None:
    root, res = uozu_merged
    run = res.run_dir
    manifest = res.manifest
    n_tax = manifest["layers"]["parcel_tax"]["quarantined"]
    assert n_tax == unmatched_tax_rows(UOZU_SCALE) > 0
    # the owners of the planted rows, from the master's own _quarantine table
    master_q = open_store(load_project(root)).read_layer("_quarantine")
    tax = master_q[master_q["layer"] == "parcel_tax"]
    assert len(tax) == n_tax
    owners = {json.loads(r)[c] for r in tax["raw_attrs"] for c in OWNER_COLUMNS}
    assert len(owners) == 2 * n_tax  # a name and an address per row, all distinct
    assert text("report_withheld") == WITHHELD

    for name in ("report.json", "report.html", "manifest.json", "quarantine.csv"):
        body = (run / name).read_text(encoding="utf-8-sig")
        assert not [o for o in owners if o in body], name
        assert not [c for c in OWNER_COLUMNS if c in body], name

    # quarantine.csv: every row, the tax rows with file, record and reason but nothing else
    q = pd.read_csv(run / "quarantine.csv", dtype=str, keep_default_na=False,
                    encoding="utf-8-sig")
    assert len(q) == manifest["totals"]["quarantined"] == len(master_q)
    qt = q[q["layer"] == "parcel_tax"]
    assert list(qt["record"]) == list(tax["record"])
    assert list(qt["reason_code"]) == ["JOIN_UNMATCHED"] * n_tax
    assert set(qt["raw_attrs"]) == set(qt["detail"]) == {WITHHELD}
    assert set(qt["geometry_wkt"]) <= {"", WITHHELD}
    other = q[q["layer"] != "parcel_tax"]
    assert len(other) == len(master_q) - n_tax
    assert not other["raw_attrs"].str.contains("取扱注意").any()  # nothing else withheld here

    # the confidential file: every withheld row, whole, under its 取扱注意 line, owner-only
    path = run / CONFIDENTIAL_CSV
    first, conf = read_confidential(path)
    assert first == "# " + text("report_confidential_header", rows=n_tax)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(conf) == n_tax and set(conf["layer"]) == {"parcel_tax"}
    body = path.read_text(encoding="utf-8-sig")
    assert all(o in body for o in owners)
    assert list(conf["raw_attrs"]) == list(tax["raw_attrs"])
    assert list(conf["detail"]) == list(tax["detail"])

    # report.json names the file; the HTML report says where the full rows are
    data = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert data["quarantine_confidential"] == {
        "file": CONFIDENTIAL_CSV, "rows": n_tax, "layers": {"parcel_tax": n_tax},
        "withheld": WITHHELD}
    assert sum(len(v) for v in data["quarantine_samples"].values()) == len(q)
    assert data["layers"]["parcel_tax"]["examples"] == {
        "JOIN_UNMATCHED": f"tax/KAZEI_DAICHO.csv {tax['record'].iloc[0]}: {WITHHELD}"}
    assert {p["example"] for p in data["layers"]["parcel_tax"]["problems"]} == {WITHHELD}
    html = (run / "report.html").read_text(encoding="utf-8")
    assert f"元の属性を含む {n_tax} 行は {CONFIDENTIAL_CSV}" in html
    assert "機密 / confidential" in html
    # what merge prints: the tax example withheld, by the manifest's own level
    printed = summary_text(manifest)
    assert f"parcel_tax: JOIN_UNMATCHED ×{n_tax}" in printed
    assert f"{tax['record'].iloc[0]}: {WITHHELD}" in printed


def test_a_confidential_field_of_an_internal_layer(uozu_merged) -> None:
    """水道使用者名 (water_service.user_name) is confidential on a public layer: its raw
    column, the details and examples naming it and its unmapped values are withheld; the
    layer's other raw columns stay."""
    root, _ = uozu_merged
    project = load_project(root)
    spec = project.specs["water_service"]
    assert spec.visibility == "public" and spec.field_visibility("user_name") == "confidential"
    red = Redactor(spec)
    raw = json.dumps({"使用者名": "魚津 太郎", "口径": "20"}, ensure_ascii=False)
    q = pd.DataFrame({
        "layer": "water_service", "record": ["#1 A", "#2 B", "#3 C"],
        "reason_code": ["BAD_VALUE", "MISSING_REFERENCE", "BAD_VALUE"],
        "detail": ["BAD_VALUE: user_name=魚津 太郎", "MISSING_REFERENCE: main_id=X9",
                   "BAD_VALUE: diameter_mm=abc"],
        "raw_attrs": [raw, json.dumps({"使用者名": None, "口径": "25"}), raw],
        "geometry_wkt": ["POINT (1 2)"] * 3})
    out, changed = red.quarantine(q)
    assert list(changed) == [True, False, True]
    assert json.loads(out["raw_attrs"][0]) == {"使用者名": WITHHELD, "口径": "20"}
    assert list(out["detail"]) == [WITHHELD, "MISSING_REFERENCE: main_id=X9",
                                   "BAD_VALUE: diameter_mm=abc"]
    assert list(out["geometry_wkt"]) == ["POINT (1 2)"] * 3  # the layer is not confidential
    assert "魚津" not in out.to_csv()
    m = {"layers": {"water_service": {
        "visibility": "public",
        "examples": {"BAD_VALUE": "water/SERVICE.csv #1 A: BAD_VALUE: user_name=魚津 太郎",
                     "MISSING_REFERENCE": "water/SERVICE.csv #2 B: MISSING_REFERENCE: x"},
        "problems": [{"reason": "BAD_VALUE", "field": "user_name", "example": "#1 A 魚津"},
                     {"reason": "BAD_VALUE", "field": "diameter_mm", "example": "#3 C abc"}],
        "unmapped_codes": {"user_name": {"魚津 太郎": 2, "x": 1}, "kind": {"??": 1}}}}}
    got = redact_manifest(project, m)["layers"]["water_service"]
    assert got["examples"] == {"BAD_VALUE": f"water/SERVICE.csv #1 A: {WITHHELD}",
                               "MISSING_REFERENCE": "water/SERVICE.csv #2 B: "
                                                    "MISSING_REFERENCE: x"}
    assert [p["example"] for p in got["problems"]] == [WITHHELD, "#3 C abc"]
    assert got["unmapped_codes"] == {"user_name": {WITHHELD: 3}, "kind": {"??": 1}}
    assert m["layers"]["water_service"]["examples"]["BAD_VALUE"].endswith("魚津 太郎")
