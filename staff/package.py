"""A department's package: what it may read, as a GeoPackage or through PostGIS, with a QGIS
project beside it.

``gpkg`` (the embedded default): the file is the boundary, since a GeoPackage cannot enforce
access. It holds only the department's allow-list (:mod:`staff.policy`): its readable layers
with only their readable columns, ``_quarantine`` rows of the layers it may read whole,
``_layer_meta`` rows of its layers and the code lists. It is written as GeoPackage 1.3 (QGIS
3.22 with GDAL 3.6 warns on 1.4), then re-opened and checked (:mod:`staff.check`).

``postgis``: the server is the boundary (:mod:`staff.grants`); the package is the QGIS project
reading the department's views through a ``pg_service.conf`` entry (host, port, database: no
user, no password) and a short README.

Either way the QGIS project is written by PyQGIS, re-opened by QGIS and compared with what was
written (every layer valid, same feature counts, only readable fields). The folder is built
beside ``--out`` and renamed into place: a failure leaves the previous package untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import pandas as pd
import pyogrio
from sqlalchemy import text
from sqlalchemy.engine import make_url

from config.errors import EtlError
from config.messages import MESSAGES
from etl.schema import QUARANTINE_TABLE
from etl.sql import qi
from etl.stores import MasterStore, open_store
from etl.stores import url as store_url
from etl.stores.postgis import PostgisStore, connect
from staff.check import FID_COLUMN, GEOM_COLUMN, check_package, expected_tables
from staff.grants import dept_role, postgis_store, schema_run
from staff.policy import BOOKKEEPING, DepartmentAccess, department_access
from staff.qgis_plan import project_plan
from staff.qgis_run import build_project

if TYPE_CHECKING:
    from config import Project

Target = Literal["gpkg", "postgis"]
PACKAGE_FILE = "package.json"
PACKAGE_KIND = "uozu-gis staff package"
GPKG_VERSION = "1.3"  # QGIS 3.22 / GDAL 3.6 read 1.3 without the "v1.4.0 ... partially" warning
SERVICE_FILE = "pg_service.conf"
README_FILE = "README.txt"


@dataclass
class PackageResult:
    out: Path
    department: str
    run_id: str
    target: str
    layers: dict[str, int] = field(default_factory=dict)
    quarantine: int = 0
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "department": self.department, "run_id": self.run_id,
                "target": self.target, "layers": self.layers, "quarantine": self.quarantine,
                "features": sum(self.layers.values()), "files": self.files,
                "seconds": round(self.seconds, 2)}


# ------------------------------------------------------------------------------ GeoPackage


def _geometry_type(df: gpd.GeoDataFrame, declared: str) -> tuple[str, bool]:
    """The layer's geometry type as stored (single types promoted to Multi when mixed)."""
    kinds = set(df.geom_type.dropna().unique())
    if not kinds:
        return declared, False
    if len(kinds) == 1:
        return kinds.pop(), False
    multi = {k for k in kinds if k.startswith("Multi")}
    return (multi.pop(), True) if len(multi) == 1 else (declared, True)


def _write(path: Path, frame: pd.DataFrame, table: str, *, geometry_type: str | None,
           identifier: str, description: str) -> None:
    kw: dict[str, Any] = {
        "layer": table, "driver": "GPKG", "dataset_options": {"VERSION": GPKG_VERSION},
        "layer_options": {"FID": FID_COLUMN, "IDENTIFIER": identifier,
                          "DESCRIPTION": description},
    }
    if isinstance(frame, gpd.GeoDataFrame) and geometry_type not in (None, "None"):
        gtype, promote = _geometry_type(frame, geometry_type or "Unknown")
        kw["geometry_type"] = gtype
        kw["promote_to_multi"] = promote
        kw["layer_options"] |= {"GEOMETRY_NAME": GEOM_COLUMN, "SPATIAL_INDEX": "YES"}
    elif isinstance(frame, gpd.GeoDataFrame):
        frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    pyogrio.write_dataframe(frame, path, **kw)


def write_gpkg(path: Path, project: Project, store: MasterStore, run_id: str,
               access: DepartmentAccess, lang: str) -> tuple[dict[str, int], dict[str, set[str]]]:
    """Write the allow-list into a new GeoPackage; return rows per table and the bookkeeping
    tables' columns (as found in the master)."""
    counts: dict[str, int] = {}
    idents: set[str] = set()
    for lid, la in access.layers.items():
        have = store.columns(lid, run_id=run_id)
        if have is None:
            raise EtlError("staff_master_missing", path=store.describe(), layer=lid)
        missing = [c for c in la.columns if c not in have]
        if missing:
            raise EtlError("staff_master_columns", layer=lid, columns=", ".join(missing))
        # the allow-list is applied when reading: denied columns never leave the master
        df = store.read_layer(lid, columns=list(la.columns), run_id=run_id)
        spec = la.spec
        ident = getattr(spec.title, lang)
        ident = ident if ident not in idents else f"{ident} ({lid})"
        idents.add(ident)
        desc = getattr(spec.description, lang) if spec.description else ""
        _write(path, df, lid, geometry_type=spec.geometry_type, identifier=ident,
               description=desc)
        counts[lid] = len(df)
    book: dict[str, set[str]] = {}
    for table in BOOKKEEPING:
        have = store.columns(table, run_id=run_id)
        if have is None:
            raise EtlError("staff_master_missing", path=store.describe(), layer=table)
        df = store.read_layer(table, run_id=run_id)
        rows = access.rows(table)
        if rows is not None:  # rows of other layers are dropped before anything is written
            df = df[df["layer"].isin(rows)].reset_index(drop=True)
        if df.empty:
            df = pd.DataFrame({c: pd.Series(dtype="string") for c in have})
        _write(path, df, table, geometry_type=None, identifier=table, description="")
        counts[table] = len(df)
        book[table] = set(have)
    return counts, book


# --------------------------------------------------------------------------------- PostGIS


def service_file(url: str, name: str, role: str, title: str) -> str:
    """A pg_service.conf entry: where the database is, never who logs in or a password."""
    u = make_url(store_url.sqlalchemy_url(url))
    lines = [
        f"# {title}",
        f"# {MESSAGES['staff_service_note'][0].format(role=role)}",
        f"# {MESSAGES['staff_service_note'][1].format(role=role)}",
        f"[{name}]",
        f"host={u.host or 'localhost'}",
        f"port={u.port or 5432}",
        f"dbname={u.database or ''}",
    ]
    for k in ("sslmode", "sslrootcert"):
        if k in u.query:
            lines.append(f"{k}={u.query[k]}")
    return "\n".join(lines) + "\n"


def postgis_sources(store: PostgisStore, access: DepartmentAccess,
                    run_id: str) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Where QGIS reads each view, and the views' row counts (read as the exporting role)."""
    role = dept_role(store.prefix, access.id)
    sources: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    with connect(store.engine, store.url) as conn:
        view_run = schema_run(conn, role)
        if view_run is None:
            raise EtlError("staff_not_granted", dept=access.id, schema=role)
        if view_run != run_id:
            raise EtlError("staff_grants_stale", dept=access.id, view_run=view_run, run=run_id)
        geoms = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(text(
            "SELECT f_table_name, f_geometry_column, srid, type FROM geometry_columns "
            "WHERE f_table_schema = :s"), {"s": role})}
        views = set(conn.execute(text("SELECT viewname FROM pg_views WHERE schemaname = :s"),
                                 {"s": role}).scalars().all())
        for lid, la in access.layers.items():
            if lid not in views:
                raise EtlError("staff_not_granted", dept=access.id, schema=f"{role}.{lid}")
            g = geoms.get(lid)
            sources[lid] = {"provider": "postgres", "service": role,
                            "schema": role, "table": lid, "key": la.spec.id_field,
                            "geometry_column": g[0] if g else None,
                            "srid": g[1] if g else None,
                            "geometry_type": _pg_type(g[2]) if g else "None"}
            counts[lid] = conn.execute(
                text(f"SELECT count(*) FROM {qi(role)}.{qi(lid)}")).scalar_one()
    return sources, counts


def _pg_type(t: str) -> str:
    names = {"POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon",
             "MULTIPOINT": "MultiPoint", "MULTILINESTRING": "MultiLineString",
             "MULTIPOLYGON": "MultiPolygon"}
    return names.get(t.upper(), t)


# ---------------------------------------------------------------------------------- export


def verify_project(rep: dict[str, Any], access: DepartmentAccess, counts: dict[str, int],
                   path: Path, *, basemap: bool) -> None:
    """QGIS's own view of the written project must match what the package holds."""
    problems = []
    layers = rep.get("layers", {})
    want = {lid for lid in access.layers if lid in counts}
    if set(layers) != want:
        problems.append(f"layers {sorted(layers)} != {sorted(want)}")
    for lid in sorted(set(layers) & want):
        L = layers[lid]
        if not L["valid"]:
            problems.append(f"{lid}: not valid")
        if L["features"] != counts[lid]:
            problems.append(f"{lid}: {L['features']} features != {counts[lid]}")
        extra = set(L["fields"]) - set(access.layers[lid].columns) - {FID_COLUMN}
        if extra:
            problems.append(f"{lid}: fields not allowed {sorted(extra)}")
    if basemap and not (rep.get("basemap") or {}).get("valid"):
        problems.append("basemap not valid")
    if problems:
        raise EtlError("staff_project_check", path=path, detail="; ".join(problems))


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise EtlError("staff_out_occupied", out=out)
    if out.is_dir() and any(out.iterdir()):
        marker = out / PACKAGE_FILE
        try:
            ok = json.loads(marker.read_text(encoding="utf-8")).get("kind") == PACKAGE_KIND
        except (OSError, ValueError):
            ok = False
        if not ok:
            raise EtlError("staff_out_occupied", out=out)


def _replace(staging: Path, out: Path) -> None:
    """Put the finished folder in place: a reader sees the old package or the new one."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_package(project: Project, dept_id: str, out: Path | str, *,
                   store_url_: str | None = None, target: Target = "gpkg", lang: str = "ja",
                   basemap: bool = True) -> PackageResult:
    """Write department ``dept_id``'s package into the folder ``out`` (see module docstring)."""
    t0 = time.perf_counter()
    access = department_access(project, dept_id)
    out = Path(out).resolve()
    _check_out(out)
    store = open_store(project, store_url_)
    run_id = store.current_run()
    manifest = store.manifest(run_id) if run_id else None
    if run_id is None or manifest is None:
        raise EtlError("no_master")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    res = PackageResult(out, dept_id, run_id, target)
    dept_name = getattr(access.department.name, lang)
    try:
        env: dict[str, str] | None = None
        if target == "gpkg":
            gpkg = staging / f"{dept_id}.gpkg"
            counts, book = write_gpkg(gpkg, project, store, run_id, access, lang)
            check_package(gpkg, access, expected_tables(access, book), counts)
            sources = {lid: {"provider": "ogr", "path": str(gpkg), "table": lid}
                       for lid in access.layers}
            res.quarantine = counts.get(QUARANTINE_TABLE, 0)
        else:
            pg = postgis_store(project, store_url_)
            sources, counts = postgis_sources(pg, access, run_id)
            role = dept_role(pg.prefix, dept_id)  # the service is named like the role
            title = f"{getattr(project.config.city, lang)} — {dept_name}"
            (staging / SERVICE_FILE).write_text(service_file(pg.url, role, role, title),
                                                encoding="utf-8")
            # QGIS checks the project as the exporting role (it owns the views)
            env = {"PGSERVICEFILE": str(staging / SERVICE_FILE)}
            user = make_url(store_url.sqlalchemy_url(pg.url)).username
            if user:
                env["PGUSER"] = user
        plan = project_plan(project, access, sources, manifest, lang=lang, basemap=basemap)
        qgz = staging / f"{dept_id}.qgz"
        rep = build_project(plan, qgz, env=env)
        verify_project(rep, access, counts, qgz, basemap=basemap)
        res.layers = {lid: counts[lid] for lid in access.layers if lid in counts}
        (staging / README_FILE).write_text(_readme(target, dept_id, dept_name, project, lang),
                                           encoding="utf-8")
        res.files = sorted([*(p.name for p in staging.iterdir()), PACKAGE_FILE])
        res.seconds = time.perf_counter() - t0
        info = {"kind": PACKAGE_KIND, **res.as_dict(),
                "department_name": access.department.name.model_dump(),
                "created_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                "store": store.describe(), "data_dates": {
                    lid: (manifest.get("layers", {}).get(lid) or {}).get("data_date")
                    for lid in res.layers},
                "columns": {lid: list(la.columns) for lid, la in access.layers.items()},
                "quarantine_layers": list(access.quarantine_layers)}
        info["out"] = str(out)
        (staging / PACKAGE_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2),
                                            encoding="utf-8")
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return res


def _readme(target: str, dept_id: str, dept_name: str, project: Project, lang: str) -> str:
    """How a staff member opens the package (both languages, whatever ``lang``)."""
    key = "staff_readme_gpkg" if target == "gpkg" else "staff_readme_postgis"
    city = project.config.city
    ja, en = MESSAGES[key]
    return (ja.format(city=city.ja, dept=dept_name, id=dept_id) + "\n\n"
            + en.format(city=city.en, dept=dept_name, id=dept_id) + "\n")
