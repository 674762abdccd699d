"""The staff GIS for every example city: its own departments, written in configuration only.

For each city (Uozu at the repository root, Takamatsu under examples/): merge its sample, then
write every department's package and open it in headless QGIS (the one with the most
confidential access also rendered and printed), and in PostGIS prove allow and deny for every
department, layer and column with real SELECTs.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2
import psycopg2.errors
import pyogrio
import pytest
import yaml

from config import Project, load_project
from etl.pipeline import run_merge
from etl.stores import open_store
from staff.grants import apply_grants, dept_role
from staff.package import export_package
from staff.policy import all_access, column_levels
from staff.qgis_run import probe_project

REPO = Path(__file__).resolve().parent.parent
CITIES = {"uozu": REPO, "takamatsu": REPO / "examples" / "takamatsu"}
SCALE = 0.05


def city_project(base: Path, root: Path, store: str = "gpkg", prefix: str | None = None) -> Project:
    """The city's config and specs over a fresh sample in ``root`` (shared paths absolute).

    ``prefix`` renames its PostGIS schemas and roles: roles belong to the whole cluster, and
    the test cluster also holds other tests' databases of the same city.
    """
    data = yaml.safe_load((base / "config" / "project.yml").read_text(encoding="utf-8"))
    for key, default in (("layers_dir", "layers"), ("grids_dir", "data/grids")):
        data[key] = str((base / data.get(key, default)).resolve())
    if data.get("boundary"):
        data["boundary"]["path"] = str((base / data["boundary"]["path"]).resolve())
    data["sample"]["generator"] = str((base / data["sample"]["generator"]).resolve())
    for key in ("raw_dir", "merged_dir", "public_dir"):
        data.pop(key, None)
    data["store"] = store
    if prefix:
        data["postgis"] = {"schema_prefix": prefix, "reader_role": f"{prefix}_public_reader"}
    (root / "config").mkdir(parents=True)
    (root / "config" / "project.yml").write_text(
        yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    project = load_project(root)
    project.sample_generator()(project.raw_dir, scale=SCALE)
    return project


def extremes(project: Project) -> tuple[str, str]:
    """The department reading the most confidential columns, and one reading none."""
    def n(a) -> int:
        return sum(len(la.confidential) for la in a.layers.values())
    acc = all_access(project)
    most = max(acc, key=n)
    least = next(a for a in acc if n(a) == 0)
    assert n(most) > 0
    return most.id, least.id


@pytest.fixture(scope="module", params=sorted(CITIES))
def city(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Project]:
    project = city_project(CITIES[request.param], tmp_path_factory.mktemp(request.param))
    run_merge(project)
    return request.param, project


def test_packages_open_in_qgis(city: tuple[str, Project], tmp_path: Path) -> None:
    """Every department's package, opened in headless QGIS: valid layers, the store's counts,
    no field outside its allow-list (the GeoPackage itself re-read too); the department with
    the most confidential access also renders each theme and prints its layouts."""
    name, city = city
    manifest = open_store(city).manifest()
    acc = {a.id: a for a in all_access(city)}
    confidential = {(s.id, c.name) for s in city.specs.values() for c in column_levels(s)
                    if c.level == "confidential"}
    most, least = extremes(city)
    partial = set()
    for dept, a in acc.items():
        res = export_package(city, dept, tmp_path / dept)
        full = dept == most
        rep = probe_project(res.out / f"{dept}.qgz", render=tmp_path if full else None,
                            pdf=tmp_path if full else None, size="400x300", dpi=72)
        assert rep["crs"] == city.config.target_crs, dept
        assert set(rep["layers"]) == set(a.layers), dept
        held = set()
        for lid, L in rep["layers"].items():
            assert L["valid"], (dept, lid)
            assert L["features"] == manifest["layers"][lid]["features"], (dept, lid)
            assert set(L["fields"]) - {"fid"} == set(a.layers[lid].columns), (dept, lid)
            assert L["group"] == (city.specs[lid].theme.ja if city.specs[lid].theme
                                  else "その他")
            held |= {(lid, f) for f in L["fields"]}
        # the file itself: only the allow-list, whatever opens it
        gpkg = res.out / f"{dept}.gpkg"
        for lid, _ in pyogrio.list_layers(gpkg):
            if lid in a.layers:
                info = pyogrio.read_info(gpkg, layer=lid)
                assert set(info["fields"]) == set(a.layers[lid].columns), (dept, lid)
        granted = {(lid, c) for lid, la in a.layers.items() for c in la.confidential}
        assert held & confidential == granted, dept
        if dept == least:
            assert not granted
        partial |= {(dept, lid) for lid, la in a.layers.items()
                    if la.spec.visibility == "confidential" and la.denied}
        if full:
            for theme, r in rep["renders"].items():
                assert r["non_background"] > 0, (dept, theme)
            assert all(p["ok"] for p in rep["pdfs"].values()) and len(rep["pdfs"]) == 2
        else:
            assert not rep.get("renders") and not rep.get("pdfs"), dept
    assert set(acc) >= {most, least}
    if name == "uozu":
        assert partial == set()  # whole ledger or nothing; field grants on internal layers
    else:
        # 危機管理課 reads the tax ledger in part: the id, owner and address, nothing else
        assert partial == {("kikikanri", "kazei_tochi")}
        la = acc["kikikanri"].layers["kazei_tochi"]
        assert set(la.columns) == {"tax_object_id", "owner_name", "owner_address"}
        assert not la.quarantine


def test_postgis_allow_and_deny(city: tuple[str, Project], pg, new_pg_db,
                                tmp_path: Path) -> None:
    url = new_pg_db()
    db = url.rsplit("/", 1)[1]
    project = city_project(CITIES[city[0]], tmp_path / "p", store=url, prefix=f"{city[0]}_{db}")
    run_merge(project)
    apply_grants(project)
    prefix = project.config.postgis.schema_prefix
    for a in all_access(project):
        login = f"login_{a.id}"
        pg.psql(f"CREATE ROLE {login} LOGIN; GRANT {dept_role(prefix, a.id)} TO {login};",
                dbname=db)
        conn = psycopg2.connect(pg.dsn(user=login, dbname=db))
        conn.autocommit = True
        me = dept_role(prefix, a.id)
        with conn.cursor() as cur:
            for lid, spec in project.specs.items():
                la = a.layers.get(lid)
                for c in column_levels(spec):
                    try:
                        cur.execute(f'SELECT "{c.name}" FROM {me}."{lid}" LIMIT 1')
                        got = None
                    except psycopg2.Error as e:
                        got = type(e)
                    if la is not None and c.name in la.columns:
                        assert got is None, (a.id, lid, c.name)
                    else:
                        assert got in (psycopg2.errors.UndefinedColumn,
                                       psycopg2.errors.UndefinedTable), (a.id, lid, c.name)
                        assert (got is psycopg2.errors.UndefinedTable) == (la is None)
            cur.execute(f"SELECT DISTINCT layer FROM {me}._quarantine")
            assert {r[0] for r in cur.fetchall()} <= set(a.quarantine_layers)
        conn.close()
