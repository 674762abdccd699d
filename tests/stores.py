"""The stores every ETL, publication, leak-crawl and API test runs against, and how to pick one."""

from __future__ import annotations

from pathlib import Path

from config import Project

#: ``gpkg`` = embedded default; ``postgis`` = a fresh database on conftest's throwaway cluster.
STORES = ("gpkg", "postgis")


def with_store(project: Project, url: str) -> Project:
    """The same project with ``store:`` set to ``url`` (as if written in project.yml)."""
    cfg = project.config.model_copy(update={"store": url})
    return Project(project.root, cfg, project.specs, project.codelists, project.spec_hashes)


def set_store_in_file(root: Path, url: str) -> None:
    """Write ``store: url`` into ``root/config/project.yml`` (what a city would do)."""
    p = root / "config" / "project.yml"
    lines = [ln for ln in p.read_text(encoding="utf-8").splitlines()
             if not ln.startswith("store:")]
    p.write_text("\n".join([*lines, f"store: {url}", ""]), encoding="utf-8")
