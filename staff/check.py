"""Re-open a department package and fail unless it holds exactly the department's allow-list.

Why a separate check after writing: the file is the boundary (a GeoPackage cannot enforce
access), so what counts is what a reader finds in it, not what the writer meant to write. Two
independent readers, as for the public store: GDAL (what QGIS sees) and plain SQLite (what
anyone holding the file sees: every table and view, registered or not). The reference is the
policy (:mod:`staff.policy`), not the writer's own column lists.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import pyogrio

from config.errors import EtlError
from staff.policy import BOOKKEEPING, DepartmentAccess

#: GeoPackage's ``application_id`` ('GPKG') and the versions QGIS 3.22 / GDAL 3.6 read without
#: a warning (1.4 makes GDAL 3.6 say "may only be partially supported").
GPKG_APPLICATION_ID = 0x47504B47
READABLE_VERSIONS = {10200, 10300}
FID_COLUMN = "fid"
GEOM_COLUMN = "geom"
GPKG_SYSTEM_TABLES = {"gpkg_contents", "gpkg_spatial_ref_sys", "gpkg_geometry_columns",
                      "gpkg_ogr_contents", "gpkg_extensions", "gpkg_tile_matrix_set",
                      "gpkg_tile_matrix", "gpkg_metadata", "gpkg_metadata_reference",
                      "gpkg_data_columns", "gpkg_data_column_constraints"}


def expected_tables(access: DepartmentAccess,
                    bookkeeping: dict[str, Iterable[str]]) -> dict[str, set[str]]:
    """Table -> columns the package must hold: the policy's layers + the bookkeeping tables."""
    out = {lid: set(la.columns) for lid, la in access.layers.items()}
    for table, cols in bookkeeping.items():
        out[table] = set(cols)
    return out


def forbidden_columns(access: DepartmentAccess) -> set[str]:
    """Column names the department may read nowhere (a name readable in one layer is not)."""
    readable = set().union(*(la.columns for la in access.layers.values())) \
        if access.layers else set()
    denied = set().union(*(la.denied for la in access.layers.values())) \
        if access.layers else set()
    return denied - readable


def gpkg_version(path: Path) -> tuple[int, int]:
    """(application_id, user_version) of a GeoPackage (both are SQLite header pragmas)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        app = con.execute("PRAGMA application_id").fetchone()[0]
        ver = con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()
    return int(app), int(ver)


def check_package(path: Path, access: DepartmentAccess, expected: dict[str, set[str]],
                  counts: dict[str, int], denied_layers: Iterable[str] = ()) -> None:
    """Fail (``staff_package_check``) unless ``path`` is exactly the allow-list ``expected``."""
    problems: list[str] = []
    forbidden = forbidden_columns(access)
    secret_tables = set(denied_layers) | set(access.denied_layers)
    layers = {str(n) for n in pyogrio.list_layers(path)[:, 0]}
    if layers != set(expected):
        problems.append(f"layers {sorted(layers)} != allow-list {sorted(expected)}")
    for t in sorted(layers & set(expected)):
        info = pyogrio.read_info(path, layer=t)
        fields = {str(f) for f in info["fields"]}
        if fields != expected[t]:
            problems.append(f"{t}: columns differ (extra {sorted(fields - expected[t])}, "
                            f"missing {sorted(expected[t] - fields)})")
        if t not in BOOKKEEPING and fields & forbidden:
            problems.append(f"{t}: denied columns {sorted(fields & forbidden)}")
        if info["features"] != counts.get(t):
            problems.append(f"{t}: {info['features']} rows != {counts.get(t)} written")
    app, ver = gpkg_version(path)
    if app != GPKG_APPLICATION_ID or ver not in READABLE_VERSIONS:
        problems.append(f"GeoPackage application_id {app:#x} / user_version {ver} "
                        f"(want {GPKG_APPLICATION_ID:#x} / {sorted(READABLE_VERSIONS)})")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT type, name FROM sqlite_master").fetchall()
        system = GPKG_SYSTEM_TABLES | {f"rtree_{t}_{GEOM_COLUMN}{s}" for t in expected
                                       for s in ("", "_node", "_parent", "_rowid")}
        user = {n for kind, n in rows if kind == "table" and n not in system
                and not n.startswith("sqlite_")}
        if user != set(expected):
            problems.append(f"sqlite tables {sorted(user)} != allow-list {sorted(expected)}")
        if user & secret_tables:
            problems.append(f"denied layers present {sorted(user & secret_tables)}")
        views = sorted(n for kind, n in rows if kind == "view")
        if views:
            problems.append(f"unexpected views {views}")
        for t in sorted(user & set(expected)):
            cols = {r[1] for r in con.execute(f'PRAGMA table_info("{t}")')}
            cols -= {FID_COLUMN, GEOM_COLUMN}
            if cols != expected[t]:
                problems.append(f"sqlite {t}: columns {sorted(cols)} != {sorted(expected[t])}")
        for t in BOOKKEEPING:
            allowed = access.rows(t)
            if allowed is None or t not in user:
                continue
            found = {r[0] for r in con.execute(f'SELECT DISTINCT "layer" FROM "{t}"')}
            if not found <= set(allowed):
                problems.append(f"{t}: rows of {sorted(found - set(allowed))}")
        meta = con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'gpkg_metadata'")
        if meta.fetchone()[0] and con.execute("SELECT count(*) FROM gpkg_metadata").fetchone()[0]:
            problems.append("gpkg_metadata is not empty")
    finally:
        con.close()
    if problems:
        raise EtlError("staff_package_check", path=path, dept=access.id,
                       detail="; ".join(problems))
