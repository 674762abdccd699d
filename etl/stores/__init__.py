"""Master stores: where merged masters live. A small registry, as pygeoapi's plugins.

``STORES`` maps a store kind (the URL scheme) to the dotted path of its class, imported when
used: ``psycopg2`` and SQLAlchemy load only for a PostGIS store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from config.errors import EtlError
from etl.stores import url as store_url
from etl.stores.base import (
    HASH_DIR,
    MANIFEST,
    MASTER,
    MasterStore,
    StagedRun,
    explain_os_error,
)

if TYPE_CHECKING:
    from config import Project

__all__ = ["HASH_DIR", "MANIFEST", "MASTER", "STORES", "MasterStore", "StagedRun",
           "explain_error", "open_store"]

#: Store kinds by URL scheme -> ``module.Class`` taking ``(url, project)``.
STORES: dict[str, str] = {
    "gpkg": "etl.stores.gpkg.GpkgStore",
    "postgresql": "etl.stores.postgis.PostgisStore",
}


def open_store(project: Project, url: str | None = None) -> MasterStore:
    """The master store in effect (``url`` > environment > config; see :mod:`etl.stores.url`)."""
    url = store_url.resolve(project.config.store, url)
    kind = store_url.scheme(url)
    if kind not in STORES:
        raise EtlError("store_unknown", store=store_url.redact(url))
    module, _, cls = STORES[kind].rpartition(".")
    return getattr(importlib.import_module(module), cls).open(url, project)


def explain_error(e: BaseException, store: MasterStore | None = None) -> EtlError | None:
    """An environment fault (disk full, permissions, lock, database gone away) as a clear,
    bilingual error naming the path or server and the fix; None for anything else."""
    if store is not None:
        return store.explain(e)
    return explain_os_error(e, getattr(e, "filename", None) or "-")
