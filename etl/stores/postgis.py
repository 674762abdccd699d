"""The PostGIS store: same master, lineage and bookkeeping tables as the GeoPackage, in a server.

Layout in the database (``p`` = ``postgis.schema_prefix``, one prefix per city)::

    p_run_<run>     one schema per merge run: every layer, _quarantine, _code_table,
                    _layer_meta, _feature_hash (never modified after its commit)
    p_meta.runs     run history (run_id, schema, manifest as jsonb)
    p_meta.current  the one current run_id
    p_master        views on the current run's tables (a stable name for QGIS and SQL users)

Why one transaction per run: ``begin`` opens a transaction that creates the run schema, COPYs
every table, records the run, moves ``current`` and rebuilds the ``p_master`` views; ``commit``
commits it. Until then no other session can see any of it, and if the process dies the server
rolls the whole transaction back: readers see the old master or the new, never a mix, and a
failed or killed run leaves nothing behind. One merge at a time: a session advisory lock.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg2
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import NullPool

from config.errors import EtlError
from etl.sql import qi
from etl.stores import url as store_url
from etl.stores.base import MasterStore, StagedRun

if TYPE_CHECKING:
    from config import Project

HASH_TABLE = "_feature_hash"
LOCK_NAMESPACE = "uozu-gis:merge:"


def make_engine(url: str) -> Engine:
    """A psycopg2 engine without pooling (CLI processes are short; the server has its own)."""
    return create_engine(store_url.sqlalchemy_url(url), poolclass=NullPool,
                         connect_args={"application_name": "uozu-gis", "connect_timeout": 10})


def db_error(e: DBAPIError) -> str:
    """The first line of the server's message (what a user can act on)."""
    return str(e.orig or e).strip().splitlines()[0]


def open_connection(engine: Engine, url: str) -> Connection:
    """A connection, with connection failures turned into a bilingual, fixable error."""
    try:
        return engine.connect()
    except OperationalError as e:
        raise EtlError("store_unreachable", store=store_url.redact(url),
                       detail=db_error(e)) from None


@contextlib.contextmanager
def connect(engine: Engine, url: str) -> Iterator[Connection]:
    conn = open_connection(engine, url)
    try:
        yield conn
    finally:
        conn.close()


class Transaction:
    """One connection with one open transaction on a database that has PostGIS.

    Why a class and not ``with``: a run's transaction spans several pipeline calls
    (``begin`` ... ``commit``). Closing without :meth:`commit` rolls everything back, and so
    does the server when the process dies.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self.conn = open_connection(engine, url)
        try:
            self.tx = self.conn.begin()
            check_postgis(self.conn, url)
        except BaseException:
            self.close()
            raise

    def commit(self) -> None:
        self.tx.commit()
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already failing; the connection may be gone
            self.conn.close()


def check_postgis(conn: Connection, url: str) -> None:
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).first() is None:
        raise EtlError("store_no_postgis", store=store_url.redact(url))


def schema_exists(conn: Connection, schema: str) -> bool:
    return conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"),
                        {"s": schema}).first() is not None


def table_names(conn: Connection, schema: str) -> list[str]:
    rows = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s "
                             "ORDER BY tablename"), {"s": schema})
    return [r[0] for r in rows]


def table_columns(conn: Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, udt_name) of a table's columns in order."""
    rows = conn.execute(text(
        "SELECT column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"),
        {"s": schema, "t": table})
    return [(r[0], r[1]) for r in rows]


def write_frame(conn: Connection, schema: str, table: str, frame: pd.DataFrame, *,
                geometry_type: str | None = None, primary_key: str | None = None) -> None:
    """(Re)create ``schema.table`` from a frame: COPY, a typed geometry column, GiST, PK.

    Geometry typmod comes from ``geometry_type`` (the spec), not from the data, so an empty layer
    still gets ``geometry(MultiLineString, 6675)`` like the GeoPackage does.
    """
    conn.execute(text(f"DROP TABLE IF EXISTS {qi(schema)}.{qi(table)}"))
    is_geo = (isinstance(frame, gpd.GeoDataFrame) and geometry_type not in (None, "None")
              and frame.crs is not None)
    if isinstance(frame, gpd.GeoDataFrame) and not is_geo:
        frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    if is_geo:
        assert isinstance(frame, gpd.GeoDataFrame)
        from geoalchemy2 import Geometry

        gname = frame.geometry.name
        srid = int(frame.crs.to_epsg())
        ewkb = shapely.to_wkb(shapely.set_srid(np.asarray(frame.geometry.values), srid),
                              hex=True, include_srid=True)
        plain = pd.DataFrame(frame.drop(columns=gname)).assign(**{gname: ewkb})
        plain.to_sql(table, conn, schema=schema, index=False, method=_copy,
                     dtype={gname: Geometry("GEOMETRY", srid=srid)})
        multi = "ST_Multi" if geometry_type.startswith("Multi") else ""
        conn.execute(text(
            f"ALTER TABLE {qi(schema)}.{qi(table)} ALTER COLUMN {qi(gname)} "
            f"TYPE geometry({geometry_type}, {srid}) USING {multi}({qi(gname)})"))
        idx = qi(f"idx_{table}_{gname}")  # the name geoalchemy2 gives the index it creates
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS {idx} ON {qi(schema)}.{qi(table)} "
                          f"USING gist ({qi(gname)})"))
    else:
        frame.to_sql(table, conn, schema=schema, index=False, method=_copy)
    if primary_key:
        conn.execute(text(f"ALTER TABLE {qi(schema)}.{qi(table)} ADD PRIMARY KEY "
                          f"({qi(primary_key)})"))


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(v: Any) -> str:
    """One value in COPY's text format: ``\\N`` is NULL, so '' stays an empty string."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return "\\N"
    if isinstance(v, bytes):
        return "\\\\x" + v.hex()
    return str(v).translate(_ESCAPES)


def _copy(table: Any, conn: Any, keys: list[str], data_iter: Any) -> None:
    """pandas ``to_sql`` method: one COPY in text format (CSV would turn '' into NULL)."""
    buf = io.StringIO()
    for row in data_iter:
        buf.write("\t".join(_copy_value(v) for v in row))
        buf.write("\n")
    buf.seek(0)
    name = qi(table.table.name)
    if table.table.schema:
        name = f"{qi(table.table.schema)}.{name}"
    cols = ", ".join(qi(k) for k in keys)
    with conn.connection.cursor() as cur:
        cur.copy_expert(f"COPY {name} ({cols}) FROM STDIN", buf)


def run_schema(prefix: str, run_id: str) -> str:
    return f"{prefix}_run_" + run_id.lower().replace("-", "_")


class PgRun(StagedRun):
    """A run being written inside one open transaction (see the module docstring)."""

    def __init__(self, store: PostgisStore, run_id: str, partial: bool) -> None:
        self.store, self.run_id, self.partial = store, run_id, partial
        self.schema = run_schema(store.prefix, run_id)
        self.artifacts = store.local_staging(run_id)
        self.written: list[str] = []
        self.hashed: list[str] = []
        self.db = Transaction(store.engine, store.url)
        self.conn = self.db.conn
        try:
            store.ensure_meta(self.conn)
            self.current = store.current_run_in(self.conn)
            self.conn.execute(text(f"CREATE SCHEMA {qi(self.schema)}"))
            self.conn.execute(text(f"CREATE TABLE {qi(self.schema)}.{HASH_TABLE} "
                                   "(layer text NOT NULL, id text, hash bigint NOT NULL)"))
        except BaseException:
            self.db.close()
            raise

    def write_layer(self, layer: str, frame: pd.DataFrame, *, geometry_type: str | None,
                    append: bool = False) -> None:
        assert not append, "PostGIS runs are written whole (appends = False)"
        try:
            write_frame(self.conn, self.schema, layer, frame, geometry_type=geometry_type)
        except DBAPIError as e:
            lost = self.store.explain(e)
            if lost is not None and lost.key != "store_write_failed":
                raise lost from e
            raise EtlError("store_write_failed", layer=layer, detail=db_error(e)) from e
        self.written.append(layer)

    def read_current(self, table: str) -> pd.DataFrame | None:
        if not self.current:
            return None
        schema = run_schema(self.store.prefix, self.current)
        if table not in table_names(self.conn, schema):
            return None
        return pd.read_sql(text(f"SELECT * FROM {qi(schema)}.{qi(table)}"), self.conn)

    def write_hashes(self, layer: str, hashes: pd.DataFrame) -> None:
        df = pd.DataFrame({"layer": layer, "id": hashes["id"].astype("string"),
                           "hash": hashes["hash"].to_numpy().view("int64")})
        df.to_sql(HASH_TABLE, self.conn, schema=self.schema, index=False, if_exists="append",
                  method=_copy)
        self.hashed.append(layer)

    def _carry_over(self) -> None:
        """Partial run: copy the current run's other tables and hashes (inside the server)."""
        if not (self.partial and self.current):
            return
        old = run_schema(self.store.prefix, self.current)
        for t in table_names(self.conn, old):
            if t in self.written or t == HASH_TABLE:
                continue
            self.conn.execute(text(f"CREATE TABLE {qi(self.schema)}.{qi(t)} "
                                   f"(LIKE {qi(old)}.{qi(t)} INCLUDING ALL)"))
            self.conn.execute(text(f"INSERT INTO {qi(self.schema)}.{qi(t)} "
                                   f"SELECT * FROM {qi(old)}.{qi(t)}"))
        self.conn.execute(text(f"INSERT INTO {qi(self.schema)}.{HASH_TABLE} SELECT * FROM "
                               f"{qi(old)}.{HASH_TABLE} WHERE NOT (layer = ANY(:done))"),
                          {"done": self.hashed})

    def commit(self, manifest: dict[str, Any]) -> Path:
        try:
            self._carry_over()
            self.conn.execute(text(
                f"INSERT INTO {qi(self.store.meta)}.runs (run_id, schema, manifest) "
                "VALUES (:r, :s, CAST(:m AS jsonb))"),
                {"r": self.run_id, "s": self.schema,
                 "m": json.dumps(manifest, ensure_ascii=False, default=str)})
            self.store.set_current(self.conn, self.run_id)
            self.store.prune_in(self.conn)
            self.db.commit()
        finally:
            self.db.close()
        return self.store.publish_artifacts(self.artifacts, self.run_id, manifest)

    def abort(self) -> None:
        self.db.close()  # closing with the transaction open rolls it back
        shutil.rmtree(self.artifacts, ignore_errors=True)


class PostgisStore(MasterStore):
    """The master in PostGIS (``store: postgresql://...``); reports stay in ``merged_dir``."""

    kind = "postgresql"

    @classmethod
    def open(cls, url: str, project: Project) -> PostgisStore:
        """The registry's constructor (:data:`etl.stores.STORES`)."""
        return cls(url, project)

    def __init__(self, url: str, project: Project) -> None:
        super().__init__(project.merged_dir, project.config.keep_runs)
        self.url = url
        self.prefix = store_url.check_identifier("schema_prefix",
                                                 project.config.postgis.schema_prefix)
        self.meta = f"{self.prefix}_meta"
        self.master_schema = f"{self.prefix}_master"
        self.engine = make_engine(url)

    def describe(self) -> str:
        return f"{store_url.redact(self.url)} ({self.master_schema})"

    def explain(self, e: BaseException) -> EtlError | None:
        """The server went away or ran out of disk: say so, without the SQL statement."""
        orig = getattr(e, "orig", None)
        if isinstance(e, DBAPIError | psycopg2.Error):
            detail = str(orig or e).strip().splitlines()[0][:200] if str(orig or e) else \
                type(e).__name__
            low = str(orig or e).lower()
            store = store_url.redact(self.url)
            if "no space left" in low or "could not extend file" in low or "disk full" in low:
                return EtlError("store_server_full", store=store, detail=detail)
            if (isinstance(e, OperationalError | InterfaceError)
                    or isinstance(orig, psycopg2.OperationalError | psycopg2.InterfaceError)
                    or isinstance(e, psycopg2.OperationalError | psycopg2.InterfaceError)
                    or any(f in low for f in ("server closed the connection",
                                              "terminating connection",
                                              "connection already closed"))):
                return EtlError("store_lost", store=store, detail=detail)
            return EtlError("store_write_failed", layer="-", detail=detail)
        return super().explain(e)

    # ---- bookkeeping
    def ensure_meta(self, conn: Connection) -> None:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {qi(self.meta)}"))
        conn.execute(text(
            f"CREATE TABLE IF NOT EXISTS {qi(self.meta)}.runs (run_id text PRIMARY KEY, "
            "schema text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), "
            "manifest jsonb NOT NULL)"))
        conn.execute(text(
            f"CREATE TABLE IF NOT EXISTS {qi(self.meta)}.current (one boolean PRIMARY KEY "
            "DEFAULT true CHECK (one), run_id text NOT NULL REFERENCES "
            f"{qi(self.meta)}.runs (run_id))"))

    def current_run_in(self, conn: Connection) -> str | None:
        if not schema_exists(conn, self.meta):
            return None
        row = conn.execute(text(f"SELECT run_id FROM {qi(self.meta)}.current")).first()
        return row[0] if row else None

    def set_current(self, conn: Connection, run_id: str) -> None:
        """Move ``current`` and rebuild the ``<prefix>_master`` views (caller's transaction)."""
        conn.execute(text(f"INSERT INTO {qi(self.meta)}.current (one, run_id) VALUES (true, :r) "
                          "ON CONFLICT (one) DO UPDATE SET run_id = EXCLUDED.run_id"),
                     {"r": run_id})
        schema = run_schema(self.prefix, run_id)
        conn.execute(text(f"DROP SCHEMA IF EXISTS {qi(self.master_schema)} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {qi(self.master_schema)}"))
        for t in table_names(conn, schema):
            conn.execute(text(f"CREATE VIEW {qi(self.master_schema)}.{qi(t)} AS "
                              f"SELECT * FROM {qi(schema)}.{qi(t)}"))

    def prune_in(self, conn: Connection) -> None:
        rows = conn.execute(text(f"SELECT run_id, schema FROM {qi(self.meta)}.runs "
                                 "ORDER BY run_id DESC OFFSET :k"), {"k": self.keep_runs})
        cur = self.current_run_in(conn)
        for rid, schema in rows.fetchall():
            if rid == cur:
                continue
            conn.execute(text(f"DROP SCHEMA IF EXISTS {qi(schema)} CASCADE"))
            conn.execute(text(f"DELETE FROM {qi(self.meta)}.runs WHERE run_id = :r"), {"r": rid})

    # ---- reading
    def current_run(self) -> str | None:
        with connect(self.engine, self.url) as conn:
            return self.current_run_in(conn)

    def list_runs(self) -> list[dict[str, Any]]:
        with connect(self.engine, self.url) as conn:
            if not schema_exists(conn, self.meta):
                return []
            rows = conn.execute(text(f"SELECT manifest FROM {qi(self.meta)}.runs "
                                     "ORDER BY run_id DESC"))
            return [r[0] for r in rows]

    def manifest(self, run_id: str | None = None) -> dict[str, Any] | None:
        with connect(self.engine, self.url) as conn:
            rid = run_id or self.current_run_in(conn)
            if rid is None:
                return None
            row = conn.execute(text(f"SELECT manifest FROM {qi(self.meta)}.runs "
                                    "WHERE run_id = :r"), {"r": rid}).first()
            return row[0] if row else None

    def _schema(self, conn: Connection, run_id: str | None) -> str:
        rid = run_id or self.current_run_in(conn)
        if rid is None:
            raise EtlError("no_master")
        return run_schema(self.prefix, rid)

    def layers(self, run_id: str | None = None) -> list[str]:
        with connect(self.engine, self.url) as conn:
            rid = run_id or self.current_run_in(conn)
            return table_names(conn, run_schema(self.prefix, rid)) if rid else []

    def columns(self, layer: str, run_id: str | None = None) -> list[str] | None:
        with connect(self.engine, self.url) as conn:
            cols = table_columns(conn, self._schema(conn, run_id), layer)
        return [c for c, udt in cols if udt != "geometry"] or None

    def read_layer(self, layer: str, columns: list[str] | None = None,
                   run_id: str | None = None) -> gpd.GeoDataFrame:
        with connect(self.engine, self.url) as conn:
            schema = self._schema(conn, run_id)
            cols = table_columns(conn, schema, layer)
            if not cols:
                raise EtlError("no_master")
            geom = [c for c, udt in cols if udt == "geometry"]
            names = [c for c, udt in cols if udt != "geometry"] if columns is None else columns
            select = ", ".join(qi(c) for c in [*names, *geom])
            sql = text(f"SELECT {select} FROM {qi(schema)}.{qi(layer)}")
            if geom:  # CRS from the column's typmod (an empty or null first row has no SRID)
                srid = conn.execute(text("SELECT Find_SRID(:s, :t, :g)"),
                                    {"s": schema, "t": layer, "g": geom[0]}).scalar()
                return gpd.read_postgis(sql, conn, geom_col=geom[0],
                                        crs=f"EPSG:{srid}" if srid else None)
            return pd.read_sql(sql, conn)

    def read_hashes(self, run_id: str, layer: str) -> pd.DataFrame | None:
        with connect(self.engine, self.url) as conn:
            schema = run_schema(self.prefix, run_id)
            if HASH_TABLE not in table_names(conn, schema):
                return None
            df = pd.read_sql(text(f"SELECT id, hash FROM {qi(schema)}.{HASH_TABLE} "
                                  "WHERE layer = :l"), conn, params={"l": layer})
        if df.empty:
            return None
        return pd.DataFrame({"id": df["id"].astype("string"),
                             "hash": df["hash"].to_numpy().astype("int64").view("uint64")})

    # ---- writing
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One merge at a time per prefix, across machines (session advisory lock)."""
        with connect(self.engine, self.url) as conn:
            key = LOCK_NAMESPACE + self.prefix
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
                conn.commit()

    def begin(self, run_id: str, *, partial: bool) -> PgRun:
        return PgRun(self, run_id, partial)

    def _switch(self, run_id: str) -> None:
        with connect(self.engine, self.url) as conn, conn.begin():
            self.set_current(conn, run_id)


