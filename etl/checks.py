"""Checks of a loaded project against etl's own registries (readers, normalizers, stores).

Why here and not in ``config``: the registries live in ``etl``, and config stands on the ground
(it imports nothing above it). Every etl entry point (merge, validate, CLI) runs these checks.
"""

from __future__ import annotations

from config import Project
from config.errors import ConfigError, ConfigErrors
from etl.normalize import NORMALIZERS
from etl.readers import READERS
from etl.stores.url import check_config_store


def check_project(project: Project) -> None:
    """Raise every unknown reader or normalizer name at once, and a password in the config."""
    check_config_store(project.config, "config/project.yml")
    errs: list[ConfigError] = []
    layers_dir = project.path(project.config.layers_dir)
    for lid, spec in project.specs.items():
        f = str((layers_dir / f"{lid}.yml").relative_to(project.root)
                if (layers_dir / f"{lid}.yml").is_relative_to(project.root)
                else layers_dir / f"{lid}.yml")
        for src in spec.sources:
            if src.reader not in READERS:
                errs.append(ConfigError("spec_unknown_reader", file=f, source=src.name,
                                        name=src.reader, known=", ".join(sorted(READERS))))
        for name, fs in spec.fields.items():
            for n in fs.normalize:
                if n.name not in NORMALIZERS:
                    errs.append(ConfigError("spec_unknown_normalizer", file=f, field=name,
                                            name=n.name, known=", ".join(sorted(NORMALIZERS))))
    if errs:
        raise errs[0] if len(errs) == 1 else ConfigErrors(errs)
