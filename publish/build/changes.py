"""Change feed: what each release added, removed and changed per public layer, by feature id.

Why per release: a firm's clerk asks "which pipes changed since 2026-04-01 in this block?"; the
answer is the releases published since then, compared feature by feature. Each release compares
its public store with the previous release's (both public: nothing internal is compared) and
writes into ``<release>/changes/``:

* ``changes.json``: this release's diff, every layer (ids of added / removed / changed features);
* ``<layer>.json`` and ``<layer>.atom`` (Atom 1.0, written with feedgen): the layer's recent
  releases, newest first, one entry per release that changed it;
* ``history.sqlite``: every change event so far (carried over from the previous release, so
  pruning old releases loses nothing), one row per feature and release with the feature's bbox
  (the old one for a removed feature), which :func:`changed_since` answers from. SQLite, not one
  JSON document (issue 17): the previous release's file is copied and this release's events
  appended, and the per-layer feeds read only their releases' rows, so the history (up to
  :data:`MAX_EVENTS` rows) is never held whole while publishing. A previous release's
  ``history.json`` (the former layout) is read once and carried over into the new file.

A feature is *changed* when any public property or its geometry (as stored, 7 decimals) differs.

Both stores are read in batches of :data:`BATCH_ROWS` rows (issue 17): each batch is reduced to
the features' ids, row hashes and bboxes at once, so only those compact columns of a layer are
held, never its rows. Each batch gets the dtypes a whole-layer read gives
(:func:`publish.build.opendata.store_frames`), so the hashes, and the diff, are those of the
whole-layer path (``batch_rows=None``). Each layer's events go into the history as the layer is
diffed; only its ids (for ``changes.json``) stay in memory.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyogrio
import shapely
from feedgen.feed import FeedGenerator

from config import Project
from config.messages import both, en, ja
from publish.build.opendata import LayerShape, layer_shape, process_pool, store_frames
from publish.model import ID_COLUMN

CHANGES_DIR = "changes"
HISTORY_FILE = "history.sqlite"
#: the former layout of the history (one JSON document): still read from a previous release
LEGACY_HISTORY_FILE = "history.json"
SUMMARY_FILE = "changes.json"
FEED_RELEASES = 50  # entries per layer feed
MAX_EVENTS = 500_000  # history rows kept (oldest dropped first)
IDS_IN_ENTRY = 200  # ids listed in one Atom entry's text (all are in the JSON)
OPS = ("added", "removed", "changed")
#: rows per batch when hashing a layer: memory follows this, not the layer's size
BATCH_ROWS = 10_000
TABLE_COLUMNS = ["hash", "minx", "miny", "maxx", "maxy"]
HISTORY_COLUMNS = ["release", "at", "layer", "fid", "op", "minx", "miny", "maxx", "maxy"]
HISTORY_CHUNK = 10_000  # events per SQLite insert (and per legacy JSON write)
#: the history: ``log`` holds the events (``seq``: their order, oldest first), each naming its
#: release by a number into ``releases`` (a release's id and time once, not on every row)
HISTORY_DDL = ("CREATE TABLE IF NOT EXISTS releases (rel INTEGER PRIMARY KEY, release TEXT, "
               "at TEXT)",
               "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, rel INTEGER, "
               "layer TEXT, fid TEXT, op TEXT, minx REAL, miny REAL, maxx REAL, maxy REAL)",
               "CREATE INDEX IF NOT EXISTS log_layer_rel ON log (layer, rel)")
_LOG_INSERT = ("INSERT INTO log (rel, layer, fid, op, minx, miny, maxx, maxy) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


@dataclass
class LayerDiff:
    """One layer's difference between two releases (ids sorted)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed,
                "unchanged": self.unchanged}


def feature_table(store: Path, layer: str, batch_rows: int | None = BATCH_ROWS,
                  shape: LayerShape | None = None) -> pd.DataFrame:
    """fid -> content hash and bbox (CRS84) of every feature of a layer of a public store.

    Read in batches of ``batch_rows`` (``None``: the whole layer at once; the same table).
    ``shape``: the layer's :func:`~publish.build.opendata.layer_shape` if already known (its
    SQL pass counts every row: done once per layer, not again here)."""
    if batch_rows:
        shape = shape or layer_shape(store, layer)
        if shape.batchable():  # else: read whole
            parts = [_hashed(gdf) for gdf in store_frames(store, layer, None, batch_rows,
                                                          shape)]
            return pd.concat(parts, ignore_index=True).set_index("fid")
    return _hashed(pyogrio.read_dataframe(store, layer=layer, use_arrow=True)).set_index("fid")


def _hashed(gdf: Any) -> pd.DataFrame:
    """fid, row hash and bbox of each row of a layer's frame (whole or a batch)."""
    props = sorted(c for c in gdf.columns if c != gdf.geometry.name)
    # every property as text (NULL apart from ""), then the geometry as stored: one row hash
    text = pd.DataFrame({c: gdf[c].astype("string").fillna("\u2205") for c in props})
    text["\u241e"] = shapely.to_wkb(gdf.geometry.values, hex=True, output_dimension=2)
    hashes = pd.util.hash_pandas_object(text.astype(object), index=False).to_numpy()
    bounds = shapely.bounds(gdf.geometry.values)
    return pd.DataFrame({
        "fid": gdf[ID_COLUMN].astype(str).to_numpy(), "hash": hashes,
        "minx": bounds[:, 0], "miny": bounds[:, 1], "maxx": bounds[:, 2], "maxy": bounds[:, 3],
    })


def diff_tables(old: pd.DataFrame | None, new: pd.DataFrame) -> LayerDiff:
    if old is None:
        return LayerDiff(added=sorted(new.index))
    both_ids = new.index.intersection(old.index)
    changed = both_ids[new.loc[both_ids, "hash"].to_numpy() != old.loc[both_ids, "hash"]
                       .to_numpy()]
    return LayerDiff(added=sorted(new.index.difference(old.index)),
                     removed=sorted(old.index.difference(new.index)),
                     changed=sorted(changed), unchanged=len(both_ids) - len(changed))


def _layers(store: Path) -> list[str]:
    return sorted(str(n) for n in pyogrio.list_layers(store)[:, 0])


Event = tuple[str, str, str, list[float] | None]  # layer, fid, op, bbox (None: no geometry)


def diff_stores(old_store: Path | None, new_store: Path, batch_rows: int | None = BATCH_ROWS,
                sink: Callable[[list[Event]], None] | None = None
                ) -> tuple[dict[str, LayerDiff], list[Event]]:
    """Per-layer diffs and the change events (with bboxes) between two public stores.

    ``sink``: given each layer's events as soon as the layer is diffed (they are then not
    returned), so that a release's events are never all held at once."""
    old_layers = set(_layers(old_store)) if old_store and old_store.exists() else set()
    diffs: dict[str, LayerDiff] = {}
    events: list[Event] = []
    new_layers = _layers(new_store)
    # one SQL pass per layer (rows and NULLs): decides the pool and each batch's dtypes
    shapes: dict[tuple[str, str], LayerShape] = {}
    if batch_rows:
        shapes = {(kind, lid): layer_shape(s, lid) for kind, s, lids in
                  (("new", new_store, new_layers), ("old", old_store, old_layers))
                  if s is not None for lid in lids}
    # a layer's two tables are hashed side by side in two processes where there is enough
    pool = process_pool(sum(sh.rows for sh in shapes.values())) if batch_rows else None
    try:
        for lid in sorted(set(new_layers) | old_layers):
            old, new = _tables(pool, old_store if lid in old_layers else None,
                               new_store if lid in new_layers else None, lid, batch_rows,
                               (shapes.get(("old", lid)), shapes.get(("new", lid))))
            layer_events = _diff_layer(lid, old, new, diffs)
            del old, new
            if sink is not None:
                sink(layer_events)
            else:
                events += layer_events
    finally:
        if pool is not None:
            pool.shutdown()
    return diffs, events


def _tables(pool: Executor | None, old_store: Path | None, new_store: Path | None, lid: str,
            batch_rows: int | None,
            shapes: tuple[LayerShape | None, LayerShape | None] = (None, None)
            ) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The old (None if the layer is new) and new feature tables of a layer (empty if gone)."""
    if pool is not None:
        jobs = [pool.submit(feature_table, s, lid, batch_rows, sh) if s else None
                for s, sh in zip((old_store, new_store), shapes, strict=True)]
        old, new = (j.result() if j else None for j in jobs)
    else:
        old = feature_table(old_store, lid, batch_rows, shapes[0]) if old_store else None
        new = feature_table(new_store, lid, batch_rows, shapes[1]) if new_store else None
    return old, new if new is not None else pd.DataFrame(columns=TABLE_COLUMNS)


def _diff_layer(lid: str, old: pd.DataFrame | None, new: pd.DataFrame,
                diffs: dict[str, LayerDiff]) -> list[Event]:
    """One layer's diff (into ``diffs``) and its change events (with the features' bboxes)."""
    d = diff_tables(old, new)
    diffs[lid] = d
    events: list[Event] = []
    for op, ids in (("added", d.added), ("changed", d.changed), ("removed", d.removed)):
        src = old if op == "removed" else new
        if src is None or not ids:  # nothing removed from a first release
            continue
        boxes = np.round(src.loc[ids, ["minx", "miny", "maxx", "maxy"]].to_numpy(float), 7)
        for fid, b in zip(ids, boxes.tolist(), strict=True):
            events.append((lid, fid, op, None if any(v != v for v in b) else b))
    return events


# ---- the history: one SQLite table of events, oldest first

def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    return sqlite3.connect(path)


def history_rows(changes_dir: Path | None) -> Iterator[list[Any]]:
    """The history's events, oldest first, as :func:`load_history` lists them, read a row at a
    time (a release's ``history.sqlite``, or the former ``history.json``)."""
    if changes_dir is None:
        return
    path = changes_dir / HISTORY_FILE
    if not path.is_file():
        legacy = changes_dir / LEGACY_HISTORY_FILE
        if legacy.is_file():
            yield from history_events(legacy.read_text(encoding="utf-8"))
        return
    con = _connect(path, readonly=True)
    try:
        shared: dict[str, str] = {}
        for row in con.execute("SELECT r.release, r.at, l.layer, l.fid, l.op, l.minx, l.miny, "
                               "l.maxx, l.maxy FROM log l CROSS JOIN releases r "
                               "ON r.rel = l.rel ORDER BY l.seq"):
            out = list(row)
            for k in (0, 1, 2, 4):  # release id, time, layer, op: one string each
                if isinstance(out[k], str):
                    out[k] = shared.setdefault(out[k], out[k])
            yield out
    finally:
        con.close()


def load_history(changes_dir: Path | None) -> list[list[Any]]:
    """Every event of a release's history, oldest first: ``[release, at, layer, fid, op, minx,
    miny, maxx, maxy]`` (bbox ``None`` for a feature without geometry)."""
    return list(history_rows(changes_dir))


def history_events(text: str) -> list[list[Any]]:
    """The ``events`` of a (former) ``history.json`` text, as ``json.loads`` gives them, but
    decoded a row at a time with each release id, time, layer and operation one shared string
    (the file repeats them on every row: about half the memory of the rows). A text not in the
    compact layout the former publish wrote is read with ``json.loads``."""
    head = '{"columns":' + json.dumps(HISTORY_COLUMNS, separators=(",", ":")) + ',"events":['
    if not text.startswith(head):
        return list(json.loads(text)["events"])
    dec = json.JSONDecoder()
    shared: dict[str, str] = {}
    rows: list[list[Any]] = []
    pos, end = len(head), len(text) - 2
    while pos < end:
        row, pos = dec.raw_decode(text, pos)
        if not isinstance(row, list) or len(row) != len(HISTORY_COLUMNS):
            return list(json.loads(text)["events"])
        for k in (0, 1, 2, 4):
            if isinstance(row[k], str):
                row[k] = shared.setdefault(row[k], row[k])
        rows.append(row)
        if text[pos] == ",":
            pos += 1
    if text[pos:] != "]}":
        return list(json.loads(text)["events"])
    return rows


def _tag(project: Project, day: str, rest: str) -> str:
    """A tag URI (RFC 4151) owned by the city's web site: stable ids for feed entries."""
    host = urlsplit(project.config.publish.city_url).hostname or "localhost"
    return f"tag:{host},{day}:{rest}"


def _entry_text(d: dict[str, Any], lang: str) -> str:
    f = ja if lang == "ja" else en
    lines = []
    for op in OPS:
        ids = d[op]
        if ids:
            more = f("changes_more", n=len(ids) - IDS_IN_ENTRY) if len(ids) > IDS_IN_ENTRY \
                else ""
            lines.append(f"{f(f'changes_{op}')}: {', '.join(ids[:IDS_IN_ENTRY])}{more}")
    return "\n".join(lines)


def layer_feed(project: Project, lid: str, releases: list[dict[str, Any]], base_url: str
               ) -> bytes:
    """Atom 1.0 of one layer: one entry per release that changed it, newest first."""
    spec = project.specs.get(lid)
    title = spec.title if spec else None
    fg = FeedGenerator()
    first = releases[-1]["at"][:10] if releases else "2000-01-01"
    fg.id(_tag(project, first, f"{project.config.city_code}/changes/{lid}"))
    fg.title(" / ".join(both("changes_feed_title", ja_title=title.ja if title else lid,
                             en_title=title.en if title else lid).values()))
    fg.author({"name": project.config.publish.contact_name,
               **({"email": project.config.publish.contact_email}
                  if project.config.publish.contact_email else {})})
    fg.link(href=f"{base_url}/{CHANGES_DIR}/{lid}.atom", rel="self")
    fg.link(href=f"{base_url}/{CHANGES_DIR}/{lid}.json", rel="alternate",
            type="application/json")
    fg.language("ja")
    fg.updated(releases[0]["at"] if releases else "2000-01-01T00:00:00+00:00")
    for r in reversed(releases):  # feedgen prepends: add oldest first
        e = fg.add_entry()
        e.id(_tag(project, r["at"][:10], f"{project.config.city_code}/changes/{lid}/"
                                         f"{r['release']}"))
        counts = {op: len(r[op]) for op in OPS}
        e.title(" / ".join(both("changes_entry_title", release=r["release"], **counts).values()))
        e.updated(r["at"])
        e.published(r["at"])
        e.link(href=f"{base_url}/{CHANGES_DIR}/{lid}.json", rel="alternate",
               type="application/json")
        e.content(_entry_text(r, "ja") + "\n\n" + _entry_text(r, "en"), type="text")
    return fg.atom_str(pretty=True)


def release_changes(project: Project, new_store: Path, release_id: str, at: dt.datetime,
                    previous_dir: Path | None, out_dir: Path, *,
                    previous_id: str | None = None, base_url: str = "",
                    batch_rows: int | None = BATCH_ROWS) -> dict[str, Any]:
    """Write this release's diff, the per-layer JSON and Atom, and the carried history.

    ``previous_dir``: the previous release's folder (its ``public.gpkg`` and ``changes/``), or
    None for the first release (everything is then ``added``).
    """
    old_store = previous_dir / "public.gpkg" if previous_dir else None
    stamp = at.astimezone(dt.UTC).isoformat(timespec="seconds")
    out_dir.mkdir(parents=True, exist_ok=True)
    history = out_dir / HISTORY_FILE
    tmp = out_dir / f".{HISTORY_FILE}.tmp"
    _start_history(previous_dir / CHANGES_DIR if previous_dir else None, tmp)
    con = _connect(tmp)
    try:
        rel = _release_number(con, release_id, stamp, {})

        def append(events: list[Event]) -> None:
            con.executemany(_LOG_INSERT, ((rel, lid, fid, op, *(bbox or (None,) * 4))
                                          for lid, fid, op, bbox in events))

        diffs, _ = diff_stores(old_store, new_store, batch_rows, sink=append)
        _prune_history(con)
        con.commit()
        free, pages = (con.execute(f"PRAGMA {p}").fetchone()[0]
                       for p in ("freelist_count", "page_count"))
        if free * 4 > pages:  # pruning freed a quarter of the file: the next copy is smaller
            con.execute("VACUUM")
        summary = {"release": release_id, "previous": previous_id, "at": stamp,
                   "layers": {lid: d.as_dict() for lid, d in diffs.items()}}
        del diffs
        _write_json(out_dir / SUMMARY_FILE, summary)
        for lid in summary["layers"]:
            feed = _layer_releases(con, lid)
            _write_json(out_dir / f"{lid}.json", {"layer": lid, "releases": feed})
            (out_dir / f"{lid}.atom").write_bytes(layer_feed(project, lid, feed, base_url))
    finally:
        con.close()
    tmp.replace(history)
    return summary


def _start_history(previous: Path | None, path: Path) -> None:
    """``path``: a copy of the previous release's history (a file copy; the former JSON layout
    is read once into the table), or an empty one."""
    path.unlink(missing_ok=True)
    if previous is not None and (previous / HISTORY_FILE).is_file():
        shutil.copyfile(previous / HISTORY_FILE, path)
        return
    con = _connect(path)
    try:
        for ddl in HISTORY_DDL:
            con.execute(ddl)
        rows = history_rows(previous)  # a former history.json, or nothing
        numbers: dict[tuple[str, str], int] = {}
        while chunk := [r for _, r in zip(range(HISTORY_CHUNK), rows, strict=False)]:
            con.executemany(_LOG_INSERT, ((_release_number(con, r[0], r[1], numbers), *r[2:])
                                          for r in chunk))
        con.commit()
    finally:
        con.close()


def _release_number(con: sqlite3.Connection, release_id: str, at: str,
                    numbers: dict[tuple[str, str], int]) -> int:
    """The number of a release (id and time) in the history's ``releases``, added if new."""
    key = (release_id, at)
    if key not in numbers:
        row = con.execute("SELECT rel FROM releases WHERE release = ? AND at = ?", key).fetchone()
        numbers[key] = row[0] if row else int(con.execute(
            "INSERT INTO releases (release, at) VALUES (?, ?)", key).lastrowid or 0)
    return numbers[key]


def _prune_history(con: sqlite3.Connection) -> None:
    """Keep the newest :data:`MAX_EVENTS` events (the oldest are dropped first)."""
    row = con.execute("SELECT seq FROM log ORDER BY seq DESC LIMIT 1 OFFSET ?",
                      (MAX_EVENTS - 1,)).fetchone()
    if row is not None:
        con.execute("DELETE FROM log WHERE seq < ?", (row[0],))
        con.execute("DELETE FROM releases WHERE rel NOT IN (SELECT DISTINCT rel FROM log)")


def _layer_releases(con: sqlite3.Connection, lid: str) -> list[dict[str, Any]]:
    """A layer's newest :data:`FEED_RELEASES` releases in the history (newest first), each
    with its ids by operation in the history's order; only those releases' rows are read."""
    # a release id is one entry, with the time of its first event (as in a list of the rows)
    first: dict[str, tuple[str, list[int]]] = {}
    for num, rid, at in con.execute(
            "SELECT rel, release, at FROM releases WHERE rel IN "
            "(SELECT DISTINCT rel FROM log WHERE layer = ?) ORDER BY rel", (lid,)):
        first.setdefault(rid, (at, []))[1].append(num)
    heads = sorted(((at, rid) for rid, (at, _) in first.items()), reverse=True)
    out = []
    for at, rid in heads[:FEED_RELEASES]:
        r: dict[str, Any] = {"release": rid, "at": at, "added": [], "removed": [],
                             "changed": []}
        nums = first[rid][1]
        for fid, op in con.execute(
                f"SELECT fid, op FROM log WHERE layer = ? AND rel IN "
                f"({', '.join('?' * len(nums))}) ORDER BY seq", (lid, *nums)):
            r[op].append(fid)
        out.append(r)
    return out


def _write_json(path: Path, data: Any, compact: bool = False) -> None:
    """The bytes of ``json.dumps`` (indent 1, or compact), written as they are encoded (a
    first release lists every feature id: no one string of them all, nor a list of its
    pieces)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, separators=(",", ":") if compact else None,
                  indent=None if compact else 1)
    tmp.replace(path)


def parse_since(value: str) -> dt.datetime:
    """``YYYY-MM-DD`` (00:00 UTC) or an ISO date-time (UTC if no zone); ValueError otherwise.

    A ``+09:00`` typed unencoded in a URL arrives as `` 09:00``: read as the zone it was.
    """
    v = value.strip()
    if not v or len(v) > 40:
        raise ValueError(value)
    v = re.sub(r"(T[0-9:.]+) ([0-9]{2}:?[0-9]{2})$", r"\1+\2", v)
    return _when(v.replace("Z", "+00:00") if "T" in v else v).astimezone(dt.UTC)


def _when(value: str | dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return _when(dt.datetime.fromisoformat(value) if "T" in value
                 else dt.date.fromisoformat(value))


def _meets(bbox: tuple[float, float, float, float],
           box: tuple[float | None, float | None, float | None, float | None]) -> bool:
    minx, miny, maxx, maxy = box
    if minx is None or miny is None or maxx is None or maxy is None:
        return False  # a feature without geometry is in no box
    return not (maxx < bbox[0] or minx > bbox[2] or maxy < bbox[1] or miny > bbox[3])


def changed_since(changes_dir: Path | None, since: str | dt.date | dt.datetime,
                  bbox: tuple[float, float, float, float] | None = None,
                  layers: list[str] | None = None, *,
                  events: list[list[Any]] | None = None) -> dict[str, dict[str, list[str]]]:
    """Features changed since ``since`` (release time, UTC; a date means its 00:00 UTC) whose
    bbox meets ``bbox`` (CRS84 minx, miny, maxx, maxy): ``{layer: {added, removed, changed}}``.

    A feature changed several times is listed once, under its latest operation since then, so
    "added then removed" reads "removed" and "added then changed" reads "added".
    ``events``: the history already loaded (:func:`load_history`), instead of reading it.
    """
    t0 = _when(since)
    latest: dict[tuple[str, str], str] = {}
    first_op: dict[tuple[str, str], str] = {}
    rows = events if events is not None else history_rows(changes_dir)
    for rid, at, lid, fid, op, minx, miny, maxx, maxy in rows:
        del rid
        if _when(at) < t0 or (layers is not None and lid not in layers):
            continue
        if bbox is not None and not _meets(bbox, (minx, miny, maxx, maxy)):
            continue
        key = (lid, fid)
        first_op.setdefault(key, op)
        latest[key] = op
    out: dict[str, dict[str, list[str]]] = {}
    for (lid, fid), op in sorted(latest.items()):
        if op == "changed" and first_op[(lid, fid)] == "added":
            op = "added"
        out.setdefault(lid, {o: [] for o in OPS})[op].append(fid)
    return out
