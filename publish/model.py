"""What every part of publication shares: the public store's columns and layers, the site context.

The bottom of ``publish``: the build writes these, page builders and the server read them, and
this module imports nothing of theirs (data walks one way).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from config import Project
from config.models import I18nText, LayerSpec

API_PATH = "/api"  # where the server mounts pygeoapi; pages and the API config agree on it
#: Origin of every link in a release's pygeoapi config. A release does not know the URL it will
#: be reached by (port, host, proxy prefix), so the build writes this placeholder (``.invalid``
#: is reserved, RFC 2606) and the server replaces it in each response by the URL the client used,
#: or by ``publish.base_url`` when that is set.
LINK_ORIGIN = "http://public-url.invalid"
ID_COLUMN = "fid"  # public, stable feature id (text) = the spec's id_field value
ROWID_COLUMN = "rid"  # the GeoPackage integer primary key; not a property, never served
GEOM_COLUMN = "geom"
STORE_CRS = "EPSG:4326"  # GeoPackage stores x=lon, y=lat: this *is* CRS84 on disk
DECIMALS = 7  # 1e-7 degree is about 1 cm at Japan's latitudes
LABEL_LANGS = ("ja", "en")


@dataclass(frozen=True)
class PublicColumn:
    """One column of a public table, with what the API and pages need to describe it."""

    name: str
    type: str  # str | int | float | bool | date
    title: I18nText | None = None
    unit: str | None = None
    queryable: bool = False
    codelist: str | None = None  # for a label column: the code list it comes from
    label_of: str | None = None  # for a label column: the code column it labels


@dataclass(frozen=True)
class LayerPlan:
    """The allow-list for one public layer, derived from its spec alone."""

    spec: LayerSpec
    columns: tuple[PublicColumn, ...]  # fid first, then public columns, then labels
    read_columns: tuple[str, ...]  # master columns to load: public ones + public_filter's
    filter_columns: tuple[str, ...]  # columns the public_filter references

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def queryables(self) -> list[str]:
        return [c.name for c in self.columns if c.queryable]


@dataclass
class StoreLayer:
    """What was written for one layer."""

    id: str
    features: int
    master_features: int
    bbox: tuple[float, float, float, float] | None  # CRS84; None when the layer is empty
    data_date: str | None
    seconds: float
    columns: list[str] = field(default_factory=list)

    @property
    def withheld(self) -> int:
        """Rows of the master that the public_filter kept out of the public store."""
        return self.master_features - self.features


@dataclass(frozen=True)
class SiteContext:
    """What a site builder gets: write static pages under ``site_dir`` (maps in ``maps/``)."""

    project: Project
    release_id: str
    site_dir: Path
    store: Path  # the public store: the only data a public page may use
    layers: dict[str, StoreLayer]
    plans: dict[str, LayerPlan]
    base_url: str  # publish.base_url without the trailing slash; "" = links relative to the page

    @property
    def data_dates(self) -> dict[str, str]:
        return {lid: lay.data_date for lid, lay in self.layers.items() if lay.data_date}

    def add_page(self, file: str, title: object) -> None:
        """List a page in ``site/maps.json`` (the landing page's map list); idempotent."""
        index = self.site_dir / "maps.json"
        try:
            pages = json.loads(index.read_text(encoding="utf-8")) if index.exists() else []
        except ValueError:
            pages = []  # another builder's broken index must not fail the publish
        if not isinstance(pages, list):
            pages = []
        pages = [p for p in pages if isinstance(p, dict) and p.get("file") != file]
        pages.append({"file": file, "title": title})
        index.write_text(json.dumps(pages, ensure_ascii=False, indent=1), encoding="utf-8")


SiteBuilder = Callable[[SiteContext], None]


