"""法務省 地図XML through a spec (the mojxml package), on the real samples.

The samples are from other cities, which also shows adoption by configuration: a project for
千葉市稲毛区 needs only its own target CRS (zone IX) and a parcel spec.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyogrio
import pytest

from config import load_project
from config.errors import EtlError
from etl.pipeline import run_merge

REPO = Path(__file__).resolve().parent.parent
MOJ = REPO / "data/reference/mojxml"

PROJECT = f"""
city: {{ja: 千葉市稲毛区, en: "Inage Ward, Chiba"}}
city_code: "121037"
target_crs: EPSG:6677
grids_dir: {REPO / "data/grids"}
transforms:
  - from_datum: EPSG:6612
    grids: [touhokutaiheiyouoki2011.tif]
    accuracy_m: 0.05
    title: {{ja: JGD2000→JGD2011 (PatchJGD), en: JGD2000 to JGD2011 (PatchJGD)}}
publish:
  title: {{ja: テスト, en: test}}
  description: {{ja: テスト, en: test}}
  contact_name: test
  contact_url: https://example.org/
  city_url: https://example.org/
"""

SPEC = """
spec_version: 1
id: moj_parcel
title: {ja: 登記所備付地図, en: Registry map parcels}
geometry_type: MultiPolygon
visibility: public
source_system: moj
attribution: {ja: 「登記所備付地図データ」(法務省), en: MOJ registry map data}
id_field: fude_id
sources:
  - {name: moj, path: SRC, reader: mojxml, id_field: 筆ID, options: {include_chikugai: true}}
fields:
  fude_id: {from: 筆ID, required: true, unique: true, visibility: public}
  oaza_name: {from: 大字名, normalize: [nfkc], visibility: public}
  chiban: {from: 地番, normalize: [chiban], visibility: public}
  precision: {from: 精度区分, visibility: public}
  coord_type: {from: 座標値種別, visibility: public}
  datum_note: {from: 測地系判別}
"""


def _project(tmp_path: Path, src: str, target: str = "EPSG:6677") -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "layers").mkdir()
    (tmp_path / "config/project.yml").write_text(
        PROJECT.replace("EPSG:6677", target), encoding="utf-8")
    (tmp_path / "layers/moj_parcel.yml").write_text(SPEC.replace("SRC", src), encoding="utf-8")
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    shutil.copy(MOJ / src, raw / src)
    return tmp_path


def test_chiba_sample_merges(tmp_path: Path) -> None:
    root = _project(tmp_path, "12103-0400-76.zip")
    res = run_merge(load_project(root))
    L = res.manifest["layers"]["moj_parcel"]
    assert (L["read"], L["merged"], L["quarantined"]) == (1, 1, 0)
    t = L["sources"][0]["transform"]
    assert t["method"] == "grid" and t["source_crs"] == "EPSG:4612"
    df = pyogrio.read_dataframe(root / "data/merged/master.gpkg", layer="moj_parcel")
    row = df.iloc[0]
    assert (row["oaza_name"], row["chiban"], row["chiban_main"], row["chiban_branch"]) == (
        "作草部町", "194-1", 194, 1)
    assert row["precision"] == "甲一" and row["datum_note"] == "測量"
    # lands in zone IX at 千葉市稲毛区 (about E +26 km, N -42 km from the zone origin)
    x, y = df.geometry.iloc[0].centroid.coords[0]
    assert 25_000 < x < 27_000 and -43_000 < y < -41_000


def test_yakushima_sample_keeps_special_chiban(tmp_path: Path) -> None:
    root = _project(tmp_path, "46505-3411-1.zip", target="EPSG:6670")
    (root / "config/project.yml").write_text(
        (root / "config/project.yml").read_text(encoding="utf-8").split("transforms:")[0]
        + "publish:" + (root / "config/project.yml").read_text(encoding="utf-8")
        .split("publish:")[1], encoding="utf-8")
    res = run_merge(load_project(root))
    L = res.manifest["layers"]["moj_parcel"]
    assert L["read"] == 8 and L["read"] == L["merged"] + L["quarantined"]
    df = pyogrio.read_dataframe(root / "data/merged/master.gpkg", layer="moj_parcel")
    assert "別図-5" in set(df["chiban"]) or "別図-5" in set(df["chiban_raw"])


def test_arbitrary_coordinates_need_a_declared_crs(tmp_path: Path) -> None:
    root = _project(tmp_path, "01229-4500-1.xml")
    spec = root / "layers/moj_parcel.yml"
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        "include_chikugai: true", "include_chikugai: true, include_arbitrary: true"),
        encoding="utf-8")
    with pytest.raises(EtlError, match=r"01229-4500-1\.xml has no CRS"):
        run_merge(load_project(root))
