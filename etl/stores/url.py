"""Which store a command uses, and the rules for naming it (no credentials in files).

Precedence: ``--store`` (CLI) > ``UOZU_GIS_STORE`` (environment) > ``store:`` in
``config/project.yml`` > ``gpkg``. A PostGIS store is a libpq URL such as
``postgresql://gis@db.example.lg.jp:5432/gis``; its password comes from ``PGPASSWORD`` or
``~/.pgpass`` (libpq reads both), never from a committed file.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from config.errors import ConfigError

if TYPE_CHECKING:
    from config.models import ProjectConfig

STORE_ENV = "UOZU_GIS_STORE"
PG_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def scheme(url: str) -> str:
    """``gpkg`` or ``postgresql`` (the store registry key)."""
    head = url.split(":", 1)[0].lower() if "://" in url else url.lower()
    return "postgresql" if head in PG_SCHEMES else head


def has_password(url: str) -> bool:
    """True if a URL carries a password (``user:secret@host`` or ``?password=``)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(sqlalchemy_url(url))
    except Exception:  # not a URL at all: the store registry reports it
        return False
    return bool(u.password) or "password" in u.query


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for messages and logs)."""
    if scheme(url) != "postgresql":
        return url
    from sqlalchemy.engine import make_url

    try:
        u = make_url(sqlalchemy_url(url))
    except Exception:
        return "postgresql://***"
    if "password" in u.query:
        u = u.set(query={k: v for k, v in u.query.items() if k != "password"})
    return u.render_as_string(hide_password=True).replace("postgresql+psycopg2", "postgresql")


def sqlalchemy_url(url: str) -> str:
    """The psycopg2 SQLAlchemy URL of a libpq-style ``postgresql://`` URL."""
    for s in PG_SCHEMES:
        if url.startswith(s + "://"):
            return "postgresql+psycopg2://" + url[len(s) + 3:]
    return url


def resolve(config_store: str, override: str | None = None) -> str:
    """The store URL in effect for this process (see the module docstring for precedence)."""
    return override or os.environ.get(STORE_ENV) or config_store or "gpkg"


def check_identifier(key: str, value: str) -> str:
    """A schema/role name we interpolate into SQL: only ``[a-z][a-z0-9_]*`` is accepted."""
    if not IDENTIFIER.match(value):
        raise ConfigError("store_bad_identifier", key=key, value=value)
    return value


def check_config_store(cfg: ProjectConfig, file: str) -> None:
    """Config-file rules: a known store kind, no password, valid PostGIS names."""
    url = cfg.store
    if scheme(url) not in ("gpkg", "postgresql"):
        raise ConfigError("store_unknown", store=url)
    if has_password(url):
        raise ConfigError("store_password_in_file", file=file)
    check_identifier("schema_prefix", cfg.postgis.schema_prefix)
    check_identifier("reader_role", cfg.postgis.reader_role)
