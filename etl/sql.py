"""SQL text the engine writes itself: quoted identifiers and literals, LIKE prefixes.

One place for the quoting rules shared by every store and query builder (SQLite/GeoPackage,
PostgreSQL and QGIS expressions all quote the same way), so that none of them carries its own
copy. Light on purpose (no database driver is imported): the GeoPackage paths, the public
server and the staff tools import it without loading SQLAlchemy or psycopg2.
"""

from __future__ import annotations

import re

_LIKE_SPECIAL = re.compile(r"([\\%_])")


def qi(name: str) -> str:
    """A quoted SQL identifier (names come from specs and the schema, but quote them anyway);
    also a QGIS expression's field reference, which follows the same rule."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A SQL text literal: the only escaping SQLite, PostgreSQL (standard strings) and QGIS
    expressions need is doubling single quotes."""
    return "'" + value.replace("'", "''") + "'"


def like_prefix(prefix: str) -> str:
    """A PostgreSQL ``LIKE`` pattern (its default escape ``\\``) for names starting with
    ``prefix`` as written: ``_`` and ``%`` would otherwise match any character(s)."""
    return _LIKE_SPECIAL.sub(r"\\\1", prefix) + "%"
