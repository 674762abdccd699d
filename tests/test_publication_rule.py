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
