"""What a department may read: the one access policy every staff path applies.

Levels (``config.models.Visibility``): ``public`` and ``internal`` data are every department's;
``confidential`` data only a department granted it in ``departments:`` (default deny). A
column's level is the stricter of its field and its layer; lineage columns are ``internal``,
or ``confidential`` on a confidential layer (they name the rows of a confidential source).

Quarantine rows carry a record's raw attributes (every source column, the confidential ones
too), so a department reads a layer's ``_quarantine`` rows only if it may read *every* column of
that layer. ``_layer_meta`` rows follow the layers; ``_code_table`` (code lists) is internal.

Everything that enforces access calls :func:`department_access`: the access matrix, the PostGIS
views and grants, the GeoPackage package and its checker, the QGIS project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from config.errors import ConfigError
from config.models import VISIBILITY_RANK, Department, LayerSpec, Visibility
from etl.schema import (
    CODES_TABLE,
    LAYER_META_TABLE,
    LINEAGE_COLUMNS,
    QUARANTINE_TABLE,
    Column,
    output_columns,
)

if TYPE_CHECKING:
    from config import Project

#: Bookkeeping tables a department may read, each filtered by :meth:`DepartmentAccess.rows`.
BOOKKEEPING = (QUARANTINE_TABLE, CODES_TABLE, LAYER_META_TABLE)


def stricter(a: Visibility, b: Visibility) -> Visibility:
    return max(a, b, key=VISIBILITY_RANK.__getitem__)


@dataclass(frozen=True)
class ColumnLevel:
    """One column of a master layer with its effective access level."""

    column: Column
    level: Visibility

    @property
    def name(self) -> str:
        return self.column.name

    @property
    def lineage(self) -> bool:
        return self.column.name in LINEAGE_COLUMNS and not self.column.field


def column_levels(spec: LayerSpec) -> list[ColumnLevel]:
    """Every column of the master table of ``spec`` (lineage included), in master order."""
    out = []
    for c in output_columns(spec, lineage=True):
        # lineage: internal, or confidential with its confidential layer
        level = spec.field_visibility(c.field) if c.field else stricter("internal",
                                                                        spec.visibility)
        out.append(ColumnLevel(c, level))
    return out


def may_read(dept: Department, spec: LayerSpec, col: ColumnLevel) -> bool:
    """The rule itself: non-confidential to all; confidential only by the department's grant."""
    if col.level != "confidential":
        return True
    if spec.id in dept.grants.layers:
        return True
    return bool(col.column.field) and col.column.field in dept.grants.fields.get(spec.id, [])


@dataclass(frozen=True)
class LayerAccess:
    """What one department may read of one layer it may read at all (geometry included)."""

    spec: LayerSpec
    columns: tuple[str, ...]  # readable columns, master order (no geometry)
    denied: tuple[str, ...]  # the layer's other columns
    quarantine: bool  # its _quarantine rows (raw attributes): only with every column

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def confidential(self) -> tuple[str, ...]:
        """Readable confidential columns (for the print marking and the matrix)."""
        levels = {c.name: c.level for c in column_levels(self.spec)}
        return tuple(c for c in self.columns if levels[c] == "confidential")


@dataclass(frozen=True)
class DepartmentAccess:
    """The department's allow-list: readable layers (project order), bookkeeping rows."""

    department: Department
    layers: dict[str, LayerAccess]
    denied_layers: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.department.id

    @property
    def quarantine_layers(self) -> tuple[str, ...]:
        return tuple(lid for lid, la in self.layers.items() if la.quarantine)

    def rows(self, table: str) -> tuple[str, ...] | None:
        """Layer ids whose rows of a bookkeeping table the department reads (None = all)."""
        if table == QUARANTINE_TABLE:
            return self.quarantine_layers
        if table == LAYER_META_TABLE:
            return tuple(self.layers)
        if table == CODES_TABLE:
            return None
        raise KeyError(table)

    @property
    def has_confidential(self) -> bool:
        return any(la.confidential for la in self.layers.values())


def find_department(project: Project, dept_id: str) -> Department:
    depts = project.config.departments
    if not depts:
        raise ConfigError("staff_no_departments", file="config/project.yml")
    for d in depts:
        if d.id == dept_id:
            return d
    raise ConfigError("staff_unknown_department", dept=dept_id,
                      known=", ".join(d.id for d in depts))


def department_access(project: Project, dept_id: str) -> DepartmentAccess:
    """The one policy: what department ``dept_id`` may read of the project's master."""
    dept = find_department(project, dept_id)
    layers: dict[str, LayerAccess] = {}
    denied: list[str] = []
    for lid in project.order():
        spec = project.specs[lid]
        cols = column_levels(spec)
        ok = [c.name for c in cols if may_read(dept, spec, c)]
        no = [c.name for c in cols if c.name not in set(ok)]
        # a confidential layer is readable only with some granted column; otherwise it does not
        # exist for the department (not even its geometry)
        if spec.visibility == "confidential" and not ok:
            denied.append(lid)
            continue
        layers[lid] = LayerAccess(spec, tuple(ok), tuple(no), quarantine=not no)
    return DepartmentAccess(dept, layers, tuple(denied))


def all_access(project: Project) -> list[DepartmentAccess]:
    if not project.config.departments:
        raise ConfigError("staff_no_departments", file="config/project.yml")
    return [department_access(project, d.id) for d in project.config.departments]


def access_matrix(project: Project) -> dict[str, Any]:
    """Department × layer/column, for ``uozu-gis access`` (every column, every department)."""
    access = all_access(project)
    layers = []
    for lid in project.order():
        spec = project.specs[lid]
        cols = []
        for c in column_levels(spec):
            cols.append({
                "name": c.name, "field": c.column.field or None, "lineage": c.lineage,
                "level": c.level,
                "title": c.column.title.model_dump() if c.column.title else None,
                "read": {a.id: (lid in a.layers and c.name in a.layers[lid].columns)
                         for a in access},
            })
        state = {}
        for a in access:
            la = a.layers.get(lid)
            state[a.id] = "none" if la is None else ("all" if not la.denied else "partial")
        layers.append({
            "layer": lid, "title": spec.title.model_dump(), "level": spec.visibility,
            "theme": spec.theme.model_dump() if spec.theme else None,
            "read": state,
            "quarantine": {a.id: lid in a.quarantine_layers for a in access},
            "columns": cols,
        })
    return {
        "departments": [{"id": a.id, "name": a.department.name.model_dump(),
                         "grants": a.department.grants.model_dump()} for a in access],
        "layers": layers,
    }
