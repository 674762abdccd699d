"""Open data downloads of a real release, read back by GDAL: counts, values, BOM, headers."""

from __future__ import annotations

import codecs
import csv
import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio
import pytest
import shapely
from publish_fixtures import SHELTERS, isolated_site_builders, make_project

from config import Project, load_project
from config.errors import ConfigError
from config.messages import text
from config.models import OpenDataLayout
from etl import readers
from publish.build import opendata, publish

#: the shelters' standard layout, in their spec
LAYOUT = """
opendata:
  standard: evacuation_space
  where: flood                      # the list of sites designated for floods
  columns:
    ID: shelter_id
    名称: name
    想定収容人数: capacity
    災害種別_洪水: {field: flood, format: flag}
    地方公共団体名: {const: 富山県魚津市}
"""
NOTE = """  opendata:
    note: {ja: 公共データ利用規約 (第1.0版) とも互換です, en: Compatible with the PDL 1.0}
"""


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Any, dict[str, Any]]:
    root = tmp_path_factory.mktemp("od")
    make_project(root, extra_specs={"shelters": textwrap.dedent(SHELTERS) + LAYOUT})
    cfg = root / "config" / "project.yml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + NOTE, encoding="utf-8")
    project = load_project(root)
    with isolated_site_builders():
        res = publish(project)  # writes the downloads into the release (publish.build.answers)
    catalog = json.loads((res.path / opendata.OPENDATA_DIR / "index.json").read_text(
        encoding="utf-8"))["layers"]
    return project, res, catalog


def read_csv(path: Path) -> tuple[bytes, list[list[str]]]:
    raw = path.read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    return raw, rows


def test_every_public_layer_in_three_formats(release: tuple[Project, Any, dict]) -> None:
    _, res, catalog = release
    out = res.path / opendata.OPENDATA_DIR
    assert set(catalog) == {"sewer_pipes", "shelters"}
    names = {f["file"] for e in catalog.values() for f in e["files"]}
    assert names == {"sewer_pipes.gpkg", "sewer_pipes.geojson", "sewer_pipes.csv",
                     "shelters.gpkg", "shelters.geojson", "shelters.csv",
                     "162043_evacuation_space.gpkg", "162043_evacuation_space.geojson",
                     "162043_evacuation_space.csv"}
    assert {p.name for p in out.iterdir()} == names | {"index.json", "README.txt"}
    for lid in ("sewer_pipes", "shelters"):
        store = pyogrio.read_dataframe(res.store, layer=lid)
        for fmt in ("gpkg", "geojson"):
            got = pyogrio.read_dataframe(out / f"{lid}.{fmt}")
            assert len(got) == len(store) == res.counts[lid], (lid, fmt)
            got = got.sort_values("fid").reset_index(drop=True)
            exp = store.sort_values("fid").reset_index(drop=True)
            for col in [c for c in exp.columns if c != exp.geometry.name]:
                a, b = exp[col].astype("string"), got[col].astype("string")
                if col == "opened" and fmt == "geojson":  # GDAL reads ISO dates as dates
                    b = pd.to_datetime(got[col]).dt.strftime("%Y-%m-%d").astype("string")
                assert a.fillna("∅").tolist() == b.fillna("∅").tolist(), (lid, fmt, col)
            assert shapely.equals_exact(exp.geometry.values, got.geometry.values,
                                        tolerance=1e-7).all(), (lid, fmt)


def test_csv_bom_headers_and_values(release: tuple[Project, Any, dict]) -> None:
    _, res, _ = release
    out = res.path / opendata.OPENDATA_DIR
    raw, rows = read_csv(out / "shelters.csv")
    assert raw.startswith(codecs.BOM_UTF8) and b"\r\n" in raw
    assert rows[0] == ["公開ID", "番号", "名称", "想定収容人数", "洪水", "指定日", "緯度", "経度"]
    store = pyogrio.read_dataframe(res.store, layer="shelters").sort_values("fid")
    body = sorted(rows[1:])
    assert len(body) == len(store) == 9
    first = store.iloc[0]
    assert body[0][:6] == [first["fid"], first["shelter_id"], first["name"],
                           str(first["capacity"]), "1" if first["flood"] else "0",
                           first["opened"]]
    assert float(body[0][6]) == pytest.approx(first.geometry.y, abs=1e-7)
    assert float(body[0][7]) == pytest.approx(first.geometry.x, abs=1e-7)
    # lines: WKT in CRS84, read back identical to the store's geometry (7 decimals)
    raw, rows = read_csv(out / "sewer_pipes.csv")
    assert raw.startswith(codecs.BOM_UTF8)
    assert rows[0] == ["公開ID", "管きょ番号", "管種", "管径", "延長", "布設年度", "地区",
                       "管種 (日本語名)", "管種 (英語名)", "WKT"]
    pipes = pyogrio.read_dataframe(res.store, layer="sewer_pipes").set_index("fid")
    assert len(rows) - 1 == len(pipes) == 31
    for row in rows[1:]:
        g = shapely.from_wkt(row[-1])
        assert shapely.equals_exact(g, pipes.loc[row[0]].geometry, tolerance=1e-7)
        assert row[7] == pipes.loc[row[0], "material_ja"]


def test_standard_layout_columns_rows_and_name(release: tuple[Project, Any, dict]) -> None:
    _, res, catalog = release
    out = res.path / opendata.OPENDATA_DIR
    std = opendata.standards()["evacuation_space"]
    raw, rows = read_csv(out / "162043_evacuation_space.csv")
    assert raw.startswith(codecs.BOM_UTF8)
    assert rows[0] == std.columns and len(std.columns) == 39
    store = pyogrio.read_dataframe(res.store, layer="shelters")
    flood = store[store["flood"]].sort_values("shelter_id")
    assert len(rows) - 1 == len(flood) == 4  # only the sites designated for floods
    got = {r[1]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    for _, s in flood.iterrows():
        r = got[s["shelter_id"]]
        assert r["全国地方公共団体コード"] == "162043" and r["地方公共団体名"] == "富山県魚津市"
        assert r["名称"] == s["name"] and r["想定収容人数"] == str(s["capacity"])
        assert r["災害種別_洪水"] == "1" and r["災害種別_津波"] == "" and r["URL"] == ""
        assert float(r["緯度"]) == pytest.approx(s.geometry.y, abs=1e-7)
        assert float(r["経度"]) == pytest.approx(s.geometry.x, abs=1e-7)
    g = pyogrio.read_dataframe(out / "162043_evacuation_space.gpkg")
    assert list(g.columns[:-1]) == std.columns and len(g) == 4
    assert sorted(g["ID"]) == sorted(flood["shelter_id"])
    j = pyogrio.read_dataframe(out / "162043_evacuation_space.geojson")
    assert sorted(j["名称"]) == sorted(flood["name"])
    assert catalog["shelters"]["standards"]["evacuation_space"]["ja"] == "指定緊急避難場所一覧"


def test_licence_and_source_travel_with_the_files(release: tuple[Project, Any, dict]) -> None:
    project, res, _ = release
    out = res.path / opendata.OPENDATA_DIR
    spec = project.specs["shelters"]
    credit = text("opendata_credit", source_ja=spec.attribution.ja,
                  source_en=spec.attribution.en, license=spec.license, url=spec.license_url)
    readme = (out / "README.txt").read_text(encoding="utf-8-sig")
    assert credit.split(" / ")[0] in readme and credit.split(" / ")[1] in readme
    assert "公共データ利用規約 (第1.0版) とも互換です" in readme
    assert "162043_evacuation_space.csv [指定緊急避難場所一覧]: 4" in readme
    meta = pyogrio.read_info(out / "shelters.gpkg")["layer_metadata"]
    assert credit in meta["DESCRIPTION"]
    gj = json.loads((out / "shelters.geojson").read_text(encoding="utf-8"))
    assert credit in gj["description"] and gj["name"] == "shelters"
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    sh = index["layers"]["shelters"]
    assert sh["license"] == "CC-BY-4.0" and sh["data_date"] == "2025-03-31"
    assert sh["attribution"] == spec.attribution.model_dump()
    files = {f["file"]: f for f in sh["files"]}
    assert files["shelters.csv"]["features"] == 9
    assert files["162043_evacuation_space.csv"]["standard"] == "evacuation_space"
    assert files["shelters.gpkg"]["bytes"] == (out / "shelters.gpkg").stat().st_size


def _with_layout(project: Project, lid: str, layout: OpenDataLayout) -> Project:
    specs = {**project.specs, lid: project.specs[lid].model_copy(update={"opendata": layout})}
    return Project(project.root, project.config, specs, project.codelists, project.spec_hashes)


def test_mapping_errors_name_file_column_and_fix(release: tuple[Project, Any, dict],
                                                 tmp_path: Path) -> None:
    project, res, _ = release
    std = opendata.standards()["evacuation_space"]
    bad = _with_layout(project, "shelters", OpenDataLayout(standard="evacuation_space",
                                                           columns={"名前": "name"}))
    with pytest.raises(ConfigError) as e:
        opendata.check_layouts(bad)
    assert str(e.value) == text("opendata_column", file="layers/shelters.yml", column="名前",
                                standard="指定緊急避難場所一覧", known=", ".join(std.columns))
    bad = _with_layout(project, "shelters", OpenDataLayout(standard="evacuation_spaces"))
    with pytest.raises(ConfigError) as e:
        opendata.release_artifact(bad, res.store, tmp_path)
    assert str(e.value) == text("opendata_standard", file="layers/shelters.yml",
                                standard="evacuation_spaces", known="evacuation_space")
    # an internal field is not a public one: said when the project loads
    (project.root / "layers" / "shelters.yml").write_text(
        textwrap.dedent(SHELTERS) + LAYOUT.replace("想定収容人数: capacity",
                                                   "電話番号: manager_phone"), encoding="utf-8")
    try:
        with pytest.raises(ConfigError) as e:
            load_project(project.root)
        public = [n for n, f in project.specs["shelters"].fields.items()
                  if f.visibility == "public"]
        assert str(e.value) == text("opendata_field", file=str(
            project.root / "layers" / "shelters.yml"), key="opendata.columns.電話番号",
            field="manager_phone", known=", ".join(public))
    finally:
        (project.root / "layers" / "shelters.yml").write_text(
            textwrap.dedent(SHELTERS) + LAYOUT, encoding="utf-8")


def test_a_failing_answer_leaves_the_previous_release(release: tuple[Project, Any, dict]
                                                      ) -> None:
    """Open data, search, routes and feeds are built inside the release: when one fails, the
    publish fails as a whole and the previous release stays current and complete."""
    from publish.build import release as rel
    project, res, _ = release
    before = rel.list_releases(project.public_dir)
    assert rel.current_id(project.public_dir) == res.release_id
    bad = _with_layout(project, "shelters", OpenDataLayout(standard="evacuation_spaces"))
    with isolated_site_builders(), pytest.raises(ConfigError) as e:
        publish(bad)
    assert e.value.key == "opendata_standard"
    assert rel.current_id(project.public_dir) == res.release_id
    assert rel.list_releases(project.public_dir) == before
    assert sorted(p.name for p in (project.public_dir / "releases").iterdir()) == before
    # a layout the engine does not know fails before anything is written (no new folder);
    # an answer failing after the store is written takes its release folder with it
    from publish.build import answers

    def broken(*_a: Any, **_k: Any) -> None:
        raise ConfigError("opendata_standard", file="x", standard="y", known="z")

    with isolated_site_builders(), pytest.MonkeyPatch.context() as mp, \
            pytest.raises(ConfigError):
        mp.setattr(answers.changes, "release_changes", broken)
        publish(project)
    assert rel.current_id(project.public_dir) == res.release_id
    assert sorted(p.name for p in (project.public_dir / "releases").iterdir()) == before


# ---- streamed downloads (issue 17): the same files as the whole-layer path

#: the SQLite header's file change counter and version-valid-for number: GDAL commits once per
#: Arrow batch written, so a streamed GeoPackage counts more commits (content identical)
SQLITE_COUNTERS = (slice(24, 28), slice(92, 96))


def _gpkg_bytes(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    for s in SQLITE_COUNTERS:
        data[s] = bytes(4)
    return bytes(data)


def with_nulls(store: Path, dest: Path, variant: str) -> Path:
    """A copy of the public store with NULLs that change a whole-layer read's dtypes: an
    integer column with a NULL is float, a boolean one object, in every row of the layer."""
    import shutil
    import sqlite3

    dest.mkdir(parents=True, exist_ok=True)
    copy = dest / "public.gpkg"
    shutil.copyfile(store, copy)
    con = sqlite3.connect(copy)
    for fn in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):  # R-tree triggers
        con.create_function(fn, 1, lambda g: 0)
    if variant == "late":  # NULLs only after the first batches
        con.execute("UPDATE sewer_pipes SET diameter_mm = NULL WHERE rid > 20")
        con.execute("UPDATE shelters SET flood = NULL WHERE rid > 7")
        con.execute("UPDATE shelters SET capacity = NULL")
    elif variant == "all":  # every value NULL: the whole layer's column is text
        con.execute("UPDATE shelters SET flood = NULL")
        con.execute("UPDATE sewer_pipes SET install_fy = NULL, district = NULL")
    elif variant == "declared":  # a declared type the rows do not have: written whole
        con.execute("UPDATE gpkg_geometry_columns SET geometry_type_name = 'MULTILINESTRING' "
                    "WHERE table_name = 'sewer_pipes'")
    elif variant == "mixed":  # no one declared type: not streamed at all
        con.execute("UPDATE gpkg_geometry_columns SET geometry_type_name = 'GEOMETRY' "
                    "WHERE table_name = 'sewer_pipes'")
    con.commit()
    con.close()
    return copy


def assert_same_downloads(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        if name.endswith(".gpkg"):
            assert _gpkg_bytes(a / name) == _gpkg_bytes(b / name), name
        elif name == "index.json":  # the GeoPackages' sha256 differ by the counters above
            ia, ib = (json.loads((d / name).read_text(encoding="utf-8")) for d in (a, b))
            for idx in (ia, ib):
                for e in idx["layers"].values():
                    for f in e["files"]:
                        if f["format"] == "gpkg":
                            del f["sha256"]
            assert ia == ib
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("variant", ["as is", "late", "all"])
def test_store_frames_are_the_whole_layer_in_batches(release: tuple[Project, Any, dict],
                                                     tmp_path: Path, variant: str) -> None:
    _, res, _ = release
    store = with_nulls(res.store, tmp_path, variant)
    for lid in ("sewer_pipes", "shelters"):
        whole = pyogrio.read_dataframe(store, layer=lid, use_arrow=True)
        shape = opendata.layer_shape(store, lid)
        parts = list(opendata.store_frames(store, lid, None, 7, shape))
        assert [len(p) for p in parts] == [7] * (len(whole) // 7) + (
            [len(whole) % 7] if len(whole) % 7 else [])
        for i, part in enumerate(parts):
            exp = whole.iloc[i * 7:(i + 1) * 7].reset_index(drop=True)
            pd.testing.assert_frame_equal(part.reset_index(drop=True), exp, check_exact=True)


#: variant -> whether sewer_pipes' own files are streamed (else the whole-layer fallback)
STREAMED = {"as is": True, "late": True, "all": True, "declared": False, "mixed": False}


# the crafted declared types: GDAL says so when reading and writing them
@pytest.mark.filterwarnings("ignore:geometry column type for layer:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:A geometry of type LINESTRING is inserted:RuntimeWarning")
@pytest.mark.parametrize("variant", list(STREAMED))
def test_streamed_downloads_equal_whole_layer_downloads(
        release: tuple[Project, Any, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        variant: str) -> None:
    """Batches of 7 (in this process, and in the pool of forked writers) give the files of the
    whole-layer path: CSV, GeoJSON, README byte for byte; GeoPackages byte for byte but for the
    SQLite header's commit counters; index.json but for those files' sha256."""
    project, res, _ = release
    monkeypatch.setenv("OGR_CURRENT_DATE", "2026-01-01T00:00:00Z")  # gpkg_contents stamps
    store = with_nulls(res.store, tmp_path / "store", variant)
    whole = opendata.release_artifact(project, store, tmp_path / "whole", batch_rows=None)
    streamed = opendata.release_artifact(project, store, tmp_path / "streamed", batch_rows=7)
    monkeypatch.setattr(opendata, "POOL_ROWS", 0)
    pooled = opendata.release_artifact(project, store, tmp_path / "pooled", batch_rows=7)
    out = opendata.OPENDATA_DIR
    assert_same_downloads(tmp_path / "whole" / out, tmp_path / "streamed" / out)
    assert_same_downloads(tmp_path / "whole" / out, tmp_path / "pooled" / out)
    counts = [[f["features"] for e in cat.values() for f in e["files"]]
              for cat in (whole, streamed, pooled)]
    assert counts[0] == counts[1] == counts[2]
    assert counts[0][:6] == [31, 31, 31, 9, 9, 9]
    # streamed (more commits than the whole layer's) or, where the rows do not allow it,
    # written whole by the fallback
    for d in ("streamed", "pooled"):
        gp = tmp_path / d / out / "sewer_pipes.gpkg"
        counter = gp.read_bytes()[24:28]
        whole_counter = (tmp_path / "whole" / out / "sewer_pipes.gpkg").read_bytes()[24:28]
        assert (counter != whole_counter) is STREAMED[variant], d
    assert bool(opendata._stream_tasks(project, store, "sewer_pipes", tmp_path / "x", 7)) is (
        variant != "mixed")


def test_file_digest_reads_in_chunks(tmp_path: Path) -> None:
    """A file over several of the reader's 1 MiB chunks (and a part of one): the digest of all
    its bytes (one sha256 for the ETL's source hashes and the downloads) and its size."""
    import hashlib

    p = tmp_path / "x.bin"
    data = bytes(range(256)) * 10_000 + b"tail"
    p.write_bytes(data)
    assert opendata.file_digest(p) == (hashlib.sha256(data).hexdigest(), len(data))
    assert opendata.file_digest(p)[0] == readers.file_hash([p])
