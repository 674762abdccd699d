"""Department packages (GeoPackage + QGIS project) from a real merged Uozu master, opened,
rendered and printed by a real headless QGIS (python3-qgis, QT_QPA_PLATFORM=offscreen)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pyogrio
import pytest
from click.testing import CliRunner
from conftest import make_uozu_project
from pypdf import PdfReader

import cli
from config import load_project
from config.errors import EtlError
from config.messages import text
from etl.pipeline import run_merge
from etl.stores import open_store
from staff import package as pkg
from staff.check import GPKG_APPLICATION_ID, gpkg_version
from staff.policy import all_access, column_levels, department_access
from staff.qgis_plan import template_expression, zoom_scale
from staff.qgis_run import probe_project

SCALE = 0.05
TAX_SECRETS = {"owner_name", "owner_address", "assessed_value_jpy", "tax_base_jpy"}
THEMES = {"道路", "下水道", "上水道", "地番", "防災"}
#: Uozu's three kinds of access: no grant (as 防災, 企画, 都市計画), a field, a whole layer
DEPTS = ("kensetsu", "josuido", "zeimu")
PAGE_PT = {"A4 横": (842, 595), "A3 横": (1191, 842)}  # landscape, rounded points


@pytest.fixture(scope="module")
def uozu(tmp_path_factory: pytest.TempPathFactory):
    """The real Uozu config and specs over the sample exports, merged (GeoPackage store)."""
    root = make_uozu_project(tmp_path_factory.mktemp("staff-uozu"), scale=SCALE)
    project = load_project(root)
    run_merge(project)
    return project


@pytest.fixture(scope="module")
def store(uozu):
    return open_store(uozu)


@pytest.fixture(scope="module")
def packages(uozu, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pkg.PackageResult]:
    out = tmp_path_factory.mktemp("packages")
    return {d: pkg.export_package(uozu, d, out / d) for d in DEPTS}


@pytest.fixture(scope="module")
def probes(packages, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every project opened by QGIS; 建設課 and 税務課 also rendered and printed (PDF at
    100 dpi: offline, each basemap tile of a 300 dpi sheet is a failed request)."""
    out = {}
    for dept, res in packages.items():
        work = tmp_path_factory.mktemp(f"probe-{dept}")
        full = dept in ("kensetsu", "zeimu")
        out[dept] = probe_project(res.out / f"{dept}.qgz", render=work if full else None,
                                  pdf=work if full else None, dpi=100)
    return out


def accesses(project) -> list:
    return [a for a in all_access(project) if a.id in DEPTS]


def gpkg_of(res: pkg.PackageResult) -> Path:
    return res.out / f"{res.department}.gpkg"


# ------------------------------------------------------------------------- the GeoPackage

def test_package_is_exactly_the_allow_list(uozu, store, packages) -> None:
    master = store.dir / "master.gpkg"
    for a in accesses(uozu):
        path = gpkg_of(packages[a.id])
        tables = {str(n) for n in pyogrio.list_layers(path)[:, 0]}
        assert tables == set(a.layers) | {"_quarantine", "_code_table", "_layer_meta"}, a.id
        for lid, la in a.layers.items():
            info = pyogrio.read_info(path, layer=lid)
            assert list(info["fields"]) == list(la.columns), (a.id, lid)
            assert info["features"] == pyogrio.read_info(master, layer=lid)["features"]
            assert info["crs"] == uozu.config.target_crs
        app, ver = gpkg_version(path)
        assert (app, ver) == (GPKG_APPLICATION_ID, 10300), a.id  # GeoPackage 1.3, not 1.4
    assert "parcel_tax" not in pyogrio.list_layers(gpkg_of(packages["kensetsu"]))[:, 0]
    assert set(pyogrio.read_info(gpkg_of(packages["zeimu"]), layer="parcel_tax")["fields"]) \
        >= TAX_SECRETS


def test_quarantine_rows_follow_the_grants(uozu, store, packages) -> None:
    master = store.read_layer("_quarantine")
    assert "parcel_tax" in set(master["layer"])  # JOIN_UNMATCHED rows with owners' raw values
    for a in accesses(uozu):
        q = pyogrio.read_dataframe(gpkg_of(packages[a.id]), layer="_quarantine")
        want = master[master["layer"].isin(a.quarantine_layers)]
        assert sorted(q["record"] + q["layer"]) == sorted(want["record"] + want["layer"]), a.id
        assert ("parcel_tax" in set(q["layer"])) == (a.id == "zeimu")
    meta = pyogrio.read_dataframe(gpkg_of(packages["kensetsu"]), layer="_layer_meta")
    assert "parcel_tax" not in set(meta["layer"])


def test_confidential_values_never_reach_other_departments(store, packages) -> None:
    tax = store.read_layer("parcel_tax", columns=["owner_name", "owner_address"])
    secrets = {v for v in [*tax["owner_name"], *tax["owner_address"]] if v and len(v) >= 4}
    q = store.read_layer("_quarantine")
    raw = q[q["layer"] == "parcel_tax"]["raw_attrs"].map(json.loads)
    secrets |= {r["所有者氏名"] for r in raw if r.get("所有者氏名") and len(r["所有者氏名"]) >= 4}
    assert len(secrets) > 100
    pattern = re.compile(b"|".join(re.escape(s.encode()) for s in secrets))
    for dept, res in packages.items():
        blob = gpkg_of(res).read_bytes()
        if dept == "zeimu":
            assert all(s.encode() in blob for s in secrets)
        else:  # the bytes of the file, every page: not even a freed page holds one
            assert pattern.search(blob) is None, dept


def test_gdal_36_reads_the_package_without_a_version_warning(store, packages) -> None:
    """Debian's ogrinfo (system GDAL 3.6, what QGIS 3.22 uses) warns on the 1.4 master."""
    def warnings(path: Path) -> str:
        r = subprocess.run(["ogrinfo", "-so", "-al", str(path)], capture_output=True,
                           text=True, check=True)
        return r.stderr
    assert "may only be partially supported" in warnings((store.dir / "master.gpkg").resolve())
    assert "partially supported" not in warnings(gpkg_of(packages["kensetsu"]))


# ---------------------------------------------------------------------------- QGIS projects

def test_every_project_opens_with_valid_layers_and_the_stores_counts(uozu, store, probes) -> None:
    manifest = store.manifest()
    for a in accesses(uozu):
        rep = probes[a.id]
        assert rep["qgis"].startswith("3.")
        assert rep["crs"] == uozu.config.target_crs
        assert set(rep["layers"]) == set(a.layers)
        for lid, L in rep["layers"].items():
            assert L["valid"], (a.id, lid)
            assert L["features"] == manifest["layers"][lid]["features"], (a.id, lid)
            assert set(L["fields"]) - {"fid"} == set(a.layers[lid].columns), (a.id, lid)
            assert L["read_only"]
        assert rep["basemap"]["valid"] and "cyberjapandata.gsi.go.jp/xyz/std" in \
            rep["basemap"]["source"]
        assert rep["basemap"]["attribution"] == "出典：国土地理院"
        groups = [n["group"] for n in rep["tree"] if "group" in n]
        assert set(groups) == THEMES
        assert set(rep["themes"]) == set(groups)


def test_kensetsu_holds_no_confidential_field_and_zeimu_the_tax_fields(uozu, probes) -> None:
    confidential = {(s.id, c.name) for s in uozu.specs.values() for c in column_levels(s)
                    if c.level == "confidential"}
    for dept in ("kensetsu",):
        held = {(lid, f) for lid, L in probes[dept]["layers"].items() for f in L["fields"]}
        assert held & confidential == set(), dept
    tax = probes["zeimu"]["layers"]["parcel_tax"]
    assert set(tax["fields"]) >= TAX_SECRETS
    assert tax["aliases"]["owner_name"] == "所有者氏名"
    assert tax["aliases"]["assessed_value_jpy"] == "評価額 [JPY]"
    assert tax["group"] == "地番"
    assert "normal_state" not in probes["zeimu"]["layers"]["water_valve"]["fields"]
    assert "normal_state" in probes["josuido"]["layers"]["water_valve"]["fields"]


def test_styles_labels_forms_and_tips_come_from_the_specs(uozu, probes) -> None:
    rep = probes["kensetsu"]
    acc = department_access(uozu, "kensetsu")
    seen_categorized = 0
    for lid, L in rep["layers"].items():
        spec = uozu.specs[lid]
        ms = spec.map
        assert L["name"] == spec.title.ja and L["group"] == spec.theme.ja
        assert L["attribution"] == spec.attribution.ja
        for name in acc.layers[lid].columns:
            c = next(c for c in column_levels(spec) if c.name == name)
            if c.column.title and name == c.column.field:
                unit = spec.fields[name].unit
                assert L["aliases"][name] == c.column.title.ja + (f" [{unit}]" if unit else "")
            cl = uozu.codelists.get(c.column.codelist or "")
            if cl is not None:  # the attribute form: the code list as a ValueMap
                assert [v for _, v in L["value_maps"][name]] == list(cl.codes), (lid, name)
        cl = uozu.codelists.get(spec.fields[ms.color_by].codelist or "") if ms.color_by else None
        if cl is not None:
            seen_categorized += 1
            r = L["renderer"]
            assert r["type"] == "categorizedSymbol" and r["field"] == ms.color_by
            colored = {code: e.color for code, e in cl.codes.items() if e.color}
            # the category colour fills, or outlines a symbol with its own fill (a manhole)
            got = {v: (stroke if ms.fill else fill) for v, _, fill, stroke in r["categories"]}
            assert {k: got[k] for k in colored} == {k: v.lower() for k, v in colored.items()}
            assert "" in got  # other values stay visible
        else:
            assert L["renderer"]["type"] == "singleSymbol", lid
        if ms.labels:
            assert L["labels"] and L["label_min_scale"] == zoom_scale(ms.labels.min_zoom)
        if ms.width_by:  # pipe width by diameter: one data-defined width for every category
            (expr,) = L["renderer"]["width_expressions"]
            assert expr.startswith(f'CASE WHEN "{ms.width_by.field}" IS NULL'), lid
        else:
            assert L["renderer"]["width_expressions"] == [], lid
        assert L["renderer"]["arrows"] == ms.arrows, lid
        for f in ms.popup:  # titles in the map tip (units after the values)
            assert L["aliases"][f].split(" [")[0] in L["map_tip"], (lid, f)
            assert f'"{f}"' in L["map_tip"], (lid, f)
    assert seen_categorized >= 3
    for lid, L in rep["layers"].items():
        labels = uozu.specs[lid].map.labels
        if labels and labels.template:
            assert L["label_expression"] == template_expression(labels.template.ja), lid


def test_metadata_sources_and_data_date(uozu, store, probes) -> None:
    manifest = store.manifest()
    rep = probes["kensetsu"]
    dates = sorted({manifest["layers"][lid]["data_date"] for lid in rep["layers"]})
    v = rep["variables"]
    assert v["gis_data_date"] == (dates[0] if len(dates) == 1 else f"{dates[0]}〜{dates[-1]}")
    assert v["gis_run_id"] == manifest["run_id"] and v["gis_department"] == "建設課"
    for lid in rep["layers"]:
        assert uozu.specs[lid].attribution.ja in rep["metadata"]["abstract"]
        assert uozu.specs[lid].attribution.ja in v["gis_sources"]
    assert "出典：国土地理院" in v["gis_sources"]
    assert rep["metadata"]["author"] == "魚津市 建設課"
    assert rep["title"] == "魚津市 統合型GIS — 建設課"


def test_themes_render_and_layouts_print(uozu, probes) -> None:
    for dept in ("kensetsu", "zeimu"):
        rep = probes[dept]
        assert set(rep["renders"]) == THEMES
        for theme, r in rep["renders"].items():
            assert Path(r["png"]).stat().st_size > 0
            assert r["non_background"] > 0.005 * r["pixels"], (dept, theme, r)
        layouts = {x["name"]: x for x in rep["layouts"]}
        assert set(layouts) == set(PAGE_PT)
        for name, lay in layouts.items():
            assert {"QgsLayoutItemMap", "QgsLayoutItemLegend", "QgsLayoutItemScaleBar",
                    "QgsLayoutItemPicture", "QgsLayoutItemLabel"} <= set(lay["items"])
            assert any(t.startswith("出典: ") for t in lay["texts"])
            assert any(t.startswith("データ時点: ") for t in lay["texts"])
            marked = any(t.startswith("取扱注意") for t in lay["texts"])
            assert marked == (dept == "zeimu")
            pdf = rep["pdfs"][name]
            assert pdf["ok"]
            reader = PdfReader(pdf["pdf"])
            assert len(reader.pages) == 1
            box = reader.pages[0].mediabox
            assert (round(float(box.width)), round(float(box.height))) == PAGE_PT[name]
            words = "".join(reader.pages[0].extract_text().split())  # text, not outlines
            assert rep["variables"]["gis_run_id"] in words
            png = Path(pdf["pdf"]).with_suffix("")
            subprocess.run(["pdftoppm", "-r", "20", "-gray", "-singlefile", pdf["pdf"],
                            str(png)], check=True)
            pixels = Path(f"{png}.pgm").read_bytes()
            body = pixels[pixels.index(b"255\n") + 4:]
            assert sum(1 for b in body if b < 200) > 0.02 * len(body)  # a map, not a blank page


# -------------------------------------------------------------------------- the CLI, safety

def test_cli_unknown_department_and_occupied_out(uozu, tmp_path: Path) -> None:
    r = CliRunner()
    res = r.invoke(cli.cli, ["--project", str(uozu.root), "staff", "export", "-d", "somu",
                             "--out", str(tmp_path / "x")])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: " + text(
        "staff_unknown_department", dept="somu",
        known="kensetsu, josuido, zeimu, bosai, kikaku, toshi")
    assert not (tmp_path / "x").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep", encoding="utf-8")
    res = r.invoke(cli.cli, ["--project", str(uozu.root), "-q", "staff", "export", "-d",
                             "kensetsu", "--out", str(other)])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: " + text("staff_out_occupied", out=other)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_cli_export_json_replaces_a_package(uozu, packages, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    shutil.copytree(packages["kensetsu"].out, out)  # an earlier package of another department
    first = json.loads((out / "package.json").read_text(encoding="utf-8"))
    res = CliRunner().invoke(cli.cli, ["--project", str(uozu.root), "-q", "--json", "staff",
                                       "export", "-d", "bosai", "--out", str(out),
                                       "--no-basemap"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["department"] == "bosai" and data["layers"] == packages["kensetsu"].layers
    assert data["files"] == ["README.txt", "bosai.gpkg", "bosai.qgz", "package.json"]
    assert sorted(p.name for p in out.iterdir()) == data["files"]  # replaced, not mixed
    assert json.loads((out / "package.json").read_text(encoding="utf-8"))["department"] == \
        "bosai" != first["department"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]  # no staging left behind


def test_failed_export_keeps_the_previous_package(uozu, packages, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "kensetsu"
    shutil.copytree(packages["kensetsu"].out, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*a, **k):
        raise EtlError("staff_qgis_failed", detail="simulated")
    monkeypatch.setattr(pkg, "build_project", broken)
    with pytest.raises(EtlError, match="simulated"):
        pkg.export_package(uozu, "kensetsu", out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kensetsu"]


def test_package_folder_is_portable(packages, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "zeimu"
    shutil.copytree(packages["zeimu"].out, moved)
    rep = probe_project(moved / "zeimu.qgz")
    assert all(L["valid"] for L in rep["layers"].values())
    assert rep["layers"]["parcel_tax"]["features"] == packages["zeimu"].layers["parcel_tax"]
    with sqlite3.connect(moved / "zeimu.gpkg") as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10300


@pytest.mark.parametrize("template, expression", [
    ("{flow_type.label:.1}φ{diameter_mm} {material}",
     """concat(left(to_string(represent_value("flow_type")), 1), 'φ', "diameter_mm", ' ', """
     """"material")"""),
    ("{chiban}", '"chiban"'),
    ("No.{id|lower}'s", """concat('No.', lower(to_string("id")), '''s')"""),
])
def test_label_templates_become_qgis_expressions(template: str, expression: str) -> None:
    assert template_expression(template) == expression


def test_missing_pyqgis_is_a_clear_error(packages, tmp_path: Path) -> None:
    """A Python without PyQGIS (here: Debian's, with site-packages switched off)."""
    from staff.qgis_run import run_qgis

    python = tmp_path / "python-without-qgis"
    python.write_text('#!/bin/sh\nexec /usr/bin/python3 -S "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    with pytest.raises(EtlError) as e:
        run_qgis(["probe", str(packages["kensetsu"].out / "kensetsu.qgz")], python=str(python))
    assert str(e.value) == text("staff_qgis_missing",
                                detail="ModuleNotFoundError: No module named 'qgis'")
    assert str(e.value).endswith("Fix: run scripts/setup.sh (Debian: apt-get install "
                                 "python3-qgis)")
