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
