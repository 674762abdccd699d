"""Change feed across two real releases that differ by known features; Atom parses; since+bbox."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio
import pytest
from publish_fixtures import isolated_site_builders, make_project, sample_frames, write_master

from config.messages import both
from publish.build import changes, publish

ATOM = "{http://www.w3.org/2005/Atom}"
T_A = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
T_B = dt.datetime(2026, 4, 15, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("chg")
    project = make_project(root)  # 40 pipes (31 public), 9 shelters
    with isolated_site_builders():
        a = publish(project)
    sa = changes.release_changes(project, a.store, a.release_id, T_A, None,
                                 a.path / changes.CHANGES_DIR)
    frames = sample_frames(41, 9)  # pipe 40 is new (in use: public)
    pipes, shelters = frames["sewer_pipes"], frames["shelters"]
    frames["sewer_pipes"] = pipes[pipes["pipe_id"] != "SP-00000"].copy()  # removed
    p = frames["sewer_pipes"]
    p.loc[p["pipe_id"] == "SP-00001", "diameter_mm"] = 999  # changed (public column)
    p.loc[p["pipe_id"] == "SP-00002", "remarks"] = "内部メモの変更"  # internal only: no change
    p.loc[p["pipe_id"] == "SP-00004", "diameter_mm"] = 998  # abandoned: not public at all
    shelters.loc[shelters["shelter_id"] == "H002", "name"] = "避難所2号 (改称)"  # changed
    write_master(project, frames)
    with isolated_site_builders():
        b = publish(project)
    sb = changes.release_changes(project, b.store, b.release_id, T_B, a.path,
                                 b.path / changes.CHANGES_DIR, previous_id=a.release_id,
                                 base_url="https://gis.example.jp")
    return {"project": project, "a": a, "b": b, "sa": sa, "sb": sb}


def test_first_release_adds_everything(two: dict[str, Any]) -> None:
    sa = two["sa"]
    assert sa["previous"] is None and sa["at"] == "2026-03-01T09:00:00+00:00"
    assert len(sa["layers"]["sewer_pipes"]["added"]) == 31
    assert sa["layers"]["shelters"]["added"] == [f"H{i:03d}" for i in range(9)]
    assert sa["layers"]["shelters"]["removed"] == sa["layers"]["shelters"]["changed"] == []


def test_diff_gives_exactly_the_known_ids(two: dict[str, Any]) -> None:
    sb, a, b = two["sb"], two["a"], two["b"]
    assert sb["release"] == b.release_id and sb["previous"] == a.release_id
    assert sb["layers"] == {
        "sewer_pipes": {"added": ["SP-00040"], "removed": ["SP-00000"],
                        "changed": ["SP-00001"], "unchanged": 29},
        "shelters": {"added": [], "removed": [], "changed": ["H002"], "unchanged": 8},
    }
    on_disk = json.loads((b.path / "changes" / "changes.json").read_text(encoding="utf-8"))
    assert on_disk == sb


def test_layer_json_lists_releases_newest_first(two: dict[str, Any]) -> None:
    a, b = two["a"], two["b"]
    data = json.loads((b.path / "changes" / "shelters.json").read_text(encoding="utf-8"))
    assert [r["release"] for r in data["releases"]] == [b.release_id, a.release_id]
    assert data["releases"][0] == {"release": b.release_id, "at": "2026-04-15T09:00:00+00:00",
                                   "added": [], "removed": [], "changed": ["H002"]}


def test_atom_feed_parses_with_the_right_entries(two: dict[str, Any]) -> None:
    a, b = two["a"], two["b"]
    root = ET.fromstring((b.path / "changes" / "sewer_pipes.atom").read_bytes())
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}title") == "下水道管きょ の変更 / Changes to Sewer pipes"
    assert root.findtext(f"{ATOM}updated") == "2026-04-15T09:00:00+00:00"
    self_link = [x.get("href") for x in root.findall(f"{ATOM}link") if x.get("rel") == "self"]
    assert self_link == ["https://gis.example.jp/changes/sewer_pipes.atom"]
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [
        " / ".join(both("changes_entry_title", release=b.release_id, added=1, removed=1,
                        changed=1).values()),
        " / ".join(both("changes_entry_title", release=a.release_id, added=31, removed=0,
                        changed=0).values())]
    assert entries[0].findtext(f"{ATOM}id") == (
        f"tag:www.city.uozu.toyama.jp,2026-04-15:162043/changes/sewer_pipes/{b.release_id}")
    assert entries[0].findtext(f"{ATOM}updated") == "2026-04-15T09:00:00+00:00"
    content = entries[0].findtext(f"{ATOM}content")
    assert "追加: SP-00040" in content and "削除: SP-00000" in content
    assert "Changed: SP-00001" in content
    # the escaped name of a shelter does not break the XML
    root = ET.fromstring((b.path / "changes" / "shelters.atom").read_bytes())
    assert len(root.findall(f"{ATOM}entry")) == 2


def test_changed_since_date_and_bbox(two: dict[str, Any]) -> None:
    b = two["b"]
    d = b.path / "changes"
    assert changes.changed_since(d, "2026-04-01") == {
        "sewer_pipes": {"added": ["SP-00040"], "removed": ["SP-00000"],
                        "changed": ["SP-00001"]},
        "shelters": {"added": [], "removed": [], "changed": ["H002"]},
    }
    assert changes.changed_since(d, dt.date(2026, 4, 16)) == {}
    # since before the first release: SP-00000 was added then removed -> removed;
    # SP-00001 was added then changed -> added
    since_start = changes.changed_since(d, "2026-01-01", layers=["sewer_pipes"])
    assert set(since_start) == {"sewer_pipes"}
    assert since_start["sewer_pipes"]["removed"] == ["SP-00000"]
    assert "SP-00001" in since_start["sewer_pipes"]["added"]
    assert since_start["sewer_pipes"]["changed"] == []
    # in the box of pipe SP-00001 only
    gdf = pyogrio.read_dataframe(b.store, layer="sewer_pipes").set_index("fid")
    x0, y0, x1, y1 = gdf.loc["SP-00001"].geometry.bounds
    pad = 1e-6
    box = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    assert changes.changed_since(d, "2026-04-01", box) == {
        "sewer_pipes": {"added": [], "removed": [], "changed": ["SP-00001"]}}
    # the removed pipe is found in its old place
    old = pyogrio.read_dataframe(two["a"].store, layer="sewer_pipes").set_index("fid")
    x0, y0, x1, y1 = old.loc["SP-00000"].geometry.bounds
    assert changes.changed_since(d, "2026-04-01", (x0, y0, x1, y1), ["sewer_pipes"]) == {
        "sewer_pipes": {"added": [], "removed": ["SP-00000"], "changed": []}}


def test_history_is_carried_so_pruning_loses_nothing(two: dict[str, Any],
                                                     tmp_path: Path) -> None:
    b = two["b"]
    rows = changes.load_history(b.path / "changes")
    assert len(rows) == 31 + 9 + 3 + 1
    assert {r[4] for r in rows} == {"added", "removed", "changed"}
    # a third release with no change: its diff is empty, the history keeps the earlier events
    s3 = changes.release_changes(two["project"], b.store, "R3", T_B + dt.timedelta(days=1),
                                 b.path, tmp_path, previous_id=b.release_id)
    assert all(not (v["added"] or v["removed"] or v["changed"]) for v in s3["layers"].values())
    assert changes.load_history(tmp_path) == rows


def _null_copy(store: Path, dest: Path) -> Path:
    """The store with NULLs in an integer column from row 21 on: a whole-layer read makes the
    column float in every row (so its text, and every row hash, differs from the store's)."""
    import shutil
    import sqlite3

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store, dest / "public.gpkg")
    con = sqlite3.connect(dest / "public.gpkg")
    for fn in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):  # R-tree triggers
        con.create_function(fn, 1, lambda g: 0)
    con.execute("UPDATE sewer_pipes SET install_fy = NULL WHERE rid > 20")
    con.execute("UPDATE shelters SET flood = NULL WHERE rid > 7")
    con.commit()
    con.close()
    return dest / "public.gpkg"


@pytest.mark.parametrize("case", ["first", "second", "nulls"])
def test_streamed_feed_equals_the_whole_layer_feed(two: dict[str, Any], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   case: str) -> None:
    """Batches of 7 rows (here, and in two forked processes) give every file of the
    whole-layer path byte for byte (summary, history, per-layer JSON and Atom), also where
    NULLs change a whole read's dtypes."""
    from publish.build import opendata

    a, b = two["a"], two["b"]
    prev: Path | None = a.path
    new_store = b.store
    if case == "first":
        prev = None
    elif case == "nulls":
        prev = tmp_path / "prev"
        _null_copy(a.store, prev)
        import shutil
        shutil.copytree(a.path / changes.CHANGES_DIR, prev / changes.CHANGES_DIR)
    out = {}
    for mode, rows, pool_rows in (("whole", None, None), ("streamed", 7, None),
                                  ("pooled", 7, 0)):
        out[mode] = tmp_path / mode
        if pool_rows is not None:
            monkeypatch.setattr(opendata, "POOL_ROWS", pool_rows)
        changes.release_changes(two["project"], new_store, b.release_id, T_B, prev, out[mode],
                                previous_id=a.release_id, base_url="https://gis.example.jp",
                                batch_rows=rows)
    names = sorted(p.name for p in out["whole"].iterdir())
    assert changes.HISTORY_FILE in names and "sewer_pipes.atom" in names
    for mode in ("streamed", "pooled"):
        assert names == sorted(p.name for p in out[mode].iterdir())
        for name in names:
            if name == changes.HISTORY_FILE:  # the same events (SQLite's pages may differ)
                assert changes.load_history(out[mode]) == changes.load_history(out["whole"])
                continue
            assert (out["whole"] / name).read_bytes() == (out[mode] / name).read_bytes(), \
                (mode, name)
    summary = json.loads((out["streamed"] / changes.SUMMARY_FILE).read_text(encoding="utf-8"))
    pipes = summary["layers"]["sewer_pipes"]
    if case == "nulls":  # the float column's text differs in every common row
        assert len(pipes["changed"]) == 30 and pipes["unchanged"] == 0
    elif case == "second":
        assert pipes["changed"] == ["SP-00001"]
    else:
        assert len(pipes["added"]) == 31


def _legacy_json(rows: list[list[Any]]) -> str:
    """A ``history.json`` as the former publish wrote it (compact, not ASCII-escaped)."""
    return json.dumps({"columns": changes.HISTORY_COLUMNS, "events": rows}, ensure_ascii=False,
                      separators=(",", ":"))


def test_history_is_read_a_row_at_a_time_as_json_reads_it(two: dict[str, Any]) -> None:
    text = _legacy_json(changes.load_history(two["b"].path / changes.CHANGES_DIR))
    rows = changes.history_events(text)
    assert rows == json.loads(text)["events"] and len(rows) == 44
    assert rows[0][0] is rows[1][0] and rows[0][4] is rows[1][4]  # shared strings
    odd = json.dumps({"columns": changes.HISTORY_COLUMNS, "events": [
        ["R", "2026-01-01T00:00:00+00:00", "x", "a],[b", "added", None, None, None, None]]})
    assert changes.history_events(odd) == json.loads(odd)["events"]  # other spacing
    tight = json.dumps(json.loads(odd), separators=(",", ":"))
    assert changes.history_events(tight) == json.loads(tight)["events"]


def test_history_is_sqlite_with_the_events_in_order(two: dict[str, Any]) -> None:
    d = two["b"].path / changes.CHANGES_DIR
    assert not (d / changes.LEGACY_HISTORY_FILE).exists()
    con = sqlite3.connect(d / changes.HISTORY_FILE)
    try:
        got = [list(r) for r in con.execute(
            "SELECT release, at, layer, fid, op, minx, miny, maxx, maxy FROM log "
            "JOIN releases USING (rel) ORDER BY seq")]
        releases = con.execute("SELECT rel, release, at FROM releases ORDER BY rel").fetchall()
    finally:
        con.close()
    assert releases == [(1, two["a"].release_id, "2026-03-01T09:00:00+00:00"),
                        (2, two["b"].release_id, "2026-04-15T09:00:00+00:00")]
    assert got == changes.load_history(d) and len(got) == 44
    a_id, b_id = two["a"].release_id, two["b"].release_id
    assert [r[0] for r in got] == [a_id] * 40 + [b_id] * 4
    assert [r[2:5] for r in got[40:]] == [
        ["sewer_pipes", "SP-00040", "added"], ["sewer_pipes", "SP-00001", "changed"],
        ["sewer_pipes", "SP-00000", "removed"], ["shelters", "H002", "changed"]]
    assert all(isinstance(v, float) for r in got for v in r[5:])


def test_a_former_json_history_is_carried_over(two: dict[str, Any], tmp_path: Path) -> None:
    """A previous release written by the former publish (``history.json``): its events are
    carried into the new ``history.sqlite``; every published file is as from a SQLite one."""
    a, b = two["a"], two["b"]
    prev = tmp_path / "prev"
    (prev / changes.CHANGES_DIR).mkdir(parents=True)
    shutil.copyfile(a.store, prev / "public.gpkg")
    old_rows = changes.load_history(a.path / changes.CHANGES_DIR)
    (prev / changes.CHANGES_DIR / changes.LEGACY_HISTORY_FILE).write_text(
        _legacy_json(old_rows), encoding="utf-8")
    out = {}
    for name, p in (("legacy", prev), ("sqlite", a.path)):
        out[name] = tmp_path / name
        changes.release_changes(two["project"], b.store, b.release_id, T_B, p, out[name],
                                previous_id=a.release_id, base_url="https://gis.example.jp")
    assert changes.load_history(out["legacy"]) == changes.load_history(out["sqlite"])
    assert changes.load_history(out["legacy"])[:len(old_rows)] == old_rows
    assert changes.changed_since(prev / changes.CHANGES_DIR, "2026-01-01") == \
        changes.changed_since(a.path / changes.CHANGES_DIR, "2026-01-01")
    names = sorted(p.name for p in out["sqlite"].iterdir())
    assert names == sorted(p.name for p in out["legacy"].iterdir())
    for name in names:
        if name != changes.HISTORY_FILE:
            assert (out["legacy"] / name).read_bytes() == (out["sqlite"] / name).read_bytes()


def _feeds_from_rows(rows: list[list[Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per layer, per release (newest first): ids by op, as the former publish built the
    feeds from the whole history held in memory (the reference for the SQL reads)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for rid, at, lid, fid, op, *_ in rows:
        r = out.setdefault(lid, {}).setdefault(rid, {"release": rid, "at": at, "added": [],
                                                     "removed": [], "changed": []})
        r[op].append(fid)
    return {lid: sorted(rs.values(), key=lambda r: (r["at"], r["release"]), reverse=True)
            [:changes.FEED_RELEASES] for lid, rs in out.items()}


def test_history_keeps_the_newest_events_and_feeds_read_them(
        two: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pruning keeps the newest MAX_EVENTS events (a release cut in two keeps its newest part)
    and each layer's JSON lists exactly its newest FEED_RELEASES releases of what is kept."""
    a, b = two["a"], two["b"]
    monkeypatch.setattr(changes, "MAX_EVENTS", 30)
    monkeypatch.setattr(changes, "FEED_RELEASES", 2)
    before = changes.load_history(b.path / changes.CHANGES_DIR)
    prev = b.path
    stores = [a.store, b.store, a.store]  # back, forth and back again: changes every time
    for k, st in enumerate(stores):
        out = tmp_path / f"r{k}"
        out.mkdir()
        shutil.copyfile(st, out / "public.gpkg")
        changes.release_changes(two["project"], st, f"R{k}", T_B + dt.timedelta(days=k + 1),
                                prev, out / changes.CHANGES_DIR, previous_id=prev.name)
        rows = changes.load_history(out / changes.CHANGES_DIR)
        assert len(rows) == min(30, len(before) + 4 * (k + 1))
        assert rows == (before + _all_new(tmp_path, k))[-30:]
        feeds = _feeds_from_rows(rows)
        for lid in ("sewer_pipes", "shelters"):
            data = json.loads((out / changes.CHANGES_DIR / f"{lid}.json").read_text(
                encoding="utf-8"))
            assert data == {"layer": lid, "releases": feeds.get(lid, [])}
        prev = out


def _all_new(tmp_path: Path, k: int) -> list[list[Any]]:
    """The events releases R0..Rk added (each read back from its own summary and history)."""
    rows: list[list[Any]] = []
    for i in range(k + 1):
        h = changes.load_history(tmp_path / f"r{i}" / changes.CHANGES_DIR)
        rows += [r for r in h if r[0] == f"R{i}"]
    return rows


def test_each_layer_is_counted_once(two: dict[str, Any], monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    """One SQL pass (rows and NULLs) per layer and store: the pool's decision and the batches'
    dtypes come from the same pass."""
    seen: list[tuple[str, str]] = []
    real = changes.layer_shape

    def counting(store: Path, lid: str, columns: list[str] | None = None) -> Any:
        seen.append((str(store), lid))
        return real(store, lid, columns)

    monkeypatch.setattr(changes, "layer_shape", counting)
    changes.diff_stores(two["a"].store, two["b"].store, 7)
    assert sorted(seen) == sorted({(str(s.store), lid) for s in (two["a"], two["b"])
                                   for lid in ("sewer_pipes", "shelters")})


def test_feature_table_batches_equal_whole(two: dict[str, Any]) -> None:
    for lid in ("sewer_pipes", "shelters"):
        whole = changes.feature_table(two["a"].store, lid, None)
        for rows in (1, 7, 10_000):
            got = changes.feature_table(two["a"].store, lid, rows)
            pd.testing.assert_frame_equal(got, whole, check_exact=True)
