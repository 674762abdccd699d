"""``publish(project)``: master -> public store -> pygeoapi config -> OpenAPI -> atomic switch.

The one entry point the CLI calls (``uozu-gis publish``). Order matters for safety:

1. plan the allow-lists from the specs (config errors before anything is written);
2. write the public store into a fresh ``releases/<id>/`` and self-check it (leak guard);
   then what the release answers (:mod:`publish.build.answers`: walking graph, also as pgRouting
   tables in PostGIS, search index, open data, change feed), built from that store only;
3. generate, validate (pygeoapi's schema) and exercise (OpenAPI build) the pygeoapi config;
4. write and leak-check every page's vector tiles (:mod:`publish.build.tiles`), then build the
   map pages the project declares (:func:`publish.pages.build_site`) into ``site/``;
5. write ``release.json``, switch ``current`` atomically, prune old releases.

Any failure before step 5 deletes the new directory: the running server keeps serving the previous
release, untouched. An environment fault (the disk of the release folder full or read-only, no
permission, a PostGIS that went away or ran out of disk) becomes a bilingual error naming the
folder or server and the fix (:func:`explain_fault`), never "internal error".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyproj import CRS
from pyproj.exceptions import CRSError
from sqlalchemy.exc import DBAPIError

from config import Project
from config import messages as msg
from config.errors import EtlError
from etl.stores import open_store
from etl.stores import url as urls
from etl.stores.base import explain_os_error
from etl.stores.postgis import db_error
from publish.build import answers as ans
from publish.build import apiconfig, pgpublic, precompress, release
from publish.build import public_store as store
from publish.build import tiles as vtiles
from publish.errors import PublishError
from publish.model import SiteBuilder, SiteContext
from publish.pages import build_site

Progress = Callable[[str, str, int, int], None]  # (stage, layer, done, total), as in etl


@dataclass(frozen=True)
class PublishResult:
    """Outcome of one publish: where the release is, what it holds, how long each stage took."""

    release_id: str
    path: Path
    store: Path
    config: Path
    openapi: Path
    layers: dict[str, store.StoreLayer]
    timings: dict[str, float]
    previous: str | None = None
    pruned: tuple[str, ...] = field(default_factory=tuple)
    #: bilingual notes on what did not fail the publish (old schemas left for the next one)
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def features(self) -> int:
        return sum(lay.features for lay in self.layers.values())

    @property
    def counts(self) -> dict[str, int]:
        return {lid: lay.features for lid, lay in self.layers.items()}

    def message(self) -> str:
        return msg.text("publish_done", release=self.release_id, layers=len(self.layers),
                        features=self.features, seconds=self.timings.get("total", 0.0))


def _meta(project: Project, rid: str, source: store.MasterSource,
          layers: dict[str, store.StoreLayer], plans: dict[str, store.LayerPlan],
          timings: dict[str, float], simplified: dict[str, store.Simplified]
          ) -> dict[str, Any]:
    pc = project.config.publish
    return {
        "release_id": rid,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "master_run_id": source.run_id,
        "master_finished_at": source.manifest.get("finished_at"),
        "base_url": pc.base_url.rstrip("/") if pc.base_url else None,
        "processes": [apiconfig.PROCESS_ID] if apiconfig.has_pipe_sheet(project) else [],
        "target_crs": project.config.target_crs,
        "terms_version": pc.terms_version,
        "terms": pc.terms.model_dump() if pc.terms else None,
        "title": pc.title.model_dump(),
        "description": pc.description.model_dump(),
        "city": project.config.city.model_dump(),
        "contact": {"name": pc.contact_name, "email": pc.contact_email, "url": pc.contact_url,
                    "phone": pc.contact_phone, "city_url": pc.city_url},
        "layers": {lid: {
            "title": plans[lid].spec.title.model_dump(),
            "features": lay.features,
            "withheld": lay.withheld,
            "data_date": lay.data_date,
            "bbox": list(lay.bbox) if lay.bbox else None,
            "attribution": plans[lid].spec.attribution.model_dump(),
            "license": plans[lid].spec.license,
            "license_url": plans[lid].spec.license_url,
            "columns": lay.columns,
            "queryables": plans[lid].queryables,
            # the publication rule for complex geometries and what it did (master stays exact)
            "publish_geometry": simplified[lid].as_dict(),
        } for lid, lay in layers.items()},
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def check_publish_crs(crs: str) -> None:
    """Only CRS84 (or EPSG:4326, the same up to axis order) is a valid *storage* CRS.

    Why: pygeoapi mangles the axes of a JGD2011 plane CRS used as storage_crs (anchors §3).
    """
    try:
        ok = CRS.from_user_input(crs).equals(CRS("OGC:CRS84"), ignore_axis_order=True)
    except CRSError:
        ok = False
    if not ok:
        raise PublishError("publish_crs_unsupported", crs=crs)


def explain_fault(project: Project, url: str, e: BaseException, where: Path
                  ) -> EtlError | None:
    """An environment fault during a publish as a bilingual error naming the resource and fix.

    A database error goes through the master store's :meth:`~etl.stores.MasterStore.explain`
    (``store_lost``, ``store_server_full``, as for a merge); any other database error names the
    server (``pg_publish_failed``). File-system faults name ``where`` (the release folder) when
    GDAL's error names no file, and ``public_dir`` as the setting that moves it. None for
    anything else: a real bug keeps its traceback behind ``--debug``.
    """
    if isinstance(e, DBAPIError) and urls.scheme(url) == "postgresql":
        return pgpublic.db_fault(open_store(project, url), url, "-", e)
    return explain_os_error(e, str(where), "public_dir")


@dataclass
class _Build:
    """A release being built: what each stage function below reads and hands on to the next.

    Why named stages: each is timed under its name in ``release.json`` (``timings``) and the
    benchmarks, and each can be read (and replaced in a benchmark) on its own."""

    project: Project
    url: str
    rid: str
    rdir: Path
    source: store.MasterSource
    plans: dict[str, store.LayerPlan]
    tick: Callable[..., None]
    t_start: float
    timings: dict[str, float]
    site_builders: list[SiteBuilder]
    previous: str | None  # the release current before this one
    pgw: pgpublic.PgPublicWriter | None = None
    layers: dict[str, store.StoreLayer] = field(default_factory=dict)
    simplified: dict[str, store.Simplified] = field(default_factory=dict)
    expected: dict[str, set[str]] = field(default_factory=dict)
    answers: ans.Answers = field(default_factory=ans.Answers)
    cfg: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> Path:
        return self.rdir / release.STORE

    @property
    def counts(self) -> dict[str, int]:
        return {lid: lay.features for lid, lay in self.layers.items()}


def _stage_store(b: _Build) -> None:
    """The public store (and the PostGIS release schema) from the master."""
    if urls.scheme(b.url) == "postgresql":
        b.pgw = pgpublic.PgPublicWriter(b.project, b.url, b.rid)
    b.layers = store.write_public_store(b.project, b.source, b.store, b.plans, tick=b.tick,
                                        also=b.pgw.write if b.pgw else None,
                                        simplified=b.simplified)


def _stage_check(b: _Build) -> None:
    """Leak check of the store, the walking graph, the PostGIS schema's grants and check."""
    b.tick("check")
    b.expected = store.expected_tables(b.project)
    forbidden = store.forbidden_columns(b.project)
    counts = b.counts
    store.check_public_store(b.store, b.expected, forbidden, counts)
    b.tick("routing")
    b.answers = ans.walk_graph(b.project, b.rdir, b.store)
    pgw = b.pgw
    if pgw:
        if b.answers.graph is not None:
            pgw.write_walk_graph(b.answers.graph)
        pgw.grant()
        allowed = set(pgpublic.release_schemas(pgw.conn, pgw.prefix))
        pgpublic.check(pgw.conn, pgw.schema, pgw.reader, b.expected | pgw.extra_columns,
                       forbidden, counts | pgw.extra_counts, allowed)
        pgw.commit()  # visible to the reader role from here; the switch is later


def _stage_answers(b: _Build) -> None:
    """Search index, open data, change feed (:mod:`publish.build.answers`)."""
    prev = release.load_release(b.project.public_dir, b.previous) if b.previous else None
    ans.build(b.project, b.rdir, b.store, b.rid,
              {lid: lay.data_date for lid, lay in b.layers.items() if lay.data_date},
              b.expected, (prev.id, prev.dir) if prev else None, b.answers, b.tick)


def _stage_config(b: _Build) -> None:
    """pygeoapi's config and locale, validated against its schema."""
    b.tick("config")
    locale_dir = b.rdir / release.LOCALE
    apiconfig.write_locale(locale_dir)
    b.cfg = apiconfig.build_config(b.project, b.store, b.layers, b.plans,
                                   locale_dir=locale_dir, pg=b.pgw.target if b.pgw else None,
                                   processes=b.answers.processes(),
                                   downloads=b.answers.downloads)
    apiconfig.validate(b.cfg)
    apiconfig.dump_yaml(b.cfg, b.rdir / release.CONFIG)


def _stage_openapi(b: _Build) -> None:
    """The OpenAPI document pygeoapi builds from the config (exercises the config too)."""
    b.tick("openapi")
    oas = apiconfig.build_openapi(b.cfg, {lid: p.queryables for lid, p in b.plans.items()})
    apiconfig.dump_yaml(oas, b.rdir / release.OPENAPI)


def _stage_tiles(b: _Build) -> None:
    """Vector tiles of every page: part of the release, leak-checked."""
    b.tick("tiles")
    site = b.rdir / release.SITE
    (site / "maps").mkdir(parents=True, exist_ok=True)  # answers' search.json too
    vtiles.write_site_tiles(b.project, b.store, site / "maps",
                            allowed={lid: set(p.names) for lid, p in b.plans.items()},
                            counts=b.counts)


def _stage_site(b: _Build) -> None:
    """The map pages (and the city's own site builders), then precompressed copies."""
    b.tick("site")
    ctx = SiteContext(b.project, b.rid, b.rdir / release.SITE, b.store, b.layers, b.plans,
                      (b.project.config.publish.base_url or "").rstrip("/"))
    for build in [build_site, *b.site_builders]:
        build(ctx)
    precompress.write_copies(b.rdir)  # .br/.gz of large text files


def _stage_switch(b: _Build) -> None:
    """``release.json`` (with every stage's timing so far) and the atomic switch."""
    b.tick("switch")
    b.timings["total"] = time.perf_counter() - b.t_start
    meta = _meta(b.project, b.rid, b.source, b.layers, b.plans, b.timings, b.simplified)
    meta["processes"] += list(b.answers.processes())
    meta.update(b.answers.meta)
    meta["store"] = {"kind": urls.scheme(b.url), "url": urls.redact(b.url),
                     "schema": b.pgw.schema if b.pgw else None}
    release.write_meta(b.rdir, meta)
    release.switch(b.project.public_dir, b.rid)


#: the stages of a publish in order, each timed under its name (``release.json`` ``timings``)
STAGES: tuple[tuple[str, Callable[[_Build], None]], ...] = (
    ("store", _stage_store), ("check", _stage_check), ("answers", _stage_answers),
    ("config", _stage_config), ("openapi", _stage_openapi), ("tiles", _stage_tiles),
    ("site", _stage_site), ("switch", _stage_switch))


def _run_stages(b: _Build) -> None:
    """Every stage in order, each timed under its name."""
    for name, stage in STAGES:
        t0 = time.perf_counter()
        stage(b)
        b.timings[name] = time.perf_counter() - t0


def publish(project: Project, *, progress: Progress | None = None,
            site_builders: list[SiteBuilder] | None = None,
            keep: int | None = None, store_url: str | None = None) -> PublishResult:
    """Publish the current master as a new release and switch the server to it atomically.

    ``store_url`` overrides the store in effect (``UOZU_GIS_STORE``, then the config). With a
    PostGIS store the master is read from PostGIS and the API serves the release's public schema
    (see :mod:`publish.build.pgpublic`); the release folder always holds the public GeoPackage too,
    which the map pages and pipe sheets read and which is the downloadable open-data file.

    Raises :class:`publish.errors.PublishError` (an ``EtlError``) with a bilingual message for
    anything the user can fix; the previous release stays current on any failure.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    public_dir = project.public_dir

    def tick(stage: str, layer: str = "", done: int = 0, total: int = 0) -> None:
        if progress:
            progress(stage, layer, done, total)

    check_publish_crs(project.config.publish_crs)
    url = urls.resolve(project.config.store, store_url)
    rdir: Path | None = None  # named by a disk fault whose error names no file
    previous = release.current_id(public_dir)
    warnings: list[str] = []
    try:
        with release.publish_lock(public_dir):
            plans = store.plan_store(project)
            ans.check(project)  # open-data layouts (engine standards): before anything is written
            source = store.locate_master(project, url)
            previous = release.current_id(public_dir)
            rid = release.new_release_id()
            rdir = release.releases_dir(public_dir) / rid
            rdir.mkdir(parents=True)
            b = _Build(project, url, rid, rdir, source, plans, tick, t_start, timings,
                       list(site_builders or []), previous)
            try:
                _run_stages(b)
            except BaseException as e:
                shutil.rmtree(rdir, ignore_errors=True)
                if b.pgw:  # (the server may be gone: clean-up never hides the cause)
                    with contextlib.suppress(Exception):
                        b.pgw.close()
                    pgpublic.drop_schema(url, b.pgw.schema)
                e.add_note(msg.text("publish_failed", current=previous or "-"))
                raise
            # the new release is current from here: tidying up can no longer fail the publish
            pruned = release.prune(public_dir,
                                   keep if keep is not None else project.config.keep_runs)
            if b.pgw:  # schemas of pruned (or earlier failed) releases; else the next publish
                try:
                    pgpublic.drop_except(project, url, release.list_releases(public_dir))
                except (DBAPIError, EtlError) as e:  # server gone or unreachable: say so
                    detail = db_error(e) if isinstance(e, DBAPIError) else \
                        str(e.params.get("detail") or e)
                    warnings.append(msg.text("publish_cleanup_failed", release=rid,
                                             store=urls.redact(url), detail=detail[:200]))
    except EtlError:
        raise
    except Exception as e:  # disk full, read-only, permissions, a database gone away
        err = explain_fault(project, url, e, rdir or public_dir)
        if err is None:
            raise
        notes = getattr(e, "__notes__", None) or [msg.text("publish_failed",
                                                          current=previous or "-")]
        for note in notes:
            err.add_note(note)
        raise err from e
    timings["total"] = time.perf_counter() - t_start
    return PublishResult(rid, rdir, rdir / release.STORE, rdir / release.CONFIG,
                         rdir / release.OPENAPI, b.layers, timings, previous, tuple(pruned),
                         tuple(warnings))
