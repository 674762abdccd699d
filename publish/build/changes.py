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
"""

from __future__ import annotations

import datetime as dt
import json
import re
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
from publish.model import ID_COLUMN

CHANGES_DIR = "changes"
HISTORY_FILE = "history.json"
SUMMARY_FILE = "changes.json"
FEED_RELEASES = 50  # entries per layer feed
MAX_EVENTS = 500_000  # history rows kept (oldest dropped first)
IDS_IN_ENTRY = 200  # ids listed in one Atom entry's text (all are in the JSON)
OPS = ("added", "removed", "changed")


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


def feature_table(store: Path, layer: str) -> pd.DataFrame:
    """fid -> content hash and bbox (CRS84) of every feature of a layer of a public store."""
    gdf = pyogrio.read_dataframe(store, layer=layer, use_arrow=True)
    props = sorted(c for c in gdf.columns if c != gdf.geometry.name)
    # every property as text (NULL apart from ""), then the geometry as stored: one row hash
    text = pd.DataFrame({c: gdf[c].astype("string").fillna("\u2205") for c in props})
    text["\u241e"] = shapely.to_wkb(gdf.geometry.values, hex=True, output_dimension=2)
    hashes = pd.util.hash_pandas_object(text.astype(object), index=False).to_numpy()
    bounds = shapely.bounds(gdf.geometry.values)
    return pd.DataFrame({
        "fid": gdf[ID_COLUMN].astype(str).to_numpy(), "hash": hashes,
        "minx": bounds[:, 0], "miny": bounds[:, 1], "maxx": bounds[:, 2], "maxy": bounds[:, 3],
    }).set_index("fid")


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


def diff_stores(old_store: Path | None, new_store: Path) -> tuple[dict[str, LayerDiff],
                                                                   list[dict[str, Any]]]:
    """Per-layer diffs and the change events (with bboxes) between two public stores."""
    old_layers = set(_layers(old_store)) if old_store and old_store.exists() else set()
    diffs: dict[str, LayerDiff] = {}
    events: list[dict[str, Any]] = []
    new_layers = _layers(new_store)
    for lid in sorted(set(new_layers) | old_layers):
        new = feature_table(new_store, lid) if lid in new_layers else \
            pd.DataFrame(columns=["hash", "minx", "miny", "maxx", "maxy"])
        old = feature_table(old_store, lid) if old_store and lid in old_layers else None
        d = diff_tables(old, new)
        diffs[lid] = d
        for op, ids in (("added", d.added), ("changed", d.changed), ("removed", d.removed)):
            src = old if op == "removed" else new
            if src is None or not ids:  # nothing removed from a first release
                continue
            boxes = np.round(src.loc[ids, ["minx", "miny", "maxx", "maxy"]].to_numpy(float), 7)
            for fid, b in zip(ids, boxes.tolist(), strict=True):
                events.append({"layer": lid, "fid": fid, "op": op,
                               "bbox": None if any(v != v for v in b) else b})
    return diffs, events


def load_history(changes_dir: Path | None) -> list[dict[str, Any]]:
    if changes_dir is None or not (changes_dir / HISTORY_FILE).is_file():
        return []
    return json.loads((changes_dir / HISTORY_FILE).read_text(encoding="utf-8"))["events"]


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
                    previous_id: str | None = None, base_url: str = "") -> dict[str, Any]:
    """Write this release's diff, the per-layer JSON and Atom, and the carried history.

    ``previous_dir``: the previous release's folder (its ``public.gpkg`` and ``changes/``), or
    None for the first release (everything is then ``added``).
    """
    old_store = previous_dir / "public.gpkg" if previous_dir else None
    diffs, events = diff_stores(old_store, new_store)
    stamp = at.astimezone(dt.UTC).isoformat(timespec="seconds")
    prev_events = load_history(previous_dir / CHANGES_DIR if previous_dir else None)
    new_events = [[release_id, stamp, e["layer"], e["fid"], e["op"], *(e["bbox"] or
                   [None] * 4)] for e in events]
    history = (prev_events + new_events)[-MAX_EVENTS:]
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"release": release_id, "previous": previous_id, "at": stamp,
               "layers": {lid: d.as_dict() for lid, d in diffs.items()}}
    _write_json(out_dir / SUMMARY_FILE, summary)
    _write_json(out_dir / HISTORY_FILE,
                {"columns": ["release", "at", "layer", "fid", "op", "minx", "miny", "maxx",
                             "maxy"], "events": history}, compact=True)
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
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":") if compact
                              else None, indent=None if compact else 1), encoding="utf-8")
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
