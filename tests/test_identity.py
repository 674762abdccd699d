"""Feature identity: composite and generated ids, uniqueness judged after sources combine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mini
import pandas as pd
import pytest

from config import load_project
from config.errors import EtlError
from etl.pipeline import run_merge
from etl.stores import open_store

FIRE = """
spec_version: 1
id: fire_station
title: {ja: 消防署所, en: Fire stations}
geometry_type: Point
visibility: public
source_system: fire
attribution: {ja: テスト市 消防本部, en: Test City fire department}
ID_FIELD
sources:
  - {name: honsho, path: fire/HONSHO.csv, reader: csv, encoding: utf-8, crs: "EPSG:6675",
     x_field: X, y_field: Y, id_field: [種別, 番号], data_date: 2025-04-01}
  - {name: bunsho, path: fire/BUNSHO.csv, reader: csv, encoding: utf-8, crs: "EPSG:6675",
     x_field: X, y_field: Y, id_field: [種別, 番号], data_date: 2025-04-01}
fields:
  kind: {from: 種別, normalize: [nfkc], required: true, visibility: public}
  station_no: {from: 番号, normalize: [nfkc], required: true, visibility: public}
  name: {from: 名称, normalize: [nfkc], visibility: public}
EXTRA
"""


def _stations(root: Path, *, id_field: str = "id_field: [kind, station_no]", extra: str = "",
              bunsho: list[tuple[str, str, str]] | None = None) -> None:
    """Two exports numbered from 1 each (本署 and 分署), as two departments keep them."""
    d = root / "data/raw/fire"
    d.mkdir(parents=True, exist_ok=True)
    rows = {"HONSHO": [("本署", "1", "中央消防署"), ("本署", "2", "東消防署")],
            "BUNSHO": bunsho or [("分署", "1", "北分署"), ("分署", "2", "南分署")]}
    for f, rs in rows.items():
        pd.DataFrame([{"種別": k, "番号": n, "名称": nm, "X": mini.E0 + 100 * i,
                       "Y": mini.N0 + 30 * (f == "BUNSHO")} for i, (k, n, nm) in enumerate(rs)]
                     ).to_csv(d / f"{f}.csv", index=False)
    (root / "layers/fire_station.yml").write_text(
        FIRE.replace("ID_FIELD", id_field).replace("EXTRA", extra), encoding="utf-8")


def _layer(root: Path, lid: str) -> pd.DataFrame:
    return open_store(load_project(root)).read_layer(lid)


def test_composite_id_across_sources(mini_project: Path) -> None:
    """Station numbers repeat across the two exports; kind + number is unique."""
    _stations(mini_project)
    m = run_merge(load_project(mini_project)).manifest["layers"]["fire_station"]
    assert (m["read"], m["merged"], m["quarantined"]) == (4, 4, 0)
    df = _layer(mini_project, "fire_station")
    assert list(df["id"]) == ["本署-1", "本署-2", "分署-1", "分署-2"]
    assert list(df["source_record"]) == ["#1 本署/1", "#2 本署/2", "#1 分署/1", "#2 分署/2"]
    spec = load_project(mini_project).specs["fire_station"]
    assert spec.id_field == "id" and spec.fields["id"].visibility == "public"


def test_duplicates_across_sources_name_both_records(mini_project: Path) -> None:
    _stations(mini_project, bunsho=[("本署", "2", "東消防署(重複)"), ("分署", "1", "北分署")])
    m = run_merge(load_project(mini_project)).manifest["layers"]["fire_station"]
    assert [s["by_reason"] for s in m["sources"]] == [{}, {"DUPLICATE_ID": 1}]
    q = _layer(mini_project, "_quarantine")
    row = q[q["reason_code"] == "DUPLICATE_ID"].iloc[0]
    assert (row["source_file"], row["record"]) == ("fire/BUNSHO.csv", "#1 本署/2")
    assert row["detail"] == "DUPLICATE_ID: id=本署-2 also in fire/HONSHO.csv #2 本署/2"


def test_generated_ids_are_stable_across_runs(mini_project: Path) -> None:
    _stations(mini_project, id_field="id_field: station_id",
              extra="  station_id: {generate: [name], required: true, unique: true}")
    run_merge(load_project(mini_project))
    first = dict(zip(_layer(mini_project, "fire_station")["name"],
                     _layer(mini_project, "fire_station")["station_id"], strict=True))
    h = hashlib.blake2b("honsho\x1f中央消防署".encode(), digest_size=8).hexdigest()
    assert first["中央消防署"] == f"honsho-{h}"
    # the next export lists the stations in another order: every id stays with its station
    for f in ("HONSHO", "BUNSHO"):
        p = mini_project / f"data/raw/fire/{f}.csv"
        pd.read_csv(p, dtype=str).iloc[::-1].to_csv(p, index=False)
    run_merge(load_project(mini_project))
    again = _layer(mini_project, "fire_station")
    assert dict(zip(again["name"], again["station_id"], strict=True)) == first
    assert len(set(first.values())) == 4


def test_composite_id_with_a_missing_part_is_quarantined(mini_project: Path) -> None:
    _stations(mini_project, bunsho=[("分署", "", "番号なし分署"), ("分署", "1", "北分署")])
    m = run_merge(load_project(mini_project)).manifest["layers"]["fire_station"]
    assert m["sources"][1]["by_reason"] == {"MISSING_REQUIRED": 1}


def test_uniqueness_after_combine(mini_project: Path) -> None:
    """Records folded into one feature by ``combine`` may share the id: they are one object;
    two features with one id are a duplicate."""
    _stations(mini_project, id_field="id_field: station_no",
              extra="combine: {key: [name]}",
              bunsho=[("分署", "1", "中央消防署"), ("分署", "3", "南分署")])
    p = mini_project / "layers/fire_station.yml"
    p.write_text(p.read_text(encoding="utf-8").replace(
        "station_no: {from: 番号, normalize: [nfkc], required: true,",
        "station_no: {from: 番号, normalize: [nfkc], required: true, unique: true,"),
        encoding="utf-8")
    m = run_merge(load_project(mini_project)).manifest["layers"]["fire_station"]
    # 中央消防署 (本署 1) and 中央消防署 (分署 1) are one station; 南分署 3 is new
    assert (m["read"], m["merged"], m["features"], m["quarantined"]) == (4, 4, 3, 0)


def test_composite_id_spec_errors(mini_project: Path) -> None:
    _stations(mini_project, id_field="id_field: [kind, missing_field]")
    with pytest.raises(EtlError, match="field 'id': 'missing_field' is not one of fields"):
        load_project(mini_project)
    _stations(mini_project, id_field="id_field: [kind, station_no]",
              extra="  id: {from: 名称}")
    with pytest.raises(EtlError, match=r"id_field: \['kind', 'station_no'\] makes the field "
                                       r"'id', which is already a field"):
        load_project(mini_project)
