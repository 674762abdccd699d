"""Shared fixtures: a tiny complete project per test (see tests/mini.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the repository root: the example cities' sample generators (samples/, examples/*/samples/)
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import mini
from headless import launched

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session")
def mini_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mini.build(tmp_path_factory.mktemp("mini-template"))


@pytest.fixture
def mini_project(mini_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the mini project that a test may break in one way."""
    return mini.copy(mini_template, tmp_path / "proj")


# ---------------------------------------------------------------- stores
from stores import STORES  # noqa: E402


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory):
    """A throwaway PostgreSQL 15 + PostGIS 3 cluster on 127.0.0.1 for the whole session.

    Not skipped when PostGIS is missing: ``scripts/setup.sh`` installs it, so its absence is a
    failure of the set-up, not a reason to test less.
    """
    from pgserver import pg_server

    with pg_server(tmp_path_factory.mktemp("pg")) as srv:
        yield srv


@pytest.fixture(scope="session")
def new_pg_db(pg):
    """``new_pg_db() -> url``: a fresh PostGIS database per call (a template copy, ~0.1 s)."""
    import itertools

    counter = itertools.count()
    return lambda: pg.create_database(f"t{next(counter)}")


def store_for(request: pytest.FixtureRequest, kind: str) -> str:
    """The store URL for ``kind``: ``gpkg``, or a fresh PostGIS database."""
    return "gpkg" if kind == "gpkg" else request.getfixturevalue("new_pg_db")()


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    return store_for(request, request.param)


@pytest.fixture
def mini_store(mini_project: Path, store_url: str) -> Path:
    """The mini project with ``store:`` set to each store in turn (in its project.yml)."""
    from stores import set_store_in_file

    set_store_in_file(mini_project, store_url)
    return mini_project


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_report_header(config: pytest.Config) -> list[str]:
    import pyogrio
    import pyproj
    return [f"GDAL (pyogrio) {pyogrio.__gdal_version_string__}, PROJ {pyproj.proj_version_str}"]


def make_uozu_project(root: Path, *, scale: float) -> Path:
    """The real Uozu config and specs over freshly generated sample exports, in ``root``."""
    import shutil

    from samples.uozu import generate

    repo = Path(__file__).resolve().parent.parent
    shutil.copytree(repo / "config", root / "config", ignore=shutil.ignore_patterns("*.py",
                                                                                   "__pycache__"))
    shutil.copytree(repo / "layers", root / "layers")
    (root / "data").mkdir(parents=True, exist_ok=True)
    for d in ("grids", "reference"):
        (root / "data" / d).symlink_to(repo / "data" / d)
    generate(root / "data" / "raw", scale=scale)
    return root


UOZU_SCALE = 0.2


@pytest.fixture(scope="session")
def uozu_merged(tmp_path_factory: pytest.TempPathFactory):
    """Sample exports at UOZU_SCALE merged once with the real specs: (root, RunResult)."""
    from config import load_project
    from etl.pipeline import run_merge

    root = make_uozu_project(tmp_path_factory.mktemp("uozu"), scale=UOZU_SCALE)
    return root, run_merge(load_project(root))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, once per test module (tests/headless.py)."""
    with launched() as b:
        yield b
