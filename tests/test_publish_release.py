"""Releases: generated pygeoapi config, OpenAPI, atomic switch, pruning, failure safety."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from publish_fixtures import isolated_site_builders, make_project

from config import Project
from publish.build import PublishResult, SiteContext, publish, release
from publish.build.apiconfig import CRS84, EPSG4326, PROCESSOR, PROVIDER
from publish.errors import PublishError


@pytest.fixture(scope="module", autouse=True)
def _only_our_site_builders() -> Iterator[None]:
    with isolated_site_builders():
        yield



@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, PublishResult]:
    project = make_project(tmp_path_factory.mktemp("release"), max_items=500, default_items=20,
                           roles=True)
    return project, publish(project)


def test_release_layout_and_current(first: tuple[Project, PublishResult]) -> None:
    project, res = first
    pub = project.public_dir
    assert os.readlink(pub / "current") == f"releases/{res.release_id}"
    for name in ("public.gpkg", "pygeoapi.yml", "openapi.yml", "release.json",
                 "locale/ja/LC_MESSAGES/messages.mo", "site/maps"):
        assert (res.path / name).exists(), name
    meta = release.current_release(pub).meta
    assert meta["release_id"] == res.release_id
    assert set(meta["layers"]) == set(res.layers)
    assert all(v > 0 for k, v in res.timings.items() if k in ("store", "openapi", "total"))
    assert "公開完了" in res.message() and "published" in res.message()


def test_pygeoapi_config(first: tuple[Project, PublishResult]) -> None:
    project, res = first
    cfg = yaml.safe_load(res.config.read_text(encoding="utf-8"))
    srv = cfg["server"]
    # every URL under the placeholder the server replaces by the request's (or base_url)
    assert srv["url"] == "http://public-url.invalid/api"
    assert "%(pathname)s" not in cfg["logging"]["logformat"]
    assert srv["limits"] == {"max_items": 500, "default_items": 20, "on_exceed": "throttle"}
    assert srv["languages"] == ["ja", "en-US"]
    md = cfg["metadata"]
    assert md["license"]["url"] and md["contact"]["url"] and md["provider"]["url"]
    assert md["identification"]["title"] == {"ja": "魚津市 公開型GIS",
                                             "en": "Uozu City public GIS"}
    assert md["contact"]["name"] == "魚津市 建設課"
    # never parcel_tax; the one process renders pipe sheets from the public store, named by
    # dotted path (the build imports nothing of the server) and with the page of the parcels
    assert set(cfg["resources"]) == {"sewer_pipes", "shelters", "parcels", "pipe-sheet"}
    assert cfg["resources"]["pipe-sheet"] == {"type": "process", "processor": {
        "name": PROCESSOR, "store": str(res.store), "project_root": str(project.root),
        "map_page": "pipe.html"}}
    pipes = cfg["resources"]["sewer_pipes"]
    assert "2025-03-31" in pipes["description"]["ja"] and "時点" in pipes["description"]["ja"]
    assert "as of 2025-03-31" in pipes["description"]["en"]
    assert str(pipes["extents"]["temporal"]["begin"]).startswith("2025-03-31")
    assert pipes["extents"]["spatial"]["crs"] == CRS84
    bbox = pipes["extents"]["spatial"]["bbox"]
    assert bbox == list(res.layers["sewer_pipes"].bbox)
    assert {link["rel"] for link in pipes["links"]} == {"license", "related",
                                                         "terms-of-service", "enclosure"}
    assert sorted(link["href"] for link in pipes["links"] if link["rel"] == "enclosure") == [
        f"http://public-url.invalid/opendata/sewer_pipes.{f}" for f in ("csv", "geojson", "gpkg")]
    assert any("出典: 魚津市 下水道台帳" in link["title"] for link in pipes["links"])
    prov = pipes["providers"][0]
    assert prov["name"] == PROVIDER and prov["id_field"] == "fid"
    assert prov["data"] == {"source_type": "GPKG", "source": str(res.store),
                            "source_options": {}}
    assert prov["storage_crs"] == CRS84  # the city's zone only as an output CRS (axis trap)
    assert prov["crs"] == [CRS84, EPSG4326, "http://www.opengis.net/def/crs/EPSG/0/6675"]
    assert prov["queryables"] == ["pipe_id", "material", "diameter_mm", "district"]


def test_openapi_document(first: tuple[Project, PublishResult]) -> None:
    _, res = first
    oas = yaml.safe_load(res.openapi.read_text(encoding="utf-8"))
    assert oas["servers"][0]["url"].endswith("/api")
    for lid in res.layers:
        assert f"/collections/{lid}/items" in oas["paths"]
    assert not any("parcel_tax" in p for p in oas["paths"])
    params = {p.get("name") for p in oas["paths"]["/collections/sewer_pipes/items"]["get"]
              ["parameters"] if isinstance(p, dict) and "name" in p}
    assert {"pipe_id", "material", "diameter_mm", "district"} <= params
    assert "install_fy" not in params  # not a queryable: not advertised as a filter


def test_republish_switches_and_prunes(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    ids = [publish(project, keep=2).release_id for _ in range(4)]
    assert len(set(ids)) == 4 and ids == sorted(ids)
    assert release.current_id(project.public_dir) == ids[-1]
    assert release.list_releases(project.public_dir) == ids[-2:]
    assert not list(project.public_dir.glob(".current.*"))


def test_failed_publish_leaves_current_untouched(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    good = publish(project)

    def broken_site(ctx: SiteContext) -> None:
        (ctx.site_dir / "maps" / "half.html").write_text("<html>", encoding="utf-8")
        raise RuntimeError("map builder crashed")

    with pytest.raises(RuntimeError, match="map builder crashed") as exc:
        publish(project, site_builders=[broken_site])
    assert any("現在の公開版" in note and good.release_id in note
               for note in exc.value.__notes__)
    assert release.current_id(project.public_dir) == good.release_id
    assert release.list_releases(project.public_dir) == [good.release_id]
    assert [p.name for p in (project.public_dir / "releases").iterdir()] == [good.release_id]


def test_site_builders_write_into_the_release(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    seen: list[SiteContext] = []

    def builder(ctx: SiteContext) -> None:
        seen.append(ctx)
        (ctx.site_dir / "maps" / "demo.html").write_text("<html>demo</html>", encoding="utf-8")

    res = publish(project, site_builders=[builder])
    assert seen[0].release_id == res.release_id and seen[0].store == res.store
    assert (res.path / "site" / "maps" / "demo.html").read_text(encoding="utf-8") == \
        "<html>demo</html>"


def test_second_publisher_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    publish(project)
    entered, leave = threading.Event(), threading.Event()

    def slow(ctx: SiteContext) -> None:
        entered.set()
        leave.wait(30)

    t = threading.Thread(target=lambda: publish(project, site_builders=[slow]))
    t.start()
    try:
        assert entered.wait(30)
        with pytest.raises(PublishError, match="別の公開処理が実行中"):
            publish(project)
    finally:
        leave.set()
        t.join(30)
    assert len(release.list_releases(project.public_dir)) == 2
