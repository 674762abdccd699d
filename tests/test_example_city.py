"""The second example city, 高松市 (Takamatsu, JGD2011 zone IV), configured by files only.

Why: "a new city adopts it by writing configuration, never code" is only true if a city with
another plane zone, other layer ids, other hazards and real, messy open data goes through the
same engine: sample -> validate -> merge -> publish, through the CLI, in a copy of
``examples/takamatsu``. Counts are exact: every planted error of the city's sample generator is
quarantined with its reason, every real record is accounted for.

The real open data is kept as published: the shelter list's "×" marks, its blank capacities,
the LINK CSVs, the JGD2000 deliverable outside the PatchJGD grid are what the engine must take.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
import yaml
from click.testing import CliRunner
from publish_fixtures import cli_serve, ogrinfo, readable
from pyproj import CRS, Transformer

import cli
from config import load_project
from examples.takamatsu.samples import generate as gen

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "takamatsu"
SCALE = 0.1
TARGET = "EPSG:6672"
# What the city's real open data holds (records per layer), as published.
REAL = {"hinanjo": 193, "tsunami_hinan_biru": 113, "donou": 9, "shobo": 13 + 96, "aed": 514,
        "tameike": 841}
# Nothing of another city may appear in what this city publishes: the first example city's name
# in any case and script, its municipal code, its plane zone (EPSG code and Japanese name).
FORBIDDEN = [re.compile(p) for p in (rb"(?i)uozu", "魚津".encode(), rb"(?<![\d.])162043(?!\d)",
                                     rb"(?<![\d.])6675(?!\d)", "第VII系".encode())]
# The engine's own command and environment variable: allowed in the example's instructions (its
# README and comments say how to run it), never in what it publishes.
PRODUCT = re.compile(rb"uozu-gis|UOZU_GIS_")


def other_city(data: bytes, *, product: bool = False) -> list[str]:
    """The FORBIDDEN patterns found in ``data`` (``product``: the engine's name is allowed)."""
    if product:
        data = PRODUCT.sub(b"", data)
    return [p.pattern.decode(errors="replace") for p in FORBIDDEN if p.search(data)]


def run(*args: str) -> Any:
    """``uozu-gis ARGS`` through click's runner (stdout and stderr apart)."""
    return CliRunner().invoke(cli.cli, list(args), catch_exceptions=False)


def copy_example(dst: Path) -> Path:
    """The example project in ``dst`` (without generated data); grids stay the repository's."""
    shutil.copytree(EXAMPLE, dst, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("raw", "merged", "public", "__pycache__"))
    cfg_path = dst / "config" / "project.yml"
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["grids_dir"] = str((EXAMPLE / cfg["grids_dir"]).resolve())
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A copy of the example with its sample exports written by ``uozu-gis sample``."""
    root = copy_example(tmp_path_factory.mktemp("takamatsu") / "proj")
    res = run("--project", str(root), "-q", "--json", "sample", "--scale", str(SCALE))
    assert res.exit_code == 0, res.output
    return root, json.loads(res.stdout)["files"]


def expected(lid: str, counts: dict[str, int]) -> tuple[int, dict[str, int]]:
    """(read, quarantine reasons) the specs and the generator promise for one layer."""
    spec = load_project(EXAMPLE).specs[lid]
    read = sum(counts[src.path] for src in spec.sources)
    reasons = {r: n for r, n in gen.PLANTED.get(lid, {}).items() if r != "REPAIRED"}
    return read, reasons


def quarantine_rows(root: Path, lid: str, reason: str) -> list[dict[str, Any]]:
    q = pyogrio.read_dataframe(root / "data/merged/master.gpkg", layer="_quarantine",
                               read_geometry=False)
    q = q[(q["layer"] == lid) & (q["reason_code"] == reason)]
    return [json.loads(a) for a in q["raw_attrs"]]


# ------------------------------------------------------------------ the configuration


def test_project_is_configured_for_its_own_zone_and_organisation() -> None:
    project = load_project(EXAMPLE)
    cfg = project.config
    assert (cfg.city.ja, cfg.city_code, cfg.target_crs) == ("高松市", "372013", TARGET)
    assert CRS.from_user_input(cfg.target_crs).name.endswith("Rectangular CS IV")
    assert project.grids_dir.resolve() == (EXAMPLE.parent.parent / "data/grids").resolve()
    grids = {g.file: g.outside for t in cfg.transforms for g in t.grids}
    assert set(grids) <= {p.name for p in project.grids_dir.iterdir()}
    # GSI: TKY2JGD must cover every point; the 2011 PatchJGD correction ends north of Kagawa
    assert grids == {"TKY2JGD.tif": "quarantine", "touhokutaiheiyouoki2011.tif": "unchanged"}
    assert cfg.boundary is not None and project.path(cfg.boundary.path).is_file()
    assert [p.id for p in cfg.publish.pages] == ["pipe", "hazard", "bousai"]
    assert cfg.publish.terms is not None and len(cfg.publish.terms.paragraphs) == 3
    # the tax ledger is confidential and granted by department, never public
    tax = project.specs["kazei_tochi"]
    assert tax.visibility == "confidential" and tax.public_fields() == []
    grants = {d.id: d.grants for d in cfg.departments}
    assert grants["shisanzei"].layers == ["kazei_tochi"]
    assert grants["kikikanri"].fields == {"kazei_tochi": ["tax_object_id", "owner_name",
                                                          "owner_address"]}
    # its own layer set: no layer id or code list of the first example city (repository root)
    first = EXAMPLE.parent.parent / "layers"
    assert not set(project.specs) & {p.stem for p in first.glob("*.yml")}
    assert not set(project.codelists) & {p.stem for p in (first / "codelists").glob("*.yml")}


def test_example_files_name_no_other_city() -> None:
    for path in sorted(EXAMPLE.rglob("*")):
        if path.is_file() and "data/raw" not in path.as_posix():
            assert other_city(path.read_bytes(), product=True) == [], path


def test_every_public_layer_is_on_a_declared_page_with_its_role() -> None:
    project = load_project(EXAMPLE)
    pages = {p.id for p in project.config.publish.pages}
    on_page: dict[str, set[str]] = {p: set() for p in pages}
    for lid, spec in project.specs.items():
        m = spec.map
        if spec.visibility != "public":
            assert m.pages == [], lid
            continue
        assert m.pages and set(m.pages) <= pages, lid
        for p in m.pages:
            on_page[p].add(f"{m.role}:{getattr(m, m.role).utility if m.role == 'pipe' else lid}")
        # every field a page reads is a public field of the layer
        assert set(m.fields_used()) <= set(spec.public_fields()), lid
        if m.color_by:
            cl = project.codelists[spec.fields[m.color_by].codelist]
            assert all(e.color for e in cl.codes.values()), (lid, cl.id)
    assert {"pipe:water", "pipe:sewer", "parcel:chiban", "structure:gesui_jinko"} <= on_page["pipe"]
    assert {"hazard:naisui_shinsui", "shelter:hinanjo"} <= on_page["hazard"]
    assert {"context:shobo", "context:aed", "shelter:hinanjo"} <= on_page["bousai"]
    hz = project.specs["naisui_shinsui"].map.hazard
    assert hz is not None and hz.kind == "inland_flood" and hz.rank_field == "depth_rank"
    ranks = project.codelists["naisui_shinsuishin"]
    assert [(c, e.min, e.max) for c, e in ranks.codes.items()] == [
        ("1", 0.1, 0.2), ("2", 0.2, 0.5), ("3", 0.5, 1.0), ("4", 1.0, 2.0), ("5", 2.0, None)]
    shelter = project.specs["hinanjo"].map.shelter
    assert shelter is not None and shelter.flags["inland_flood"] == "hz_inland_flood"


def test_reference_data_is_the_published_bytes() -> None:
    """Every file listed in the README's checksum block, and nothing unlisted but the docs."""
    ref = EXAMPLE / "data" / "reference"
    readme = (ref / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Checksums (sha256)")[1]
    sums = dict(reversed(line.split()) for line in block.splitlines()
                if re.fullmatch(r"[0-9a-f]{64}  \S+", line))
    assert len(sums) == 9
    for name, digest in sums.items():
        assert hashlib.sha256((ref / name).read_bytes()).hexdigest() == digest, name
    assert {p.name for p in ref.iterdir()} == {*sums, "README.md", "derive_boundary.py"}
    assert sum((ref / n).stat().st_size for n in sums) < 1_000_000


def test_sample_generator_is_deterministic(tmp_path: Path) -> None:
    a = gen.generate(tmp_path / "a", scale=0.03, seed=7)
    b = gen.generate(tmp_path / "b", scale=0.03, seed=7)
    assert a == b and set(a) == set(gen.FILES)
    for rel in sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                      if p.is_file()):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    c = gen.generate(tmp_path / "c", scale=0.03, seed=8)
    assert c[gen.INLAND_FLOOD] == a[gen.INLAND_FLOOD]  # hazards do not depend on the seed
    assert (tmp_path / "c" / gen.ROAD).with_suffix(".dbf").read_bytes() != (
        tmp_path / "a" / gen.ROAD).with_suffix(".dbf").read_bytes()


def test_sample_exports_look_like_the_source_systems(city: tuple[Path, dict[str, int]]) -> None:
    root, counts = city
    raw = root / "data" / "raw"
    for rel in (gen.ROAD, gen.WATER_PIPE, gen.SEWER_PIPE, gen.SEWER_MANHOLE, gen.PARCEL,
                gen.INLAND_FLOOD):
        shp = raw / rel
        assert not shp.with_suffix(".cpg").exists(), rel  # cp932 without a .cpg
        assert shp.with_suffix(".dbf").read_bytes()[29] == 0, rel  # language driver: not set
    crs = {rel: pyogrio.read_info(raw / rel, encoding="cp932")["crs"]
           for rel in (gen.ROAD, gen.SEWER_PIPE, gen.INLAND_FLOOD)}
    assert crs == {gen.ROAD: TARGET, gen.SEWER_PIPE: None, gen.INLAND_FLOOD: "EPSG:2446"}
    for name, n in gen.REAL_RECORDS.items():
        assert (raw / gen.OPENDATA / name).read_bytes() == (
            EXAMPLE / "data/reference" / name).read_bytes()
        assert counts[f"{gen.OPENDATA}/{name}"] == n
    # the JGD2000 export holds the JGD2011 truth (PatchJGD has no correction in Kagawa)
    zones = pyogrio.read_dataframe(raw / gen.INLAND_FLOOD, encoding="cp932")
    truth = gen.inland_flood_zones()
    assert list(zones["区域番号"]) == list(truth["区域番号"]) and len(zones) == 32
    assert all(shapely.equals_exact(zones.geometry.values, truth.geometry.values, 1e-6))


# ------------------------------------------------------------------ validate, per layer

LAYERS = sorted(load_project(EXAMPLE).specs)


@pytest.mark.parametrize("lid", LAYERS)
def test_validate_counts_per_layer(city: tuple[Path, dict[str, int]], lid: str) -> None:
    """read = merged + quarantined, with exactly the planted reasons and nothing else."""
    root, counts = city
    res = run("--project", str(root), "-q", "--json", "validate", lid)
    assert res.exit_code == 0, res.output
    layer = json.loads(res.stdout)["layers"][lid]
    read, reasons = expected(lid, counts)
    if lid in REAL:
        assert read == REAL[lid]
    assert (layer["read"], layer["quarantined"]) == (read, sum(reasons.values()))
    assert layer["merged"] == read - sum(reasons.values())
    by_reason: dict[str, int] = {}
    for src in layer["sources"]:
        for r, n in src["by_reason"].items():
            by_reason[r] = by_reason.get(r, 0) + n
    assert by_reason == reasons
    assert layer["repaired"] == gen.PLANTED.get(lid, {}).get("REPAIRED", 0)


# ------------------------------------------------------------------ merge


@pytest.fixture(scope="module")
def master(city: tuple[Path, dict[str, int]]) -> tuple[Path, dict[str, Any]]:
    root, _ = city
    res = run("--project", str(root), "-q", "--json", "merge")
    assert res.exit_code == 0, res.output
    return root, json.loads(res.stdout)


def test_master_is_in_the_citys_plane_zone(master: tuple[Path, dict[str, Any]]) -> None:
    root, manifest = master
    assert manifest["target_crs"] == TARGET and manifest["city_code"] == "372013"
    gpkg = root / "data/merged/master.gpkg"
    for lid in LAYERS:
        assert pyogrio.read_info(gpkg, layer=lid)["crs"] == TARGET, lid
    # the confidential ledger is in the master (for the departments granted it), joined to 地番
    tax = pyogrio.read_dataframe(gpkg, layer="kazei_tochi")
    assert tax["owner_name"].notna().all() and not tax.geometry.is_empty.any()


def test_data_dates_come_from_the_specs(master: tuple[Path, dict[str, Any]]) -> None:
    """Not the files' mtimes (a copy changes them): DBF header, 賦課期日, the city's update."""
    _, manifest = master
    dates = {lid: L["data_date"] for lid, L in manifest["layers"].items()}
    assert dates == {**dict.fromkeys(["doro_kukan", "suido_kanro", "gesui_kanro", "gesui_jinko",
                                      "chiban", "naisui_shinsui"], gen.EXPORT_DATE),
                     "kazei_tochi": "2025-01-01", "hinanjo": "2024-09-18",
                     "tsunami_hinan_biru": "2026-03-23",
                     "donou": "2026-03-04", "shobo": None, "aed": None, "tameike": None}


@pytest.mark.parametrize("key", sorted(gen.PLANTED_RAW))
def test_planted_errors_are_quarantined_with_their_reason(
        master: tuple[Path, dict[str, Any]], key: tuple[str, str]) -> None:
    root, _ = master
    lid, reason = key
    col, values = gen.PLANTED_RAW[key]
    rows = quarantine_rows(root, lid, reason)
    assert len(rows) == gen.PLANTED[lid][reason]
    assert all(r.get(col) in values for r in rows), rows


def test_real_open_data_needs_no_repair(master: tuple[Path, dict[str, Any]]) -> None:
    """The LINK CSVs (through their GDAL descriptors) and the current CSVs land whole."""
    root, manifest = master
    gpkg = root / "data/merged/master.gpkg"
    for lid in ("tsunami_hinan_biru", "donou", "shobo", "aed", "tameike"):
        assert manifest["layers"][lid]["merged"] == REAL[lid], lid
    shobo = pyogrio.read_dataframe(gpkg, layer="shobo")
    assert shobo["kind"].value_counts().to_dict() == {"brigade_post": 96, "fire_station": 13}
    assert "高松市消防団西部分団第1部屯所" in set(shobo["name"])  # "第１部" in the source
    donou = pyogrio.read_dataframe(gpkg, layer="donou")
    assert "高松市香西本町762-2" in set(donou["address"])  # "７６２−２" (U+2212) in the source
    aed = pyogrio.read_dataframe(gpkg, layer="aed")
    assert aed["child_pads"].value_counts().to_dict() == {"yes": 142, "no": 1}
    assert aed["child_pads"].isna().sum() == 371  # blank: not stated (not "no")


def test_jgd2000_source_passes_unchanged(master: tuple[Path, dict[str, Any]]) -> None:
    root, manifest = master
    layer = manifest["layers"]["naisui_shinsui"]
    assert (layer["read"], layer["merged"], layer["quarantined"]) == (32, 32, 0)
    got = pyogrio.read_dataframe(root / "data/merged/master.gpkg", layer="naisui_shinsui")
    raw = pyogrio.read_dataframe(root / "data/raw" / gen.INLAND_FLOOD, encoding="cp932")
    assert list(got["zone_id"]) == list(raw["区域番号"])
    assert all(shapely.equals_exact(shapely.get_parts(got.geometry.values),
                                    raw.geometry.values, 1e-6))
    assert got["xy_transform"].str.startswith("JGD2000 to JGD2011").all()
    (lon, lat), rank = gen.INLAND_FLOOD_PROBE
    x, y = Transformer.from_crs("EPSG:6668", TARGET, always_xy=True).transform(lon, lat)
    assert list(got[got.contains(shapely.Point(x, y))]["depth_rank"]) == [int(rank)]


def test_tokyo_datum_export_declared_as_jgd2011_is_caught(
        city: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    """The sewer ledger exported in the old Tokyo datum but still declared EPSG:6672."""
    src_root, _ = city
    root = copy_example(tmp_path / "proj")
    shutil.copytree(src_root / "data" / "raw", root / "data" / "raw")
    shp = root / "data" / "raw" / gen.SEWER_PIPE
    pipes = pyogrio.read_dataframe(shp, encoding="cp932")
    grids = load_project(root).grids_dir
    to_tokyo = Transformer.from_pipeline(
        "+proj=pipeline +step +inv +proj=tmerc +lat_0=33 +lon_0=133.5 +k=0.9999 +x_0=0 +y_0=0 "
        f"+ellps=bessel +step +proj=hgridshift +grids={grids / 'TKY2JGD.tif'} "
        "+step +proj=tmerc +lat_0=33 +lon_0=133.5 +k=0.9999 +x_0=0 +y_0=0 +ellps=GRS80")

    def shift(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(to_tokyo.transform(xy[:, 0], xy[:, 1], direction="INVERSE"))

    gen._write_shp(gpd.GeoDataFrame(pipes, geometry=shapely.transform(pipes.geometry.values,
                                                                      shift)), shp, crs=None)
    res = run("--project", str(root), "-q", "validate", "gesui_kanro")
    assert res.exit_code == 1
    assert "looks like Tokyo datum" in res.output and "EPSG:30164" in res.output
    assert "EPSG:30167" not in res.output


# ------------------------------------------------------------------ sample -> ... -> publish


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The whole chain in a fresh copy: sample, validate, merge, publish (results, not asserts)."""
    root = copy_example(tmp_path_factory.mktemp("takamatsu-e2e") / "proj")
    out: dict[str, Any] = {"root": root}
    for step, args in (("sample", ["sample", "--scale", str(SCALE)]), ("validate", ["validate"]),
                       ("merge", ["merge"]), ("publish", ["publish"])):
        res = run("--project", str(root), "-q", "--json", *args)
        out[step] = res
        if res.exit_code != 0:
            break
    return out


def ok(e2e: dict[str, Any], step: str) -> Any:
    res = e2e.get(step)
    assert res is not None and res.exit_code == 0, res.output if res else "not run"
    return json.loads(res.stdout)


def test_e2e_validate_predicts_merge(e2e: dict[str, Any]) -> None:
    counts = ok(e2e, "sample")["files"]
    validated, merged = ok(e2e, "validate"), ok(e2e, "merge")
    table = {lid: (L["read"], L["merged"], L["quarantined"])
             for lid, L in merged["layers"].items()}
    assert table == {lid: (L["read"], L["merged"], L["quarantined"])
                     for lid, L in validated["layers"].items()}
    for lid in LAYERS:
        read, reasons = expected(lid, counts)
        assert table[lid] == (read, read - sum(reasons.values()), sum(reasons.values())), lid
    gpkg = e2e["root"] / "data/merged/master.gpkg"
    assert {lid: pyogrio.read_info(gpkg, layer=lid)["crs"] for lid in LAYERS} == dict.fromkeys(
        LAYERS, TARGET)
    shelters = pyogrio.read_dataframe(gpkg, layer="hinanjo")
    assert shelters["capacity"].isna().sum() == 19  # blank in the source: unknown, not bad
    assert int(shelters["hz_inland_flood"].sum()) == 189  # ○ 155 + △ 34


def release_dir(e2e: dict[str, Any]) -> Path:
    return Path(ok(e2e, "publish")["path"])


def test_e2e_published_release_names_no_other_city(e2e: dict[str, Any]) -> None:
    rel = release_dir(e2e)
    files = [p for p in rel.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files)
    for p in files:
        assert other_city(readable(p.name, p.read_bytes())) == [], p.relative_to(rel)
    api = yaml.safe_load((rel / "pygeoapi.yml").read_text(encoding="utf-8"))
    for name, res in api["resources"].items():
        if res.get("type") == "collection":
            assert "http://www.opengis.net/def/crs/EPSG/0/6672" in res["providers"][0]["crs"], name


def test_e2e_every_public_layer_is_published_and_on_its_pages(e2e: dict[str, Any]) -> None:
    project = load_project(e2e["root"])
    public = sorted(lid for lid, s in project.specs.items() if s.visibility == "public")
    rel = release_dir(e2e)
    store = rel / "public.gpkg"
    assert sorted(lyr for lyr, _ in pyogrio.list_layers(store)) == public  # no kazei_tochi
    for page in project.config.publish.pages:
        html = [p for p in rel.rglob(f"{page.id}.html")]
        assert len(html) == 1, page.id
        text = "".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in html[0].parent.rglob("*")
                       if p.is_file() and p.suffix in (".html", ".json", ".js"))
        for lid in public:
            if page.id in project.specs[lid].map.pages:
                assert re.search(rf"\b{lid}\b", text), (page.id, lid)


def test_e2e_real_shelter_lands_where_the_city_put_it(e2e: dict[str, Any]) -> None:
    """Source lon/lat -> master (zone IV) -> public store (CRS84): the same point to 1 cm."""
    src = json.loads((EXAMPLE / "data/reference/evacuation_space_build_20240918.geojson")
                     .read_text(encoding="utf-8"))
    first = next(f for f in src["features"] if f["properties"]["#property"] == "1")
    assert first["properties"]["name"] == "日新小学校跡施設"
    lon, lat = first["geometry"]["coordinates"]
    pub = pyogrio.read_dataframe(release_dir(e2e) / "public.gpkg", layer="hinanjo")
    row = pub[pub["shelter_no"] == "1"]
    assert list(row["name"]) == ["日新小学校跡施設"]
    p = row.geometry.iloc[0]
    assert abs(p.x - lon) < 1e-7 and abs(p.y - lat) < 1e-7
    x, y = Transformer.from_crs("EPSG:6668", TARGET, always_xy=True).transform(lon, lat)
    m = pyogrio.read_dataframe(e2e["root"] / "data/merged/master.gpkg", layer="hinanjo")
    q = m[m["shelter_no"] == "1"].geometry.iloc[0]
    assert abs(q.x - x) < 0.001 and abs(q.y - y) < 0.001


def test_e2e_pipe_sheet_prints_the_citys_zone(e2e: dict[str, Any], tmp_path: Path) -> None:
    """The sheet takes its layers by role and its plane zone from ``target_crs``."""
    from pypdf import PdfReader

    root = e2e["root"]
    ok(e2e, "publish")
    parcels = pyogrio.read_dataframe(root / "data/merged/master.gpkg", layer="chiban",
                                     read_geometry=False)
    lot = parcels[parcels["oaza_name"] == "番町1丁目"].iloc[0]
    pdf = tmp_path / "sheet.pdf"
    res = run("--project", str(root), "-q", "pipe-sheet", "--oaza", "番町1丁目", "--chiban",
              _fullwidth(lot["chiban"]), "--scale", "1000", "-o", str(pdf))
    assert res.exit_code == 0, res.output
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "高松市" in text and "番町1丁目" in text and f"地番 {lot['chiban']}" in text
    assert "第IV系" in text and "EPSG:6672" in text
    assert other_city(text.encode()) == []


def _fullwidth(s: str) -> str:
    """The lot number as a resident may type it (the search normalises it)."""
    return s.translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))


# ------------------------------------------------------------------ ... -> serve


def public_layers(project: Any) -> list[str]:
    return sorted(lid for lid, s in project.specs.items() if s.visibility == "public")


def api_urls(project: Any, client: Any) -> list[str]:
    """Every kind of answer the public server gives about this city (JSON and HTML, ja and en):
    the pages, the API's documents, each collection's metadata, items and one item."""
    urls = ["/", "/?lang=en", "/terms", "/terms?lang=en", "/healthz", "/api?f=json",
            "/api?f=html", "/api?f=html&lang=en", "/api/openapi?f=json", "/api/openapi?f=html",
            "/api/conformance?f=json", "/api/collections?f=json", "/api/collections?f=html",
            "/api/collections?f=json&lang=en", "/api/processes?f=json",
            "/api/processes?f=html", "/api/changes?since=2000-01-01", "/opendata/index.json",
            "/opendata/README.txt", "/maps/search.json"]
    for proc in client.get("/api/processes?f=json").get_json()["processes"]:
        urls += [f"/api/processes/{proc['id']}?f=json", f"/api/processes/{proc['id']}?f=html"]
    for page in project.config.publish.pages:
        urls += [f"/maps/{page.id}.html", f"/maps/{page.id}.html?lang=en"]
    for lid in public_layers(project):
        c = f"/api/collections/{lid}"
        first = client.get(f"{c}/items?f=json&limit=1").get_json()["features"][0]["id"]
        urls += [f"{c}?f=json", f"{c}?f=html", f"{c}?f=json&lang=en", f"{c}/queryables?f=json",
                 f"{c}/queryables?f=html", f"{c}/schema?f=json",
                 f"{c}/items?f=json&limit=10000", f"{c}/items?f=html&limit=50",
                 f"{c}/items?f=html&limit=50&lang=en", f"{c}/items/{first}?f=json",
                 f"{c}/items/{first}?f=html"]
    return urls


def test_e2e_api_answers_name_no_other_city(e2e: dict[str, Any]) -> None:
    """Not one answer of the city's server (its data included) names the first example city."""
    from publish.server.app import create_app

    ok(e2e, "publish")
    project = load_project(e2e["root"])
    client = create_app(project).test_client()
    urls = api_urls(project, client)
    assert len(urls) > 150
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        body = r.get_data()
        assert body, url
        if "/maps/" in url and ".html" in url:  # and what the page loads: scripts, data, tiles
            m = re.search(rb'<script type="application/json" id="gm-config">(.*?)</script>',
                          body, re.S)
            assert m, url
            cfg = json.loads(m.group(1))
            refs = [r.decode() for r in re.findall(rb'(?:src|href)="(/[^"#]+)"', body)]
            refs += [*cfg["later"], f"/maps/{cfg['tiles']['url']}"]
            refs += [f"/maps/{cfg['dataUrl']}"] if cfg["dataUrl"] else []
            for ref in refs:
                got = client.get(ref)
                assert got.status_code == 200, (url, ref)
                assert other_city(readable(ref, got.get_data())) == [], (url, ref)
        assert other_city(body) == [], url


def _coords(geometry: dict[str, Any]) -> list[list[float]]:
    """Every position of a GeoJSON geometry."""
    out: list[list[float]] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], (int, float)):
            out.append(c)
        else:
            for x in c:
                walk(x)

    walk(geometry["coordinates"])
    return out


def test_e2e_api_answers_in_the_citys_own_plane_zone(e2e: dict[str, Any]) -> None:
    """``?crs=`` of the zone ``target_crs`` names: 200, Content-Crs, plane metres of that zone
    (X north, Y east, as EPSG defines its axes), the master's coordinates to 2 cm."""
    from publish.server.app import create_app

    ok(e2e, "publish")
    project = load_project(e2e["root"])
    cfg = project.config
    epsg = CRS.from_user_input(cfg.target_crs).to_epsg()
    assert epsg == 6672
    zone = f"http://www.opengis.net/def/crs/EPSG/0/{epsg}"
    client = create_app(project).test_client()
    # the city in its zone: its boundary (lon/lat) in plane metres, widened by the margin the
    # ETL allows (5 km for a layer not checked against it: AEDs of the next towns are listed);
    # zone IV's origin is 33°N 133°30'E, so Takamatsu is ~+150 km north, ~+50 km east
    assert cfg.boundary is not None
    city = gpd.read_file(project.path(cfg.boundary.path)).to_crs(cfg.target_crs)
    e0, n0, e1, n1 = city.total_bounds
    assert 120_000 < n0 < n1 < 190_000 and 20_000 < e0 < e1 < 90_000
    master = e2e["root"] / "data/merged/master.gpkg"
    for lid in public_layers(project):
        r = client.get(f"/api/collections/{lid}/items",
                       query_string={"f": "json", "crs": zone, "limit": 500})
        assert r.status_code == 200, (lid, r.get_data(as_text=True)[:300])
        assert r.headers["Content-Crs"] == f"<{zone}>", lid
        feats = r.get_json()["features"]
        assert feats, lid
        xy = np.array([c[:2] for f in feats for c in _coords(f["geometry"])])
        spec = project.specs[lid]
        pad = cfg.boundary.margin_m if spec.check_boundary else 5_000
        assert (xy[:, 0] >= n0 - pad).all() and (xy[:, 0] <= n1 + pad).all(), lid
        assert (xy[:, 1] >= e0 - pad).all() and (xy[:, 1] <= e1 + pad).all(), lid
        # the same positions as the master (stored in the zone), feature by feature
        m = pyogrio.read_dataframe(master, layer=lid, columns=[spec.id_field])
        m = m.set_index(m[spec.id_field].astype(str)).geometry
        for f in feats[:50]:
            got = shapely.transform(shapely.geometry.shape(f["geometry"]), lambda c: c[:, ::-1])
            want = m.loc[str(f["id"])]
            assert np.allclose(got.bounds, want.bounds, atol=0.02), (lid, f["id"])
    # the zone of another city is not offered
    other = "http://www.opengis.net/def/crs/EPSG/0/6675"
    assert client.get(f"/api/collections/hinanjo/items?crs={other}").status_code == 400


def test_e2e_cli_serve_on_any_port_gdal_reads_every_collection(e2e: dict[str, Any],
                                                                tmp_path: Path) -> None:
    """``uozu-gis serve --port <free port>`` after the default ``publish`` (no base_url): GDAL's
    OAPIF driver reads every collection with the published counts, following only links to the
    port the server listens on."""

    counts = ok(e2e, "publish")["layers"]
    root = e2e["root"]
    assert load_project(root).config.publish.base_url is None
    assert sorted(counts) == public_layers(load_project(root))
    page = 250
    with cli_serve(root, tmp_path / "serve.log") as base:
        out, fetched = ogrinfo("-ro", "-so", "-al", f"OAPIF:{base}/api")
        got = dict(re.findall(r"Layer name: (\S+)\n(?:.*\n)*?Feature Count: (\d+)", out))
        assert {k: int(v) for k, v in got.items()} == counts, out[-3000:]
        for lid, n in counts.items():  # every feature, following the next links to the end
            full, more = ogrinfo("-ro", "-q", f"OAPIF:{base}/api", lid, "-oo",
                                 f"PAGE_SIZE={page}")
            assert full.count("OGRFeature(") == n, lid
            assert sum("offset=" in u for u in more) >= -(-n // page) - 1, (lid, more)
            fetched += more
        assert len(fetched) > 2 * len(counts)
        assert all(u.startswith(f"{base}/api") for u in fetched), [
            u for u in fetched if not u.startswith(f"{base}/api")]
    served = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert "Traceback" not in served and str(root) not in served, served[-2000:]
    assert other_city(served.encode(), product=True) == [], served
