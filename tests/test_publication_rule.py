"""The publication rule for complex geometries (issue 18 item 11): the master stays exact, the
public copy of a feature over its layer's vertex budget is simplified within a known tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import shapely.affinity

from config.models import LayerSpec, PublishGeometry
from etl.validate import simplify_for_publication


def _wiggly(n: int) -> shapely.Polygon:
    """A circle of radius 1 km with ``n`` vertices and 0.2 m of noise on the boundary."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1000 + 0.2 * np.sin(a * 997)
    return shapely.Polygon(np.column_stack([r * np.cos(a), r * np.sin(a)]))


def test_over_budget_simplified_within_tolerance() -> None:
    big, small = _wiggly(200_000), _wiggly(500)
    rule = PublishGeometry(max_vertices=5000, tolerance_m=0.5)
    out, simplified, tol = simplify_for_publication(np.array([big, small, None]), rule)
    assert list(simplified) == [True, False, False]
    assert out[1] is small and out[2] is None and list(tol[1:]) == [0.0, 0.0]
    assert shapely.get_num_coordinates(out[0]) <= 5000
    assert out[0].is_valid and tol[0] >= 0.5
    assert shapely.hausdorff_distance(out[0], big) <= tol[0] + 1e-9
    assert abs(out[0].area - big.area) / big.area < 1e-3


def test_tolerance_doubles_until_under_budget() -> None:
    big = _wiggly(100_000)
    out, _, tol = simplify_for_publication(np.array([big]),
                                           PublishGeometry(max_vertices=16, tolerance_m=0.5))
    assert shapely.get_num_coordinates(out[0]) <= 16 and out[0].is_valid and not out[0].is_empty
    assert tol[0] > 0.5 and np.log2(tol[0] / 0.5) == int(np.log2(tol[0] / 0.5))


@pytest.mark.parametrize("rule,err", [
    ({"max_vertices": 3}, "greater than or equal to 4"),
    ({"tolerance_m": 0}, "greater than 0"),
    ({"tolerance_m": 500}, "less than or equal to 100"),
    ({"vertices": 10}, "Extra inputs are not permitted"),
])
def test_rule_is_validated(rule: dict, err: str) -> None:
    base = {"spec_version": 1, "id": "x", "title": {"ja": "x", "en": "x"},
            "geometry_type": "Polygon", "source_system": "s",
            "attribution": {"ja": "x", "en": "x"}, "id_field": "k",
            "sources": [{"name": "s", "path": "x.shp"}], "fields": {"k": {"from": "k"}},
            "publish_geometry": rule}
    with pytest.raises(Exception, match=err):
        LayerSpec.model_validate(base)


def test_default_rule_documented() -> None:
    r = LayerSpec.model_fields["publish_geometry"].default_factory()
    assert (r.max_vertices, r.tolerance_m) == (10000, 0.5)


def test_public_table_uses_the_rule_and_the_master_stays_exact() -> None:
    """publish.build.public_store.build_table applies the spec's rule in metres of the master
    CRS before reprojecting: the public copy fits the budget, the master row is untouched."""
    import geopandas as gpd

    from publish.build.public_store import build_table, plan_layer

    base = {"spec_version": 1, "id": "zone", "title": {"ja": "区域", "en": "Zone"},
            "geometry_type": "Polygon", "source_system": "s", "visibility": "public",
            "attribution": {"ja": "x", "en": "x"}, "id_field": "k",
            "sources": [{"name": "s", "path": "x.shp"}],
            "fields": {"k": {"from": "k", "visibility": "public"}},
            "publish_geometry": {"max_vertices": 2000, "tolerance_m": 0.5},
            "map": {"pages": []}}
    spec = LayerSpec.model_validate(base)
    big, small = _wiggly(120_000), _wiggly(300)
    # a plane CRS (metres): shift into a real zone so the CRS84 copy is sensible
    master = gpd.GeoDataFrame({"k": ["a", "b"]},
                              geometry=[shapely.affinity.translate(big, 20000, 90000),
                                        shapely.affinity.translate(small, 25000, 90000)],
                              crs="EPSG:6675")
    before = master.geometry.copy()
    table = build_table(master, plan_layer(spec, {}), {})
    n = shapely.get_num_coordinates(table.geometry.values)
    assert list(table["fid"]) == ["a", "b"]
    assert n[0] <= 2000 and n[1] == shapely.get_num_coordinates(small)
    assert master.geometry.equals(before)  # the master keeps the exact geometry
    back = table.to_crs("EPSG:6675").geometry.values
    assert shapely.hausdorff_distance(back[0], before.values[0]) < 2.0


def test_table_records_what_the_rule_did() -> None:
    """build_table adds up, per layer, the features simplified and their vertices."""
    import geopandas as gpd

    from publish.build.public_store import Simplified, build_table, plan_layer

    spec = LayerSpec.model_validate(
        {"spec_version": 1, "id": "zone", "title": {"ja": "区域", "en": "Zone"},
         "geometry_type": "Polygon", "source_system": "s", "visibility": "public",
         "attribution": {"ja": "x", "en": "x"}, "id_field": "k",
         "sources": [{"name": "s", "path": "x.shp"}],
         "fields": {"k": {"from": "k", "visibility": "public"}},
         "publish_geometry": {"max_vertices": 2000, "tolerance_m": 0.5}, "map": {"pages": []}})
    geoms = [shapely.affinity.translate(_wiggly(n), 20000, 90000) for n in (120_000, 300, 9000)]
    master = gpd.GeoDataFrame({"k": ["a", "b", "c"]}, geometry=geoms, crs="EPSG:6675")
    expect, over, tol = simplify_for_publication(np.array(geoms, dtype=object),
                                                 spec.publish_geometry)
    simp = Simplified(spec.publish_geometry)
    build_table(master, plan_layer(spec, {}), {}, simp)
    assert list(over) == [True, False, True]
    assert simp.as_dict() == {
        "rule": {"max_vertices": 2000, "tolerance_m": 0.5},
        "simplified_features": 2,
        "vertices_before": 120_001 + 9001,
        "vertices_after": int(shapely.get_num_coordinates(expect[[0, 2]]).sum()),
        "max_tolerance_m": float(tol.max()),
    }
    assert simp.vertices_after <= 4000 and simp.max_tolerance_m >= 0.5


def test_release_json_records_the_rule_per_layer(tmp_path) -> None:
    """A published release says, per layer, which rule applied and what it changed."""
    import json

    import geopandas as gpd
    from publish_fixtures import E0, N0, isolated_site_builders, sample_frames, write_master
    from publish_fixtures import write_project as write_pub_project

    from publish.build import publish

    project = write_pub_project(tmp_path / "p", roles=True)
    frames = sample_frames(with_parcels=True)
    big = shapely.affinity.translate(_wiggly(30_000), E0 + 2000, N0 - 2000)
    parcels = frames["parcels"]
    frames["parcels"] = gpd.GeoDataFrame(parcels.drop(columns="geometry"),
                                         geometry=[big, *parcels.geometry.values[1:]],
                                         crs=parcels.crs)
    write_master(project, frames)
    with isolated_site_builders():
        res = publish(project)
    meta = json.loads((res.path / "release.json").read_text(encoding="utf-8"))
    rule = project.specs["parcels"].publish_geometry
    expect, over, tol = simplify_for_publication(np.array([big], dtype=object), rule)
    assert meta["layers"]["parcels"]["publish_geometry"] == {
        "rule": {"max_vertices": rule.max_vertices, "tolerance_m": rule.tolerance_m},
        "simplified_features": 1,
        "vertices_before": 30_001,
        "vertices_after": int(shapely.get_num_coordinates(expect[0])),
        "max_tolerance_m": float(tol[0]),
    }
    assert over[0] and rule.max_vertices < 30_001
    for lid in ("sewer_pipes", "shelters"):
        pg = project.specs[lid].publish_geometry
        assert meta["layers"][lid]["publish_geometry"] == {
            "rule": {"max_vertices": pg.max_vertices, "tolerance_m": pg.tolerance_m},
            "simplified_features": 0, "vertices_before": 0, "vertices_after": 0,
            "max_tolerance_m": 0.0}


PROJECT_BASE = {"city": {"ja": "x市", "en": "X City"}, "city_code": "000000",
                "publish": {"title": {"ja": "x", "en": "x"},
                            "description": {"ja": "x", "en": "x"},
                            "contact_name": "x", "contact_email": "x@example.jp",
                            "contact_url": "https://example.jp/", "city_url": "https://example.jp/"}}
TAIL_JA = ("。許容差や余白 (tolerance_m, margin_m など) はこの座標系のメートルで測ります。"
           "修正: 市の平面直角座標系など、メートル単位の投影座標系を EPSG 番号で書く")
TAIL_EN = ("; tolerances and margins (tolerance_m, margin_m ...) are metres of this CRS. Fix: "
           "give a projected CRS in metres, such as the city's plane rectangular zone, by its "
           "EPSG code")


@pytest.mark.parametrize("crs,ja,en", [
    ("EPSG:4326", "は経緯度 (度) の座標系です", "is a geographic CRS (degrees)"),
    ("EPSG:6668", "は経緯度 (度) の座標系です", "is a geographic CRS (degrees)"),
    ("EPSG:2230", "は軸の単位が US survey foot です (メートルではありません)",
     "has axes in US survey foot, not metres"),
    ("EPSG:4978", "は投影座標系ではありません", "is not a projected CRS"),
    ("not-a-crs", "は座標系として解釈できません", "cannot be parsed as a CRS"),
], ids=["wgs84", "jgd2011-geographic", "feet", "geocentric", "garbage"])
def test_target_crs_must_be_projected_in_metres(tmp_path, crs: str, ja: str, en: str) -> None:
    """tolerance_m (and every *_m) is metres of target_crs: degrees or feet are refused with
    a bilingual error naming the file and the fix, at load time, before any data is read."""
    import yaml

    from config import load_project
    from config.errors import ConfigError
    from config.models import ProjectConfig

    (tmp_path / "config").mkdir()
    (tmp_path / "layers").mkdir()
    (tmp_path / "config/project.yml").write_text(
        yaml.safe_dump({**PROJECT_BASE, "target_crs": crs}, allow_unicode=True),
        encoding="utf-8")
    with pytest.raises(ConfigError) as ei:
        load_project(tmp_path)
    assert str(ei.value) == (f"config/project.yml: target_crs '{crs}' {ja}{TAIL_JA} / "
                             f"config/project.yml: target_crs '{crs}' {en}{TAIL_EN}")
    for ok in ("EPSG:6675", "EPSG:6672", "EPSG:3857", "EPSG:32654"):
        assert ProjectConfig.model_validate({**PROJECT_BASE, "target_crs": ok}).target_crs == ok
