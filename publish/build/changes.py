"""Change feed: what each release added, removed and changed per public layer, by feature id.

Why per release: a firm's clerk asks "which pipes changed since 2026-04-01 in this block?"; the
answer is the releases published since then, compared feature by feature. Each release compares
its public store with the previous release's (both public: nothing internal is compared) and
writes into ``<release>/changes/``:

* ``changes.json``: this release's diff, every layer (ids of added / removed / changed features);
* ``<layer>.json`` and ``<layer>.atom`` (Atom 1.0, written with feedgen): the layer's recent
  releases, newest first, one entry per release that changed it;
* ``history.json``: every change event so far (carried over from the previous release, so pruning
  old releases loses nothing), one row per feature and release with the feature's bbox (the old
  one for a removed feature), which :func:`changed_since` answers from.

A feature is *changed* when any public property or its geometry (as stored, 7 decimals) differs.

Both stores are read in batches of :data:`BATCH_ROWS` rows (issue 17): each batch is reduced to
the features' ids, row hashes and bboxes at once, so only those compact columns of a layer are
held, never its rows. Each batch gets the dtypes a whole-layer read gives
(:func:`publish.build.opendata.store_frames`), so the hashes, and the diff, are those of the
whole-layer path (``batch_rows=None``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Iterable
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
from publish.build.opendata import layer_shape, process_pool, store_frames
from publish.build.public_store import _qi
from publish.model import ID_COLUMN

CHANGES_DIR = "changes"
HISTORY_FILE = "history.json"
SUMMARY_FILE = "changes.json"
FEED_RELEASES = 50  # entries per layer feed
MAX_EVENTS = 500_000  # history rows kept (oldest dropped first)
IDS_IN_ENTRY = 200  # ids listed in one Atom entry's text (all are in the JSON)
OPS = ("added", "removed", "changed")
#: rows per batch when hashing a layer: memory follows this, not the layer's size
BATCH_ROWS = 10_000
TABLE_COLUMNS = ["hash", "minx", "miny", "maxx", "maxy"]
HISTORY_COLUMNS = ["release", "at", "layer", "fid", "op", "minx", "miny", "maxx", "maxy"]
HISTORY_CHUNK = 10_000  # events per write of history.json


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


def feature_table(store: Path, layer: str, batch_rows: int | None = BATCH_ROWS
                  ) -> pd.DataFrame:
    """fid -> content hash and bbox (CRS84) of every feature of a layer of a public store.

    Read in batches of ``batch_rows`` (``None``: the whole layer at once; the same table)."""
    if batch_rows:
        shape = layer_shape(store, layer)
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


def diff_stores(old_store: Path | None, new_store: Path, batch_rows: int | None = BATCH_ROWS
                ) -> tuple[dict[str, LayerDiff], list[dict[str, Any]]]:
    """Per-layer diffs and the change events (with bboxes) between two public stores."""
    old_layers = set(_layers(old_store)) if old_store and old_store.exists() else set()
    diffs: dict[str, LayerDiff] = {}
    events: list[tuple[str, str, str, list[float] | None]] = []  # layer, fid, op, bbox
    new_layers = _layers(new_store)
    # a layer's two tables are hashed side by side in two processes where there is enough
    pool = process_pool(_rows(new_store, new_layers) + _rows(old_store, old_layers)) \
        if batch_rows else None
    try:
        for lid in sorted(set(new_layers) | old_layers):
            old, new = _tables(pool, old_store if lid in old_layers else None,
                               new_store if lid in new_layers else None, lid, batch_rows)
            _diff_layer(lid, old, new, diffs, events)
    finally:
        if pool is not None:
            pool.shutdown()
    return diffs, events


def _rows(store: Path | None, layers: Iterable[str]) -> int:
    """Rows of the layers of a GeoPackage (one SQLite connection, no GDAL open per layer)."""
    if store is None:
        return 0
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return sum(con.execute(f"SELECT count(*) FROM {_qi(lid)}").fetchone()[0]
                   for lid in layers)
    finally:
        con.close()


def _tables(pool: Executor | None, old_store: Path | None, new_store: Path | None, lid: str,
            batch_rows: int | None) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The old (None if the layer is new) and new feature tables of a layer (empty if gone)."""
    if pool is not None:
        jobs = [pool.submit(feature_table, s, lid, batch_rows) if s else None
                for s in (old_store, new_store)]
        old, new = (j.result() if j else None for j in jobs)
    else:
        old = feature_table(old_store, lid, batch_rows) if old_store else None
        new = feature_table(new_store, lid, batch_rows) if new_store else None
    return old, new if new is not None else pd.DataFrame(columns=TABLE_COLUMNS)


def _diff_layer(lid: str, old: pd.DataFrame | None, new: pd.DataFrame,
                diffs: dict[str, LayerDiff],
                events: list[tuple[str, str, str, list[float] | None]]) -> None:
    """One layer's diff and its change events (with the bboxes of the features)."""
    d = diff_tables(old, new)
    diffs[lid] = d
    for op, ids in (("added", d.added), ("changed", d.changed), ("removed", d.removed)):
        src = old if op == "removed" else new
        if src is None or not ids:  # nothing removed from a first release
            continue
        boxes = np.round(src.loc[ids, ["minx", "miny", "maxx", "maxy"]].to_numpy(float), 7)
        for fid, b in zip(ids, boxes.tolist(), strict=True):
            events.append((lid, fid, op, None if any(v != v for v in b) else b))


def load_history(changes_dir: Path | None) -> list[list[Any]]:
    if changes_dir is None or not (changes_dir / HISTORY_FILE).is_file():
        return []
    return history_events((changes_dir / HISTORY_FILE).read_text(encoding="utf-8"))


def history_events(text: str) -> list[list[Any]]:
    """The ``events`` of a ``history.json`` text, as ``json.loads`` gives them, but decoded a
    row at a time with each release id, time, layer and operation one shared string (the file
    repeats them on every row: about half the memory of the rows). A text not in the layout
    :func:`_write_history` writes is read with ``json.loads``."""
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
    diffs, events = diff_stores(old_store, new_store, batch_rows)
    stamp = at.astimezone(dt.UTC).isoformat(timespec="seconds")
    prev_events = load_history(previous_dir / CHANGES_DIR if previous_dir else None)
    new_events = [[release_id, stamp, lid, fid, op, *(bbox or [None] * 4)]
                  for lid, fid, op, bbox in events]
    del events
    history = (prev_events + new_events)[-MAX_EVENTS:]
    del prev_events, new_events
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"release": release_id, "previous": previous_id, "at": stamp,
               "layers": {lid: d.as_dict() for lid, d in diffs.items()}}
    _write_json(out_dir / SUMMARY_FILE, summary)
    _write_history(out_dir / HISTORY_FILE, history)
    per_layer = _releases_by_layer(history)
    for lid in diffs:
        rel = per_layer.get(lid, [])[:FEED_RELEASES]
        _write_json(out_dir / f"{lid}.json", {"layer": lid, "releases": rel})
        (out_dir / f"{lid}.atom").write_bytes(layer_feed(project, lid, rel, base_url))
    return summary


def _releases_by_layer(history: list[list[Any]]) -> dict[str, list[dict[str, Any]]]:
    """history rows -> per layer, per release (newest first): ids by op."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for rid, at, lid, fid, op, *_ in history:
        r = out.setdefault(lid, {}).setdefault(rid, {"release": rid, "at": at, "added": [],
                                                     "removed": [], "changed": []})
        r[op].append(fid)
    return {lid: sorted(rs.values(), key=lambda r: (r["at"], r["release"]), reverse=True)
            for lid, rs in out.items()}


def _write_json(path: Path, data: Any, compact: bool = False) -> None:
    """The bytes of ``json.dumps`` (indent 1, or compact), written as they are encoded (a
    first release lists every feature id: no one string of them all, nor a list of its
    pieces)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, separators=(",", ":") if compact else None,
                  indent=None if compact else 1)
    tmp.replace(path)


def _write_history(path: Path, history: list[list[Any]]) -> None:
    """``history.json``: the bytes of ``json.dumps({"columns": ..., "events": history})``
    (compact), written :data:`HISTORY_CHUNK` events at a time instead of as one string."""
    def dumps(x: Any) -> str:
        return json.dumps(x, ensure_ascii=False, separators=(",", ":"))

    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write('{"columns":' + dumps(HISTORY_COLUMNS) + ',"events":[')
        for i in range(0, len(history), HISTORY_CHUNK):
            fh.write(("," if i else "") + dumps(history[i:i + HISTORY_CHUNK])[1:-1])
        fh.write("]}")
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
    rows = events if events is not None else load_history(changes_dir)
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
