"""Load and validate ``config/project.yml``, ``layers/*.yml`` and ``layers/codelists/*.yml``.

Every problem is collected and reported at once, each naming the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pyproj import CRS
from pyproj.exceptions import CRSError

from config.errors import ConfigError, ConfigErrors
from config.models import CodeList, LayerSpec, ProjectConfig


@dataclass
class Project:
    """A loaded project: config, layer specs in dependency order, code lists, resolved paths."""

    root: Path
    config: ProjectConfig
    specs: dict[str, LayerSpec]
    codelists: dict[str, CodeList]
    spec_hashes: dict[str, str] = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    @property
    def raw_dir(self) -> Path:
        return self.path(self.config.raw_dir)

    @property
    def merged_dir(self) -> Path:
        return self.path(self.config.merged_dir)

    @property
    def public_dir(self) -> Path:
        return self.path(self.config.public_dir)

    @property
    def grids_dir(self) -> Path:
        return self.path(self.config.grids_dir)

    def sample_generator(self) -> Callable[..., dict[str, int]]:
        """The city's sample-data generator (``sample.generator`` of the project config).

        It is the city's own Python file, loaded by path: sample data is city data, not engine.
        """
        sample = self.config.sample
        if sample is None:
            raise ConfigError("sample_none", file="config/project.yml")
        path = self.path(sample.generator)
        if not path.is_file():
            raise ConfigError("sample_missing", file="config/project.yml", path=str(path))
        name = "city_sample_" + hashlib.sha1(str(path).encode()).hexdigest()[:10]
        mod = sys.modules.get(name)
        if mod is None:
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        gen = getattr(mod, "generate", None)
        if not callable(gen):
            raise ConfigError("sample_no_generate", path=str(path))
        return gen

    def order(self, only: list[str] | None = None) -> list[str]:
        """Layer ids in dependency order; with ``only``, those plus what they depend on."""
        wanted = set(self.specs) if not only else _closure(self.specs, only)
        done: list[str] = []
        visiting: set[str] = set()

        def visit(lid: str, chain: list[str]) -> None:
            if lid in done:
                return
            if lid in visiting:
                raise ConfigError("spec_cycle", layers=" -> ".join([*chain, lid]))
            visiting.add(lid)
            for dep in sorted(self.specs[lid].dependencies()):
                if dep != lid:
                    visit(dep, [*chain, lid])
            visiting.discard(lid)
            done.append(lid)

        for lid in sorted(wanted):
            visit(lid, [])
        return done


def _closure(specs: dict[str, LayerSpec], only: list[str]) -> set[str]:
    out: set[str] = set()
    stack = list(only)
    while stack:
        lid = stack.pop()
        if lid in out:
            continue
        if lid not in specs:
            raise ConfigError("unknown_layer_arg", layer=lid, known=", ".join(sorted(specs)))
        out.add(lid)
        stack.extend(specs[lid].dependencies())
    return out


#: Plain scalars YAML 1.1 reads as booleans (PyYAML reads all but y/n so; other tools all).
_YAML11_BOOL = re.compile(r"y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|"
                          r"on|On|ON|off|Off|OFF")


class _KeyProblem(yaml.YAMLError):
    """A mapping key that would silently change the meaning of a spec."""

    def __init__(self, key: str, kind: str, line: int, first: int = 0) -> None:
        super().__init__(key)
        self.key, self.kind, self.line, self.first = key, kind, line, first


class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader, refusing duplicate keys and unquoted YAML 1.1 boolean keys.

    Why: ``NO:`` (a code), ``on:`` or ``Y:`` become ``False``/``True`` keys, and a repeated key
    silently replaces the first (a code list entry loses its aliases); both must be errors.
    """


def _strict_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        line = key_node.start_mark.line + 1
        if (isinstance(key_node, yaml.ScalarNode) and not key_node.style
                and _YAML11_BOOL.fullmatch(key_node.value)):
            raise _KeyProblem(key_node.value, "bool", line)
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                raise _KeyProblem(str(key), "duplicate", line, seen[key])
            seen[key] = line
        except TypeError:  # an unhashable key: PyYAML reports it below
            pass
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)


def read_yaml_text(text: str) -> Any:
    """Parse YAML with :class:`StrictLoader` (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass


def _read_yaml(path: Path) -> Any:
    try:
        return read_yaml_text(path.read_text(encoding="utf-8"))
    except _KeyProblem as e:
        if e.kind == "bool":
            value = "true" if e.key.lower() in ("y", "yes", "true", "on") else "false"
            raise ConfigError("spec_bool_key", file=_rel(path), key=e.key, line=e.line,
                              value=value) from None
        raise ConfigError("spec_duplicate_key", file=_rel(path), key=e.key, line=e.line,
                          first=e.first) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError("spec_yaml", file=_rel(path), detail=str(e).replace("\n", " ")) from e


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Allowed keys at ``loc`` (to suggest the right spelling of an unknown key)."""
    cur: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if isinstance(cur, type) and issubclass(cur, BaseModel):
            f = cur.model_fields.get(part) or next(
                (v for v in cur.model_fields.values() if v.alias == part), None
            )
            if f is None:
                return []
            cur = f.annotation
        # unwrap list[X] / dict[str, X] / X | None
        for _ in range(3):
            args = getattr(cur, "__args__", None)
            if args:
                cur = next((a for a in reversed(args) if isinstance(a, type)
                            and issubclass(a, BaseModel)), args[-1])
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return [v.alias or k for k, v in cur.model_fields.items()]
    return []


def pydantic_errors(path: Path, model: type[BaseModel], err: ValidationError) -> list[ConfigError]:
    """Translate pydantic's errors into ConfigErrors that name the file, key and fix."""
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        kind = e["type"]
        if kind == "extra_forbidden":
            allowed = _fields_of(model, loc)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            d = ("未知のキー", "unknown key")
            f = ((f"'{close[0]}' の誤り?", f"did you mean '{close[0]}'?") if close else
                 ("削除する (使えるキー: " + ", ".join(allowed) + ")",
                  "remove it (allowed: " + ", ".join(allowed) + ")"))
        elif kind == "missing":
            d = ("必須キーがありません", "required key is missing")
            f = (f"'{loc[-1]}' を追加する", f"add '{loc[-1]}'")
        else:
            d = (e["msg"], e["msg"])
            f = ("値を直す", "correct the value")
        out.append(ConfigError("spec_invalid", file=_rel(path), key=key, detail_ja=d[0],
                               detail_en=d[1], fix_ja=f[0], fix_en=f[1]))
    return out


def load_model(path: Path, model: type[BaseModel]) -> Any:
    data = _read_yaml(path)
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as e:
        raise ConfigErrors(pydantic_errors(path, model, e)) from None


#: Environment variable naming the project folder (after ``--project``, before the cwd).
PROJECT_ENV = "UOZU_GIS_PROJECT"


def find_project_root(root: Path | str | None = None, *,
                      config_file: str = "config/project.yml") -> Path:
    """The project folder: ``root`` (``--project``), else ``$UOZU_GIS_PROJECT``, else the cwd.

    Never the package's own files: running in the wrong folder must be a clear error, not a
    silent switch to another city's project.
    """
    if root:
        where, how = Path(root), "--project"
    elif os.environ.get(PROJECT_ENV):
        where, how = Path(os.environ[PROJECT_ENV]), PROJECT_ENV
    else:
        where, how = Path.cwd(), "cwd"
    if not (where / config_file).is_file():
        raise ConfigError("project_missing", dir=str(where), file=config_file, how=how)
    return where.resolve()


def load_project(root: Path | str | None = None, *,
                 config_file: str = "config/project.yml") -> Project:
    """Load everything under the project folder (see :func:`find_project_root`)."""
    root = find_project_root(root, config_file=config_file)
    root = root.resolve()
    errors: list[ConfigError] = []
    try:
        cfg: ProjectConfig = load_model(root / config_file, ProjectConfig)
    except ConfigErrors as e:
        raise e
    layers_dir = root / cfg.layers_dir

    codelists: dict[str, CodeList] = {}
    for p in sorted((layers_dir / "codelists").glob("*.yml")):
        try:
            cl = load_model(p, CodeList)
            codelists[cl.id] = cl
        except ConfigErrors as e:
            errors.extend(e.errors)
        except ConfigError as e:
            errors.append(e)

    specs: dict[str, LayerSpec] = {}
    hashes: dict[str, str] = {}
    files = sorted(layers_dir.glob("*.yml"))
    if not files:
        raise ConfigError("no_specs", dir=_rel(layers_dir))
    for p in files:
        try:
            spec: LayerSpec = load_model(p, LayerSpec)
        except ConfigErrors as e:
            errors.extend(e.errors)
            continue
        except ConfigError as e:
            errors.append(e)
            continue
        if spec.id != p.stem:
            errors.append(ConfigError("spec_id_mismatch", file=_rel(p), id=spec.id, stem=p.stem))
            continue
        specs[spec.id] = spec
        hashes[spec.id] = hashlib.sha256(p.read_bytes()).hexdigest()[:12]

    errors.extend(_cross_checks(layers_dir, specs, codelists, cfg.corrections))
    errors.extend(_map_checks(cfg, layers_dir, specs, codelists))
    errors.extend(_department_checks(root / config_file, cfg, specs))
    errors.extend(_service_checks(cfg, layers_dir, specs, codelists))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return Project(root=root, config=cfg, specs=specs, codelists=codelists, spec_hashes=hashes)


def _alias_conflicts(file: str, cl: CodeList) -> list[ConfigError]:
    """A spelling (code, Japanese label or alias) claimed by two codes, exactly or once folded
    (NFKC, upper case) as the code mapping folds it: the mapping would pick one silently."""
    errs: list[ConfigError] = []
    exact: dict[str, str] = {}
    folded: dict[str, tuple[str, str]] = {}
    for code, e in cl.codes.items():
        for a in dict.fromkeys(str(x) for x in [code, e.ja, *e.aliases]):
            other = exact.get(a)
            if other is not None and other != code:
                errs.append(ConfigError("codelist_alias_conflict", file=file, alias=a,
                                        first=other, second=code))
                continue
            exact[a] = code
            key = unicodedata.normalize("NFKC", a).strip().upper()
            prev = folded.get(key)
            if prev is not None and prev[0] != code:
                errs.append(ConfigError("codelist_alias_conflict", file=file,
                                        alias=f"{a} (= {prev[1]})", first=prev[0], second=code))
                continue
            folded.setdefault(key, (code, a))
    return errs


def _cross_checks(layers_dir: Path, specs: dict[str, LayerSpec],
                  codelists: dict[str, CodeList],
                  corrections: Any = ()) -> list[ConfigError]:
    """Checks that need more than one file: code lists, layer references, CRSs.

    Reader and normalizer names are checked by ``etl`` (where those registries live) when it
    runs: config stands on the ground and imports nothing above it.
    """
    errs: list[ConfigError] = []
    for cid, cl in codelists.items():
        errs.extend(_alias_conflicts(_rel(layers_dir / "codelists" / f"{cid}.yml"), cl))
    correction_ids = [c.id for c in corrections]
    for lid, spec in specs.items():
        f = _rel(layers_dir / f"{lid}.yml")
        for src in spec.sources:
            for cid in src.corrections or []:
                if cid not in correction_ids:
                    errs.append(ConfigError("spec_unknown_correction", file=f, source=src.name,
                                            name=cid, known=", ".join(correction_ids) or "-"))
            if src.crs:
                try:
                    CRS.from_user_input(src.crs)
                except CRSError:
                    errs.append(ConfigError("spec_bad_crs", file=f, source=src.name, crs=src.crs))
        for name, fs in spec.fields.items():
            if fs.codelist and fs.codelist not in codelists:
                errs.append(ConfigError("spec_unknown_codelist", file=f, field=name,
                                        name=fs.codelist))
        refs = [("join.layer", spec.join.layer)] if spec.join else []
        refs += [(f"references.{i}.layer", r.layer) for i, r in enumerate(spec.references)]
        refs += [("datum_check.reference", spec.datum_check.reference)] if spec.datum_check else []
        refs += [("depends_on", d) for d in spec.depends_on]
        for key, other in refs:
            if other not in specs:
                errs.append(ConfigError("spec_unknown_layer", file=f, key=key, layer=other))
    return errs


def _department_checks(path: Path, cfg: ProjectConfig,
                       specs: dict[str, LayerSpec]) -> list[ConfigError]:
    """``departments:`` against the specs: unique ids; grants name existing, confidential data.

    Why only confidential: internal data is every department's already, so a grant of it means
    the spec or the grant is wrong (e.g. a tax field left ``internal``).
    """
    errs: list[ConfigError] = []
    f = _rel(path)
    seen: set[str] = set()
    for d in cfg.departments:
        if d.id in seen:
            errs.append(ConfigError("dept_duplicate", file=f, dept=d.id))
        seen.add(d.id)
        known = ", ".join(sorted(specs))
        for lid in d.grants.layers:
            if lid not in specs:
                errs.append(ConfigError("dept_unknown_layer", file=f, dept=d.id, key="layers",
                                        layer=lid, known=known))
            elif specs[lid].visibility != "confidential":
                errs.append(ConfigError("dept_layer_not_confidential", file=f, dept=d.id,
                                        layer=lid, level=specs[lid].visibility))
        for lid, names in d.grants.fields.items():
            spec = specs.get(lid)
            if spec is None:
                errs.append(ConfigError("dept_unknown_layer", file=f, dept=d.id, key="fields",
                                        layer=lid, known=known))
                continue
            for name in names:
                if name not in spec.fields:
                    errs.append(ConfigError("dept_unknown_field", file=f, dept=d.id, layer=lid,
                                            field=name, known=", ".join(spec.fields)))
                elif spec.field_visibility(name) != "confidential":
                    errs.append(ConfigError("dept_field_not_confidential", file=f, dept=d.id,
                                            layer=lid, field=name,
                                            level=spec.field_visibility(name)))
            if spec.visibility == "confidential" and spec.id_field not in names:
                errs.append(ConfigError("dept_grant_needs_id", file=f, dept=d.id, layer=lid,
                                        id_field=spec.id_field))
    return errs


def _service_checks(cfg: ProjectConfig, layers_dir: Path, specs: dict[str, LayerSpec],
                    codelists: dict[str, CodeList]) -> list[ConfigError]:
    """Walking network, search places, open-data layouts and hazard guidance against the specs.

    Why here: a routing block with no network, a network with no shelters or a layout reading
    an internal field must stop ``validate`` and ``publish`` before anything is built.
    (The layout's standard and its columns are engine data, checked when publishing.)
    """
    errs: list[ConfigError] = []
    public = {lid: s for lid, s in specs.items() if s.visibility == "public"}
    shelters = [lid for lid, s in public.items() if s.map.role == "shelter"]
    marked = False
    for lid, spec in specs.items():
        f = _rel(layers_dir / f"{lid}.yml")
        if spec.map.network is not None:
            marked = True
            if spec.visibility != "public" or "LineString" not in spec.geometry_type:
                errs.append(ConfigError("mapcfg_network_layer", file=f,
                                        geometry=spec.geometry_type,
                                        visibility=spec.visibility))
            elif not shelters:
                errs.append(ConfigError("mapcfg_network_no_shelter", file=f))
        hz = spec.map.hazard
        rank = spec.map.rank_field
        rank_cl = hz and (hz.rank_codelist or (spec.fields[rank].codelist
                                               if rank in spec.fields else None))
        if hz and rank_cl in codelists:
            for code in hz.guidance_by_rank:
                if code not in codelists[rank_cl].codes:
                    errs.append(ConfigError("mapcfg_unknown_code", file=f,
                                            key="hazard.guidance_by_rank", code=code,
                                            codelist=rank_cl,
                                            known=", ".join(codelists[rank_cl].codes)))
        od = spec.opendata
        if od is None:
            continue
        if spec.visibility != "public":
            errs.append(ConfigError("opendata_layer", file=f, visibility=spec.visibility))
            continue
        allowed = [n for n in spec.fields if spec.field_visibility(n) == "public"]
        for name, key in od.fields().items():
            if name not in allowed:
                errs.append(ConfigError("opendata_field", file=f, key=key, field=name,
                                        known=", ".join(allowed)))
    if "routing" in cfg.publish.model_fields_set and not marked:
        errs.append(ConfigError("mapcfg_routing_no_network"))
    places = cfg.publish.search.place_layers
    if places is not None:
        ok = sorted(lid for lid, s in public.items() if s.map.label_field)
        errs.extend(ConfigError("mapcfg_place_layer", layer=lid, known=", ".join(ok) or "-")
                    for lid in places if lid not in ok)
    return errs


def _field_base(spec: LayerSpec, name: str) -> str | None:
    """The spec field behind a column: itself, or the field a derived column comes from.

    Derived columns (``<field>_rank``, ``<field>_raw``, ``<field>_ja`` ...) are made by the ETL's
    normalizers and the code lists; their exact names are checked against the public store when
    the pages are built. Here: the longest field that ``name`` extends with ``_``.
    """
    if name in spec.fields:
        return name
    bases = [f for f in spec.fields if name.startswith(f + "_")]
    return max(bases, key=len) if bases else None


def _map_checks(cfg: ProjectConfig, layers_dir: Path, specs: dict[str, LayerSpec],
                codelists: dict[str, CodeList]) -> list[ConfigError]:
    """Map declarations: pages exist, every public layer is on one, fields exist and are public.

    Only when the project declares pages (``publish.pages``): a project without any declares no
    map and publishes the API alone. A public layer with no ``map:`` block is an error that says
    which page to add (or ``pages: []`` to keep it off the maps): silence would hide data.
    """
    pages = cfg.publish.pages
    errs: list[ConfigError] = []
    ids = [p.id for p in pages]
    for pid in sorted({i for i in ids if ids.count(i) > 1}):
        errs.append(ConfigError("mapcfg_page_twice", page=pid))
    for p in pages:
        if p.terms and cfg.publish.terms is None:
            errs.append(ConfigError("mapcfg_terms_missing", page=p.id))
    on_page: dict[str, list[str]] = {pid: [] for pid in ids}
    parcels: dict[str, list[str]] = {pid: [] for pid in ids}
    for lid, spec in specs.items():
        f = _rel(layers_dir / f"{lid}.yml")
        m = spec.map
        if not pages:
            if m.pages:
                errs.append(ConfigError("mapcfg_unknown_page", file=f, page=m.pages[0],
                                        known="-"))
            continue
        if spec.visibility != "public":
            if m.pages:
                errs.append(ConfigError("mapcfg_not_public", file=f,
                                        visibility=spec.visibility))
            continue
        if not m.pages and "pages" not in m.model_fields_set:
            errs.append(ConfigError("mapcfg_no_page", file=f, first=ids[0]))
            continue
        for pid in m.pages:
            if pid not in on_page:
                errs.append(ConfigError("mapcfg_unknown_page", file=f, page=pid,
                                        known=", ".join(ids)))
            else:
                on_page[pid].append(lid)
                if m.role == "parcel":
                    parcels[pid].append(lid)
        errs.extend(_map_field_checks(f, spec, codelists))
    for pid, lids in on_page.items():
        if not lids:
            errs.append(ConfigError("mapcfg_page_empty", page=pid))
        if len(parcels[pid]) > 1:
            errs.append(ConfigError("mapcfg_two_parcels", page=pid,
                                    layers=", ".join(parcels[pid])))
    return errs


def _map_field_checks(file: str, spec: LayerSpec,
                      codelists: dict[str, CodeList]) -> list[ConfigError]:
    """Fields a ``map:`` block uses exist and are public; colours and ranks have code lists."""
    errs: list[ConfigError] = []
    m = spec.map
    for name, key in m.fields_used().items():
        base = _field_base(spec, name)
        if base is None:
            errs.append(ConfigError("mapcfg_field_unknown", file=file, key=key, field=name,
                                    known=", ".join(spec.fields)))
        elif spec.field_visibility(base) != "public":
            errs.append(ConfigError("mapcfg_field_internal", file=file, key=key, field=name,
                                    visibility=spec.field_visibility(base)))
    for key, name in [("color_by", m.color_by),
                      *(("color_by_options", o) for o in m.color_by_options)]:
        fs = spec.fields.get(name) if name else None
        if fs is not None and not fs.codelist:
            errs.append(ConfigError("mapcfg_no_codelist", file=file, key=key, field=name))
    hz = m.hazard
    if hz is None:
        return errs
    rank = m.rank_field
    rank_cl = hz.rank_codelist or (spec.fields[rank].codelist if rank in spec.fields else None)
    if rank_cl is None:
        errs.append(ConfigError("mapcfg_no_codelist", file=file, key="hazard.rank_field",
                                field=rank))
    elif rank_cl not in codelists:
        errs.append(ConfigError("mapcfg_unknown_codelist", file=file,
                                key="hazard.rank_codelist", name=rank_cl))
    group_cl = None
    if hz.group_field:
        fs = spec.fields.get(hz.group_field)
        group_cl = fs.codelist if fs else None
        if fs is not None and group_cl is None:
            errs.append(ConfigError("mapcfg_no_codelist", file=file, key="hazard.group_field",
                                    field=hz.group_field))
    for code, colour in hz.emphasis.items():
        for key, cl, c in [("hazard.emphasis", rank_cl, code),
                           *((f"hazard.emphasis.{code}", group_cl, g)
                             for g in (colour if isinstance(colour, dict) else {}))]:
            if cl in codelists and c not in codelists[cl].codes:
                errs.append(ConfigError("mapcfg_unknown_code", file=file, key=key, code=c,
                                        codelist=cl, known=", ".join(codelists[cl].codes)))
    return errs


def write_derived_project(root: Path, *, base: Path, **publish: Any) -> Path:
    """Write ``root/config/project.yml``: ``base``'s city config with absolute shared paths.

    For throwaway projects (tests, benchmarks) that keep their own raw/merged/public data but
    use the city's specs, grids and boundary; ``publish`` overrides keys of the publish block
    (e.g. ``base_url``, ``terms_version``).
    """
    data = yaml.safe_load((base / "config/project.yml").read_text(encoding="utf-8"))
    for key in ("layers_dir", "grids_dir"):
        data[key] = str((base / data.get(key, key.removesuffix("_dir"))).resolve())
    if data.get("boundary"):
        data["boundary"]["path"] = str((base / data["boundary"]["path"]).resolve())
    data["publish"].update(publish)
    out = root / "config" / "project.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out
