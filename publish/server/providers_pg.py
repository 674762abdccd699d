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

**Serialisation in SQL** (issue 17). The base class loads every row as an ORM object, turns each
geometry into a shapely object and then a GeoJSON mapping (93 % of a 1000-feature page). Here a
page is one SQL statement: the filtered, sorted, paged rows in a subquery (bound parameters,
pygeofilter's CQL2 expressions, the GiST index for bbox), and around it ``ST_AsGeoJSON`` for the
geometry (:data:`GEOJSON_DIGITS`: the shortest text that reads back as the stored double, which is
what GEOS writes on the GeoPackage path; the public store is rounded to
:data:`publish.model.DECIMALS` decimals, so that is what a client gets) and ``json_build_object``
of the public columns, both as text. Python only joins the texts and
parses the page once. The answer is the GeoPackage provider's, feature for feature (ids, property
order, types, coordinates; ``tests/test_providers.py``). ``COUNT`` is skipped on a last page and
the unfiltered count of an (immutable) release table is kept per process, as with the GeoPackage.
Only ``?crs=`` output (a reprojection) takes the base class path.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any

from pygeoapi.provider.base import (
    ProviderConnectionError,
    ProviderGenericError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pygeoapi.provider.sql import PostgreSQLProvider
from sqlalchemy import String, Text, and_, asc, cast, desc, func, literal, select, true
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError, StatementError

from config.messages import text
from publish.server.providers import LAST_PAGE, PublicView, typed_value

LOGGER = logging.getLogger(__name__)
PUBLIC_SRID = 4326  # build.pgpublic writes geometry(<type>, 4326), checked by its leak guard
#: ST_AsGeoJSON digits: PostGIS >= 3.1 writes the shortest round-trip text up to this many
#: decimals, so 17 gives exactly the stored double (as GEOS does for the GeoPackage path)
GEOJSON_DIGITS = 17
#: json_build_object takes at most 100 arguments: properties are built in chunks of 50 pairs
JSON_PAIRS = 50
#: unfiltered row counts of release tables (immutable: a new release is a new schema)
_COUNTS: dict[tuple[str, tuple[str, ...], str], int] = {}
_COUNTS_LOCK = threading.Lock()


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
            if crs_transform_spec is None:
                res = self._page(int(offset), int(limit), resulttype, box, props, sortby or [],
                                 select_properties or [], skip_geometry, filterq)
            else:  # reprojected output: the base class (shapely per feature) does the work
                res = super().query(offset=offset, limit=limit, resulttype=resulttype,
                                    bbox=box, datetime_=None, properties=props,
                                    sortby=sortby or [],
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

    # ---- SQL serialisation
    def _where(self, bbox: list[float], props: list[tuple[str, Any]], filterq: Any) -> Any:
        """Property, CQL2 and bbox conditions as one SQLAlchemy clause (values bound)."""
        conds = [self._get_property_filters(props), self._get_cql_filters(filterq),
                 self._get_bbox_filter(bbox)]
        return and_(*[c for c in conds if c is not True]) if any(
            c is not True for c in conds) else true()

    def _order(self, sortby: list[dict[str, str]]) -> list[Any]:
        """``sortby`` with the id as tie-breaker: stable, disjoint pages, in SQLite's order.

        As the GeoPackage sorts: text by bytes (``COLLATE "C"``; :mod:`publish.build.pgpublic`
        gives the id column that collation, so its primary key index serves the default order),
        NULL before any value.
        """
        t = self.table_model.__table__

        def key(name: str) -> Any:
            col = t.c[name]
            return col.collate("C") if isinstance(col.type, String) else col

        out = []
        for s in sortby:
            if s.get("order") == "-":
                out.append(desc(key(s["property"])).nulls_last())
            else:
                out.append(asc(key(s["property"])).nulls_first())
        out.append(asc(key(self.id_field)))
        return out

    def _read(self) -> Any:
        """A pooled connection in autocommit: one SELECT needs no BEGIN/ROLLBACK round trip."""
        return self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _count(self, conn: Any, where: Any, filtered: bool) -> int:
        t = self.table_model.__table__
        key = (str(self._engine.url), tuple(self.db_search_path), self.table)
        if not filtered and key in _COUNTS:
            return _COUNTS[key]
        n = int(conn.execute(select(func.count()).select_from(t).where(where)).scalar_one())
        if not filtered:
            with _COUNTS_LOCK:
                if len(_COUNTS) > 256:  # one entry per (release, layer): forget old releases
                    _COUNTS.clear()
                _COUNTS[key] = n
        return n

    def _feature_sql(self, where: Any, order: list[Any], offset: int, limit: int | None,
                     names: list[str], skip_geometry: bool) -> Any:
        """SELECT id, geometry GeoJSON text, property JSON text chunks, for one page.

        The JSON is built in an outer query over the paged subquery, so PostgreSQL serialises
        only the rows of the page (not those skipped by OFFSET).
        """
        t = self.table_model.__table__
        cols = [t.c[self.id_field], *(t.c[n] for n in names if n != self.id_field)]
        if not skip_geometry:
            cols.append(t.c[self.geom].label("__geom"))
        inner = select(*cols).where(where).order_by(*order).offset(offset)
        if limit is not None:
            inner = inner.limit(limit)
        q = inner.subquery("q")
        geom = (cast(func.ST_AsGeoJSON(q.c["__geom"], GEOJSON_DIGITS), Text) if not skip_geometry
                else literal(None, Text))
        chunks = []
        props = [n for n in names if n != self.id_field]
        for i in range(0, len(props), JSON_PAIRS):
            pairs = [x for n in props[i:i + JSON_PAIRS] for x in (literal(n), q.c[n])]
            chunks.append(cast(func.json_build_object(*pairs), Text))
        if not chunks:
            chunks.append(literal("{}", Text))
        return select(cast(func.to_json(q.c[self.id_field]), Text), geom, *chunks)

    def _assemble(self, rows: list[Any], names: list[str]) -> list[dict[str, Any]]:
        """GeoJSON Feature dicts from (id JSON, geometry JSON, property JSON chunks) rows.

        Three ``json.loads`` per page. PostgreSQL writes a float8 30.0 as ``30``: geometries are
        parsed with integers as floats (coordinates are always numbers), and ``number`` columns
        are made floats again, so the types are the GeoPackage provider's too.
        """
        ids, geoms, props = [], [], []
        for fid, geom, *chunks in rows:
            ids.append(fid)
            geoms.append(geom or "null")
            text_ = chunks[0]
            for more in chunks[1:]:
                if more != "{}":
                    text_ = more if text_ == "{}" else text_[:-1] + ", " + more[1:]
            props.append(text_)
        id_values = json.loads("[" + ",".join(ids) + "]")
        geometries = json.loads("[" + ",".join(geoms) + "]", parse_int=float)
        properties = json.loads("[" + ",".join(props) + "]")
        floats = [n for n in names if self._fields.get(n, {}).get("type") == "number"]
        if floats:
            for p in properties:
                for n in floats:
                    if type(p.get(n)) is int:
                        p[n] = float(p[n])
        return [{"type": "Feature", "geometry": g, "properties": p, "id": i}
                for i, g, p in zip(id_values, geometries, properties, strict=True)]

    def _page(self, offset: int, limit: int, resulttype: str, bbox: list[float],
              props: list[tuple[str, Any]], sortby: list[dict[str, str]],
              select_properties: list[str], skip_geometry: bool, filterq: Any
              ) -> dict[str, Any]:
        """One page as the GeoPackage provider answers it, serialised by PostgreSQL."""
        where = self._where(bbox, props, filterq)
        filtered = bool(bbox or props or filterq)
        with self._read() as conn:
            if resulttype == "hits":
                return {"type": "FeatureCollection", "features": [],
                        "numberMatched": self._count(conn, where, filtered)}
            names = list(self._fields)
            if select_properties:
                names = [self.id_field] + [p for p in select_properties
                                           if p in self._fields and p != self.id_field]
            sql = self._feature_sql(where, self._order(sortby), offset, limit, names,
                                    skip_geometry)
            features = self._assemble(conn.execute(sql).all(), names)
            if len(features) < limit and (features or not offset):
                matched = offset + len(features)  # the page ends the result: no COUNT
            else:
                matched = self._count(conn, where, filtered)
        return {"type": "FeatureCollection", "features": features,
                "numberMatched": matched, "numberReturned": len(features)}

    def get(self, identifier: Any, crs_transform_spec: Any = None, **kwargs: Any) -> Any:
        """One feature by its public id; an id the database cannot even compare is a 404."""
        ident = str(identifier)
        if "\x00" in ident:  # psycopg2 refuses NUL in a literal (ValueError, a 500)
            raise ProviderItemNotFoundError(f"item {ident[:40]!r} not found")
        try:
            if crs_transform_spec is not None:
                return super().get(identifier, crs_transform_spec=crs_transform_spec, **kwargs)
            self.get_fields()
            t = self.table_model.__table__
            sql = self._feature_sql(t.c[self.id_field] == ident, [], 0, 1, list(self._fields),
                                    False)
            with self._read() as conn:
                found = self._assemble(conn.execute(sql).all(), list(self._fields))
            if not found:
                raise ProviderItemNotFoundError(f"item {ident[:40]!r} not found")
            return found[0]
        except ProviderGenericError:
            raise
        except OperationalError as e:
            LOGGER.error("database unavailable: %s", e)
            raise ProviderConnectionError("database unavailable") from e
        except (DataError, StatementError, ValueError):
            raise ProviderItemNotFoundError(f"item {ident[:40]!r} not found") from None

    def __repr__(self) -> str:
        return f"<PublicPostgreSQLProvider> {self.table}"
