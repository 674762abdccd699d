"""Access levels and departments: the one policy, its config checks and the access matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

import cli
from config import load_project
from config.errors import ConfigError, ConfigErrors
from config.messages import text
from config.models import DepartmentGrant
from etl.schema import LINEAGE_COLUMNS, output_columns
from staff.policy import access_matrix, all_access, department_access

REPO = Path(__file__).resolve().parent.parent
UOZU_DEPTS = ["kensetsu", "josuido", "zeimu", "bosai", "kikaku", "toshi"]
TAX_SECRETS = {"owner_name", "owner_address", "assessed_value_jpy", "tax_base_jpy"}


@pytest.fixture(scope="module")
def uozu():
    return load_project(REPO)


def test_uozu_levels(uozu) -> None:
    tax = uozu.specs["parcel_tax"]
    assert tax.visibility == "confidential"
    for name in tax.fields:  # the whole ledger is confidential (地方税法22条) ...
        assert tax.field_visibility(name) == "confidential", name
    for name in TAX_SECRETS:  # ... and owners and values would stay so on an internal layer
        assert tax.fields[name].visibility == "confidential", name
    assert uozu.specs["water_valve"].field_visibility("normal_state") == "confidential"
    assert uozu.specs["sewer_pipe"].field_visibility("treatment_district") == "internal"
    assert [d.id for d in uozu.config.departments] == UOZU_DEPTS
    themes = {lid: s.theme.ja for lid, s in uozu.specs.items()}
    assert set(themes.values()) == {"道路", "下水道", "上水道", "地番", "防災"}


def test_uozu_grants(uozu) -> None:
    acc = {a.id: a for a in all_access(uozu)}
    every = set(uozu.specs)
    for dept, a in acc.items():
        tax = "parcel_tax" in a.layers
        assert tax == (dept == "zeimu"), dept  # 税務課 only; nobody else
        assert set(a.layers) == (every if tax else every - {"parcel_tax"}), dept
        valve = a.layers["water_valve"]
        assert ("normal_state" in valve.columns) == (dept == "josuido"), dept
        assert valve.quarantine == (dept == "josuido"), dept
        readable = set().union(*(la.columns for la in a.layers.values()))
        assert not (TAX_SECRETS & readable) or dept == "zeimu"
        # every non-confidential column of every layer is readable: internal is for all staff
        for lid, la in a.layers.items():
            spec = uozu.specs[lid]
            for c in output_columns(spec, lineage=True):
                level = spec.field_visibility(c.field) if c.field else "internal"
                if level != "confidential" and spec.visibility != "confidential":
                    assert c.name in la.columns, (dept, lid, c.name)
    zeimu = acc["zeimu"].layers["parcel_tax"]
    assert zeimu.denied == () and zeimu.quarantine
    assert set(LINEAGE_COLUMNS) <= set(zeimu.columns)  # lineage of the ledger: with the grant
    assert acc["kensetsu"].denied_layers == ("parcel_tax",)
    assert acc["kensetsu"].quarantine_layers == tuple(
        lid for lid in uozu.order() if lid not in ("parcel_tax", "water_valve", "water_service"))
    assert not acc["kensetsu"].has_confidential and acc["zeimu"].has_confidential


def test_unknown_department_message(uozu) -> None:
    with pytest.raises(ConfigError) as e:
        department_access(uozu, "somu")
    assert str(e.value) == (
        "部署 'somu' はありません。使えるもの: kensetsu, josuido, zeimu, bosai, kikaku, toshi"
        " / no department 'somu'. Known: kensetsu, josuido, zeimu, bosai, kikaku, toshi")


def test_access_matrix_is_the_policy(uozu) -> None:
    m = access_matrix(uozu)
    assert [d["id"] for d in m["departments"]] == UOZU_DEPTS
    acc = {a.id: a for a in all_access(uozu)}
    for L in m["layers"]:
        for dept in UOZU_DEPTS:
            la = acc[dept].layers.get(L["layer"])
            assert L["read"][dept] == ("none" if la is None else
                                       "all" if not la.denied else "partial")
            assert L["quarantine"][dept] == (la is not None and la.quarantine)
            for c in L["columns"]:
                assert c["read"][dept] == (la is not None and c["name"] in la.columns)
    tax = next(L for L in m["layers"] if L["layer"] == "parcel_tax")
    owner = next(c for c in tax["columns"] if c["name"] == "owner_name")
    assert owner["level"] == "confidential" and owner["title"]["ja"] == "所有者氏名"
    assert owner["read"] == {d: d == "zeimu" for d in UOZU_DEPTS}


def test_access_cli(uozu) -> None:
    r = CliRunner()
    res = r.invoke(cli.cli, ["--project", str(REPO), "access"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == text("access_title")
    assert "zeimu: 税務課 / Taxation Division" in lines
    head = next(ln for ln in lines if ln.startswith("レイヤ / フィールド"))
    assert head.split()[-6:] == UOZU_DEPTS
    row = next(ln for ln in lines if ln.startswith("parcel_tax  土地課税台帳"))
    assert row.split()[-7:] == ["confidential", "×", "×", "○", "×", "×", "×"]
    row = next(ln for ln in lines if ln.startswith("  .normal_state"))
    assert row.split()[-6:] == ["×", "○", "×", "×", "×", "×"]
    row = next(ln for ln in lines if ln.startswith("water_valve"))
    assert row.split()[-6:] == ["△", "○", "△", "△", "△", "△"]
    assert lines[-1].startswith("○ 閲覧可")
    # titles in both languages, as every message of the CLI
    assert row.startswith("water_valve  消火栓・弁栓類 / Fire hydrants and valves  ")
    assert next(ln for ln in lines if ln.startswith("  .normal_state")).startswith(
        "  .normal_state  常時開閉 / Normal state  ")
    # the tax ledger is read whole or not at all: its columns only with --all
    assert not any(ln.startswith("  .owner_name") for ln in lines)
    res = r.invoke(cli.cli, ["--project", str(REPO), "access", "--all"])
    assert any(ln.startswith("  .owner_name  所有者氏名 / Owner name")
               for ln in res.stdout.splitlines())
    res = r.invoke(cli.cli, ["--project", str(REPO), "--json", "access"])
    assert json.loads(res.stdout) == json.loads(json.dumps(access_matrix(uozu)))


def test_access_cli_shows_a_confidential_layer_read_in_part() -> None:
    """Takamatsu's 危機管理課 reads the tax ledger in part (owners for the 被災者台帳): the
    matrix lists the ledger's columns without --all, each with who reads it."""
    root = REPO / "examples" / "takamatsu"
    res = CliRunner().invoke(cli.cli, ["--project", str(root), "access"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    head = next(ln for ln in lines if ln.startswith("レイヤ / フィールド"))
    depts = head.split()[-7:]
    assert depts[:2] == ["shisanzei", "kikikanri"]
    row = next(ln for ln in lines if ln.startswith("kazei_tochi  土地課税台帳 / Land tax ledger"))
    assert row.split()[-8:] == ["confidential", "○", "△", "×", "×", "×", "×", "×"]
    acc = {a.id: a for a in all_access(load_project(root))}
    cols = {ln.split()[0][1:]: ln.split()[-7:] for ln in lines if ln.startswith("  .")}
    # every column of the ledger (税務部 reads them all), in master order
    assert list(cols) == list(acc["shisanzei"].layers["kazei_tochi"].columns)
    for c, marks in cols.items():
        la = {d: acc[d].layers.get("kazei_tochi") for d in depts}
        want = ["○" if la[d] is not None and c in la[d].columns else "×" for d in depts]
        assert marks == want, c
    assert cols["owner_name"] == ["○", "○", "×", "×", "×", "×", "×"]
    assert cols["assessed_value_jpy"] == ["○", "×", "×", "×", "×", "×", "×"]
    assert next(ln for ln in lines if ln.startswith("  .owner_name")).startswith(
        "  .owner_name  所有者氏名 / Owner name  ")


# ------------------------------------------------------------------ configuration errors

def _with_departments(root: Path, departments: list[dict], *, tax_level: str = "confidential",
                      ) -> Path:
    p = root / "config" / "project.yml"
    cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
    cfg["departments"] = departments
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    spec = root / "layers" / "parcel_tax.yml"
    s = spec.read_text(encoding="utf-8")
    spec.write_text(s.replace("visibility: internal", f"visibility: {tax_level}", 1)
                    .replace("owner_name: {from: 所有者氏名}",
                             "owner_name: {from: 所有者氏名, visibility: confidential}"),
                    encoding="utf-8")
    return root


def _file(root: Path) -> str:
    """How messages name the project file of a project outside the cwd."""
    return str((root / "config" / "project.yml").resolve())


def _errors(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_project(root)
    errs = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    return [str(x) for x in errs]


def test_grants_must_name_confidential_data(mini_project: Path) -> None:
    root = _with_departments(mini_project, [
        {"id": "zeimu", "name": {"ja": "税務課", "en": "Tax"},
         "grants": {"layers": ["parcel_tax", "nope"], "fields": {"parcel": ["land_cat"]}}},
        {"id": "zeimu", "name": {"ja": "重複", "en": "Duplicate"}},
    ])
    f = _file(root)
    assert sorted(_errors(root)) == sorted([
        text("dept_duplicate", file=f, dept="zeimu"),
        text("dept_unknown_layer", file=f, dept="zeimu", key="layers", layer="nope",
             known="parcel, parcel_tax, road_segment, sewer_manhole, sewer_pipe"),
        text("dept_field_not_confidential", file=f, dept="zeimu", layer="parcel",
             field="land_cat", level="internal"),
    ])
    assert text("dept_duplicate", file=f, dept="zeimu").endswith(
        f"{f}: departments: id 'zeimu' is used twice. Fix: give each department its own id")


def test_grant_of_internal_layer_and_unknown_field(mini_project: Path) -> None:
    root = _with_departments(mini_project, [
        {"id": "zeimu", "name": {"ja": "税務課", "en": "Tax"},
         "grants": {"layers": ["parcel_tax"], "fields": {"parcel": ["owner"]}}},
    ], tax_level="internal")
    got = _errors(root)
    f = _file(root)
    assert got == [
        text("dept_layer_not_confidential", file=f, dept="zeimu", layer="parcel_tax",
             level="internal"),
        text("dept_unknown_field", file=f, dept="zeimu", layer="parcel", field="owner",
             known="parcel_id, oaza_name, chiban, land_cat"),
    ]
    assert got[0].endswith("department 'zeimu': layer 'parcel_tax' is not confidential "
                           "(visibility: internal); every department reads internal data, so "
                           "a grant means nothing. Fix: remove it from grants.layers or set "
                           "visibility: confidential in layers/parcel_tax.yml")


def test_field_grant_on_confidential_layer_needs_its_id(mini_project: Path) -> None:
    root = _with_departments(mini_project, [
        {"id": "shimin", "name": {"ja": "市民課", "en": "Citizens"},
         "grants": {"fields": {"parcel_tax": ["owner_name"]}}},
    ])
    assert _errors(root) == [text("dept_grant_needs_id", file=_file(root), dept="shimin",
                                  layer="parcel_tax", id_field="tax_id")]
    root = _with_departments(mini_project, [
        {"id": "shimin", "name": {"ja": "市民課", "en": "Citizens"},
         "grants": {"fields": {"parcel_tax": ["tax_id", "owner_name"]}}},
    ])
    p = load_project(root)
    la = department_access(p, "shimin").layers["parcel_tax"]
    assert la.columns == ("tax_id", "owner_name")  # granted fields only: no lineage, no value
    assert "assessed_value_jpy" in la.denied and not la.quarantine


@pytest.mark.parametrize("grants, message", [
    ({"layers": ["a", "a"]}, "grants.layers: a layer is named twice"),
    ({"fields": {"a": []}}, "grants.fields.a: list at least one field"),
    ({"fields": {"a": ["x", "x"]}}, "grants.fields.a: a field is named twice"),
    ({"layers": ["a"], "fields": {"a": ["x"]}},
     "grants.fields.a: the whole layer is already in grants.layers"),
])
def test_grant_model_is_strict(grants: dict, message: str) -> None:
    with pytest.raises(ValidationError) as e:
        DepartmentGrant.model_validate(grants)
    assert message in str(e.value)


def test_commands_without_departments_or_postgis(mini_project: Path) -> None:
    r = CliRunner()
    res = r.invoke(cli.cli, ["--project", str(mini_project), "access"])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: " + text("staff_no_departments",
                                                  file="config/project.yml")
    root = _with_departments(mini_project, [{"id": "kensetsu",
                                             "name": {"ja": "建設課", "en": "Construction"}}])
    res = r.invoke(cli.cli, ["--project", str(root), "staff", "grants"])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: " + text(
        "staff_needs_postgis", store=str(root / "data" / "merged" / "master.gpkg"))
