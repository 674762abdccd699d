"""The CLI: help with examples, exit codes, --json, stdout vs stderr."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import cli


@pytest.mark.parametrize("name", sorted(cli.cli.commands))
def test_every_command_has_help_with_example(name: str) -> None:
    cmd = cli.cli.commands[name]
    assert cmd.help and "Example:" in cmd.help, name
    assert " / " in cmd.help.splitlines()[0]  # ja / en


def test_usage_error_exits_2() -> None:
    res = CliRunner().invoke(cli.cli, ["merge", "--no-such-option"])
    assert res.exit_code == 2


def test_unknown_layer_is_a_data_error(mini_project: Path) -> None:
    res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "merge", "nope"])
    assert res.exit_code == 1
    assert res.output.strip().startswith("Error: レイヤ 'nope' はありません。")
    assert "no layer 'nope'. Known: parcel, parcel_tax, road_segment" in res.output


def test_merge_json_layers_runs_rollback(mini_project: Path) -> None:
    r = CliRunner()
    base = ["--project", str(mini_project), "-q"]
    res = r.invoke(cli.cli, [*base, "--json", "merge"])
    assert res.exit_code == 0, res.output
    m1 = json.loads(res.stdout)
    assert m1["totals"]["quarantined"] == 1
    res = r.invoke(cli.cli, [*base, "merge"])
    assert res.exit_code == 0 and "merge done" in res.stdout
    res = r.invoke(cli.cli, [*base, "--json", "layers"])
    rows = {x["layer"]: x for x in json.loads(res.stdout)}
    assert rows["parcel_tax"]["visibility"] == "internal"
    assert rows["sewer_pipe"]["features"] == 5 and rows["sewer_pipe"]["crs"] == "EPSG:6675"
    res = r.invoke(cli.cli, [*base, "--json", "runs"])
    runs = json.loads(res.stdout)
    assert len(runs) == 2 and runs[0]["current"]
    res = r.invoke(cli.cli, [*base, "rollback"])
    assert res.exit_code == 0 and m1["run_id"] in res.stdout
    res = r.invoke(cli.cli, [*base, "rollback", "nope"])
    assert res.exit_code == 1 and "no stored data for run 'nope'" in res.output


def test_validate_writes_nothing(mini_project: Path) -> None:
    res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "-q", "validate"])
    assert res.exit_code == 0, res.output
    assert "validation OK: 5 layers" in res.stdout
    assert not (mini_project / "data/merged").exists()


def test_progress_goes_to_stderr(mini_project: Path) -> None:
    res = CliRunner().invoke(cli.cli, ["--project", str(mini_project), "--json", "merge"])
    assert res.exit_code == 0
    json.loads(res.stdout)  # stdout is pure JSON
    assert "sewer_pipe" in res.stderr


# ---------------------------------------------------------------- the project and the city

def test_missing_project_is_exit_1_with_the_message(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``--project``, then ``UOZU_GIS_PROJECT``, then the current folder; never a fallback."""
    from config.messages import text

    monkeypatch.delenv("UOZU_GIS_PROJECT", raising=False)
    missing = tmp_path / "nowhere"
    res = CliRunner().invoke(cli.cli, ["--project", str(missing), "layers"])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: " + text(
        "project_missing", dir=str(missing), file="config/project.yml", how="--project")
    monkeypatch.setenv("UOZU_GIS_PROJECT", str(missing))
    res = CliRunner().invoke(cli.cli, ["layers"])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: " + text(
        "project_missing", dir=str(missing), file="config/project.yml", how="UOZU_GIS_PROJECT")
    monkeypatch.delenv("UOZU_GIS_PROJECT")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli.cli, ["publish"])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: " + text(
        "project_missing", dir=str(tmp_path), file="config/project.yml", how="cwd")


def test_project_from_the_environment(mini_project: Path, monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    monkeypatch.setenv("UOZU_GIS_PROJECT", str(mini_project))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli.cli, ["-q", "--json", "layers"])
    assert res.exit_code == 0, res.output
    assert {r["layer"] for r in json.loads(res.stdout)} >= {"parcel_tax", "sewer_pipe"}


def test_server_module_finds_the_project_like_the_cli(tmp_path: Path) -> None:
    """``python -m publish.server.app``: the same order and the same message, exit 1."""
    import os
    import subprocess
    import sys

    from config.messages import text

    repo = Path(cli.__file__).resolve().parent
    env = {k: v for k, v in os.environ.items() if k != "UOZU_GIS_PROJECT"}
    for args, extra, how, where in (
            (["--project", str(tmp_path / "a")], {}, "--project", tmp_path / "a"),
            ([], {"UOZU_GIS_PROJECT": str(tmp_path / "b")}, "UOZU_GIS_PROJECT", tmp_path / "b"),
            ([], {}, "cwd", tmp_path)):
        out = subprocess.run([sys.executable, "-m", "publish.server.app", *args, "--port", "1"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             env={**env, **extra, "PYTHONPATH": str(repo)})
        assert out.returncode == 1, out.stderr[-2000:]
        assert out.stderr.strip() == "Error: " + text(
            "project_missing", dir=str(where), file="config/project.yml", how=how)


CITY_LITERALS = re.compile(r"魚津|Uozu|162043|EPSG:6675|/EPSG/0/6675|第VII系|三ケ")


def test_help_names_no_city() -> None:
    texts = [cli.cli.help or ""]
    for cmd in cli.cli.commands.values():
        texts.append(cmd.help or "")
        texts += [p.help or "" for p in cmd.params if isinstance(p, click.Option)]
    texts += [p.help or "" for p in cli.cli.params if isinstance(p, click.Option)]
    assert not [t for t in texts if CITY_LITERALS.search(t)]


def test_engine_files_hold_no_city_literal() -> None:
    """The build, the server, the CLI and their templates: a city is configuration."""
    repo = Path(cli.__file__).resolve().parent
    files = [repo / "cli.py", repo / "publish/model.py", repo / "publish/errors.py",
             *[repo / "publish/build" / f for f in ("__init__.py", "release.py",
                                                     "public_store.py", "apiconfig.py",
                                                     "pgpublic.py")],
             *sorted((repo / "publish/server").glob("*.py")),
             *[repo / "publish/templates" / f for f in ("landing.html", "terms.html",
                                                         "error.html")]]
    found = [f"{f.relative_to(repo)}:{i}: {line.strip()}" for f in files
             for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
             if CITY_LITERALS.search(line)]
    assert found == []


def test_warnings_name_no_path() -> None:
    """A Python warning on stderr names its module, not the absolute path of its file."""
    import subprocess
    import sys

    repo = Path(cli.__file__).resolve().parent
    code = ("from config.console import quiet_warnings; quiet_warnings('json');"
            "import warnings, pyogrio.raw as m; warnings.warn_explicit("
            "'odd input', UserWarning, m.__file__, 42)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=repo, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "warning: UserWarning (raw:42): odd input\n"
