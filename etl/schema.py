"""The unified schema, derived from the layer specs (single source of truth).

Why derived: the specs declare fields and normalizers; a normalizer such as ``wareki`` adds sibling
columns (``install_fy_qual``, ``install_fy_raw``). Publication, docs and the QA report all need the
same list of output columns with their visibility, so it is computed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.models import I18nText, LayerSpec

# Lineage and QA columns added to every master layer. Always internal: they name files and systems.
LINEAGE_COLUMNS: dict[str, str] = {
    "source_system": "str",
    "source_name": "str",
    "source_file": "str",
    "source_record": "str",
    "source_hash": "str",
    "spec_version": "str",
    "run_id": "str",
    "xy_transform": "str",
    "quality_flags": "str",
}
GEOMETRY_COLUMN = "geometry"
QUARANTINE_TABLE = "_quarantine"
CODES_TABLE = "_code_table"
LAYER_META_TABLE = "_layer_meta"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # str | int | float | bool | date
    visibility: str  # public | internal
    title: I18nText | None = None
    unit: str | None = None
    codelist: str | None = None
    queryable: bool = False
    field: str = ""  # the spec field it comes from ("" for lineage)


def output_columns(spec: LayerSpec, *, lineage: bool = True) -> list[Column]:
    """All columns of the master table for ``spec``, in order, with visibility."""
    from etl.normalize import NORMALIZERS

    cols: list[Column] = []
    for name, f in spec.fields.items():
        outputs: dict[str, str] = {"": f.type}
        for step in f.normalize:
            nd = NORMALIZERS.get(step.name)
            if nd is None:
                continue
            for suffix, typ in nd.outputs.items():
                outputs[suffix] = f.type if suffix == "" else typ
        for suffix, typ in outputs.items():
            cols.append(Column(
                name=name + suffix, type=typ, visibility=f.visibility,
                title=f.title if suffix == "" else None, unit=f.unit if suffix == "" else None,
                codelist=f.codelist if suffix == "" else None,
                queryable=f.queryable and suffix == "", field=name,
            ))
    if lineage:
        cols += [Column(name=n, type=t, visibility="internal") for n, t in LINEAGE_COLUMNS.items()]
    return cols


def public_columns(spec: LayerSpec) -> list[Column]:
    """The allow-list of columns that may reach the public store (never lineage)."""
    if spec.visibility != "public":
        return []
    return [c for c in output_columns(spec, lineage=False) if c.visibility == "public"]
