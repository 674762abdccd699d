"""Move one table written into its own GeoPackage into the staged master, at the SQLite level.

Layers merged in parallel processes each write their own GeoPackage (SQLite has one writer
per file); the parent then moves every finished table into the staged master in dependency
order. Nothing is decoded or re-encoded: the table's rows (feature ids included), its
``gpkg_*`` bookkeeping rows and its spatial index pages are copied as stored, so the master
holds exactly the bytes a sequential run writes.

The R-tree is copied through its shadow tables (``<rtree>_node``, ``_parent``, ``_rowid``):
the index GDAL bulk-loaded, page for page, instead of a second insertion-order build. The
triggers that keep the index current call GDAL's ``ST_*`` SQL functions, which plain
``sqlite3`` lacks: they are created after the rows are in (creating a trigger does not run it).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

from etl.sql import qi as _q

#: bookkeeping tables of the GeoPackage standard (and GDAL's) whose rows name a table
_PER_TABLE = ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents",
              "gpkg_data_columns", "gpkg_metadata_reference")
_RTREE_SHADOWS = ("_node", "_parent", "_rowid")


def transplant(dst: Path, src: Path, table: str) -> None:
    """Add ``table`` of GeoPackage ``src`` to GeoPackage ``dst`` (created as a copy of ``src``
    when it does not exist yet), in one transaction: all of it or nothing."""
    if not dst.exists():
        tmp = dst.with_name(dst.name + ".part")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
        return
    with contextlib.closing(sqlite3.connect(dst, isolation_level=None)) as con:
        con.execute("PRAGMA synchronous=OFF")  # the run fsyncs every file before its commit
        con.execute("ATTACH DATABASE ? AS part", (f"file:{src}?mode=ro",))
        try:
            con.execute("BEGIN IMMEDIATE")
            _copy(con, table)
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.execute("DETACH DATABASE part")


def _copy(con: sqlite3.Connection, table: str) -> None:
    objs = con.execute("SELECT type, name, tbl_name, sql FROM part.sqlite_master "
                       "WHERE sql IS NOT NULL").fetchall()
    have = {r[0] for r in con.execute("SELECT name FROM main.sqlite_master")}
    if table in have:
        raise FileExistsError(f"table {table} is in the staged master already")
    rtrees = [n for t, n, _, sql in objs
              if t == "table" and n.startswith(f"rtree_{table}_") and "VIRTUAL" in sql.upper()]
    shadows = {r + s for r in rtrees for s in _RTREE_SHADOWS}
    # the table, then its rows with their feature ids
    (ddl,) = [sql for t, n, _, sql in objs if t == "table" and n == table]
    con.execute(ddl)
    con.execute(f"INSERT INTO main.{_q(table)} SELECT * FROM part.{_q(table)}")
    # the spatial index: the virtual table, then its pages as GDAL bulk-loaded them
    for r in rtrees:
        con.execute(next(sql for t, n, _, sql in objs if n == r))
        for s in sorted(shadows):
            if s.startswith(r):
                con.execute(f"DELETE FROM main.{_q(s)}")
                con.execute(f"INSERT INTO main.{_q(s)} SELECT * FROM part.{_q(s)}")
    # bookkeeping rows: the CRS (shared, once), then the rows naming the table
    con.execute("INSERT OR IGNORE INTO main.gpkg_spatial_ref_sys "
                "SELECT * FROM part.gpkg_spatial_ref_sys")
    part_tables = {n for t, n, _, _ in objs if t == "table"}
    for bk in _PER_TABLE:
        if bk not in part_tables:
            continue
        if bk not in have:
            con.execute(next(sql for t, n, _, sql in objs if t == "table" and n == bk))
            have.add(bk)
        con.execute(f"INSERT INTO main.{_q(bk)} SELECT * FROM part.{_q(bk)} "
                    "WHERE lower(table_name) = lower(?)", (table,))
    # indexes and triggers on the table last (the R-tree triggers call GDAL's ST_* functions)
    for t, n, tbl, sql in objs:
        if t in ("index", "trigger") and tbl in (table, *rtrees) and n not in have:
            con.execute(sql)
