"""The public store is public by construction: allow-listed layers, rows and columns only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import store_for
from publish_fixtures import (
    QUOTE_DISTRICT,
    SECRETS,
    isolated_site_builders,
    make_project,
    sample_frames,
    write_master,
    write_project,
)
from stores import STORES
from test_example_city import copy_example

from config import Project, load_project
from publish.build import public_store as store
from publish.build import publish
from publish.errors import LeakCheckError, PublishError


@pytest.fixture(scope="module", autouse=True)
def _only_our_site_builders() -> Iterator[None]:
    with isolated_site_builders():
        yield



@pytest.fixture(scope="module", params=STORES)
def published(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, object]:
    project = make_project(tmp_path_factory.mktemp("store"),
                           store=store_for(request, request.param))
    return project, publish(project)


def test_plan_is_the_spec_allow_list(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    plans = store.plan_store(project)
    assert list(plans) == ["sewer_pipes", "shelters"]  # parcel_tax is internal
    pipes = plans["sewer_pipes"]
    assert pipes.names == ["fid", "pipe_id", "material", "diameter_mm", "length_m", "install_fy",
                           "district", "material_ja", "material_en"]
    # the public_filter's internal column is read (to filter), remarks and lineage never are
    assert set(pipes.read_columns) == set(pipes.names[1:7]) | {"status"}
    assert pipes.queryables == ["pipe_id", "material", "diameter_mm", "district"]


@pytest.mark.parametrize(("expr", "names"), [
    ('status == "in_use"', {"status"}),
    ("diameter_mm >= 200 and not abandoned", {"diameter_mm", "abandoned"}),
    ("`my col` == 'x' or district.str.startswith('本')", {"my col", "district"}),
    ("status in ['in_use', 'planned']", {"status"}),
])
def test_filter_names_ignore_string_literals(expr: str, names: set[str]) -> None:
    assert store.filter_names(expr) == names


def test_store_holds_only_public_rows_and_columns(published: tuple[Project, object]) -> None:
    project, result = published
    path = result.store
    assert {str(n) for n in pyogrio.list_layers(path)[:, 0]} == {"sewer_pipes", "shelters"}
    pipes = pyogrio.read_dataframe(path, layer="sewer_pipes")
    # 40 pipes: every 5th abandoned (8) and one with unknown status are withheld
    assert len(pipes) == 31 and result.layers["sewer_pipes"].withheld == 9
    assert "SP-00003" not in set(pipes["fid"]) and "SP-00004" not in set(pipes["fid"])
    assert list(pipes.columns) == [*store.plan_store(project)["sewer_pipes"].names, "geometry"]
    assert (pipes["fid"] == pipes["pipe_id"]).all()
    assert set(pipes.loc[pipes["material"] == "VU", "material_ja"]) == {"硬質塩化ビニル管 (薄肉)"}
    assert set(pipes.loc[pipes["material"] == "HP", "material_en"]) == {
        "Hume (reinforced concrete) pipe"}
    assert QUOTE_DISTRICT in set(pipes["district"])
    shelters = pyogrio.read_dataframe(path, layer="shelters")
    assert len(shelters) == 9
    assert "manager_phone" not in shelters.columns
    assert shelters["opened"].iloc[0] == "2020-04-01"  # dates as ISO text


def test_no_secret_reaches_any_release_file(published: tuple[Project, object]) -> None:
    """Byte-level scan of every file of the release (store, configs, pages)."""
    _, result = published
    files = [p for p in result.path.rglob("*") if p.is_file()]
    assert result.store in files
    for p in files:
        data = p.read_bytes()
        for secret in (*SECRETS, "source_file", "quality_flags", "owner_name", "parcel_tax",
                       "/secret/path"):
            assert secret.encode("utf-8") not in data, f"{secret!r} leaked into {p.name}"


def test_store_is_crs84_rounded_and_indexed(published: tuple[Project, object]) -> None:
    project, result = published
    for lid in result.layers:
        info = pyogrio.read_info(result.store, layer=lid)
        assert info["crs"] == "EPSG:4326" and info["geometry_name"] == "geom"
        assert info["fid_column"] == "rid"
        minx, miny, maxx, maxy = info["total_bounds"]
        assert 137.2 < minx <= maxx < 137.7 and 36.7 < miny <= maxy < 36.95  # lon, lat at Uozu
        gdf = pyogrio.read_dataframe(result.store, layer=lid)
        xy = shapely.get_coordinates(gdf.geometry.values)
        assert np.allclose(xy, np.round(xy, 7), atol=1e-12)
        back = gdf.to_crs("EPSG:6675")
        master = store.locate_master(project).read_layer(lid,
                                                         columns=[project.specs[lid].id_field])
        master = master.set_index(master[project.specs[lid].id_field].astype(str))
        d = back.geometry.values.distance(master.loc[gdf["fid"]].geometry.values)
        assert float(np.max(d)) < 0.02  # 1e-7 degree rounding is about 1 cm
    con = sqlite3.connect(result.store)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert {f"rtree_{lid}_geom" for lid in result.layers} <= tables


def test_leak_check_catches_an_extra_column_and_table(published: tuple[Project, object],
                                                      tmp_path: Path) -> None:
    project, result = published
    expected, forbidden = store.expected_tables(project), store.forbidden_columns(project)
    store.check_public_store(result.store, expected, forbidden)  # the real one passes
    bad = tmp_path / "bad.gpkg"
    for sql, name in [
        ('ALTER TABLE "shelters" ADD COLUMN "manager_phone" TEXT', "manager_phone"),
        ("CREATE TABLE owners (name TEXT)", "owners"),  # invisible to GDAL, visible to SQLite
        ("CREATE TABLE rtree_owners (name TEXT)", "rtree_owners"),  # system-looking: no excuse
    ]:
        bad.write_bytes(result.store.read_bytes())
        con = sqlite3.connect(bad)
        con.execute(sql)
        con.commit()
        con.close()
        with pytest.raises(LeakCheckError, match=name):
            store.check_public_store(bad, expected, forbidden)


def _spec_with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def test_public_filter_errors_are_bilingual(tmp_path: Path) -> None:
    import publish_fixtures as fx

    spec = _spec_with(fx.SEWER_PIPES, 'public_filter: status == "in_use"',
                      'public_filter: colour == "red"')
    project = write_project(tmp_path / "a", extra_specs={"sewer_pipes": spec})
    write_master(project, sample_frames())
    with pytest.raises(PublishError, match=r"public_filter.*colour.*/ layer 'sewer_pipes'"):
        publish(project)
    spec = _spec_with(fx.SEWER_PIPES, 'public_filter: status == "in_use"',
                      "public_filter: status ==")
    project = write_project(tmp_path / "b", extra_specs={"sewer_pipes": spec})
    write_master(project, sample_frames())
    with pytest.raises(PublishError, match="評価できません"):
        publish(project)
    assert not (project.public_dir / "current").exists()
    assert list((project.public_dir / "releases").iterdir()) == []  # nothing half-written


def test_internal_id_field_cannot_be_the_public_id(tmp_path: Path) -> None:
    import publish_fixtures as fx

    spec = _spec_with(fx.SHELTERS, "shelter_id: {from: ID, required: true, unique: true, "
                      "visibility: public,", "shelter_id: {from: ID, required: true, unique: true,")
    project = write_project(tmp_path, extra_specs={"shelters": spec})
    write_master(project, sample_frames())
    with pytest.raises(PublishError, match="id_field 'shelter_id'"):
        publish(project)


def test_missing_master_and_columns(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    with pytest.raises(PublishError, match="uozu-gis merge"):
        publish(project)
    write_master(project, sample_frames(), drop={"shelters": ["capacity"]})
    with pytest.raises(PublishError, match="capacity"):
        publish(project)
    frames = sample_frames()
    frames["shelters"] = pd.concat([frames["shelters"], frames["shelters"].iloc[:1]])
    write_master(project, frames)
    with pytest.raises(PublishError, match=r"duplicate id.*H000"):
        publish(project)


def test_duplicate_public_ids_name_the_true_fix(tmp_path: Path) -> None:
    """Ids equal once trimmed (as publish compares them) can only reach publish from a master
    the current merge did not write (it trims them the same way and quarantines duplicates of
    a unique id field): the hint says so, and names unique: true for a field without it."""
    project = write_project(tmp_path)
    frames = sample_frames()
    sh = frames["shelters"]
    sh["shelter_id"] = sh["shelter_id"].astype(object)
    sh.loc[sh.index[1], "shelter_id"] = "\u3000H000 "
    write_master(project, frames)
    with pytest.raises(PublishError) as ei:
        publish(project)
    assert str(ei.value) == (
        "レイヤ 'shelters': ID (shelter_id) が重複しています: H000。修正: shelter_id に unique: "
        "true がなければ書いてマージをやり直す (マージは前後の空白を除いた ID の重複を "
        "DUPLICATE_ID として隔離します)。書いてあれば、このマスタは古い版で書かれたものなので"
        "マージをやり直す / layer 'shelters': duplicate id(s) in shelter_id: H000. Fix: set "
        "unique: true on shelter_id if it is missing and merge again (merge quarantines ids that "
        "are equal once surrounding spaces are trimmed as DUPLICATE_ID); if it is set, this "
        "master was written by an older version: merge again")
    assert "make shelter_id unique: true" not in str(ei.value)
    assert not (project.public_dir / "current").exists()


def test_empty_public_layer_is_published(tmp_path: Path) -> None:
    import publish_fixtures as fx

    spec = _spec_with(fx.SEWER_PIPES, 'public_filter: status == "in_use"',
                      'public_filter: status == "no such status"')
    project = write_project(tmp_path, extra_specs={"sewer_pipes": spec})
    write_master(project, sample_frames())
    res = publish(project)
    assert res.layers["sewer_pipes"].features == 0 and res.layers["sewer_pipes"].bbox is None
    assert pyogrio.read_info(res.store, layer="sewer_pipes")["features"] == 0
    assert list(pyogrio.read_dataframe(res.store, layer="sewer_pipes").columns) == [
        *store.plan_store(project)["sewer_pipes"].names, "geometry"]


def test_only_crs84_can_be_the_publish_crs(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    write_master(project, sample_frames())
    for crs in ("OGC:CRS84", "EPSG:4326"):
        cfg = project.config.model_copy(update={"publish_crs": crs})
        publish(Project(project.root, cfg, project.specs, project.codelists))
    cfg = project.config.model_copy(update={"publish_crs": "EPSG:6675"})
    with pytest.raises(PublishError, match="publish_crs 'EPSG:6675'"):
        publish(Project(project.root, cfg, project.specs, project.codelists))


# ---------------------------------------------------------------- streamed publication (issue 17)

def _gpkg_content(path: Path) -> dict[str, object]:
    """Everything a reader of the file can see, row for row (the write time stamp aside)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out: dict[str, object] = {}
        for t in ("gpkg_spatial_ref_sys", "gpkg_geometry_columns", "gpkg_ogr_contents",
                  "gpkg_extensions"):
            out[t] = sorted(con.execute(f"SELECT * FROM {t}").fetchall())
        out["gpkg_contents"] = sorted(con.execute(
            "SELECT table_name, data_type, identifier, description, min_x, min_y, max_x, "
            "max_y, srs_id FROM gpkg_contents").fetchall())
        for (t,) in con.execute("SELECT table_name FROM gpkg_contents").fetchall():
            out[f"{t}:schema"] = con.execute(f'PRAGMA table_info("{t}")').fetchall()
            out[f"{t}:rows"] = con.execute(f'SELECT * FROM "{t}" ORDER BY rid').fetchall()
            out[f"{t}:rtree"] = sorted(con.execute(f'SELECT * FROM "rtree_{t}_geom"').fetchall())
        return out
    finally:
        con.close()


def _takamatsu_merged(root: Path) -> Project:
    from etl.pipeline import run_merge
    from examples.takamatsu.samples import generate as gen

    project = load_project(copy_example(root))
    gen.generate(project.raw_dir, scale=0.05)
    run_merge(project)
    return project


@pytest.mark.parametrize("city", ["fixture", "uozu", "takamatsu"])
def test_streamed_store_equals_whole_layer_store(city: str, tmp_path: Path,
                                                 request: pytest.FixtureRequest,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 7 master rows give the very rows, columns, types, geometry blobs, R-tree,
    extents and layer stats of the whole-layer path, in both read orders (already sorted by
    public id, and ORDER BY in SQLite)."""
    if city == "fixture":
        project = make_project(tmp_path / "p", n_pipes=60)
    elif city == "uozu":
        project = load_project(request.getfixturevalue("uozu_merged")[0])
    else:
        project = _takamatsu_merged(tmp_path / "tk")
    plans = store.plan_store(project)
    source = store.locate_master(project)
    streamed: dict[str, str] = {}
    real_plan = store._stream_plan

    def spy(path: Path, plan: store.LayerPlan) -> object:
        sp = real_plan(path, plan)
        streamed[plan.id] = "none" if sp is None else ("sql" if sp.sql else "scan")
        return sp

    monkeypatch.setattr(store, "_stream_plan", spy)
    whole = store.write_public_store(project, source, tmp_path / "whole.gpkg", plans,
                                     batch_rows=None)
    assert streamed == {}
    batched = store.write_public_store(project, source, tmp_path / "batched.gpkg", plans,
                                       batch_rows=7)
    assert set(streamed) == set(plans)
    nonempty = {lid for lid, lay in whole.items() if lay.features}
    assert {lid for lid, how in streamed.items() if how != "none"} == nonempty
    if city == "uozu":  # its master holds road segments out of id order: the SQL path
        assert streamed["road_segment"] == "sql" and streamed["parcel"] == "scan"
    for lid in plans:
        a, b = whole[lid], batched[lid]
        assert (a.features, a.withheld, a.bbox, a.columns) == (
            b.features, b.withheld, b.bbox, b.columns), lid
    assert _gpkg_content(tmp_path / "batched.gpkg") == _gpkg_content(tmp_path / "whole.gpkg")
