"""Shared fixtures: a tiny complete project per test (see tests/mini.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mini

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session")
def mini_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mini.build(tmp_path_factory.mktemp("mini-template"))


@pytest.fixture
def mini_project(mini_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the mini project that a test may break in one way."""
    return mini.copy(mini_template, tmp_path / "proj")


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

    from etl.sample import generate

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
