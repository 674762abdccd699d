"""``validate`` tells the truth: it is merge without the writing, record for record.

On each example city's sample exports (Uozu at the repository root; every city under
``examples/`` that has layer specs and a sample generator) validate predicts exactly the counts,
reasons, quarantined records and flags that merge then writes; the CLI prints the same table for
both, with the top reasons, an example record each and the datum-grid coverage.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import UOZU_SCALE, make_uozu_project

import cli
from config import load_project
from config.messages import text
from etl.pipeline import run_merge
from etl.stores import open_store

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*")
                  if list((p / "layers").glob("*.yml")) and (p / "config/project.yml").is_file())


def _example_copy(src: Path, dst: Path, scale: float) -> Path:
    """A city folder copied without its data products; shared paths made absolute."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("raw", "merged", "public",
                                                            "__pycache__"))
    p = dst / "config/project.yml"
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    data["grids_dir"] = str((src / data.get("grids_dir", "data/grids")).resolve())
    p.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    project = load_project(dst)
    project.sample_generator()(project.raw_dir, scale=scale, seed=42)
    return dst


CITIES = [pytest.param("uozu", id="uozu")] + [pytest.param(p.name, id=p.name) for p in EXAMPLES]


@pytest.fixture(scope="module", params=CITIES)
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "uozu":
        return make_uozu_project(root, scale=UOZU_SCALE)
    return _example_copy(REPO / "examples" / request.param, root / "city", UOZU_SCALE)


def _source_view(manifest: dict) -> dict:
    return {lid: {"features": L["features"], "repaired": L["repaired"], "flags": L["flags"],
                  "problems": L["problems"], "warnings": L["warnings"],
                  "sources": [(s["name"], s["read"], s["merged"], s["quarantined"],
                               s["by_reason"], (s["transform"] or {}).get("grid_coverage"))
                              for s in L["sources"]]}
            for lid, L in manifest["layers"].items()}


def test_validate_predicts_merge(city: Path) -> None:
    predicted = run_merge(load_project(city), dry_run=True)
    assert not (city / "data/merged/current").exists()  # nothing written
    done = run_merge(load_project(city))
    assert _source_view(predicted.manifest) == _source_view(done.manifest)
    q = open_store(load_project(city)).read_layer("_quarantine")
    written = sorted(zip(q["layer"], q["source_name"], q["record"], q["reason_code"],
                         q["detail"], strict=True))
    expected = sorted((lid, r["source_name"], r["record"], r["reason_code"], r["detail"])
                      for lid, res in predicted.layers.items()
                      for r in res.quarantine.to_dict("records"))
    assert written == expected
    for lid, L in done.manifest["layers"].items():
        assert L["read"] == L["merged"] + L["quarantined"], lid
        for s in L["sources"]:
            assert s["read"] == s["merged"] + s["quarantined"], (lid, s["name"])


def test_cli_validate_prints_what_merge_prints(city: Path) -> None:
    v = CliRunner().invoke(cli.cli, ["--project", str(city), "-q", "validate"])
    assert v.exit_code == 0, v.output
    m = CliRunner().invoke(cli.cli, ["--project", str(city), "-q", "merge"])
    assert m.exit_code == 0, m.output
    body_v, body_m = v.output.splitlines()[:-1], m.output.splitlines()[:-1]
    assert body_v == body_m
    assert body_v[0] == (f"{'layer':<16}{'read':>9}{'merged':>9}{'features':>9}"
                         f"{'quarant.':>9}{'repaired':>9}")
    assert v.output.splitlines()[-1].endswith("records read (nothing written)")
    project = load_project(city)
    manifest = open_store(project).manifest()
    for lid, L in manifest["layers"].items():
        # a confidential layer's example, or one naming a confidential field, names the record
        # only (etl/report.py withholds the detail, which holds the values)
        spec = project.specs[lid]
        secret = any(spec.field_visibility(f) == "confidential" for f in spec.fields)
        withheld = re.escape(": " + text("report_withheld")) + "$"
        assert f"{lid:<16}{L['read']:>9}{L['merged']:>9}{L['features']:>9}" \
               f"{L['quarantined']:>9}{L['repaired']:>9}" in body_v
        by: dict[str, int] = {}
        for s in L["sources"]:
            for k, n in s["by_reason"].items():
                by[k] = by.get(k, 0) + n
        for code, n in sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))[:3]:
            line = next(x for x in body_v if x.startswith(f"  {lid}: {code} ×{n} ("))
            example = f"(?:: {code}: |{withheld})" if secret else f": {code}: "
            assert re.search(r" — \S+ #\d+.*" + example, line), line  # an example record


def test_uozu_grid_coverage_and_reasons_are_printed(tmp_path: Path) -> None:
    root = make_uozu_project(tmp_path / "u", scale=0.05)
    out = CliRunner().invoke(cli.cli, ["--project", str(root), "-q", "validate"]).output
    lines = out.splitlines()
    assert "座標変換グリッドの適用範囲 / datum grid coverage:" in lines
    pipes = next(x for x in lines if x.startswith("  sewer_pipe / sewer_pipes: "))
    assert re.fullmatch(r"  sewer_pipe / sewer_pipes: TKY2JGD\.tif (\d+)/\1 points, "
                        r"touhokutaiheiyouoki2011\.tif (\d+)/\2 points", pipes), pipes
    assert "主な隔離理由 / top quarantine reasons:" in lines
    dup = next(x for x in lines if x.startswith("  sewer_pipe: DUPLICATE_ID ×2 "))
    assert re.fullmatch(r"  sewer_pipe: DUPLICATE_ID ×2 \(IDの重複 / duplicate id\) — "
                        r"sewer/GESUI_KANKYO\.shp #\d+ \S+: DUPLICATE_ID: pipe_id=\S+ also in "
                        r"sewer/GESUI_KANKYO\.shp #\d+ \S+", dup), dup
