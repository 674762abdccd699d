"""Walking routes to shelters: a graph built at publish from the public road layers.

Why at publish: the graph, its junctions, its separate parts and the shelters' places on it are
fixed per release, so a request only snaps a point and runs one Dijkstra (scipy's csgraph) on a
file of the release (``walk_graph.npz``). The same graph goes into PostGIS for pgRouting
(:func:`write_pg_graph`, :func:`pg_nearest_shelters`): both stores answer the same question with
the same network and agree to the centimetre (tested on the sample city).

What the build does with the lines of the layers marked ``map.network: walk`` (public store,
CRS84 -> the city's plane CRS for metres; tuned by ``publish.routing`` of the project):

* a line end within ``junction_m`` of another line's interior splits that line there
  (T-junctions); crossings without a shared vertex stay apart (bridges, underpasses);
* line ends within ``junction_m`` of each other are one junction;
* separate parts of the network are *said* (:attr:`WalkGraph.parts`, the release's report and
  each answer), never hidden; with ``bridge_m`` > 0, parts closer than that are joined by the
  shortest straight links (a minimum spanning forest of the gaps), and a route using one says so.

A route goes: the point -> the nearest road (within ``snap_m``, else a clear message with the
distance) -> the network -> the road nearest the shelter -> the shelter. Its length counts all of
it; time = length / ``walk_speed_mps``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
import shapely.ops
from pyproj import Transformer
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree
from sqlalchemy import text as sql
from sqlalchemy.engine import Connection

from config import Project
from config.errors import EtlError
from config.i18n import langs
from config.messages import MESSAGES, both, en, ja, text
from config.models import RoutingConfig
from etl.sql import qi
from etl.stores.postgis import write_frame
from publish.model import ID_COLUMN, STORE_CRS

GRAPH_FILE = "walk_graph.npz"
#: the OGC API process answering from the graph: its id and the dotted path pygeoapi loads it by
#: (defined by the server, :mod:`publish.server.process_route`; the build never imports it)
PROCESS_ID = "walk-route"
PROCESSOR = "publish.server.process_route.WalkRouteProcessor"
FORMAT = 1
ROAD, LINK = 0, 1  # edge kinds: a mapped road; a straight link between parts (bridge_m)
MIN_EDGE_M = 1e-6  # csgraph reads an explicit 0 as "no edge"
TIE_M = 1e-6  # snapping: edges this much farther than the nearest count as equally near


class RoutingError(EtlError):
    """A routing request or build that cannot be answered; the message says why and what to do."""


# ------------------------------------------------------------------------------------ the graph


@dataclass(frozen=True)
class Shelters:
    """Shelters of the release, placed on the graph (snapped once, at publish)."""

    fid: np.ndarray  # str
    layer: np.ndarray  # str
    name: np.ndarray  # str
    xy: np.ndarray  # (n, 2) plane
    kinds: tuple[str, ...]  # hazard kinds with a flag column
    flags: np.ndarray  # (n, len(kinds)) bool: designated for that kind
    edge: np.ndarray  # nearest edge, -1 if none within snap_m
    along: np.ndarray  # metres from the edge's start to the snapped place
    off: np.ndarray  # metres from the shelter to the snapped place

    @classmethod
    def empty(cls) -> Shelters:
        z = np.zeros(0)
        return cls(z.astype(str), z.astype(str), z.astype(str), np.zeros((0, 2)), (),
                   np.zeros((0, 0), bool), z.astype(np.int64), z, z)


@dataclass(frozen=True)
class WalkGraph:
    """Junctions (nodes) and street pieces (edges) in a metric CRS, with their geometry."""

    crs: str
    node_xy: np.ndarray  # (n, 2)
    edge_u: np.ndarray  # (m,) int
    edge_v: np.ndarray
    edge_len: np.ndarray  # metres along the geometry
    edge_kind: np.ndarray  # ROAD | LINK
    edge_name: np.ndarray  # street name ("" unknown)
    offsets: np.ndarray  # (m+1,) into coords: edge i is coords[offsets[i]:offsets[i+1]], u -> v
    coords: np.ndarray  # (k, 2)
    node_part: np.ndarray  # connected part of each node (0 = the largest)
    shelters: Shelters = field(default_factory=Shelters.empty)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    @property
    def n_edges(self) -> int:
        return len(self.edge_u)

    @property
    def parts(self) -> int:
        return int(self.node_part.max()) + 1 if self.n_nodes else 0

    def part_sizes(self) -> list[int]:
        return np.bincount(self.node_part).tolist() if self.n_nodes else []

    def edge_coords(self, i: int) -> np.ndarray:
        return self.coords[self.offsets[i]:self.offsets[i + 1]]

    @cached_property
    def lines(self) -> np.ndarray:
        """Edge geometries (shapely), for snapping."""
        idx = np.repeat(np.arange(self.n_edges), np.diff(self.offsets))
        return shapely.linestrings(self.coords, indices=idx)

    @cached_property
    def tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.lines)

    @cached_property
    def matrix(self) -> sparse.csr_array:
        """Symmetric adjacency; of parallel edges only the shortest counts (no summing)."""
        best = self.best_edges
        u, v = self.edge_u[best], self.edge_v[best]
        w = np.maximum(self.edge_len[best], MIN_EDGE_M)
        n = self.n_nodes
        return sparse.csr_array((np.concatenate([w, w]), (np.concatenate([u, v]),
                                                          np.concatenate([v, u]))), shape=(n, n))

    @cached_property
    def best_edges(self) -> np.ndarray:
        """Index of the shortest edge per unordered node pair (self-loops dropped)."""
        u, v = self.edge_u, self.edge_v
        keep = np.flatnonzero(u != v)
        lo, hi = np.minimum(u[keep], v[keep]), np.maximum(u[keep], v[keep])
        order = np.lexsort((self.edge_len[keep], hi, lo))
        lo, hi, idx = lo[order], hi[order], keep[order]
        first = np.ones(len(idx), bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        return idx[first]

    @cached_property
    def pair_edge(self) -> dict[tuple[int, int], int]:
        return {(int(min(self.edge_u[i], self.edge_v[i])), int(max(self.edge_u[i],
                 self.edge_v[i]))): int(i) for i in self.best_edges}

    @cached_property
    def to_plane(self) -> Transformer:
        return Transformer.from_crs("OGC:CRS84", self.crs, always_xy=True)

    @cached_property
    def to_lonlat(self) -> Transformer:
        return Transformer.from_crs(self.crs, "OGC:CRS84", always_xy=True)

    def summary(self) -> dict[str, Any]:
        """What the release's report says about the network (parts are said, not hidden)."""
        sizes = self.part_sizes()
        links = int((self.edge_kind == LINK).sum())
        return {"nodes": self.n_nodes, "edges": self.n_edges, "parts": self.parts,
                "largest_part_nodes": max(sizes) if sizes else 0,
                "part_sizes": sorted(sizes, reverse=True)[:20], "links": links,
                "links_m": round(float(self.edge_len[self.edge_kind == LINK].sum()), 1),
                "length_m": round(float(self.edge_len.sum()), 1),
                "shelters": len(self.shelters.fid),
                "shelters_off_network": int((self.shelters.edge < 0).sum()),
                "message": both("route_graph_summary", nodes=self.n_nodes, edges=self.n_edges,
                                parts=self.parts,
                                largest=max(sizes) if sizes else 0)}


def _node_ends(pts: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Cluster points closer than ``tol`` into nodes: (node id per point, node coordinates)."""
    n = len(pts)
    if tol > 0 and n:
        pairs = cKDTree(pts).query_pairs(tol, output_type="ndarray")
    else:
        pairs = np.zeros((0, 2), np.int64)
    # exact duplicates always merge, whatever the tolerance
    _, first = np.unique(pts, axis=0, return_inverse=True)
    first = first.ravel()
    rep = np.full(first.max() + 1 if n else 0, -1)
    for i, g in enumerate(first):
        if rep[g] < 0:
            rep[g] = i
    rows = np.concatenate([pairs[:, 0], np.arange(n)])
    cols = np.concatenate([pairs[:, 1], rep[first]])
    g = sparse.coo_array((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, label = csgraph.connected_components(g, directed=False)
    # the node's coordinate: its first point (ends are moved to it, so edges meet exactly)
    _, firsts = np.unique(label, return_index=True)
    return label, pts[firsts]


def _split_at_t_junctions(lines: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Split lines where another line ends on their interior: (pieces, source line index)."""
    if tol <= 0 or len(lines) == 0:
        return lines, np.arange(len(lines))
    ends = np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)])
    tree = shapely.STRtree(lines)
    pi, li = tree.query(ends, predicate="dwithin", distance=tol)
    cuts: dict[int, list[float]] = {}
    for p, line_i in zip(pi, li, strict=True):
        line = lines[line_i]
        d = float(shapely.line_locate_point(line, ends[p]))
        if tol < d < float(shapely.length(line)) - tol:
            cuts.setdefault(int(line_i), []).append(d)
    if not cuts:
        return lines, np.arange(len(lines))
    out: list[shapely.LineString] = []
    src: list[int] = []
    for i, line in enumerate(lines):
        ds = sorted(set(cuts.get(i, [])))
        if not ds:
            out.append(line)
            src.append(i)
            continue
        bounds = [0.0, *ds, float(shapely.length(line))]
        for a, b in itertools.pairwise(bounds):
            if b - a > 0:
                out.append(shapely.ops.substring(line, a, b))
                src.append(i)
    return np.array(out, dtype=object), np.array(src)


def _bridge(node_xy: np.ndarray, part: np.ndarray, bridge_m: float
            ) -> list[tuple[int, int, float]]:
    """Shortest straight links (<= bridge_m) joining separate parts: Kruskal on the gaps."""
    if bridge_m <= 0 or part.max() == 0:
        return []
    tree = cKDTree(node_xy)
    pairs = tree.query_pairs(bridge_m, output_type="ndarray")
    if len(pairs) == 0:
        return []
    pairs = pairs[part[pairs[:, 0]] != part[pairs[:, 1]]]
    d = np.hypot(*(node_xy[pairs[:, 0]] - node_xy[pairs[:, 1]]).T)
    order = np.lexsort((pairs[:, 1], pairs[:, 0], d))
    parent = list(range(int(part.max()) + 1))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    links = []
    for k in order:
        a, b = int(pairs[k, 0]), int(pairs[k, 1])
        ra, rb = find(int(part[a])), find(int(part[b]))
        if ra != rb:
            parent[ra] = rb
            links.append((a, b, float(d[k])))
    return links


def build_graph(lines: Sequence[shapely.LineString] | np.ndarray, names: Sequence[str],
                crs: str, *, junction_m: float = 0.5, bridge_m: float = 0.0) -> WalkGraph:
    """Lines in the metric ``crs`` (one name each, "" unknown) -> the walking graph."""
    arr = np.asarray(lines, dtype=object)
    nm = np.asarray(names, dtype=object)
    ok = ~(shapely.is_missing(arr) | shapely.is_empty(arr)) if len(arr) else np.zeros(0, bool)
    arr, nm = arr[ok], nm[ok]
    if len(arr):  # multi-lines -> their parts
        parts, idx = shapely.get_parts(arr, return_index=True)
        arr, nm = parts, nm[idx]
        keep = shapely.length(arr) > 0
        arr, nm = arr[keep], nm[keep]
    pieces, src = _split_at_t_junctions(arr, junction_m)
    names_out = nm[src] if len(src) else np.zeros(0, dtype=object)
    m = len(pieces)
    starts = shapely.get_coordinates(shapely.get_point(pieces, 0)) if m else np.zeros((0, 2))
    ends = shapely.get_coordinates(shapely.get_point(pieces, -1)) if m else np.zeros((0, 2))
    label, node_xy = _node_ends(np.concatenate([starts, ends]), junction_m)
    eu, ev = label[:m], label[m:]
    coords_list = [shapely.get_coordinates(p) for p in pieces]
    for i, c in enumerate(coords_list):  # ends meet exactly at their junction
        c[0], c[-1] = node_xy[eu[i]], node_xy[ev[i]]
    lengths = np.array([float(np.hypot(*np.diff(c, axis=0).T).sum()) for c in coords_list])
    kinds = np.full(m, ROAD, np.int8)
    n = len(node_xy)
    part = _parts(n, eu, ev)
    links = _bridge(node_xy, part, bridge_m)
    if links:
        la, lb, ld = (np.array(x) for x in zip(*links, strict=True))
        eu, ev = np.concatenate([eu, la]), np.concatenate([ev, lb])
        lengths = np.concatenate([lengths, ld])
        kinds = np.concatenate([kinds, np.full(len(la), LINK, np.int8)])
        names_out = np.concatenate([names_out, np.full(len(la), "", dtype=object)])
        coords_list += [np.array([node_xy[a], node_xy[b]]) for a, b, _ in links]
        part = _parts(n, eu, ev)
    counts = np.array([len(c) for c in coords_list], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    coords = np.concatenate(coords_list) if coords_list else np.zeros((0, 2))
    return WalkGraph(crs=crs, node_xy=node_xy, edge_u=eu.astype(np.int64),
                     edge_v=ev.astype(np.int64), edge_len=lengths, edge_kind=kinds,
                     edge_name=np.array([str(x) if x is not None else "" for x in names_out],
                                        dtype=str) if m or links else np.zeros(0, str),
                     offsets=offsets, coords=coords, node_part=part,
                     meta={"junction_m": junction_m, "bridge_m": bridge_m})


def _parts(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected part of each node, numbered by size (0 = the largest)."""
    if n == 0:
        return np.zeros(0, np.int64)
    g = sparse.coo_array((np.ones(len(u)), (u, v)), shape=(n, n))
    _, label = csgraph.connected_components(g, directed=False)
    sizes = np.bincount(label)
    rank = np.empty(len(sizes), np.int64)
    rank[np.lexsort((np.arange(len(sizes)), -sizes))] = np.arange(len(sizes))
    return rank[label]


# ------------------------------------------------------------------------ snapping and shelters


@dataclass(frozen=True)
class Snap:
    """Where a point meets the network: its edge, metres along it, metres off it."""

    edge: int
    along: float
    off: float
    xy: tuple[float, float]  # the point on the edge


def snap(graph: WalkGraph, xy: tuple[float, float], limit: float | None) -> Snap | None:
    """The nearest place on the network within ``limit`` metres (None if there is none)."""
    if graph.n_edges == 0:
        return None
    pt = shapely.Point(xy)
    kw = {"max_distance": limit} if limit is not None else {}
    idx, dist = graph.tree.query_nearest(pt, return_distance=True, **kw)
    if len(idx) == 0:
        return None
    # Near-ties (a point by a junction): the lowest edge id, as the SQL side orders them.
    near = graph.tree.query(pt, predicate="dwithin", distance=float(dist.min()) + TIE_M)
    e = int(near.min())
    line = graph.lines[e]
    along = float(shapely.line_locate_point(line, pt))
    on = shapely.line_interpolate_point(line, along)
    return Snap(e, along, float(shapely.distance(line, pt)), (float(on.x), float(on.y)))


def place_shelters(graph: WalkGraph, frames: Iterable[tuple[str, Any, str, dict[str, str]]],
                   snap_m: float) -> WalkGraph:
    """Put shelters on the graph: ``frames`` are (layer, GeoDataFrame in graph CRS, name field,
    {hazard kind: flag field})."""
    fids, layers, names, xys, flag_rows = [], [], [], [], []
    kinds: list[str] = []
    rows: list[dict[str, bool]] = []
    for layer, df, name_field, flags in frames:
        for k in flags:
            if k not in kinds:
                kinds.append(k)
        pts = shapely.get_coordinates(df.geometry.values)
        for i in range(len(df)):
            fids.append(str(df[ID_COLUMN].iloc[i]))
            layers.append(layer)
            nm = df[name_field].iloc[i] if name_field in df else None
            names.append("" if nm is None or nm != nm else str(nm))
            xys.append(pts[i])
            rows.append({k: bool(df[f].iloc[i]) if f in df and df[f].iloc[i] is not None
                         and df[f].iloc[i] == df[f].iloc[i] else False
                         for k, f in flags.items()})
    for r in rows:
        flag_rows.append([r.get(k, False) for k in kinds])
    n = len(fids)
    edge = np.full(n, -1, np.int64)
    along = np.zeros(n)
    off = np.zeros(n)
    for i, xy in enumerate(xys):
        s = snap(graph, (float(xy[0]), float(xy[1])), snap_m)
        if s is not None:
            edge[i], along[i], off[i] = s.edge, s.along, s.off
    sh = Shelters(np.array(fids, dtype=str), np.array(layers, dtype=str),
                  np.array(names, dtype=str), np.array(xys).reshape(n, 2), tuple(kinds),
                  np.array(flag_rows, dtype=bool).reshape(n, len(kinds)), edge, along, off)
    fields = {k: getattr(graph, k) for k in WalkGraph.__dataclass_fields__}
    return WalkGraph(**{**fields, "shelters": sh})


# ------------------------------------------------------------------------------ file format


def save_graph(graph: WalkGraph, path: Path) -> Path:
    """Write the graph as one compressed ``.npz`` (no pickles: safe to load on the server)."""
    sh = graph.shelters
    meta = {**graph.meta, "format": FORMAT, "crs": graph.crs, "kinds": list(sh.kinds)}
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(
        tmp, node_xy=graph.node_xy, edge_u=graph.edge_u, edge_v=graph.edge_v,
        edge_len=graph.edge_len, edge_kind=graph.edge_kind, edge_name=graph.edge_name,
        offsets=graph.offsets, coords=graph.coords, node_part=graph.node_part,
        sh_fid=sh.fid, sh_layer=sh.layer, sh_name=sh.name, sh_xy=sh.xy, sh_flags=sh.flags,
        sh_edge=sh.edge, sh_along=sh.along, sh_off=sh.off,
        meta=np.array(json.dumps(meta, ensure_ascii=False)))
    tmp.replace(path)
    return path


def load_graph(path: Path) -> WalkGraph:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != FORMAT:
            raise RoutingError("route_graph_format", path=path, found=meta.get("format"),
                               expected=FORMAT)
        sh = Shelters(z["sh_fid"], z["sh_layer"], z["sh_name"], z["sh_xy"],
                      tuple(meta.get("kinds", [])), z["sh_flags"], z["sh_edge"], z["sh_along"],
                      z["sh_off"])
        return WalkGraph(crs=meta["crs"], node_xy=z["node_xy"], edge_u=z["edge_u"],
                         edge_v=z["edge_v"], edge_len=z["edge_len"], edge_kind=z["edge_kind"],
                         edge_name=z["edge_name"], offsets=z["offsets"], coords=z["coords"],
                         node_part=z["node_part"], shelters=sh, meta=meta)


# ---------------------------------------------------------------------- build from a release


def network_layers(project: Project) -> list[str]:
    """The layers marked ``map.network: walk``, checked: public line layers of the project.

    (``config.load_project`` checks the same; this guards a project built in code.)
    """
    marked = sorted(lid for lid, s in project.specs.items() if s.map.network == "walk")
    bad = [lid for lid in marked if project.specs[lid].visibility != "public"
           or "LineString" not in project.specs[lid].geometry_type]
    if bad:
        raise RoutingError("route_network_layers", layers=", ".join(bad),
                           known=", ".join(sorted(
                               lid for lid, s in project.specs.items()
                               if s.visibility == "public" and "LineString" in s.geometry_type)))
    return marked


def enabled(project: Project) -> bool:
    """Walking routes exist where a line layer is marked ``map.network: walk``."""
    return any(s.map.network == "walk" for s in project.specs.values())


def shelter_roles(project: Project) -> list[tuple[str, str, dict[str, str]]]:
    """(layer, name field, {kind: flag field}) of every public layer with the shelter role."""
    out = []
    for lid, spec in project.specs.items():
        role = spec.map.shelter
        if spec.visibility == "public" and spec.map.role == "shelter" and role is not None:
            out.append((lid, role.name_field, dict(role.flags)))
    return out


def build_release_graph(project: Project, store: Path, cfg: RoutingConfig | None = None
                        ) -> WalkGraph:
    """The walking graph of a release: network layers and shelters read from its public store.

    Only the public store is read: what the graph holds is public by construction. ``cfg``
    overrides the project's ``publish.routing``.
    """
    cfg = cfg or project.config.publish.routing
    crs = project.config.target_crs
    lines, names = [], []
    have = {str(n) for n in pyogrio.list_layers(store)[:, 0]}
    layers = network_layers(project)
    for lid in layers:
        if lid not in have:
            raise RoutingError("route_network_missing", layer=lid, path=store)
        label = project.specs[lid].map.label_field
        cols = [label] if label else []
        df = pyogrio.read_dataframe(store, layer=lid, columns=cols).to_crs(crs)
        lines.append(df.geometry.values)
        names.append(df[label].astype("string").fillna("").to_numpy(dtype=object)
                     if label else np.full(len(df), "", dtype=object))
    graph = build_graph(np.concatenate(lines) if lines else np.zeros(0, object),
                        np.concatenate(names) if names else np.zeros(0, object), crs,
                        junction_m=cfg.junction_m, bridge_m=cfg.bridge_m)
    frames = []
    for lid, name_field, flags in shelter_roles(project):
        if lid not in have:
            continue
        cols = [ID_COLUMN, name_field, *flags.values()]
        df = pyogrio.read_dataframe(store, layer=lid, columns=list(dict.fromkeys(cols)))
        frames.append((lid, df.to_crs(crs), name_field, flags))
    graph = place_shelters(graph, frames, cfg.snap_m)
    graph.meta.update({"snap_m": cfg.snap_m, "walk_speed_mps": cfg.walk_speed_mps,
                       "results": cfg.results, "layers": layers,
                       "store_crs": STORE_CRS})
    return graph


# -------------------------------------------------------------------------------- answering


@dataclass(frozen=True)
class Step:
    """One instruction of the text directions: turn, then walk along a named street."""

    turn: str  # start | straight | left | right | back | link | arrive
    name: str
    metres: float

    def text(self) -> dict[str, str]:
        """The instruction in Japanese and English (message catalogue)."""
        m = round(self.metres)
        if self.turn == "link":
            return both("route_step_link", m=m)
        if self.turn == "arrive":
            return both("route_step_arrive", name=self.name, m=m)
        key = f"route_turn_{self.turn}"
        return {"ja": ja("route_step", turn=ja(key), m=m,
                         name=self.name or ja("route_unnamed_road")),
                "en": en("route_step", turn=en(key), m=m,
                         name=self.name or en("route_unnamed_road"))}


@dataclass(frozen=True)
class Route:
    """A walk to one shelter."""

    fid: str
    layer: str
    name: str
    metres: float  # whole walk: to the road, along it, to the shelter
    network_m: float
    seconds: float
    coords: np.ndarray  # (k, 2) plane, from the point to the shelter
    links_m: float  # straight links between separate parts (bridge_m) on the way
    steps: list[Step]
    straight_m: float  # as the crow flies

    def geojson(self, graph: WalkGraph) -> dict[str, Any]:
        lon, lat = graph.to_lonlat.transform(self.coords[:, 0], self.coords[:, 1])
        line = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat, strict=True)]
        return {
            "type": "Feature",
            "id": self.fid,
            "geometry": {"type": "LineString", "coordinates": line},
            "properties": {
                "shelter_id": self.fid, "layer": self.layer, "name": self.name,
                "distance_m": round(self.metres, 1), "walk_min": math.ceil(self.seconds / 60),
                "walk_s": round(self.seconds), "straight_m": round(self.straight_m, 1),
                "links_m": round(self.links_m, 1),
                "steps": [{"turn": s.turn, "name": s.name, "m": round(s.metres),
                           "text": s.text()} for s in self.steps],
            },
        }


@dataclass(frozen=True)
class Answer:
    """Routes to the nearest suitable shelters, and everything the walker must be told."""

    kind: str
    routes: list[Route]
    snap: Snap
    notes: list[dict[str, str]]  # every page language: separate parts, unreachable shelters, links

    def geojson(self, graph: WalkGraph) -> dict[str, Any]:
        lon, lat = graph.to_lonlat.transform(*self.snap.xy)
        return {"type": "FeatureCollection", "kind": self.kind,
                "features": [r.geojson(graph) for r in self.routes],
                "snapped": {"lon": round(lon, 7), "lat": round(lat, 7),
                            "off_road_m": round(self.snap.off, 1)},
                "notes": self.notes}


def kind_title(kind: str) -> dict[str, str]:
    """The hazard kind's name from the catalogue (a city's own kind names itself)."""
    key = f"map_kind_{kind}"
    return both(key) if key in MESSAGES else {"ja": kind, "en": kind}


def _side_costs(graph: WalkGraph, e: int, along: float) -> tuple[tuple[int, float], ...]:
    """(node, metres) to both ends of edge ``e`` from a place ``along`` it."""
    return ((int(graph.edge_u[e]), along),
            (int(graph.edge_v[e]), float(graph.edge_len[e]) - along))


def _partial(graph: WalkGraph, e: int, a: float, b: float) -> np.ndarray:
    """Coordinates of edge ``e`` from ``a`` to ``b`` metres along it (b < a walks backwards)."""
    line = graph.lines[e]
    lo, hi = (a, b) if a <= b else (b, a)
    sub = shapely.ops.substring(line, lo, hi)
    c = shapely.get_coordinates(sub)
    return c if a <= b else c[::-1]


def _node_path(pred: np.ndarray, src: int, dst: int) -> list[int]:
    out = [dst]
    while out[-1] != src:
        p = int(pred[out[-1]])
        if p < 0:
            return []
        out.append(p)
    return out[::-1]


def _bearing(c: np.ndarray, at_end: bool) -> float | None:
    if len(c) < 2:
        return None
    a, b = (c[-2], c[-1]) if at_end else (c[0], c[1])
    d = b - a
    return math.degrees(math.atan2(d[1], d[0])) if np.hypot(*d) > 0 else None


def _turn(prev: np.ndarray, nxt: np.ndarray) -> str:
    a, b = _bearing(prev, True), _bearing(nxt, False)
    if a is None or b is None:
        return "straight"
    d = (b - a + 540) % 360 - 180  # counter-clockwise positive (x east, y north)
    if abs(d) < 30:
        return "straight"
    if abs(d) > 150:
        return "back"
    return "left" if d > 0 else "right"


def _steps(pieces: list[tuple[np.ndarray, str, int]], shelter_name: str, end_m: float
           ) -> list[Step]:
    """Group consecutive pieces by street name; a turn where the name (or a link) changes."""
    steps: list[Step] = []
    cur_name, cur_kind, cur_m, cur_turn = "", -1, 0.0, "start"
    last_c: np.ndarray | None = None
    for c, name, kind in pieces:
        m = float(np.hypot(*np.diff(c, axis=0).T).sum()) if len(c) > 1 else 0.0
        if m <= 0:
            continue
        if last_c is None or name != cur_name or kind != cur_kind:
            if last_c is not None:
                steps.append(Step(cur_turn, cur_name, cur_m))
            cur_turn = ("link" if kind == LINK else
                        "start" if last_c is None else _turn(last_c, c))
            cur_name, cur_kind, cur_m = name, kind, 0.0
        cur_m += m
        last_c = c
    if last_c is not None:
        steps.append(Step(cur_turn, cur_name, cur_m))
    steps.append(Step("arrive", shelter_name, end_m))
    return steps


def nearest_shelters(graph: WalkGraph, lon: float, lat: float, kind: str, *,
                     n: int | None = None, speed_mps: float | None = None,
                     snap_m: float | None = None) -> Answer:
    """The ``n`` shelters designated for ``kind`` nearest to (lon, lat) by walking.

    Raises :class:`RoutingError` with a bilingual message when the point is off the network, the
    kind is unknown, no shelter is designated for it, or none is reachable from the point's part
    of the network (then the nearest ones as the crow flies are named).
    """
    sh = graph.shelters
    n = n or int(graph.meta.get("results", 3))
    speed = speed_mps or float(graph.meta.get("walk_speed_mps", 1.0))
    limit = snap_m or float(graph.meta.get("snap_m", 150.0))
    if kind not in sh.kinds:
        raise RoutingError("route_unknown_kind", kind=kind, known=", ".join(sh.kinds) or "-")
    x, y = graph.to_plane.transform(lon, lat)
    s = snap(graph, (x, y), limit)
    if s is None:
        near = snap(graph, (x, y), None)
        raise RoutingError("route_snap_far", limit=round(limit),
                           dist=round(near.off) if near else "-")
    k = sh.kinds.index(kind)
    cand = np.flatnonzero(sh.flags[:, k])
    if len(cand) == 0:
        raise RoutingError("route_no_shelter", kind=kind_title(kind)["ja"],
                           kind_en=kind_title(kind)["en"])
    starts = _side_costs(graph, s.edge, s.along)
    dist, pred = csgraph.dijkstra(graph.matrix, directed=False,
                                  indices=[starts[0][0], starts[1][0]],
                                  return_predecessors=True)
    best: list[tuple[float, int, int, int]] = []  # (network m, shelter, start side, end side)
    for i in cand:
        e = int(sh.edge[i])
        if e < 0:
            continue
        ends = _side_costs(graph, e, float(sh.along[i]))
        options = [(c0 + float(dist[a, node1]) + c1, int(i), a, b)
                   for a, (_node0, c0) in enumerate(starts)
                   for b, (node1, c1) in enumerate(ends)]
        if e == s.edge:  # same street piece: straight along it
            options.append((abs(float(sh.along[i]) - s.along), int(i), -1, -1))
        cost, *rest = min(options)
        if math.isfinite(cost):
            best.append((cost + s.off + float(sh.off[i]), *rest))
    best.sort()
    straight = np.hypot(sh.xy[:, 0] - x, sh.xy[:, 1] - y)
    if not best:
        j = int(cand[np.argmin(straight[cand])])
        raise RoutingError("route_disconnected", kind=kind_title(kind)["ja"],
                           kind_en=kind_title(kind)["en"], name=str(sh.name[j]),
                           dist=round(float(straight[j])), parts=graph.parts)
    routes = [_route(graph, s, starts, pred, item, speed, (x, y)) for item in best[:n]]
    notes: list[dict[str, str]] = []
    # Suitable shelters nearer (as the crow flies) than a returned one that cannot be walked to
    # over the mapped network: say so, with the nearest of them.
    reachable = {i for _, i, _, _ in best}
    far = max(r.straight_m for r in routes)
    unreachable = sorted((float(straight[i]), int(i)) for i in cand
                         if int(i) not in reachable and straight[i] < far)
    if unreachable:
        d, j = unreachable[0]
        why = "route_unreachable_off" if sh.edge[j] < 0 else "route_unreachable_part"
        notes.append(langs(why, name=str(sh.name[j]), dist=round(d), n=len(unreachable),
                          limit=round(limit), parts=graph.parts))
    if any(r.links_m > 0 for r in routes):
        notes.append(langs("route_link_note", m=round(max(r.links_m for r in routes))))
    return Answer(kind, routes, s, notes)


def _route(graph: WalkGraph, s: Snap, starts: tuple[tuple[int, float], ...],
           pred: np.ndarray, item: tuple[float, int, int, int], speed: float,
           xy: tuple[float, float]) -> Route:
    total, i, a, b = item
    sh = graph.shelters
    e_end = int(sh.edge[i])
    pieces: list[tuple[np.ndarray, str, int]] = []
    if a < 0:  # same edge
        pieces.append((_partial(graph, s.edge, s.along, float(sh.along[i])),
                       str(graph.edge_name[s.edge]), int(graph.edge_kind[s.edge])))
        net = abs(float(sh.along[i]) - s.along)
    else:
        src = starts[a][0]
        end_node = int(graph.edge_u[e_end]) if b == 0 else int(graph.edge_v[e_end])
        nodes = _node_path(pred[a], src, end_node)
        # from the snapped place to the start node (u: backwards to 0; v: forwards to len)
        to = 0.0 if a == 0 else float(graph.edge_len[s.edge])
        pieces.append((_partial(graph, s.edge, s.along, to), str(graph.edge_name[s.edge]),
                       int(graph.edge_kind[s.edge])))
        for p, q in itertools.pairwise(nodes):
            e = graph.pair_edge[(min(p, q), max(p, q))]
            c = graph.edge_coords(e)
            pieces.append((c if int(graph.edge_u[e]) == p else c[::-1],
                           str(graph.edge_name[e]), int(graph.edge_kind[e])))
        frm = 0.0 if b == 0 else float(graph.edge_len[e_end])
        pieces.append((_partial(graph, e_end, frm, float(sh.along[i])),
                       str(graph.edge_name[e_end]), int(graph.edge_kind[e_end])))
        net = total - s.off - float(sh.off[i])
    links_m = sum(float(np.hypot(*np.diff(c, axis=0).T).sum()) for c, _, k in pieces
                  if k == LINK)
    line = [np.array([xy]), *[c for c, _, _ in pieces], sh.xy[i][None, :]]
    coords = np.concatenate(line)
    keep = np.ones(len(coords), bool)
    keep[1:] = np.any(np.abs(np.diff(coords, axis=0)) > 1e-9, axis=1)
    coords = coords[keep]
    steps = _steps(pieces, str(sh.name[i]), float(sh.off[i]))
    straight = float(np.hypot(*(sh.xy[i] - np.asarray(xy))))
    return Route(str(sh.fid[i]), str(sh.layer[i]), str(sh.name[i]), total, net,
                 total / speed, coords, links_m, steps, straight)


# --------------------------------------------------------------------------- PostGIS/pgRouting

PG_EDGES = "walk_edges"
PG_SHELTERS = "walk_shelters"


def write_pg_graph(conn: Connection, schema: str, graph: WalkGraph) -> dict[str, int]:
    """Write the graph for pgRouting into ``schema`` (SQLAlchemy connection, open transaction).

    ``walk_edges``: id, source, target, cost = reverse_cost = length in metres, kind, name and the
    geometry in CRS84; ``walk_shelters``: fid, layer, name, one boolean per hazard kind, point.
    Shelters are placed on the network again in SQL (:func:`pg_nearest_shelters`), not copied.
    """
    idx = np.repeat(np.arange(graph.n_edges), np.diff(graph.offsets))
    lon, lat = graph.to_lonlat.transform(graph.coords[:, 0], graph.coords[:, 1])
    geoms = shapely.linestrings(np.column_stack([lon, lat]), indices=idx)
    edges = gpd.GeoDataFrame({
        "id": np.arange(graph.n_edges, dtype=np.int64),
        "source": graph.edge_u.astype(np.int64), "target": graph.edge_v.astype(np.int64),
        "cost": graph.edge_len, "reverse_cost": graph.edge_len,
        "kind": graph.edge_kind.astype(np.int64), "name": graph.edge_name.astype(object),
    }, geometry=geoms, crs=STORE_CRS).rename_geometry("geom")
    write_frame(conn, schema, PG_EDGES, edges, geometry_type="LineString", primary_key="id")
    sh = graph.shelters
    slon, slat = graph.to_lonlat.transform(sh.xy[:, 0], sh.xy[:, 1])
    data: dict[str, Any] = {"fid": sh.fid.astype(object), "layer": sh.layer.astype(object),
                            "name": sh.name.astype(object)}
    for j, k in enumerate(sh.kinds):
        data[f"hz_{k}"] = sh.flags[:, j]
    shelters = gpd.GeoDataFrame(data, geometry=shapely.points(np.column_stack([slon, slat])),
                                crs=STORE_CRS).rename_geometry("geom")
    write_frame(conn, schema, PG_SHELTERS, shelters, geometry_type="Point", primary_key="fid")
    conn.execute(sql(f"CREATE INDEX ON {qi(schema)}.{qi(PG_EDGES)} (source)"))
    conn.execute(sql(f"CREATE INDEX ON {qi(schema)}.{qi(PG_EDGES)} (target)"))
    return {PG_EDGES: graph.n_edges, PG_SHELTERS: len(sh.fid)}


@dataclass(frozen=True)
class PgRoute:
    fid: str
    name: str
    metres: float
    edges: list[int]  # path edges in order (pgr_dijkstra)


def pg_nearest_shelters(conn: Connection, schema: str, srid: int, lon: float, lat: float,
                        kind: str, *, n: int = 3, snap_m: float = 150.0) -> list[PgRoute]:
    """The same question answered by pgRouting (``pgr_dijkstraCost`` + ``pgr_dijkstra``).

    Points are put on the network in SQL (nearest edge in the plane CRS ``srid``, fraction along
    it) and joined to the edge's ends by virtual edges with negative ids, the usual pgRouting
    pattern; the walk then counts the legs off the road as the embedded router does.
    """
    e_t = f"{qi(schema)}.{qi(PG_EDGES)}"
    s_t = f"{qi(schema)}.{qi(PG_SHELTERS)}"
    kinds = [str(r[0])[3:] for r in conn.execute(sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = :s "
        "AND table_name = :t AND column_name LIKE 'hz\\_%' ORDER BY ordinal_position"),
        {"s": schema, "t": PG_SHELTERS})]
    if kind not in kinds:
        raise RoutingError("route_unknown_kind", kind=kind, known=", ".join(kinds) or "-")
    flag = qi(f"hz_{kind}")
    params = {"lon": lon, "lat": lat, "srid": srid, "lim": snap_m}
    snap_sql = f"""
        SELECT e.id, e.source, e.target, e.cost,
               ST_LineLocatePoint(ST_Transform(e.geom, :srid), p.g) * e.cost AS along,
               ST_Distance(ST_Transform(e.geom, :srid), p.g) AS off
        FROM {e_t} e, (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :srid)
                       AS g) p
        ORDER BY e.geom <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) LIMIT 32"""
    start = conn.execute(sql(f"SELECT * FROM ({snap_sql}) c WHERE off <= :lim "
                             "ORDER BY round(off::numeric, 6), id LIMIT 1"), params).first()
    if start is None:
        return []
    rows = conn.execute(sql(f"""
        SELECT s.fid, s.name, c.id, c.source, c.target, c.cost, c.along, c.off
        FROM {s_t} s CROSS JOIN LATERAL (
            SELECT e.id, e.source, e.target, e.cost,
                   ST_LineLocatePoint(ST_Transform(e.geom, :srid), ST_Transform(s.geom, :srid))
                       * e.cost AS along,
                   ST_Distance(ST_Transform(e.geom, :srid), ST_Transform(s.geom, :srid)) AS off
            FROM {e_t} e ORDER BY e.geom <-> s.geom LIMIT 32) c
        WHERE s.{flag} AND c.off <= :lim
        ORDER BY s.fid, round(c.off::numeric, 6), c.id"""), params).fetchall()
    shelters: dict[str, Any] = {}
    for r in rows:
        shelters.setdefault(r.fid, r)  # nearest edge per shelter
    if not shelters:
        return []
    fids = sorted(shelters)
    virtual = [f"SELECT -1::bigint AS id, -1::bigint AS source, {int(start.source)}::bigint AS "
               f"target, {float(start.along)!r}::float8 AS cost, {float(start.along)!r}::float8 "
               "AS reverse_cost",
               f"SELECT -2, -1, {int(start.target)}, {float(start.cost - start.along)!r}, "
               f"{float(start.cost - start.along)!r}"]
    for k, fid in enumerate(fids):
        r = shelters[fid]
        vid = -(k + 2)  # vertex ids -2, -3, ...
        virtual.append(f"SELECT {-(3 + 2 * k)}, {vid}, {int(r.source)}, {float(r.along)!r}, "
                       f"{float(r.along)!r}")
        virtual.append(f"SELECT {-(4 + 2 * k)}, {vid}, {int(r.target)}, "
                       f"{float(r.cost - r.along)!r}, {float(r.cost - r.along)!r}")
        if int(r.id) == int(start.id):  # same street piece
            d = abs(float(r.along) - float(start.along))
            virtual.append(f"SELECT {-(10_000_000 + k)}, -1, {vid}, {d!r}, {d!r}")
    edges_sql = (f"SELECT id, source, target, cost, reverse_cost FROM {e_t} UNION ALL "
                 + " UNION ALL ".join(virtual))
    ends = [-(k + 2) for k in range(len(fids))]
    costs = conn.execute(sql("SELECT end_vid, agg_cost FROM pgr_dijkstraCost(:e, -1, "
                             ":ends, directed => false)"),
                         {"e": edges_sql, "ends": ends}).fetchall()
    by_vid = {int(r.end_vid): float(r.agg_cost) for r in costs}
    ranked = sorted((by_vid[v] + float(start.off) + float(shelters[fids[-v - 2]].off),
                     fids[-v - 2], v) for v in by_vid)[:n]
    out = []
    for total, fid, vid in ranked:
        path = conn.execute(sql("SELECT edge FROM pgr_dijkstra(:e, -1, :t, directed => false) "
                                "ORDER BY seq"), {"e": edges_sql, "t": vid}).fetchall()
        out.append(PgRoute(fid, str(shelters[fid].name), total,
                           [int(p.edge) for p in path if p.edge >= 0]))
    return out


def ensure_pgrouting(conn: Connection) -> str:
    """Enable pgRouting (Debian ``postgresql-15-pgrouting``) in the database; its version."""
    conn.execute(sql("CREATE EXTENSION IF NOT EXISTS pgrouting"))
    return str(conn.execute(sql("SELECT pgr_version()")).scalar())


def describe(graph: WalkGraph) -> str:
    """One line for logs: the network and its parts."""
    return text("route_graph_summary", nodes=graph.n_nodes, edges=graph.n_edges,
                parts=graph.parts, largest=max(graph.part_sizes() or [0]))


def release_artifact(project: Project, store: Path, out_dir: Path
                     ) -> tuple[WalkGraph, Path, dict[str, Any]]:
    """Build and write ``walk_graph.npz`` into the release folder: (graph, path, summary)."""
    graph = build_release_graph(project, store)
    return graph, save_graph(graph, out_dir / GRAPH_FILE), graph.summary()


def process_resource(graph: Path, example: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``resources`` entry of the walk-route process for a release's pygeoapi config;
    ``example``: inputs the process description shows (:func:`example_inputs`)."""
    proc: dict[str, Any] = {"name": PROCESSOR, "graph": str(graph)}
    if example:
        proc["example"] = example
    return {"type": "process", "processor": proc}


def example_inputs(graph: WalkGraph) -> dict[str, Any] | None:
    """A request that has an answer on this city's graph: 20 m off the road by the first
    shelter on the largest part of the network, for the first hazard kind it is designated for
    (the process description's example; no city facts in the engine)."""
    sh = graph.shelters
    for i in range(len(sh.fid)):
        e = int(sh.edge[i])
        kinds = [k for j, k in enumerate(sh.kinds) if sh.flags[i, j]]
        if e < 0 or not kinds or graph.node_part[graph.edge_u[e]] != 0:
            continue
        c = graph.edge_coords(e)
        x, y = c[len(c) // 2]
        lon, lat = graph.to_lonlat.transform(float(x), float(y) + 20.0)
        return {"lon": round(float(lon), 5), "lat": round(float(lat), 5), "kind": kinds[0]}
    return None


def pg_tables(graph: WalkGraph) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Columns (without ``geom``) and row counts :func:`write_pg_graph` writes: what the
    release's PostGIS leak check expects besides the public layers."""
    kinds = {f"hz_{k}" for k in graph.shelters.kinds}
    return ({PG_EDGES: {"id", "source", "target", "cost", "reverse_cost", "kind", "name"},
             PG_SHELTERS: {"fid", "layer", "name", *kinds}},
            {PG_EDGES: graph.n_edges, PG_SHELTERS: len(graph.shelters.fid)})


def shelters_by_kind(graph: WalkGraph) -> Mapping[str, int]:
    """How many shelters are designated per hazard kind (for the process description)."""
    sh = graph.shelters
    return {k: int(sh.flags[:, j].sum()) for j, k in enumerate(sh.kinds)}
