"""The CLI: help with examples, exit codes, --json, stdout vs stderr."""

from __future__ import annotations

import json
from pathlib import Path

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
