"""One search for every page: 大字+地番, addresses and place names, built at publish.

The index (``search.json`` in the release's site) is small and self-describing: the page loads it
once and matches in the browser, so search works offline once loaded and costs the server nothing.
It holds only what the public store holds (parcel-role layers' 大字 and 地番, shelters' and other
named public layers' names and addresses), with a representative point per entry (CRS84).

Forgiving, the same way on both sides (:func:`fold` here, the same rules in the page's script,
driven by the tables in the index):

* NFKC, one hyphen, no spaces (``etl.normalize``'s normalizers, reused): ``１２３－４`` = ``123-4``;
* 漢数字 before 丁目/番/番地/号/の become digits: ``大町一丁目`` = ``大町1丁目``;
* ヶ/ケ/ヵ/カ after a kanji (and not inside a katakana word) are one letter (霞ヶ関 = 霞ケ関);
* 大字 variants and readings from the project (``publish.search.oaza``): ``三ヶ``, ``さんが``;
* 地番 in any ledger form (``123番4``, ``123の4``, ``123番地4``) -> ``123-4`` (``etl.normalize``'s
  ``chiban``); ``大町1丁目123`` also finds ``123-1``, ``123-2`` ... (番地 matched to parcels);
* the city's address prefixes (e.g. ``〇〇県〇〇市``, from the config) are dropped.

Ranked: exact before prefix before substring; then 大字 and parcels before places; then parcels
with their 大字 before those found by 地番 alone; then shorter labels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import shapely

from config import Project
from config.i18n import reading_forms
from config.models import SearchConfig
from etl.normalize import chiban as chiban_normalizer
from etl.normalize import nfkc as nfkc_normalizer
from publish.build.opendata import layer_shape, store_frames
from publish.model import ID_COLUMN

INDEX_FILE = "search.json"
FORMAT = 1
COORD_DECIMALS = 6  # ~0.1 m: enough to centre a map on a parcel
#: rows per batch read from the public store (only the columns the index needs)
BATCH_ROWS = 10_000

_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
                 "八": 8, "九": 9}
_KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}
#: 漢数字 followed by a unit of an address: 丁目, 番地, 番, 号, の (and a hyphen)
_KANJI_NUM_RE = re.compile(r"([〇零一二三四五六七八九十百千]+)(?=丁目|番地|番|号|の|-|$)")
_KE_RE = re.compile(r"(?<=[\u4e00-\u9fff々])[ヶケヵカゖゕ](?![\u30a1-\u30faー])")
_CHIBAN_TAIL_RE = re.compile(r"[0-9甲乙丙丁][0-9\-番地のノ之号甲乙丙丁]*$")


def kanji_number(s: str) -> int | None:
    """``"十二"`` -> 12, ``"二〇"`` -> 20, ``"百五"`` -> 105; None if not a number."""
    if not s:
        return None
    if all(c in _KANJI_DIGITS for c in s):  # positional: 二〇 = 20
        return int("".join(str(_KANJI_DIGITS[c]) for c in s))
    total, cur = 0, 0
    for c in s:
        if c in _KANJI_DIGITS:
            cur = _KANJI_DIGITS[c]
        elif c in _KANJI_UNITS:
            total += (cur or 1) * _KANJI_UNITS[c]
            cur = 0
        else:
            return None
    return total + cur


def _nfkc(values: list[str]) -> list[str]:
    out = nfkc_normalizer(pd.Series(values, dtype=object))
    return ["" if v is pd.NA or v is None else str(v) for v in out]


def fold(text: str | None) -> str:
    """The matching form of any name or query (see the module doc); "" for nothing."""
    return fold_many([text])[0]


def fold_many(texts: list[str | None]) -> list[str]:
    out = []
    for s in _nfkc([t if t is not None else "" for t in texts]):
        s = s.replace(" ", "")
        s = _KANJI_NUM_RE.sub(lambda m: str(kanji_number(m.group(1)) if kanji_number(
            m.group(1)) is not None else m.group(1)), s)
        s = _KE_RE.sub("ケ", s)
        out.append(s)
    return out


def hira(s: str) -> str:
    """Katakana -> hiragana (readings are compared in hiragana)."""
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in s)


def chiban_key(text: str) -> str | None:
    """A 地番 in the canonical form of ``etl.normalize.chiban`` ("123番4" -> "123-4")."""
    return chiban_keys([text])[0]


def chiban_keys(texts: list[str]) -> list[str | None]:
    """:func:`chiban_key` for many at once (the normalizer parses each distinct value once)."""
    df = chiban_normalizer(pd.Series(texts, dtype=object))
    return [None if bad or v is pd.NA else str(v)
            for v, bad in zip(df[""].tolist(), df["!bad"].tolist(), strict=True)]


# ------------------------------------------------------------------------------------- build


@dataclass(frozen=True)
class Sources:
    """Which public layers feed the index (from the roles of the specs and the config)."""

    parcels: list[tuple[str, str, str]]  # (layer, oaza field, chiban field)
    places: list[tuple[str, str, str | None]]  # (layer, name field, address field)


def sources(project: Project, cfg: SearchConfig) -> Sources:
    """Parcel-role layers and place layers (``place_layers``, else shelters and named points)."""
    parcels, places = [], []
    for lid, spec in project.specs.items():
        if spec.visibility != "public":
            continue
        m = spec.map
        if m.role == "parcel" and m.parcel is not None:
            parcels.append((lid, m.parcel.oaza_field, m.parcel.chiban_field))
        elif cfg.place_layers is not None:
            if lid in cfg.place_layers and m.label_field:
                addr = m.shelter.address_field if m.shelter else None
                places.append((lid, m.label_field, addr))
        elif m.role == "shelter" and m.shelter is not None:
            places.append((lid, m.shelter.name_field, m.shelter.address_field))
        elif m.role == "context" and m.label_field and spec.geometry_type == "Point":
            places.append((lid, m.label_field, None))
    return Sources(parcels, places)


def _points(df: Any) -> np.ndarray:
    geoms = df.geometry.values
    reps = shapely.point_on_surface(geoms)
    return np.round(shapely.get_coordinates(reps), COORD_DECIMALS)


def _strip_prefixes(s: str, prefixes: list[str]) -> str:
    for p in prefixes:
        if p and s.startswith(p):
            return s[len(p):]
    return s


def _frames(store: Path, lid: str, columns: list[str], batch_rows: int | None
            ) -> Iterator[Any]:
    """The columns of a layer the index needs (and the geometry), in batches of
    ``batch_rows`` rows as a whole-layer read gives them (``None``: the whole layer)."""
    shape = layer_shape(store, lid, columns) if batch_rows else None
    if batch_rows and shape is not None and shape.batchable():
        yield from store_frames(store, lid, columns, batch_rows, shape)
    else:
        yield pyogrio.read_dataframe(store, layer=lid, columns=columns)


def build_index(project: Project, store: Path, cfg: SearchConfig | None = None,
                batch_rows: int | None = BATCH_ROWS) -> dict[str, Any]:
    """The search index of a release, read from its public store only.

    ``cfg`` overrides the project's ``publish.search``. The layers are read in batches of
    ``batch_rows`` rows, only the columns the index needs (``None``: whole layers; the same
    index).
    """
    cfg = cfg or project.config.publish.search
    src = sources(project, cfg)
    prefixes = sorted({f for f in fold_many(list(cfg.address_prefixes)) if f}, key=len,
                      reverse=True)
    have = {str(n) for n in pyogrio.list_layers(store)[:, 0]}
    # 大字 (canonical = as written in the parcel layer, folded), variants and readings
    variants: dict[str, str] = {}
    readings: dict[str, str] = {}
    info: dict[str, dict[str, Any]] = {}
    for o in cfg.oaza:
        key = fold(o.name)
        sort_form, spoken = reading_forms(o.reading)
        info[key] = {"r": sort_form, **({"en": o.en} if o.en else {})}
        for v in o.variants:
            if fold(v) and fold(v) != key:
                variants[fold(v)] = key
        for form in spoken:
            readings[hira(fold(form))] = key
    oaza: dict[str, dict[str, Any]] = {}
    for lid, of, cf in src.parcels:
        if lid not in have:
            continue
        for df in _frames(store, lid, [ID_COLUMN, of, cf], batch_rows):
            pts = _points(df).tolist()
            names = df[of].astype("string").fillna("").tolist()
            keys = fold_many(names)
            raw = df[cf].astype("string").fillna("").tolist()
            chibans = [k or f for k, f in zip(chiban_keys(raw), fold_many(raw), strict=True)]
            ids = [str(v) for v in df[ID_COLUMN].tolist()]
            for i, (name, key) in enumerate(zip(names, keys, strict=True)):
                if not key:
                    continue
                e = oaza.setdefault(key, {"n": name, "k": key, "layer": lid,
                                          **info.get(key, {}), "ch": [], "id": [], "x": [],
                                          "y": []})
                e["ch"].append(chibans[i])
                e["id"].append(ids[i])
                e["x"].append(pts[i][0])
                e["y"].append(pts[i][1])
    for e in oaza.values():  # the 大字's own point: the median of its parcels
        e["c"] = [round(float(np.median(e["x"])), COORD_DECIMALS),
                  round(float(np.median(e["y"])), COORD_DECIMALS)]
        order = sorted(range(len(e["ch"])), key=lambda i: _chiban_sort(e["ch"][i]))
        for f in ("ch", "id", "x", "y"):
            e[f] = [e[f][i] for i in order]
    places = []
    for lid, nf, af in src.places:
        if lid not in have:
            continue
        cols = list(dict.fromkeys([ID_COLUMN, nf, *([af] if af else [])]))
        for df in _frames(store, lid, cols, batch_rows):
            pts = _points(df).tolist()
            names = df[nf].astype("string").fillna("").tolist()
            addrs = df[af].astype("string").fillna("").tolist() if af else [""] * len(df)
            ids = [str(v) for v in df[ID_COLUMN].tolist()]
            for i, (nk, ak) in enumerate(zip(fold_many(names), fold_many(addrs), strict=True)):
                if not nk and not ak:
                    continue
                places.append({"n": names[i], "k": nk, "a": addrs[i],
                               "ak": _strip_prefixes(ak, prefixes), "layer": lid,
                               "id": ids[i], "c": pts[i]})
    layers = {lid for lid, _, _ in src.parcels} | {lid for lid, _, _ in src.places}
    pages = {lid: f"{project.specs[lid].map.pages[0]}.html" for lid in sorted(layers)
             if lid in have and project.specs[lid].map.pages}
    return {"v": FORMAT, "crs": "OGC:CRS84", "prefixes": prefixes, "pages": pages,
            "variants": dict(sorted(variants.items())), "readings": dict(sorted(readings.items())),
            # by reading, numbers as numbers (ばんちょう2ちょうめ before ばんちょう10ちょうめ); a
            # 大字 without a configured reading after those with one
            "oaza": sorted(oaza.values(), key=lambda e: (
                "r" not in e, _chiban_sort(e.get("r") or e["k"]), e["k"])),
            "places": places}


def _chiban_sort(ch: str) -> tuple[Any, ...]:
    parts = re.findall(r"\d+|\D+", ch)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def write_index(index: dict[str, Any], path: Path) -> Path:
    """Compact JSON (no spaces, UTF-8): the page fetches it once."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")),
                   encoding="utf-8")
    tmp.replace(path)
    return path


def release_artifact(project: Project, store: Path, site_dir: Path
                     ) -> tuple[Path, dict[str, int]]:
    """Build ``search.json`` into the release's site folder: (path, counts)."""
    index = build_index(project, store)
    path = write_index(index, site_dir / INDEX_FILE)
    return path, {"oaza": len(index["oaza"]),
                  "parcels": sum(len(e["ch"]) for e in index["oaza"]),
                  "places": len(index["places"]), "bytes": path.stat().st_size}


# ------------------------------------------------------------------------------------ search


@dataclass(frozen=True)
class Hit:
    kind: str  # oaza | parcel | place | address
    label: str
    lon: float
    lat: float
    layer: str
    fid: str | None
    score: tuple[int, ...]


@dataclass(frozen=True)
class Query:
    """A query split into its 大字 (canonical key or None) and the rest (folded)."""

    text: str
    oaza: str | None
    rest: str
    chiban: str | None


def parse(index: dict[str, Any], query: str) -> Query:
    """Fold the query, drop the city's prefixes, find a leading 大字 (name, variant, reading)."""
    q = fold(query)
    for p in index.get("prefixes", []):
        if q.startswith(p) and len(q) > len(p):
            q = q[len(p):]
            break
    best: tuple[int, str] | None = None
    names = {e["k"]: e["k"] for e in index["oaza"]}
    for table, transform in ((names, str), (index.get("variants", {}), str),
                             (index.get("readings", {}), hira)):
        probe = transform(q)
        for k, canon in table.items():
            if k and probe.startswith(k) and (best is None or len(k) > best[0]):
                best = (len(k), canon)
    oaza, rest = (best[1], q[best[0]:]) if best else (None, q)
    m = _CHIBAN_TAIL_RE.search(rest) if rest else None
    ch = chiban_key(rest) if rest and m and m.start() == 0 else None
    return Query(q, oaza, rest, ch)


def _match(key: str, q: str) -> int | None:
    if not key or not q:
        return None
    if key == q:
        return 0
    if key.startswith(q):
        return 1
    if q in key:
        return 2
    return None


def search(index: dict[str, Any], query: str, limit: int = 10) -> list[Hit]:
    """Ranked hits for ``query`` (the reference implementation of the page's search)."""
    pq = parse(index, query)
    if not pq.text:
        return []
    hits: list[Hit] = []
    parcel_query = pq.chiban is not None
    for e in index["oaza"]:
        if pq.oaza is not None and e["k"] != pq.oaza:
            continue
        if pq.oaza is None and not parcel_query:
            lvl = _match(e["k"], pq.text)
            if lvl is not None:
                hits.append(Hit("oaza", e["n"], *e["c"], e["layer"], None, (lvl, 0, len(e["n"]))))
            continue
        if not pq.rest:  # the 大字 alone
            hits.append(Hit("oaza", e["n"], *e["c"], e["layer"], None, (0, 0, len(e["n"]))))
            continue
        if pq.chiban is None:
            continue
        for i, ch in enumerate(e["ch"]):
            if ch == pq.chiban:
                lvl = 0
            elif ch.startswith(pq.chiban + "-"):
                lvl = 1  # 番地 -> its 枝番 parcels
            else:
                continue
            label = f"{e['n']} {ch}"
            hits.append(Hit("parcel", label, e["x"][i], e["y"][i], e["layer"], e["id"][i],
                            (lvl + (0 if pq.oaza else 2), 0, len(label))))
    for p in index["places"]:
        lvl = _match(p["k"], pq.text)
        kind = "place"
        if lvl is None and p.get("ak"):
            lvl, kind = _match(p["ak"], pq.text), "address"
        if lvl is None:
            continue
        label = p["n"] if kind == "place" else f"{p['n']} ({p['a']})"
        hits.append(Hit(kind, label, *p["c"], p["layer"], p["id"], (lvl, 1, len(label))))
    hits.sort(key=lambda h: (h.score, h.label))
    return hits[:limit]
