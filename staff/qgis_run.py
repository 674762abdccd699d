"""Run ``qgis_build.py`` (PyQGIS) in a child process and turn its outcome into our errors.

Why a child: see ``staff/qgis_build.py`` (QGIS's GDAL/PROJ and pyogrio's cannot share a
process). The child gets a private QGIS profile folder (never the user's own QGIS settings),
the offscreen Qt platform, and reports as JSON in a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from config.errors import EtlError

SCRIPT = Path(__file__).with_name("qgis_build.py")
TIMEOUT_S = 900


def run_qgis(args: list[str], *, env: dict[str, str] | None = None,
             python: str | None = None) -> dict[str, Any]:
    """``qgis_build.py <args> REPORT`` -> the report; errors are bilingual ``EtlError``."""
    with tempfile.TemporaryDirectory(prefix="gis-qgis-") as td:
        report = Path(td) / "report.json"
        if args[0] == "probe":  # probe PROJECT REPORT [options]
            cmd = [args[0], args[1], str(report), *args[2:]]
        else:  # build PLAN OUT REPORT
            cmd = [*args, str(report)]
        runtime = Path(td) / "runtime"
        runtime.mkdir(mode=0o700)
        child_env = {**os.environ, **(env or {}), "QT_QPA_PLATFORM": "offscreen",
                     "QGIS_CUSTOM_CONFIG_PATH": str(Path(td) / "profile"),
                     "XDG_RUNTIME_DIR": str(runtime)}
        try:
            proc = subprocess.run([python or sys.executable, str(SCRIPT), *cmd],
                                  env=child_env, capture_output=True, text=True,
                                  timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as e:
            raise EtlError("staff_qgis_failed", detail=f"timeout after {TIMEOUT_S} s") from e
        rep = json.loads(report.read_text(encoding="utf-8")) if report.exists() else None
    if proc.returncode == 3 and rep:
        raise EtlError("staff_qgis_missing", detail=rep["error"])
    if proc.returncode != 0 or rep is None:
        detail = (rep or {}).get("error") or \
            f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}"
        raise EtlError("staff_qgis_failed", detail=detail)
    return rep


def build_project(plan: dict[str, Any], out: Path, *,
                  env: dict[str, str] | None = None) -> dict[str, Any]:
    """Write ``out`` (.qgz) from ``plan``; the report is QGIS's own view of the re-read file."""
    with tempfile.TemporaryDirectory(prefix="gis-plan-") as td:
        plan_file = Path(td) / "plan.json"
        plan_file.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
        return run_qgis(["build", str(plan_file), str(out)], env=env)


def probe_project(path: Path, *, render: Path | None = None, pdf: Path | None = None,
                  size: str = "800x600", dpi: float | None = None,
                  env: dict[str, str] | None = None) -> dict[str, Any]:
    """Open a project in headless QGIS: report, optionally render themes and export layouts."""
    args = ["probe", str(path)]
    if render is not None:
        args += ["--render", str(render), "--size", size]
    if pdf is not None:
        args += ["--pdf", str(pdf)]
    if dpi is not None:
        args += ["--dpi", str(dpi)]
    return run_qgis(args, env=env)
