"""Typed, strictly validated models for the project config and the per-layer specs.

Why pydantic with ``extra="forbid"``: a typo in a YAML key must be an error that names the file,
the key and the fix, never a silently ignored setting. Everything that differs between sources
lives in these specs; the Python code in ``etl/`` is source-agnostic.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pyproj import CRS
from pyproj.exceptions import CRSError

from config.errors import ConfigError

#: Access levels, layer and field: ``public`` leaves the building (public store, API, pages);
#: ``internal`` is for every department's staff; ``confidential`` only for departments granted it
#: in ``departments:`` of the project (default deny; e.g. 固定資産税 owners, 地方税法22条).
Visibility = Literal["public", "internal", "confidential"]
VISIBILITY_RANK = {"public": 0, "internal": 1, "confidential": 2}
FieldType = Literal["str", "int", "float", "bool", "date"]
GeometryType = Literal["Point", "LineString", "Polygon", "MultiPolygon", "MultiLineString", "None"]
#: What happens to a record with a problem (one policy engine, etl/policy.py): ``quarantine`` it
#: (with its reason), store the value as ``null`` (flagged), keep it but ``warn`` (flagged), or
#: ``keep`` it (counted in the report only).
OnProblem = Literal["quarantine", "null", "warn", "keep"]
#: the field ``id_field: [a, b]`` creates
COMPOSITE_ID = "id"


class Strict(BaseModel):
    """Base: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class I18nText(Strict):
    """A name or text in Japanese and English; ``easy``: in やさしい日本語 (the page's third
    language; the Japanese is shown where it is missing)."""

    ja: str
    en: str
    easy: str | None = None


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
    #: a value that cannot be read as ``type`` (text in a number, 1e400, beyond int64): the
    #: record is quarantined, or the value stored as null (flagged); never wrapped or guessed.
    #: Only these two of the four actions: an unreadable value cannot be kept in a typed
    #: column, so ``keep`` has nothing to keep, and ``warn`` (keep the record, flag it) would
    #: have to null the value too, which is what ``null`` already does (the flag is
    #: ``bad_value:<field>``, the report row the same); the raw text stays in the quarantine
    #: row or, for ``null``, in the source file named by the feature's lineage
    on_bad_value: Literal["quarantine", "null"] = "quarantine"
    #: a DBF text value that fills its field width was probably cut by the export
    on_truncated: OnProblem = "warn"
    #: composite value: other target fields joined by ``sep`` (e.g. an id from kind + number)
    compose: list[str] | None = None
    sep: str = "-"
    #: generated id, stable across runs: ``<source>-<hash of the source and these fields>``
    generate: list[str] | None = None
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
        given = [k for k, v in (("from", self.from_), ("const", self.const),
                                ("compose", self.compose), ("generate", self.generate))
                 if v is not None]
        if not given:
            raise ValueError("a field needs 'from' (source column), 'const' (fixed value), "
                             "'compose' or 'generate' (from other fields)")
        if len(given) > 1 and not (given == ["from", "const"]):
            raise ValueError(f"a field takes only one of {' / '.join(given)}")
        if (self.compose is not None or self.generate is not None) and self.normalize:
            raise ValueError("'compose'/'generate' fields take no 'normalize' "
                             "(normalize the parts)")
        return self

    @property
    def derived_from(self) -> list[str]:
        """Target fields this field is computed from (``compose``/``generate``), else []."""
        return list(self.compose or self.generate or [])


class Lookup(Strict):
    """A code table shipped beside the raw data (e.g. 水道マッピング's 管種コード表 CSV)."""

    path: str
    key: str
    value: str
    encoding: str = "utf-8"


class DataDateField(Strict):
    """The data date is the latest date found in a column of the source (e.g. 更新日)."""

    field: str


class SourceSpec(Strict):
    """One input file feeding the layer.

    ``data_date``: the date the data describes (shown as "as of" on the public pages): a fixed
    date (``2024-03-31``), ``{field: 調査日}`` (the latest date in that column), ``dbf_header``
    (a Shapefile's DBF "last update" date) or ``mtime`` (the file's modification time, only when
    asked: a copy changes it). Without it the date is unknown, and the report says so.

    ``options``: for ``reader: ogr`` the GDAL driver's open options (``{HEADERS: "NO"}``; YAML
    true/false become YES/NO); for ``reader: csv`` pandas ``read_csv`` keywords (``skiprows:
    [0, 1, 2, 3, 4, 5, 7, 8]`` skips the metadata rows of a CKAN "LINK" CSV around its
    ``#property`` header). ``point_field``: ONE column holding both coordinates as text
    (``location="34.35,134.05"``), split at ``point_separator``; the numbers are read in the
    order written, so a "lat,lon" column needs ``axis_order: yx``. It excludes ``x_field`` /
    ``y_field``; a value that is not two numbers gives a record without geometry.
    """

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
    point_field: str | None = None
    point_separator: str = Field(default=",", min_length=1)
    #: raw column(s) naming a record in messages and lineage (``[a, b]`` for composite keys)
    id_field: str | list[str] | None = None
    rename: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, Any] = Field(default_factory=dict)
    lookups: dict[str, Lookup] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    system: I18nText | None = None
    data_date: dt.date | Literal["mtime", "dbf_header"] | DataDateField | None = None
    #: a source yielding no records fails when the previous run had records, unless allowed
    allow_empty: bool = False
    #: Z / M coordinates the master may drop (it stores X/Y): without this they are an error
    drop_dimensions: list[Literal["z", "m"]] = Field(default_factory=list)
    #: coordinate corrections (``corrections:`` of the project) for this source; None = the
    #: project's defaults, [] = none
    corrections: list[str] | None = None

    @model_validator(mode="after")
    def _one_point_source(self) -> SourceSpec:
        if self.point_field and (self.x_field or self.y_field):
            raise ValueError("point_field excludes x_field/y_field: name one column holding "
                             "both coordinates, or the two columns")
        if self.point_field and self.reader not in ("csv", "ogr"):
            raise ValueError(f"point_field needs reader csv or ogr, not {self.reader}")
        return self

    @property
    def id_fields(self) -> list[str]:
        f = self.id_field
        return [] if f is None else [f] if isinstance(f, str) else list(f)


class Join(Strict):
    """Attach geometry from another layer of the same run (e.g. tax CSV -> 地番 parcels)."""

    layer: str
    keys: list[str]  # not "on": YAML 1.1 reads a bare `on` key as boolean True
    take_geometry: bool = True
    on_missing: OnProblem = "quarantine"


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
#: Hazard kinds are an open set (a city may add its own); these are the common ones (the page
#: has names and shelter badges for them; another kind names itself with ``hazard.title``).
KNOWN_HAZARD_KINDS = ("flood", "inland_flood", "tsunami", "storm_surge", "landslide",
                      "earthquake", "large_fire", "volcano")
#: ``#rrggbb``: what Leaflet, the legend and the PDF all understand.
Color = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$")]
#: A page or hazard-kind id: lower case, digits, ``_`` (used in file names and HTML ids).
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
#: A page id: also its file name (``<id>.html``).
PageId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
#: ``{field}``, ``{field.label}`` (its code list label), ``{field:.1}`` (first character),
#: ``{field|lower}``: the placeholders of label and risk-card templates.
TEMPLATE_KEY = re.compile(r"\{(\w+)(\.label)?(?::\.(\d+))?(\|lower)?\}")


def template_keys(template: I18nText | None) -> set[str]:
    """The names a template refers to (both languages)."""
    if template is None:
        return set()
    return {m.group(1) for text in (template.ja, template.en)
            for m in TEMPLATE_KEY.finditer(text)}


class WidthBy(Strict):
    """Line width (px) by a numeric field: ``classes`` are ``[lower bound, width]`` pairs.

    On the pipe sheet a width field in metres (``unit: m``, e.g. 幅員) is drawn at its true
    width on the ground instead.
    """

    field: str
    classes: list[tuple[float, float]] = Field(min_length=1)

    @model_validator(mode="after")
    def _ascending(self) -> WidthBy:
        bounds = [b for b, _ in self.classes]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError("width_by.classes: lower bounds must increase")
        return self


class LabelSpec(Strict):
    """Text drawn on or beside the features (e.g. 地番 in parcels, 管径・管種 along pipes).

    ``template`` (ja/en) places the ``fields`` (see :data:`TEMPLATE_KEY`); without it the values
    are joined by a space. The pipe sheet prints the same labels.
    """

    fields: list[str] = Field(min_length=1)
    min_zoom: int = Field(default=17, ge=0, le=22)
    template: I18nText | None = None  # e.g. {ja: "φ{diameter_mm} {material}", en: ...}

    @model_validator(mode="after")
    def _known_keys(self) -> LabelSpec:
        extra = template_keys(self.template) - set(self.fields)
        if extra:
            raise ValueError(f"labels.template uses {sorted(extra)}: list them in labels.fields")
        return self


#: Keys a risk-card template may use besides the layer's fields.
CARD_KEYS = ("rank", "label", "range", "group", "name", "title")


class HazardRole(Strict):
    """A hazard layer: its kind (open set), the rank field and the code list colouring it.

    The page's risk card says, for a tapped spot, the worst rank of each hazard layer there (per
    value of ``group_field`` if given, e.g. per 現象 of sediment zones), with the rank's colour
    and label; ``card``/``card_name``/``card_none`` phrase it (defaults are generic).
    """

    kind: Slug
    title: I18nText | None = None  # the kind's name on the card; default: the catalogue's / layer's
    rank_field: str | None = None  # default: map.color_by
    rank_codelist: str | None = None  # default: the code list of rank_field (order = severity)
    group_field: str | None = None  # zones kept apart per value (its code list names them)
    min_field: str | None = None  # depth bounds (m) of the zone, shown as a range
    max_field: str | None = None
    name_field: str | None = None  # e.g. 河川名 of a per-river flood layer
    designated_field: str | None = None  # boolean; false = not yet designated (survey result)
    #: ranks drawn solid in their own colour (e.g. landslide 特別警戒区域): rank code -> colour,
    #: or rank code -> {group code -> colour}
    emphasis: dict[str, Color | dict[str, Color]] = Field(default_factory=dict)
    card: I18nText | None = None  # e.g. {ja: "浸水深ランク{rank}：{label}（{range}）", en: ...}
    card_name: I18nText | None = None  # e.g. {ja: "{name}が氾濫した場合", en: ...}
    card_none: I18nText | None = None  # e.g. {ja: 浸水想定区域の外です, en: ...}
    #: what to do when the spot is in a zone of this hazard (立退き避難 / 屋内安全確保 ...), shown
    #: on the risk card under the hazard; ``guidance_by_rank`` overrides it for some ranks (e.g.
    #: deep water: leave the building; shallow: an upper floor may do)
    guidance: I18nText | None = None
    guidance_by_rank: dict[str, I18nText] = Field(default_factory=dict)
    #: the area this hazard was assessed over: ``city`` (the whole city, the default) or
    #: ``zones`` (a study of part of the city: the convex hull of this layer's zones widened by
    #: ``coverage_margin_m``). Outside it the risk card says "no data here", never "outside the
    #: zones": a spot nobody assessed is not a safe spot.
    coverage: Literal["city", "zones"] = "city"
    coverage_margin_m: float = Field(default=200.0, ge=0, le=5000)

    def field_keys(self) -> set[str]:
        """Layer fields the card templates use (everything but :data:`CARD_KEYS`)."""
        keys = set().union(*(template_keys(t) for t in (self.card, self.card_name,
                                                         self.card_none)))
        return keys - set(CARD_KEYS)


class ShelterRole(Strict):
    """A shelter layer: which boolean field says the site is designated for which hazard kind."""

    name_field: str
    flags: dict[Slug, str] = Field(min_length=1)  # hazard kind -> field, e.g. {flood: hz_flood}
    #: shelters suggested where a point is in no mapped hazard zone (e.g. earthquake, fire)
    default_kinds: list[str] = Field(default_factory=list)
    address_field: str | None = None
    #: boolean fields naming what a site is (e.g. 指定緊急避難場所): their titles show when true
    type_fields: list[str] = Field(default_factory=list)
    nearest: int = Field(default=3, ge=1, le=10)  # shelters listed per hazard kind

    @model_validator(mode="after")
    def _defaults_flagged(self) -> ShelterRole:
        missing = [k for k in self.default_kinds if k not in self.flags]
        if missing:
            raise ValueError(f"default_kinds {missing} have no field in flags")
        return self


class ParcelRole(Strict):
    """A parcel layer: the fields holding 大字 and 地番 (parcel search, pipe sheet)."""

    oaza_field: str
    chiban_field: str
    oaza_code_field: str | None = None  # 大字コード: the search lists 大字 in its order


class PipeRole(Strict):
    """A utility network layer: which utility (water, sewer, gas, ...) and its key fields."""

    utility: str
    utility_title: I18nText | None = None
    diameter_field: str | None = None
    material_field: str | None = None
    year_field: str | None = None
    depth_field: str | None = None


class ServesRole(Strict):
    """A service connection (給水管, 量水器, 取付管, 公共ます ...) names the parcel it serves by
    大字 and 地番: the pipe sheet lists a parcel's connections from these fields."""

    oaza_field: str
    chiban_field: str


class MapSpec(Strict):
    """Where a public layer appears and how: page, role, style, labels, popup, legend, zooms.

    Colours of coded values come from the code list of ``color_by`` (code lists carry colours);
    ``color`` is the single colour otherwise. Lines are stroked in the colour; polygons filled
    (``fill_opacity``) and outlined in it; points are circles of ``radius`` px filled in it with
    a white outline. ``fill`` and ``outline`` override those (a point with ``fill`` set is
    outlined in the colour, e.g. a manhole).
    """

    pages: list[PageId] = Field(default_factory=list)  # [] = on no page
    role: MapRole = "context"
    color: Color = "#3388ff"
    color_by: str | None = None  # a field with a code list whose entries carry colours
    color_by_options: list[str] = Field(default_factory=list)  # other fields a user may choose
    weight: float = Field(default=2, ge=0, le=20)
    width_by: WidthBy | None = None
    fill: Color | None = None
    outline: Color | None = None
    fill_opacity: float = Field(default=0.5, ge=0, le=1)
    dash: str | None = Field(default=None, pattern=r"^\d+(\s+\d+)*$")  # e.g. "5 4"
    radius: float = Field(default=5, gt=0, le=30)
    arrows: bool = False  # lines: an arrow at the middle in the line's direction (sewer flow)
    label_field: str | None = None  # the feature's name in lists and popups
    labels: LabelSpec | None = None
    popup: list[str] = Field(default_factory=list)
    legend: bool = True
    show: bool = True  # drawn when the page opens (the layer control switches it)
    min_zoom: int = Field(default=0, ge=0, le=22)
    max_zoom: int = Field(default=22, ge=0, le=22)
    z_order: int = 0  # higher draws on top
    #: None: hazard, shelter and small context layers go into the page's data file, networks
    #: and large layers load by view from the API; True/False force one way (hazard and shelter
    #: layers are always in the data file: the risk card works without the API)
    embed: bool | None = None
    #: ``walk``: people walk along these lines; the walking routes to shelters run on every
    #: public line layer marked so (tuned by ``publish.routing`` of the project)
    network: Literal["walk"] | None = None
    #: the parcel each feature serves (service connections): listed on the parcel's pipe sheet
    serves: ServesRole | None = None
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
        if self.hazard and not (self.hazard.rank_field or self.color_by):
            raise ValueError("a hazard layer needs hazard.rank_field (or color_by)")
        if len(set(self.pages)) != len(self.pages):
            raise ValueError("pages: a page is named twice")
        return self

    @property
    def rank_field(self) -> str | None:
        """The hazard rank field (``hazard.rank_field``, else ``color_by``)."""
        return (self.hazard.rank_field or self.color_by) if self.hazard else None

    def fields_used(self) -> dict[str, str]:
        """Every field the page or sheet reads (must exist and be public) -> the key using it."""
        out: dict[str, str] = {}

        def use(key: str, *names: str | None) -> None:
            for n in names:
                if n:
                    out.setdefault(n, key)

        use("popup", *self.popup)
        use("color_by", self.color_by)
        use("label_field", self.label_field)
        use("color_by_options", *self.color_by_options)
        if self.width_by:
            use("width_by.field", self.width_by.field)
        if self.labels:
            use("labels.fields", *self.labels.fields)
        for role in ("hazard", "shelter", "parcel", "pipe"):
            block = getattr(self, role)
            if block is None:
                continue
            for k, v in block:
                if k.endswith("_field") and isinstance(v, str):
                    use(f"{role}.{k}", v)
        if self.serves:
            use("serves.oaza_field", self.serves.oaza_field)
            use("serves.chiban_field", self.serves.chiban_field)
        if self.shelter:
            use("shelter.flags", *self.shelter.flags.values())
            use("shelter.type_fields", *self.shelter.type_fields)
        if self.hazard:
            use("hazard.card", *sorted(self.hazard.field_keys()))
        return out


class QuarantineBudget(Strict):
    """How many records a layer may quarantine before the run fails for it.

    The layer fails when more than ``max(count, share × read)`` of its records are quarantined,
    and always when more than half are (a layer losing most of its records is an error, never
    only a row in a report), unless ``share`` is set to 0.5 or more on purpose.

    Why 5 % and 10 records by default: real ledgers carry a few scattered bad records (a
    missing id, a typo in a code), which quarantine is for; a few records are always allowed so
    that a small layer does not fail on one of them. Beyond 5 % the cause is rarely the records:
    it is a wrong CRS, encoding, datum grid, renamed column or swapped axes, which must be fixed
    in the spec or the export before a master is written.
    """

    share: float = Field(default=0.05, ge=0.0, le=1.0)
    count: int = Field(default=10, ge=0)

    def limit(self, read: int) -> float:
        lim = max(float(self.count), self.share * read)
        return lim if self.share >= 0.5 else min(lim, read / 2)


class PublishGeometry(Strict):
    """Publication rule for complex geometries (the master always keeps them exact).

    A feature with more than ``max_vertices`` vertices is simplified for the public store
    (topology-preserving Douglas-Peucker) at ``tolerance_m``; while it is still over the budget
    the tolerance doubles. Why: one 1M-vertex polygon makes a 25 MB API response, a
    denial-of-service lever, and no map needs sub-metre detail beyond a few thousand vertices.
    """

    max_vertices: int = Field(default=10000, ge=4, le=1_000_000)
    tolerance_m: float = Field(default=0.5, gt=0.0, le=100.0)


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


class OpenDataLayout(Strict):
    """The layer also published in a 自治体標準オープンデータセット layout (``opendata:`` of a
    layer spec), e.g. the shelters as 指定緊急避難場所一覧.

    ``standard`` names a layout the engine knows (``publish/build/opendata_standards.yml``);
    ``columns`` maps the standard's columns to public fields of the layer (or fixed values).
    """

    standard: str
    #: a boolean field: only rows where it is true are in the standard list (指定緊急避難場所)
    where: str | None = None
    #: standard column -> our field (``name``) or ``{field, format}`` / ``{const}``
    columns: dict[str, str | StdColumn] = Field(default_factory=dict)

    def column(self, name: str) -> StdColumn | None:
        v = self.columns.get(name)
        return StdColumn(field=v) if isinstance(v, str) else v

    def fields(self) -> dict[str, str]:
        """Layer fields the layout reads -> the key reading it."""
        out = {self.where: "opendata.where"} if self.where else {}
        for col in self.columns:
            src = self.column(col)
            if src is not None and src.field:
                out.setdefault(src.field, f"opendata.columns.{col}")
        return out


class LayerSpec(Strict):
    """A declarative spec for one target layer of the merged master (``layers/<id>.yml``).

    ``id_field`` names the field holding the feature id; ``id_field: [a, b]`` makes a composite
    id field ``id`` from fields ``a`` and ``b`` (joined by "-", required and unique).
    """

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
    max_quarantine: QuarantineBudget = Field(default_factory=QuarantineBudget)
    publish_geometry: PublishGeometry = Field(default_factory=PublishGeometry)
    map: MapSpec = Field(default_factory=MapSpec)
    #: also published in a standard open-data layout (自治体標準オープンデータセット)
    opendata: OpenDataLayout | None = None
    depends_on: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _composite_id(cls, data: Any) -> Any:
        """``id_field: [a, b]`` -> a field ``id`` composed of a and b (required, unique)."""
        if not isinstance(data, dict) or not isinstance(data.get("id_field"), list):
            return data
        parts = [str(p) for p in data["id_field"]]
        fields = dict(data.get("fields") or {})
        if COMPOSITE_ID in fields:
            raise ValueError(f"id_field: {parts} makes the field '{COMPOSITE_ID}', which is "
                             "already a field: name the composite field yourself with compose:")
        vis = [(fields.get(p) or {}).get("visibility", "internal") if isinstance(
            fields.get(p), dict) else "internal" for p in parts]
        fields[COMPOSITE_ID] = {"compose": parts, "required": True, "unique": True,
                                "visibility": max(vis, key=VISIBILITY_RANK.__getitem__)
                                if all(v in VISIBILITY_RANK for v in vis) else "internal"}
        return {**data, "id_field": COMPOSITE_ID, "fields": fields}

    @model_validator(mode="after")
    def _check(self) -> LayerSpec:
        if self.id_field not in self.fields:
            raise ValueError(f"id_field '{self.id_field}' is not one of fields")
        for name, f in self.fields.items():
            for part in f.derived_from:
                if part not in self.fields:
                    raise ValueError(f"field '{name}': '{part}' is not one of fields")
                if self.fields[part].derived_from:
                    raise ValueError(f"field '{name}': '{part}' is itself composed; "
                                     "compose from source fields")
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
    easy: str | None = None  # やさしい日本語 (e.g. a depth rank "ひざ まで"); else the Japanese
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


class GridRef(Strict):
    """One GSI grid of a transform and what a point outside it means (GSI's definitions).

    ``quarantine``: the grid must cover every point (a datum change such as TKY2JGD: a point it
    does not cover cannot be converted, the record is quarantined as OUTSIDE_DATUM_GRID).
    ``unchanged``: a correction grid (PatchJGD): outside it the coordinates stay as they are,
    and the lineage says so.
    """

    file: str
    outside: Literal["quarantine", "unchanged"] = "quarantine"


def _grid_refs(v: Any, default_outside: str) -> Any:
    if isinstance(v, list):
        return [{"file": g, "outside": default_outside} if isinstance(g, str) else g for g in v]
    return v


class GridTransform(Strict):
    """A datum change applied with GSI grids through PROJ ``hgridshift`` steps, per point.

    A grid given as a plain file name must cover every point (``outside: quarantine``); write
    ``{file: touhokutaiheiyouoki2011.tif, outside: unchanged}`` for a PatchJGD correction grid.
    """

    from_datum: str
    grids: list[GridRef]
    accuracy_m: float
    title: I18nText

    @field_validator("grids", mode="before")
    @classmethod
    def _plain_names(cls, v: Any) -> Any:
        return _grid_refs(v, "quarantine")


class Correction(Strict):
    """A coordinate correction inside the target datum (e.g. GSI's 2024 Noto PatchJGD grid).

    Applied after any datum change to the sources that ask for it (``corrections: [id]``) or,
    with ``default: true``, to every source that does not opt out; outside its grid a point is
    unchanged. ``epoch`` names the coordinates' epoch once corrected (recorded per layer).
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    grids: list[GridRef]
    accuracy_m: float
    title: I18nText
    epoch: I18nText
    default: bool = False

    @field_validator("grids", mode="before")
    @classmethod
    def _plain_names(cls, v: Any) -> Any:
        return _grid_refs(v, "unchanged")


class BoundaryConfig(Strict):
    path: str
    margin_m: float = 500.0


class TermsConfig(Strict):
    """Terms of use shown before a page with a ``terms`` flag (e.g. the pipe map) and on /terms."""

    paragraphs: list[I18nText] = Field(min_length=1)
    full_url: str | None = None


class PageConfig(Strict):
    """One public map page (``<id>.html``); its layers say ``map: {pages: [<id>]}``."""

    id: PageId
    title: I18nText
    short_title: I18nText | None = None
    description: I18nText | None = None
    terms: bool = False  # ask for consent to ``publish.terms`` before showing the map
    start_zoom: int | None = Field(default=None, ge=0, le=22)  # default: fit the city boundary
    max_zoom: int = Field(default=20, ge=10, le=22)  # basemap tiles stop at 18 and stretch
    basemap: Literal["pale", "std", "none"] = "pale"


class RoutingConfig(Strict):
    """Walking routes to shelters: how the graph is built at publish and how routes are told.

    The network is every public line layer whose spec says ``map.network: walk``; the shelters
    are the public layers with ``map.role: shelter``.
    """

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
    #: hiragana (丁目 as digits or in kana: ばんちょう1ちょうめ = ばんちょういっちょうめ): the
    #: 大字 list is sorted by it (2丁目 before 10丁目), and typing it in kana finds the 大字
    reading: str = Field(pattern=r"^[\u3041-\u309fー・0-9]+$")
    en: str | None = None  # romanised, e.g. Sanga
    variants: list[str] = Field(default_factory=list)  # 三ヶ, 三箇, old forms, former names


class SearchConfig(Strict):
    """The one search of every page (its index is built at publish from the public store)."""

    oaza: list[OazaEntry] = Field(default_factory=list)
    #: prefixes dropped from queries and addresses before matching (e.g. 県名+市名)
    address_prefixes: list[str] = Field(default_factory=list)
    #: layers whose features are places; default: shelter layers and point layers with
    #: ``map.label_field``
    place_layers: list[str] | None = None

    @model_validator(mode="after")
    def _unique(self) -> SearchConfig:
        names = [o.name for o in self.oaza]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"oaza: {twice} listed twice")
        return self


class OpenDataConfig(Strict):
    """Per-layer open-data downloads (every public layer gets GeoPackage, GeoJSON and CSV)."""

    #: shown in every download's README and metadata (e.g. 公共データ利用規約 compatibility)
    note: I18nText | None = None


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
    #: walking routes to shelters (on the line layers marked ``map.network: walk``)
    routing: RoutingConfig = Field(default_factory=lambda: RoutingConfig())
    #: the one search of every page: 大字 readings and spellings, address prefixes, places
    search: SearchConfig = Field(default_factory=lambda: SearchConfig())
    #: open-data downloads of every public layer (layouts per layer: ``opendata:`` of its spec)
    opendata: OpenDataConfig = Field(default_factory=lambda: OpenDataConfig())


class DepartmentGrant(Strict):
    """Confidential data one department may read (everything confidential is denied otherwise).

    ``layers``: whole confidential layers (every column, their lineage and their quarantine
    rows). ``fields``: confidential fields of a layer, ``{layer: [field, ...]}``; on a
    confidential layer they must include its ``id_field`` (a row must stay identifiable). The
    names are checked against the specs when the project loads (``config._department_checks``).
    """

    layers: list[str] = Field(default_factory=list)
    fields: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_repeats(self) -> DepartmentGrant:
        if len(set(self.layers)) != len(self.layers):
            raise ValueError("grants.layers: a layer is named twice")
        for lid, names in self.fields.items():
            if not names:
                raise ValueError(f"grants.fields.{lid}: list at least one field")
            if len(set(names)) != len(names):
                raise ValueError(f"grants.fields.{lid}: a field is named twice")
            if lid in self.layers:
                raise ValueError(f"grants.fields.{lid}: the whole layer is already in "
                                 "grants.layers")
        return self


class Department(Strict):
    """A department of the city's staff (統合型GIS). Internal data is for every department;
    confidential data only by ``grants``.

    ``id`` names its PostGIS group role and schema (``<schema_prefix>_dept_<id>``) and its
    package files, so it is short, lower case and ASCII.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=20)
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
    corrections: list[Correction] = Field(default_factory=list)
    #: the coordinate epoch of data in the target CRS without corrections (recorded per layer)
    epoch: I18nText = Field(default_factory=lambda: I18nText(ja="測地成果2011", en="JGD2011"))
    publish: PublishConfig
    #: ``gpkg`` (embedded default) or ``postgresql://user@host:port/db`` without a password;
    #: ``--store`` and the ``UOZU_GIS_STORE`` environment variable override it.
    store: str = "gpkg"
    postgis: PostgisConfig = Field(default_factory=PostgisConfig)
    departments: list[Department] = Field(default_factory=list)
    sample: SampleConfig | None = None

    @field_validator("target_crs")
    @classmethod
    def _target_crs_in_metres(cls, v: str) -> str:
        """Lengths in specs and config (``publish_geometry.tolerance_m``, ``boundary.margin_m``
        ...) are metres of the master CRS: it must be projected, with both axes in metres.

        Raises a bilingual :class:`config.errors.ConfigError` naming the file and the fix (not a
        pydantic error, whose text is English only).
        """
        def bad(ja: str, en: str) -> ConfigError:
            return ConfigError("target_crs_not_metric", file="config/project.yml", crs=v,
                               detail_ja=ja, detail_en=en)
        try:
            crs = CRS.from_user_input(v)
        except CRSError:
            raise bad("座標系として解釈できません", "cannot be parsed as a CRS") from None
        if not crs.is_projected:
            kind = ("経緯度 (度) の座標系です", "is a geographic CRS (degrees)") \
                if crs.is_geographic else ("投影座標系ではありません", "is not a projected CRS")
            raise bad(*kind)
        units = sorted({a.unit_name for a in crs.axis_info} - {"metre"})
        if units:
            raise bad(f"軸の単位が {', '.join(units)} です (メートルではありません)",
                      f"has axes in {', '.join(units)}, not metres")
        return v
