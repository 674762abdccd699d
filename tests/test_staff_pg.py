"""PostGIS enforces the department policy: real roles, real logins, real SELECTs.

The city's set-up as the README documents it: an ETL role with CREATEROLE runs merge and
``staff grants``; IT creates personal logins and grants them a department role. Every test
connects as such a login and proves allow and deny for every layer and column.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.errors
import pyogrio
import pytest
import yaml
from conftest import make_uozu_project
from stores import set_store_in_file

from config import Project, load_project
from config.errors import EtlError
from config.messages import text
from etl.pipeline import run_merge
from etl.stores import open_store
from etl.stores.postgis import run_schema
from staff import package as pkg
from staff.grants import MARKER, apply_grants, dept_role, readable_relations
from staff.policy import all_access, column_levels
from staff.qgis_run import probe_project

SCALE = 0.05
PREFIX = "uozu"
ETL = "uozu_etl"


@dataclass
class Env:
    project: Project
    url: str
    db: str
    pg: object

    def login(self, dept: str) -> str:
        return f"staff_{dept}"

    def connect(self, user: str):
        conn = psycopg2.connect(self.pg.dsn(user=user, dbname=self.db))
        conn.autocommit = True  # a denied statement must not poison the next one
        return conn

    def sql(self, query: str) -> str:
        return self.pg.psql(query, dbname=self.db)


@pytest.fixture(scope="module")
def env(pg, new_pg_db, tmp_path_factory: pytest.TempPathFactory) -> Env:
    url = new_pg_db()
    db = url.rsplit("/", 1)[1]
    # what the DBA prepares once (README): an ETL login that may create schemas and roles
    pg.psql(f"DO $$ BEGIN CREATE ROLE {ETL} LOGIN CREATEROLE; EXCEPTION WHEN duplicate_object "
            f"THEN NULL; END $$; GRANT CREATE ON DATABASE {db} TO {ETL};", dbname=db)
    etl_url = pg.url(user=ETL, dbname=db)
    root = make_uozu_project(tmp_path_factory.mktemp("staff-pg"), scale=SCALE)
    set_store_in_file(root, etl_url)
    project = load_project(root)
    run_merge(project)
    apply_grants(project)
    e = Env(project, etl_url, db, pg)
    for d in project.config.departments:  # IT: one personal login per department
        e.sql(f"CREATE ROLE {e.login(d.id)} LOGIN; "
              f"GRANT {dept_role(PREFIX, d.id)} TO {e.login(d.id)};")
    return e


def run_of(env: Env) -> str:
    return run_schema(PREFIX, open_store(env.project).current_run())


def denied(conn, sql: str) -> type[Exception] | None:
    """The error class a statement raises (None if it runs)."""
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
            cur.fetchall()
        except psycopg2.Error as e:
            return type(e)
    return None


def test_department_roles_are_nologin_and_passwordless(env: Env) -> None:
    rows = env.sql("SELECT a.rolname, a.rolcanlogin, a.rolpassword IS NULL, "
                   "shobj_description(a.oid, 'pg_authid') FROM pg_authid a "
                   f"WHERE a.rolname LIKE '{PREFIX}\\_dept\\_%' ORDER BY 1").splitlines()
    got = {r.split("|")[0]: r.split("|")[1:] for r in rows}
    assert set(got) == {dept_role(PREFIX, d.id) for d in env.project.config.departments}
    for role, (login, nopass, comment) in got.items():
        assert (login, nopass) == ("f", "t"), role
        assert comment.startswith(MARKER), role


def test_allow_and_deny_every_layer_and_column(env: Env) -> None:
    store = open_store(env.project)
    manifest = store.manifest()
    run = run_of(env)
    roles = {d.id: dept_role(PREFIX, d.id) for d in env.project.config.departments}
    checked = 0
    for a in all_access(env.project):
        me = roles[a.id]
        conn = env.connect(env.login(a.id))
        for lid in env.project.order():
            spec = env.project.specs[lid]
            la = a.layers.get(lid)
            if la is None:  # a layer the department may not read does not exist for it
                assert denied(conn, f'SELECT 1 FROM {me}."{lid}"') is \
                    psycopg2.errors.UndefinedTable, (a.id, lid)
            else:
                with conn.cursor() as cur:
                    cur.execute(f'SELECT count(*), count(geometry) FROM {me}."{lid}"')
                    n, ng = cur.fetchone()
                assert n == ng == manifest["layers"][lid]["features"], (a.id, lid)
            for c in column_levels(spec):
                col = f'"{c.name}"'
                if la is not None and c.name in la.columns:
                    assert denied(conn, f'SELECT {col} FROM {me}."{lid}" LIMIT 1') is None
                elif la is not None:
                    assert denied(conn, f'SELECT {col} FROM {me}."{lid}" LIMIT 1') is \
                        psycopg2.errors.UndefinedColumn, (a.id, lid, c.name)
                # the master, the run and every other department: denied, column by column
                for schema in (run, f"{PREFIX}_master", *(r for r in roles.values() if r != me)):
                    assert denied(conn, f'SELECT {col} FROM {schema}."{lid}" LIMIT 1') is \
                        psycopg2.errors.InsufficientPrivilege, (a.id, schema, lid, c.name)
                checked += 1
        conn.close()
    assert checked > 6 * 200


def test_grants_name_their_columns(env: Env) -> None:
    """Each view's grant is ``GRANT SELECT (<columns>)``: information_schema, read by each
    department's own login, shows exactly the allowed columns per view and no table-level
    SELECT on any relation."""
    run = run_of(env)
    for a in all_access(env.project):
        me = dept_role(PREFIX, a.id)
        conn = env.connect(env.login(a.id))
        with conn.cursor() as cur:
            cur.execute("SELECT table_name, column_name FROM information_schema.column_privileges "
                        "WHERE grantee = %s AND privilege_type = 'SELECT'", (me,))
            granted: dict[str, set[str]] = {}
            for t, c in cur.fetchall():
                granted.setdefault(t, set()).add(c)
            cur.execute("SELECT table_schema, table_name FROM information_schema.table_privileges"
                        " WHERE grantee = %s", (me,))
            assert cur.fetchall() == [], a.id  # no whole-view (or any table-level) privilege
            cur.execute("SELECT count(*) FROM information_schema.column_privileges WHERE "
                        "grantee = %s AND table_schema <> %s", (me, me))
            assert cur.fetchone() == (0,), a.id
        conn.close()
        want = {}
        for lid, la in a.layers.items():
            geom = env.sql(f"SELECT column_name FROM information_schema.columns WHERE "
                           f"table_schema = '{run}' AND table_name = '{lid}' "
                           "AND udt_name = 'geometry'").split()
            want[lid] = set(la.columns) | set(geom)
        for table in ("_quarantine", "_layer_meta", "_code_table"):
            want[table] = set(env.sql(f"SELECT column_name FROM information_schema.columns "
                                      f"WHERE table_schema = '{run}' AND table_name = '{table}'")
                              .split())
        assert granted == want, a.id
    # 税務課's tax view grant names the owner; only 上下水道課's valve grant names its state
    zeimu = env.sql("SELECT column_name FROM information_schema.column_privileges WHERE "
                    f"grantee = '{PREFIX}_dept_zeimu' AND table_name = 'parcel_tax'").split()
    assert "owner_name" in zeimu
    cols = env.sql("SELECT grantee, column_name FROM information_schema.column_privileges "
                   "WHERE table_name = 'water_valve' AND column_name = 'normal_state' "
                   f"AND grantee LIKE '{PREFIX}\\_dept\\_%'").split()
    assert cols == [f"{PREFIX}_dept_josuido|normal_state"]


def test_quarantine_rows_and_the_security_barrier(env: Env) -> None:
    run = run_of(env)
    rows = env.sql(f"SELECT layer, count(*) FROM {run}._quarantine GROUP BY 1").splitlines()
    master = {r.split("|")[0]: int(r.split("|")[1]) for r in rows}
    assert master["parcel_tax"] > 0
    for a in all_access(env.project):
        conn = env.connect(env.login(a.id))
        with conn.cursor() as cur:
            cur.execute(f"SELECT layer, count(*) FROM {dept_role(PREFIX, a.id)}._quarantine "
                        "GROUP BY 1")
            got = dict(cur.fetchall())
        assert got == {k: v for k, v in master.items() if k in a.quarantine_layers}, a.id
        conn.close()
    # a leaky function of the department's own, applied before the view's filter, would
    # print other layers' raw rows; the security_barrier view evaluates its filter first
    env.sql(f"CREATE SCHEMA scratch; GRANT USAGE, CREATE ON SCHEMA scratch TO "
            f"{env.login('kensetsu')};")
    conn = env.connect(env.login("kensetsu"))
    with conn.cursor() as cur:
        cur.execute("CREATE FUNCTION scratch.leak(text) RETURNS boolean LANGUAGE plpgsql "
                    "COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'leak %', $1; RETURN true; END $$")
        cur.execute(f"SELECT count(*) FROM {dept_role(PREFIX, 'kensetsu')}._quarantine "
                    "WHERE scratch.leak(raw_attrs)")
    # the tax ledger's raw rows carry its CSV columns (所有者氏名 ...): none may show
    assert conn.notices and not any("所有者氏名" in n for n in conn.notices)
    # control: the same attack on a plain view shows what the barrier prevents
    env.sql(f"CREATE VIEW scratch.plain AS SELECT * FROM {run}._quarantine "
            "WHERE layer <> 'parcel_tax'; "
            f"GRANT SELECT ON scratch.plain TO {env.login('kensetsu')};")
    conn.notices.clear()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM scratch.plain WHERE scratch.leak(raw_attrs)")
    assert any("所有者氏名" in n for n in conn.notices)
    conn.close()
    env.sql("DROP SCHEMA scratch CASCADE")


def test_no_function_or_catalogue_reads_a_denied_column(env: Env) -> None:
    run = run_of(env)
    env.sql(f"ANALYZE {run}.parcel_tax")
    conn = env.connect(env.login("kensetsu"))
    with conn.cursor() as cur:
        # the only SECURITY DEFINER functions a login may call are PostGIS's
        # ST_EstimatedExtent: a geometry column's bounding box from the statistics, nothing of
        # an attribute (README: a DBA may REVOKE EXECUTE on them FROM PUBLIC)
        cur.execute("SELECT p.proname FROM pg_proc p WHERE p.prosecdef "
                    "AND has_function_privilege(p.oid, 'EXECUTE')")
        assert {r[0] for r in cur.fetchall()} == {"st_estimatedextent"}
        for c in column_levels(env.project.specs["parcel_tax"]):
            cur.execute("SELECT ST_EstimatedExtent(%s, 'parcel_tax', %s), "
                        "ST_EstimatedExtent(%s, 'parcel_tax', %s, true)",
                        (run, c.name, run, c.name))
            assert cur.fetchone() == (None, None), c.name
        cur.execute("SELECT attname FROM pg_stats WHERE tablename = 'parcel_tax'")
        assert cur.fetchall() == []  # no column statistics (most common owner names ...)
    for sql in (f"SELECT query_to_xml('SELECT owner_name FROM {run}.parcel_tax', true, "
                "false, '')",
                f"SELECT * FROM {PREFIX}_meta.runs",
                f"SELECT * FROM {PREFIX}_dept_zeimu.parcel_tax"):
        assert denied(conn, sql) is psycopg2.errors.InsufficientPrivilege, sql
    conn.close()


def _privileges(env: Env) -> dict[str, dict[str, set[str]]]:
    from sqlalchemy import create_engine

    from etl.stores.url import sqlalchemy_url
    eng = create_engine(sqlalchemy_url(env.url))
    with eng.connect() as c:
        out = {d.id: readable_relations(c, dept_role(PREFIX, d.id), PREFIX)
               for d in env.project.config.departments}
    eng.dispose()
    return out


def test_grants_are_idempotent(env: Env) -> None:
    before = _privileges(env)
    res = apply_grants(env.project)
    assert _privileges(env) == before
    assert res.dropped == [] and res.kept == []
    assert set(before["kensetsu"]) == {f"{PREFIX}_dept_kensetsu.{t}" for t in
                                       res.roles["kensetsu"]["views"]}


def _edit_departments(env: Env, edit) -> None:
    p = env.project.root / "config" / "project.yml"
    cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
    edit(cfg["departments"])
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env.project = load_project(env.project.root)


def test_one_transaction_and_revoking(env: Env) -> None:
    original = (env.project.root / "config" / "project.yml").read_text(encoding="utf-8")
    views = env.sql("SELECT schemaname, viewname, definition FROM pg_views WHERE schemaname "
                    f"LIKE '{PREFIX}\\_dept\\_%' ORDER BY 1, 2")
    try:
        # a role of the same name that we did not create: refused, and nothing changes
        env.sql(f"CREATE ROLE {PREFIX}_dept_soumu NOLOGIN")
        _edit_departments(env, lambda ds: ds.extend([
            {"id": "aaa", "name": {"ja": "新課", "en": "New"}},
            {"id": "soumu", "name": {"ja": "総務課", "en": "General Affairs"}}]))
        with pytest.raises(EtlError) as e:
            apply_grants(env.project)
        assert str(e.value) == text("staff_role_foreign", role=f"{PREFIX}_dept_soumu")
        assert env.sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PREFIX}_dept_aaa'") == ""
        assert env.sql("SELECT schemaname, viewname, definition FROM pg_views WHERE "
                       f"schemaname LIKE '{PREFIX}\\_dept\\_%' ORDER BY 1, 2") == views
        env.sql(f"DROP ROLE {PREFIX}_dept_soumu")
        # take 上下水道課's valve grant away and remove 都市計画課: both revoked
        (env.project.root / "config" / "project.yml").write_text(original, encoding="utf-8")

        def edit(ds: list) -> None:
            ds[:] = [d for d in ds if d["id"] != "toshi"]
            next(d for d in ds if d["id"] == "josuido").pop("grants")
        _edit_departments(env, edit)
        res = apply_grants(env.project)
        assert res.dropped == [f"{PREFIX}_dept_toshi"]
        conn = env.connect(env.login("josuido"))
        assert denied(conn, f"SELECT normal_state FROM {PREFIX}_dept_josuido.water_valve") is \
            psycopg2.errors.UndefinedColumn
        assert denied(conn, f"SELECT valve_id FROM {PREFIX}_dept_josuido.water_valve") is None
        conn.close()
        assert env.sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PREFIX}_dept_toshi'") == ""
        conn = env.connect(env.login("toshi"))  # the login stays; its department is gone
        assert denied(conn, f"SELECT 1 FROM {PREFIX}_dept_toshi.parcel") is \
            psycopg2.errors.UndefinedTable  # no such schema any more
        conn.close()
    finally:
        (env.project.root / "config" / "project.yml").write_text(original, encoding="utf-8")
        env.project = load_project(env.project.root)
        apply_grants(env.project)
        env.sql(f"GRANT {PREFIX}_dept_toshi TO {env.login('toshi')}")


def test_views_after_a_merge_and_the_postgis_project(env: Env, tmp_path: Path) -> None:
    old = open_store(env.project).current_run()
    schema_comment = f"SELECT obj_description('{PREFIX}_dept_zeimu'::regnamespace)"
    assert old in env.sql(schema_comment)
    new = run_merge(env.project).run_id
    # the views keep showing the run they were built on (consistent, never broken) ...
    assert old in env.sql(schema_comment)
    conn = env.connect(env.login("zeimu"))
    assert denied(conn, f"SELECT owner_name FROM {PREFIX}_dept_zeimu.parcel_tax") is None
    conn.close()
    # ... a package for them is refused until staff grants has been run again
    with pytest.raises(EtlError) as e:
        pkg.export_package(env.project, "zeimu", tmp_path / "zeimu", target="postgis")
    assert str(e.value) == text("staff_grants_stale", dept="zeimu", view_run=old, run=new)
    res = apply_grants(env.project)
    assert res.run_id == new and new in env.sql(schema_comment)
    print(f"staff grants after merge: {res.seconds:.3f} s")  # measured, not asserted

    manifest = open_store(env.project).manifest()
    for dept in ("zeimu", "kensetsu"):
        out = pkg.export_package(env.project, dept, tmp_path / dept, target="postgis").out
        assert sorted(p.name for p in out.iterdir()) == sorted([
            "README.txt", "package.json", "pg_service.conf", f"{dept}.qgz"])
        service = (out / "pg_service.conf").read_text(encoding="utf-8")
        entries = [ln for ln in service.splitlines() if ln and not ln.startswith("#")]
        assert entries == [f"[{PREFIX}_dept_{dept}]", f"host={env.pg.host}",
                           f"port={env.pg.port}", f"dbname={env.db}"]
        for f in out.iterdir():  # no credential in any file of the package
            if f.suffix == ".qgz":
                with zipfile.ZipFile(f) as z:
                    body = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
                assert f"service='{PREFIX}_dept_{dept}'" in body
            else:
                body = f.read_text(encoding="utf-8")
            # libpq keywords: user='x' in a QGIS data source, user=x in a service file
            assert not re.search(r"\b(user|password)\s*=\s*'|^\s*(user|password)\s*=", body,
                                 re.I | re.M), f.name
        rep = probe_project(out / f"{dept}.qgz", env={
            "PGSERVICEFILE": str(out / "pg_service.conf"), "PGUSER": env.login(dept)})
        a = next(x for x in all_access(env.project) if x.id == dept)
        assert set(rep["layers"]) == set(a.layers)
        for lid, L in rep["layers"].items():
            assert L["valid"] and L["provider"] == "postgres", (dept, lid)
            assert L["features"] == manifest["layers"][lid]["features"], (dept, lid)
            assert set(L["fields"]) == set(a.layers[lid].columns), (dept, lid)
    # 税務課's project opened by a 建設課 login: the server refuses every layer
    rep = probe_project(tmp_path / "zeimu" / "zeimu.qgz", env={
        "PGSERVICEFILE": str(tmp_path / "zeimu" / "pg_service.conf"),
        "PGUSER": env.login("kensetsu")})
    assert rep["layers"] and not any(L["valid"] for L in rep["layers"].values())


def test_geopackage_package_from_the_postgis_master(env: Env, tmp_path: Path) -> None:
    """The embedded package works from a PostGIS master too (e.g. for a laptop in the field)."""
    manifest = open_store(env.project).manifest()
    res = pkg.export_package(env.project, "josuido", tmp_path / "josuido")
    assert res.run_id == manifest["run_id"]
    assert res.layers == {lid: manifest["layers"][lid]["features"] for lid in res.layers}
    assert "parcel_tax" not in res.layers
    info = pyogrio.read_info(res.out / "josuido.gpkg", layer="water_valve")
    assert "normal_state" in info["fields"]


def test_cli_merge_moves_department_views_to_the_new_run(env: Env) -> None:
    """``uozu-gis merge`` on PostGIS re-applies the grants: no stale views after a merge."""
    from click.testing import CliRunner

    import cli

    res = CliRunner().invoke(cli.cli, ["--project", str(env.project.root), "-q", "merge"])
    assert res.exit_code == 0, res.output
    new = open_store(env.project).current_run()
    schema_comment = f"SELECT obj_description('{PREFIX}_dept_zeimu'::regnamespace)"
    assert new in env.sql(schema_comment)
    conn = env.connect(env.login("zeimu"))
    assert denied(conn, f"SELECT owner_name FROM {PREFIX}_dept_zeimu.parcel_tax") is None
    conn.close()
    conn = env.connect(env.login("kensetsu"))
    assert denied(conn, f"SELECT owner_name FROM {PREFIX}_dept_kensetsu.parcel_tax") is not None
    conn.close()
