"""Load and validate ``config/project.yml``, ``layers/*.yml`` and ``layers/codelists/*.yml``.

Every problem is collected and reported at once, each naming the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import sys
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


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
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

    errors.extend(_cross_checks(layers_dir, specs, codelists))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return Project(root=root, config=cfg, specs=specs, codelists=codelists, spec_hashes=hashes)


def _cross_checks(layers_dir: Path, specs: dict[str, LayerSpec],
                  codelists: dict[str, CodeList]) -> list[ConfigError]:
    """Checks that need more than one file: code lists, layer references, CRSs.

    Reader and normalizer names are checked by ``etl`` (where those registries live) when it
    runs: config stands on the ground and imports nothing above it.
    """
    errs: list[ConfigError] = []
    for lid, spec in specs.items():
        f = _rel(layers_dir / f"{lid}.yml")
        for src in spec.sources:
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
