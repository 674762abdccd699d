"""Typed, strictly validated models for the project config and the per-layer specs.

Why pydantic with ``extra="forbid"``: a typo in a YAML key must be an error that names the file,
the key and the fix, never a silently ignored setting. Everything that differs between sources
lives in these specs; the Python code in ``etl/`` is source-agnostic.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Visibility = Literal["public", "internal"]
FieldType = Literal["str", "int", "float", "bool", "date"]
GeometryType = Literal["Point", "LineString", "Polygon", "MultiPolygon", "MultiLineString", "None"]
OnProblem = Literal["quarantine", "null", "warn", "keep"]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class I18nText(Strict):
    ja: str
    en: str


class Normalizer(Strict):
    """One normalizer step, applied in order to a source column.

    ``name`` is a key of ``etl.normalize.NORMALIZERS``; ``params`` are passed as keywords.
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class FieldSpec(Strict):
    """How one target column is produced from the (renamed) source columns."""

    from_: str | None = Field(default=None, alias="from")
    const: Any = None
    type: FieldType = "str"
    unit: str | None = None
    required: bool = False
    unique: bool = False
    visibility: Visibility = "internal"
    title: I18nText | None = None
    normalize: list[Normalizer] = Field(default_factory=list)
    sentinels: list[float | int | str] = Field(default_factory=list)
    range: tuple[float, float] | None = None
    on_out_of_range: OnProblem = "quarantine"
    codelist: str | None = None
    on_unknown_code: OnProblem = "quarantine"
    queryable: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("normalize", mode="before")
    @classmethod
    def _normalize_shorthand(cls, v: Any) -> Any:
        # "normalize: nfkc" or "normalize: [nfkc, {wareki: {}}]" are accepted shorthands.
        if v is None:
            return []
        if isinstance(v, str | dict):
            v = [v]
        out = []
        for item in v:
            if isinstance(item, str):
                out.append({"name": item})
            elif isinstance(item, dict) and "name" not in item and len(item) == 1:
                (k, p), = item.items()
                out.append({"name": k, "params": p or {}})
            else:
                out.append(item)
        return out

    @model_validator(mode="after")
    def _source_given(self) -> FieldSpec:
        if self.from_ is None and self.const is None:
            raise ValueError("a field needs 'from' (source column) or 'const' (fixed value)")
        return self


class Lookup(Strict):
    """A code table shipped beside the raw data (e.g. 水道マッピング's 管種コード表 CSV)."""

    path: str
    key: str
    value: str
    encoding: str = "utf-8"


class SourceSpec(Strict):
    """One input file feeding the layer."""

    name: str
    path: str
    reader: str = "ogr"
    layer: str | None = None
    encoding: str | None = None
    crs: str | None = None
    crs_override: bool = False
    axis_order: Literal["xy", "yx"] = "xy"
    x_field: str | None = None
    y_field: str | None = None
    id_field: str | None = None
    rename: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, Any] = Field(default_factory=dict)
    lookups: dict[str, Lookup] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    system: I18nText | None = None


class Join(Strict):
    """Attach geometry from another layer of the same run (e.g. tax CSV -> 地番 parcels)."""

    layer: str
    keys: list[str]  # not "on": YAML 1.1 reads a bare `on` key as boolean True
    take_geometry: bool = True
    on_missing: Literal["quarantine", "keep"] = "quarantine"


class Combine(Strict):
    """Fold records that describe the same real object (same key) into one feature."""

    key: list[str]
    any_true: list[str] = Field(default_factory=list)


class Reference(Strict):
    """Referential rule: ``field`` must match ``key`` of ``layer``; optionally near an endpoint."""

    field: str
    layer: str
    key: str
    endpoint: Literal["start", "end"] | None = None
    tolerance_m: float = 1.0
    on_missing: OnProblem = "quarantine"
    on_far: OnProblem = "warn"


class DatumCheck(Strict):
    """Compare the layer with a reference layer to catch a Tokyo-datum file declared as JGD."""

    reference: str
    sample: int = 400


class MapStyle(Strict):
    """Hints for the public map pages; data-driven colours live in code lists."""

    color: str = "#3388ff"
    weight: float = 2
    fill_opacity: float = 0.5
    label_field: str | None = None
    popup: list[str] = Field(default_factory=list)


class LayerSpec(Strict):
    """A declarative spec for one target layer of the merged master (``layers/<id>.yml``)."""

    spec_version: int
    id: str
    title: I18nText
    description: I18nText | None = None
    geometry_type: GeometryType
    visibility: Visibility = "internal"
    source_system: str
    attribution: I18nText
    license: str = "CC-BY-4.0"
    license_url: str = "https://creativecommons.org/licenses/by/4.0/"
    keywords: list[str] = Field(default_factory=list)
    id_field: str
    sources: list[SourceSpec]
    fields: dict[str, FieldSpec]
    join: Join | None = None
    combine: Combine | None = None
    references: list[Reference] = Field(default_factory=list)
    datum_check: DatumCheck | None = None
    check_boundary: bool = True
    repair_invalid: bool = True
    min_area_m2: float = 0.0
    public_filter: str | None = None
    map: MapStyle = Field(default_factory=MapStyle)
    depends_on: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> LayerSpec:
        if self.id_field not in self.fields:
            raise ValueError(f"id_field '{self.id_field}' is not one of fields")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("source names must be unique")
        for r in self.references:
            if r.field not in self.fields:
                raise ValueError(f"references: field '{r.field}' is not one of fields")
        return self

    def public_fields(self) -> list[str]:
        """Target columns that may leave the building (allow-list)."""
        return [n for n, f in self.fields.items() if f.visibility == "public"]

    def dependencies(self) -> set[str]:
        deps = set(self.depends_on)
        if self.join:
            deps.add(self.join.layer)
        deps |= {r.layer for r in self.references if r.layer != self.id}
        if self.datum_check:
            deps.add(self.datum_check.reference)
        return deps


class CodeEntry(Strict):
    ja: str
    en: str
    aliases: list[str] = Field(default_factory=list)
    color: str | None = None
    min: float | None = None
    max: float | None = None


class CodeList(Strict):
    """A controlled vocabulary (``layers/codelists/<id>.yml``): code -> labels, aliases, colour."""

    id: str
    title: I18nText
    source: str | None = None
    codes: dict[str, CodeEntry]

    @field_validator("codes", mode="before")
    @classmethod
    def _str_keys(cls, v: Any) -> Any:
        # YAML turns `1:` into an int key; codes are always strings.
        return {str(k): val for k, val in v.items()} if isinstance(v, dict) else v

    def alias_map(self) -> dict[str, str]:
        """Raw spelling -> canonical code (the code itself and both labels count as aliases)."""
        out: dict[str, str] = {}
        for code, e in self.codes.items():
            for a in [code, e.ja, *e.aliases]:
                out[str(a)] = code
        return out


class GridTransform(Strict):
    """A datum change applied with GSI grids through PROJ ``hgridshift`` steps."""

    from_datum: str
    grids: list[str]
    accuracy_m: float
    title: I18nText


class BoundaryConfig(Strict):
    path: str
    margin_m: float = 500.0


class PublishConfig(Strict):
    title: I18nText
    description: I18nText
    contact_name: str
    contact_email: str = ""
    contact_url: str
    contact_phone: str = ""
    city_url: str
    terms_version: str = "1"
    keywords: list[str] = Field(default_factory=list)
    max_items: int = 1000
    default_items: int = 100
    base_url: str = "http://127.0.0.1:5000"


class PostgisConfig(Strict):
    """Names used when ``store`` is a PostGIS URL (one prefix per city on a shared server).

    Schemas: ``<prefix>_run_<run>`` (one per merge run), ``<prefix>_master`` (views on the
    current run, for QGIS), ``<prefix>_meta`` (run history), ``<prefix>_pub_<release>`` (public
    tables of one release, the only schema ``reader_role`` may read).
    """

    schema_prefix: str = "uozu"
    reader_role: str = "uozu_public_reader"


class ProjectConfig(Strict):
    """``config/project.yml``: the city, its CRS and paths (a new city edits this + layers/)."""

    city: I18nText
    city_code: str
    target_crs: str = "EPSG:6675"
    publish_crs: str = "OGC:CRS84"
    raw_dir: str = "data/raw"
    merged_dir: str = "data/merged"
    public_dir: str = "data/public"
    layers_dir: str = "layers"
    grids_dir: str = "data/grids"
    boundary: BoundaryConfig | None = None
    keep_runs: int = 5
    transforms: list[GridTransform] = Field(default_factory=list)
    publish: PublishConfig
    #: ``gpkg`` (embedded default) or ``postgresql://user@host:port/db`` without a password;
    #: ``--store`` and the ``UOZU_GIS_STORE`` environment variable override it.
    store: str = "gpkg"
    postgis: PostgisConfig = Field(default_factory=PostgisConfig)
