"""The sample generator (samples/uozu.py) and the shipped specs (layers/, config/project.yml).

The sample must look like the real exports (cp932 DBF without .cpg, Tokyo datum without .prj,
JGD2000 with .prj ...), be byte-for-byte deterministic, lie inside the real city once the right
datum grid is applied, and carry exactly the planted bad records that ``PLANTED`` announces.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import unicodedata
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import yaml

from config.models import CodeList, LayerSpec, ProjectConfig
from samples import uozu as S

REPO = Path(__file__).resolve().parent.parent
SCALE = 0.05
SVC = S.service  # 給水装置 and 取付管 / 公共ます (samples/uozu_service.py)
CP932_SHP = [S.ROAD, S.SEWER_PIPE, S.SEWER_MANHOLE, S.WATER_PIPE, S.WATER_VALVE, S.PARCEL,
             *SVC.FILES]
TOKYO_FILES = (S.SEWER_PIPE, S.SEWER_MANHOLE, SVC.SEWER_INLET, SVC.SEWER_LATERAL)
JGD2000_FILES = (S.WATER_PIPE, S.WATER_VALVE, SVC.WATER_SERVICE, SVC.WATER_METER)
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("sample") / "raw"
    seen: list[tuple[str, int, int]] = []
    counts = S.generate(out, scale=SCALE, seed=42, progress=lambda f, i, n: seen.append((f, i, n)))
    assert [s[0] for s in seen] == list(counts) and seen[-1][1:] == (len(S.FILES), len(S.FILES))
    return out, counts


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _forward(geoms: np.ndarray, template: str) -> np.ndarray:
    """What the ETL does: the GSI grid pipeline, forward."""
    t = S._pipeline(template)
    return shapely.transform(geoms, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


def _read(root: Path, rel: str) -> gpd.GeoDataFrame:
    enc = {"encoding": "cp932"} if rel in CP932_SHP else {}
    return pyogrio.read_dataframe(root / rel, **enc)


def _truth(root: Path, rel: str) -> np.ndarray:
    """Geometries of a raw file in EPSG:6675, with the transform the layer spec implies."""
    df = _read(root, rel)
    if rel in TOKYO_FILES:
        return _forward(df.geometry.values, S.TOKYO_PIPELINE)
    if rel in JGD2000_FILES:
        return _forward(df.geometry.values, S.JGD2000_PIPELINE)
    if df.crs is None:
        df = df.set_crs("OGC:CRS84")
    return df.to_crs(S.TARGET_CRS).geometry.values


# ------------------------------------------------------------------------------ files


def test_writes_every_file_with_counts(raw: tuple[Path, dict[str, int]]) -> None:
    root, counts = raw
    assert list(counts) == list(S.FILES)
    for rel in S.FILES:
        assert (root / rel).is_file(), rel
        assert counts[rel] > 0, rel
    for rel in [*CP932_SHP, S.FLOOD]:
        for ext in (".shp", ".shx", ".dbf"):
            assert (root / rel).with_suffix(ext).is_file()
        assert pyogrio.read_info(root / rel, encoding="cp932" if rel in CP932_SHP else None)[
            "features"] == counts[rel]
    assert counts[S.SHELTER_EMERGENCY] == 56 and counts[S.SHELTER_EVACUATION] == 33
    assert counts[S.TAX] == counts[S.PARCEL] + S.unmatched_tax_rows(SCALE)


def test_deterministic_per_seed(raw: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    root, counts = raw
    again = S.generate(tmp_path / "again", scale=SCALE, seed=42)
    assert again == counts
    assert _hashes(tmp_path / "again") == _hashes(root)
    other = S.generate(tmp_path / "other", scale=SCALE, seed=7)
    h1, h2 = _hashes(root), _hashes(tmp_path / "other")
    assert h1[S.ROAD.replace(".shp", ".dbf")] != h2[S.ROAD.replace(".shp", ".dbf")]
    # hazards and the real shelter files do not depend on the seed
    for rel in (S.LANDSLIDE, S.TSUNAMI, S.SHELTER_EMERGENCY):
        assert h1[rel] == h2[rel]
    assert other[S.FLOOD] == counts[S.FLOOD]


def test_shelters_are_copied_byte_for_byte(raw: tuple[Path, dict[str, int]]) -> None:
    root, _ = raw
    for rel, ref in ((S.SHELTER_EMERGENCY, "162043_emergency.json"),
                     (S.SHELTER_EVACUATION, "162043_evacuation.json")):
        assert (root / rel).read_bytes() == (REPO / "data/reference" / ref).read_bytes()


@pytest.mark.parametrize("rel", CP932_SHP)
def test_dbf_is_cp932_without_cpg(raw: tuple[Path, dict[str, int]], rel: str) -> None:
    root, _ = raw
    path = root / rel
    assert not path.with_suffix(".cpg").exists()
    head = path.with_suffix(".dbf").read_bytes()[:32]
    assert head[29] == 0  # language driver id "not set", like real exports
    df = pyogrio.read_dataframe(path, encoding="cp932", read_geometry=False)
    texts = [c for c in df.columns if JAPANESE.search(c)]
    assert texts, "Japanese field names"
    assert all(len(c.encode("cp932")) <= 10 for c in df.columns)  # DBF: 10 bytes per name
    values = "".join(str(v) for v in df.select_dtypes(exclude="number").to_numpy().ravel()[:5000])
    assert JAPANESE.search(values), "Japanese values decode"


def test_crs_declarations(raw: tuple[Path, dict[str, int]]) -> None:
    root, _ = raw
    for rel in TOKYO_FILES:
        assert not (root / rel).with_suffix(".prj").exists(), rel
    for rel, crs in ((S.ROAD, "EPSG:6675"), (S.PARCEL, "EPSG:6675"),
                     *((r, "EPSG:2449") for r in JGD2000_FILES), (S.FLOOD, "EPSG:6668"),
                     (S.LANDSLIDE, "EPSG:6668"), (S.TSUNAMI, "EPSG:6668")):
        assert pyogrio.read_info(root / rel)["crs"] == crs, rel
    assert (root / S.FLOOD).with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    codes = pd.read_csv(root / S.WATER_CODES, encoding="cp932", dtype=str)
    assert list(codes.columns) == ["コード", "略号", "名称"]
    assert codes.iloc[0].tolist() == ["1", "DIP", "ダクタイル鋳鉄管"]


def test_everything_inside_the_city(raw: tuple[Path, dict[str, int]]) -> None:
    """After the right datum transform, all geometry is within the boundary + 500 m, except the
    planted far-away road segment (and the manhole card without coordinates)."""
    root, _ = raw
    city = S.load_world().boundary.buffer(500.0)
    for rel in S.FILES:
        if rel.endswith(".csv"):
            continue
        g = _truth(root, rel)
        live = ~shapely.is_missing(g)
        outside = live & ~shapely.within(g, city)
        if rel == S.ROAD:
            ids = _read(root, rel)["区間番号"].to_numpy()
            assert list(ids[outside]) == ["99999-001"]
        else:
            assert not outside.any(), (rel, int(outside.sum()))
        if rel == S.SEWER_MANHOLE:
            assert int((~live).sum()) == 1
        else:
            assert live.all(), rel


def test_tokyo_datum_really_is_tokyo(raw: tuple[Path, dict[str, int]]) -> None:
    """The sewer file is ~435 m off if read as JGD2011; after the grid it runs beside the roads."""
    root, _ = raw
    roads = shapely.STRtree(_read(root, S.ROAD).geometry.values)
    raw_pts = shapely.get_point(_read(root, S.SEWER_PIPE).geometry.values, 0)
    fixed = shapely.get_point(_truth(root, S.SEWER_PIPE), 0)
    shift = shapely.distance(raw_pts, fixed)
    assert shift.min() > 420 and shift.max() < 450
    _, d_fixed = roads.query_nearest(fixed, return_distance=True)
    assert np.median(d_fixed) < 5


def test_sewer_pipes_start_and_end_at_their_manholes(raw: tuple[Path, dict[str, int]]) -> None:
    root, _ = raw
    pipes, mh = _read(root, S.SEWER_PIPE), _read(root, S.SEWER_MANHOLE)
    pos = dict(zip(mh["人孔番号"], mh.geometry.values, strict=True))
    g = pipes.geometry.values
    for col, end in (("上流人孔", 0), ("下流人孔", -1)):
        ref = pipes[col].map(pos)
        have = ref.notna().to_numpy()
        d = shapely.distance(shapely.get_point(g[have], end), ref[have].to_numpy())
        assert d.max() < 0.002
    assert (pipes["勾配"] > 0).all()


def test_service_connections_join_lots_to_mains(raw: tuple[Path, dict[str, int]]) -> None:
    """給水管: main -> lot line -> meter (1 m inside its lot); 取付管: inlet (inside its lot) ->
    the sewer pipe it names. Every meter / inlet lies in the parcel it names (大字 + 地番)."""
    root, counts = raw
    assert [counts[f] for f in SVC.FILES] == [797, 797, 723, 723]  # SCALE 0.05, seed 42
    parcels = _read(root, S.PARCEL)
    lots = {(o, c): g for o, c, g in zip(parcels["大字名"], parcels["地番"],
                                           parcels.geometry.values, strict=True)}
    water = {k: g for k, g in zip(_read(root, S.WATER_PIPE)["管路番号"],
                                  _truth(root, S.WATER_PIPE), strict=True)}
    sewer = {k: g for k, g in zip(_read(root, S.SEWER_PIPE)["管渠番号"],
                                  _truth(root, S.SEWER_PIPE), strict=True)}
    for pipes_rel, points_rel, key, mains, main_col, start_on_point in (
            (SVC.WATER_SERVICE, SVC.WATER_METER, "量水器番号", water, "取出管路", False),
            (SVC.SEWER_LATERAL, SVC.SEWER_INLET, "ます番号", sewer, "接続管渠", True)):
        pipes, points = _read(root, pipes_rel), _read(root, points_rel)
        g_pipes, g_points = _truth(root, pipes_rel), _truth(root, points_rel)
        at = dict(zip(points[key], g_points, strict=True))
        assert set(pipes[key]) == set(at)
        end = shapely.get_point(g_pipes, 0 if start_on_point else -1)
        assert shapely.distance(end, pipes[key].map(at).to_numpy()).max() < 0.01
        other = shapely.get_point(g_pipes, -1 if start_on_point else 0)
        main = pipes[main_col].map(mains).to_numpy()
        assert shapely.distance(other, main).max() < 0.01
        lot = [lots[(o, c)] for o, c in zip(points["大字名"], points["地番"], strict=True)]
        # (within 1 cm: the planted bow-tie lot is not a valid polygon until the ETL repairs it)
        assert shapely.dwithin(g_points, np.array(lot, dtype=object), 0.01).all(), points_rel
    svc = _read(root, SVC.WATER_SERVICE)
    assert svc["口径"].isin([13, 20, 25, 40, 50]).all()
    assert set(svc["管種"]) <= {"LP", "SGP", "PE", "HIVP", "XPEP", "PBP", "SSP", "CU"}


# ------------------------------------------------------------------------------ planted records


def test_planted_contract() -> None:
    assert S.planted(1.0) == S.PLANTED
    p = S.planted(0.3)
    assert p["parcel_tax"] == {"JOIN_UNMATCHED": S.unmatched_tax_rows(0.3)}
    assert {k: v for k, v in p.items() if k != "parcel_tax"} == S.PLANTED_FIXED
    assert S.PLANTED["parcel_tax"]["JOIN_UNMATCHED"] == 125


def _chiban_keys(values: pd.Series) -> pd.Series:
    """地番 as the ETL normalizes it ("１２３－４" / "123番4" / "123の4" -> "123-4")."""
    try:
        from etl.normalize import apply_normalizer
    except ImportError:  # pragma: no cover - the normalizer belongs to another module
        def one(s: str) -> str:
            m = re.fullmatch(r"(\d+)(?:番地?|の|-)?(\d+)?", unicodedata.normalize("NFKC", s))
            assert m, s
            return m[1] + (f"-{int(m[2])}" if m[2] else "")
        return values.map(one)
    out = apply_normalizer("chiban", values)
    assert not out["!bad"].any()
    return out[""].astype(str)


def test_planted_records_are_in_the_files(raw: tuple[Path, dict[str, int]]) -> None:
    root, _ = raw
    pipes, mh = _read(root, S.SEWER_PIPE), _read(root, S.SEWER_MANHOLE)
    p = S.planted(SCALE)
    assert int(pipes["管渠番号"].duplicated().sum()) == p["sewer_pipe"]["DUPLICATE_ID"]
    known = set(mh["人孔番号"])
    missing = ~pipes["上流人孔"].isin(known) | ~pipes["下流人孔"].isin(known)
    assert int(missing.sum()) == p["sewer_pipe"]["MISSING_REFERENCE"]
    assert int((pipes["管種"] == "XX").sum()) == p["sewer_pipe"]["UNKNOWN_CODE"]
    assert int(mh.geometry.isna().sum()) == p["sewer_manhole"]["NULL_GEOMETRY"]
    water = _read(root, S.WATER_PIPE)
    assert int((water["口径"] > 3000).sum()) == p["water_pipe"]["OUT_OF_RANGE"]
    parcels = _read(root, S.PARCEL)
    assert int((~shapely.is_valid(parcels.geometry.values)).sum()) == p["parcel"]["REPAIRED"]
    assert parcels["筆ID"].is_unique
    # the tax ledger spells 地番 differently; only the planted rows match no parcel
    pk = set(parcels["大字名"] + ":" + _chiban_keys(parcels["地番"]))
    tax = pd.read_csv(root / S.TAX, encoding="cp932", dtype=str)
    assert len(pk) == len(parcels)
    tk = tax["大字名"] + ":" + _chiban_keys(tax["地番"])
    assert int((~tk.isin(pk)).sum()) == p["parcel_tax"]["JOIN_UNMATCHED"]
    assert (tax["地番"] != _chiban_keys(tax["地番"])).any()  # variant spellings present
    assert tax["物件番号"].is_unique


def test_flood_rank2_meets_a_landslide_zone(raw: tuple[Path, dict[str, int]]) -> None:
    root, _ = raw
    pt = shapely.Point(S.OVERLAP_POINT_LONLAT)
    flood = gpd.read_file(root / S.FLOOD)
    hit = flood[flood.contains(pt)]
    assert hit["A31a_205"].tolist() == [2]
    slide = gpd.read_file(root / S.LANDSLIDE)
    assert slide.contains(pt).any()
    # ranks of one river never overlap each other
    for _, grp in flood.groupby("A31a_202"):
        by_rank = grp.dissolve("A31a_205").to_crs(S.TARGET_CRS)
        geoms = by_rank.geometry.values
        for i in range(len(geoms)):
            for j in range(i + 1, len(geoms)):
                assert shapely.intersection(geoms[i], geoms[j]).area < 1.0
    # special warning zones lie inside their warning zone
    slide = slide.to_crs(S.TARGET_CRS)
    warn = dict(zip(slide["A33_004"], slide.geometry, strict=True))
    for zid, g in zip(slide["A33_004"], slide.geometry, strict=True):
        if zid.endswith("R"):
            assert g.difference(warn[zid[:-1]]).area < 1.0


# ------------------------------------------------------------------------------ specs


def _yaml(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_every_spec_validates() -> None:
    ProjectConfig.model_validate(_yaml(REPO / "config/project.yml"))
    codelists = {p.stem: CodeList.model_validate(_yaml(p))
                 for p in sorted((REPO / "layers/codelists").glob("*.yml"))}
    assert all(cl.id == stem for stem, cl in codelists.items())
    specs = {p.stem: LayerSpec.model_validate(_yaml(p))
             for p in sorted((REPO / "layers").glob("*.yml"))}
    assert all(s.id == stem for stem, s in specs.items())
    expected = {"road_segment", "sewer_pipe", "sewer_manhole", "water_pipe", "water_valve",
                "parcel", "parcel_tax", "flood_zone", "tsunami_zone", "landslide_zone",
                "shelter"}
    assert expected <= set(specs)
    for s in specs.values():
        for f in s.fields.values():
            assert f.codelist is None or f.codelist in codelists, (s.id, f.codelist)
        for src in s.sources:
            assert src.path in S.FILES, (s.id, src.path)
        if s.visibility == "public":
            assert s.fields[s.id_field].visibility == "public", s.id
    assert specs["parcel_tax"].visibility == "confidential"
    assert not specs["parcel_tax"].public_fields()
    assert "treatment_district" not in specs["sewer_pipe"].public_fields()
    assert "cover_type" not in specs["sewer_manhole"].public_fields()
    assert "land_cat_registered" not in specs["parcel"].public_fields()
    for name in ("joint_type", "status"):
        assert name not in specs["water_pipe"].public_fields()
    assert "cover_m" in specs["water_pipe"].public_fields()  # 土被り: public by city policy
    assert specs["water_service"].fields["user_name"].visibility == "confidential"
    assert "customer_no" not in specs["water_meter"].public_fields()
    LayerSpec.model_validate(_yaml(REPO / "docs/examples/moj_parcel.yml"))


def test_project_loads() -> None:
    from config import load_project

    project = load_project(REPO)
    assert project.config.city_code == "162043"
    assert set(project.order()) == set(project.specs)


def test_merge_quarantines_exactly_the_planted_records(raw: tuple[Path, dict[str, int]],
                                                       tmp_path: Path) -> None:
    """End to end on the sample: every quarantined record is a planted one, and vice versa."""
    from config import load_project
    from etl.pipeline import run_merge

    root, _ = raw
    proj = tmp_path / "proj"
    shutil.copytree(REPO / "config", proj / "config")
    shutil.copytree(REPO / "layers", proj / "layers")
    (proj / "data").mkdir()
    for d in ("reference", "grids"):
        os.symlink(REPO / "data" / d, proj / "data" / d)
    shutil.copytree(root, proj / "data" / "raw")
    manifest = run_merge(load_project(proj)).manifest
    want = S.planted(SCALE)
    for lid, layer in manifest["layers"].items():
        got: dict[str, int] = {}
        for s in layer["sources"]:
            for k, v in s["by_reason"].items():
                got[k] = got.get(k, 0) + v
        exp = {k: v for k, v in want.get(lid, {}).items() if k != "REPAIRED"}
        assert got == exp, lid
        assert layer["repaired"] == want.get(lid, {}).get("REPAIRED", 0), lid
    assert manifest["layers"]["shelter"]["features"] == 56
