"""Leak test end to end: canaries planted in the *raw inputs* never leave the building.

Set-up, for both example cities (Uozu; Takamatsu with its confidential tax ledger and its own
layer ids) on every store: sample exports; every internal text field of every layer and every
text field of an internal layer gets a unique canary in its source file; merge -> publish -> the
real server (gunicorn). Then crawl every URL the server exposes (landing, terms, collections,
every items page to the end, every item, queryables, schema, OpenAPI, HTML pages, static files,
map pages and what they load, the open-data downloads, change feeds and search index, a walking
route) and look for any canary, any internal column name, any source file name; then every file
of the release folder itself (graph, search index, downloads, feeds, store), binary ones byte by
byte.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pandas as pd
import pyogrio
import pytest
import requests
from conftest import make_uozu_project, store_for
from publish_fixtures import readable
from stores import STORES, set_store_in_file
from test_example_city import copy_example

from config import load_project
from etl.pipeline import run_merge
from etl.schema import LINEAGE_COLUMNS, output_columns
from publish.build.release import current_release
from publish.server.app import ServerProcess

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
PLAIN = {"nfkc", "upper"}  # normalizers that keep a canary intact


def _plant(root: Path) -> tuple[set[str], set[str], set[str]]:
    """Write canaries into the raw sources; returns (canaries, internal columns, file names)."""
    project = load_project(root)
    raw = root / "data/raw"
    canaries: set[str] = set()
    internal_cols: set[str] = set()
    files: set[str] = set()
    edits: dict[tuple[str, str], dict[str, str]] = {}  # (path, encoding) -> raw col -> canary
    for lid, spec in project.specs.items():
        layer_internal = spec.visibility != "public"
        for c in output_columns(spec, lineage=False):
            if c.visibility != "public" or layer_internal:
                internal_cols.add(c.name)
        for src in spec.sources:
            files.add(Path(src.path).stem)
            inverse = {v: k for k, v in src.rename.items()}
            for name, f in spec.fields.items():
                if not (layer_internal or f.visibility != "public"):
                    continue
                if f.type != "str" or f.codelist or not f.from_ or f.required or \
                        any(n.name not in PLAIN for n in f.normalize) or lid in (
                        spec.join.layer if spec.join else "", ) or name in (
                        spec.join.keys if spec.join else []):
                    continue
                if f.from_ in src.constants:
                    continue
                shared = [g for n, g in spec.fields.items() if n != name and g.from_ == f.from_]
                if any(g.codelist or g.type != "str" or g.required or any(
                        n.name not in PLAIN for n in g.normalize) for g in shared):
                    continue  # the raw column also feeds a coded or typed field
                canary = f"CANARY{len(canaries):03d}Q{lid[:3].upper()}"
                canaries.add(canary)
                key = (src.path, src.encoding or "utf-8", src.reader)
                edits.setdefault(key, {})[inverse.get(f.from_, f.from_)] = canary
    for (path, enc, reader), cols in edits.items():
        p = raw / path
        if reader == "csv":
            df = pd.read_csv(p, dtype=str, encoding=enc, keep_default_na=False)
            for col, canary in cols.items():
                df[col] = [f"{canary}{i}" for i in range(len(df))]
            df.to_csv(p, index=False, encoding=enc)
            continue
        had_prj = p.with_suffix(".prj").exists() or p.suffix != ".shp"
        had_cpg = p.with_suffix(".cpg").exists()
        df = pyogrio.read_dataframe(p, encoding=enc if p.suffix == ".shp" else None)
        for col, canary in cols.items():
            df[col] = [f"{canary}{i}" for i in range(len(df))]
        if not had_prj:
            df = df.set_crs(None, allow_override=True)
        pyogrio.write_dataframe(df, p, encoding=enc if p.suffix == ".shp" else None)
        if p.suffix == ".shp":
            if not had_cpg:
                p.with_suffix(".cpg").unlink(missing_ok=True)
            if not had_prj:
                p.with_suffix(".prj").unlink(missing_ok=True)
    return canaries, internal_cols, files


def _takamatsu_root(base: Path) -> Path:
    """The second example city (test_example_city's copy) with its sample exports, small."""
    from examples.takamatsu.samples import generate as gen

    root = copy_example(base / "proj")
    gen.generate(load_project(root).raw_dir, scale=0.05)
    return root


#: (city, store): Uozu on every store; Takamatsu (its confidential tax ledger, its own layer
#: ids, real open data with internal columns) on every store too
CASES = [(city, kind) for city in ("uozu", "takamatsu") for kind in STORES]


@pytest.fixture(scope="module", params=CASES, ids="-".join)
def canary_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    city, kind = request.param
    base = tmp_path_factory.mktemp(f"leak-{city}")
    root = (make_uozu_project(base, scale=0.05) if city == "uozu" else _takamatsu_root(base))
    set_store_in_file(root, store_for(request, kind))
    canaries, internal_cols, files = _plant(root)
    project = load_project(root)
    hidden = sorted(lid for lid, sp in project.specs.items() if sp.visibility != "public")
    # every plain-text internal field of the specs whose raw column feeds nothing else (other
    # internal fields are checked by name): each layer that is not public, and internal fields
    # of public layers (Uozu: parcels and sewers; Takamatsu: the tax ledger, pipes, fire posts)
    assert hidden and {lid[:3].upper() for lid in hidden} <= {c[-3:] for c in canaries}
    assert len(canaries) >= 3 and len({c[-3:] for c in canaries}) >= 2, canaries
    res = run_merge(project)
    # the canaries really are in the master (so finding none outside means something)
    from etl.stores import open_store
    for lid in hidden:
        table = open_store(project).read_layer(lid)
        assert table.astype(str).apply(lambda c: c.str.contains("CANARY")).any().any(), lid
    assert res.manifest["totals"]["merged"] > 1000
    from publish.build import publish
    publish(project)
    server = ServerProcess(root)
    base_url = server.base
    yield base_url, canaries, internal_cols, files, project
    server.stop()


LINK = re.compile(r'(?:href|src)="([^"#]+)"')


def _links(base: str, url: str, body: str, ctype: str) -> set[str]:
    out: set[str] = set()
    if "json" in ctype:
        try:
            data = json.loads(body)
        except ValueError:
            data = None

        def walk(o: object) -> None:
            if isinstance(o, dict):
                h = o.get("href")
                if isinstance(h, str):
                    out.add(h)
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(data)
    elif "html" in ctype or "javascript" in ctype or "css" in ctype:
        out |= {urljoin(url, html.unescape(h)) for h in LINK.findall(body)}
    keep = set()
    for h in out:
        h = urljoin(url, h)
        if urlsplit(h).netloc == urlsplit(base).netloc:
            keep.add(h.split("#")[0])
    return keep


def test_crawl_finds_no_canary(canary_server) -> None:
    base, canaries, internal_cols, files, project = canary_server
    s = requests.Session()
    seen: set[str] = set()
    queue = [f"{base}/", f"{base}/terms", f"{base}/api", f"{base}/api/openapi?f=json",
             f"{base}/api/conformance", f"{base}/api/collections?f=json",
             f"{base}/api/collections?f=html", f"{base}/maps/search.json",
             f"{base}/opendata/index.json", f"{base}/opendata/README.txt",
             f"{base}/api/changes?since=2000-01-01"]
    queue += [f"{base}/maps/{p.id}.html" for p in project.config.publish.pages]
    meta = current_release(project.public_dir).meta
    queue += [f"{base}/opendata/{f['file']}" for e in meta["opendata"]["layers"].values()
              for f in e["files"]]
    queue += [f"{base}/changes/{lid}.{ext}" for lid in meta["changes"]["layers"]
              for ext in ("json", "atom")] + [f"{base}/changes/changes.json"]
    public = [lid for lid, sp in project.specs.items() if sp.visibility == "public"]
    for lid in public:
        c = f"{base}/api/collections/{lid}"
        queue += [c, f"{c}?f=html", f"{c}/queryables?f=json", f"{c}/queryables?f=html",
                  f"{c}/schema?f=json", f"{c}/items?f=json&limit=1000",
                  f"{c}/items?f=html&limit=50"]
    bodies: list[tuple[str, str]] = []
    blobs: list[tuple[str, bytes]] = []  # binary answers (GeoPackage downloads)
    fids: dict[str, set[str]] = {lid: set() for lid in public}
    items_page = re.compile(r"/api/collections/\w+/items\?")
    one_item = re.compile(r"/api/collections/\w+/items/[^/?]+")
    html_items: dict[str, set[str]] = defaultdict(set)
    while queue and len(seen) < 4000:
        url = queue.pop(0)
        if url in seen or ("/processes/" in url and url.endswith("/execution")):
            continue
        seen.add(url)
        r = s.get(url, timeout=30)
        assert r.status_code < 500, url
        if r.status_code != 200:
            continue
        ctype = r.headers.get("Content-Type", "")
        body = r.text if any(t in ctype for t in ("json", "html", "javascript", "css", "text",
                                                  "yaml", "xml")) else ""
        bodies.append((url, body))
        if not body:
            blobs.append((url, r.content))
        parts = urlsplit(url)
        m = re.fullmatch(r"/api/collections/(\w+)/items", parts.path)
        is_json = "json" in ctype and "ld+json" not in ctype
        if m and parse_qs(parts.query).get("f", ["json"]) == ["json"] and is_json:
            feats = r.json()["features"]
            assert all("id" in f for f in feats), (url, feats[:1])
            fids[m.group(1)] |= {str(f["id"]) for f in feats}
        for link in _links(base, url, body, ctype):
            # item lists: walk the limit=1000 JSON chain and the seeded HTML chain to the end;
            # other page sizes show the same features again
            if items_page.search(link) and "limit=1000" not in link and "limit=50" not in link:
                continue
            if one_item.search(link) and len(html_items[link.split("/items/")[0]]) >= 20:
                continue  # every item is fetched below as JSON; 20 HTML item pages per layer
            if one_item.search(link):
                html_items[link.split("/items/")[0]].add(link)
            if link not in seen:
                queue.append(link)
    # every single item, as JSON (the HTML item pages embed the same properties)
    item_urls = [f"{base}/api/collections/{lid}/items/{fid}?f=json"
                 for lid, ids in fids.items() for fid in ids]
    store = current_release(project.public_dir).store
    for lid, ids in fids.items():  # the paging walk reached every feature of every layer
        assert len(ids) == pyogrio.read_info(store, layer=lid)["features"], lid

    def get(u: str) -> tuple[str, str]:
        r = requests.get(u, timeout=30)
        assert r.status_code == 200, u
        return u, r.text

    with ThreadPoolExecutor(4) as pool:
        bodies += list(pool.map(get, item_urls))
    assert len(item_urls) > 1000 and len(seen) > 100
    # a walking route (the process answers from the release's graph)
    shelter = next(lid for lid, sp in project.specs.items() if sp.map.role == "shelter")
    route = s.post(f"{base}/api/processes/walk-route/execution", timeout=30, json={"inputs": {
        "lon": meta["layers"][shelter]["bbox"][0], "lat": meta["layers"][shelter]["bbox"][1],
        "kind": "earthquake"}})
    assert route.status_code in (200, 400), route.text
    bodies.append((route.url, route.text))
    assert len(blobs) >= 10  # every layer's GeoPackage, the standard layout's
    for url, body in bodies:
        for c in canaries:
            assert c not in body, (c, url)
        for f in files:  # a source file's name (not a longer name that starts with it)
            assert not re.search(re.escape(f) + r"(?![A-Za-z0-9_])", body), (f, url)
    for url, blob in blobs:
        for c in canaries:
            assert c.encode() not in blob, (c, url)
    # every file of the release folder, as its readers see it
    rdir = current_release(project.public_dir).dir
    scanned = 0
    for path in sorted(p for p in rdir.rglob("*") if p.is_file()):
        data = readable(path.name, path.read_bytes())  # tiles, graph, .br/.gz copies decoded
        for c in canaries:
            assert c.encode() not in data, (c, path)
        scanned += 1
    assert scanned > 40
    # internal column names never appear as properties, queryables or schema keys
    forbidden = (internal_cols | set(LINEAGE_COLUMNS)) - {
        c.name for sp in project.specs.values() if sp.visibility == "public"
        for c in output_columns(sp, lineage=False) if c.visibility == "public"}
    for url, body in bodies:
        if "/items/" in url and url.endswith("f=json"):
            props = set(json.loads(body)["properties"])
            assert not props & forbidden, (url, props & forbidden)
        if ("/queryables" in url or "/schema" in url) and body.lstrip().startswith("{"):
            keys = set(json.loads(body).get("properties", {}))
            assert not keys & forbidden, (url, keys & forbidden)


def test_internal_layers_are_404(canary_server) -> None:
    base, *_, project = canary_server
    hidden = [lid for lid, sp in project.specs.items() if sp.visibility != "public"]
    paths = ["/api/collections/_quarantine", "/data/merged/master.gpkg",
             "/maps/../../data/merged/master.gpkg", "/static/../../data/merged/master.gpkg"]
    for lid in hidden:
        paths += [f"/api/collections/{lid}", f"/api/collections/{lid}/items",
                  f"/api/collections/{lid}/items?f=html", f"/api/collections/{lid}/queryables",
                  f"/opendata/{lid}.gpkg", f"/opendata/{lid}.csv", f"/changes/{lid}.json"]
    for path in paths:
        r = requests.get(base + path, timeout=10)
        assert r.status_code == 404, (path, r.status_code)
