"""What a release answers besides the API: walking graph, search index, open data, change feed.

Each is built by :func:`publish.build.publish` from the release's public store only (so it holds
nothing the API does not serve) into the release's own folder, so it switches with the release
and is deleted with a failed one:

* ``walk_graph.npz`` (:mod:`publish.build.routing`): where a line layer says
  ``map.network: walk``; served by the ``walk-route`` process (and written to PostGIS for
  pgRouting when the store is PostGIS);
* ``site/maps/search.json`` (:mod:`publish.build.search_index`): the one search of every page;
* ``opendata/`` (:mod:`publish.build.opendata`): every public layer as GeoPackage, GeoJSON and
  CSV, plus the standard layouts; linked from each API collection (``rel=enclosure``);
* ``changes/`` (:mod:`publish.build.changes`): the diff against the previous release, per layer
  JSON and Atom, and the history the ``/api/changes`` query reads.

After writing, :func:`check_downloads` re-opens every GeoPackage and GeoJSON with GDAL and fails
the publish unless its columns are exactly the layer's allow-list (or the standard's columns).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyogrio

from config import Project
from publish.build import changes, opendata, precompress, routing, search_index
from publish.errors import LeakCheckError
from publish.model import LINK_ORIGIN

#: where the site's pages find the search index (``site/maps/``, served under ``/maps/``)
SEARCH_DIR = "maps"
#: server paths of the release's downloads and feeds
OPENDATA_PATH = "/opendata"
CHANGES_PATH = "/changes"
MEDIA_TYPES = {"gpkg": "application/geopackage+sqlite3", "geojson": "application/geo+json",
               "csv": "text/csv; charset=utf-8", "json": "application/json",
               "atom": "application/atom+xml", "txt": "text/plain; charset=utf-8"}

Tick = Callable[[str], None]


@dataclass
class Answers:
    """What :func:`build` wrote, for the API config and ``release.json``."""

    graph: routing.WalkGraph | None = None
    graph_path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    downloads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def processes(self) -> dict[str, dict[str, Any]]:
        """Extra OGC API processes of the release (id -> pygeoapi ``resources`` entry)."""
        if self.graph_path is None:
            return {}
        example = routing.example_inputs(self.graph) if self.graph is not None else None
        return {routing.PROCESS_ID: routing.process_resource(self.graph_path, example)}


def check(project: Project) -> None:
    """What only the engine can check in the city's config (the open-data layouts' standards
    and columns): called before a publish writes anything."""
    opendata.check_layouts(project)


def walk_graph(project: Project, release_dir: Path, store: Path) -> Answers:
    """Build the walking graph into the release (nothing where no layer is a walk network)."""
    if not routing.enabled(project):
        return Answers()
    graph, path, summary = routing.release_artifact(project, store, release_dir)
    return Answers(graph, path, {"routing": {**summary, "file": path.name,
                                             "process": routing.PROCESS_ID}})


def build(project: Project, release_dir: Path, store: Path, release_id: str,
          data_dates: dict[str, str], expected: dict[str, set[str]],
          previous: tuple[str, Path] | None, answers: Answers,
          tick: Tick | None = None) -> Answers:
    """Search index, open data and change feed of a release (after its store is checked).

    ``previous``: (id, folder) of the release current before this one, or None.
    """
    def say(stage: str) -> None:
        if tick:
            tick(stage)

    say("search")
    site_maps = release_dir / "site" / SEARCH_DIR
    site_maps.mkdir(parents=True, exist_ok=True)
    path, counts = search_index.release_artifact(project, store, site_maps)
    answers.meta["search"] = {**counts, "file": f"maps/{path.name}"}

    say("opendata")
    catalog = opendata.release_artifact(project, store, release_dir, data_dates)
    check_downloads(project, release_dir / opendata.OPENDATA_DIR, catalog, expected)
    answers.downloads = {lid: [{**f, "type": MEDIA_TYPES[f["format"]]} for f in e["files"]]
                         for lid, e in catalog.items()}
    answers.meta["opendata"] = {
        "path": OPENDATA_PATH, "readme": "README.txt", "index": "index.json",
        "layers": {lid: {"files": [{k: f[k] for k in ("file", "format", "features", "bytes")}
                                   | ({"standard": f["standard"]} if f.get("standard") else {})
                                   for f in e["files"]],
                         "standards": e["standards"]} for lid, e in catalog.items()}}

    say("changes")
    at = dt.datetime.now(dt.UTC)
    summary = changes.release_changes(
        project, store, release_id, at, previous[1] if previous else None,
        release_dir / changes.CHANGES_DIR, previous_id=previous[0] if previous else None,
        base_url=LINK_ORIGIN)
    answers.meta["changes"] = {
        "path": CHANGES_PATH, "at": summary["at"], "previous": summary["previous"],
        "layers": {lid: {op: len(d[op]) for op in changes.OPS}
                   for lid, d in summary["layers"].items()}}
    return answers


def check_downloads(project: Project, out: Path, catalog: dict[str, Any],
                    expected: dict[str, set[str]]) -> None:
    """Re-open every GeoPackage and GeoJSON: columns exactly the allow-list (own layout) or the
    standard's columns (standard layout), and only public layers. The leak guard of downloads.
    """
    problems: list[str] = []
    stds = opendata.standards()
    if set(catalog) - set(expected):
        problems.append(f"layers {sorted(set(catalog) - set(expected))} are not public")
    written = {p.name for p in out.iterdir()}
    listed = {f["file"] for e in catalog.values() for f in e["files"]} | {"index.json",
                                                                          "README.txt"}
    # precompressed copies (publish.build.precompress) of listed files: the same bytes
    copies = {f"{n}{sfx}" for n in listed for sfx in precompress.ENCODINGS.values()}
    if written - listed - copies:
        problems.append(f"files not in the catalogue: {sorted(written - listed - copies)}")
    for lid, e in catalog.items():
        for f in e["files"]:
            if f["format"] not in ("gpkg", "geojson"):
                continue
            fields = set(pyogrio.read_info(out / f["file"])["fields"])
            want = (set(stds[f["standard"]].columns) if f.get("standard")
                    else expected.get(lid, set()))
            # GeoJSON has no schema: an empty layer's file has no columns at all
            empty_json = f["format"] == "geojson" and f["features"] == 0
            if (fields - want) if empty_json else (fields != want):
                problems.append(f"{f['file']}: columns {sorted(fields ^ want)} differ")
    if problems:
        raise LeakCheckError("leak_check_failed", path=str(out), detail="; ".join(problems))
