"""``config/services.yml``: the answers built at publish (walking routes, search, open data).

Why a file of its own: these are city facts (which layers are walked on, how 大字 are read and
miswritten, which public layer is which 自治体標準オープンデータセット) that the engine must not
know, and they are optional: a city without the file gets the defaults (no routing, search over
what the roles give, open data in the layer's own columns). Validated as strictly as every other
config file (unknown keys are errors naming the file, the key and the fix).

Proposed home once the models settle: ``ProjectConfig.publish.services`` (same models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from config import Project, load_model
from config.models import I18nText, Strict

SERVICES_FILE = "config/services.yml"


class RoutingConfig(Strict):
    """The walking graph built at publish from the public road layers, and how routes are told."""

    #: public line layers people walk on (their union is the network)
    network_layers: list[str] = Field(min_length=1)
    #: walking speed (m/s) for times; 1.0 m/s is the usual evacuation planning figure (内閣府)
    walk_speed_mps: float = Field(default=1.0, gt=0, le=3)
    #: a point farther than this from every road gets no route (said, with the distance)
    snap_m: float = Field(default=150.0, gt=0, le=2000)
    #: line ends (and ends on another line) closer than this are one junction
    junction_m: float = Field(default=0.5, ge=0, le=10)
    #: separate parts of the network closer than this are joined by a straight link (0 = never);
    #: for road ledgers that stop at national or prefectural roads. Links are said in directions.
    bridge_m: float = Field(default=0.0, ge=0, le=500)
    #: shelters returned per request
    results: int = Field(default=3, ge=1, le=10)


class OazaEntry(Strict):
    """One 大字 as written in the parcel layer, its reading and other spellings people type."""

    name: str
    reading: str  # hiragana, e.g. さんが (sorting and kana search)
    en: str | None = None  # romanised, e.g. Sanga
    variants: list[str] = Field(default_factory=list)  # 三ヶ, 三箇, old forms, former names


class SearchConfig(Strict):
    """The one search of every page (index built at publish)."""

    oaza: list[OazaEntry] = Field(default_factory=list)
    #: prefixes dropped from queries and addresses before matching (e.g. 県名+市名)
    address_prefixes: list[str] = Field(default_factory=list)
    #: named layers whose features are places; default: shelter and context layers that have
    #: ``map.label_field``
    place_layers: list[str] | None = None


class StdColumn(Strict):
    """Where one column of a standard layout comes from: a field, or a fixed value."""

    field: str | None = None
    const: str | None = None
    #: ``flag``: true -> "1", else "" (the standard's 対応あり/なし); ``text``: as is
    format: Literal["text", "flag"] = "text"

    @model_validator(mode="after")
    def _one_source(self) -> StdColumn:
        if (self.field is None) == (self.const is None):
            raise ValueError("give exactly one of 'field' or 'const'")
        return self


class OpenDataLayer(Strict):
    """One public layer in a standard layout (自治体標準オープンデータセット)."""

    standard: str  # key of publish/build/opendata_standards.yml, e.g. evacuation_space
    #: a boolean field: only rows where it is true are in the standard list (指定緊急避難場所)
    where: str | None = None
    #: standard column -> our field (``name``) or ``{field, format}`` / ``{const}``
    columns: dict[str, str | StdColumn] = Field(default_factory=dict)

    def column(self, name: str) -> StdColumn | None:
        v = self.columns.get(name)
        return StdColumn(field=v) if isinstance(v, str) else v


class OpenDataConfig(Strict):
    """Per-layer open-data downloads; every public layer gets them, these add standard layouts."""

    layers: dict[str, OpenDataLayer] = Field(default_factory=dict)
    #: shown in every download's README and metadata (e.g. 公共データ利用規約 compatibility)
    note: I18nText | None = None


class ServicesConfig(Strict):
    routing: RoutingConfig | None = None
    search: SearchConfig = Field(default_factory=SearchConfig)
    opendata: OpenDataConfig = Field(default_factory=OpenDataConfig)


def load_services(project: Project | Path) -> ServicesConfig:
    """The city's ``config/services.yml`` (defaults without one); errors name file and key."""
    root = project if isinstance(project, Path) else project.root
    path = root / SERVICES_FILE
    if not path.is_file():
        return ServicesConfig()
    return load_model(path, ServicesConfig)
