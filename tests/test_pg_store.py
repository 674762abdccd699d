"""PostGIS-only behaviour: CQL2 filters, the SELECT-only reader role, store settings, equality.

The behaviour both stores share (merge, publication, leak crawl, API, GDAL/OWSLib clients) runs
on both through the ``store_url`` / ``STORES`` parametrisation of the other test modules.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import psycopg2
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from flask.testing import FlaskClient
from publish_fixtures import isolated_site_builders, make_project
from stores import set_store_in_file

import cli
from config import Project, load_project
from config.errors import ConfigError, EtlError
from config.models import PostgisConfig
from etl.pipeline import run_merge
from etl.stores import open_store
from etl.stores.postgis import run_schema
from etl.stores.url import sqlalchemy_url
from publish.build import PublishResult, publish
from publish.errors import LeakCheckError
from publish.server.app import create_app

#: the fixture project's PostGIS names: the neutral defaults (a city sets its own in project.yml)
PREFIX = PostgisConfig().schema_prefix
READER = PostgisConfig().reader_role


@pytest.fixture(scope="module", autouse=True)
def _only_our_site_builders():
    with isolated_site_builders():
        yield


@pytest.fixture(scope="module")
def pgenv(new_pg_db, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Project, PublishResult, FlaskClient, str]:
    url = new_pg_db()
    project = make_project(tmp_path_factory.mktemp("pgapi"), n_pipes=120, store=url)
    res = publish(project)
    return project, res, create_app(project).test_client(), url


def items(client: FlaskClient, lid: str, query: str, status: int = 200) -> dict:
    limit = "" if "limit=" in query else "limit=1000&"
    r = client.get(f"/api/collections/{lid}/items?f=json&{limit}{query}")
    assert r.status_code == status, (query, r.status_code, r.get_data(as_text=True)[:300])
    return r.get_json(force=True)


def engine(url: str):
    import sqlalchemy as sa
    return sa.create_engine(sqlalchemy_url(url))


def pub_schemas(url: str) -> list[str]:
    """The release schemas in a database."""
    import sqlalchemy as sa
    with engine(url).connect() as c:
        return c.execute(sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE "
                                 f"'{PREFIX}\\_pub\\_%'")).scalars().all()


def public_frame(res: PublishResult, lid: str) -> pd.DataFrame:
    return pyogrio.read_dataframe(res.store, layer=lid)


# ---------------------------------------------------------------- CQL2 on the PostGIS path

def test_cql2_filter_and_bbox(pgenv) -> None:
    _, res, client, _ = pgenv
    gdf = public_frame(res, "sewer_pipes")
    fc = items(client, "sewer_pipes", "filter=" + quote("diameter_mm > 150 AND material = 'DIP'"))
    exp = gdf[(gdf["diameter_mm"] > 150) & (gdf["material"] == "DIP")]
    assert 0 < len(exp) < len(gdf)
    assert fc["numberMatched"] == len(exp)
    assert sorted(f["id"] for f in fc["features"]) == sorted(exp["fid"])
    # combined with bbox and a property filter: all three apply
    minx, miny, maxx, maxy = gdf.total_bounds
    half = f"{minx},{miny},{(minx + maxx) / 2},{maxy}"
    fc = items(client, "sewer_pipes", "filter=" + quote("diameter_mm >= 200") +
               f"&bbox={half}&district=" + quote(str(gdf["district"].iloc[0])))
    box = shapely.box(minx, miny, (minx + maxx) / 2, maxy)
    exp = gdf[(gdf["diameter_mm"] >= 200) & gdf.intersects(box) &
              (gdf["district"] == gdf["district"].iloc[0])]
    assert sorted(f["id"] for f in fc["features"]) == sorted(exp["fid"])
    # IN, <>, NOT LIKE, OR with parentheses
    fc = items(client, "sewer_pipes", "filter=" + quote(
        "material IN ('VU', 'HP') AND diameter_mm <> 150 AND pipe_id NOT LIKE 'SP-0000%'"))
    exp = gdf[gdf["material"].isin(["VU", "HP"]) & (gdf["diameter_mm"] != 150) &
              ~gdf["fid"].str.startswith("SP-0000")]
    assert fc["numberMatched"] == len(exp) > 0
    fc = items(client, "sewer_pipes", "filter=" + quote(
        "(diameter_mm = 150 OR material = 'DIP') AND install_fy >= 2000"))
    exp = gdf[((gdf["diameter_mm"] == 150) | (gdf["material"] == "DIP")) &
              (gdf["install_fy"] >= 2000)]
    assert fc["numberMatched"] == len(exp) > 0
    # paging through a filtered result is complete and disjoint
    seen: list[str] = []
    for off in range(0, len(gdf), 7):
        page = items(client, "sewer_pipes", "filter=" + quote("diameter_mm > 150") +
                     f"&limit=7&offset={off}")
        seen += [f["id"] for f in page["features"]]
    assert sorted(seen) == sorted(gdf[gdf["diameter_mm"] > 150]["fid"])
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("lang", ["cql2-text", "cql-text"])
def test_filter_lang_standard_name(pgenv, lang: str) -> None:
    """``filter-lang=cql2-text`` (OGC API - Features Part 3) and pygeoapi's ``cql-text``."""
    _, res, client, _ = pgenv
    gdf = public_frame(res, "sewer_pipes")
    fc = items(client, "sewer_pipes", f"filter-lang={lang}&filter=" + quote("diameter_mm > 150"))
    assert fc["numberMatched"] == int((gdf["diameter_mm"] > 150).sum()) > 0
    nxt = [link["href"] for link in items(client, "sewer_pipes", f"filter-lang={lang}&limit=2&"
                                          "filter=" + quote("diameter_mm > 150"))["links"]
           if link["rel"] == "next"]
    assert nxt and "filter-lang=cql-text" in nxt[0]  # the next page is answered the same way
    body = items(client, "sewer_pipes", "filter-lang=cql2-json&filter=" + quote("a > 1"), 400)
    assert body["description"] == "Invalid filter language"


@pytest.mark.parametrize("expr", [
    "no_such_column > 1",  # unknown property
    "remarks = 'x'",  # internal column: physically not in the public table
    "diameter_mm > 'abc'",  # type mismatch
    "diameter_mm >",  # syntax
])
def test_cql2_errors_are_400(pgenv, expr: str) -> None:
    _, _, client, _ = pgenv
    body = items(client, "sewer_pipes", "filter=" + quote(expr), status=400)
    assert body["code"] in ("InvalidParameterValue", "InvalidQuery", "NoApplicableCode"), body


def test_cql2_text_is_bound_not_interpolated(pgenv) -> None:
    _, res, client, _ = pgenv
    evil = "material = 'x; DROP TABLE sewer_pipes; --'"
    assert items(client, "sewer_pipes", "filter=" + quote(evil))["numberMatched"] == 0
    fc = items(client, "sewer_pipes", "")
    assert fc["numberMatched"] == res.layers["sewer_pipes"].features  # table still there


# ---------------------------------------------------------------- the reader role

def _as_reader(url: str, sql: str) -> list:
    from sqlalchemy.engine import make_url
    u = make_url(sqlalchemy_url(url))
    con = psycopg2.connect(host=u.host, port=u.port, dbname=u.database, user=READER)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        con.rollback()
        con.close()


def test_reader_role_reads_public_schema_only(pgenv) -> None:
    project, res, _, url = pgenv
    meta = json.loads((res.path / "release.json").read_text(encoding="utf-8"))
    pub = meta["store"]["schema"]
    assert project.config.postgis.schema_prefix == PREFIX and pub.startswith(f"{PREFIX}_pub_")
    n = _as_reader(url, f"SELECT count(*) FROM {pub}.sewer_pipes")[0][0]
    assert n == res.layers["sewer_pipes"].features
    run = run_schema(PREFIX, open_store(project).current_run())
    for sql in (f"SELECT * FROM {PREFIX}_master.sewer_pipes LIMIT 1",
                f"SELECT owner_name FROM {run}.parcel_tax LIMIT 1",
                f"SELECT remarks FROM {run}.sewer_pipes LIMIT 1",
                f"SELECT * FROM {PREFIX}_meta.runs",
                f"INSERT INTO {pub}.shelters (fid) VALUES ('x')",
                f"CREATE TABLE {pub}.evil (a int)",
                f"DELETE FROM {pub}.sewer_pipes"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            _as_reader(url, sql)
    # and the served config connects as that role, without any password in the file
    cfg = (res.path / "pygeoapi.yml").read_text(encoding="utf-8")
    assert f"user: {READER}" in cfg and "password" not in cfg
    assert "publish.server.providers_pg.PublicPostgreSQLProvider" in cfg


def test_leak_guard_fails_publish_if_reader_can_read_master(new_pg_db, tmp_path: Path) -> None:
    url = new_pg_db()
    project = make_project(tmp_path, store=url)
    first = publish(project)
    run = run_schema(PREFIX, open_store(project).current_run())
    import sqlalchemy as sa
    with engine(url).begin() as c:  # a DBA's mistake: the public role gets the master
        c.execute(sa.text(f"GRANT USAGE ON SCHEMA {run} TO {READER}"))
        c.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {run} TO {READER}"))
    with pytest.raises(LeakCheckError) as e:
        publish(project)
    assert f"role {READER} can read" in str(e.value) and f"{run}.parcel_tax" in str(e.value)
    from publish.build import release
    assert release.current_id(project.public_dir) == first.release_id  # unchanged
    # the failed release left no schema behind
    first_schema = json.loads((first.path / "release.json").read_text())["store"]["schema"]
    assert pub_schemas(url) == [first_schema]


def test_old_release_schemas_are_pruned(new_pg_db, tmp_path: Path) -> None:
    url = new_pg_db()
    project = make_project(tmp_path, store=url)  # keep_runs: 3
    for _ in range(4):
        publish(project)
    from publish.build import release
    kept = release.list_releases(project.public_dir)
    assert len(kept) == 3 and len(pub_schemas(url)) == 3


# ---------------------------------------------------------------- store settings

def test_password_in_config_file_is_refused(mini_project: Path) -> None:
    from etl.checks import check_project

    set_store_in_file(mini_project, "postgresql://gis:s3cret@db.example:5432/gis")
    with pytest.raises(ConfigError) as e:
        check_project(load_project(mini_project))
    f = "config/project.yml"
    assert str(e.value) == (
        f"{f}: store にパスワードが書かれています。設定ファイルに認証情報を置かないで"
        "ください。修正: URL からパスワードを消し、PGPASSWORD か ~/.pgpass、または環境変数 "
        f"UOZU_GIS_STORE / --store で渡す / {f}: the store URL contains a "
        "password; credentials must not be in config files. Fix: remove it from the URL and use "
        "PGPASSWORD or ~/.pgpass, or pass the URL through UOZU_GIS_STORE / --store"
    )
    assert "s3cret" not in str(e.value)


def test_unreachable_server_is_exit_1_without_password(mini_project: Path) -> None:
    url = "postgresql://gis:s3cret@127.0.0.1:1/gis"
    res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "--store", url, "runs"])
    assert res.exit_code == 1
    assert "PostGIS postgresql://gis:***@127.0.0.1:1/gis に接続できません" in res.output
    assert "cannot connect to PostGIS postgresql://gis:***@127.0.0.1:1/gis" in res.output
    assert "s3cret" not in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "--store", "mysql://x",
                                       "runs"])
    assert res.exit_code == 1 and "unknown store 'mysql://x'" in res.output


def test_store_precedence_cli_env_config(mini_project: Path, new_pg_db,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url = new_pg_db()
    r = CliRunner()
    res = r.invoke(cli.cli, ["--project", str(mini_project), "-q", "--store", url, "merge"])
    assert res.exit_code == 0, res.output
    assert not (mini_project / "data/merged/master.gpkg").exists()  # nothing went to GeoPackage
    monkeypatch.setenv("UOZU_GIS_STORE", url)
    runs = json.loads(r.invoke(cli.cli, ["--project", str(mini_project), "--json", "runs"]).output)
    assert len(runs) == 1 and runs[0]["current"]
    # --store beats the environment
    res = r.invoke(cli.cli, ["--project", str(mini_project), "--json", "--store", "gpkg", "runs"])
    assert json.loads(res.output) == []


def test_no_postgis_extension_is_a_clear_error(pg, mini_project: Path) -> None:
    url = pg.create_database("plain_db", postgis=False)
    with pytest.raises(EtlError) as e:
        run_merge(load_project(mini_project), store=open_store(load_project(mini_project), url))
    assert "has no PostGIS extension" in str(e.value) and "CREATE EXTENSION postgis" in str(e.value)


# ---------------------------------------------------------------- same master in both stores

def test_both_stores_hold_the_same_master(mini_project: Path, new_pg_db) -> None:
    project = load_project(mini_project)
    run_merge(project)
    gp = open_store(project, "gpkg")
    pg = open_store(project, new_pg_db())
    run_merge(project, store=pg)
    assert sorted(gp.layers()) == sorted(t for t in pg.layers() if t != "_feature_hash")
    for layer in gp.layers():
        a, b = gp.read_layer(layer), pg.read_layer(layer)
        assert list(a.columns) == list(b.columns), layer
        assert len(a) == len(b), layer
        if "geometry" in a.columns:
            assert a.crs == b.crs == "EPSG:6675"
            assert all(shapely.equals_exact(a.geometry.values, b.geometry.values, 1e-6))
        skip = {"run_id", "geometry"}
        cols = [c for c in a.columns if c not in skip]
        left = pd.DataFrame(a[cols]).astype("string").fillna("<NA>")
        right = pd.DataFrame(b[cols]).astype("string").fillna("<NA>")
        for c in cols:  # 1980 vs 1980.0: same number, different integer/float rendering
            num_a, num_b = pd.to_numeric(left[c], errors="coerce"), pd.to_numeric(right[c],
                                                                                 errors="coerce")
            if num_a.notna().all() and num_b.notna().all():
                left[c], right[c] = num_a.astype(str), num_b.astype(str)
        pd.testing.assert_frame_equal(left, right, check_dtype=False, obj=layer)


def test_cli_merge_and_publish_on_each_store(mini_project: Path, store_url: str) -> None:
    """The staff path end to end through the CLI, with ``--store`` (regression: publish
    ignored it and failed with a TypeError)."""
    args = ["--project", str(mini_project), "-q", "--store", store_url]
    r = CliRunner()
    res = r.invoke(cli.cli, [*args, "merge"])
    assert res.exit_code == 0, res.output
    res = r.invoke(cli.cli, [*args, "--json", "publish"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["layers"]["sewer_pipe"] == 5 and "parcel_tax" not in out["layers"]
    meta = json.loads((Path(out["path"]) / "release.json").read_text(encoding="utf-8"))
    assert meta["store"]["kind"] == ("gpkg" if store_url == "gpkg" else "postgresql")
