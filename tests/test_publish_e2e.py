"""End to end on the real specs: sample exports -> ETL merge (session fixture) -> publish -> API.

Why here too: the synthetic fixture proves the rules; this proves they hold for the specs and the
master the ETL really produces (layer names, code lists, filters, owner names in parcel_tax).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from publish_fixtures import isolated_site_builders

from config import Project, load_project
from etl.schema import output_columns
from publish.build import public_store as store
from publish.build import publish
from publish.server.app import create_app

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module", autouse=True)
def _only_our_site_builders() -> Iterator[None]:
    with isolated_site_builders():
        yield



@pytest.fixture(scope="module")
def real(uozu_merged: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[Project, Any]:
    root, _ = uozu_merged
    project = load_project(root)
    # publish into our own directory: the merged session fixture is shared with other tests
    cfg = project.config.model_copy(update={"public_dir": str(tmp_path_factory.mktemp("pub"))})
    project = Project(project.root, cfg, project.specs, project.codelists, project.spec_hashes)
    return project, publish(project)


def test_real_master_publishes_public_layers_only(real: tuple[Project, Any]) -> None:
    project, res = real
    public = {lid for lid, s in project.specs.items() if s.visibility == "public"}
    assert set(res.layers) == public and "parcel_tax" not in res.layers
    master = project.merged_dir / "master.gpkg"
    for lid, lay in res.layers.items():
        spec = project.specs[lid]
        if spec.public_filter:
            cols = sorted(store.filter_names(spec.public_filter))
            df = pyogrio.read_dataframe(master, layer=lid, columns=cols, read_geometry=False)
            mask = df.eval(spec.public_filter, engine="python")
            expect = int(mask.astype("boolean").fillna(False).sum())
        else:
            expect = pyogrio.read_info(master, layer=lid)["features"]
        assert lay.features == expect, lid
        info = pyogrio.read_info(res.store, layer=lid)
        assert info["crs"] == "EPSG:4326" and info["features"] == expect


def test_no_internal_value_reaches_the_store(real: tuple[Project, Any]) -> None:
    """Canaries: distinct values of internal text columns (owner names, addresses, remarks)."""
    project, res = real
    blob = res.store.read_bytes()
    master = project.merged_dir / "master.gpkg"
    public_values: set[str] = set()
    for lid in res.layers:
        pub = pyogrio.read_dataframe(res.store, layer=lid, read_geometry=False)
        for c in pub.columns:
            public_values |= {str(v) for v in pub[c].dropna().unique()}
    checked = 0
    for lid, spec in project.specs.items():
        internal = [c.name for c in output_columns(spec, lineage=False)
                    if c.visibility != "public" and c.type == "str"]
        if not internal:
            continue
        have = set(pyogrio.read_info(master, layer=lid)["fields"])
        cols = [c for c in internal if c in have]
        if not cols:
            continue
        df = pyogrio.read_dataframe(master, layer=lid, columns=cols, read_geometry=False,
                                    max_features=500)
        for c in cols:
            for v in df[c].dropna().astype(str).unique()[:20]:
                # words, not digit strings (those occur inside any binary file by chance)
                if (len(v) >= 4 and sum(ch.isalpha() for ch in v) >= 2
                        and v not in public_values):
                    assert v.encode("utf-8") not in blob, (lid, c, v)
                    checked += 1
    assert checked > 10  # the canaries really ran (owner names, addresses, ...)


def test_real_release_is_served(real: tuple[Project, Any]) -> None:
    project, res = real
    client = create_app(project).test_client()
    cols = client.get("/api/collections?f=json").get_json()["collections"]
    assert {c["id"] for c in cols} == set(res.layers)
    for lid, lay in res.layers.items():
        fc = client.get(f"/api/collections/{lid}/items?f=json&limit=2").get_json()
        assert fc["numberMatched"] == lay.features, lid
        if lay.bbox:
            minx, miny, maxx, maxy = lay.bbox
            box = f"{minx},{miny},{(minx + maxx) / 2},{(miny + maxy) / 2}"
            r = client.get(f"/api/collections/{lid}/items?f=json&limit=5&bbox={box}")
            assert r.status_code == 200, lid
    assert client.get("/api/collections/parcel_tax/items").status_code == 404
    home = client.get("/").get_data(as_text=True)
    assert all(f'id="layer-{lid}"' in home for lid in res.layers)
