"""The merge on the mini project: counts, conservation, lineage, change summary, runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config import load_project
from etl.pipeline import run_merge
from etl.stores import open_store


def merge(root: Path, **kw):
    return run_merge(load_project(root), **kw)


def master(root: Path, layer: str, **kw):
    """A master table through the project's store (GeoPackage or PostGIS)."""
    return open_store(load_project(root)).read_layer(layer, **kw)


def test_merge_counts_and_conservation(mini_store: Path) -> None:
    m = merge(mini_store).manifest
    for lid, L in m["layers"].items():
        for s in L["sources"]:
            assert s["read"] == s["merged"] + s["quarantined"], lid
    assert m["layers"]["sewer_pipe"]["features"] == 5
    assert m["layers"]["parcel_tax"]["sources"][0]["by_reason"] == {"JOIN_UNMATCHED": 1}
    q = master(mini_store, "_quarantine")
    assert list(q["record"]) == ["#5 T5"]
    assert json.loads(q["raw_attrs"][0])["所有者氏名"] == "不明"
    assert m["totals"]["read"] == m["totals"]["merged"] + m["totals"]["quarantined"]


def test_master_schema_crs_and_lineage(mini_store: Path) -> None:
    merge(mini_store)
    df = master(mini_store, "sewer_pipe")
    assert df.crs == "EPSG:6675"
    assert list(df["material"]) == ["HP", "VU", "VP", "HP", "HP"]
    assert list(df["install_fy"].astype("Int64")[:4]) == [1980, 2000, 1989, 1965]
    assert df["install_fy"].isna().tolist() == [False] * 4 + [True]
    assert list(df["install_fy_qual"]) == ["exact", "exact", "exact", "approx", "unknown"]
    assert df["install_fy_raw"].iloc[1] == "Ｈ１２"
    assert df["quality_flags"].iloc[1] == "sentinel:cover_up_m"
    row = df.iloc[0]
    assert row["source_system"] == "sewer_ledger"
    assert row["source_file"] == "sewer/PIPE.shp"
    assert row["source_record"] == "#1 P000"
    assert row["xy_transform"] == "Tokyo datum to JGD2011 (TKY2JGD + PatchJGD)"
    assert len(row["source_hash"]) == 16 and row["run_id"]
    # the Tokyo-datum export lands back on the truth within a millimetre (grid round trip)
    x0, y0 = df.geometry.iloc[0].coords[0]
    assert abs(x0 - 21600) < 0.001 and abs(y0 - 91302) < 0.001
    # spatial index on every layer
    store = open_store(load_project(mini_store))
    if store.kind == "gpkg":
        import sqlite3
        con = sqlite3.connect(mini_store / "data/merged/master.gpkg")
        names = {r[0] for r in con.execute("select name from sqlite_master")}
        assert any(n.startswith("rtree_sewer_pipe") for n in names)
    else:
        from sqlalchemy import text
        with store.engine.connect() as conn:
            idx = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE schemaname LIKE "
                                    ":p AND tablename = 'sewer_pipe'"),
                               {"p": f"{store.prefix}\\_run\\_%"}).scalars().all()
        assert any("USING gist (geometry)" in i for i in idx), idx


def test_transform_recorded_per_layer(mini_project: Path) -> None:
    m = merge(mini_project).manifest
    t = m["layers"]["sewer_pipe"]["sources"][0]["transform"]
    assert t["method"] == "grid" and t["accuracy_m"] == 0.2
    assert t["grids"] == ["TKY2JGD.tif", "touhokutaiheiyouoki2011.tif"]
    assert m["layers"]["road_segment"]["sources"][0]["transform"]["method"] == "identity"


def test_change_summary_and_runs_and_rollback(mini_store: Path) -> None:
    mini_project = mini_store
    first = merge(mini_project)
    import mini
    p = mini.pipes()
    p.loc[0, "管径"] = 400
    p = p.drop(index=4)
    p = p.set_geometry(mini.to_tokyo(p.geometry)).set_crs(None, allow_override=True)
    mini.write_shp(p, mini_project / "data/raw/sewer/PIPE.shp", prj=False)
    second = merge(mini_project)
    ch = second.manifest["layers"]["sewer_pipe"]["change"]
    assert (ch["added"], ch["changed"], ch["deleted"]) == (0, 1, 1)
    store = open_store(load_project(mini_project))
    assert [r["run_id"] for r in store.list_runs()] == [second.run_id, first.run_id]
    assert store.rollback() == first.run_id
    assert len(master(mini_project, "sewer_pipe")) == 5
    assert store.manifest()["run_id"] == first.run_id
    if store.kind == "gpkg":
        assert json.loads((mini_project / "data/merged/manifest.json").read_text())[
            "run_id"] == first.run_id


def test_partial_merge_keeps_other_layers(mini_store: Path) -> None:
    mini_project = mini_store
    first = merge(mini_project)
    second = merge(mini_project, only=["road_segment"])
    layers = set(open_store(load_project(mini_project)).layers())
    assert {"sewer_pipe", "parcel_tax", "road_segment", "_quarantine"} <= layers
    df = master(mini_project, "sewer_pipe")
    assert set(df["run_id"]) == {first.run_id}
    assert set(master(mini_project, "road_segment")["run_id"]) == {second.run_id}
    q = master(mini_project, "_quarantine")
    assert list(q["layer"]) == ["parcel_tax"]
    assert set(second.manifest["layers"]) >= {"sewer_pipe", "road_segment"}


def test_dry_run_writes_nothing(mini_project: Path) -> None:
    res = merge(mini_project, dry_run=True)
    assert res.run_dir is None
    assert not (mini_project / "data/merged").exists()


def test_reports_written(mini_store: Path) -> None:
    res = merge(mini_store)
    html = (res.run_dir / "report.html").read_text(encoding="utf-8")
    assert "件数一致 / counts add up" in html
    assert "旧日本測地系→JGD2011" in html and "JOIN_UNMATCHED" in html
    data = json.loads((res.run_dir / "report.json").read_text(encoding="utf-8"))
    assert data["quarantine_by_reason"] == {"JOIN_UNMATCHED": 1}
    assert (res.run_dir / "quarantine.csv").exists()


@pytest.mark.parametrize("layer", ["sewer_pipe"])
def test_only_with_dependencies(mini_project: Path, layer: str) -> None:
    res = merge(mini_project, only=[layer], dry_run=True)
    assert set(res.layers) == {"sewer_pipe", "sewer_manhole", "road_segment"}


def test_data_date_comes_from_the_spec(mini_project: Path) -> None:
    """Per source: a fixed date, a column's latest date, the DBF header; the file's mtime only
    when the spec asks for it (a copy changes it)."""
    import datetime as dt
    import os

    import pandas as pd

    from etl.readers import read_dbf_header
    tax = mini_project / "data/raw/tax/KAZEI.csv"
    os.utime(tax, (0, dt.datetime(2001, 2, 3, 12).timestamp()))
    m = merge(mini_project).manifest["layers"]
    assert m["parcel_tax"]["data_date"] == "2025-01-01"
    hdr = read_dbf_header(mini_project / "data/raw/road/ROAD.dbf", "l", "f").date
    assert m["road_segment"]["data_date"] == hdr and hdr is not None
    spec = mini_project / "layers/parcel_tax.yml"
    s = spec.read_text(encoding="utf-8")
    spec.write_text(s.replace("data_date: 2025-01-01", "data_date: {field: 更新日}"),
                    encoding="utf-8")
    df = pd.read_csv(tax, dtype=str, encoding="cp932")
    df["更新日"] = ["R6.3.31", "令和6年4月1日", "2024/03/01", "", "H31.4.30"]
    df.to_csv(tax, index=False, encoding="cp932")
    assert merge(mini_project).manifest["layers"]["parcel_tax"]["data_date"] == "2024-04-01"
    spec.write_text(s.replace("data_date: 2025-01-01", "allow_empty: false"), encoding="utf-8")
    os.utime(tax, (0, dt.datetime(2001, 2, 3, 12).timestamp()))
    L = merge(mini_project).manifest["layers"]["parcel_tax"]
    assert L["data_date"] is None
    assert L["warnings"] == ["tax/KAZEI.csv: データ時点が不明です。修正: ソースに data_date: "
                             "を書く / tax/KAZEI.csv: the data date is unknown. Fix: set "
                             "data_date: on the source"]
    spec.write_text(s.replace("data_date: 2025-01-01", "data_date: mtime"), encoding="utf-8")
    assert merge(mini_project).manifest["layers"]["parcel_tax"]["data_date"] == "2001-02-03"
