"""Typed, strictly validated models for the project config and the per-layer specs.

Why pydantic with ``extra="forbid"``: a typo in a YAML key must be an error that names the file,
the key and the fix, never a silently ignored setting. Everything that differs between sources
lives in these specs; the Python code in ``etl/`` is source-agnostic.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Access levels, layer and field: ``public`` leaves the building (public store, API, pages);
#: ``internal`` is for every department's staff; ``confidential`` only for departments granted it
#: in ``departments:`` of the project (default deny; e.g. 固定資産税 owners, 地方税法22条).
Visibility = Literal["public", "internal", "confidential"]
VISIBILITY_RANK = {"public": 0, "internal": 1, "confidential": 2}
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


#: What a layer does on a page. Behaviours switch on by the roles present on a page:
#: ``parcel`` -> 地番 search and the pipe sheet (with ``pipe`` layers); ``hazard`` -> the point
#: risk card; ``shelter`` -> nearest suitable shelters. ``pipe``/``structure`` are network
#: lines/points of a utility; ``context`` is any other layer (roads, schools, fire stations).
MapRole = Literal["pipe", "structure", "parcel", "hazard", "shelter", "context"]
#: Hazard kinds are an open set (a city may add its own); these are the common ones.
KNOWN_HAZARD_KINDS = ("flood", "inland_flood", "tsunami", "storm_surge", "landslide",
                      "earthquake", "large_fire", "volcano")


class WidthBy(Strict):
    """Line width (px) by a numeric field: ``classes`` are ``[lower bound, width]`` pairs."""

    field: str
    classes: list[tuple[float, float]]


class LabelSpec(Strict):
    """Text drawn on or beside the features (e.g. 管径・管種 along pipes at high zoom)."""

    fields: list[str]
    min_zoom: int = 17
    template: I18nText | None = None  # e.g. {ja: "φ{diameter_mm} {material}", en: ...}


class HazardRole(Strict):
    """A hazard layer: its kind (open set), the rank field and the code list colouring it."""

    kind: str
    title: I18nText | None = None  # shown for the kind; default: the layer's title
    rank_field: str | None = None  # default: the field the code list is attached to
    name_field: str | None = None  # e.g. 河川名 for a per-river flood layer
    #: ranks drawn with a stronger outline (e.g. landslide 特別警戒区域); code -> colour
    emphasis: dict[str, str] = Field(default_factory=dict)


class ShelterRole(Strict):
    """A shelter layer: which boolean field says the site is designated for which hazard kind."""

    name_field: str
    flags: dict[str, str]  # hazard kind -> field, e.g. {flood: hz_flood, tsunami: hz_tsunami}
    #: shelters suggested where a point is in no mapped hazard zone (e.g. earthquake, fire)
    default_kinds: list[str] = Field(default_factory=list)
    address_field: str | None = None


class ParcelRole(Strict):
    """A parcel layer: the fields holding 大字 and 地番 (parcel search, pipe sheet)."""

    oaza_field: str
    chiban_field: str


class PipeRole(Strict):
    """A utility network layer: which utility (water, sewer, gas, ...) and its key fields."""

    utility: str
    utility_title: I18nText | None = None
    diameter_field: str | None = None
    material_field: str | None = None
    year_field: str | None = None
    depth_field: str | None = None


class MapSpec(Strict):
    """Where a public layer appears and how: page, role, style, labels, popup, legend, zooms.

    Colours of coded values come from the code list of ``color_by`` (code lists carry colours);
    ``color`` is the single colour otherwise.
    """

    pages: list[str] = Field(default_factory=list)  # [] = on no page
    role: MapRole = "context"
    color: str = "#3388ff"
    color_by: str | None = None  # a field with a code list whose entries carry colours
    color_by_options: list[str] = Field(default_factory=list)  # other fields a user may choose
    weight: float = 2
    width_by: WidthBy | None = None
    fill_opacity: float = 0.5
    label_field: str | None = None  # the feature's name in lists and popups
    labels: LabelSpec | None = None
    popup: list[str] = Field(default_factory=list)
    legend: bool = True
    min_zoom: int = 12
    max_zoom: int = 19
    z_order: int = 0  # higher draws on top
    hazard: HazardRole | None = None
    shelter: ShelterRole | None = None
    parcel: ParcelRole | None = None
    pipe: PipeRole | None = None

    @model_validator(mode="after")
    def _role_block(self) -> MapSpec:
        for role in ("hazard", "shelter", "parcel", "pipe"):
            given = getattr(self, role) is not None
            if self.role == role and not given:
                raise ValueError(f"role '{role}' needs a '{role}:' block")
            if given and self.role != role:
                raise ValueError(f"'{role}:' block given but role is '{self.role}'")
        if self.min_zoom > self.max_zoom:
            raise ValueError("min_zoom must not exceed max_zoom")
        return self

    def fields_used(self) -> set[str]:
        """Every field the page or sheet reads (must exist and be public)."""
        out = set(self.popup) | {f for f in (self.color_by, self.label_field) if f}
        out |= set(self.color_by_options)
        if self.width_by:
            out.add(self.width_by.field)
        if self.labels:
            out |= set(self.labels.fields)
        for block in (self.hazard, self.shelter, self.parcel, self.pipe):
            if block is None:
                continue
            for k, v in block:
                if k.endswith("_field") and v:
                    out.add(v)
        if self.shelter:
            out |= set(self.shelter.flags.values())
        return out


class LayerSpec(Strict):
    """A declarative spec for one target layer of the merged master (``layers/<id>.yml``)."""

    spec_version: int
    id: str
    title: I18nText
    description: I18nText | None = None
    geometry_type: GeometryType
    visibility: Visibility = "internal"
    #: theme for staff projects (QGIS groups), e.g. {ja: 下水道, en: Sewer}
    theme: I18nText | None = None
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
    map: MapSpec = Field(default_factory=MapSpec)
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

    def field_visibility(self, name: str) -> Visibility:
        """A field is never more visible than its layer."""
        fv = self.fields[name].visibility
        return max(fv, self.visibility, key=VISIBILITY_RANK.__getitem__)

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


class TermsConfig(Strict):
    """Terms of use shown before a page with a ``terms`` flag (e.g. the pipe map) and on /terms."""

    paragraphs: list[I18nText]
    full_url: str | None = None


class PageConfig(Strict):
    """One public map page (``<id>.html``); its layers say ``map: {pages: [<id>]}``."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    title: I18nText
    short_title: I18nText | None = None
    description: I18nText | None = None
    terms: bool = False  # ask for consent to ``publish.terms`` before showing the map
    start_zoom: int | None = None  # default: fit the city boundary (or the data)
    basemap: Literal["pale", "std", "none"] = "pale"


class PublishConfig(Strict):
    title: I18nText
    description: I18nText
    contact_name: str
    contact_email: str = ""
    contact_url: str
    contact_phone: str = ""
    city_url: str
    terms_version: str = "1"
    terms: TermsConfig | None = None
    keywords: list[str] = Field(default_factory=list)
    max_items: int = 1000
    default_items: int = 100
    #: the public URL behind a reverse proxy; None = links follow the URL the client used
    base_url: str | None = None
    #: proxies whose X-Forwarded-* headers are believed (addresses as seen by the server)
    trusted_proxies: list[str] = Field(default_factory=list)
    pages: list[PageConfig] = Field(default_factory=list)


class DepartmentGrant(Strict):
    """Confidential data one department may read: whole layers, or fields of a layer."""

    layers: list[str] = Field(default_factory=list)
    fields: dict[str, list[str]] = Field(default_factory=dict)


class Department(Strict):
    """A department of the city's staff (統合型GIS). Internal data is for every department;
    confidential data only by ``grants``."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: I18nText
    grants: DepartmentGrant = Field(default_factory=DepartmentGrant)


class SampleConfig(Strict):
    """The city's sample-data generator: a Python file of the project (not engine code)
    defining ``generate(project, out_dir, *, scale, seed) -> dict[str, int]``."""

    generator: str
    description: I18nText | None = None


class PostgisConfig(Strict):
    """Names used when ``store`` is a PostGIS URL (one prefix per city on a shared server).

    Schemas: ``<prefix>_run_<run>`` (one per merge run), ``<prefix>_master`` (views on the
    current run, for QGIS), ``<prefix>_meta`` (run history), ``<prefix>_pub_<release>`` (public
    tables of one release, the only schema ``reader_role`` may read).
    """

    schema_prefix: str = "gis"
    reader_role: str = "gis_public_reader"


class ProjectConfig(Strict):
    """``config/project.yml``: the city, its CRS and paths (a new city edits this + layers/)."""

    city: I18nText
    city_code: str
    target_crs: str  # the city's JGD2011 plane zone (e.g. EPSG:66xx), storage CRS
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
    departments: list[Department] = Field(default_factory=list)
    sample: SampleConfig | None = None
