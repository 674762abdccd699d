"""PublicOGRProvider's SQLite/GEOS serialisation against GDAL's own reading of the same file.

The fast path (one SQLite query, WKB -> ``shapely.to_geojson``) must give exactly what OGR gives
(``ExportToJson`` for geometries, ``GetField`` for values) for every type a public store holds,
with nulls, null geometries, multi-part and polygon-with-hole geometries, and on every query
shape the API uses (paging, sorting, property filters, bbox with edge cases, select, get).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import shapely
from osgeo import gdal, ogr, osr

from publish.server.providers import PublicOGRProvider

gdal.UseExceptions()

N = 240
FIELDS = [("fid", ogr.OFTString, None), ("name", ogr.OFTString, None),
          ("big", ogr.OFTInteger64, None), ("small", ogr.OFTInteger, None),
          ("ok", ogr.OFTInteger, ogr.OFSTBoolean), ("diam", ogr.OFTReal, None),
          ("day", ogr.OFTDate, None)]


def _geometry(i: int) -> ogr.Geometry | None:
    x, y = 137.38 + (i % 20) * 0.004 + 1e-9 * i, 36.77 + (i // 20) * 0.005 + 0.1 / 3
    if i % 17 == 0:
        return None
    if i % 3 == 0:
        wkt = f"POINT ({x!r} {y!r})"
    elif i % 3 == 1:
        wkt = (f"MULTILINESTRING (({x!r} {y!r}, {x + 0.0011!r} {y + 0.0007!r}), "
               f"({x} {y}, {x} {y + 0.002}))")
    else:
        wkt = (f"POLYGON (({x} {y}, {x + 0.003} {y}, {x + 0.003} {y + 0.003}, {x} {y}), "
               f"({x + 0.001} {y + 0.001}, {x + 0.002} {y + 0.001}, {x + 0.001} {y + 0.002}, "
               f"{x + 0.001} {y + 0.001}))")
    return ogr.CreateGeometryFromWkt(wkt)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("prov") / "public.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.SetFromUserInput("OGC:CRS84")
    layer = ds.CreateLayer("things", srs, ogr.wkbUnknown,
                           ["FID=rid", "GEOMETRY_NAME=geom", "SPATIAL_INDEX=YES"])
    for name, typ, sub in FIELDS:
        fd = ogr.FieldDefn(name, typ)
        if sub is not None:
            fd.SetSubType(sub)
        layer.CreateField(fd)
    for i in range(N):
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("fid", f"T-{i:04d}")
        if i % 5:
            f.SetField("name", ["魚津", "O'Brien", "a\"b", "", "x\ny"][i % 5])
        if i % 7:
            f.SetField("big", 2**40 + i)
        f.SetField("small", i % 4)
        if i % 6:
            f.SetField("ok", i % 2)
        if i % 4:
            f.SetField("diam", i / 7)
        if i % 9 == 0:
            f.SetField("day", f"2024-05-{1 + i % 28:02d}")
        if (g := _geometry(i)) is not None:
            f.SetGeometry(g)
        layer.CreateFeature(f)
    ds = None
    return path


@pytest.fixture()
def provider(store: str) -> PublicOGRProvider:
    return PublicOGRProvider({
        "name": "publish.server.providers.PublicOGRProvider", "type": "feature",
        "data": {"source_type": "GPKG", "source": store, "source_options": {}},
        "layer": "things", "id_field": "fid", "queryables": ["name", "small", "ok"],
        "field_titles": {}})


def reference(store: str) -> dict[str, dict[str, Any]]:
    """What GDAL itself says each feature is (dates in ISO form, the schema's format)."""
    ds = ogr.Open(store)
    out = {}
    for f in ds.GetLayer("things"):
        g = f.GetGeometryRef()
        props: dict[str, Any] = {}
        for name, typ, sub in FIELDS[1:]:
            if not f.IsFieldSetAndNotNull(name):
                props[name] = None
            elif typ == ogr.OFTDate:
                props[name] = f.GetFieldAsString(name).replace("/", "-")
            elif sub == ogr.OFSTBoolean:
                props[name] = bool(f.GetField(name))
            else:
                props[name] = f.GetField(name)
        out[f.GetField("fid")] = {
            "type": "Feature", "id": f.GetField("fid"), "properties": props,
            "geometry": None if g is None else json.loads(g.ExportToJson())}
    return out


def test_every_feature_equals_gdal(provider: PublicOGRProvider, store: str) -> None:
    ref = reference(store)
    fc = provider.query(offset=0, limit=1000)
    assert fc["numberMatched"] == N and fc["numberReturned"] == N
    assert [f["id"] for f in fc["features"]] == [f"T-{i:04d}" for i in range(N)]
    for f in fc["features"]:
        assert f == ref[f["id"]]
    # the types a client sees, not just equal-looking values
    f9 = next(f for f in fc["features"] if f["id"] == "T-0009")["properties"]
    assert f9["ok"] is True and f9["big"] == 2**40 + 9 and f9["day"] == "2024-05-10"
    assert isinstance(f9["diam"], float) and f9["name"] == "x\ny"
    assert fc["features"][1]["properties"]["name"] == "O'Brien"
    assert next(f for f in fc["features"] if f["id"] == "T-0017")["geometry"] is None


def test_paging_sorting_filters_select(provider: PublicOGRProvider, store: str) -> None:
    ref = reference(store)
    pages = [provider.query(offset=o, limit=50, sortby=[{"property": "diam", "order": "-"}])
             for o in range(0, N, 50)]
    ids = [f["id"] for p in pages for f in p["features"]]
    assert len(ids) == N and len(set(ids)) == N
    diam = [ref[i]["properties"]["diam"] for i in ids]
    nonnull = [d for d in diam if d is not None]
    assert nonnull == sorted(nonnull, reverse=True)
    fc = provider.query(limit=1000, properties=[("name", "O'Brien"), ("ok", "true")])
    want = sorted(k for k, v in ref.items()
                  if v["properties"]["name"] == "O'Brien" and v["properties"]["ok"] is True)
    assert sorted(f["id"] for f in fc["features"]) == want and fc["numberMatched"] == len(want)
    sel = provider.query(limit=3, select_properties=["small"], skip_geometry=True)
    assert [f["properties"] for f in sel["features"]] == [{"small": 0}, {"small": 1},
                                                          {"small": 2}]
    assert all(f["geometry"] is None for f in sel["features"])
    assert provider.query(resulttype="hits", properties=[("small", "3")])["numberMatched"] == 60


def test_bbox_is_exact_intersection(provider: PublicOGRProvider, store: str) -> None:
    from shapely import box, from_geojson, intersects

    ref = reference(store)
    bb = [137.3905, 36.8105, 137.4213, 36.8277]  # cuts through many features' boxes
    q = box(*bb)
    want = sorted(k for k, v in ref.items() if v["geometry"] is not None
                  and intersects(from_geojson(json.dumps(v["geometry"])), q))
    fc = provider.query(limit=1000, bbox=bb)
    got = [f["id"] for f in fc["features"]]
    assert sorted(got) == want and fc["numberMatched"] == len(want) and 0 < len(want) < N
    page2 = provider.query(limit=5, offset=5, bbox=bb)
    assert [f["id"] for f in page2["features"]] == got[5:10]
    assert all(f == ref[f["id"]] for f in fc["features"])


def test_get_and_missing(provider: PublicOGRProvider, store: str) -> None:
    from pygeoapi.provider.base import ProviderItemNotFoundError

    ref = reference(store)
    assert provider.get("T-0002") == ref["T-0002"]
    assert provider.get("T-0034")["geometry"] is None
    for bad in ("nope", "x'); DROP TABLE things; --", "a\x00b"):
        with pytest.raises(ProviderItemNotFoundError):
            provider.get(bad)


def test_reprojected_output_keeps_values(provider: PublicOGRProvider, store: str) -> None:
    """``?crs=`` goes through OGR: same ids and properties, coordinates reprojected."""
    from pygeoapi.util import CrsTransformSpec

    spec = CrsTransformSpec(
        source_crs_uri="http://www.opengis.net/def/crs/OGC/1.3/CRS84", source_crs_wkt="",
        target_crs_uri="http://www.opengis.net/def/crs/EPSG/0/3857", target_crs_wkt="")
    plain = provider.query(limit=20)
    moved = provider.query(limit=20, crs_transform_spec=spec)
    assert [f["id"] for f in moved["features"]] == [f["id"] for f in plain["features"]]
    for a, b in zip(plain["features"], moved["features"], strict=True):
        assert {k: v for k, v in a["properties"].items() if k != "day"} == {
            k: v for k, v in b["properties"].items() if k != "day"}
    x = moved["features"][3]["geometry"]["coordinates"][0]  # T-0003 is a point
    assert 1.5e7 < x < 1.6e7  # metres in EPSG:3857, not degrees


def test_json_is_what_pygeoapi_dumps(provider: PublicOGRProvider) -> None:
    """The dicts serialise with the stdlib encoder pygeoapi uses (no date/Decimal objects)."""
    fc = provider.query(limit=N)
    assert json.loads(json.dumps(fc)) == fc
    assert Path(provider.data_def["source"]).suffix == ".gpkg"


def test_number_matched_on_every_kind_of_page(provider: PublicOGRProvider) -> None:
    """numberMatched is the total whether it comes from COUNT or from a page that ends early."""
    for offset, limit, returned in ((0, 10, 10), (N - 3, 10, 3), (N, 10, 0), (N + 5, 10, 0),
                                    (0, N + 1, N)):
        fc = provider.query(offset=offset, limit=limit)
        assert (fc["numberMatched"], fc["numberReturned"]) == (N, returned), (offset, limit)
    f = provider.query(offset=55, limit=100, properties=[("small", "1")])
    assert (f["numberMatched"], f["numberReturned"]) == (60, 5)
    f = provider.query(offset=0, limit=100, properties=[("small", "1")])
    assert (f["numberMatched"], f["numberReturned"]) == (60, 60)


# ------------------------------------------------------ PostGIS: the same answer, serialised in SQL

def _pg_release(new_pg_db: Any, root: Path) -> tuple[Path, dict[str, Any], str]:
    """A fixture-project release published into PostGIS (its public.gpkg is written from the
    very same tables): (public.gpkg, pygeoapi config, database URL)."""
    import yaml
    from publish_fixtures import isolated_site_builders, make_project

    from publish.build import publish

    url = new_pg_db()
    with isolated_site_builders():
        res = publish(make_project(root, n_pipes=150, n_shelters=12, store=url))
    return res.store, yaml.safe_load(res.config.read_text(encoding="utf-8")), url


@pytest.fixture(scope="module")
def pg_release(new_pg_db: Any, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Path, dict[str, Any], str]:
    return _pg_release(new_pg_db, tmp_path_factory.mktemp("pgrel"))


def _pair(release: tuple[Path, dict[str, Any], str], lid: str) -> tuple[Any, Any]:
    """(GeoPackage provider, PostGIS provider) of one collection of the release."""
    from publish.server.providers_pg import PublicPostgreSQLProvider

    gpkg, cfg, _ = release
    pdef = cfg["resources"][lid]["providers"][0]
    assert pdef["name"].endswith("PublicPostgreSQLProvider")
    ogr_def = {"name": "publish.server.providers.PublicOGRProvider", "type": "feature",
               "data": {"source_type": "GPKG", "source": str(gpkg), "source_options": {}},
               "layer": lid, "id_field": pdef["id_field"], "queryables": pdef["queryables"],
               "field_titles": pdef.get("field_titles", {})}
    return PublicOGRProvider(ogr_def), PublicPostgreSQLProvider(pdef)


@pytest.mark.parametrize("lid", ["sewer_pipes", "shelters"])
def test_postgis_pages_equal_geopackage_on_a_full_walk(pg_release: Any, lid: str) -> None:
    """Every page of a walk, and the JSON text a client gets, is the GeoPackage provider's."""
    gp, pg = _pair(pg_release, lid)
    total = gp.query(resulttype="hits")["numberMatched"]
    assert total > 0 and pg.query(resulttype="hits")["numberMatched"] == total
    seen = []
    for offset in range(0, total + 7, 7):
        a, b = gp.query(offset=offset, limit=7), pg.query(offset=offset, limit=7)
        assert json.dumps(b, ensure_ascii=False) == json.dumps(a, ensure_ascii=False), offset
        seen += [f["id"] for f in b["features"]]
    assert len(seen) == total == len(set(seen))
    full, ref = pg.query(limit=total)["features"], gp.query(limit=total)["features"]
    kinds = [(k, type(v).__name__) for f in full for k, v in f["properties"].items()]
    assert kinds == [(k, type(v).__name__) for f in ref for k, v in f["properties"].items()]
    assert {"str", "int", "float"} <= {t for _, t in kinds} or lid == "shelters"
    for f in gp.query(limit=3)["features"]:
        assert pg.get(f["id"]) == f == gp.get(f["id"])


def test_postgis_bbox_sort_filter_select_equal_geopackage(pg_release: Any) -> None:
    gp, pg = _pair(pg_release, "sewer_pipes")
    allf = gp.query(limit=10_000)["features"]
    x0, y0, x1, y1 = shapely.total_bounds(
        [shapely.from_geojson(json.dumps(f["geometry"])) for f in allf])
    bb = [x0 + (x1 - x0) / 4, y0 + (y1 - y0) / 4, x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2]
    queries: list[dict[str, Any]] = [
        {"bbox": bb, "limit": 1000},
        {"bbox": bb, "limit": 4, "offset": 3},
        {"limit": 1000, "sortby": [{"property": "diameter_mm", "order": "-"}]},
        {"limit": 9, "offset": 20, "sortby": [{"property": "material", "order": "+"},
                                             {"property": "diameter_mm", "order": "-"}]},
        {"limit": 1000, "properties": [("material", "VU")]},
        {"limit": 5, "select_properties": ["district", "material"], "skip_geometry": True},
        {"resulttype": "hits", "bbox": bb},
    ]
    for q in queries:
        a, b = gp.query(**q), pg.query(**q)
        assert b == a, q
    inside = gp.query(bbox=bb, limit=1000)
    assert 0 < inside["numberMatched"] < len(allf)


def test_postgis_all_value_types_equal_geopackage(store: str, provider: PublicOGRProvider,
                                                   new_pg_db: Any) -> None:
    """The typed fixture table (int64, boolean, date, quotes, newlines, nulls, null,
    multi-part and holed geometries, unrounded coordinates) copied value for value into
    PostGIS serialises exactly as the GeoPackage provider serialises the file."""
    import sqlalchemy as sa

    from etl.stores.url import sqlalchemy_url
    from publish.server.providers_pg import PublicPostgreSQLProvider

    url = sqlalchemy_url(new_pg_db())
    rows = []
    ds = ogr.Open(store)  # kept referenced: the layer dies with its dataset
    for f in ds.GetLayer("things"):
        g = f.GetGeometryRef()
        rows.append({"fid": f.GetField("fid"), "name": f.GetField("name"),
                     "big": f.GetField("big"), "small": f.GetField("small"),
                     "ok": None if not f.IsFieldSetAndNotNull("ok") else bool(f.GetField("ok")),
                     "diam": f.GetField("diam"),
                     "day": f.GetFieldAsString("day").replace("/", "-") or None,
                     "wkb": None if g is None else bytes(g.ExportToIsoWkb())})
    with sa.create_engine(url).begin() as c:
        c.execute(sa.text("CREATE TABLE things (fid text PRIMARY KEY, name text, big bigint, "
                          "small integer, ok boolean, diam double precision, day text, "
                          "geom geometry(Geometry, 4326))"))
        c.execute(sa.text("INSERT INTO things VALUES (:fid, :name, :big, :small, :ok, :diam, "
                          ":day, ST_SetSRID(ST_GeomFromWKB(:wkb), 4326))"), rows)
        c.execute(sa.text("CREATE INDEX ON things USING gist (geom)"))
    u = sa.engine.make_url(url)
    pg = PublicPostgreSQLProvider({
        "name": "publish.server.providers_pg.PublicPostgreSQLProvider", "type": "feature",
        "data": {"host": u.host, "port": u.port, "dbname": u.database, "user": u.username,
                 "search_path": ["public"]},
        "table": "things", "id_field": "fid", "geom_field": "geom",
        "queryables": ["name", "small", "ok"], "field_titles": {}})
    bb = [137.3905, 36.8105, 137.4213, 36.8277]
    for q in ({"limit": N}, {"limit": N, "bbox": bb}, {"limit": 3, "offset": 2, "bbox": bb},
              {"limit": 40, "offset": 33, "properties": [("name", "O'Brien"), ("ok", "true")]},
              {"limit": N, "sortby": [{"property": "diam", "order": "-"}]}):
        want = provider.query(**q)
        assert json.dumps(pg.query(**q)) == json.dumps(want), q
    assert pg.get("T-0034") == provider.get("T-0034") and pg.get("T-0034")["geometry"] is None
    assert pg.get("T-0002") == reference(store)["T-0002"]
