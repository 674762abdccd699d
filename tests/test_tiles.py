"""Vector tiles at publish (publish/build/tiles.py): what they hold, read back through GDAL.

The archive of a page must hold exactly the page's tiled layers, only allow-listed columns,
every public feature at the finest zoom, and (for large layers) a generalised network at city
zoom that keeps the style columns only; it is part of the atomic release: a failed leak check
stops the publish and leaves the current release untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyogrio
import pytest
import shapely
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType
from publish_fixtures import make_project, public_copy

from config import load_project
from config.messages import text
from publish.build import release as rel
from publish.build import tiles as vtiles
from publish.errors import LeakCheckError, PublishError
from publish.pages.page import read_tables


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from publish.build import publish

    project = make_project(tmp_path_factory.mktemp("tiles"), roles=True, n_pipes=80)
    return project, publish(project)


def _manifest(res: Any, page: str = "pipe") -> dict[str, Any]:
    return json.loads((res.path / "site" / "maps" / "tiles" / f"{page}.json").read_text())


def test_the_page_archive_holds_the_public_layers_and_nothing_else(published: Any) -> None:
    project, res = published
    m = _manifest(res)
    path = res.path / "site" / "maps" / m["url"]
    assert path.is_file() and path.stat().st_size == m["bytes"]
    with path.open("rb") as f:
        h = Reader(MmapSource(f)).header()
    assert (h["tile_type"], h["tile_compression"]) == (TileType.MVT, Compression.GZIP)
    assert h["max_zoom"] == vtiles.MAX_DATA_ZOOM
    tables = read_tables(res.store)
    tiled = {s.id for s in project.specs.values()
             if s.visibility == "public" and "pipe" in s.map.pages}
    assert {name for name, _ in pyogrio.list_layers(path)} == tiled == set(m["layers"])
    for lid in tiled:
        got = pyogrio.read_dataframe(path, layer=lid, ZOOM_LEVEL=str(vtiles.MAX_DATA_ZOOM))
        public = pyogrio.read_dataframe(res.store, layer=lid)
        # every public feature, by its public id, and only public columns
        assert set(got["fid"]) == set(public["fid"]), lid
        assert set(got.columns) - {"geometry", "mvt_id"} <= set(tables[lid].columns), lid
        assert got["mvt_id"].isna().all(), "the store's row id is never written"
        # the values are the public store's
        one = public.iloc[0]
        row = got[got["fid"] == one["fid"]].iloc[0]
        for col in set(got.columns) - {"geometry", "mvt_id", "fid"}:
            if one[col] is not None and one[col] == one[col]:
                assert str(row[col]) == str(one[col]) or float(row[col]) == float(one[col]), col
    # the bounds cover the data (CRS84)
    b = res.layers["sewer_pipes"].bbox
    assert h["min_lon_e7"] / 1e7 <= b[0] and h["max_lon_e7"] / 1e7 >= b[2]


def test_large_layers_are_generalised_at_city_zoom(published: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    project, res = published
    monkeypatch.setattr(vtiles, "SMALL_LAYER", 10)  # the fixture's 80 pipes count as large
    m = vtiles.write_page_tiles(project, "pipe", res.store, tmp_path)
    assert m is not None
    band = m["layers"]["sewer_pipes"]
    assert band == {"minzoom": vtiles.CITY_DATA_ZOOM, "detailzoom": 15, "maxzoom": 15}
    path = tmp_path / m["url"]
    general = pyogrio.read_dataframe(path, layer="sewer_pipes", ZOOM_LEVEL=str(band["minzoom"]))
    detail = pyogrio.read_dataframe(path, layer="sewer_pipes", ZOOM_LEVEL="15")
    spec = project.specs["sewer_pipes"]
    style = {f for f in (spec.map.color_by, *spec.map.color_by_options,
                         spec.map.width_by.field if spec.map.width_by else None) if f}
    # city zoom: one merged feature per style, style values only (no id: not pickable singly);
    # GDAL lists the layer's fields of every zoom, so look at the values
    valued = {c for c in general.columns if c != "geometry" and general[c].notna().any()}
    assert valued == style
    assert len(general) < len(detail)
    assert "fid" in detail.columns and detail["fid"].nunique() == res.counts["sewer_pipes"]
    assert json.loads((tmp_path / "tiles" / "pipe.json").read_text())["url"] == m["url"]


#: Web Mercator: metres of one tile at data zoom 0 (EPSG:3857, what GDAL reads MVT in)
WORLD_M = 2 * 20037508.342789244


def _unit_m(zoom: int) -> float:
    """Metres of one tile unit at a general data zoom (the coarse grid up to COARSE_MAX_ZOOM)."""
    extent = vtiles.COARSE_EXTENT if zoom <= vtiles.COARSE_MAX_ZOOM else vtiles.GENERAL_EXTENT
    return WORLD_M / 2 ** zoom / extent


def _uncovered(store: Path, archive: Path, lid: str, zoom: int) -> tuple[float, list[str]]:
    """(share of the layer's length drawn at ``zoom``, ids of features drawn less than 90 %).

    Drawn = within 2 tile units (half a unit of grid, one of simplification, half to spare) of
    a line of the archive at that zoom, whatever its style: what a resident sees at city zoom.
    """
    detail = pyogrio.read_dataframe(store, layer=lid, columns=["fid"]).to_crs("EPSG:3857")
    drawn = pyogrio.read_dataframe(archive, layer=lid, ZOOM_LEVEL=str(zoom))
    assert (drawn.crs.to_epsg(), len(drawn) > 0) == (3857, True), (lid, zoom)
    near = shapely.union_all(drawn.geometry.values).buffer(2 * _unit_m(zoom))
    covered = detail.geometry.intersection(near).length
    share = float(covered.sum() / detail.length.sum())
    short = detail.loc[covered < 0.9 * detail.length, "fid"].tolist()
    return share, short


def test_the_general_zooms_draw_the_whole_network(published: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Every zoom of the generalised band draws (within its grid) every pipe of the detail."""
    project, res = published
    monkeypatch.setattr(vtiles, "SMALL_LAYER", 10)
    m = vtiles.write_page_tiles(project, "pipe", res.store, tmp_path)
    assert m is not None
    band = m["layers"]["sewer_pipes"]
    zooms = range(band["minzoom"], band["detailzoom"])
    assert list(zooms) == [11, 12, 13, 14]  # display 12 (a city) to 15
    for z in zooms:
        share, short = _uncovered(res.store, tmp_path / m["url"], "sewer_pipes", z)
        assert (z, short) == (z, []) and share >= 0.99, (z, share)


@pytest.fixture(scope="module")
def sample_city(uozu_merged: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Any, Any]:
    """The Uozu sample exports (conftest's ``uozu_merged``) published into a folder of its own:
    a real network (thousands of connected pipes), not the fixture's scattered segments."""
    from publish.build import publish

    root, _ = uozu_merged
    project = public_copy(load_project(root), tmp_path_factory.mktemp("tiles-city") / "public")
    return project, publish(project)


def test_the_whole_sample_network_is_drawn_at_city_zoom(sample_city: tuple[Any, Any]) -> None:
    """The published pipe page of the sample city: each pipe layer, at every data zoom from the
    city's (display 12) to the finest, draws every public pipe (the general band's dissolved,
    merged lines included)."""
    project, res = sample_city
    for page in project.config.publish.pages:
        path = res.path / "site" / "maps" / "tiles" / f"{page.id}.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text(encoding="utf-8"))
        pipes = [lid for lid in m["layers"] if project.specs[lid].map.role == "pipe"
                 and project.specs[lid].map.min_zoom <= vtiles.CITY_DATA_ZOOM + 1]
        if not pipes:
            continue
        general = [lid for lid in pipes
                   if m["layers"][lid]["minzoom"] < m["layers"][lid]["detailzoom"]]
        assert general, "the sample city has a pipe layer large enough to be generalised"
        for lid in pipes:
            band = m["layers"][lid]
            assert band["minzoom"] == vtiles.CITY_DATA_ZOOM, lid
            for z in range(band["minzoom"], band["detailzoom"]):
                share, short = _uncovered(res.store, res.path / "site" / "maps" / m["url"],
                                          lid, z)
                assert (lid, z, short) == (lid, z, []) and share >= 0.99, (lid, z, share)
        return
    raise AssertionError("no page of the sample city tiles a pipe layer from city zoom")


def test_the_leak_check_names_what_is_wrong(published: Any) -> None:
    _, res = published
    m = _manifest(res)
    path = res.path / "site" / "maps" / m["url"]
    tables = read_tables(res.store)
    allowed = {lid: set(tables[lid].columns) for lid in m["layers"]}
    counts = {lid: tables[lid].count for lid in m["layers"]}
    vtiles.check_tiles(path, allowed, counts)  # as published: passes
    narrow = {**allowed, "sewer_pipes": allowed["sewer_pipes"] - {"material"}}
    with pytest.raises(LeakCheckError) as e:
        vtiles.check_tiles(path, narrow, counts)
    assert str(e.value) == text("tiles_leak", path=path.name, what="sewer_pipes: material")
    fewer = {lid: c for lid, c in counts.items() if lid != "parcels"}
    with pytest.raises(LeakCheckError) as e:
        vtiles.check_tiles(path, {k: v for k, v in allowed.items() if k != "parcels"}, fewer)
    assert str(e.value) == text("tiles_leak", path=path.name, what="parcels")
    more = {**counts, "sewer_pipes": counts["sewer_pipes"] + 1}
    with pytest.raises(PublishError) as e:
        vtiles.check_tiles(path, allowed, more)
    assert str(e.value) == text("tiles_incomplete", path=path.name, layer="sewer_pipes",
                                have=counts["sewer_pipes"], want=counts["sewer_pipes"] + 1)


def test_a_failed_tile_check_leaves_the_current_release(published: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from publish.build import publish

    project, _ = published
    before = rel.current_id(project.public_dir)
    releases = rel.list_releases(project.public_dir)

    def leak(path: Path, allowed: Any, counts: Any) -> None:
        raise LeakCheckError("tiles_leak", path=path.name, what="x")

    monkeypatch.setattr(vtiles, "check_tiles", leak)
    with pytest.raises(LeakCheckError):
        publish(project)
    assert rel.current_id(project.public_dir) == before
    assert rel.list_releases(project.public_dir) == releases
    assert sorted(p.name for p in (project.public_dir / "releases").iterdir()) == releases
