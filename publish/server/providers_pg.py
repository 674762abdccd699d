"""``PublicPostgreSQLProvider``: pygeoapi's PostgreSQL provider for a release's public schema.

Registered by dotted path in the generated config when the store is PostGIS. It connects as the
SELECT-only reader role (:mod:`publish.build.pgpublic`) and keeps what the base class does well
(bound parameters, ``ORDER BY`` the primary key, CQL2 ``filter`` through pygeofilter), adding
what the public API promises on every store (same behaviour as :class:`PublicOGRProvider`):

* a property filter on a non-queryable field, a value of the wrong type, a bad bbox or an
  unknown ``sortby`` field is a 400 with a bilingual message, never a 500 or a no-op;
* a CQL2 filter that names an unknown property, compares incompatible types or cannot be
  translated is a 400 (the base class lets ``KeyError``/database errors through as 500s);
* ``q`` (full text) is a 400, as on the GeoPackage path; ``datetime`` does not filter (a layer
  has one data date, its temporal extent, and no time column), as on the GeoPackage path;
* ``/queryables`` lists the spec's queryables only, with bilingual titles;
* the page is recorded in :data:`publish.server.providers.LAST_PAGE` for the server's paging links.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from pygeoapi.provider.base import (
    ProviderConnectionError,
    ProviderGenericError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pygeoapi.provider.sql import PostgreSQLProvider
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError, StatementError

from config.messages import text
from publish.server.providers import LAST_PAGE, PublicView, typed_value

LOGGER = logging.getLogger(__name__)
PUBLIC_SRID = 4326  # build.pgpublic writes geometry(<type>, 4326), checked by its leak guard


def filter_attributes(node: Any) -> set[str]:
    """Property names a parsed CQL2 filter (pygeofilter AST) refers to."""
    import pygeofilter.ast as cql

    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cql.Attribute):
            out.add(n.name)
        elif isinstance(n, cql.Node):
            stack.extend(n.get_sub_nodes())
        elif isinstance(n, (list, tuple)):
            stack.extend(n)
    return out


class PublicPostgreSQLProvider(PublicView, PostgreSQLProvider):
    """PostgreSQL provider with typed, validated filters and the public field view."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        self._init_view(provider_def)
        super().__init__(provider_def)

    def get_fields(self) -> dict[str, dict[str, Any]]:
        if not self._fields:
            for name, entry in super().get_fields().items():
                clean = {k: v for k, v in entry.items() if v is not None}
                if name in self.field_titles:
                    clean["title"] = self.field_titles[name]
                self._fields[name] = clean
        return self._fields

    def _get_bbox_filter(self, bbox: list[float]) -> Any:
        """The public schema is always SRID 4326 (x = lon): no per-request CRS lookup.

        The base class resolves ``storage_crs`` on every request (pyproj search, ~8.5 ms for
        CRS84, about a third of a bbox request; bench/RESULTS.md) only to fall back to 4326.
        """
        if not bbox:
            return True
        from geoalchemy2.functions import ST_Intersects, ST_MakeEnvelope

        return ST_Intersects(ST_MakeEnvelope(*bbox, PUBLIC_SRID),
                             getattr(self.table_model, self.geom))

    def _typed_properties(self, properties: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        out = []
        for name, value in properties:
            self.check_queryable(name)
            typ = self._fields.get(name, {}).get("type", "string")
            out.append((name, typed_value(name, value, typ)))
        return out

    def query(self, offset: int = 0, limit: int = 10, resulttype: str = "results",
              bbox: list[Any] | None = None, datetime_: Any = None,
              properties: list[tuple[str, Any]] | None = None,
              sortby: list[dict[str, str]] | None = None,
              select_properties: list[str] | None = None, skip_geometry: bool = False,
              q: str | None = None, filterq: Any = None, crs_transform_spec: Any = None,
              **kwargs: Any) -> dict[str, Any]:
        """Validated query; the base class builds and runs the SQL."""
        if q:
            raise ProviderInvalidQueryError(user_msg=text("err_no_q"))
        self.get_fields()
        props = self._typed_properties(properties or [])
        for s in sortby or []:
            if s["property"] not in self._fields:
                raise ProviderInvalidQueryError(user_msg=f"sortby: {s['property']}")
        if filterq is not None:
            unknown = sorted(filter_attributes(filterq) - set(self._fields))
            if unknown:  # pygeofilter would compare NULL instead: a silent empty answer
                raise ProviderInvalidQueryError(user_msg=text(
                    "err_bad_filter", detail=f"unknown properties: {', '.join(unknown)}"))
        box = [float(b) for b in bbox or []]
        if len(box) == 6:  # 3D bbox: x/y only
            box = [box[0], box[1], box[3], box[4]]
        if box and (len(box) != 4 or not all(math.isfinite(v) for v in box)):
            raise ProviderInvalidQueryError(user_msg="bbox")
        try:
            # datetime: a layer has one data date (the collection's temporal extent) and no
            # time column, so like the GeoPackage path every feature matches it.
            res = super().query(offset=offset, limit=limit, resulttype=resulttype, bbox=box,
                                datetime_=None, properties=props, sortby=sortby or [],
                                select_properties=select_properties or [],
                                skip_geometry=skip_geometry, filterq=filterq,
                                crs_transform_spec=crs_transform_spec)
        except ProviderGenericError:
            raise
        except OperationalError as e:
            LOGGER.error("database unavailable: %s", e)
            raise ProviderConnectionError("database unavailable") from e
        except (DataError, ProgrammingError, StatementError, KeyError, AttributeError,
                TypeError, ValueError, NotImplementedError) as e:
            # pygeofilter: KeyError = unknown property; the database: incompatible types
            detail = str(getattr(e, "orig", None) or e).strip().splitlines()[0][:120]
            raise ProviderInvalidQueryError(
                user_msg=text("err_bad_filter", detail=detail)) from None
        LAST_PAGE.set((int(res.get("numberMatched", 0)), int(offset),
                       int(res.get("numberReturned", 0))))
        return res

    def get(self, identifier: Any, crs_transform_spec: Any = None, **kwargs: Any) -> Any:
        """One feature by its public id; an id the database cannot even compare is a 404."""
        ident = str(identifier)
        if "\x00" in ident:  # psycopg2 refuses NUL in a literal (ValueError, a 500)
            raise ProviderItemNotFoundError(f"item {ident[:40]!r} not found")
        try:
            return super().get(identifier, crs_transform_spec=crs_transform_spec, **kwargs)
        except ProviderGenericError:
            raise
        except OperationalError as e:
            LOGGER.error("database unavailable: %s", e)
            raise ProviderConnectionError("database unavailable") from e
        except (DataError, StatementError, ValueError):
            raise ProviderItemNotFoundError(f"item {ident[:40]!r} not found") from None

    def __repr__(self) -> str:
        return f"<PublicPostgreSQLProvider> {self.table}"
