"""The public store in PostGIS: one schema per release, readable by one SELECT-only role.

Layout: ``<prefix>_pub_<release>`` holds exactly the allow-listed public tables of that release
(``fid`` text primary key, ``geom geometry(<type>, 4326)`` with x = lon, a GiST index). The
release's pygeoapi config points its PostgreSQL collections at that schema, so switching the
``current`` release (one symlink rename) switches the data too, and a rollback of releases works
the same as with the GeoPackage.

Defense in depth: pygeoapi connects as ``postgis.reader_role``, which gets ``USAGE`` on the
release schemas and ``SELECT`` on their tables, nothing else. After writing, :func:`check` fails
the publish unless (a) the tables and columns are exactly the allow-list and (b) the reader role
can read no other table of ours (no master, run, meta or other city's schema).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from config import Project
from config.errors import EtlError
from config.models import LayerSpec
from etl.sql import like_prefix, qi
from etl.stores import url as store_url
from etl.stores.postgis import (
    PostgisStore,
    Transaction,
    connect,
    db_error,
    make_engine,
    schema_exists,
    table_columns,
    table_names,
    write_frame,
)
from publish.build import routing
from publish.build.public_store import GEOM_COLUMN, ID_COLUMN
from publish.errors import LeakCheckError, PublishError

# Tables any role may read in every PostGIS database (PostGIS catalogues, not our data).
POSTGIS_PUBLIC_TABLES = {("public", "spatial_ref_sys"), ("public", "geometry_columns"),
                         ("public", "geography_columns")}


def public_schema(prefix: str, release_id: str) -> str:
    return f"{prefix}_pub_" + re.sub(r"[^a-z0-9]", "_", release_id.lower())


@dataclass(frozen=True)
class PgTarget:
    """Where pygeoapi reads one release: connection facts without credentials."""

    host: str
    port: int
    dbname: str
    user: str  # the SELECT-only reader role
    schema: str

    def provider_data(self) -> dict[str, Any]:
        """pygeoapi PostgreSQL ``data:``; the password comes from PGPASSWORD/~/.pgpass."""
        return {"host": self.host, "port": self.port, "dbname": self.dbname, "user": self.user,
                "search_path": [self.schema]}


def db_fault(master: PostgisStore, url: str, layer: str, e: DBAPIError) -> EtlError:
    """A database error during a publish: the server went away or ran out of disk
    (``store_lost``, ``store_server_full``, as for a merge), else ``pg_publish_failed``; each
    names the server (never its password) and the fix, never the SQL."""
    err = master.explain(e)
    if err is not None and err.key in ("store_lost", "store_server_full"):
        return err
    return PublishError("pg_publish_failed", store=store_url.redact(url), layer=layer,
                        detail=db_error(e))


class PgPublicWriter:
    """Write one release's public tables in one transaction; :meth:`commit` makes them visible."""

    def __init__(self, project: Project, url: str, release_id: str) -> None:
        from sqlalchemy.engine import make_url

        pg = project.config.postgis
        self.url = url
        self.prefix = store_url.check_identifier("schema_prefix", pg.schema_prefix)
        self.reader = store_url.check_identifier("reader_role", pg.reader_role)
        self.schema = public_schema(self.prefix, release_id)
        u = make_url(store_url.sqlalchemy_url(url))
        self.target = PgTarget(u.host or "127.0.0.1", int(u.port or 5432), u.database or "",
                               self.reader, self.schema)
        #: tables besides the public layers (the walking graph), for the leak check
        self.extra_columns: dict[str, set[str]] = {}
        self.extra_counts: dict[str, int] = {}
        #: the master store on the same server: its explain() names a lost or full server
        self.store = PostgisStore(url, project)
        self.engine = make_engine(url)
        self.db = Transaction(self.engine, url)
        self.conn: Connection = self.db.conn
        try:
            self._ensure_reader()
            self.conn.execute(text(f"DROP SCHEMA IF EXISTS {qi(self.schema)} CASCADE"))
            self.conn.execute(text(f"CREATE SCHEMA {qi(self.schema)}"))
        except BaseException:
            self.db.close()
            raise

    def failed(self, layer: str, e: DBAPIError) -> EtlError:
        """A database error writing ``layer`` (:func:`db_fault`)."""
        return db_fault(self.store, self.url, layer, e)

    def _raise_if_gone(self, e: DBAPIError) -> None:
        """A lost or full server is that, not a missing role or extension."""
        err = self.failed("-", e)
        if err.key != "pg_publish_failed":
            raise err from e

    def _ensure_reader(self) -> None:
        exists = self.conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                   {"r": self.reader}).first()
        if exists:
            return
        try:
            with self.conn.begin_nested():
                self.conn.execute(text(f"CREATE ROLE {qi(self.reader)} LOGIN NOINHERIT"))
        except DBAPIError as e:
            self._raise_if_gone(e)
            raise PublishError("pg_reader_missing", role=self.reader, detail=db_error(e)) from e

    def write(self, spec: LayerSpec, table: gpd.GeoDataFrame) -> None:
        frame = table.rename_geometry(GEOM_COLUMN) if table.geometry.name != GEOM_COLUMN \
            else table
        gt = spec.geometry_type
        try:
            write_frame(self.conn, self.schema, spec.id, frame, geometry_type=gt,
                        primary_key=ID_COLUMN)
            # byte order, as SQLite sorts the GeoPackage: the API's default order (by id) then
            # comes straight from the primary key index (publish.server.providers_pg._order)
            self.conn.execute(text(f"ALTER TABLE {qi(self.schema)}.{qi(spec.id)} ALTER COLUMN "
                                   f'{qi(ID_COLUMN)} TYPE text COLLATE "C"'))
        except DBAPIError as e:
            raise self.failed(spec.id, e) from e

    def write_walk_graph(self, graph: routing.WalkGraph) -> None:
        """The release's walking graph as pgRouting tables beside the public layers.

        Built from the public store only; :attr:`extra_columns` / :attr:`extra_counts` add its
        tables to what the leak check expects (and nothing else may be there).
        """
        try:
            with self.conn.begin_nested():
                routing.ensure_pgrouting(self.conn)
        except DBAPIError as e:
            self._raise_if_gone(e)
            raise PublishError("pg_pgrouting_missing", detail=db_error(e)) from e
        try:
            routing.write_pg_graph(self.conn, self.schema, graph)
        except DBAPIError as e:
            raise self.failed(routing.PG_EDGES, e) from e
        cols, counts = routing.pg_tables(graph)
        self.extra_columns.update(cols)
        self.extra_counts.update(counts)

    def grant(self) -> None:
        r, s = qi(self.reader), qi(self.schema)
        self.conn.execute(text(f"GRANT USAGE ON SCHEMA {s} TO {r}"))
        self.conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}"))

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        """Closing with the transaction still open rolls it back (nothing was written)."""
        self.db.close()


def check(conn: Connection, schema: str, reader: str, expected: dict[str, set[str]],
          forbidden: Iterable[str], counts: dict[str, int], allowed_schemas: set[str]) -> None:
    """The PostGIS leak guard: exact allow-list, and the reader role can read nothing else."""
    problems: list[str] = []
    forbidden = set(forbidden)
    tables = set(table_names(conn, schema))
    if tables != set(expected):
        problems.append(f"tables {sorted(tables)} != allow-list {sorted(expected)}")
    views = conn.execute(text("SELECT viewname FROM pg_views WHERE schemaname = :s"),
                         {"s": schema}).fetchall()
    if views:
        problems.append(f"unexpected views {[v[0] for v in views]}")
    for lid in sorted(tables & set(expected)):
        cols = {c for c, _ in table_columns(conn, schema, lid)} - {GEOM_COLUMN}
        if cols != expected[lid]:
            problems.append(f"{lid}: columns {sorted(cols)} != {sorted(expected[lid])}")
        if cols & forbidden:
            problems.append(f"{lid}: internal columns {sorted(cols & forbidden)}")
        n = conn.execute(text(f"SELECT count(*) FROM {qi(schema)}.{qi(lid)}")).scalar()
        if n != counts.get(lid):
            problems.append(f"{lid}: {n} rows != {counts.get(lid)} written")
        srid = conn.execute(text("SELECT srid FROM geometry_columns WHERE f_table_schema = :s "
                                 "AND f_table_name = :t"), {"s": schema, "t": lid}).scalar()
        if srid != 4326:
            problems.append(f"{lid}: SRID {srid} != 4326")
    readable = conn.execute(text(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' "
        "AND has_schema_privilege(:r, n.oid, 'USAGE') "
        "AND has_table_privilege(:r, c.oid, 'SELECT')"), {"r": reader}).fetchall()
    leaks = sorted(f"{s}.{t}" for s, t in readable
                   if s not in allowed_schemas and (s, t) not in POSTGIS_PUBLIC_TABLES)
    if leaks:
        problems.append(f"role {reader} can read {leaks[:10]}")
    if problems:
        raise LeakCheckError("leak_check_failed", path=f"postgresql:{schema}",
                             detail="; ".join(problems))


def release_schemas(conn: Connection, prefix: str) -> list[str]:
    rows = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                        {"p": like_prefix(f"{prefix}_pub_")})
    return [r[0] for r in rows]


def drop_except(project: Project, url: str, keep_release_ids: Iterable[str]) -> list[str]:
    """Drop release schemas whose release is gone (pruned, failed or never switched to)."""
    prefix = project.config.postgis.schema_prefix
    keep = {public_schema(prefix, rid) for rid in keep_release_ids}
    dropped = []
    with connect(make_engine(url), url) as conn, conn.begin():
        for s in release_schemas(conn, prefix):
            if s not in keep:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {qi(s)} CASCADE"))
                dropped.append(s)
    return dropped


def drop_schema(url: str, schema: str) -> None:
    """Best-effort clean-up of a release that failed after its tables were committed."""
    with contextlib.suppress(Exception), connect(make_engine(url), url) as conn, conn.begin():
        if schema_exists(conn, schema):  # (else the next publish drops orphans anyway)
            conn.execute(text(f"DROP SCHEMA {qi(schema)} CASCADE"))
