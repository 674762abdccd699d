"""PostGIS enforces the access policy: one group role and one schema of views per department.

For department ``d`` (``p`` = ``postgis.schema_prefix``):

* role ``p_dept_d``: NOLOGIN, no password, commented as ours. The city grants it to its staff's
  own login roles (``GRANT p_dept_d TO tanaka;``); nothing here creates a login.
* schema ``p_dept_d``: one view per layer the department may read, over the current run's table
  (``p_run_<run>``), selecting exactly the allowed columns (plus geometry); ``_quarantine`` and
  ``_layer_meta`` as ``security_barrier`` views keeping only the allowed layers' rows (a
  user-defined function in a query cannot see the other rows); ``_code_table`` whole. The role
  gets USAGE on its schema and, per view, ``GRANT SELECT (<its columns>)``: the grant names
  the columns (no table-level SELECT anywhere), nothing on the run, master, meta or public
  schemas, nothing of another department.

Everything happens in one transaction (:func:`apply_grants`): a failure changes nothing. It is
idempotent (schemas are rebuilt from the policy; roles created once) and revokes what the policy
no longer grants: views of a layer no longer granted disappear with the rebuilt schema, roles
of departments removed from the config are dropped, stray privileges of our roles on our other
schemas are revoked. Before committing, :func:`check` asks the server what each role can read
and fails unless it is exactly the allow-list.

The views name the run schema, so they keep showing the run they were built on until the next
``staff grants`` (a merge leaves them consistent, never broken, until that run is pruned). Run
``uozu-gis staff grants`` after every merge; it takes well under a second.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from config.errors import ConfigError, EtlError
from config.messages import text as msg
from etl.sql import like_prefix, qi
from etl.stores import open_store
from etl.stores import url as store_url
from etl.stores.postgis import (
    PostgisStore,
    Transaction,
    db_error,
    run_schema,
    table_columns,
    table_names,
)
from staff.policy import BOOKKEEPING, DepartmentAccess, all_access

if TYPE_CHECKING:
    from config import Project

MARKER = "uozu-gis:department:"  # start of the comment on our roles and schemas
MAX_NAME = 63  # PostgreSQL identifiers (NAMEDATALEN - 1)


def dept_role(prefix: str, dept_id: str) -> str:
    """The group role (and schema) name of a department: ``<prefix>_dept_<id>``."""
    name = f"{store_url.check_identifier('schema_prefix', prefix)}_dept_{dept_id}"
    if len(name) > MAX_NAME:
        raise ConfigError("staff_role_name", name=name, n=len(name), dept=dept_id)
    return name


def prefix_like(prefix: str) -> str:
    """The ``LIKE`` pattern of every schema of our prefix (``<prefix>_…``: runs, master, meta,
    public releases, departments): what the grants revoke on and the check inspects."""
    return like_prefix(f"{prefix}_")


def postgis_store(project: Project, url: str | None) -> PostgisStore:
    store = open_store(project, url)
    if not isinstance(store, PostgisStore):
        raise ConfigError("staff_needs_postgis", store=store.describe())
    return store


def schema_run(conn: Connection, schema: str) -> str | None:
    """The run a department schema's views were built on (from its comment), None if absent."""
    row = conn.execute(text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                            "WHERE nspname = :s"), {"s": schema}).first()
    if row is None or not (row[0] or "").startswith(MARKER):
        return None
    return json.loads(row[0].split(" ", 1)[1]).get("run_id")


@dataclass
class GrantsResult:
    run_id: str
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    kept: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "roles": self.roles, "dropped": self.dropped,
                "kept": self.kept, "seconds": round(self.seconds, 3)}


def _ensure_role(conn: Connection, role: str, access: DepartmentAccess) -> None:
    row = conn.execute(text("SELECT rolcanlogin, shobj_description(oid, 'pg_authid') "
                            "FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if row is None:
        conn.execute(text(f"CREATE ROLE {qi(role)} NOLOGIN"))
    elif not (row[1] or "").startswith(MARKER):
        raise EtlError("staff_role_foreign", role=role)
    elif row[0]:
        conn.execute(text(f"ALTER ROLE {qi(role)} NOLOGIN"))
    name = f"{access.department.name.ja} / {access.department.name.en}"
    comment = f"{MARKER}{access.id} " + msg("staff_role_comment", name=name)
    conn.execute(text(f"COMMENT ON ROLE {qi(role)} IS :c"), {"c": comment})
    # a department role holds nothing but its own views: no inherited memberships
    for (parent,) in conn.execute(text(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            "WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = :r)"), {"r": role}):
        conn.execute(text(f"REVOKE {qi(parent)} FROM {qi(role)}"))


def _department_views(conn: Connection, store: PostgisStore, run: str,
                      tables: dict[str, list[tuple[str, str]]], access: DepartmentAccess,
                      role: str, run_id: str) -> dict[str, Any]:
    schema = role
    conn.execute(text(f"DROP SCHEMA IF EXISTS {qi(schema)} CASCADE"))
    conn.execute(text(f"CREATE SCHEMA {qi(schema)}"))
    comment = f"{MARKER}{access.id} " + json.dumps({"run_id": run_id})
    conn.execute(text(f"COMMENT ON SCHEMA {qi(schema)} IS :c"), {"c": comment})
    views: dict[str, list[str]] = {}  # view -> the columns granted on it
    for lid, la in access.layers.items():
        cols = tables.get(lid)
        if cols is None:
            raise EtlError("staff_master_missing", path=store.describe(), layer=lid)
        names = [c for c, _ in cols]
        missing = [c for c in la.columns if c not in names]
        if missing:
            raise EtlError("staff_master_columns", layer=lid, columns=", ".join(missing))
        geom = [c for c, udt in cols if udt == "geometry"]
        allowed = [*la.columns, *geom]
        select = ", ".join(qi(c) for c in allowed)
        conn.execute(text(f"CREATE VIEW {qi(schema)}.{qi(lid)} AS SELECT {select} "
                          f"FROM {qi(run)}.{qi(lid)}"))
        views[lid] = allowed
    for table in BOOKKEEPING:
        if table not in tables:
            continue
        rows = access.rows(table)
        where = "" if rows is None else (" WHERE layer = ANY(:rows)" if rows else " WHERE false")
        barrier = "" if rows is None else " WITH (security_barrier)"
        # psycopg2 interpolates :rows client-side: the view stores the literal array
        conn.execute(text(f"CREATE VIEW {qi(schema)}.{qi(table)}{barrier} AS SELECT * "
                          f"FROM {qi(run)}.{qi(table)}{where}"),
                     {"rows": list(rows)} if rows else {})
        views[table] = [c for c, _ in tables[table]]
    # the grant itself names the columns (the view selects no others): a second boundary,
    # and what information_schema.column_privileges shows an auditor
    for v, allowed in views.items():
        conn.execute(text(f"GRANT SELECT ({', '.join(qi(c) for c in allowed)}) ON "
                          f"{qi(schema)}.{qi(v)} TO {qi(role)}"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA {qi(schema)} TO {qi(role)}"))
    return {"role": role, "schema": schema, "views": list(views),
            "quarantine_layers": list(access.quarantine_layers)}


def managed_roles(conn: Connection, prefix: str) -> list[str]:
    """Roles we created for this prefix (by name and comment), configured or not."""
    rows = conn.execute(text(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE :p "
        "AND shobj_description(oid, 'pg_authid') LIKE :m ORDER BY rolname"),
        {"p": like_prefix(f"{prefix}_dept_"), "m": MARKER + "%"})
    return [r[0] for r in rows]


def our_schemas(conn: Connection, prefix: str) -> list[str]:
    rows = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p "
                             "ORDER BY nspname"), {"p": prefix_like(prefix)})
    return [r[0] for r in rows]


def apply_grants(project: Project, url: str | None = None) -> GrantsResult:
    """Create/update every department's role and views in one transaction (see module doc)."""
    t0 = time.perf_counter()
    store = postgis_store(project, url)
    accesses = all_access(project)
    wanted = {a.id: dept_role(store.prefix, a.id) for a in accesses}
    db = Transaction(store.engine, store.url)
    conn = db.conn
    role = "-"
    try:
        run_id = store.current_run_in(conn)
        if run_id is None:
            raise EtlError("no_master")
        run = run_schema(store.prefix, run_id)
        tables = {t: table_columns(conn, run, t) for t in table_names(conn, run)}
        res = GrantsResult(run_id)
        for a in accesses:
            role = wanted[a.id]
            _ensure_role(conn, role, a)
            res.roles[a.id] = _department_views(conn, store, run, tables, a, role, run_id)
        for old in managed_roles(conn, store.prefix):
            if old in wanted.values():
                continue
            role = old
            conn.execute(text(f"DROP SCHEMA IF EXISTS {qi(old)} CASCADE"))
            try:
                with conn.begin_nested():
                    conn.execute(text(f"DROP ROLE {qi(old)}"))
                res.dropped.append(old)
            except DBAPIError as e:  # it holds privileges elsewhere (granted by someone else)
                res.kept.append({"role": old, "detail": db_error(e)})
        schemas = our_schemas(conn, store.prefix)
        for a in accesses:
            role = wanted[a.id]
            for s in schemas:
                if s == role:
                    continue
                conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {qi(s)} FROM {qi(role)}"))
                conn.execute(text(f"REVOKE ALL ON SCHEMA {qi(s)} FROM {qi(role)}"))
        check(conn, store.prefix, accesses, wanted, tables)
        db.commit()
    except DBAPIError as e:
        raise EtlError("staff_grants_failed", role=role, detail=db_error(e)) from e
    finally:
        db.close()
    res.seconds = time.perf_counter() - t0
    return res


def readable_relations(conn: Connection, role: str, prefix: str) -> dict[str, set[str]]:
    """``schema.relation`` -> columns ``role`` may SELECT, over every schema of our prefix."""
    rows = conn.execute(text(
        "SELECT n.nspname, c.relname, a.attname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname LIKE :p AND c.relkind IN ('r', 'v', 'm', 'f', 'p') "
        "AND has_schema_privilege(:r, n.oid, 'USAGE') "
        "AND has_column_privilege(:r, c.oid, a.attnum, 'SELECT')"),
        {"p": prefix_like(prefix), "r": role})
    out: dict[str, set[str]] = {}
    for s, rel, col in rows:
        out.setdefault(f"{s}.{rel}", set()).add(col)
    return out


def whole_relation_grants(conn: Connection, role: str, prefix: str) -> list[str]:
    """``schema.relation`` of our schemas on which ``role`` holds table-level SELECT (ours are
    all per column, so: none)."""
    return conn.execute(text(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname LIKE :p AND c.relkind IN ('r', 'v', 'm', 'f', 'p') "
        "AND has_table_privilege(:r, c.oid, 'SELECT') ORDER BY 1"),
        {"p": prefix_like(prefix), "r": role}).scalars().all()


def check(conn: Connection, prefix: str, accesses: list[DepartmentAccess],
          roles: dict[str, str], tables: dict[str, list[tuple[str, str]]]) -> None:
    """Ask the server what each department role can read; fail unless exactly its views."""
    problems: list[str] = []
    for a in accesses:
        role = roles[a.id]
        got = readable_relations(conn, role, prefix)
        want: dict[str, set[str]] = {}
        for lid, la in a.layers.items():
            geom = {c for c, udt in tables[lid] if udt == "geometry"}
            want[f"{role}.{lid}"] = set(la.columns) | geom
        for table in BOOKKEEPING:
            if table in tables:
                want[f"{role}.{table}"] = {c for c, _ in tables[table]}
        if got != want:
            extra = sorted(set(got) - set(want))
            lacking = sorted(set(want) - set(got))
            cols = sorted(k for k in set(got) & set(want) if got[k] != want[k])
            problems.append(f"{role}: extra {extra}, missing {lacking}, columns differ {cols}")
        whole = whole_relation_grants(conn, role, prefix)
        if whole:
            problems.append(f"{role}: SELECT on whole relations {whole}")
        schemas = conn.execute(text(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE :p "
            "AND has_schema_privilege(:r, oid, 'USAGE')"),
            {"p": prefix_like(prefix), "r": role}).scalars().all()
        if set(schemas) != {role}:
            problems.append(f"{role}: usage on schemas {sorted(schemas)}")
    funcs = conn.execute(text(
        "SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n "
        "ON n.oid = p.pronamespace WHERE n.nspname LIKE :p"),
        {"p": prefix_like(prefix)}).scalars().all()
    if funcs:
        problems.append(f"functions in our schemas {sorted(funcs)}")
    if problems:
        raise EtlError("staff_grants_check", detail="; ".join(problems))
